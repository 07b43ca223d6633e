// The side panel: class picker, attributes of the selection, the reviewer's remarks, the list of annotations,
// and the buttons that end the work (submit; or accept / reject for a reviewer). Built with DOM calls, never
// innerHTML, so no value from the server is ever parsed as markup.

const LIST_LIMIT = 200;

export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (key === "text") element.textContent = value;
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value === true ? "" : value);
  }
  element.append(...children.filter((child) => child !== null && child !== undefined));
  return element;
}

function swatch(colour) {
  const mark = el("span", { class: "swatch", "aria-hidden": "true" });
  mark.style.backgroundColor = colour; // CSSOM, which the CSP allows; a style attribute it would not.
  return mark;
}

export class Panel {
  constructor(root, { doc, controller, schema, mode, remarks }) {
    this.root = root;
    this.doc = doc;
    this.controller = controller;
    this.schema = schema;
    this.mode = mode;
    this.remarks = remarks; // annotation id -> [text]; null key = remarks on the whole task
    this.reviewNotes = new Map(); // review mode: key -> text typed for that annotation
    this.sections = Object.fromEntries(
      [...root.querySelectorAll("[data-role]")].map((section) => [section.dataset.role, section]),
    );
    controller.addEventListener("selection", () => {
      this.#attributes();
      this.#remarks();
      this.#markCurrent();
    });
    controller.addEventListener("class", () => this.#classes());
    doc.addEventListener("change", () => this.refresh());
    this.#classes();
    this.refresh();
  }

  refresh() {
    this.#attributes();
    this.#remarks();
    this.#list();
  }

  #classes() {
    const section = this.sections.classes;
    const classes = this.schema?.classes || [];
    const items = classes.map((definition) =>
      el(
        "li",
        {},
        el(
          "button",
          {
            type: "button",
            class: `class-choice${definition.name === this.controller.currentClass ? " current" : ""}`,
            "data-class": definition.name,
            "aria-pressed": String(definition.name === this.controller.currentClass),
            disabled: this.mode !== "edit",
            onclick: () => this.controller.setClass(definition.name),
          },
          swatch(definition.colour),
          el("span", { text: definition.name }),
          definition.shortcut ? el("kbd", { text: definition.shortcut }) : null,
        ),
      ),
    );
    const empty = el("p", { class: "muted", text: "This project has no schema yet: a manager publishes one first." });
    section.replaceChildren(el("h2", { text: "Classes" }), classes.length ? el("ul", { class: "classes" }, ...items) : empty);
  }

  #attributes() {
    const section = this.sections.attributes;
    const entry = this.controller.selected && this.doc.get(this.controller.selected);
    if (!entry || entry.content.deleted) {
      section.replaceChildren();
      return;
    }
    const { content } = entry;
    const definition = this.controller.classOf(content.class_name);
    const facts = [
      `${content.kind.replace("_", " ")} · ${content.class_name}`,
      content.source === "model" ? ` · proposal of ${content.model_ref} (${Math.round((content.confidence || 0) * 100)}%)` : "",
    ].join("");
    const fields = (definition?.attributes || []).map((attribute) => this.#field(entry, attribute));
    const children = [el("h2", { text: "Selected" }), el("p", { "data-testid": "selection", text: facts })];
    if (content.source === "model" && this.mode === "edit") {
      children.push(el("button", { type: "button", "data-testid": "accept-proposal", text: "Accept proposal (A)", onclick: () => this.controller.acceptProposal() }));
    }
    if (fields.length) children.push(el("form", { class: "attributes", onsubmit: (event) => event.preventDefault() }, ...fields));
    if (this.mode === "review") children.push(this.#reviewNote(entry));
    section.replaceChildren(...children);
  }

  #field(entry, attribute) {
    const value = entry.content.attributes[attribute.name];
    const id = `attr-${attribute.name.replace(/\W/g, "_")}`;
    const disabled = this.mode !== "edit";
    const commit = (next) => {
      const attributes = { ...entry.content.attributes };
      if (next === "" || next === null || Number.isNaN(next)) delete attributes[attribute.name];
      else attributes[attribute.name] = next;
      this.doc.change([{ key: entry.key, content: { attributes } }]);
    };
    let input;
    if (attribute.kind === "checkbox") {
      input = el("input", { id, type: "checkbox", checked: Boolean(value), disabled, onchange: (e) => commit(e.target.checked) });
    } else if (attribute.kind === "select") {
      input = el(
        "select",
        { id, disabled, onchange: (e) => commit(e.target.value) },
        el("option", { value: "", text: "—" }),
        ...attribute.options.map((option) => el("option", { value: option, selected: option === value, text: option })),
      );
    } else if (attribute.kind === "number") {
      input = el("input", {
        id, type: "number", step: "any", value: value ?? "", min: attribute.min ?? null, max: attribute.max ?? null, disabled,
        onchange: (e) => commit(e.target.value === "" ? "" : Number(e.target.value)),
      });
    } else {
      input = el("input", { id, type: "text", value: value ?? "", disabled, onchange: (e) => commit(e.target.value) });
    }
    return el("div", { class: "field" }, el("label", { for: id, text: attribute.name }), input);
  }

  #reviewNote(entry) {
    const id = "review-note";
    const area = el("textarea", {
      id, rows: "3", "data-testid": "annotation-comment", placeholder: "What is wrong with this annotation?",
      oninput: (event) => {
        const text = event.target.value;
        if (text.trim()) this.reviewNotes.set(entry.key, text);
        else this.reviewNotes.delete(entry.key);
        this.#list();
      },
    });
    area.value = this.reviewNotes.get(entry.key) || "";
    return el("div", { class: "field" }, el("label", { for: id, text: "Comment on this annotation" }), area);
  }

  #remarks() {
    const section = this.sections.remarks;
    if (!this.remarks.size) {
      section.replaceChildren();
      return;
    }
    const selectedId = this.controller.selected ? this.doc.get(this.controller.selected)?.id : undefined;
    const items = [];
    for (const [annotationId, texts] of this.remarks) {
      const key = annotationId === null ? null : this.doc.byId.get(annotationId);
      for (const text of texts) {
        const item = el("li", { class: annotationId !== null && annotationId === selectedId ? "current" : "" });
        if (key) item.append(el("button", { type: "button", class: "link", text: `Annotation ${annotationId}`, onclick: () => this.controller.select(key) }), ": ");
        else if (annotationId !== null) item.append(`Annotation ${annotationId} (since removed): `);
        item.append(el("span", { text }));
        items.push(item);
      }
    }
    section.replaceChildren(el("h2", { text: "Reviewer's remarks" }), el("ul", { class: "remarks", "data-testid": "remarks" }, ...items));
  }

  // Selecting among thousands of shapes moves one highlight in the list; it does not rebuild it.
  #markCurrent() {
    for (const row of this.sections.list.querySelectorAll("li.current")) row.classList.remove("current");
    const button = this.controller.selected && this.sections.list.querySelector(`button[data-key="${this.controller.selected}"]`);
    button?.parentElement.classList.add("current");
  }

  #list() {
    const section = this.sections.list;
    const live = this.doc.live();
    const proposals = live.filter((entry) => entry.content.source === "model").length;
    const counts = `${live.length.toLocaleString("en")} annotation${live.length === 1 ? "" : "s"}${proposals ? `, ${proposals.toLocaleString("en")} proposal${proposals === 1 ? "" : "s"} to check` : ""}`;
    const rows = live.slice(0, LIST_LIMIT).map((entry) =>
      el(
        "li",
        { class: entry.key === this.controller.selected ? "current" : "" },
        el("button", {
          type: "button", class: "link", "data-key": entry.key,
          text: `${entry.id ? `#${entry.id}` : "new"} ${entry.content.kind.replace("_", " ")} · ${entry.content.class_name}${entry.content.source === "model" ? ` (proposal, ${Math.round((entry.content.confidence || 0) * 100)}%)` : ""}${this.reviewNotes.has(entry.key) ? " ✎" : ""}`,
          onclick: () => this.controller.select(entry.key),
        }),
      ),
    );
    const more = live.length > LIST_LIMIT ? el("p", { class: "muted", text: `and ${live.length - LIST_LIMIT} more (Tab walks through all)` }) : null;
    const parts = [el("h2", { text: "Annotations" }), el("p", { "data-testid": "counts", text: counts }), el("ol", { class: "shapes-list" }, ...rows)];
    section.replaceChildren(...parts, ...(more ? [more] : []));
  }

  // The end of the work: submit for an analyst; accept or reject, with remarks, for a reviewer.
  finish({ onSubmit, onNext, onPrevious, onReview }) {
    const section = this.sections.finish;
    if (this.mode === "edit") {
      section.replaceChildren(
        el("button", { type: "button", "data-testid": "submit", text: "Submit for review", onclick: onSubmit }),
        el("button", { type: "button", class: "secondary", "data-testid": "next", text: "Next task (N)", onclick: onNext }),
        el("button", { type: "button", class: "secondary", "data-testid": "previous", text: "Previous task (Shift+N)", onclick: onPrevious }),
      );
    } else if (this.mode === "review") {
      const overall = el("textarea", { id: "review-overall", rows: "3", "data-testid": "review-comment", placeholder: "Remarks on the whole image (optional)" });
      const decide = (decision) => () => onReview(decision, overall.value, this.#notes());
      section.replaceChildren(
        el("label", { for: "review-overall", text: "Review" }),
        overall,
        el("button", { type: "button", "data-testid": "review-accept", text: "Accept", onclick: decide("accept") }),
        el("button", { type: "button", class: "secondary", "data-testid": "review-reject", text: "Reject with remarks", onclick: decide("reject") }),
      );
    } else {
      section.replaceChildren(el("p", { class: "muted", text: "Read-only: this task is not open to you for editing or review." }));
    }
  }

  #notes() {
    return [...this.reviewNotes]
      .map(([key, text]) => ({ annotation: this.doc.get(key)?.id, text }))
      .filter((note) => Number.isInteger(note.annotation));
  }
}
