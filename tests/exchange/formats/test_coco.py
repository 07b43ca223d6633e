"""COCO instances: round trips, the exact bbox/area convention, pycocotools agreement, and bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from pycocotools.coco import COCO

from appliance.exchange.formats.coco import iter_coco, read_coco
from appliance.exchange.formats.records import DropLog, FormatError, Frame, Shape
from tests.exchange.shapes import CLASSES, assert_same_shapes, frames

CARRIED = ("box", "rotated_box", "polygon")
ONE_IMAGE = (
    b'{"images": [{"id": 1, "file_name": "a", "width": 5, "height": 5}], "categories": [{"id": 1, "name": "a"}],'
)


def export(given_frames: list[Frame], drops: DropLog | None = None) -> bytes:
    chunks = iter_coco(
        classes=CLASSES,
        frames=lambda: iter(given_frames),
        marking="SECRET//ALPHA",
        project="harbour",
        drops=drops or DropLog(),
    )
    return b"".join(chunks)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(frames(CARRIED))
def test_every_kind_it_carries_comes_back_unchanged(given_frames: list[Frame]) -> None:
    document = read_coco(export(given_frames), file_name="instances.json")
    assert document.marking == "SECRET//ALPHA"
    assert [f.file_name for f in document.frames] == [f.file_name for f in given_frames]
    for want, have in zip(given_frames, document.frames, strict=True):
        assert (have.id, have.width, have.height) == (want.id, want.width, want.height)
        assert_same_shapes(list(want.shapes), list(have.shapes))


@settings(max_examples=30)
@given(frames(("polyline", "points", "tag")))
def test_what_coco_cannot_carry_is_reported_dropped(given_frames: list[Frame]) -> None:
    drops = DropLog()
    document = read_coco(export(given_frames, drops), file_name="instances.json")
    assert all(not frame.shapes for frame in document.frames)
    assert drops.total == sum(len(frame.shapes) for frame in given_frames)


def test_bbox_is_xywh_and_area_is_the_shapes_own() -> None:
    triangle = Shape("polygon", [[10.0, 10.0], [50.0, 10.0], [10.0, 40.0]], "building")
    box = Shape("box", [5.0, 6.0, 20.0, 10.0], "vessel", {"moored": True})
    rotated = Shape("rotated_box", [50.0, 50.0, 20.0, 10.0, 90.0], "vessel")
    raw = json.loads(export([Frame(7, "a.png", 100, 80, (triangle, box, rotated))]))
    by_kind = {ann["appliance"]["kind"]: ann for ann in raw["annotations"]}
    assert by_kind["polygon"]["bbox"] == [10.0, 10.0, 40.0, 30.0]
    assert by_kind["polygon"]["area"] == 600.0  # half of 40 x 30, not the bbox's 1200
    assert by_kind["box"]["bbox"] == [5.0, 6.0, 20.0, 10.0]
    assert by_kind["box"]["area"] == 200.0
    assert by_kind["box"]["appliance"]["attributes"] == {"moored": True}
    assert by_kind["rotated_box"]["bbox"] == pytest.approx([45.0, 40.0, 10.0, 20.0])
    assert by_kind["rotated_box"]["area"] == 200.0
    assert [c["id"] for c in raw["categories"]] == [1, 2]
    assert {ann["category_id"] for ann in raw["annotations"]} == {1, 2}
    assert raw["appliance"]["classification"] == "SECRET//ALPHA"


def test_pycocotools_loads_the_export_and_its_masks_agree_with_our_shapes(tmp_path) -> None:
    shapes = (
        Shape("box", [10.0, 20.0, 30.0, 15.0], "vessel"),
        Shape("polygon", [[60.0, 10.0], [90.0, 10.0], [90.0, 50.0], [75.0, 30.0], [60.0, 50.0]], "building"),
        Shape("rotated_box", [40.0, 60.0, 30.0, 10.0, 30.0], "vessel"),
    )
    path = tmp_path / "instances.json"
    path.write_bytes(export([Frame(3, "a.png", 100, 80, shapes), Frame(4, "b.png", 64, 64, ())]))
    coco = COCO(str(path))
    assert coco.getImgIds() == [3, 4]
    ids = coco.getAnnIds(imgIds=[3])
    assert len(ids) == 3
    assert coco.getAnnIds(imgIds=[4]) == []
    assert coco.getAnnIds(catIds=[1]) == [ids[0], ids[2]]
    for annotation in coco.loadAnns(ids):
        mask = coco.annToMask(annotation)
        assert mask.shape == (80, 100)
        # Rasterising a polygon differs from its exact area by at most about its perimeter in pixels.
        x, y, w, h = annotation["bbox"]
        assert abs(int(mask.sum()) - annotation["area"]) <= 2 * (w + h) + 4
        rows, cols = np.nonzero(mask)
        assert abs(cols.min() - x) <= 1
        assert abs(cols.max() + 1 - (x + w)) <= 1
        assert abs(rows.min() - y) <= 1
        assert abs(rows.max() + 1 - (y + h)) <= 1
    box_mask = coco.annToMask(coco.loadAnns(ids[0])[0])
    assert int(box_mask.sum()) == 30 * 15
    assert box_mask[20:35, 10:40].all()


def test_a_foreign_file_without_our_extension_reads_boxes_and_polygons() -> None:
    foreign = {
        "images": [{"id": 1, "file_name": "x.jpg", "width": 100, "height": 100}],
        "categories": [{"id": 5, "name": "car"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 5,
                "bbox": [1, 2, 3, 4],
                "area": 12,
                "iscrowd": 0,
                "segmentation": [],
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 5,
                "bbox": [0, 0, 10, 10],
                "area": 50,
                "iscrowd": 0,
                "segmentation": [[0, 0, 10, 0, 0, 10]],
            },
            {
                "id": 3,
                "image_id": 1,
                "category_id": 5,
                "bbox": [0, 0, 5, 5],
                "area": 10,
                "iscrowd": 1,
                "segmentation": {"counts": "abc", "size": [100, 100]},
            },
        ],
    }
    document = read_coco(json.dumps(foreign).encode(), file_name="f.json")
    kinds = [shape.kind for shape in document.frames[0].shapes]
    assert kinds == ["box", "polygon", "box"]
    assert document.frames[0].shapes[0].geometry == [1.0, 2.0, 3.0, 4.0]
    assert len(document.dropped) == 1
    assert "crowd" in document.dropped[0].reason


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"images": [', "f.json: line 1 column 13"),
        (
            b'{"images": [],\n "annotations": [], "categories": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]}',
            "f.json: categories[1]",
        ),
        (
            ONE_IMAGE + b' "annotations": [{"id": 1, "image_id": 1, "category_id": 9, "bbox": [0, 0, 1, 1]}]}',
            "f.json: annotations[0]",
        ),
        (
            ONE_IMAGE + b' "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]},'
            b' {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}]}',
            "f.json: annotations[1]",
        ),
        (
            ONE_IMAGE + b' "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, "x", 1]}]}',
            "f.json: annotations[0].bbox",
        ),
        (b"\xff\xfe{}", "f.json: line 1 column 1"),
    ],
)
def test_bad_input_is_refused_naming_the_file_and_element(body: bytes, where: str) -> None:
    with pytest.raises(FormatError) as caught:
        read_coco(body, file_name="f.json")
    assert caught.value.where == where
    assert str(caught.value).startswith(where)


def test_area_of_a_rotated_box_is_its_own_at_any_angle() -> None:
    for angle in (0.0, 17.0, 45.0, -120.0):
        raw = json.loads(
            export([Frame(1, "a.png", 200, 200, (Shape("rotated_box", [100.0, 100.0, 40.0, 10.0, angle], "vessel"),))])
        )
        annotation = raw["annotations"][0]
        assert annotation["area"] == 400.0
        flat = annotation["segmentation"][0]
        side = math.hypot(flat[2] - flat[0], flat[3] - flat[1])
        assert side == pytest.approx(40.0)
