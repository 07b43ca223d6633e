"""Annotation shapes, checked against the image they are drawn on. Django-free, so it is cheap to test exhaustively.

Every number that reaches the database passed through here: finite, inside the image give or take `tolerance`
pixels (a drag that ends a hair past the edge is not an error worth interrupting an analyst for), and within a
vertex cap that bounds both the row size and the quadratic self-intersection test. Each refusal is a
`GeometryError` whose `field` names the offending part, so an API can answer 400 pointing at it.
"""

from __future__ import annotations

import math
from typing import Any

KINDS = ("box", "rotated_box", "polygon", "polyline", "points", "tag")
DEFAULT_TOLERANCE = 1.0
MAX_VERTICES = 1000

type Point = tuple[float, float]


class GeometryError(ValueError):
    """A shape refused; `field` names the part at fault ("geometry", "geometry[2]", "geometry[2][0]", "kind")."""

    def __init__(self, message: str, *, field: str = "geometry") -> None:
        super().__init__(message)
        self.field = field


def _number(value: Any, field: str) -> float:
    # bool is an int to Python, but `true` as a coordinate is a client bug, not a 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GeometryError(f"{field} must be a number", field=field)
    try:
        number = float(value)  # an integer literal of any size parses exactly; one past a float's range overflows
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise GeometryError(f"{field} must be a finite number", field=field)
    return number


def _within(value: float, limit: float, tolerance: float, field: str) -> None:
    if value < -tolerance or value > limit + tolerance:
        raise GeometryError(f"{field} = {value:g} lies outside the image (0 to {limit:g})", field=field)


def _numbers(raw: Any, count: int, field: str) -> list[float]:
    if not isinstance(raw, list) or len(raw) != count:
        raise GeometryError(f"{field} must be a list of {count} numbers", field=field)
    return [_number(value, f"{field}[{index}]") for index, value in enumerate(raw)]


def _points(raw: Any, *, minimum: int, width: float, height: float, tolerance: float, field: str) -> list[Point]:
    if not isinstance(raw, list):
        raise GeometryError(f"{field} must be a list of [x, y] points", field=field)
    if len(raw) > MAX_VERTICES:
        raise GeometryError(f"{field} has {len(raw)} points; at most {MAX_VERTICES} are allowed", field=field)
    if len(raw) < minimum:
        raise GeometryError(f"{field} needs at least {minimum} point(s), got {len(raw)}", field=field)
    points: list[Point] = []
    for index, entry in enumerate(raw):
        x, y = _numbers(entry, 2, f"{field}[{index}]")
        _within(x, width, tolerance, f"{field}[{index}][0]")
        _within(y, height, tolerance, f"{field}[{index}][1]")
        points.append((x, y))
    return points


def _orientation(a: Point, b: Point, c: Point) -> int:
    cross = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    return (cross > 0) - (cross < 0)


def _on_segment(a: Point, b: Point, p: Point) -> bool:
    return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def segments_intersect(a: Point, b: Point, c: Point, d: Point) -> bool:
    """Whether closed segments ab and cd share any point (touching counts)."""
    o1, o2, o3, o4 = _orientation(a, b, c), _orientation(a, b, d), _orientation(c, d, a), _orientation(c, d, b)
    if o1 != o2 and o3 != o4:
        return True
    return (
        (o1 == 0 and _on_segment(a, b, c))
        or (o2 == 0 and _on_segment(a, b, d))
        or (o3 == 0 and _on_segment(c, d, a))
        or (o4 == 0 and _on_segment(c, d, b))
    )


def _ring(points: list[Point]) -> list[Point]:
    """The polygon's vertices without consecutive repeats (a double click) and without a closing repeat."""
    ring: list[Point] = []
    for point in points:
        if not ring or ring[-1] != point:
            ring.append(point)
    while len(ring) > 1 and ring[0] == ring[-1]:
        ring.pop()
    return ring


def _check_polygon(points: list[Point]) -> list[Point]:
    ring = _ring(points)
    if len(set(ring)) < 3:
        raise GeometryError("a polygon needs at least 3 distinct points")
    if len(set(ring)) != len(ring):
        raise GeometryError("a polygon must not visit the same point twice (it would cross itself)")
    count = len(ring)
    edges = [(ring[i], ring[(i + 1) % count]) for i in range(count)]
    for i in range(count):
        for j in range(i + 1, count):
            a, b = edges[i]
            c, d = edges[j]
            adjacent = j == i + 1 or (i == 0 and j == count - 1)
            if adjacent:
                # Neighbours share a vertex; they cross only if one folds back along the other.
                shared, far_i, far_j = (b, a, d) if j == i + 1 else (a, b, c)
                if _orientation(far_i, shared, far_j) == 0 and (
                    _on_segment(shared, far_i, far_j) or _on_segment(shared, far_j, far_i)
                ):
                    raise GeometryError(f"a polygon must not cross itself (edges {i} and {j} overlap)")
            elif segments_intersect(a, b, c, d):
                raise GeometryError(f"a polygon must not cross itself (edges {i} and {j} intersect)")
    area = sum(ring[i][0] * ring[i - 1][1] - ring[i - 1][0] * ring[i][1] for i in range(len(ring))) / 2
    if area == 0:
        raise GeometryError("a polygon must enclose an area (its points are all on one line)")
    return ring


def validate_geometry(
    kind: Any, geometry: Any, *, width: float, height: float, tolerance: float = DEFAULT_TOLERANCE
) -> Any:
    """The shape as it is to be stored (numbers as floats, a polygon's ring cleaned), or `GeometryError`."""
    if kind not in KINDS:
        raise GeometryError(f"unknown annotation kind {kind!r}; one of {', '.join(KINDS)}", field="kind")
    if kind == "tag":
        if geometry not in (None, []):
            raise GeometryError("a tag describes the whole image and has no geometry")
        return None
    if kind == "box":
        x, y, w, h = _numbers(geometry, 4, "geometry")
        if w <= 0 or h <= 0:
            raise GeometryError(
                "a box needs a width and a height above 0", field="geometry[2]" if w <= 0 else "geometry[3]"
            )
        _within(x, width, tolerance, "geometry[0]")
        _within(y, height, tolerance, "geometry[1]")
        _within(x + w, width, tolerance, "geometry[2]")
        _within(y + h, height, tolerance, "geometry[3]")
        return [x, y, w, h]
    if kind == "rotated_box":
        cx, cy, w, h, angle = _numbers(geometry, 5, "geometry")
        if w <= 0 or h <= 0:
            raise GeometryError(
                "a rotated box needs a width and a height above 0", field="geometry[2]" if w <= 0 else "geometry[3]"
            )
        _within(cx, width, tolerance, "geometry[0]")
        _within(cy, height, tolerance, "geometry[1]")
        diagonal = math.hypot(width, height)
        if w > diagonal + tolerance or h > diagonal + tolerance:
            raise GeometryError("a rotated box cannot be larger than the image's diagonal", field="geometry")
        return [cx, cy, w, h, math.remainder(angle, 360.0)]
    minimum = {"polygon": 3, "polyline": 2, "points": 1}[kind]
    points = _points(geometry, minimum=minimum, width=width, height=height, tolerance=tolerance, field="geometry")
    if kind == "polygon":
        points = _check_polygon(points)
    elif kind == "polyline" and len(set(points)) < 2:
        raise GeometryError("a polyline needs at least 2 distinct points")
    return [[x, y] for x, y in points]
