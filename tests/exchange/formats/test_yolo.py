"""YOLO: normalised centre boxes, oriented boxes as corners, polygons, data.yaml, and what each layout drops."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from appliance.exchange.formats.records import DropLog, FormatError, Frame, Shape
from appliance.exchange.formats.yolo import data_yaml, label_file, label_path, read_data_yaml, read_labels
from tests.exchange.shapes import CLASSES, assert_same_shapes, frames


def round_trip(given_frames: list[Frame], layout: str, drops: DropLog) -> list[Frame]:
    labels = [
        (label_path(frame.file_name), label_file(frame, classes=CLASSES, layout=layout, drops=drops))
        for frame in given_frames
    ]
    images = {f.file_name.rsplit(".", 1)[0]: (f.id, f.file_name, f.width, f.height) for f in given_frames}
    document = read_labels(data_yaml(CLASSES, layout=layout, marking="SECRET"), labels, images=images)
    return document.frames


@pytest.mark.parametrize(
    ("layout", "kinds"), [("detect", ("box",)), ("obb", ("box", "rotated_box")), ("segment", ("polygon",))]
)
def test_each_layout_round_trips_the_kinds_it_carries(layout: str, kinds: tuple[str, ...]) -> None:
    @settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
    @given(frames(kinds))
    def check(given_frames: list[Frame]) -> None:
        drops = DropLog()
        got = round_trip(given_frames, layout, drops)
        for want, have in zip(given_frames, got, strict=True):
            assert_same_shapes(list(want.shapes), list(have.shapes), attributes_kept=False)
        carried_attributes = sum(1 for f in given_frames for s in f.shapes if s.attributes)
        assert drops.total == carried_attributes  # only the attributes were dropped, each reported

    check()


@settings(max_examples=30)
@given(frames(("polygon", "polyline", "points", "tag", "rotated_box")))
def test_the_detect_layout_reports_everything_but_boxes_dropped(given_frames: list[Frame]) -> None:
    drops = DropLog()
    got = round_trip(given_frames, "detect", drops)
    assert all(not frame.shapes for frame in got)
    assert sum(n for key, n in drops.counts.items() if "no line" in key) == sum(len(f.shapes) for f in given_frames)


def test_detect_lines_are_normalised_centre_form() -> None:
    frame = Frame(1, "dir/a.jpg", 200, 100, (Shape("box", [20.0, 10.0, 40.0, 30.0], "building"),))
    assert label_path(frame.file_name) == "labels/a.txt"
    line = label_file(frame, classes=CLASSES, layout="detect", drops=DropLog()).decode()
    assert line == "1 0.2 0.25 0.2 0.3\n"  # centre (40, 25) / (200, 100), size (40, 30) / (200, 100)


def test_obb_lines_are_the_four_corners_clockwise_from_the_unrotated_top_left() -> None:
    frame = Frame(1, "a.png", 100, 100, (Shape("rotated_box", [50.0, 50.0, 20.0, 10.0, 90.0], "vessel"),))
    values = [float(v) for v in label_file(frame, classes=CLASSES, layout="obb", drops=DropLog()).split()[1:]]
    # Turned a quarter clockwise on screen, the top-left corner (40, 45) goes to (55, 40), and so on.
    assert values == pytest.approx([0.55, 0.40, 0.55, 0.60, 0.45, 0.60, 0.45, 0.40])


def test_data_yaml_names_the_classes_and_carries_the_banner_first_and_last() -> None:
    raw = data_yaml(CLASSES, layout="obb", marking="SECRET//ALPHA")
    lines = raw.decode().splitlines()
    assert lines[0] == "# SECRET//ALPHA"
    assert lines[-1] == "# SECRET//ALPHA"
    parsed = yaml.safe_load(raw)
    assert parsed["names"] == {0: "vessel", 1: "building"}
    assert (parsed["nc"], parsed["task"]) == (2, "obb")
    assert read_data_yaml(raw) == (["vessel", "building"], "obb", "SECRET//ALPHA")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (b"0 0.5 0.5 0.1\n", "labels/a.txt: line 1"),
        (b"0 0.5 0.5 0.1 0.1\n7 0.5 0.5 0.1 0.1\n", "labels/a.txt: line 2"),
        (b"\n\n0 0.5 0.5 0.1 nan\n", "labels/a.txt: line 3"),
        (b"0 0.5 1.5 0.1 0.1\n", "labels/a.txt: line 1"),
        (b"x 0.5 0.5 0.1 0.1\n", "labels/a.txt: line 1"),
    ],
)
def test_bad_label_lines_are_refused_naming_the_file_and_line(text: bytes, where: str) -> None:
    with pytest.raises(FormatError) as caught:
        read_labels(
            data_yaml(CLASSES, layout="detect", marking=""),
            [("labels/a.txt", text)],
            images={"a": (1, "a.png", 10, 10)},
        )
    assert caught.value.where == where


def test_a_label_file_for_no_known_image_is_refused() -> None:
    with pytest.raises(FormatError, match="no image named ghost"):
        read_labels(data_yaml(CLASSES, layout="detect", marking=""), [("labels/ghost.txt", b"")], images={})


def test_a_malformed_data_yaml_names_its_line() -> None:
    with pytest.raises(FormatError) as caught:
        read_data_yaml(b"names:\n  - a\n - b: [\n")
    assert caught.value.where.startswith("data.yaml: line ")
