// The console's entry: language, sign-in, and the page of the signed-in role.
import { api, setCsrf, describe } from "./api.js";
import { t, toggle, setLang, lang, apply } from "./i18n.js";
import { el } from "./ui.js";
import * as hospital from "./hospital.js";
import * as reviewer from "./reviewer.js";

let session = null;
let renewTimer = null;

function main() { return document.getElementById("main"); }

function renderChrome() {
  apply();
  const b = document.getElementById("lang");
  b.textContent = t("lang.switch");
  b.setAttribute("aria-label", t("lang.label"));
  b.setAttribute("lang", lang() === "en" ? "zh-Hant-TW" : "en");
  const who = document.getElementById("who");
  who.hidden = !session;
  if (session) {
    document.getElementById("who-name").textContent =
      t("signedin", { name: session.name, code: session.subject });
  }
}

function render() {
  renderChrome();
  if (!session) return signInView();
  document.body.dataset.role = session.role;
  if (session.role === "hospital") hospital.render(main(), session);
  else reviewer.render(main(), session);
}

function signInView() {
  document.body.dataset.role = "signed-out";
  const error = el("p", { id: "sign-in-error", class: "error-text", role: "alert" });
  const token = el("input", { id: "token", type: "password", autocomplete: "off", required: true });
  const form = el("form", { class: "card", id: "sign-in", onsubmit: (e) => { e.preventDefault(); signIn(token.value, error); } },
    el("h2", { text: t("signin.heading") }),
    el("p", { class: "note", text: t("signin.help") }),
    el("div", { class: "field" }, el("label", { for: "token", text: t("signin.token") }), token),
    el("p", { class: "row" },
      el("button", { type: "submit", text: t("signin.submit") }),
      el("button", { type: "button", class: "secondary", id: "sign-in-cert", text: t("signin.cert"),
        onclick: () => signIn(null, error) })),
    error);
  main().replaceChildren(form);
  token.focus();
}

async function signIn(token, errorBox) {
  errorBox.textContent = "";
  try {
    const headers = token ? { Authorization: `Bearer ${token.trim()}` } : {};
    session = await api("/console/api/session", { method: "POST", headers });
    setCsrf(session.csrf);
    scheduleRenewal();
    render();
    main().focus();
  } catch (e) {
    errorBox.textContent = t("signin.failed", { detail: describe(e) });
  }
}

async function signOut() {
  try { await api("/console/api/session", { method: "DELETE" }); } catch { /* signed out anyway */ }
  session = null;
  setCsrf(null);
  hospital.stop();
  render();
}

// The cookie is renewed by asking who we are once in a while (the answer renews it
// after half its time); an ended session shows the sign-in form.
function scheduleRenewal() {
  clearInterval(renewTimer);
  renewTimer = setInterval(async () => {
    try { await api("/console/api/session"); } catch (e) { if (e.status === 401) ended(); }
  }, 60_000);
}

function ended() {
  if (!session) return;
  session = null;
  setCsrf(null);
  hospital.stop();
  render();
}

async function boot() {
  setLang(lang());
  document.getElementById("lang").addEventListener("click", () => { toggle(); render(); });
  document.getElementById("sign-out").addEventListener("click", signOut);
  window.addEventListener("gw-signed-out", ended);
  try {
    session = await api("/console/api/session");
    setCsrf(session.csrf);
    scheduleRenewal();
  } catch {
    session = null;
  }
  render();
}

boot();
