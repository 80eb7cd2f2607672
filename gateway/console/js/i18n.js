// Words of the console in Traditional Chinese (the hospitals' language, with the
// seeds' own terms: 檢核中, 檢核正確, 檢核失敗, 檢核錯誤明細表) and English. The
// language comes from the browser, and the switch in the header keeps the choice.

const WORDS = {
  "zh-TW": {
    title: "醫療檔案上傳閘道", skip: "跳至主要內容", loading: "載入中…",
    "lang.switch": "English", "lang.label": "Switch to English",
    "signin.heading": "登入", "signin.token": "API 權杖", "signin.submit": "登入",
    "signin.cert": "以用戶端憑證登入", "signin.help": "請輸入醫院或審查單位的 API 權杖；已註冊用戶端憑證者可直接以憑證登入。",
    "signin.failed": "登入失敗：{detail}", signout: "登出", "signedin": "{name}（{code}）",
    "upload.heading": "上傳檔案", "upload.drop": "將檔案或整個資料夾拖放到此處",
    "upload.files": "選擇檔案", "upload.folder": "選擇資料夾",
    "upload.precheck": "僅預檢（只檢核，不送件）", "upload.request": "調閱案件編號（選填）",
    "upload.sealed": "檔案在本瀏覽器內以閘道的公鑰加密後才傳送，明文不會離開這台電腦。",
    "transfers.heading": "本瀏覽器的傳送", "transfers.none": "目前沒有傳送中的檔案。",
    "col.name": "檔名", "col.size": "大小", "col.state": "狀態", "col.progress": "進度", "col.actions": "操作",
    "col.received": "已收", "col.download": "下載狀態", "col.hospital": "醫院", "col.type": "類型",
    "col.indexed": "索引時間", "col.request": "調閱案件編號",
    "state.queued": "排隊中", "state.sealing": "加密中", "state.uploading": "傳送中", "state.paused": "已暫停",
    "state.interrupted": "已中斷，可續傳", "state.accepted": "已收件", "state.error": "傳送失敗", "state.lost": "已中斷（需重新選擇檔案）",
    "btn.pause": "暫停", "btn.resume": "續傳", "btn.remove": "移除", "btn.details": "檢核內容",
    "btn.hide": "收合", "btn.report": "下載檢核錯誤明細表", "btn.print": "列印",
    "results.heading": "檢核結果", "results.live": "檢核完成時即時更新，無需重新整理。", "results.none": "尚無上傳紀錄。",
    "results.summary": "上傳結果清單", "results.precheck": "預檢", "results.folder": "資料夾（空白＝全部）", "results.csv": "下載 CSV", "results.txt": "下載文字檔",
    "status.receiving": "傳送中", "status.checking": "檢核中", "status.passed": "檢核正確", "status.failed": "檢核失敗", "status.expired": "已過期",
    "download.ready": "待下載", "download.downloaded": "已下載", "download.expired": "已逾保存期限", "download.expired_unread": "逾期未下載",
    "sev.info": "正確", "sev.warning": "警告", "sev.error": "錯誤",
    "findings.heading": "{name} 的檢核內容", "findings.none": "尚無檢核內容。", "findings.precheck": "預檢：僅檢核，不送件。",
    "report.title": "檢核錯誤明細表",
    "files.heading": "檔案", "files.search": "查詢", "files.none": "沒有符合條件的檔案。", "files.more": "下一頁",
    "filter.hospital": "醫院", "filter.any": "全部", "filter.live": "未逾期", "download.any": "全部（含已取代）", "filter.type": "類型", "filter.request": "調閱案件編號",
    "filter.patient": "病歷號", "filter.modality": "檢查類型", "filter.from": "索引起日", "filter.to": "索引迄日",
    "file.heading": "檔案內容", "file.download": "下載", "file.sealed": "加密下載（以您的公鑰）", "file.close": "關閉",
    "file.sealed_only": "您的帳號只接受加密下載。", "file.recipient": "加密下載的 age 公鑰", "file.sealed_to": "加密下載",
    "tab.files": "檔案", "tab.studies": "影像檢查",
    "studies.heading": "{hospital} 的影像檢查", "studies.none": "沒有影像檢查。", "studies.patient": "病患",
    "studies.date": "檢查日期", "studies.description": "描述", "studies.modalities": "檢查類型",
    "studies.series": "系列數", "studies.instances": "影像數",
    "announce.accepted": "{name} 已收件，檢核中。", "announce.checked": "檢核結果已更新。",
    "err.offline": "無法連線到閘道，稍後自動重試。",
  },
  en: {
    title: "Records gateway", skip: "Skip to content", loading: "Loading…",
    "lang.switch": "中文", "lang.label": "切換為中文",
    "signin.heading": "Sign in", "signin.token": "API token", "signin.submit": "Sign in",
    "signin.cert": "Sign in with my client certificate", "signin.help": "Enter your hospital's or reviewer's API token; a registered client certificate signs in without one.",
    "signin.failed": "Sign-in refused: {detail}", signout: "Sign out", "signedin": "{name} ({code})",
    "upload.heading": "Send files", "upload.drop": "Drop files or whole folders here",
    "upload.files": "Choose files", "upload.folder": "Choose a folder",
    "upload.precheck": "Pre-check only (checked, not submitted)", "upload.request": "Request ID (optional)",
    "upload.sealed": "Files are sealed in this browser to the gateway's key before they are sent; no plaintext leaves this computer.",
    "transfers.heading": "Transfers from this browser", "transfers.none": "Nothing is being sent.",
    "col.name": "Name", "col.size": "Size", "col.state": "State", "col.progress": "Progress", "col.actions": "Actions",
    "col.received": "Received", "col.download": "Download state", "col.hospital": "Hospital", "col.type": "Type",
    "col.indexed": "Indexed", "col.request": "Request ID",
    "state.queued": "Queued", "state.sealing": "Sealing", "state.uploading": "Sending", "state.paused": "Paused",
    "state.interrupted": "Interrupted — can resume", "state.accepted": "Received", "state.error": "Not sent", "state.lost": "Interrupted (choose the file again)",
    "btn.pause": "Pause", "btn.resume": "Resume", "btn.remove": "Remove", "btn.details": "Findings",
    "btn.hide": "Hide", "btn.report": "Download error report", "btn.print": "Print",
    "results.heading": "Check results", "results.live": "Updated as checks finish, without reloading.", "results.none": "No uploads yet.",
    "results.summary": "Result list of a batch", "results.precheck": "pre-check", "results.folder": "Folder (empty = all)", "results.csv": "Download CSV", "results.txt": "Download text",
    "status.receiving": "Receiving", "status.checking": "Checking", "status.passed": "Passed", "status.failed": "Failed", "status.expired": "Expired",
    "download.ready": "Ready", "download.downloaded": "Downloaded", "download.expired": "Retention ended", "download.expired_unread": "Expired unread",
    "sev.info": "OK", "sev.warning": "Warning", "sev.error": "Error",
    "findings.heading": "Findings for {name}", "findings.none": "No findings yet.", "findings.precheck": "Pre-check: checked only, not submitted.",
    "report.title": "Error report",
    "files.heading": "Files", "files.search": "Search", "files.none": "No file matches.", "files.more": "Next page",
    "filter.hospital": "Hospital", "filter.any": "Any", "filter.live": "Not expired", "download.any": "All (with superseded)", "filter.type": "Type", "filter.request": "Request ID",
    "filter.patient": "Patient ID", "filter.modality": "Modality", "filter.from": "Indexed from", "filter.to": "Indexed to",
    "file.heading": "File", "file.download": "Download", "file.sealed": "Download sealed (to your key)", "file.close": "Close",
    "file.sealed_only": "Your account receives sealed downloads only.", "file.recipient": "age recipient for a sealed download", "file.sealed_to": "Download sealed",
    "tab.files": "Files", "tab.studies": "DICOM studies",
    "studies.heading": "DICOM studies of {hospital}", "studies.none": "No studies.", "studies.patient": "Patient",
    "studies.date": "Study date", "studies.description": "Description", "studies.modalities": "Modalities",
    "studies.series": "Series", "studies.instances": "Instances",
    "announce.accepted": "{name} received; checking.", "announce.checked": "Check results updated.",
    "err.offline": "The gateway cannot be reached; retrying.",
  },
};

const HTML_LANG = { "zh-TW": "zh-Hant-TW", en: "en" };
let current = pick();

function pick() {
  const saved = localStorage.getItem("gw-lang");
  if (saved && WORDS[saved]) return saved;
  const wanted = navigator.languages || [navigator.language || "en"];
  return wanted.some((l) => l.toLowerCase().startsWith("zh")) ? "zh-TW" : "en";
}

export function lang() { return current; }

export function setLang(l) {
  current = WORDS[l] ? l : "en";
  localStorage.setItem("gw-lang", current);
  document.documentElement.lang = HTML_LANG[current];
  document.title = t("title");
}

export function toggle() { setLang(current === "en" ? "zh-TW" : "en"); }

export function t(key, vars = {}) {
  const s = WORDS[current][key] ?? WORDS.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
}

/** Fills every `data-i18n` element under `root` with its words. */
export function apply(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
}
