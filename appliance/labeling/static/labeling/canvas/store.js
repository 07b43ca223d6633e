// The task's annotations as the analyst sees them, what the server last confirmed of each, and the undo history.
//
// Every entry has a local `key` that never changes, its server `id` and `version` once it has them, its current
// `content`, and `saved` (the content the server holds, or null when the server has none). What to send is
// always the difference between the two (`pendingChanges`), so autosave, retry after a lost connection and a
// merge after a conflict are one mechanism: nothing the analyst did is dropped until the server has confirmed it.
// Undo and redo replay whole steps (one drag, one drawn shape, one class change) in both directions.

const CONTENT_FIELDS = ["kind", "geometry", "class_name", "attributes", "source", "model_ref", "confidence", "deleted"];

function contentOf(annotation) {
  const content = {};
  for (const name of CONTENT_FIELDS) content[name] = annotation[name] ?? null;
  content.attributes = annotation.attributes || {};
  content.deleted = Boolean(annotation.deleted);
  return content;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

function differsOnlyInSource(content, saved) {
  return same({ ...content, source: saved.source }, saved) && content.source !== saved.source;
}

export class TaskDocument extends EventTarget {
  constructor() {
    super();
    this.entries = new Map();
    this.byId = new Map();
    this.undoStack = [];
    this.redoStack = [];
    this.nextKey = 1;
    this.taskVersion = 0;
  }

  load(state) {
    this.entries.clear();
    this.byId.clear();
    this.undoStack = [];
    this.redoStack = [];
    this.taskVersion = state.task.version;
    for (const annotation of state.annotations) this.#adopt(annotation);
    this.#emit([...this.entries.keys()], "load");
  }

  #adopt(annotation) {
    const key = `a${this.nextKey++}`;
    const content = contentOf(annotation);
    this.entries.set(key, { key, id: annotation.id, version: annotation.version, content, saved: { ...content } });
    this.byId.set(annotation.id, key);
    return key;
  }

  get(key) {
    return this.entries.get(key);
  }

  live() {
    return [...this.entries.values()].filter((entry) => !entry.content.deleted);
  }

  // One step of the analyst's work: `edits` is [{key, content}] (content null = delete; a new key = create).
  change(edits, { record = true } = {}) {
    const step = [];
    for (const { key, content } of edits) {
      const entry = this.entries.get(key);
      const before = entry ? { ...entry.content } : null;
      const after = content === null ? { ...before, deleted: true } : { ...(before || {}), ...content, deleted: false };
      if (before && same(before, after)) continue;
      step.push({ key, before, after });
    }
    if (step.length === 0) return;
    this.#apply(step, "after");
    if (record) {
      this.undoStack.push(step);
      if (this.undoStack.length > 500) this.undoStack.shift();
      this.redoStack = [];
    }
    this.#emit(step.map((edit) => edit.key), "change");
  }

  newKey() {
    return `a${this.nextKey++}`;
  }

  undo() {
    return this.#replay(this.undoStack, this.redoStack, "before");
  }

  redo() {
    return this.#replay(this.redoStack, this.undoStack, "after");
  }

  #replay(from, to, side) {
    const step = from.pop();
    if (!step) return false;
    this.#apply(step, side);
    to.push(step);
    this.#emit(step.map((edit) => edit.key), side === "before" ? "undo" : "redo");
    return true;
  }

  #apply(step, side) {
    for (const edit of step) {
      const content = edit[side];
      let entry = this.entries.get(edit.key);
      if (!entry) {
        entry = { key: edit.key, id: null, version: null, content: null, saved: null };
        this.entries.set(edit.key, entry);
      }
      // Undoing a create leaves a deleted entry that has never reached the server: it sends nothing.
      entry.content = content ? { ...content } : { ...entry.content, deleted: true };
    }
  }

  dirty() {
    return this.pendingChanges().changes.length > 0;
  }

  // The batch for the save API and, for `confirm`, which entry each change was made from and with what content.
  pendingChanges() {
    const changes = [];
    const sent = [];
    for (const entry of this.entries.values()) {
      const { content, saved } = entry;
      let change = null;
      if (entry.id === null) {
        if (!content.deleted) {
          const { kind, geometry, class_name, attributes, source, model_ref, confidence } = content;
          change = { op: "create", kind, geometry, class_name, attributes, source: source || "human" };
          if (source === "model") Object.assign(change, { model_ref, confidence });
        }
      } else if (content.deleted) {
        change = { op: "delete", id: entry.id, version: entry.version };
      } else if (saved && differsOnlyInSource(content, saved)) {
        change = { op: "accept", id: entry.id, version: entry.version };
      } else if (!saved || !same(content, saved)) {
        const { geometry, class_name, attributes } = content;
        change = { op: "update", id: entry.id, version: entry.version, geometry, class_name, attributes };
      }
      if (change) {
        changes.push(change);
        sent.push({ key: entry.key, op: change.op, content: { ...content } });
      }
    }
    return { changes, sent };
  }

  // The server stored the batch: adopt its ids, versions and normalised content.
  confirm(sent, answer) {
    this.taskVersion = answer.task.version;
    const returned = new Map(answer.annotations.map((annotation) => [annotation.id, annotation]));
    const created = [...answer.created];
    const keys = [];
    for (const { key, op, content } of sent) {
      const entry = this.entries.get(key);
      keys.push(key);
      if (op === "delete") {
        this.byId.delete(entry.id);
        // The server's copy is gone; undoing the delete creates the shape again.
        Object.assign(entry, { id: null, version: null, saved: null });
        continue;
      }
      if (op === "create") {
        entry.id = created.shift();
        this.byId.set(entry.id, key);
      }
      const stored = returned.get(entry.id);
      entry.version = stored.version;
      const server = contentOf(stored);
      // Keep what the analyst did meanwhile; otherwise show exactly what the server holds.
      if (same(entry.content, content)) entry.content = { ...server };
      entry.saved = server;
    }
    this.#emit(keys, "saved");
  }

  // After a conflict: take the server's state as the base and put the analyst's unsaved changes back on top.
  rebase(state) {
    const mine = [...this.entries.values()].filter((entry) => entry.id === null || !same(entry.content, entry.saved));
    this.load(state);
    for (const entry of mine) {
      const key = entry.id === null ? null : this.byId.get(entry.id);
      if (key === null || key === undefined) {
        if (entry.content.deleted) continue;
        const fresh = this.newKey();
        this.entries.set(fresh, { key: fresh, id: null, version: null, content: { ...entry.content }, saved: null });
      } else {
        this.entries.get(key).content = { ...entry.content };
      }
    }
    this.#emit([...this.entries.keys()], "load");
  }

  #emit(keys, reason) {
    this.dispatchEvent(new CustomEvent("change", { detail: { keys, reason } }));
  }
}
