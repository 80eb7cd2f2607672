// A file's sealed copy, kept in the browser's private file storage (OPFS) as segments
// of SEGMENT bytes (`sealed/<key>/<n>`), each closed as soon as it is full. A worker
// seals (seal-worker.js); sending reads a segment the moment it is closed, so sealing
// and sending overlap; memory holds at most one segment being filled; and the copy
// outlives the tab, so a transfer resumes with the very same bytes. Without OPFS the
// segments come back to the page and stay in memory (sent, not resumable after a
// close).
export const SEGMENT = 8 * 1024 * 1024;

async function root() {
  const dir = await navigator.storage.getDirectory();
  return dir.getDirectoryHandle("sealed", { create: true });
}

export class SealedCopy {
  constructor(key, size, dir) {
    this.key = key;
    this.size = size; // the sealed size (set by begin() for a new copy)
    this.dir = dir; // null: segments in memory
    this.memory = new Map();
    this.written = 0; // bytes in closed segments
    this.failed = null;
    this.waiters = [];
  }

  /** A copy to be written by `seal`. */
  static async create(key) {
    let dir = null;
    try { dir = await (await root()).getDirectoryHandle(key, { create: true }); } catch { /* no OPFS */ }
    return new SealedCopy(key, 0, dir);
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

  /** Removes every sealed copy but those of `keep` (keys): copies left by transfers
   * that ended, were lost or were removed in another tab. */
  static async sweep(keep) {
    try {
      const dir = await root();
      const gone = [];
      for await (const name of dir.keys()) if (!keep.has(name)) gone.push(name);
      for (const name of gone) await dir.removeEntry(name, { recursive: true });
    } catch { /* no OPFS */ }
  }

  static async remove(key) {
    try { await (await root()).removeEntry(key, { recursive: true }); } catch { /* already gone */ }
  }

  get resumable() { return this.dir !== null; }

  /**
   * Starts sealing `file` to `recipient` in a worker (seal-worker.js); returns once the
   * sealed size is known, which the tus upload is created with.
   */
  async begin(file, recipient) {
    const worker = new Worker(new URL("./seal-worker.js", import.meta.url), { type: "module" });
    let sized;
    const size = new Promise((ok, bad) => { sized = { ok, bad }; });
    this.done = new Promise((ok, bad) => { this.end = { ok, bad }; });
    this.done.catch(() => {}); // observed by seal(); a failure before it is awaited is not unhandled
    const fail = (message) => {
      this.failed = new Error(message);
      worker.terminate();
      this.wake();
      sized.bad(this.failed);
      this.end.bad(this.failed);
    };
    worker.onerror = (e) => fail(e.message || "the sealing worker failed");
    worker.onmessage = ({ data }) => {
      if (data.error) return fail(data.error);
      if (data.size !== undefined) {
        this.size = data.size;
        sized.ok();
      } else if (data.written !== undefined) {
        if (data.blob) this.memory.set(this.memory.size, data.blob);
        this.written = data.written;
        this.onSealed?.(data.written);
        this.wake();
      } else if (data.done) {
        if (!data.resumable) this.dir = null;
        worker.terminate();
        this.end.ok();
      }
    };
    worker.postMessage({ file, recipient, key: this.key, segment: SEGMENT });
    await size;
  }

  /** Resolves once every sealed byte is in the copy; `onSealed(bytes)` reports progress. */
  async seal(onSealed) {
    this.onSealed = onSealed;
    await this.done;
    if (this.written !== this.size) throw new Error(`sealed ${this.written} bytes, expected ${this.size}`);
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
