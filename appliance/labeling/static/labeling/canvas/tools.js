// What the pointer does on the canvas: select, move, resize, rotate, edit vertices, draw, pan and zoom.
//
// A drag changes only the dragged element on screen while it lasts and becomes one document step (one undo) when
// the pointer is released, so a drag among 10,000 shapes touches one element per frame. Events are delegated to
// the SVG root: one set of listeners, whatever the number of shapes.

import {
  angleTowards,
  boxFrom,
  clampPoint,
  nearestEdge,
  pointsOf,
  resizeRotated,
  samePoint,
  tidy,
  translate,
} from "./geometry.js";

export const DRAWING_TOOLS = ["box", "rotated_box", "polygon", "polyline", "points"];
const MINIMUM_POINTS = { polygon: 3, polyline: 2, points: 1 };
const CLICK_SLOP_PX = 4;
const REACH_PX = 6;

export class Controller extends EventTarget {
  constructor({ doc, view, editable, classOf }) {
    super();
    this.doc = doc;
    this.view = view;
    this.editable = editable;
    this.classOf = classOf;
    this.tool = "select";
    this.currentClass = null;
    this.selected = null;
    this.remarked = new Set();
    this.drag = null;
    this.draft = null;
    this.spaceHeld = false;
    const stage = view.stage;
    stage.addEventListener("pointerdown", (event) => this.#down(event));
    stage.addEventListener("pointermove", (event) => this.#move(event));
    stage.addEventListener("pointerup", (event) => this.#up(event));
    stage.addEventListener("dblclick", (event) => this.#doubleClick(event));
    stage.addEventListener("wheel", (event) => this.#wheel(event), { passive: false });
    view.onViewportChange = () => this.#refreshOverlay();
    doc.addEventListener("change", (event) => this.#changed(event.detail));
  }

  // --- selection and rendering -------------------------------------------------------------------------------

  #changed({ keys, reason }) {
    if (reason === "load") {
      this.view.clear();
      if (this.selected && !this.doc.get(this.selected)) this.selected = null;
      for (const entry of this.doc.entries.values()) this.#paint(entry);
    } else {
      for (const key of keys) this.#paint(this.doc.get(key));
    }
    if (this.selected && this.doc.get(this.selected)?.content.deleted) this.selected = null;
    this.#refreshOverlay();
    this.#announce();
  }

  #paint(entry) {
    this.view.render(entry, { remarked: this.remarked.has(entry.key) });
  }

  // Shapes the reviewer commented on stand out until the analyst has seen to them.
  markRemarked(keys) {
    for (const key of keys) {
      this.remarked.add(key);
      this.#paint(this.doc.get(key));
    }
  }

  #refreshOverlay() {
    if (this.drag) return;
    const selected = this.selected ? this.doc.get(this.selected) : null;
    this.view.highlight(selected);
    if (this.draft) this.view.showDraft(this.draft.kind, this.draft.points, this.draft.pointer);
    else this.view.showHandles(selected);
  }

  #announce() {
    this.dispatchEvent(new CustomEvent("selection", { detail: { key: this.selected } }));
  }

  select(key) {
    this.selected = key;
    this.#refreshOverlay();
    this.#announce();
  }

  // Tab and Shift+Tab walk through the shapes; proposals first, so "accept, next, accept" is all keyboard.
  selectNext(backwards = false) {
    const live = this.doc.live().filter((entry) => entry.content.kind !== "tag");
    live.sort((a, b) => (b.content.source === "model") - (a.content.source === "model"));
    if (live.length === 0) return;
    const at = live.findIndex((entry) => entry.key === this.selected);
    const next = at === -1 ? 0 : (at + (backwards ? -1 : 1) + live.length) % live.length;
    this.select(live[next].key);
  }

  setTool(tool) {
    if (!this.editable && tool !== "select") return;
    this.cancelDraft();
    // A drawing tool starts a new shape: a class key pressed next is for it, not for the last selection.
    if (tool !== "select") this.select(null);
    this.tool = tool;
    this.view.svg.dataset.tool = tool;
    this.dispatchEvent(new CustomEvent("tool", { detail: { tool } }));
  }

  setClass(name) {
    this.currentClass = name;
    const entry = this.selected && this.doc.get(this.selected);
    if (entry && this.editable && entry.content.class_name !== name) {
      this.doc.change([{ key: entry.key, content: { class_name: name, attributes: this.#keptAttributes(entry, name) } }]);
    }
    this.dispatchEvent(new CustomEvent("class", { detail: { name } }));
  }

  // Attributes survive a class change where the new class has an attribute of the same name and kind.
  #keptAttributes(entry, name) {
    const wanted = this.classOf(name)?.attributes || [];
    const kept = {};
    for (const attribute of wanted) {
      if (attribute.name in entry.content.attributes) kept[attribute.name] = entry.content.attributes[attribute.name];
    }
    return kept;
  }

  deleteSelected() {
    if (!this.editable || !this.selected) return;
    const key = this.selected;
    this.selected = null;
    this.doc.change([{ key, content: null }]);
  }

  // Accept a model's proposal as it is: the selected one, or else the first one left.
  acceptProposal() {
    if (!this.editable) return;
    let entry = this.selected && this.doc.get(this.selected);
    if (!entry || entry.content.source !== "model") {
      entry = this.doc.live().find((candidate) => candidate.content.source === "model");
    }
    if (!entry) return;
    this.doc.change([{ key: entry.key, content: { source: "human" } }]);
    this.selectNext();
  }

  nudge(dx, dy) {
    const entry = this.selected && this.doc.get(this.selected);
    if (!this.editable || !entry || entry.content.kind === "tag") return;
    const { kind, geometry } = entry.content;
    this.doc.change([{ key: entry.key, content: { geometry: tidy(translate(kind, geometry, dx, dy, this.view.width, this.view.height)) } }]);
  }

  addTag() {
    if (!this.editable || !this.#readyToDraw()) return;
    const exists = this.doc.live().some((e) => e.content.kind === "tag" && e.content.class_name === this.currentClass);
    if (exists) return;
    this.#create("tag", null);
  }

  #readyToDraw() {
    if (this.currentClass) return true;
    this.dispatchEvent(new CustomEvent("problem", { detail: { message: "Pick a class first (its shortcut key or the list)." } }));
    return false;
  }

  #create(kind, geometry) {
    const key = this.doc.newKey();
    const definition = this.classOf(this.currentClass);
    const attributes = {};
    for (const attribute of definition?.attributes || []) {
      if (attribute.kind === "checkbox") attributes[attribute.name] = false;
    }
    this.doc.change([
      { key, content: { kind, geometry: tidy(geometry), class_name: this.currentClass, attributes, source: "human", model_ref: "", confidence: null } },
    ]);
    if (kind !== "tag") this.select(key);
  }

  // --- drawing polygons, polylines and points ---------------------------------------------------------------

  finishDraft() {
    const draft = this.draft;
    if (!draft) return;
    this.draft = null;
    const points = draft.points;
    if (points.length >= MINIMUM_POINTS[draft.kind]) this.#create(draft.kind, points);
    this.#refreshOverlay();
  }

  cancelDraft() {
    if (!this.draft) return false;
    this.draft = null;
    this.#refreshOverlay();
    return true;
  }

  #addVertex(point) {
    if (!this.draft) this.draft = { kind: this.tool, points: [], pointer: null };
    const { points, kind } = this.draft;
    const tolerance = 2 * this.view.handleRadius();
    if (kind === "polygon" && points.length >= 3 && samePoint(points[0], point, tolerance)) {
      this.finishDraft();
      return;
    }
    if (points.length && samePoint(points[points.length - 1], point, tolerance / 4)) return;
    points.push(point);
    this.#refreshOverlay();
  }

  // --- pointer ----------------------------------------------------------------------------------------------

  #down(event) {
    this.view.stage.focus({ preventScroll: true });
    const panning = event.button === 1 || (event.button === 0 && this.spaceHeld);
    if (!panning && event.button !== 0) return;
    const point = clampPoint(this.view.toImage(event.clientX, event.clientY), this.view.width, this.view.height);
    const start = { x: event.clientX, y: event.clientY };
    const target = event.target;
    this.view.stage.setPointerCapture(event.pointerId);
    if (panning) {
      this.drag = { type: "pan", last: start, start };
      return;
    }
    const handle = target.dataset?.handle;
    const selected = this.selected && this.doc.get(this.selected);
    if (handle && selected && this.editable && !this.draft) {
      if (event.altKey && handle === "vertex") {
        this.#removeVertex(selected, Number(target.dataset.index));
        this.drag = null;
        return;
      }
      this.drag = { type: "handle", role: handle, index: Number(target.dataset.index), key: selected.key, geometry: selected.content.geometry, current: null, start };
      return;
    }
    if ((this.tool === "box" || this.tool === "rotated_box") && this.editable) {
      if (!this.#readyToDraw()) return;
      this.drag = { type: "rubber", from: point, to: point, start };
      return;
    }
    if (DRAWING_TOOLS.includes(this.tool) && this.editable) {
      this.drag = { type: "click", point, start };
      return;
    }
    const key = this.view.keyAt(target) || this.#lineNear(point);
    if (key) {
      this.select(key);
      const entry = this.doc.get(key);
      if (this.editable) this.drag = { type: "move", key, from: point, geometry: entry.content.geometry, current: null, start };
      else this.drag = null;
      return;
    }
    this.select(null);
    this.drag = { type: "pan", last: start, start };
  }

  #move(event) {
    if (this.draft && !this.drag) {
      this.draft.pointer = clampPoint(this.view.toImage(event.clientX, event.clientY), this.view.width, this.view.height);
      this.#refreshOverlay();
    }
    const drag = this.drag;
    if (!drag) return;
    const point = clampPoint(this.view.toImage(event.clientX, event.clientY), this.view.width, this.view.height);
    if (drag.type === "pan") {
      this.view.panBy(event.clientX - drag.last.x, event.clientY - drag.last.y);
      drag.last = { x: event.clientX, y: event.clientY };
    } else if (drag.type === "rubber") {
      drag.to = point;
      this.view.showDraft("box", [drag.from, drag.to]);
    } else if (drag.type === "move") {
      const entry = this.doc.get(drag.key);
      drag.current = translate(entry.content.kind, drag.geometry, point[0] - drag.from[0], point[1] - drag.from[1], this.view.width, this.view.height);
      this.view.highlight(entry, drag.current);
      this.view.showHandles(entry, drag.current);
    } else if (drag.type === "handle") {
      const entry = this.doc.get(drag.key);
      drag.current = this.#reshaped(entry.content.kind, drag, point);
      this.view.highlight(entry, drag.current);
      this.view.showHandles(entry, drag.current);
    }
  }

  #reshaped(kind, drag, point) {
    const geometry = drag.geometry;
    if (kind === "box") {
      const opposite = pointsOf("box", geometry)[(drag.index + 2) % 4];
      return boxFrom(opposite, point, this.view.width, this.view.height);
    }
    if (kind === "rotated_box") {
      if (drag.role === "rotate") return [...geometry.slice(0, 4), angleTowards(geometry, point)];
      return resizeRotated(geometry, drag.index, point);
    }
    return geometry.map((vertex, index) => (index === drag.index ? point : vertex));
  }

  #up(event) {
    const drag = this.drag;
    this.drag = null;
    if (!drag) return;
    const moved = Math.hypot(event.clientX - drag.start.x, event.clientY - drag.start.y) > CLICK_SLOP_PX;
    if (drag.type === "rubber") {
      const [x, y, w, h] = boxFrom(drag.from, drag.to, this.view.width, this.view.height);
      if (w * this.view.scale >= 3 && h * this.view.scale >= 3) {
        this.#create(this.tool, this.tool === "box" ? [x, y, w, h] : [x + w / 2, y + h / 2, w, h, 0]);
      }
    } else if (drag.type === "click" && !moved) {
      if (this.tool === "points" || this.tool === "polygon" || this.tool === "polyline") this.#addVertex(drag.point);
    } else if ((drag.type === "move" || drag.type === "handle") && drag.current && moved) {
      this.doc.change([{ key: drag.key, content: { geometry: tidy(drag.current) } }]);
    }
    this.#refreshOverlay();
  }

  #doubleClick(event) {
    if (this.draft) {
      // The double click's two clicks each added the same vertex once (the second is ignored as a repeat).
      this.finishDraft();
      return;
    }
    const entry = this.selected && this.doc.get(this.selected);
    if (!this.editable || !entry) return;
    const { kind, geometry } = entry.content;
    if (kind !== "polygon" && kind !== "polyline") return;
    const point = clampPoint(this.view.toImage(event.clientX, event.clientY), this.view.width, this.view.height);
    const { index, distance } = nearestEdge(geometry, point, kind === "polygon");
    if (distance > REACH_PX / this.view.scale) return;
    const next = [...geometry.slice(0, index), point, ...geometry.slice(index)];
    this.doc.change([{ key: entry.key, content: { geometry: tidy(next) } }]);
  }

  // Lines and points are thin: a click within a few screen pixels of one selects it.
  #lineNear(point) {
    const reach = REACH_PX / this.view.scale;
    let best = { key: null, distance: reach };
    for (const entry of this.doc.live()) {
      const { kind, geometry } = entry.content;
      if (kind !== "polyline" && kind !== "points") continue;
      const distance =
        kind === "polyline"
          ? nearestEdge(geometry, point, false).distance
          : Math.min(...geometry.map(([x, y]) => Math.hypot(x - point[0], y - point[1])));
      if (distance <= best.distance) best = { key: entry.key, distance };
    }
    return best.key;
  }

  #removeVertex(entry, index) {
    const { kind, geometry } = entry.content;
    if (!(kind in MINIMUM_POINTS) || geometry.length <= MINIMUM_POINTS[kind]) return;
    this.doc.change([{ key: entry.key, content: { geometry: geometry.filter((_, at) => at !== index) } }]);
  }

  #wheel(event) {
    event.preventDefault();
    this.view.zoomAt(Math.exp(-event.deltaY * 0.0015), event.clientX, event.clientY);
  }
}
