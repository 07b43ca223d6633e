"""Annotation shapes: finite numbers inside the image (with tolerance), sizes above 0, polygons with 3 distinct
points that do not cross themselves, a cap on vertices; every refusal names its field.

STIG: V-222606 (validate all input).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.labeling.geometry import (
    DEFAULT_TOLERANCE,
    KINDS,
    MAX_VERTICES,
    GeometryError,
    segments_intersect,
    validate_geometry,
)

W, H = 640.0, 480.0


def check(kind: str, geometry: Any) -> Any:
    return validate_geometry(kind, geometry, width=W, height=H)


def refusal(kind: str, geometry: Any) -> GeometryError:
    with pytest.raises(GeometryError) as caught:
        check(kind, geometry)
    return caught.value


def test_each_kind_accepts_a_plain_shape() -> None:
    assert check("box", [1, 2, 3, 4]) == [1.0, 2.0, 3.0, 4.0]
    assert check("rotated_box", [100, 100, 50, 20, 390]) == [100.0, 100.0, 50.0, 20.0, 30.0]
    assert check("polygon", [[0, 0], [10, 0], [10, 10], [0, 0]]) == [[0, 0], [10, 0], [10, 10]]
    assert check("polyline", [[0, 0], [5, 5]]) == [[0, 0], [5, 5]]
    assert check("points", [[3, 4]]) == [[3, 4]]
    assert check("tag", None) is None


@pytest.mark.parametrize(
    ("kind", "geometry", "field", "words"),
    [
        ("ellipse", [1, 2], "kind", "unknown annotation kind"),
        ("box", [1, 2, 3], "geometry", "list of 4 numbers"),
        ("box", [1, 2, "3", 4], "geometry[2]", "must be a number"),
        ("box", [1, 2, True, 4], "geometry[2]", "must be a number"),
        ("box", [math.nan, 2, 3, 4], "geometry[0]", "finite"),
        ("box", [1, math.inf, 3, 4], "geometry[1]", "finite"),
        ("box", [1e300, 2, 3, 4], "geometry[0]", "outside the image"),
        ("box", [1, 2, 0, 4], "geometry[2]", "above 0"),
        ("box", [1, 2, 3, -4], "geometry[3]", "above 0"),
        ("box", [630, 2, 30, 4], "geometry[2]", "outside the image"),
        ("rotated_box", [100, 100, 50, 20], "geometry", "list of 5 numbers"),
        ("rotated_box", [100, 100, 5000, 20, 0], "geometry", "diagonal"),
        ("rotated_box", [100, 100, 50, 20, math.nan], "geometry[4]", "finite"),
        ("polygon", [[0, 0], [10, 10]], "geometry", "at least 3 point"),
        ("polygon", [[0, 0], [10, 10], [10, 10], [0, 0]], "geometry", "3 distinct points"),
        ("polygon", [[0, 0], [5, 5], [10, 10]], "geometry", "cross itself"),
        ("polygon", [[0, 0], [10, 10], [10, 0], [0, 10]], "geometry", "cross itself"),
        ("polygon", [[0, 0], [10, 0], [10, 10], [5, 0]], "geometry", "cross itself"),
        ("polygon", [[0, 0], [1, 1, 1], [2, 0]], "geometry[1]", "list of 2 numbers"),
        ("polyline", [[1, 1]], "geometry", "at least 2 point"),
        ("polyline", [[1, 1], [1, 1]], "geometry", "2 distinct points"),
        ("points", [], "geometry", "at least 1 point"),
        ("points", [[1, -5]], "geometry[0][1]", "outside the image"),
        ("points", "1,2", "geometry", "list of [x, y] points"),
        ("tag", [[1, 2]], "geometry", "no geometry"),
    ],
)
def test_a_bad_shape_is_refused_naming_the_field(kind: str, geometry: Any, field: str, words: str) -> None:
    error = refusal(kind, geometry)
    assert error.field == field
    assert words in str(error)


def test_more_vertices_than_the_cap_are_refused() -> None:
    error = refusal("points", [[1, 1]] * (MAX_VERTICES + 1))
    assert "at most" in str(error)


def test_a_shape_a_hair_past_the_edge_is_within_the_tolerance() -> None:
    assert check("box", [-DEFAULT_TOLERANCE, 0, W + DEFAULT_TOLERANCE, H])[0] == -DEFAULT_TOLERANCE
    refusal("box", [-DEFAULT_TOLERANCE - 0.01, 0, 10, 10])


finite_x = st.floats(min_value=0, max_value=W, allow_nan=False)
finite_y = st.floats(min_value=0, max_value=H, allow_nan=False)
anything = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=2), inner, max_size=3),
    max_leaves=20,
)


@given(x=finite_x, y=finite_y, w=st.floats(min_value=0.01, max_value=W), h=st.floats(min_value=0.01, max_value=H))
def test_every_box_inside_the_image_is_accepted(x: float, y: float, w: float, h: float) -> None:
    w, h = min(w, W - x), min(h, H - y)
    if w > 0 and h > 0:
        assert check("box", [x, y, w, h]) == [x, y, w, h]


@given(
    kind=st.sampled_from(["box", "rotated_box"]),
    numbers=st.lists(st.floats(min_value=1, max_value=60), min_size=5, max_size=5),
    index=st.integers(min_value=0, max_value=3),
    bad=st.sampled_from([math.nan, math.inf, -math.inf]),
)
def test_a_non_finite_number_anywhere_is_refused(kind: str, numbers: list[float], index: int, bad: float) -> None:
    shape = numbers[: 4 if kind == "box" else 5]
    shape[index] = bad
    assert refusal(kind, shape).field == f"geometry[{index}]"


@given(kind=st.sampled_from([*KINDS, "other"]), geometry=anything)
def test_arbitrary_input_is_accepted_or_refused_with_a_geometry_error_only(kind: str, geometry: Any) -> None:
    try:
        check(kind, geometry)
        field = "accepted"
    except GeometryError as error:
        field = error.field
    assert field


@given(
    cx=st.floats(min_value=100, max_value=300),
    cy=st.floats(min_value=100, max_value=300),
    radius=st.floats(min_value=1, max_value=90),
    angles=st.lists(st.integers(min_value=0, max_value=359), min_size=3, max_size=40, unique=True),
)
def test_every_convex_polygon_inside_the_image_is_accepted(
    cx: float, cy: float, radius: float, angles: list[int]
) -> None:
    ring = [[cx + radius * math.cos(math.radians(a)), cy + radius * math.sin(math.radians(a))] for a in sorted(angles)]
    area = sum(ring[i][0] * ring[i - 1][1] - ring[i - 1][0] * ring[i][1] for i in range(len(ring))) / 2
    if abs(area) > 1e-6:
        assert len(check("polygon", ring)) == len(ring)


@given(points=st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=4, max_size=4))
def test_segment_intersection_is_symmetric(points: list[tuple[int, int]]) -> None:
    a, b, c, d = ((float(x), float(y)) for x, y in points)
    assert segments_intersect(a, b, c, d) == segments_intersect(c, d, a, b) == segments_intersect(b, a, d, c)


@given(outside=st.floats(min_value=W + DEFAULT_TOLERANCE + 0.001, max_value=1e12))
def test_a_point_beyond_the_tolerance_is_refused(outside: float) -> None:
    assert refusal("points", [[outside, 1]]).field == "geometry[0][0]"
