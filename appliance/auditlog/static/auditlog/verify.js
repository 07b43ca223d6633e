// "Verify now": drives POST {step_url} chunk by chunk until the server says done, showing progress.
// Why a loop of requests: Django here has no background worker, and a million-record check must not hold one
// request for minutes. Each answer carries a signed `state` that the next request returns unchanged.

const form = document.getElementById("verify-form");
const button = document.getElementById("verify-start");
const bar = document.getElementById("verify-progress");
const status = document.getElementById("verify-status");

function csrfToken() {
  return form.querySelector("input[name=csrfmiddlewaretoken]").value;
}

async function step(body) {
  const response = await fetch(form.dataset.stepUrl, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    throw new Error(`the server answered ${response.status}`);
  }
  return response.json();
}

function show(progress) {
  const percent = progress.total === 0 ? 100 : Math.floor((progress.checked * 100) / progress.total);
  bar.value = percent;
  bar.textContent = `${percent}%`;
  status.textContent = `Checked ${progress.checked} of ${progress.total} records (${percent}%).`;
}

async function run() {
  button.disabled = true;
  bar.hidden = false;
  bar.value = 0;
  status.className = "";
  status.textContent = "Starting…";
  try {
    let progress = await step({ from: 0 });
    show(progress);
    while (!progress.done) {
      progress = await step({ from: progress.checked, state: progress.state });
      show(progress);
    }
    if (progress.ok) {
      status.className = "ok";
      status.textContent = `Result: OK. All ${progress.total} records verified, and ${progress.checkpoints} checkpoint roots matched.`;
    } else {
      status.className = "error";
      status.textContent = `Result: FAILED at record ${progress.bad_seq}: ${progress.problem}`;
    }
  } catch (error) {
    status.className = "error";
    status.textContent = `Verification stopped: ${error.message}. Nothing was concluded; start again.`;
  } finally {
    button.disabled = false;
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  run();
});
