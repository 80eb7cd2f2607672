// The reference tus server for bench/run-tus.sh: @tus/server with @tus/file-store,
// over HTTPS with the gateway's own certificate, writing uploads to DIR as they come
// (no verification, no decryption: it receives raw bytes).
//
//   node server.mjs PORT DIR CERT_PEM KEY_PEM
import fs from 'node:fs'
import https from 'node:https'
import { Server } from '@tus/server'
import { FileStore } from '@tus/file-store'

const [port, dir, cert, key] = process.argv.slice(2)
const tus = new Server({ path: '/files', datastore: new FileStore({ directory: dir }) })
https
  .createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (req, res) => tus.handle(req, res))
  .listen(Number(port), '127.0.0.1', () => console.log(`listening ${port}`))
