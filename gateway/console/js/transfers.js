// Sending from the browser. Each file is sealed here with age (the age-encryption
// library) to the gateway's recipient into a sealed copy in the browser's private file
// storage (sealed.js), and sent with tus (tus-js-client) from that copy while it is
// still being written: no plaintext leaves the machine, memory stays flat however
// large the file, sealing and sending overlap, and the very same bytes can be resumed
// after the tab is closed (the transfer list, with each tus upload's address, is kept
// in localStorage; the sealed copy stays until the upload is accepted).
import { csrfToken } from "./api.js";
import { SealedCopy, SEGMENT } from "./sealed.js";
import { t } from "./i18n.js";
import { el, bytes, announce } from "./ui.js";

const KEY = "gw-transfers";
const PARALLEL = 2;
const CHUNK = SEGMENT; // one PATCH per sealed segment, each acknowledged once durable
const sources = new Map(); // record key → the File chosen (this page only)
const live = new Map(); // record key → its tus.Upload
let session = null;
let records = load();
let tbody = null;
let active = 0;
let sweeping = null; // the one sweep of stale sealed copies, awaited before a new copy

function load() {
  try { return JSON.parse(localStorage.getItem(KEY)) || []; } catch { return []; }
}
function save() { localStorage.setItem(KEY, JSON.stringify(records)); }
function mine() { return records.filter((r) => r.tenant === session?.subject); }

export function stop() {
  for (const u of live.values()) u.abort();
  live.clear();
  active = 0;
}

/** The "send files" card and the transfers table. */
export function section(s) {
  session = s;
  // Accepted transfers are in the results list; only the unfinished stay listed here.
  // The same objects are kept: transfers under way update them (a language switch
  // draws this section again).
  records = records.filter((r) => r.state !== "accepted" || live.has(r.key) || r.tenant !== s.subject);
  // A transfer this page did not start was cut by a closed tab: resumable from its
  // sealed copy, or lost if it was still being sealed.
  for (const r of mine()) {
    if (!live.has(r.key) && ["queued", "sealing", "uploading", "paused"].includes(r.state)) {
      r.state = r.sealedDone ? "interrupted" : "lost";
    }
  }
  save();
  // Once per page, before this page starts anything: copies no transfer can resume go.
  if (!sweeping) {
    const resumable = ["queued", "sealing", "uploading", "paused", "interrupted"];
    sweeping = SealedCopy.sweep(new Set(records.filter((r) => resumable.includes(r.state)).map((r) => r.key)));
  }
  const files = el("input", { id: "pick-files", type: "file", multiple: true });
  const folder = el("input", { id: "pick-folder", type: "file", multiple: true, webkitdirectory: true });
  const precheck = el("input", { id: "precheck", type: "checkbox" });
  const request = el("input", { id: "request-id", type: "text", autocomplete: "off" });
  const options = () => ({ precheck: precheck.checked, requestId: request.value.trim() });
  files.addEventListener("change", () => { add([...files.files].map((f) => ({ file: f, path: f.name })), options()); files.value = ""; });
  folder.addEventListener("change", () => {
    add([...folder.files].map((f) => ({ file: f, path: f.webkitRelativePath || f.name })), options());
    folder.value = "";
  });
  const drop = el("div", { class: "drop", id: "drop" },
    el("p", { text: t("upload.drop") }),
    el("div", { class: "row" },
      el("div", { class: "field" }, el("label", { for: "pick-files", text: t("upload.files") }), files),
      el("div", { class: "field" }, el("label", { for: "pick-folder", text: t("upload.folder") }), folder)));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", async (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    add(await dropped(e.dataTransfer), options());
  });
  tbody = el("tbody", { id: "transfers-body" });
  draw();
  return el("section", { "aria-labelledby": "upload-h" },
    el("h2", { id: "upload-h", text: t("upload.heading") }),
    el("div", { class: "card" },
      drop,
      el("div", { class: "row" },
        el("div", { class: "field" }, el("label", { for: "request-id", text: t("upload.request") }), request),
        el("div", {}, precheck, " ", el("label", { for: "precheck", text: t("upload.precheck") }))),
      el("p", { class: "note", text: t("upload.sealed") })),
    el("h2", { id: "transfers-h", text: t("transfers.heading") }),
    el("table", { id: "transfers", "aria-labelledby": "transfers-h" },
      el("thead", {}, el("tr", {},
        ["col.name", "col.size", "col.state", "col.progress", "col.actions"].map((k) => el("th", { scope: "col", text: t(k) })))),
      tbody));
}

// Folders dropped keep their relative paths (`case-7/DICOM/IM1`): the gateway checks a
// DICOMDIR set by its folder.
async function dropped(dt) {
  const out = [];
  const walk = async (entry) => {
    if (entry.isFile) {
      const file = await new Promise((ok, bad) => entry.file(ok, bad));
      out.push({ file, path: entry.fullPath.replace(/^\//, "") });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((ok, bad) => reader.readEntries(ok, bad));
        if (!batch.length) break;
        for (const e of batch) await walk(e);
      }
    }
  };
  const entries = [...dt.items].map((i) => i.webkitGetAsEntry?.()).filter(Boolean);
  if (entries.length) for (const e of entries) await walk(e);
  else for (const f of dt.files) out.push({ file: f, path: f.name });
  return out;
}

function add(list, opts) {
  for (const { file, path } of list) {
    const rec = {
      key: crypto.randomUUID(), tenant: session.subject, name: path, size: file.size,
      state: "queued", sent: 0, sealed: 0, url: null, resumedFrom: null, error: null,
      precheck: opts.precheck, requestId: opts.requestId || null,
    };
    sources.set(rec.key, file);
    records.push(rec);
  }
  save();
  draw();
  pump();
}

function pump() {
  while (active < PARALLEL) {
    const next = mine().find((r) => r.state === "queued" && sources.has(r.key));
    if (!next) return;
    active++;
    // Taken at once: the next pump (when another transfer ends) must not start it again.
    set(next, { state: "sealing" });
    run(next).finally(() => { active--; pump(); });
  }
}

async function run(rec) {
  try {
    const file = sources.get(rec.key);
    await sweeping;
    const copy = await SealedCopy.create(rec.key);
    // The sealed size is known before a byte is sealed: tus creates the upload with it.
    await copy.begin(file, session.recipient);
    set(rec, { state: "uploading", sealed: copy.size, sealedBytes: 0 });
    const sealing = copy.seal((n) => { rec.sealedBytes = n; drawSoon(); })
      .then(() => { sources.delete(rec.key); set(rec, { sealedDone: copy.resumable, sealedBytes: copy.size }); });
    await Promise.all([sealing, send(rec, copy)]);
  } catch (e) {
    live.get(rec.key)?.abort();
    live.delete(rec.key);
    set(rec, { state: "error", error: String(e?.message || e) });
  }
}

function send(rec, copy) {
  return new Promise((done) => {
    const metadata = { filename: rec.name };
    if (rec.precheck) metadata.precheck = "1";
    if (rec.requestId) metadata.request_id = rec.requestId;
    const upload = new window.tus.Upload(copy, {
      endpoint: "/v1/uploads",
      fileReader: SealedCopy.reader(),
      uploadUrl: rec.url,
      chunkSize: CHUNK,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
      metadata,
      headers: { "X-CSRF-Token": csrfToken() },
      storeFingerprintForResuming: false,
      onShouldRetry: (err) => {
        const s = err.originalResponse ? err.originalResponse.getStatus() : 0;
        return s === 0 || s === 409 || s === 423 || s === 429 || s >= 500;
      },
      onUploadUrlAvailable: () => set(rec, { url: upload.url }),
      onAfterResponse: (req, res) => {
        if (req.getMethod() === "HEAD" && rec.resumedFrom === null) {
          set(rec, { resumedFrom: Number(res.getHeader("Upload-Offset") || 0) });
        }
      },
      onProgress: (sent) => { rec.sent = sent; drawSoon(); },
      onChunkComplete: (_, acked) => set(rec, { acked }),
      onSuccess: async () => {
        live.delete(rec.key);
        set(rec, { state: "accepted", sent: rec.sealed, error: null });
        await SealedCopy.remove(rec.key);
        window.dispatchEvent(new CustomEvent("gw-upload-accepted", { detail: { name: rec.name } }));
        done();
      },
      onError: (err) => {
        live.delete(rec.key);
        set(rec, { state: "error", error: problem(err) });
        done();
      },
    });
    live.set(rec.key, upload);
    upload.start();
  });
}

function problem(err) {
  try {
    const p = JSON.parse(err.originalResponse.getBody());
    return `${p.detail} (${p.code})`;
  } catch {
    return String(err?.message || err).split("\n")[0];
  }
}

function pause(rec) {
  live.get(rec.key)?.abort();
  set(rec, { state: "paused" });
}

async function resume(rec) {
  const upload = live.get(rec.key);
  if (upload) {
    set(rec, { state: "uploading" });
    upload.start();
    return;
  }
  const copy = await SealedCopy.reopen(rec.key, rec.sealed);
  if (!copy) { set(rec, { state: "lost" }); return; }
  set(rec, { state: "uploading", resumedFrom: null });
  active++;
  send(rec, copy).finally(() => { active--; pump(); });
}

async function remove(rec) {
  live.get(rec.key)?.abort(true).catch(() => {});
  live.delete(rec.key);
  sources.delete(rec.key);
  await SealedCopy.remove(rec.key);
  records = records.filter((r) => r.key !== rec.key);
  save();
  draw();
}

function set(rec, changes) {
  const before = rec.state;
  Object.assign(rec, changes);
  save();
  if (changes.state && changes.state !== before && changes.state === "error") announce(`${rec.name}: ${t("state.error")}`);
  draw();
}

let pending = false;
function drawSoon() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; draw(); });
}

function draw() {
  if (!tbody) return;
  const list = mine();
  if (!list.length) {
    tbody.replaceChildren(el("tr", {}, el("td", { colspan: 5, text: t("transfers.none") })));
    return;
  }
  tbody.replaceChildren(...list.map((r) => {
    const total = r.sealed || r.size;
    const label = `${r.name}: ${t(`state.${r.state}`)}`;
    const buttons = [];
    if (r.state === "uploading") buttons.push(el("button", { type: "button", class: "secondary", "data-action": "pause", onclick: () => pause(r), text: t("btn.pause") }));
    if (["paused", "interrupted"].includes(r.state)) buttons.push(el("button", { type: "button", "data-action": "resume", onclick: () => resume(r), text: t("btn.resume") }));
    if (r.state !== "uploading" && r.state !== "sealing") buttons.push(el("button", { type: "button", class: "secondary", "data-action": "remove", onclick: () => remove(r), text: t("btn.remove") }));
    return el("tr", { "data-name": r.name, "data-state": r.state, "data-resumed-from": r.resumedFrom ?? "", "data-acked": r.acked ?? 0,
      "data-sealed": r.sealed && r.sealedBytes >= r.sealed ? "1" : "0" },
      el("td", { text: r.name }),
      el("td", { class: "num", text: bytes(r.size) }),
      el("td", {}, el("span", { class: `badge ${r.state}`, text: t(`state.${r.state}`) }),
        r.state === "uploading" && r.sealed && r.sealedBytes < r.sealed
          ? el("div", { class: "note", text: `${t("state.sealing")} ${Math.floor((100 * r.sealedBytes) / r.sealed)}%` }) : null,
        r.error ? el("div", { class: "error-text", text: r.error }) : null),
      el("td", {}, el("progress", { max: total || 1, value: Math.min(r.sent, total), "aria-label": label })),
      el("td", {}, el("div", { class: "actions" }, buttons)));
  }));
}
