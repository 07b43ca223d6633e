"""Pascal VOC: 1-based corners, attributes in CVAT's VOC extension, a banner comment, and safe XML parsing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from appliance.exchange.formats.records import DropLog, FormatError, Frame, Shape
from appliance.exchange.formats.voc import annotation_file, read_annotation, read_voc_files
from tests.exchange.shapes import CLASSES, assert_same_shapes, frames


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(frames(("box",)))
def test_boxes_and_their_attributes_round_trip(given_frames: list[Frame]) -> None:
    files = [
        (f"Annotations/{f.id}.xml", annotation_file(f, classes=CLASSES, marking="SECRET", drops=DropLog()))
        for f in given_frames
    ]
    document = read_voc_files(files, classes=CLASSES)
    for want, have in zip(given_frames, document.frames, strict=True):
        assert (have.file_name, have.width, have.height) == (want.file_name, want.width, want.height)
        assert_same_shapes(list(want.shapes), list(have.shapes))


@settings(max_examples=30)
@given(frames(("rotated_box", "polygon", "polyline", "points", "tag")))
def test_every_other_kind_is_reported_dropped(given_frames: list[Frame]) -> None:
    drops = DropLog()
    for frame in given_frames:
        annotation_file(frame, classes=CLASSES, marking="", drops=drops)
    assert drops.total == sum(len(f.shapes) for f in given_frames)


def test_corners_are_one_based_and_inclusive() -> None:
    frame = Frame(
        1, "a.jpg", 100, 50, (Shape("box", [0.0, 0.0, 10.0, 5.0], "vessel", {"moored": False, "length": 12.5}),)
    )
    text = annotation_file(frame, classes=CLASSES, marking="SECRET//ALPHA", drops=DropLog()).decode()
    assert "<!-- SECRET//ALPHA -->" in text.splitlines()[1]
    assert "<xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>5</ymax>" in text
    assert "<name>moored</name><value>false</value>" in text
    back = read_annotation(text.encode(), file_name="a.xml", classes=CLASSES)
    assert back.shapes[0].geometry == [0.0, 0.0, 10.0, 5.0]
    assert back.shapes[0].attributes == {"moored": False, "length": 12.5}


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<annotation><filename>&lol2;</filename></annotation>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<annotation><filename>&xxe;</filename></annotation>"""


@pytest.mark.parametrize("body", [BOMB, EXTERNAL], ids=["entity-expansion", "external-entity"])
def test_entities_and_dtds_are_refused_before_any_expansion(body: bytes) -> None:
    with pytest.raises(FormatError, match="refused") as caught:
        read_annotation(body, file_name="a.xml", classes=CLASSES)
    assert caught.value.where == "a.xml"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"<annotation><filename>a</filename>\n<size>", "a.xml: line 2 column 6"),
        (b"<annotation><filename>a</filename></annotation>", "a.xml"),
        (
            b"<annotation><filename>a</filename><size><width>9</width><height>9</height></size>"
            b"<object><name>v</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>x</xmax><ymax>2</ymax></bndbox></object>"
            b"</annotation>",
            "a.xml: object[1]/bndbox/xmax",
        ),
        (
            b"<annotation><filename>a</filename><size><width>9</width><height>9</height></size>"
            b"<object><name>v</name></object><object><name>v</name><bndbox><xmin>1</xmin></bndbox></object>"
            b"</annotation>",
            "a.xml: object[1]",
        ),
    ],
)
def test_bad_files_are_refused_naming_the_file_and_element(body: bytes, where: str) -> None:
    with pytest.raises(FormatError) as caught:
        read_annotation(body, file_name="a.xml", classes=CLASSES)
    assert caught.value.where == where
