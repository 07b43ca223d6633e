"""CVAT for images 1.1: every kind, rotation in degrees about the centre, typed attributes, safe parsing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from appliance.exchange.formats.cvat import iter_cvat, read_cvat
from appliance.exchange.formats.records import KINDS, DropLog, FormatError, Frame, Shape
from tests.exchange.shapes import CLASSES, assert_same_shapes, frames


def export(given_frames: list[Frame], marking: str = "SECRET//ALPHA") -> bytes:
    chunks = iter_cvat(classes=CLASSES, frames=given_frames, marking=marking, project="harbour", drops=DropLog())
    return b"".join(chunks)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(frames(KINDS))
def test_every_kind_round_trips_with_its_attributes(given_frames: list[Frame]) -> None:
    document = read_cvat(export(given_frames), file_name="annotations.xml", classes=CLASSES)
    assert document.marking == "SECRET//ALPHA"
    for want, have in zip(given_frames, document.frames, strict=True):
        assert (have.id, have.file_name, have.width, have.height) == (want.id, want.file_name, want.width, want.height)
        assert_same_shapes(list(want.shapes), list(have.shapes))


def test_attributes_are_typed_from_the_files_own_meta_without_a_schema() -> None:
    shape = Shape("box", [1.0, 2.0, 3.0, 4.0], "vessel", {"moored": True, "length": 12, "note": "x"})
    document = read_cvat(export([Frame(0, "a.png", 10, 10, (shape,))]), file_name="a.xml")
    assert document.frames[0].shapes[0].attributes == {"moored": True, "length": 12, "note": "x"}
    assert document.classes == ["vessel", "building"]


def test_rotation_is_degrees_clockwise_about_the_centre_in_cvats_range() -> None:
    shape = Shape("rotated_box", [50.0, 40.0, 20.0, 10.0, -30.0], "vessel")
    text = export([Frame(0, "a.png", 100, 100, (shape,))]).decode()
    assert 'xtl="40" ytl="35" xbr="60" ybr="45" rotation="330"' in text
    plain = export([Frame(0, "a.png", 100, 100, (Shape("box", [1.0, 2.0, 3.0, 4.0], "vessel"),))]).decode()
    assert 'xtl="1" ytl="2" xbr="4" ybr="6" z_order="0"' in plain
    assert "rotation" not in plain


def test_names_with_markup_characters_survive() -> None:
    document = read_cvat(export([Frame(0, 'a "b" <c> & d.png', 10, 10, ())]), file_name="a.xml")
    assert document.frames[0].file_name == 'a "b" <c> & d.png'


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY b "bbbbbbbb"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>
<annotations><image id="0" name="&c;" width="1" height="1"/></annotations>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY x SYSTEM "http://example.invalid/x">]>
<annotations>&x;</annotations>"""


@pytest.mark.parametrize("body", [BOMB, EXTERNAL], ids=["entity-expansion", "external-entity"])
def test_entities_and_dtds_are_refused(body: bytes) -> None:
    with pytest.raises(FormatError, match="refused"):
        read_cvat(body, file_name="a.xml")


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"<annotations>\n<image id='0' name='a' width='5' height='5'>\n<box label='v'", "a.xml: line 3 column 0"),
        (
            b"<annotations><image id='0' name='a' width='5' height='5'><box label='v' xtl='0' ytl='0' xbr='q' ybr='1'/>"
            b"</image></annotations>",
            "a.xml: image[0] 'a' <box>[0] @xbr",
        ),
        (
            b"<annotations><image id='0' name='a' width='5' height='5'><cuboid label='v'/></image></annotations>",
            "a.xml: image[0] 'a' <cuboid>[0]",
        ),
        (
            b"<annotations><image id='0' name='a' width='5' height='5'/><image id='0' name='b' width='5' height='5'/>"
            b"</annotations>",
            "a.xml: image[1] 'b'",
        ),
        (
            b"<annotations><image id='0' name='a' width='5' height='5'><points label='v' points='1,2;3'/></image>"
            b"</annotations>",
            "a.xml: image[0] 'a' <points>[0] @points",
        ),
        (
            b"<annotations><image id='0' name='a' width='5' height='5'><tag label='vessel'>"
            b"<attribute name='moored'>maybe</attribute></tag></image></annotations>",
            "a.xml: image[0] 'a' <tag>[0] attribute 'moored'",
        ),
    ],
)
def test_bad_files_are_refused_naming_the_file_and_element(body: bytes, where: str) -> None:
    with pytest.raises(FormatError) as caught:
        read_cvat(body, file_name="a.xml", classes=CLASSES)
    assert caught.value.where == where
