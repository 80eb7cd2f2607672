// The web console in a real browser: Debian's chromium, headless, driven by
// puppeteer-core, against the real gateway binary that tests/tests/console.rs starts.
// It signs in, uploads a folder (a DICOMDIR set) and PDFs sealed in the page, watches
// the statuses change without a reload, downloads an error report, resumes an upload
// after its page was closed, switches language, runs axe-core on every page, and signs
// a reviewer in to filter, download and list studies. Everything it learns is printed
// as one JSON line for the Rust side to check against the gateway.
//
// Env: GW (https://127.0.0.1:port), TOKEN_A, TOKEN_R, CODE_A, OTHER_NAME (a file of
// another hospital that must never appear), SET_DIR, GOOD, BAD, BIG, PRE (sent as a
// pre-check), OUT (downloads),
// DROP_DIR (a folder dropped on the page), SHOTS (screenshots).
import fs from "node:fs";
import path from "node:path";
import puppeteer from "puppeteer-core";

const env = (k) => {
  if (!process.env[k]) throw new Error(`missing env ${k}`);
  return process.env[k];
};
const GW = env("GW");
const ORIGIN = new URL(GW).origin;
const OUT = env("OUT");
const SHOTS = env("SHOTS");
const OTHER = env("OTHER_NAME");
const AXE = fs.readFileSync(new URL("./node_modules/axe-core/axe.min.js", import.meta.url), "utf8");
const report = { steps: [], axe: {}, foreign: [], csp: [], navigations: 0 };

function step(name) {
  report.steps.push(name);
  process.stderr.write(`console test: ${name}\n`);
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

async function until(what, fn, ms = 60_000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

// Every request the page makes must stay on the gateway's origin; every CSP violation
// is recorded (there must be none).
async function watch(page) {
  // A browser in Taiwan: navigator.languages starts with zh-TW.
  const cdp = await page.createCDPSession();
  await cdp.send("Emulation.setUserAgentOverride", { userAgent: await page.browser().userAgent(), acceptLanguage: "zh-TW,zh;q=0.9,en;q=0.8" });
  page.on("request", (req) => {
    const u = req.url();
    if (!u.startsWith("data:") && new URL(u).origin !== ORIGIN) report.foreign.push(u);
  });
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/.test(m.text())) report.csp.push(m.text());
  });
  page.on("pageerror", (e) => report.csp.push(`page error: ${e.message}`));
  await page.evaluateOnNewDocument(() => {
    document.addEventListener("securitypolicyviolation", (e) => console.error(`Refused to (CSP) ${e.violatedDirective} ${e.blockedURI}`));
  });
}

async function axe(page, name) {
  await page.evaluate(AXE);
  const r = await page.evaluate(async () => {
    const res = await window.axe.run(document, { resultTypes: ["violations"] });
    return res.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
  });
  report.axe[name] = r;
  const serious = r.filter((v) => v.impact === "serious" || v.impact === "critical");
  check(serious.length === 0, `axe on ${name}: ${JSON.stringify(serious)}`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

async function signIn(page, token) {
  await page.goto(`${GW}/console/`, { waitUntil: "domcontentloaded" });
  await page.waitForSelector("#token");
  await page.type("#token", token);
  await page.click("#sign-in button[type=submit]");
}

async function downloads(page) {
  const cdp = await page.browser().target().createCDPSession();
  await cdp.send("Browser.setDownloadBehavior", {
    behavior: "allow", downloadPath: OUT, eventsEnabled: true, browserContextId: page.browserContext().id,
  });
}

async function downloaded(file, ms = 30_000) {
  return until(`download ${file}`, () => {
    const p = path.join(OUT, file);
    return fs.existsSync(p) && !fs.existsSync(`${p}.crdownload`) && fs.statSync(p).size > 0 ? p : null;
  }, ms).catch((e) => { throw new Error(`${e.message}; ${OUT} holds: ${fs.readdirSync(OUT)}`); });
}

const rowStatus = (page, name) =>
  page.$eval(`#results-body tr[data-name="${name}"]`, (tr) => tr.dataset.status).catch(() => null);

async function hospital(browser) {
  const ctx = await browser.createBrowserContext();
  let page = await ctx.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  await watch(page);
  await downloads(page);
  page.on("framenavigated", (f) => { if (f === page.mainFrame()) report.navigations++; });

  step("sign-in page, in the browser's language (zh-TW)");
  await page.goto(`${GW}/console/`, { waitUntil: "domcontentloaded" });
  await page.waitForSelector("#token");
  check(await page.$eval("html", (h) => h.lang) === "zh-Hant-TW", "html lang is zh-Hant-TW");
  check((await page.$eval("#sign-in h2", (h) => h.textContent)) === "登入", "sign-in heading in Chinese");
  await axe(page, "sign-in");
  await shot(page, "sign-in");

  step("a wrong token is refused with its code");
  await page.type("#token", "not-a-token");
  await page.click("#sign-in button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#sign-in-error").textContent.includes("auth.token_invalid"));

  step("sign in with the hospital's token");
  await page.$eval("#token", (i) => { i.value = ""; });
  await page.type("#token", env("TOKEN_A"));
  await page.click("#sign-in button[type=submit]");
  await page.waitForSelector("#results");
  const cookie = (await page.cookies()).find((c) => c.name === "gw_console");
  check(cookie && cookie.httpOnly && cookie.secure && cookie.sameSite === "Strict", `cookie flags ${JSON.stringify(cookie)}`);
  check(await page.evaluate(() => !document.cookie.includes("gw_console")), "the page's script cannot read the cookie");

  step("a request without the CSRF token is refused");
  const csrf = await page.evaluate(async () => {
    const r = await fetch("/v1/uploads", { method: "POST", headers: { "Tus-Resumable": "1.0.0", "Upload-Length": "10", "Upload-Metadata": "filename eC5wZGY=" } });
    return { status: r.status, code: (await r.json()).code };
  });
  check(csrf.status === 403 && csrf.code === "auth.csrf", `no CSRF token: ${JSON.stringify(csrf)}`);

  step("upload a folder (DICOMDIR set) and two PDFs, sealed in the page");
  const folder = await page.$("#pick-folder");
  await folder.uploadFile(env("SET_DIR"));
  const files = await page.$("#pick-files");
  await files.uploadFile(env("GOOD"), env("BAD"));
  const setName = path.basename(env("SET_DIR"));
  const good = path.basename(env("GOOD"));
  const bad = path.basename(env("BAD"));

  step("drop another folder (a second DICOMDIR set) on the page");
  const dropName = path.basename(env("DROP_DIR"));
  const box = await (await page.$("#drop")).boundingBox();
  const at = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
  const input = await page.createCDPSession();
  const data = { items: [], files: [env("DROP_DIR")], dragOperationsMask: 1 };
  for (const type of ["dragEnter", "dragOver", "drop"]) {
    await input.send("Input.dispatchDragEvent", { type, ...at, data });
  }
  await until("every transfer accepted", async () => {
    const states = await page.$$eval("#transfers-body tr[data-state]", (rows) => rows.map((r) => [r.dataset.name, r.dataset.state]));
    const failed = states.filter(([, s]) => s === "error" || s === "lost");
    check(failed.length === 0, `transfers failed: ${JSON.stringify(failed)}`);
    const dropped = states.filter(([n]) => n.startsWith(`${dropName}/`));
    return dropped.length > 0 && states.every(([, s]) => s === "accepted") ? states : null;
  }, 120_000);
  const sent = await page.$$eval("#transfers-body tr[data-state]", (rows) => rows.map((r) => r.dataset.name));
  report.sent = sent;
  check(sent.includes(`${setName}/DICOMDIR`), `the chosen folder kept its paths: ${sent}`);
  check(sent.includes(`${dropName}/DICOMDIR`), `the dropped folder kept its paths: ${sent}`);

  step("statuses change to passed and failed without a reload");
  await until("good passed, bad failed, the set passed", async () => {
    const names = await page.$$eval("#results-body tr[data-name]", (rows) => rows.map((r) => [r.dataset.name, r.dataset.status]));
    report.last_rows = names;
    const of = Object.fromEntries(names);
    const sets = names.filter(([n]) => n.startsWith(`${setName}/`) || n.startsWith(`${dropName}/`));
    return of[good] === "passed" && of[bad] === "failed" && sets.length === sent.length - 2 && sets.every(([, s]) => s === "passed");
  }, 120_000).catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(report.last_rows)}`); });
  check(report.navigations === 1, `no reload (navigations: ${report.navigations})`);
  check(await page.$eval(`#results-body tr[data-name="${good}"] .badge`, (b) => b.textContent) === "檢核正確", "passed reads 檢核正確");
  check(await page.$eval(`#results-body tr[data-name="${bad}"] .badge`, (b) => b.textContent) === "檢核失敗", "failed reads 檢核失敗");

  step("the error report of the failed file: shown, downloaded");
  await page.click(`#results-body tr[data-name="${bad}"] button`);
  await page.waitForSelector("a[data-report]");
  const said = await page.$eval('li[data-code="pdf.invalid"]', (li) => li.textContent);
  check(said.includes("PDF 檔案無法解析"), `the finding in Chinese: ${said}`);
  await shot(page, "hospital-results-zh");
  await page.click("a[data-report]");
  const reportFile = await downloaded(`${bad}.result.txt`);
  const text = fs.readFileSync(reportFile, "utf8");
  check(text.includes("檢核失敗"), `the report says 檢核失敗: ${text}`);
  report.error_report = text;
  await axe(page, "hospital-zh");

  step("a pre-check: checked, marked, never indexed");
  await page.click("#precheck");
  await (await page.$("#pick-files")).uploadFile(env("PRE"));
  await page.click("#precheck");
  const pre = `precheck/${path.basename(env("PRE"))}`;
  await until("the pre-check passed", async () => (await rowStatus(page, pre)) === "passed", 120_000);
  const marked = await page.$eval(`#results-body tr[data-name="${pre}"] td`, (td) => td.textContent);
  check(marked.includes("預檢"), `the pre-check is marked: ${marked}`);

  step("the folder's result list (上傳結果清單), downloaded");
  await page.type("#summary-folder", setName);
  await page.click("#summary-csv");
  const csv = fs.readFileSync(await downloaded(`results-${setName}.csv`), "utf8");
  check(csv.includes('"DICOMDIR",passed') && !csv.includes(good), `the set's list only: ${csv}`);
  report.summary_csv = csv;

  step("resume an upload after its page is closed");
  const big = path.basename(env("BIG"));
  await page.emulateNetworkConditions({ offline: false, download: -1, upload: 3 * 1024 * 1024, latency: 0 });
  await (await page.$("#pick-files")).uploadFile(env("BIG"));
  await until("the first part of the big file acknowledged", () =>
    page.$eval(`#transfers-body tr[data-name="${big}"]`, (tr) => Number(tr.dataset.acked) > 0), 120_000);
  const before = await page.$eval(`#transfers-body tr[data-name="${big}"]`, (tr) => Number(tr.dataset.acked));
  await page.close();
  page = await ctx.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  await watch(page);
  await downloads(page);
  await page.goto(`${GW}/console/`, { waitUntil: "domcontentloaded" });
  await page.waitForSelector(`#transfers-body tr[data-name="${big}"][data-state="interrupted"]`);
  await shot(page, "hospital-interrupted-zh");
  await page.click(`#transfers-body tr[data-name="${big}"] button[data-action=resume]`);
  await until("the big file accepted after resuming", () =>
    page.$eval(`#transfers-body tr[data-name="${big}"]`, (tr) => tr.dataset.state === "accepted"), 180_000);
  const resumedFrom = await page.$eval(`#transfers-body tr[data-name="${big}"]`, (tr) => Number(tr.dataset.resumedFrom));
  check(resumedFrom >= before && resumedFrom > 0, `resumed from ${resumedFrom}, ${before} acknowledged before the close`);
  report.resume = { acknowledged_before_close: before, resumed_from: resumedFrom };
  const left = await until("no sealed copy left in the browser's storage", () => page.evaluate(async () => {
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle("sealed", { create: true });
    const names = [];
    for await (const n of dir.keys()) names.push(n);
    return names.length === 0 ? "empty" : null;
  }), 10_000);
  check(left === "empty", "sealed copies are removed once accepted");
  await until("the big file passed", async () => (await rowStatus(page, big)) === "passed", 120_000);

  step("switch language to English");
  await page.click("#lang");
  await page.waitForFunction(() => document.documentElement.lang === "en");
  check(await page.$eval("#results-h", (h) => h.textContent) === "Check results", "English heading");
  check(await page.$eval(`#results-body tr[data-name="${good}"] .badge`, (b) => b.textContent) === "Passed", "Passed in English");
  await page.click(`#results-body tr[data-name="${bad}"] button`);
  await page.waitForSelector("a[data-report]");
  await axe(page, "hospital-en");
  await shot(page, "hospital-results-en");

  step("another hospital's files never appear");
  check(!(await page.content()).includes(OTHER), "the other hospital's file is not on the page");
  const listed = await page.evaluate(async () => (await (await fetch("/v1/uploads?limit=500")).json()).uploads.map((u) => u.name));
  check(!listed.includes(OTHER), "nor in the API answer the page reads");
  report.hospital_uploads = listed;
  await page.click("#lang"); // back to Chinese for the next context's first look
  await ctx.close();
}

async function reviewer(browser) {
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  await watch(page);
  await downloads(page);
  step("reviewer signs in");
  await signIn(page, env("TOKEN_R"));
  await page.waitForSelector("#files-body tr[data-file]");
  const hospitals = await page.$$eval("#f-tenant option", (o) => o.map((x) => x.value).filter(Boolean));
  check(JSON.stringify(hospitals) === JSON.stringify([env("CODE_A")]), `only the granted hospital: ${hospitals}`);

  step("reviewer filters by type and downloads a file");
  await page.select("#f-type", "pdf");
  await page.click("#files-search");
  await until("only PDFs listed", async () => {
    const types = await page.$$eval("#files-body tr[data-file] td:nth-child(3)", (c) => c.map((x) => x.textContent));
    return types.length >= 2 && types.every((t) => t === "application/pdf");
  });
  const tenants = await page.$$eval("#files-body tr[data-file]", (r) => r.map((x) => x.dataset.tenant));
  check(!(await page.content()).includes(path.basename(env("PRE"))), "a pre-check is never indexed");
  check(tenants.every((t) => t === env("CODE_A")), `only the granted hospital's files: ${tenants}`);
  check(!(await page.content()).includes(OTHER), "the other hospital's file is not listed");
  const good = path.basename(env("GOOD"));
  const row = await page.$$eval("#files-body tr[data-file] button", (b, n) => b.findIndex((x) => x.textContent === n), good);
  check(row >= 0, `${good} is listed`);
  await (await page.$$("#files-body tr[data-file] button"))[row].click();
  await page.waitForSelector("#file-download");
  const findings = await page.$$eval("#file-card li[data-code]", (li) => li.map((x) => x.dataset.code));
  check(findings.includes("pdf.structure"), `the file's findings are shown: ${findings}`);
  await axe(page, "reviewer-files");
  await shot(page, "reviewer-files-zh");
  await page.click("#file-download");
  report.reviewer_download = await downloaded(good);
  await page.type("#sealed-to", env("REVIEWER_RECIPIENT"));
  await page.click("#file-sealed");
  report.reviewer_sealed_download = await downloaded(`${good}.age`);

  step("reviewer lists a hospital's DICOM studies");
  await page.click("#tab-studies");
  await page.waitForSelector("#studies-body tr[data-study]");
  const studies = await page.$$eval("#studies-body tr[data-study]", (rows) => rows.map((r) => ({
    uid: r.dataset.study, series: Number(r.children[4].textContent), instances: Number(r.children[5].textContent),
  })));
  report.studies = studies;
  await axe(page, "reviewer-studies");
  await shot(page, "reviewer-studies-zh");
  await ctx.close();
}

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--ignore-certificate-errors", "--lang=zh-TW", "--disable-dev-shm-usage"],
  env: { ...process.env, LANGUAGE: "zh_TW" },
});
let failed = null;
try {
  await hospital(browser);
  await reviewer(browser);
  check(report.foreign.length === 0, `requests to other origins: ${report.foreign}`);
  check(report.csp.length === 0, `CSP violations or page errors: ${report.csp}`);
} catch (e) {
  failed = e;
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(report)}\n`);
if (failed) {
  process.stderr.write(`console test failed after steps ${JSON.stringify(report.steps)}: ${failed.stack || failed}\n`);
  process.exit(1);
}
