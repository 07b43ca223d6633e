// Shapes in image pixels, the same JSON the API stores (appliance/labeling/geometry.py):
//   box [x, y, w, h] · rotated_box [cx, cy, w, h, degrees] · polygon / polyline / points [[x, y], ...] · tag null.
// Pure functions only: the canvas keeps every shape inside the image so that the server's bounds check never
// refuses what the analyst just drew.

export const clamp = (value, low, high) => Math.min(high, Math.max(low, value));

export function clampPoint([x, y], width, height) {
  return [clamp(x, 0, width), clamp(y, 0, height)];
}

const radians = (degrees) => (degrees * Math.PI) / 180;

// The four corners of a rotated box, clockwise from its top-left in its own frame.
export function corners([cx, cy, w, h, angle]) {
  const c = Math.cos(radians(angle));
  const s = Math.sin(radians(angle));
  return [
    [-w / 2, -h / 2],
    [w / 2, -h / 2],
    [w / 2, h / 2],
    [-w / 2, h / 2],
  ].map(([x, y]) => [cx + x * c - y * s, cy + x * s + y * c]);
}

// A point in the rotated box's own frame (origin at its centre, axes along its sides).
export function toLocal([px, py], [cx, cy, , , angle]) {
  const c = Math.cos(radians(-angle));
  const s = Math.sin(radians(-angle));
  const dx = px - cx;
  const dy = py - cy;
  return [dx * c - dy * s, dx * s + dy * c];
}

export function pointsOf(kind, geometry) {
  switch (kind) {
    case "box": {
      const [x, y, w, h] = geometry;
      return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]];
    }
    case "rotated_box":
      return corners(geometry);
    case "polygon":
    case "polyline":
    case "points":
      return geometry;
    default:
      return [];
  }
}

export function bounds(kind, geometry) {
  const points = pointsOf(kind, geometry);
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  return { left: Math.min(...xs), top: Math.min(...ys), right: Math.max(...xs), bottom: Math.max(...ys) };
}

// The shape moved by (dx, dy), the move itself shortened so that the whole shape stays inside the image.
export function translate(kind, geometry, dx, dy, width, height) {
  const b = bounds(kind, geometry);
  const mx = clamp(dx, -b.left, width - b.right);
  const my = clamp(dy, -b.top, height - b.bottom);
  switch (kind) {
    case "box":
      return [geometry[0] + mx, geometry[1] + my, geometry[2], geometry[3]];
    case "rotated_box":
      return [geometry[0] + mx, geometry[1] + my, geometry[2], geometry[3], geometry[4]];
    case "polygon":
    case "polyline":
    case "points":
      return geometry.map(([x, y]) => [x + mx, y + my]);
    default:
      return geometry;
  }
}

// A box from two opposite corners, clamped to the image.
export function boxFrom(a, b, width, height) {
  const [x1, y1] = clampPoint(a, width, height);
  const [x2, y2] = clampPoint(b, width, height);
  return [Math.min(x1, x2), Math.min(y1, y2), Math.abs(x2 - x1), Math.abs(y2 - y1)];
}

// A rotated box resized by dragging corner `index` to `to`, the opposite corner staying where it is.
export function resizeRotated(geometry, index, to) {
  const [, , , , angle] = geometry;
  const fixed = corners(geometry)[(index + 2) % 4];
  const cx = (fixed[0] + to[0]) / 2;
  const cy = (fixed[1] + to[1]) / 2;
  const [lx, ly] = toLocal(to, [fixed[0], fixed[1], 0, 0, angle]);
  return [cx, cy, Math.max(1, Math.abs(lx)), Math.max(1, Math.abs(ly)), angle];
}

// The angle, in degrees, that makes the rotation handle (above the top edge's middle) point at `to`.
export function angleTowards([cx, cy], to) {
  const degrees = (Math.atan2(to[1] - cy, to[0] - cx) * 180) / Math.PI + 90;
  return Math.round(((((degrees + 180) % 360) + 360) % 360) - 180);
}

// Where a vertex clicked on a shape's outline belongs (after the start of the nearest edge), and how far away it is.
export function nearestEdge(points, [px, py], closed) {
  let best = { index: 0, distance: Infinity };
  const count = closed ? points.length : points.length - 1;
  for (let i = 0; i < count; i += 1) {
    const [ax, ay] = points[i];
    const [bx, by] = points[(i + 1) % points.length];
    const lengthSquared = (bx - ax) ** 2 + (by - ay) ** 2 || 1;
    const t = clamp(((px - ax) * (bx - ax) + (py - ay) * (by - ay)) / lengthSquared, 0, 1);
    const distance = Math.hypot(px - (ax + t * (bx - ax)), py - (ay + t * (by - ay)));
    if (distance < best.distance) best = { index: i + 1, distance };
  }
  return best;
}

export function samePoint(a, b, tolerance) {
  return Math.hypot(a[0] - b[0], a[1] - b[1]) <= tolerance;
}

// Whole-pixel-and-a-bit precision: the stored JSON stays small and a round trip through it is exact.
export function tidy(geometry) {
  if (!Array.isArray(geometry)) return geometry;
  return geometry.map((value) => (Array.isArray(value) ? tidy(value) : Math.round(value * 100) / 100));
}
