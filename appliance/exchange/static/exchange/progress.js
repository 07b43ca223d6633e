// Moves the progress bars of queued and running exports by polling the JSON API (same origin, session cookie),
// so the page shows an export advancing without reloading. Without this module the page still shows the state
// at load time, and a reload shows the rest: nothing depends on it.

const POLL_MS = 2000;

async function poll(row) {
  const url = row.dataset.exportPoll;
  const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (!response.ok) {
    return false;
  }
  const body = await response.json();
  const percent = body.total ? Math.floor((100 * body.done) / body.total) : 100;
  row.querySelector("[data-field=progress]").value = body.state === "done" ? 100 : percent;
  row.querySelector("[data-field=count]").textContent = `${body.done} / ${body.total}`;
  row.querySelector("[data-field=state]").textContent = body.error ? `${body.state}: ${body.error}` : body.state;
  return body.state === "queued" || body.state === "running";
}

function watch(row) {
  const tick = async () => {
    let again = false;
    try {
      again = await poll(row);
    } catch {
      again = true;
    }
    if (again) {
      setTimeout(tick, POLL_MS);
    } else if (row.querySelector("[data-field=state]").textContent.startsWith("done")) {
      window.location.reload();
    }
  };
  setTimeout(tick, POLL_MS);
}

document.querySelectorAll("tr[data-export-poll]").forEach(watch);
