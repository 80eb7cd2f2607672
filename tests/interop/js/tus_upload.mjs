// Uploads one file with tus-js-client (the tus project's JavaScript client, under Node)
// and prints JSON lines, like tuspy_upload.py.
//
//   node tus_upload.mjs ENDPOINT TOKEN FILE NAME STORE [CHUNK_BYTES] [PACE_MS]
//
// STORE is tus-js-client's FileUrlStorage: a second run with the same STORE finds the
// upload the first run began and resumes it. Prints {"url", "resumed_at"} when the
// upload starts, {"progress"} per chunk, {"done"} at the end; exits 1 on an error.
// PACE_MS slows each chunk so that a test can interrupt the upload.
import fs from 'node:fs'
import * as tus from 'tus-js-client'

const [endpoint, token, file, name, store, chunk = '1048576', pace = '0'] = process.argv.slice(2)
const data = fs.readFileSync(file)
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

const upload = new tus.Upload(data, {
  endpoint,
  headers: { Authorization: `Bearer ${token}` },
  metadata: { filename: name, filetype: 'application/octet-stream' },
  chunkSize: Number(chunk),
  retryDelays: [],
  urlStorage: new tus.FileUrlStorage(store),
  storeFingerprintForResuming: true,
  removeFingerprintOnSuccess: true,
  onBeforeRequest: async () => { if (Number(pace) > 0) await sleep(Number(pace)) },
  onUploadUrlAvailable: () => say({ url: upload.url, resumed_at: upload._offset ?? 0 }),
  onProgress: (sent) => say({ progress: sent }),
  onSuccess: () => { say({ done: data.length }); process.exit(0) },
  onError: (e) => { process.stderr.write(String(e) + '\n'); process.exit(1) },
})

const previous = await upload.findPreviousUploads()
if (previous.length > 0) upload.resumeFromPreviousUpload(previous[0])
upload.start()
