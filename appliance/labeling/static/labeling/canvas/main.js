// The annotation canvas: loads the task through the API, wires the document, the view, the pointer tools, the
// panel and autosave together, and maps the keyboard. Every frequent action has a key; the help overlay (?) is
// generated from the same table the key handler reads (`keymap`), so it cannot drift from what the keys do.
//
// Measured in the browser with the Performance API: "canvas-ready" marks the moment the shapes are on screen
// (tests/e2e/test_canvas_dense.py reads it for the dense-image figures in docs/benchmarks.md).

import { Controller, DRAWING_TOOLS } from "./tools.js";
import { Panel, el } from "./panel.js";
import { TaskDocument } from "./store.js";
import { Autosave, callApi, describe } from "./sync.js";
import { ImageView } from "./view.js";

const root = document.getElementById("workbench");
const { mode, csrf } = root.dataset;
const apiUrl = root.dataset.api;
const TOOL_NAMES = { select: "Select", box: "Box", rotated_box: "Rotated box", polygon: "Polygon", polyline: "Polyline", points: "Points" };

const SAVE_WORDS = {
  saved: "All changes saved",
  unsaved: "Unsaved changes",
  saving: "Saving…",
  offline: "Offline",
  conflict: "Conflict",
  error: "Not saved",
};

async function load() {
  const response = await fetch(apiUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`the task could not be loaded (${response.status})`);
  return response.json();
}

function remarksOf(comments) {
  const remarks = new Map();
  for (const comment of comments || []) {
    const key = comment.annotation ?? null;
    remarks.set(key, [...(remarks.get(key) || []), comment.text]);
  }
  return remarks;
}

// One table for the key handler and the help overlay. `on` says which key presses an entry answers: a letter
// (either case, no Ctrl/Alt), "ctrl+<letter>", or a predicate; `edit` entries exist only where the analyst edits.
function keymap({ controller, view, doc, schema, actions }) {
  const letter = (wanted) => (e) => !e.ctrlKey && !e.metaKey && !e.altKey && e.key.toLowerCase() === wanted;
  const ctrl = (wanted, shift = false) => (e) => (e.ctrlKey || e.metaKey) && e.shiftKey === shift && e.key.toLowerCase() === wanted;
  const plain = (...keys) => (e) => !e.ctrlKey && !e.metaKey && !e.altKey && keys.includes(e.key);
  const shortcutOf = (e) => (schema?.classes || []).find((c) => c.shortcut && c.shortcut === e.key && !e.ctrlKey && !e.metaKey && !e.altKey);
  const nudge = (e) => {
    const step = e.shiftKey ? 10 : 1;
    const [dx, dy] = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[e.key];
    controller.nudge(dx, dy);
  };
  const entries = [
    // Class shortcuts first: a schema may give a class a key that is also a tool's.
    { keys: "Class shortcut", label: "Pick that class (and give it to the selection)", edit: true, on: shortcutOf, run: (e) => controller.setClass(shortcutOf(e).name) },
    { keys: "V", label: "Select and move", on: letter("v"), run: () => controller.setTool("select") },
    { keys: "B", label: "Draw a box", edit: true, on: letter("b"), run: () => controller.setTool("box") },
    { keys: "R", label: "Draw a rotated box (drag the round knob to rotate)", edit: true, on: letter("r"), run: () => controller.setTool("rotated_box") },
    { keys: "P", label: "Draw a polygon (click each vertex; Enter, double click or the first vertex closes it)", edit: true, on: letter("p"), run: () => controller.setTool("polygon") },
    { keys: "L", label: "Draw a polyline (Enter or double click ends it)", edit: true, on: letter("l"), run: () => controller.setTool("polyline") },
    { keys: "O", label: "Place points (Enter ends the set)", edit: true, on: letter("o"), run: () => controller.setTool("points") },
    { keys: "T", label: "Tag the whole image with the current class", edit: true, on: letter("t"), run: () => controller.addTag() },
    { keys: "A", label: "Accept the selected proposal (or the next one)", edit: true, on: letter("a"), run: () => controller.acceptProposal() },
    { keys: "Delete / Backspace", label: "Delete the selection", edit: true, on: plain("Delete", "Backspace"), run: () => controller.deleteSelected() },
    { keys: "Ctrl+Z", label: "Undo", edit: true, on: ctrl("z"), run: () => doc.undo() },
    { keys: "Ctrl+Shift+Z / Ctrl+Y", label: "Redo", edit: true, on: (e) => ctrl("z", true)(e) || ctrl("y")(e), run: () => doc.redo() },
    { keys: "Ctrl+S", label: "Save now", edit: true, on: ctrl("s"), run: () => actions.save() },
    { keys: "Tab / Shift+Tab", label: "Select the next / previous annotation (proposals first)", on: (e) => e.key === "Tab" && !e.ctrlKey && !e.altKey, run: (e) => controller.selectNext(e.shiftKey) },
    { keys: "Arrows (Shift: 10 px)", label: "Nudge the selection", edit: true, on: (e) => e.key.startsWith("Arrow") && !e.ctrlKey && !e.altKey, run: nudge },
    { keys: "Enter", label: "Finish the polygon, polyline or points being drawn", edit: true, on: plain("Enter"), run: () => controller.finishDraft() },
    { keys: "Esc", label: "Cancel drawing, then clear the selection", on: plain("Escape"), run: () => controller.cancelDraft() || controller.select(null) },
    { keys: "F", label: "Fit the image to the window", on: letter("f"), run: () => view.fit() },
    { keys: "+ / -", label: "Zoom in / out (or the mouse wheel)", on: plain("+", "=", "-"), run: (e) => view.zoomCentre(e.key === "-" ? 0.8 : 1.25) },
    { keys: "Space + drag, middle drag", label: "Pan (or drag the background)", on: plain(" "), run: () => (controller.spaceHeld = true) },
    { keys: "Alt+click a vertex", label: "Remove that vertex", edit: true },
    { keys: "Double click an edge", label: "Add a vertex to the selected polygon or polyline", edit: true },
    { keys: "N", label: "Save and open the next task", edit: true, on: (e) => letter("n")(e) && !e.shiftKey, run: () => actions.next() },
    { keys: "Shift+N", label: "Save and go back to your previous task", edit: true, on: (e) => letter("n")(e) && e.shiftKey, run: () => actions.previous() },
    { keys: "?", label: "Show or hide this help", on: plain("?"), run: () => actions.help() },
  ];
  return entries.filter((entry) => mode === "edit" || !entry.edit);
}

function onKey(event, entries) {
  if (root.querySelector("dialog[open]")) return; // the open help answers its own keys (Esc closes it)
  if (event.target.closest("input, textarea, select") && event.key !== "Escape") return;
  const entry = entries.find((candidate) => candidate.on && candidate.on(event));
  if (!entry) return;
  event.preventDefault();
  entry.run(event);
}

function toolbar(controller, doc) {
  const holder = root.querySelector("[data-role=tools]");
  const tools = ["select", ...(mode === "edit" ? DRAWING_TOOLS : [])];
  const buttons = tools.map((tool) =>
    el("button", { type: "button", class: "tool secondary", "data-tool": tool, "aria-pressed": String(tool === controller.tool), text: TOOL_NAMES[tool], onclick: () => controller.setTool(tool) }),
  );
  const history = mode === "edit" ? [
    el("button", { type: "button", class: "secondary", "data-testid": "undo", title: "Undo (Ctrl+Z)", text: "Undo", onclick: () => doc.undo() }),
    el("button", { type: "button", class: "secondary", "data-testid": "redo", title: "Redo (Ctrl+Shift+Z)", text: "Redo", onclick: () => doc.redo() }),
  ] : [];
  holder.replaceChildren(...buttons, ...history);
  controller.addEventListener("tool", ({ detail }) => {
    for (const button of buttons) button.setAttribute("aria-pressed", String(button.dataset.tool === detail.tool));
  });
}

function helpDialog(entries) {
  const dialog = root.querySelector("dialog.help");
  const rows = entries.map((entry) => el("tr", {}, el("th", { scope: "row" }, el("kbd", { text: entry.keys })), el("td", { text: entry.label })));
  dialog.replaceChildren(
    el("h2", { text: "Keyboard shortcuts" }),
    el("table", {}, el("tbody", {}, ...rows)),
    el("form", { method: "dialog" }, el("button", { type: "submit", text: "Close" })),
  );
  return () => (dialog.open ? dialog.close() : dialog.showModal());
}

async function start() {
  const stateLine = root.querySelector("[data-testid=save-state]");
  let state;
  try {
    state = await load();
    performance.mark("task-loaded");
  } catch (error) {
    stateLine.textContent = String(error.message);
    return;
  }
  const schema = state.schema;
  const classes = new Map((schema?.classes || []).map((definition) => [definition.name, definition]));
  const colours = new Map([...classes].map(([name, definition]) => [name, definition.colour]));
  const doc = new TaskDocument();
  const view = new ImageView(root.querySelector(".stage"), state.task.image, colours);
  const controller = new Controller({ doc, view, editable: mode === "edit", classOf: (name) => classes.get(name) });
  const autosave = new Autosave(doc, { url: `${apiUrl}/annotations`, csrf });
  const remarks = remarksOf(state.comments);
  const panel = new Panel(root.querySelector(".side"), { doc, controller, schema, mode, remarks });
  const conflictBar = root.querySelector(".conflict");

  autosave.addEventListener("state", ({ detail }) => {
    stateLine.textContent = detail.message ? `${SAVE_WORDS[detail.state]}: ${detail.message}` : SAVE_WORDS[detail.state];
    root.dataset.saveState = detail.state;
    conflictBar.hidden = detail.state !== "conflict";
    root.querySelector("[data-role=conflict-text]").textContent = detail.state === "conflict" ? `Someone else saved this task meanwhile (${detail.message}). Your changes are kept here.` : "";
  });
  conflictBar.addEventListener("click", (event) => {
    const action = event.target.dataset?.action;
    if (action === "reload" || action === "merge") autosave.resolve(action);
  });
  controller.addEventListener("problem", ({ detail }) => {
    stateLine.textContent = detail.message;
  });

  const goNext = async () => {
    if (!(await autosave.flush())) return;
    const form = el("form", { method: "post", action: root.dataset.nextUrl, hidden: true }, el("input", { type: "hidden", name: "csrfmiddlewaretoken", value: csrf }));
    document.body.append(form);
    form.submit();
  };
  const goPrevious = async () => {
    if (await autosave.flush()) window.location.assign(root.dataset.previousUrl);
  };
  const actions = { save: () => autosave.flush(), next: goNext, previous: goPrevious, help: null };
  const entries = keymap({ controller, view, doc, schema, actions });
  actions.help = helpDialog(entries);
  root.querySelector("[data-action=help]").addEventListener("click", () => actions.help());
  toolbar(controller, doc);

  panel.finish({
    onSubmit: async () => {
      if (!(await autosave.flush())) return;
      const { ok, answer } = await callApi(`${apiUrl}/submit`, csrf);
      stateLine.textContent = ok ? "Submitted for review" : `Not submitted: ${describe(answer)}`;
      if (ok) root.querySelector("[data-testid=task-state]").textContent = answer.state;
      if (ok) root.dataset.submitted = "true";
    },
    onNext: goNext,
    onPrevious: goPrevious,
    onReview: async (decision, comments, notes) => {
      const { ok, answer } = await callApi(`${apiUrl}/review`, csrf, { decision, comments, annotation_comments: notes });
      stateLine.textContent = ok ? (decision === "accept" ? "Accepted" : "Rejected, with your remarks") : `Not recorded: ${describe(answer)}`;
      if (ok) root.querySelector("[data-testid=task-state]").textContent = answer.state;
    },
  });

  document.addEventListener("keydown", (event) => onKey(event, entries));
  document.addEventListener("keyup", (event) => {
    if (event.key === " ") controller.spaceHeld = false;
  });

  if (schema?.classes?.length) controller.setClass(schema.classes[0].name);
  doc.load(state);
  controller.markRemarked([...remarks.keys()].map((annotationId) => doc.byId.get(annotationId)).filter(Boolean));
  view.fit();
  requestAnimationFrame(() => {
    performance.mark("canvas-ready");
    root.dataset.ready = "true";
  });
  stateLine.textContent = SAVE_WORDS.saved;
  root.dataset.saveState = "saved";
}

start();
