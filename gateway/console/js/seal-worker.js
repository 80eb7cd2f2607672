// Seals one file off the page's thread: age-encryption over the file's stream, written
// into OPFS as SEGMENT-byte segment files with synchronous access handles (workers
// only; no copy through a Blob). Each closed segment is announced, so the page's tus
// upload can send it at once. Two transfers seal on two cores.
//
// In:  { file, recipient, key, segment }
// Out: { size } once known, { written } per closed segment, { done }, or { error };
//      without OPFS, { written, blob } carries the segment itself.
import * as age from "../vendor/age.js";

self.onmessage = async ({ data: { file, recipient, key, segment } }) => {
  try {
    const enc = new age.Encrypter();
    enc.addRecipient(recipient);
    const out = await enc.encrypt(file.stream());
    self.postMessage({ size: out.size(file.size) });
    let dir = null;
    try {
      const root = await (await navigator.storage.getDirectory()).getDirectoryHandle("sealed", { create: true });
      dir = await root.getDirectoryHandle(key, { create: true });
    } catch { /* no OPFS: segments go back to the page */ }
    const reader = out.getReader();
    let n = 0;
    let parts = [];
    let filled = 0;
    let written = 0;
    const close = async () => {
      if (dir) {
        const handle = await (await dir.getFileHandle(String(n), { create: true })).createSyncAccessHandle();
        handle.truncate(0);
        let at = 0;
        for (const p of parts) at += handle.write(p, { at });
        handle.flush();
        handle.close();
        written += filled;
        self.postMessage({ written });
      } else {
        written += filled;
        self.postMessage({ written, blob: new Blob(parts) });
      }
      n++;
      parts = [];
      filled = 0;
    };
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      let chunk = value;
      while (filled + chunk.length >= segment) {
        const take = segment - filled;
        parts.push(chunk.subarray(0, take));
        filled += take;
        await close();
        chunk = chunk.subarray(take);
      }
      if (chunk.length) {
        parts.push(chunk);
        filled += chunk.length;
      }
    }
    if (filled) await close();
    self.postMessage({ done: true, resumable: dir !== null });
  } catch (e) {
    self.postMessage({ error: String(e?.message || e) });
  }
};
