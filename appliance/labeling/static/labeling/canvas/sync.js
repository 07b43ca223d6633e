// Autosave: what the document has that the server has not is sent shortly after each change, one batch at a time.
//
// A lost connection or a server that is briefly unavailable (network error, 502/503/504) keeps the changes and
// retries with a growing pause; the changes stay in this page's memory only (never in the browser's storage, which
// is disk: annotations of classified imagery are classified too), and leaving the page with unsaved work asks
// first. A 409 means someone else saved this task meanwhile: autosave stops and the page offers to reload their
// state or to put the analyst's changes on top of it. A 400 names the field at fault; the change stays, unsent,
// until the analyst fixes or undoes it.

const QUIET_MS = 700;
const RETRY_MS = [1000, 2000, 4000, 8000, 15000, 30000];
const TRANSIENT = new Set([0, 502, 503, 504]);

export class Autosave extends EventTarget {
  constructor(doc, { url, csrf }) {
    super();
    this.doc = doc;
    this.url = url;
    this.csrf = csrf;
    this.timer = null;
    this.inFlight = null;
    this.failures = 0;
    this.conflict = null;
    this.state = "saved";
    this.message = "";
    doc.addEventListener("change", (event) => {
      if (["change", "undo", "redo"].includes(event.detail.reason)) this.schedule();
    });
    window.addEventListener("beforeunload", (event) => {
      if (this.doc.dirty()) event.preventDefault();
    });
  }

  #set(state, message = "") {
    this.state = state;
    this.message = message;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, message } }));
  }

  schedule(delay = QUIET_MS) {
    if (this.conflict) return;
    clearTimeout(this.timer);
    if (this.doc.dirty()) this.#set(this.state === "offline" ? "offline" : "unsaved", this.message);
    this.timer = setTimeout(() => this.flush(), delay);
  }

  // Send what is pending now; resolves true once the server holds everything (false if it could not).
  async flush() {
    clearTimeout(this.timer);
    if (this.inFlight) {
      await this.inFlight;
      return this.flush();
    }
    if (this.conflict) return false;
    const { changes, sent } = this.doc.pendingChanges();
    if (changes.length === 0) {
      this.#set("saved");
      return true;
    }
    this.#set("saving");
    this.inFlight = this.#send(changes, sent);
    const done = await this.inFlight;
    this.inFlight = null;
    if (done && this.doc.dirty()) return this.flush();
    return done;
  }

  async #send(changes, sent) {
    let response;
    try {
      response = await fetch(this.url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": this.csrf, Accept: "application/json" },
        body: JSON.stringify({ task_version: this.doc.taskVersion, changes }),
      });
    } catch {
      response = { status: 0 };
    }
    if (response.status === 200) {
      this.failures = 0;
      this.doc.confirm(sent, await response.json());
      this.#set(this.doc.dirty() ? "unsaved" : "saved");
      return true;
    }
    if (TRANSIENT.has(response.status)) {
      const pause = RETRY_MS[Math.min(this.failures, RETRY_MS.length - 1)];
      this.failures += 1;
      this.#set("offline", `Not saved: the server cannot be reached. Retrying in ${Math.round(pause / 1000)} s.`);
      this.timer = setTimeout(() => this.flush(), pause);
      return false;
    }
    const body = await response.json().catch(() => ({}));
    if (response.status === 409 && body.code === "stale") {
      this.conflict = body;
      this.#set("conflict", body.detail || "Someone else changed this task.");
      return false;
    }
    this.#set("error", `Not saved (${response.status}): ${describe(body)}`);
    return false;
  }

  // The analyst chose: "reload" drops their unsaved changes, "merge" puts them on top of the server's state.
  resolve(how) {
    const state = this.conflict;
    if (!state) return;
    this.conflict = null;
    if (how === "merge") this.doc.rebase(state);
    else this.doc.load(state);
    this.schedule(0);
  }
}

export function describe(body) {
  if (typeof body !== "object" || body === null) return "the server refused the request";
  if (body.detail) return String(body.detail);
  const parts = Object.entries(body).map(([field, problems]) => `${field}: ${[].concat(problems).join(" ")}`);
  return parts.join("; ") || "the server refused the request";
}

export async function callApi(url, csrf, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
    body: JSON.stringify(body || {}),
  });
  const answer = await response.json().catch(() => ({}));
  return { ok: response.ok, status: response.status, answer };
}
