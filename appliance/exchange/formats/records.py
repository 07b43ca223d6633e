"""The neutral records every format reads into and writes from, and the errors and drop reports they share.

Geometry is exactly what labeling stores (appliance/labeling/geometry.py), in image pixels with the origin at the
top-left corner of the top-left pixel:
- box: [x, y, w, h]
- rotated_box: [cx, cy, w, h, angle], angle in degrees, clockwise on screen (y grows down), about the centre
- polygon, polyline, points: [[x, y], ...]
- tag: None (the whole image)
Formats convert from and to this at their edge, so a round trip through any of them compares like with like.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

KINDS = ("box", "rotated_box", "polygon", "polyline", "points", "tag")

type XY = tuple[float, float]


class FormatError(ValueError):
    """A file that cannot be read as its format: `where` names the file and the line or element at fault."""

    def __init__(self, message: str, *, where: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.reason = message


@dataclass(frozen=True)
class Shape:
    """One annotation: its kind, geometry in our convention, class name and attribute values."""

    kind: str
    geometry: Any
    class_name: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Frame:
    """One image and its shapes. `id` is the image's id inside the file (COCO image id, CVAT image id)."""

    id: int
    file_name: str
    width: int
    height: int
    shapes: tuple[Shape, ...] = ()


@dataclass(frozen=True)
class Dropped:
    """Something a format could not carry, on the way in or out: where it was, what it was, and why."""

    file_name: str
    what: str
    reason: str


@dataclass
class Document:
    """What a reader found: the classes in the file's order, the frames, and what it had to leave out."""

    classes: list[str]
    frames: list[Frame]
    dropped: list[Dropped] = field(default_factory=list)
    marking: str = ""


@dataclass(frozen=True)
class ClassDef:
    """A class as the writers need it: its name and its attributes (name, kind, options) from the schema."""

    name: str
    attributes: tuple[dict[str, Any], ...] = ()


def class_defs(schema_classes: Iterable[dict[str, Any]]) -> list[ClassDef]:
    return [ClassDef(entry["name"], tuple(entry.get("attributes", ()))) for entry in schema_classes]


class DropLog:
    """Collects drops during a write; counts every one but keeps only the first `keep` in detail."""

    def __init__(self, keep: int = 1000) -> None:
        self.keep = keep
        self.entries: list[Dropped] = []
        self.counts: dict[str, int] = {}

    def add(self, file_name: str, what: str, reason: str) -> None:
        key = f"{what}: {reason}"
        self.counts[key] = self.counts.get(key, 0) + 1
        if len(self.entries) < self.keep:
            self.entries.append(Dropped(file_name, what, reason))

    def __iter__(self) -> Iterator[Dropped]:
        return iter(self.entries)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def rotated_corners(geometry: list[float]) -> list[XY]:
    """The four corners of a rotated box, from its unrotated top-left corner clockwise (on screen)."""
    cx, cy, w, h, angle = geometry
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    corners = []
    for dx, dy in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)):
        corners.append((cx + dx * cos - dy * sin, cy + dx * sin + dy * cos))
    return corners


def rotated_from_corners(corners: list[XY]) -> list[float]:
    """The rotated box whose corners these are (first corner = its unrotated top-left, then clockwise)."""
    (x0, y0), (x1, y1), (x2, y2), _ = corners
    cx = sum(x for x, _ in corners) / 4
    cy = sum(y for _, y in corners) / 4
    w = math.hypot(x1 - x0, y1 - y0)
    h = math.hypot(x2 - x1, y2 - y1)
    angle = math.degrees(math.atan2(y1 - y0, x1 - x0))
    return [cx, cy, w, h, math.remainder(angle, 360.0)]


def polygon_area(points: list[XY] | list[list[float]]) -> float:
    """Shoelace area of a simple polygon (absolute value)."""
    total = 0.0
    count = len(points)
    for i in range(count):
        x0, y0 = points[i - 1]
        x1, y1 = points[i]
        total += x0 * y1 - x1 * y0
    return abs(total) / 2


def bounds(points: Iterable[XY] | Iterable[list[float]]) -> list[float]:
    """[x, y, w, h] of the smallest axis-aligned box around `points`."""
    xs: list[float] = []
    ys: list[float] = []
    for x, y in points:
        xs.append(x)
        ys.append(y)
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


def number(raw: str, where: str) -> float:
    """A finite number from text, or a FormatError naming `where`."""
    try:
        value = float(raw)
    except ValueError:
        raise FormatError(f"{raw!r} is not a number", where=where) from None
    if not math.isfinite(value):
        raise FormatError(f"{raw!r} is not a finite number", where=where)
    return value


def text_number(value: float) -> str:
    """A coordinate as text: integers without a fraction, others with the shortest exact repr."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def typed_value(text: str, kind: str | None, where: str) -> Any:
    """An attribute value read as text (XML formats), typed by the schema's attribute kind."""
    if kind == "checkbox":
        lowered = text.strip().lower()
        if lowered not in ("true", "false", "1", "0"):
            raise FormatError(f"{text!r} is not true or false", where=where)
        return lowered in ("true", "1")
    if kind == "number":
        value = number(text.strip(), where)
        return int(value) if value == int(value) and abs(value) < 2**53 else value
    return text


def typed_attributes(texts: dict[str, str], definition: ClassDef | None, where: str) -> dict[str, Any]:
    kinds = {entry["name"]: entry.get("kind") for entry in (definition.attributes if definition else ())}
    return {name: typed_value(text, kinds.get(name), f"{where} attribute {name!r}") for name, text in texts.items()}


def attribute_text(value: object) -> str:
    """An attribute value as XML text: booleans as true/false, numbers as their shortest exact form."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return text_number(value)
    return str(value)
