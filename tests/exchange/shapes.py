"""Hypothesis strategies for frames of every annotation kind, and the comparison a lossless round trip must pass.

Shapes stay inside their image and polygons are star-shaped around a centre (so simple), as labeling stores them.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

from appliance.exchange.formats.records import ClassDef, Frame, Shape

CLASSES = [
    ClassDef(
        "vessel",
        (
            {"name": "moored", "kind": "checkbox", "required": False},
            {"name": "type", "kind": "select", "required": False, "options": ["cargo", "tanker"]},
            {"name": "length", "kind": "number", "required": False, "min": 0.0, "max": 500.0},
            {"name": "note", "kind": "text", "required": False},
        ),
    ),
    ClassDef("building"),
]
TOLERANCE = 1e-6

coordinate = st.floats(min_value=0, max_value=1, allow_nan=False, allow_infinity=False)
text_values = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20
).filter(lambda text: text.strip() == text)


@st.composite
def attributes(draw: st.DrawFn, class_name: str) -> dict[str, Any]:
    if class_name != "vessel":
        return {}
    values: dict[str, Any] = {}
    if draw(st.booleans()):
        values["moored"] = draw(st.booleans())
    if draw(st.booleans()):
        values["type"] = draw(st.sampled_from(["cargo", "tanker"]))
    if draw(st.booleans()):
        values["length"] = draw(st.one_of(st.integers(0, 500), st.floats(0, 500).map(lambda v: round(v, 3))))
    if draw(st.booleans()):
        values["note"] = draw(text_values)
    return values


@st.composite
def shape_of(draw: st.DrawFn, kind: str, width: int, height: int) -> Shape:
    class_name = draw(st.sampled_from(["vessel", "building"]))
    values = draw(attributes(class_name))
    if kind == "tag":
        return Shape("tag", None, class_name, values)
    if kind == "box":
        # Boxes at least a thousandth of the image wide: narrower ones are below what a float keeps after VOC's +1.
        pair = st.lists(coordinate, min_size=2, max_size=2).map(sorted).filter(lambda p: p[1] - p[0] > 1e-3)
        x0, x1 = draw(pair)
        y0, y1 = draw(pair)
        return Shape("box", [x0 * width, y0 * height, (x1 - x0) * width, (y1 - y0) * height], class_name, values)
    if kind == "rotated_box":
        half = min(width, height) / 2
        w = draw(st.floats(1, half))
        h = draw(st.floats(1, half))
        cx = draw(st.floats(half, width - half))
        cy = draw(st.floats(half, height - half))
        angle = draw(st.floats(-179.9, 180.0).filter(lambda a: abs(a) > 1e-3))
        return Shape("rotated_box", [cx, cy, w, h, angle], class_name, values)
    count = draw(st.integers({"polygon": 3, "polyline": 2, "points": 1}[kind], 12))
    if kind == "polygon":
        angles = sorted(draw(st.lists(st.floats(0, 2 * math.pi - 1e-3), min_size=count, max_size=count, unique=True)))
        radii = draw(st.lists(st.floats(0.2, 1.0), min_size=count, max_size=count))
        cx, cy, r = width / 2, height / 2, min(width, height) / 2
        points = [[cx + r * s * math.cos(a), cy + r * s * math.sin(a)] for a, s in zip(angles, radii, strict=True)]
    else:
        points = [[draw(coordinate) * width, draw(coordinate) * height] for _ in range(count)]
    return Shape(kind, points, class_name, values)


@st.composite
def frames(draw: st.DrawFn, kinds: tuple[str, ...], max_frames: int = 3) -> list[Frame]:
    count = draw(st.integers(1, max_frames))
    result = []
    for index in range(count):
        width, height = draw(st.integers(8, 4000)), draw(st.integers(8, 4000))
        shapes = draw(
            st.lists(st.sampled_from(kinds).flatmap(lambda k, w=width, h=height: shape_of(k, w, h)), max_size=6)
        )
        result.append(Frame(index + 1, f"img-{index}.png", width, height, tuple(shapes)))
    return result


def close(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float | int) and isinstance(b, float | int):
        return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    return bool(a == b)


def same_angle(a: float, b: float) -> bool:
    return math.isclose(math.remainder(a - b, 360.0), 0.0, abs_tol=1e-6)


def assert_same_shapes(expected: list[Shape], got: list[Shape], *, attributes_kept: bool = True) -> None:
    assert len(expected) == len(got), (expected, got)
    for want, have in zip(expected, got, strict=True):
        assert have.kind == want.kind, (want, have)
        assert have.class_name == want.class_name
        if attributes_kept:
            assert have.attributes == want.attributes, (want.attributes, have.attributes)
        if want.kind == "rotated_box":
            assert close(have.geometry[:4], want.geometry[:4]), (want, have)
            assert same_angle(have.geometry[4], want.geometry[4]), (want, have)
        else:
            assert close(have.geometry, want.geometry), (want, have)
