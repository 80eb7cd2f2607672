// A file's sealed copy, kept in the browser's private file storage (OPFS) as segments
// of SEGMENT bytes (`sealed/<key>/<n>`), each closed as soon as it is full. Sending
// reads a segment the moment it is closed, so sealing and sending overlap; memory holds
// at most one segment being filled; and the copy outlives the tab, so a transfer
// resumes with the very same bytes. Without OPFS the segments are kept in memory (sent,
// not resumable after a close).
import * as age from "../vendor/age.js";

export const SEGMENT = 8 * 1024 * 1024;

async function root() {
  const dir = await navigator.storage.getDirectory();
  return dir.getDirectoryHandle("sealed", { create: true });
}

export class SealedCopy {
  constructor(key, size, dir) {
    this.key = key;
    this.size = size; // the sealed size, known before sealing
    this.dir = dir; // null: segments in memory
    this.memory = new Map();
    this.written = 0; // bytes in closed segments
    this.failed = null;
    this.waiters = [];
  }

  /** A copy to be written by `seal`. */
  static async create(key, size) {
    let dir = null;
    try { dir = await (await root()).getDirectoryHandle(key, { create: true }); } catch { /* no OPFS */ }
    return new SealedCopy(key, size, dir);
  }

  /** A complete copy left by an earlier page, or null. */
  static async reopen(key, size) {
    try {
      const dir = await (await root()).getDirectoryHandle(key);
      const copy = new SealedCopy(key, size, dir);
      copy.written = size;
      const last = Math.max(0, Math.ceil(size / SEGMENT) - 1);
      await dir.getFileHandle(String(last)); // the last segment exists: the copy is whole
      return copy;
    } catch {
      return null;
    }
  }

  static async remove(key) {
    try { await (await root()).removeEntry(key, { recursive: true }); } catch { /* already gone */ }
  }

  get resumable() { return this.dir !== null; }

  /** Starts sealing `file` to `recipient`: from here on the sealed size is known. */
  async begin(file, recipient) {
    const enc = new age.Encrypter();
    enc.addRecipient(recipient);
    const out = await enc.encrypt(file.stream());
    this.size = out.size(file.size);
    this.reader = out.getReader();
  }

  /** Writes the sealed bytes into the copy; `onSealed(bytes)` reports progress. */
  async seal(onSealed) {
    try {
      const reader = this.reader;
      let parts = [];
      let filled = 0;
      let n = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (value) {
          let chunk = value;
          while (filled + chunk.length >= SEGMENT) {
            const take = SEGMENT - filled;
            parts.push(chunk.subarray(0, take));
            await this.close(n++, parts);
            chunk = chunk.subarray(take);
            parts = [];
            filled = 0;
          }
          if (chunk.length) { parts.push(chunk); filled += chunk.length; }
          onSealed(this.written + filled);
        }
        if (done) break;
      }
      if (filled) await this.close(n, parts);
      if (this.written !== this.size) throw new Error(`sealed ${this.written} bytes, expected ${this.size}`);
    } catch (e) {
      this.failed = e;
      this.wake();
      throw e;
    }
  }

  async close(n, parts) {
    const blob = new Blob(parts);
    if (this.dir) {
      const handle = await this.dir.getFileHandle(String(n), { create: true });
      const w = await handle.createWritable();
      await w.write(blob);
      await w.close();
    } else {
      this.memory.set(n, blob);
    }
    this.written += blob.size;
    this.wake();
  }

  wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async segment(n) {
    if (!this.dir) return this.memory.get(n);
    return (await this.dir.getFileHandle(String(n))).getFile();
  }

  /** Bytes [start, end) once they are sealed: what tus-js-client sends. */
  async slice(start, end) {
    end = Math.min(end, this.size);
    while (this.written < end) {
      if (this.failed) throw this.failed;
      await new Promise((r) => this.waiters.push(r));
    }
    const parts = [];
    for (let n = Math.floor(start / SEGMENT); n * SEGMENT < end; n++) {
      const seg = await this.segment(n);
      parts.push(seg.slice(Math.max(0, start - n * SEGMENT), Math.min(SEGMENT, end - n * SEGMENT)));
    }
    return { value: new Blob(parts), done: end >= this.size };
  }

  /** tus-js-client's `fileReader`: the upload's input is this copy. */
  static reader() {
    return { openFile: async (copy) => ({ size: copy.size, slice: (s, e) => copy.slice(s, e), close() {} }) };
  }
}
