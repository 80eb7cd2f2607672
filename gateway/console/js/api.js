// Calls to the gateway's own API, signed in by the session cookie. Requests that
// change something carry the session's CSRF token.

let csrf = null;

export function setCsrf(token) { csrf = token; }
export function csrfToken() { return csrf; }

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code);
    this.status = status;
    this.code = code;
  }
}

export async function api(path, { method = "GET", headers = {}, body, signal } = {}) {
  const h = { ...headers };
  if (!["GET", "HEAD"].includes(method) && csrf) h["X-CSRF-Token"] = csrf;
  let r;
  try {
    r = await fetch(path, { method, headers: h, body, credentials: "same-origin", signal });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "http.offline", String(e));
  }
  if (r.status === 401 && !path.startsWith("/console/api/session")) {
    window.dispatchEvent(new CustomEvent("gw-signed-out"));
  }
  if (!r.ok) {
    let p = {};
    try { p = await r.json(); } catch { /* not a problem document */ }
    throw new ApiError(r.status, p.code || `http.${r.status}`, p.detail || r.statusText);
  }
  if (r.status === 204) return null;
  const type = r.headers.get("content-type") || "";
  return type.includes("json") ? r.json() : r.text();
}

/** A problem's words for people: its detail and its stable code. */
export function describe(e) {
  return e instanceof ApiError ? `${e.message} (${e.code})` : String(e?.message || e);
}
