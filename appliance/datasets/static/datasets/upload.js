// The dataset page's import form, enhanced: the same multipart POST (same URL, same fields, same CSRF token) sent
// by XMLHttpRequest, so that a large upload shows how much has been sent and then that the server is checking and
// encrypting, instead of a tab that looks frozen for minutes. Without this module the form posts as plain HTML and
// the server answers with the same pages, so nothing depends on it.
//
// Why XMLHttpRequest and not fetch: only XHR reports upload progress.
//
// Why the server's answer is put on screen instead of loading the dataset page again: the XHR follows the
// redirect after a successful import, so the page it receives already carries the one-time success message and is
// the thumbnail grid the server has just recorded in the audit log. Loading the page again would show no message
// and record a second view nobody looked at. A refusal (400) is the dataset page again, with the refusals listed.
// Either page arrives parsed inert (nothing in it runs or loads while parsed) and its <body> replaces ours.
// `document.open()/write()` was the other way and was rejected: it drops every listener on the document and the
// browser does not run this module again, so the rewritten form would post without progress; and a 400 that is not
// our page (Django's bare "Bad Request") would replace the classification banners with a page that has none.
// Listening on `document` keeps the new form enhanced after a swap.
//
// Anything else (a proxy's 413, a 5xx, a 403, a lost connection) is said in the form's live status region, and the
// form stays as it was, files still chosen, ready to send again.

const FORM_SELECTOR = "form[data-upload-progress]";

function csrfToken(form) {
  const field = form.querySelector("input[name=csrfmiddlewaretoken]");
  return field ? field.value : "";
}

function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many}`;
}

// What is being sent, in words, for the status line; null when nothing was chosen (the server will say so).
function describe(form) {
  const archive = form.querySelector("input[type=file][name=archive]");
  const images = form.querySelector("input[type=file][name=files]");
  const imageCount = images && images.files ? images.files.length : 0;
  if (archive && archive.files && archive.files.length > 0 && imageCount === 0) {
    return `the archive ${archive.files[0].name}`;
  }
  return imageCount > 0 ? plural(imageCount, "file", "files") : null;
}

function samePath(a, b) {
  return new URL(a, document.baseURI).pathname === new URL(b, document.baseURI).pathname;
}

// A whole page of ours: it carries the classification banners and the page content, so it can replace this one.
function isAppliancePage(doc) {
  return Boolean(doc && doc.body && doc.querySelector("[data-testid=banner-top]") && doc.querySelector("main"));
}

function showPage(doc, url) {
  document.title = doc.title;
  document.body.replaceWith(document.adoptNode(doc.body));
  if (url && url !== window.location.href) {
    history.replaceState(null, "", url);
  }
  const errors = document.querySelector("[data-testid=import-errors]");
  if (errors) {
    errors.focus();
    errors.scrollIntoView({ block: "center" });
    return;
  }
  window.scrollTo(0, 0);
  const messages = document.querySelector(".messages");
  if (messages) {
    messages.setAttribute("tabindex", "-1");
    messages.focus();
  }
}

function failureText(status, uploadDone) {
  if (status === 0) {
    return uploadDone
      ? "The connection was lost while the server was importing. Reload the page to see whether the images arrived."
      : "The connection was lost during the upload: nothing was imported. Check the network and send again.";
  }
  if (status === 413) {
    return "The upload is larger than the server accepts (413): nothing was imported. Send fewer or smaller files at a time.";
  }
  if (status === 400) {
    return "The server refused the request (400): nothing was imported. Very many files at once can cause this; send them as one archive.";
  }
  if (status === 403 || status === 401) {
    return `The server refused the upload (${status}): your sign-in may have ended. Reload the page and sign in again.`;
  }
  if (status >= 500) {
    return `The server failed while importing (${status}). Reload the page to see whether anything was imported, then try again.`;
  }
  return `The server answered ${status}: nothing was shown as imported. Reload the page and try again.`;
}

function send(form) {
  const button = form.querySelector("button[type=submit], button:not([type])");
  const bar = form.querySelector("progress");
  const status = form.querySelector("[aria-live]");
  const what = describe(form);
  let uploadDone = false;
  let spokenDecile = -1;

  const say = (text, failed = false) => {
    if (status) {
      status.textContent = text;
      status.classList.toggle("failed", failed);
    }
  };
  const settle = () => {
    form.removeAttribute("aria-busy");
    window.removeEventListener("beforeunload", holdOn);
    if (button) button.disabled = false;
  };
  const fail = (statusCode) => {
    settle();
    if (bar) {
      bar.hidden = true;
      bar.value = 0;
    }
    say(failureText(statusCode, uploadDone), true);
  };

  form.setAttribute("aria-busy", "true");
  window.addEventListener("beforeunload", holdOn);
  if (button) button.disabled = true;
  if (bar) {
    bar.value = 0;
    bar.textContent = "0%";
    bar.hidden = false;
  }
  say(what ? `Uploading ${what}…` : "Sending…");

  const xhr = new XMLHttpRequest();
  xhr.open("POST", form.action);
  xhr.responseType = "document";
  xhr.setRequestHeader("X-CSRFToken", csrfToken(form));
  xhr.setRequestHeader("Accept", "text/html");

  xhr.upload.addEventListener("progress", (event) => {
    if (!event.lengthComputable || event.total === 0 || !bar) return;
    const percent = Math.min(100, Math.floor((event.loaded * 100) / event.total));
    bar.value = percent;
    bar.textContent = `${percent}%`;
    // The live region speaks at most once per tenth, not at every progress event.
    const decile = Math.floor(percent / 10);
    if (decile !== spokenDecile) {
      spokenDecile = decile;
      say(what ? `Uploading ${what}: ${percent}% sent…` : `Sending: ${percent}%…`);
    }
  });
  xhr.upload.addEventListener("load", () => {
    uploadDone = true;
    if (bar) {
      bar.removeAttribute("value"); // indeterminate: the server's work has no measurable progress here
      bar.textContent = "";
    }
    say(what ? `Checking and encrypting ${what}…` : "Waiting for the server…");
  });

  xhr.addEventListener("load", () => {
    const doc = xhr.responseXML;
    const ourPage = isAppliancePage(doc);
    const onDatasetPage = xhr.responseURL && samePath(xhr.responseURL, form.dataset.datasetUrl || "");
    if (xhr.status === 200 && ourPage && onDatasetPage) {
      settle();
      showPage(doc, xhr.responseURL);
    } else if (xhr.status === 200) {
      // Some other page (the sign-in notice once the sign-in has expired): go to the dataset page, which leads there.
      settle();
      window.location.assign(form.dataset.datasetUrl || xhr.responseURL);
    } else if (xhr.status === 400 && ourPage && doc.querySelector("[data-testid=import-errors]")) {
      settle();
      // The refusal is rendered by the import URL but shows the dataset's first page: the address says so.
      showPage(doc, new URL(form.dataset.datasetUrl || window.location.href, document.baseURI).href);
    } else {
      fail(xhr.status);
    }
  });
  xhr.addEventListener("error", () => fail(0));
  xhr.addEventListener("abort", () => fail(0));

  xhr.send(new FormData(form));
}

// Leaving mid-upload would abandon it silently: the browser asks first.
function holdOn(event) {
  event.preventDefault();
  event.returnValue = "";
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.matches(FORM_SELECTOR)) return;
  event.preventDefault();
  if (form.getAttribute("aria-busy") === "true") return;
  send(form);
});
