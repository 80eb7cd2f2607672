// A hospital's page: send files (transfers.js), and every upload with its check
// status, updated live from the hospital's event feed (a long poll), its findings, its
// error report (檢核錯誤明細表) to download or print, and its download state.
import { api, describe } from "./api.js";
import { t, lang } from "./i18n.js";
import { words } from "./findings.js";
import { el, bytes, announce, printText } from "./ui.js";
import * as transfers from "./transfers.js";

const STATUS = {
  receiving: "receiving", accepted: "checking", checking: "checking", indexed: "passed",
  rejected: "failed", prechecked: "passed", expired: "expired",
};

let session = null;
let uploads = [];
const results = new Map(); // upload id → its check result, read when its findings open
const open = new Set(); // upload ids whose findings are shown
let feedAbort = null;
let cursor = null;
let refreshTimer = null;
let tbody = null;

export function render(main, s) {
  session = s;
  const summaryFolder = el("input", { id: "summary-folder", type: "text" });
  const summaryLinks = el("span", { class: "actions" });
  const updateLinks = () => {
    const f = encodeURIComponent(summaryFolder.value.trim());
    summaryLinks.replaceChildren(
      el("a", { class: "button secondary", id: "summary-csv", href: `/v1/results/summary?folder=${f}&format=csv`,
        download: `results-${summaryFolder.value.trim() || "all"}.csv`, text: t("results.csv") }),
      el("a", { class: "button secondary", id: "summary-txt", href: `/v1/results/summary?folder=${f}&format=txt`,
        download: `results-${summaryFolder.value.trim() || "all"}.txt`, text: t("results.txt") }),
      el("button", { type: "button", class: "secondary", id: "summary-print", text: t("btn.print"),
        onclick: async () => printText(t("results.summary"), await api(`/v1/results/summary?folder=${f}&format=txt`)) }));
  };
  summaryFolder.addEventListener("input", updateLinks);
  updateLinks();
  tbody = el("tbody", { id: "results-body" });
  main.replaceChildren(
    transfers.section(session),
    el("section", { "aria-labelledby": "results-h" },
      el("h2", { id: "results-h", text: t("results.heading") }),
      el("p", { class: "note", text: t("results.live") }),
      el("table", { id: "results" },
        el("caption", { class: "visually-hidden", text: t("results.heading") }),
        el("thead", {}, el("tr", {},
          ["col.name", "col.state", "col.received", "col.download", "col.actions"].map((k) =>
            el("th", { scope: "col", text: t(k) })))),
        tbody),
      el("div", { class: "card" },
        el("h3", { text: t("results.summary") }),
        el("div", { class: "row" },
          el("div", { class: "field" }, el("label", { for: "summary-folder", text: t("results.folder") }), summaryFolder),
          summaryLinks))));
  draw();
  refresh();
  follow();
  window.removeEventListener("gw-upload-accepted", onAccepted);
  window.addEventListener("gw-upload-accepted", onAccepted);
}

export function stop() {
  feedAbort?.abort();
  feedAbort = null;
  clearTimeout(refreshTimer);
  transfers.stop();
}

function onAccepted(e) {
  announce(t("announce.accepted", { name: e.detail.name }));
  refresh();
}

// Also read again every 30 s: uploads from other channels change state without an
// event of their own until their check ends.
async function refresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, 30_000);
  try {
    const page = await api("/v1/uploads?limit=200");
    // The listing carries each upload's status and its file's download state; a result
    // (its findings) is read when it is opened, and again when its status changes.
    const before = new Map(uploads.map((u) => [u.id, u.status]));
    uploads = page.uploads;
    const changed = uploads.filter((u) => open.has(u.id) && before.has(u.id) && before.get(u.id) !== u.status);
    await Promise.all(changed.map(loadResult));
    draw();
  } catch (e) {
    if (e.status !== 401) console.warn("refresh", describe(e));
  }
}

async function loadResult(u) {
  try { results.set(u.id, await api(`/v1/uploads/${encodeURIComponent(u.id)}/result`)); } catch { /* shown as unknown */ }
}

// The hospital's own feed: each answer names what changed; the list is read again.
async function follow() {
  feedAbort?.abort();
  const abort = new AbortController();
  feedAbort = abort;
  while (!abort.signal.aborted) {
    try {
      if (cursor === null) {
        // Start from now: the list already shows the past.
        const first = await api("/v1/hospital/events?after=0&limit=1000", { signal: abort.signal });
        cursor = first.next;
        continue;
      }
      const page = await api(`/v1/hospital/events?after=${cursor}&wait=25`, { signal: abort.signal });
      cursor = page.next;
      if (page.events.length) {
        await refresh();
        announce(t("announce.checked"));
      }
    } catch (e) {
      if (abort.signal.aborted || e.status === 401) return;
      await new Promise((r) => setTimeout(r, 3000));
    }
  }
}

function statusOf(u) {
  return STATUS[u.status] || u.status;
}

function draw() {
  if (!tbody) return;
  if (!uploads.length) {
    tbody.replaceChildren(el("tr", {}, el("td", { colspan: 5, text: t("results.none") })));
    return;
  }
  const rows = [];
  for (const u of uploads) {
    const st = statusOf(u);
    const dl = u.download?.state;
    const shown = open.has(u.id);
    rows.push(el("tr", { "data-name": u.name, "data-status": st, "data-id": u.id },
      el("td", {}, u.name, u.name.startsWith("precheck/") ? [" ", el("span", { class: "badge accepted", text: t("results.precheck") })] : null),
      el("td", {}, el("span", { class: `badge ${st}`, text: t(`status.${st}`) })),
      el("td", { class: "num", text: bytes(u.received_bytes) }),
      el("td", {}, dl ? el("span", { class: `badge ${dl}`, "data-download": dl, text: t(`download.${dl}`) }) : ""),
      el("td", {}, el("button", { type: "button", class: "secondary", "aria-expanded": String(shown),
        "aria-controls": `f-${u.id}`, text: shown ? t("btn.hide") : t("btn.details"),
        onclick: () => toggle(u) }))));
    if (shown) rows.push(el("tr", { id: `f-${u.id}` }, el("td", { colspan: 5 }, findings(u))));
  }
  tbody.replaceChildren(...rows);
}

async function toggle(u) {
  if (open.has(u.id)) open.delete(u.id);
  else {
    open.add(u.id);
    await loadResult(u);
  }
  draw();
}

function findings(u) {
  const r = results.get(u.id);
  if (!r) return el("p", { text: t("findings.none") });
  const list = el("ul", { class: "findings" },
    r.checks.map((c) => finding(c)));
  const report = `/v1/uploads/${encodeURIComponent(u.id)}/result?format=txt`;
  return el("div", { class: "card" },
    el("h3", { text: t("findings.heading", { name: r.name }) }),
    r.precheck ? el("p", { class: "note", text: t("findings.precheck") }) : null,
    r.checks.length ? list : el("p", { text: t("findings.none") }),
    u.download ? el("p", {}, `${t("col.download")}: `, el("span", { class: `badge ${u.download.state}`, text: t(`download.${u.download.state}`) }),
      u.download.expires_at ? ` (${u.download.expires_at})` : "") : null,
    el("p", { class: "actions" },
      el("a", { class: "button secondary", href: report, download: `${r.name.split("/").pop()}.result.txt`,
        "data-report": u.id, text: t("btn.report") }),
      el("button", { type: "button", class: "secondary", text: t("btn.print"),
        onclick: async () => printText(t("report.title"), await api(report)) })));
}

/** One finding: severity, code, its words; in Chinese the English particulars follow. */
export function finding(c) {
  const w = words(c, lang());
  return el("li", { class: c.severity, "data-code": c.code },
    el("strong", { text: `${t(`sev.${c.severity}`)} ` }), el("code", { text: c.code }), ` — ${w.text}`,
    w.note ? el("div", { class: "note", lang: "en", text: w.note }) : null);
}
