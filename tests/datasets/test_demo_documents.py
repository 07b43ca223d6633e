"""The demo document generator: reproducible pages whose ground truth matches the ink, in every format we emit.

Later code scores layout and text detection models against these boxes, so the tests check the boxes against the
pixels themselves rather than against the generator's own bookkeeping.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageDraw

from appliance.datasets.demo_documents import (
    Box,
    FontMissingError,
    ImageFormat,
    RenderedDocument,
    demo_set,
    encode,
    load_fonts,
    render_document,
)

TEXT_BEARING = {"title", "text", "table", "figure", "caption", "header", "page_number"}
LAYOUT_KINDS = TEXT_BEARING | {"stamp", "handwriting"}


@pytest.fixture(scope="module")
def demo() -> list[tuple[str, bytes, RenderedDocument]]:
    return list(demo_set(20, seed=3))


def inside(inner: Box, outer: Box) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def dark_pixels(image: Image.Image, box: Box, threshold: int = 128) -> int:
    histogram = image.convert("L").crop(box).histogram()
    return sum(histogram[:threshold])


def test_the_same_seed_gives_the_same_bytes() -> None:
    assert encode(render_document(11), "PNG") == encode(render_document(11), "PNG")
    assert encode(render_document(12, scan_effects=True)) == encode(render_document(12, scan_effects=True))


def test_different_seeds_give_different_pages() -> None:
    first, second = render_document(1, scan_effects=False), render_document(2, scan_effects=False)
    assert first.image.size != second.image.size or ImageChops.difference(first.image, second.image).getbbox()


def test_the_demo_set_is_reproducible() -> None:
    first = [(name, data) for name, data, _ in demo_set(3, seed=5)]
    assert first == [(name, data) for name, data, _ in demo_set(3, seed=5)]
    assert first != [(name, data) for name, data, _ in demo_set(3, seed=6)]


def test_every_box_is_inside_the_image_and_not_empty(demo: list[tuple[str, bytes, RenderedDocument]]) -> None:
    for _, _, doc in demo:
        width, height = doc.image.size
        for region in [*doc.regions, *doc.lines]:
            x0, y0, x1, y1 = region.box
            assert 0 <= x0 < x1 <= width, (doc.seed, region)
            assert 0 <= y0 < y1 <= height, (doc.seed, region)


def test_a_demo_set_shows_every_kind_of_region(demo: list[tuple[str, bytes, RenderedDocument]]) -> None:
    kinds = Counter(region.kind for _, _, doc in demo for region in doc.regions)
    assert set(kinds) == LAYOUT_KINDS


def test_a_demo_set_mixes_clean_and_scanned_pages_of_several_sizes(
    demo: list[tuple[str, bytes, RenderedDocument]],
) -> None:
    assert {doc.scanned for _, _, doc in demo} == {True, False}
    assert len({doc.image.size for _, _, doc in demo}) >= 3


def test_every_text_line_lies_inside_a_region_that_holds_text(demo: list[tuple[str, bytes, RenderedDocument]]) -> None:
    for _, _, doc in demo:
        holders = [region.box for region in doc.regions if region.kind in TEXT_BEARING]
        for line in doc.lines:
            assert line.kind == "text_line"
            assert line.text
            assert any(inside(line.box, holder) for holder in holders), (doc.seed, line)


def test_paragraph_lines_lie_inside_their_paragraph(demo: list[tuple[str, bytes, RenderedDocument]]) -> None:
    doc = next(doc for _, _, doc in demo if not doc.scanned and any(r.kind == "text" for r in doc.regions))
    for paragraph in (region for region in doc.regions if region.kind == "text"):
        lines = [line for line in doc.lines if inside(line.box, paragraph.box)]
        assert lines
        assert min(line.box[1] for line in lines) == paragraph.box[1]
        assert max(line.box[3] for line in lines) == paragraph.box[3]


def test_names_say_the_format_and_most_files_are_jpeg(demo: list[tuple[str, bytes, RenderedDocument]]) -> None:
    suffixes = {"jpg": "JPEG", "png": "PNG"}
    for name, data, _ in demo:
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == suffixes[name.rsplit(".", 1)[1]]
    formats = Counter(name.rsplit(".", 1)[1] for name, _, _ in demo)
    assert formats["jpg"] > formats["png"] > 0
    assert [name for name, _, _ in demo][:2] == ["doc-0001.jpg", "doc-0002.jpg"]


@pytest.mark.parametrize("seed", [1, 2, 5, 8, 14])
def test_a_clean_page_has_no_ink_outside_its_regions(seed: int) -> None:
    doc = render_document(seed, scan_effects=False)
    covered = Image.new("L", doc.image.size, 0)
    draw = ImageDraw.Draw(covered)
    for region in doc.regions:
        draw.rectangle((region.box[0] - 1, region.box[1] - 1, region.box[2], region.box[3]), fill=255)
    ink = doc.image.convert("L").point(lambda v: 255 if v < 160 else 0)
    stray = ImageChops.subtract(ink, covered).histogram()[255]
    assert stray < 0.002 * doc.image.width * doc.image.height  # a header rule may run outside every region


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_a_scanned_page_is_skewed_and_its_boxes_still_cover_the_ink(seed: int) -> None:
    clean, scanned = render_document(seed, scan_effects=False), render_document(seed, scan_effects=True)
    assert scanned.scanned
    assert not clean.scanned
    assert 0.3 <= abs(scanned.rotation) <= 3.0
    assert clean.rotation == 0.0
    assert scanned.image.size == clean.image.size
    assert [r.kind for r in scanned.regions] == [r.kind for r in clean.regions]
    for before, after in zip(clean.regions, scanned.regions, strict=True):
        assert after.box != before.box
        if before.kind in ("title", "text"):
            assert dark_pixels(scanned.image, after.box, 100) > 0
            assert dark_pixels(scanned.image, after.box, 160) >= 0.7 * dark_pixels(clean.image, before.box, 160)


def test_a_scanned_page_shows_the_grey_scanner_bed() -> None:
    doc = render_document(5, scan_effects=True)
    corners = [(0, 0), (doc.image.width - 1, 0), (0, doc.image.height - 1), (doc.image.width - 1, doc.image.height - 1)]
    assert any(sum(doc.image.getpixel(corner)) < 3 * 200 for corner in corners)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "WEBP"])
def test_every_format_round_trips_through_pillow(fmt: ImageFormat) -> None:
    doc = render_document(4)
    with Image.open(io.BytesIO(encode(doc, fmt))) as image:
        assert image.format == fmt
        assert image.size == doc.image.size
        if fmt in ("PNG", "TIFF"):
            assert ImageChops.difference(image.convert("RGB"), doc.image).getbbox() is None


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported format"):
        encode(render_document(1), "GIF")  # type: ignore[arg-type]


def test_missing_fonts_name_the_debian_package(tmp_path: Path) -> None:
    with pytest.raises(FontMissingError, match="fonts-dejavu-core"):
        load_fonts([tmp_path])


def test_fonts_passed_in_draw_the_same_page() -> None:
    assert encode(render_document(9, fonts=load_fonts()), "PNG") == encode(render_document(9), "PNG")
