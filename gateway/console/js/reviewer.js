// A reviewer's page: the file list with the filters of /v1/files, a file's metadata
// and findings with its downloads, and the DICOM studies of a hospital (QIDO-RS) with
// their series and instance counts. Only the hospitals the reviewer is granted appear.
import { api, describe } from "./api.js";
import { t } from "./i18n.js";
import { el, bytes } from "./ui.js";
import { finding } from "./hospital.js";

let session = null;
let tab = "files";
let panel = null;

export function render(main, s) {
  session = s;
  panel = el("div", { id: "panel" });
  const tabButton = (name) => el("button", {
    type: "button", role: "tab", id: `tab-${name}`, "aria-selected": String(tab === name),
    "aria-controls": "panel", text: t(`tab.${name}`), onclick: () => { tab = name; render(main, s); },
  });
  main.replaceChildren(el("div", { class: "tabs", role: "tablist" }, tabButton("files"), tabButton("studies")), panel);
  panel.setAttribute("role", "tabpanel");
  panel.setAttribute("aria-labelledby", `tab-${tab}`);
  if (tab === "files") files();
  else studies();
}

function hospitalSelect(id, any) {
  return el("select", { id },
    any ? el("option", { value: "", text: t("filter.any") }) : null,
    session.hospitals.map((h) => el("option", { value: h, text: h })));
}

function field(id, key, input) {
  return el("div", { class: "field" }, el("label", { for: id, text: t(key) }), input);
}

function files() {
  const f = {
    tenant: hospitalSelect("f-tenant", true),
    type: el("select", { id: "f-type" }, ["", "pdf", "dicom", "zip"].map((v) => el("option", { value: v, text: v || t("filter.any") }))),
    status: el("select", { id: "f-status" }, ["", "ready", "downloaded", "expired", "any"].map((v) =>
      el("option", { value: v, text: v ? t(`download.${v}`) : t("filter.live") }))),
    request_id: el("input", { id: "f-request", type: "text" }),
    patient_id: el("input", { id: "f-patient", type: "text" }),
    modality: el("input", { id: "f-modality", type: "text", size: 6 }),
    indexed_from: el("input", { id: "f-from", type: "date" }),
    indexed_to: el("input", { id: "f-to", type: "date" }),
  };
  const body = el("tbody", { id: "files-body" });
  const more = el("button", { type: "button", class: "secondary", id: "files-more", hidden: true, text: t("files.more") });
  const detail = el("section", { id: "file-detail", "aria-live": "polite" });
  let next = null;
  const search = async (append) => {
    const q = new URLSearchParams({ limit: "50" });
    for (const [k, input] of Object.entries(f)) if (input.value.trim()) q.set(k, input.value.trim());
    if (append && next) q.set("cursor", next);
    try {
      const page = await api(`/v1/files?${q}`);
      next = page.next;
      more.hidden = !page.more;
      const rows = page.files.map((file) => el("tr", { "data-file": file.id, "data-tenant": file.tenant },
        el("td", {}, el("button", { type: "button", class: "secondary", text: file.name, onclick: () => show(file.id, detail) })),
        el("td", { text: file.tenant }),
        el("td", { text: file.media_type }),
        el("td", { class: "num", text: bytes(file.size) }),
        el("td", { text: file.indexed_at }),
        el("td", {}, el("span", { class: `badge ${file.status}`, text: t(`download.${file.status === "expired" ? "expired" : file.status}`) }))));
      if (append) body.append(...rows);
      else body.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 6, text: t("files.none") }))]));
    } catch (e) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "error-text", text: describe(e) })));
    }
  };
  more.addEventListener("click", () => search(true));
  const form = el("form", { class: "card", id: "file-filters", onsubmit: (e) => { e.preventDefault(); search(false); } },
    el("div", { class: "row" },
      field("f-tenant", "filter.hospital", f.tenant), field("f-type", "filter.type", f.type),
      field("f-status", "col.download", f.status),
      field("f-request", "filter.request", f.request_id), field("f-patient", "filter.patient", f.patient_id),
      field("f-modality", "filter.modality", f.modality), field("f-from", "filter.from", f.indexed_from),
      field("f-to", "filter.to", f.indexed_to),
      el("button", { type: "submit", id: "files-search", text: t("files.search") })));
  panel.replaceChildren(
    el("h2", { text: t("files.heading") }), form,
    el("table", { id: "files" },
      el("caption", { class: "visually-hidden", text: t("files.heading") }),
      el("thead", {}, el("tr", {}, ["col.name", "col.hospital", "col.type", "col.size", "col.indexed", "col.download"]
        .map((k) => el("th", { scope: "col", text: t(k) })))),
      body),
    more, detail);
  search(false);
}

async function show(id, box) {
  try {
    const f = await api(`/v1/files/${encodeURIComponent(id)}`);
    const content = `/v1/files/${encodeURIComponent(id)}/content`;
    const base = f.name.split("/").pop();
    const meta = [["col.hospital", f.tenant], ["col.name", f.name], ["col.size", bytes(f.size)], ["col.type", f.media_type],
      ["col.indexed", f.indexed_at], ["col.request", f.request_id || ""], ["col.download", t(`download.${f.status}`)], ["SHA-256", f.sha256]];
    box.replaceChildren(el("div", { class: "card", id: "file-card", "data-file": f.id },
      el("h2", { text: `${t("file.heading")}: ${f.name}` }),
      el("dl", { class: "meta" }, meta.flatMap(([k, v]) => [el("dt", { text: k.includes(".") ? t(k) : k }), el("dd", { text: v })])),
      Array.isArray(f.result?.checks) ? el("ul", { class: "findings" }, f.result.checks.map(finding)) : null,
      el("details", {}, el("summary", { text: "metadata" }), el("pre", { text: JSON.stringify(f.metadata, null, 2) })),
      session.encrypted_downloads_only ? el("p", { class: "note", text: t("file.sealed_only") }) : null,
      el("p", { class: "actions" },
        f.status === "expired" ? null : el("a", { class: "button", id: "file-download", href: content,
          download: session.encrypted_downloads_only ? `${base}.age` : base,
          text: session.encrypted_downloads_only ? t("file.sealed") : t("file.download") }),
        el("button", { type: "button", class: "secondary", text: t("file.close"), onclick: () => box.replaceChildren() })),
      f.status === "expired" || session.encrypted_downloads_only ? null : sealedTo(content, base)));
    box.querySelector("h2").setAttribute("tabindex", "-1");
    box.querySelector("h2").focus();
  } catch (e) {
    box.replaceChildren(el("p", { class: "error-text", text: describe(e) }));
  }
}

// Encrypted download (rule 13): the content sealed to an age recipient the reviewer
// names, so it is never stored in the clear on the reviewer's machine.
function sealedTo(content, base) {
  const recipient = el("input", { id: "sealed-to", type: "text", autocomplete: "off", placeholder: "age1…", size: 40 });
  const link = el("a", { class: "button secondary", id: "file-sealed", href: content, download: `${base}.age`, text: t("file.sealed_to"), "aria-disabled": "true" });
  recipient.addEventListener("input", () => {
    const r = recipient.value.trim();
    link.href = `${content}?recipient=${encodeURIComponent(r)}`;
    link.setAttribute("aria-disabled", String(!r.startsWith("age1")));
  });
  return el("div", { class: "row" }, field("sealed-to", "file.recipient", recipient), link);
}

const TAG = { name: "00100010", id: "00100020", date: "00080020", desc: "00081030", mods: "00080061", series: "00201206", inst: "00201208", uid: "0020000D" };
const value = (study, tag) => {
  const v = study[tag]?.Value?.[0];
  return v && typeof v === "object" ? v.Alphabetic || "" : v ?? "";
};

function studies() {
  const hospital = hospitalSelect("s-hospital", false);
  const body = el("tbody", { id: "studies-body" });
  const heading = el("h2", { id: "studies-h" });
  const load = async () => {
    heading.textContent = t("studies.heading", { hospital: hospital.value });
    try {
      const q = new URLSearchParams({ hospital: hospital.value, includefield: "00081030,00201206,00201208,00080061", limit: "200" });
      const list = await api(`/dicomweb/studies?${q}`, { headers: { Accept: "application/dicom+json" } }) || [];
      body.replaceChildren(...(list.length ? list.map((s) => el("tr", { "data-study": value(s, TAG.uid) },
        el("td", { text: `${value(s, TAG.name)} (${value(s, TAG.id)})` }),
        el("td", { text: value(s, TAG.date) }),
        el("td", { text: value(s, TAG.desc) }),
        el("td", { text: (s[TAG.mods]?.Value || []).join(", ") }),
        el("td", { class: "num", text: value(s, TAG.series) }),
        el("td", { class: "num", text: value(s, TAG.inst) }))) : [el("tr", {}, el("td", { colspan: 6, text: t("studies.none") }))]));
    } catch (e) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "error-text", text: describe(e) })));
    }
  };
  hospital.addEventListener("change", load);
  panel.replaceChildren(heading,
    el("div", { class: "card" }, field("s-hospital", "filter.hospital", hospital)),
    el("table", { id: "studies", "aria-labelledby": "studies-h" },
      el("thead", {}, el("tr", {}, ["studies.patient", "studies.date", "studies.description", "studies.modalities", "studies.series", "studies.instances"]
        .map((k) => el("th", { scope: "col", text: t(k) })))),
      body));
  load();
}
