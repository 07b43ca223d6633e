// The image and its shapes as SVG. One group carries the zoom and pan as a single transform, so zooming a dense
// image changes one attribute instead of thousands; strokes do not scale (`vector-effect`), and points are
// zero-length round-capped strokes, so both stay the same size on screen at any zoom. Each shape is one element
// found by its key; a change re-renders only the shapes it touched. Colours are one generated CSS rule per class
// (the page's CSP forbids inline style, not the CSSOM).

import { corners, pointsOf } from "./geometry.js";

const SVG = "http://www.w3.org/2000/svg";
const HANDLE_PX = 5;
const MIN_SCALE = 0.02;
const MAX_SCALE = 40;
const HIGHLIGHT = "highlight";

export function svgElement(name, attributes = {}) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  return element;
}

const pointList = (points) => points.map(([x, y]) => `${x},${y}`).join(" ");

export class ImageView {
  constructor(stage, image, colours) {
    this.stage = stage;
    this.width = image.width;
    this.height = image.height;
    this.colours = colours;
    this.scale = 1;
    this.tx = 0;
    this.ty = 0;
    this.elements = new Map();
    // Two layers: the image and every shape below; handles, drafts and the shape being dragged above, in an SVG
    // of its own that the browser composites separately, so a drag repaints the small top layer, not 10,000 shapes.
    this.svg = svgElement("svg", { class: "canvas", "data-testid": "canvas" });
    this.world = svgElement("g", { class: "world" });
    this.picture = svgElement("image", { href: image.url, width: image.width, height: image.height });
    this.shapes = svgElement("g", { class: "shapes" });
    this.world.append(this.picture, this.shapes);
    this.svg.append(this.world);
    this.top = svgElement("svg", { class: "canvas-top" });
    this.topWorld = svgElement("g", { class: "world" });
    this.active = svgElement("g", { class: "active" });
    this.overlay = svgElement("g", { class: "overlay" });
    this.topWorld.append(this.active, this.overlay);
    this.top.append(this.topWorld);
    stage.append(this.svg, this.top);
    this.keys = new WeakMap();
    this.colourIndex = new Map();
    this.sheet = new CSSStyleSheet();
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, this.sheet];
  }

  // The shape under the pointer, if any: elements map to keys here rather than carry them as attributes.
  keyAt(element) {
    return this.keys.get(element) || null;
  }

  // Each class's colour is one rule of a stylesheet built here (CSSOM, which the CSP allows), so a shape needs a
  // class name, not its own stroke and fill attributes: fewer attribute writes per shape on a dense image.
  #colourClass(name) {
    let index = this.colourIndex.get(name);
    if (index === undefined) {
      index = this.colourIndex.size;
      this.colourIndex.set(name, index);
      const colour = /^#[0-9a-f]{6}$/i.test(this.colours.get(name) || "") ? this.colours.get(name) : "#ff00ff";
      this.sheet.insertRule(`.shape.colour-${index} { stroke: ${colour}; fill: ${colour}; }`, this.sheet.cssRules.length);
    }
    return `colour-${index}`;
  }

  // The selection is drawn again, highlighted, on the top layer (and follows a drag there), so selecting and
  // dragging never repaint the layer of all shapes; the shape below stays where it was until the drop is saved.
  highlight(entry, geometry = null) {
    if (!entry || entry.content.deleted || entry.content.kind === "tag") {
      this.remove(HIGHLIGHT);
      return;
    }
    this.render({ ...entry, key: HIGHLIGHT }, { geometry, layer: this.active, selected: true });
  }

  // Image coordinates of a pointer position.
  toImage(clientX, clientY) {
    const rect = this.svg.getBoundingClientRect();
    return [(clientX - rect.left - this.tx) / this.scale, (clientY - rect.top - this.ty) / this.scale];
  }

  fit() {
    const rect = this.svg.getBoundingClientRect();
    const scale = Math.min(rect.width / this.width, rect.height / this.height) * 0.98;
    this.scale = Math.max(MIN_SCALE, scale);
    this.tx = (rect.width - this.width * this.scale) / 2;
    this.ty = (rect.height - this.height * this.scale) / 2;
    this.#transform();
  }

  zoomAt(factor, clientX, clientY) {
    const rect = this.svg.getBoundingClientRect();
    const x = clientX - rect.left;
    const y = clientY - rect.top;
    const scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, this.scale * factor));
    this.tx = x - ((x - this.tx) * scale) / this.scale;
    this.ty = y - ((y - this.ty) * scale) / this.scale;
    this.scale = scale;
    this.#transform();
  }

  zoomCentre(factor) {
    const rect = this.svg.getBoundingClientRect();
    this.zoomAt(factor, rect.left + rect.width / 2, rect.top + rect.height / 2);
  }

  panBy(dx, dy) {
    this.tx += dx;
    this.ty += dy;
    this.#transform();
  }

  #transform() {
    const transform = `translate(${this.tx} ${this.ty}) scale(${this.scale})`;
    this.world.setAttribute("transform", transform);
    this.topWorld.setAttribute("transform", transform);
    this.onViewportChange?.();
  }

  handleRadius() {
    return HANDLE_PX / this.scale;
  }

  // Create, update or remove the element of one entry; `geometry` overrides the entry's (a drag in progress).
  render(entry, { selected = false, remarked = false, geometry = null, layer = this.shapes } = {}) {
    const { content } = entry;
    let element = this.elements.get(entry.key);
    if (content.deleted || content.kind === "tag") {
      element?.remove();
      this.elements.delete(entry.key);
      return;
    }
    const shape = geometry || content.geometry;
    const tag = { box: "rect", rotated_box: "polygon", polygon: "polygon", polyline: "polyline", points: "path" }[
      content.kind
    ];
    if (!element || element.tagName !== tag) {
      element?.remove();
      element = document.createElementNS(SVG, tag);
      this.keys.set(element, entry.key);
      this.elements.set(entry.key, element);
      layer.append(element);
    }
    const flags = `${content.source === "model" ? " proposal" : ""}${selected ? " selected" : ""}${remarked ? " remarked" : ""}`;
    element.setAttribute("class", `shape ${content.kind} ${this.#colourClass(content.class_name)}${flags}`);
    if (content.kind === "box") {
      const [x, y, w, h] = shape;
      element.setAttribute("x", x);
      element.setAttribute("y", y);
      element.setAttribute("width", w);
      element.setAttribute("height", h);
    } else if (content.kind === "rotated_box") {
      element.setAttribute("points", pointList(corners(shape)));
    } else if (content.kind === "points") {
      element.setAttribute("d", shape.map(([x, y]) => `M${x} ${y}h0`).join(""));
    } else {
      element.setAttribute("points", pointList(shape));
    }
  }

  remove(key) {
    this.elements.get(key)?.remove();
    this.elements.delete(key);
  }

  clear() {
    this.shapes.replaceChildren();
    this.elements.clear();
  }

  // Handles of the selected shape: corners (box, rotated box), a rotation knob, or every vertex.
  showHandles(entry, geometry = null) {
    this.overlay.replaceChildren();
    if (!entry || entry.content.deleted || entry.content.kind === "tag") return;
    const { kind } = entry.content;
    const shape = geometry || entry.content.geometry;
    const r = this.handleRadius();
    const handle = (x, y, role, index) =>
      svgElement("circle", { cx: x, cy: y, r, class: `handle ${role}`, "data-handle": role, "data-index": index });
    pointsOf(kind, shape).forEach(([x, y], index) =>
      this.overlay.append(handle(x, y, kind === "box" || kind === "rotated_box" ? "corner" : "vertex", index)),
    );
    if (kind === "rotated_box") {
      const [top, right] = corners(shape);
      const midX = (top[0] + right[0]) / 2;
      const midY = (top[1] + right[1]) / 2;
      const angle = ((shape[4] - 90) * Math.PI) / 180;
      const knob = [midX + Math.cos(angle) * 6 * r, midY + Math.sin(angle) * 6 * r];
      this.overlay.append(
        svgElement("line", { x1: midX, y1: midY, x2: knob[0], y2: knob[1], class: "knob-line", "vector-effect": "non-scaling-stroke" }),
        handle(knob[0], knob[1], "rotate", 0),
      );
    }
  }

  // A shape being drawn: the vertices so far and a rubber band to the pointer.
  showDraft(kind, points, pointer) {
    this.overlay.replaceChildren();
    if (kind === "box" || kind === "rotated_box") {
      const [[x1, y1], [x2, y2]] = points;
      this.overlay.append(
        svgElement("rect", {
          x: Math.min(x1, x2), y: Math.min(y1, y2), width: Math.abs(x2 - x1), height: Math.abs(y2 - y1),
          class: "draft", "vector-effect": "non-scaling-stroke",
        }),
      );
      return;
    }
    const path = pointer ? [...points, pointer] : points;
    this.overlay.append(svgElement("polyline", { points: pointList(path), class: "draft", "vector-effect": "non-scaling-stroke" }));
    const r = this.handleRadius();
    points.forEach(([x, y], index) =>
      this.overlay.append(svgElement("circle", { cx: x, cy: y, r, class: index === 0 ? "handle first" : "handle" })),
    );
  }
}
