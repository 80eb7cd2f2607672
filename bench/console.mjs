// One console upload timed in a real browser (headless Debian chromium through
// puppeteer-core, from tests/browser/node_modules): sign in, choose FILE, and time
// until its last byte is sealed (age-encryption in a worker, into OPFS), until it is
// accepted (tus-js-client, 8 MiB PATCHes sent while sealing goes on), and until the
// gateway's admin metrics count it checked. Prints one JSON line:
// {seal_s, send_s, total_s} — send_s is from the end of sealing to acceptance (the
// sending that did not overlap). Used by bench/run-console.sh.
//
// Env: GW (https://host:port), ADMIN (host:port), TOKEN, FILE, CHECKED (the checked
// count to wait for).
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(new URL("../tests/browser/package.json", import.meta.url));
const puppeteer = require("puppeteer-core");

const { GW, ADMIN, TOKEN, FILE, CHECKED } = process.env;
const name = path.basename(FILE);

async function checked() {
  const text = await (await fetch(`http://${ADMIN}/metrics`)).text();
  return text.split("\n").filter((l) => l.startsWith("gateway_uploads_checked_total"))
    .reduce((s, l) => s + Number(l.split(" ").pop()), 0);
}

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--ignore-certificate-errors", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage();
  await page.goto(`${GW}/console/`, { waitUntil: "domcontentloaded" });
  await page.waitForSelector("#token");
  await page.type("#token", TOKEN);
  await page.click("#sign-in button[type=submit]");
  await page.waitForSelector("#pick-files");
  const row = `#transfers-body tr[data-name="${name}"]`;
  const state = () => page.$eval(row, (tr) => [tr.dataset.state, tr.dataset.sealed]).catch(() => [null, "0"]);
  const start = performance.now();
  await (await page.$("#pick-files")).uploadFile(FILE);
  let sealed = null;
  for (;;) {
    const [s, whole] = await state();
    if (s === "error" || s === "lost") throw new Error(`transfer ${s}`);
    if (!sealed && (whole === "1" || s === "accepted")) sealed = performance.now();
    if (s === "accepted") break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const accepted = performance.now();
  while ((await checked()) < Number(CHECKED)) await new Promise((r) => setTimeout(r, 20));
  const done = performance.now();
  process.stdout.write(`${JSON.stringify({
    seal_s: (sealed - start) / 1000, send_s: (accepted - sealed) / 1000, total_s: (done - start) / 1000,
  })}\n`);
} finally {
  await browser.close();
}
