"""inspect_image: every accepted format gives true facts, and every way a file can lie about being one image of an
accepted format is refused with a reason that names what was found."""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
import zipfile
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, PngImagePlugin

from appliance.datasets.intake import ImageFacts, ImageLimits, Rejected, inspect_image
from tests.datasets.intake.builders import (
    image_bytes,
    png_chunk,
    png_chunks,
    png_from_chunks,
    png_header_only,
    zip_bytes,
)

LIMITS = ImageLimits()


def refusal(name: str, data: bytes, limits: ImageLimits = LIMITS) -> Rejected:
    with pytest.raises(Rejected) as caught:
        inspect_image(name, data, limits=limits)
    assert caught.value.name == name
    return caught.value


# ------------------------------------------------------------------------------------------- accepted formats

ACCEPTED = [
    ("photo.jpg", "JPEG", "image/jpeg", "RGB", {"quality": 90}),
    ("photo.jpeg", "JPEG", "image/jpeg", "L", {}),
    ("scan.JPE", "JPEG", "image/jpeg", "CMYK", {}),
    ("chart.png", "PNG", "image/png", "RGB", {}),
    ("mask.png", "PNG", "image/png", "RGBA", {}),
    ("depth.png", "PNG", "image/png", "I;16", {}),
    ("tile.tif", "TIFF", "image/tiff", "RGB", {"compression": "tiff_deflate"}),
    ("tile.tiff", "TIFF", "image/tiff", "I;16", {}),
    ("tile.TIF", "TIFF", "image/tiff", "CMYK", {"compression": "tiff_lzw"}),
    ("frame.webp", "WEBP", "image/webp", "RGB", {"quality": 80}),
    ("frame.webp", "WEBP", "image/webp", "RGBA", {"lossless": True}),
]


@pytest.mark.parametrize(("name", "fmt", "mime", "mode", "save"), ACCEPTED)
def test_each_accepted_format_gives_the_facts_of_its_bytes(
    name: str, fmt: str, mime: str, mode: str, save: dict[str, object]
) -> None:
    """V-222606: input is validated, and what is recorded about it is derived from the bytes themselves."""
    data = image_bytes(fmt, size=(73, 41), mode=mode, **save)
    with Image.open(io.BytesIO(data)) as decoded:
        expected_mode = decoded.mode

    facts = inspect_image(name, data, limits=LIMITS)

    assert facts == ImageFacts(
        name=name,
        format=fmt,
        mime_type=mime,
        width=73,
        height=41,
        mode=expected_mode,
        byte_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


# ----------------------------------------------------------------------------------------- refused formats


@pytest.mark.parametrize(
    ("name", "data", "named"),
    [
        ("anim.gif", image_bytes("GIF"), "GIF image"),
        ("old.bmp", image_bytes("BMP"), "BMP image"),
        ("report.pdf", image_bytes("PDF"), "PDF document"),
        (
            "icon.svg",
            b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "SVG image",
        ),
        ("page.html", b"<!DOCTYPE html><html><body>hello</body></html>", "HTML document"),
        ("run.sh", b"#!/bin/sh\necho owned\n", "script"),
        ("notes.txt", b"just some words\n", "text file"),
    ],
)
def test_formats_outside_the_allowlist_are_refused_by_name(name: str, data: bytes, named: str) -> None:
    """V-222606: only the four image formats are accepted, whatever the file is called."""
    reason = refusal(name, data).reason
    assert named in reason
    assert "not accepted" in reason


def test_a_gif_named_png_is_refused_as_a_gif() -> None:
    """V-222606: the type comes from the bytes; an accepted extension does not make a GIF acceptable."""
    assert "GIF image" in refusal("photo.png", image_bytes("GIF")).reason


def test_random_bytes_are_refused_as_unrecognised() -> None:
    assert "unrecognised" in refusal("blob.png", bytes(range(256)) * 4).reason


def test_an_empty_file_is_refused() -> None:
    assert refusal("empty.png", b"").reason == "the file is empty"


def test_a_file_over_the_byte_limit_is_refused_before_anything_else() -> None:
    """V-222594: the size cap is the first check, so an oversized upload costs nothing to refuse."""
    data = image_bytes("PNG")
    reason = refusal("big.png", data, ImageLimits(max_bytes=len(data) - 1)).reason
    assert f"{len(data):,} bytes" in reason
    assert inspect_image("big.png", data, limits=ImageLimits(max_bytes=len(data))).byte_size == len(data)


# ------------------------------------------------------------------------------------------ lying extensions

FORMAT_FILES = {
    "JPEG": ("jpg", image_bytes("JPEG")),
    "PNG": ("png", image_bytes("PNG")),
    "TIFF": ("tif", image_bytes("TIFF")),
    "WebP": ("webp", image_bytes("WEBP")),
}


@pytest.mark.parametrize("actual", FORMAT_FILES)
@pytest.mark.parametrize("claimed", FORMAT_FILES)
def test_a_name_that_claims_another_format_is_refused_naming_both(actual: str, claimed: str) -> None:
    """V-222605, V-222606: the extension must agree with the detected format, so a name cannot misrepresent it."""
    name = f"photo.{FORMAT_FILES[claimed][0]}"
    data = FORMAT_FILES[actual][1]
    if actual == claimed:
        assert inspect_image(name, data, limits=LIMITS).byte_size == len(data)
        return
    assert str(refusal(name, data)) == f"{name}: the file is a {actual} image, but its name says {claimed}"


def test_photo_png_that_is_a_jpeg_reads_as_the_design_example() -> None:
    assert str(refusal("photo.png", FORMAT_FILES["JPEG"][1])) == (
        "photo.png: the file is a JPEG image, but its name says PNG"
    )


@pytest.mark.parametrize(
    ("name", "said"), [("photo", "no extension"), ("photo.dat", "ends in .dat"), (".png", "no extension")]
)
def test_a_missing_or_unknown_extension_is_refused_with_the_right_one(name: str, said: str) -> None:
    reason = refusal(name, FORMAT_FILES["PNG"][1]).reason
    assert said in reason
    assert ".png" in reason


def test_a_direction_override_that_disguises_the_extension_is_refused() -> None:
    """V-222605: "photo<RLO>gnp.exe" displays as "photoexe.png"; such names never pass, and are shown escaped."""
    name = "photo\u202egnp.jpg"
    caught = refusal(name, FORMAT_FILES["JPEG"][1])
    assert "direction-override" in caught.reason
    assert "\u202e" not in str(caught)
    assert "\\u202e" in str(caught)


def test_a_name_with_control_characters_is_refused() -> None:
    assert "control characters" in refusal("photo\n.jpg", FORMAT_FILES["JPEG"][1]).reason


# ------------------------------------------------------------------------------------- decompression bombs


def test_a_png_whose_header_claims_ten_billion_pixels_is_refused_as_a_bomb() -> None:
    """V-222594, V-222612: a few hundred bytes that would decode to 30 GB are refused from the header alone."""
    data = png_header_only(100_000, 100_000)
    assert len(data) < 200
    reason = refusal("bomb.png", data, ImageLimits(max_pixels=10**12)).reason
    assert "decompression bomb" in reason
    assert str(100_000 * 100_000) in reason


def test_pillow_bomb_warnings_are_errors_inside_the_check_and_nowhere_else() -> None:
    """V-222594: above Image.MAX_IMAGE_PIXELS Pillow only warns; the check turns that warning into a refusal in a
    local scope and leaves the process-wide warning filters exactly as they were."""
    side = int(Image.MAX_IMAGE_PIXELS**0.5) + 100  # over the warning threshold, under Pillow's hard error
    assert side * side < 2 * Image.MAX_IMAGE_PIXELS
    filters_before = list(warnings.filters)

    reason = refusal("warned.png", png_header_only(side, side), ImageLimits(max_pixels=10**12)).reason

    assert "decompression bomb" in reason
    assert warnings.filters == filters_before
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        Image.open(io.BytesIO(png_header_only(side, side)))
    assert any(issubclass(warning.category, Image.DecompressionBombWarning) for warning in seen)


def test_an_image_over_the_configured_pixel_cap_is_refused_and_one_at_the_cap_accepted() -> None:
    """V-222594: the site's pixel cap, not only Pillow's, bounds the memory one image may take."""
    data = image_bytes("PNG", size=(40, 25))
    reason = refusal("wide.png", data, ImageLimits(max_pixels=40 * 25 - 1)).reason
    assert f"{40 * 25:,} pixels" in reason
    assert inspect_image("wide.png", data, limits=ImageLimits(max_pixels=40 * 25)).width == 40


def test_the_pixel_cap_is_checked_from_the_header_before_decoding() -> None:
    """The header declares 5000 x 5000 but the pixel data is broken: the refusal is the cap, proving no decode
    was attempted first."""
    reason = refusal("declared.png", png_header_only(5000, 5000), ImageLimits(max_pixels=1000)).reason
    assert "checked before decoding" in reason
    assert f"{5000 * 5000:,}" in reason


# ------------------------------------------------------------------------------------ truncated and damaged


@pytest.mark.parametrize(("name", "fmt"), [("a.jpg", "JPEG"), ("a.png", "PNG"), ("a.webp", "WEBP"), ("a.tif", "TIFF")])
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_a_truncated_file_is_refused(name: str, fmt: str, keep: float) -> None:
    """V-222609: a cut-off upload is never accepted with its missing part filled in."""
    data = image_bytes(fmt, size=(120, 90))
    reason = refusal(name, data[: int(len(data) * keep)]).reason
    assert "truncated" in reason or "damaged" in reason or "cannot read" in reason


def test_truncated_pixel_data_inside_an_intact_png_container_is_caught_by_the_full_decode() -> None:
    """Every chunk is whole and its CRC correct, but the compressed pixels stop halfway: only decoding every pixel
    (never Pillow's LOAD_TRUNCATED_IMAGES) finds it."""
    chunks = png_chunks(image_bytes("PNG", size=(120, 90)))
    pixels = zlib.decompress(b"".join(data for kind, data in chunks if kind == b"IDAT"))
    half = zlib.compress(pixels)[: len(pixels) // 4]
    rebuilt = png_from_chunks([chunks[0], (b"IDAT", half), (b"IEND", b"")])
    assert "damaged or incomplete" in refusal("half.png", rebuilt).reason


def test_loading_truncated_images_must_be_off() -> None:
    """The process-wide Pillow switch that pads truncated images is refused rather than silently honoured."""
    data = FORMAT_FILES["PNG"][1]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
        with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
            inspect_image("a.png", data, limits=LIMITS)


def test_a_png_with_bytes_changed_in_the_middle_fails_its_chunk_checksum() -> None:
    """V-222609: PNG chunks carry CRCs; every one is checked, pixel data included."""
    data = bytearray(image_bytes("PNG", size=(120, 90)))
    middle = len(data) // 2
    data[middle : middle + 8] = bytes(8)
    assert "fails its checksum" in refusal("a.png", bytes(data)).reason


def test_a_jpeg_with_an_invalid_marker_in_the_middle_is_refused() -> None:
    data = bytearray(image_bytes("JPEG", size=(120, 90)))
    middle = len(data) // 2
    data[middle : middle + 2] = b"\xff\x12"
    assert "invalid marker 0xFF12" in refusal("a.jpg", bytes(data)).reason


def test_a_deflated_tiff_with_bytes_changed_in_its_pixel_data_is_refused_by_its_decoder() -> None:
    """TIFF carries no checksum of its own; a deflated strip does (zlib's Adler-32), and the full decode checks it."""
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((120, 90)).convert("RGB").save(buffer, "TIFF", compression="tiff_deflate")
    data = bytearray(buffer.getvalue())
    with Image.open(io.BytesIO(bytes(data))) as image:
        (offset,), (length,) = image.tag_v2[273], image.tag_v2[279]  # StripOffsets, StripByteCounts
    middle = offset + length // 2
    data[middle : middle + 8] = bytes(8)
    assert "damaged or incomplete" in refusal("a.tif", bytes(data)).reason


def test_a_png_of_over_a_million_empty_chunks_is_refused_at_the_chunk_cap() -> None:
    """V-222594: the structure walk is bounded; a file cannot buy unbounded CPU with millions of tiny chunks."""
    chunks = png_chunks(FORMAT_FILES["PNG"][1])
    filler = png_chunk(b"prVt", b"")
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", chunks[0][1]) + filler * (1_048_576 + 1)
    assert "more than 1,048,576 chunks" in refusal("many.png", data).reason


def test_a_jpeg_of_endless_stuffed_scan_bytes_is_walked_in_one_pass() -> None:
    """Scan data of nothing but stuffed 0xFF 0x00 pairs is skipped by one search, not a loop per pair."""
    jpeg = FORMAT_FILES["JPEG"][1]
    sos = jpeg.index(b"\xff\xda")
    (header_length,) = struct.unpack_from(">H", jpeg, sos + 2)
    data = jpeg[: sos + 2 + header_length] + b"\xff\x00" * (8 * 1024 * 1024)
    assert "ends before the end-of-image marker" in refusal("stuffed.jpg", data).reason


# ---------------------------------------------------------------------------------------------- polyglots


def test_a_jpeg_with_a_zip_appended_is_refused_naming_the_zip() -> None:
    """V-222609: an image that is also an archive is two files; the second is named in the refusal."""
    payload = zip_bytes([("run.sh", b"#!/bin/sh\n")])
    data = FORMAT_FILES["JPEG"][1] + payload
    assert zipfile.is_zipfile(io.BytesIO(data))
    reason = refusal("a.jpg", data).reason
    assert f"{len(payload):,} bytes after the end of the JPEG image (a ZIP archive)" in reason


def test_a_png_with_trailing_html_is_refused_naming_the_html() -> None:
    """V-222602: markup after the image would run if a browser ever sniffed the file as HTML."""
    trailing = b"<html><script>alert(document.cookie)</script></html>"
    reason = refusal("a.png", FORMAT_FILES["PNG"][1] + trailing).reason
    assert f"{len(trailing):,} bytes after the end of the PNG image (an HTML document)" in reason


def test_a_second_jpeg_after_the_first_is_refused() -> None:
    """A hidden second picture (as in multi-picture files) would be stored but never shown for labeling."""
    data = FORMAT_FILES["JPEG"][1] + image_bytes("JPEG", size=(8, 8))
    assert "(a JPEG image)" in refusal("a.jpg", data).reason


def test_a_webp_with_bytes_beyond_its_riff_size_is_refused() -> None:
    data = FORMAT_FILES["WebP"][1] + b"%PDF-1.7 trailing"
    assert "after the end of the WebP image (a PDF document)" in refusal("a.webp", data).reason


def test_a_gifar_style_png_that_is_also_a_valid_jar_is_refused() -> None:
    """V-222609: the JAR sits inside a private PNG chunk and its end record's comment swallows IEND, so the file
    is a complete PNG *and* a complete JAR with nothing after IEND; the refusal still names the archive."""
    jar = zip_bytes([("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"), ("Evil.class", b"\xca\xfe\xba\xbe")])
    tail_len = 4 + 12  # the chunk CRC and the IEND chunk become the ZIP comment
    jar_body = jar[:-2] + struct.pack("<H", tail_len)
    chunks = png_chunks(FORMAT_FILES["PNG"][1])
    data = png_from_chunks([*chunks[:-1], (b"juNk", jar_body), chunks[-1]])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert "META-INF/MANIFEST.MF" in archive.namelist()
    with Image.open(io.BytesIO(data)) as image:
        image.load()
    assert "Java archive" in refusal("a.png", data).reason


def test_a_tiff_with_a_jar_appended_is_refused() -> None:
    """TIFF has no logical end to check; the ZIP end record near the end of the file gives the payload away."""
    jar = zip_bytes([("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n")])
    assert "Java archive (JAR)" in refusal("a.tif", FORMAT_FILES["TIFF"][1] + jar).reason


def test_html_leading_an_image_is_refused_as_html() -> None:
    data = b"<html><body><img src=x onerror=alert(1)></body></html>" + FORMAT_FILES["PNG"][1]
    assert "HTML document" in refusal("a.png", data).reason


def test_script_in_a_png_text_chunk_is_refused() -> None:
    """V-222602: a tEXt chunk is plain bytes in the file; markup there is found by the payload scan."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<script>fetch('/api/datasets')</script>")
    reason = refusal("a.png", image_bytes("PNG", pnginfo=info)).reason
    assert "second payload: HTML or script markup" in reason


def test_script_hidden_in_a_compressed_png_text_chunk_is_refused() -> None:
    """zTXt is deflated, so the raw scan cannot see it; the text Pillow decompresses is scanned as well."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Description", "<iframe src=javascript:alert(1)>" + "x" * 200, zip=True)
    data = image_bytes("PNG", pnginfo=info)
    assert b"<iframe" not in data
    assert "metadata carries a second payload" in refusal("a.png", data).reason


def test_a_pdf_hidden_in_a_jpeg_comment_is_refused() -> None:
    data = image_bytes("JPEG", comment=b"%PDF-1.4\n1 0 obj << /JS (app.alert(1)) >> endobj")
    assert "a PDF document" in refusal("a.jpg", data).reason


# ---------------------------------------------------------------------------------------- multi-image files


def test_a_multi_page_tiff_is_refused() -> None:
    buffer = io.BytesIO()
    pages = [Image.effect_noise((32, 32), 50) for _ in range(3)]
    pages[0].save(buffer, "TIFF", save_all=True, append_images=pages[1:])
    assert "more than one page" in refusal("pages.tif", buffer.getvalue()).reason


@pytest.mark.parametrize(("name", "fmt"), [("anim.webp", "WEBP"), ("anim.png", "PNG")])
def test_an_animated_image_is_refused(name: str, fmt: str) -> None:
    buffer = io.BytesIO()
    frames = [Image.effect_noise((32, 32), 50).convert("RGB") for _ in range(3)]
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], duration=100)
    with Image.open(io.BytesIO(buffer.getvalue())) as image:
        assert image.n_frames == 3
    assert "is animated" in refusal(name, buffer.getvalue()).reason


# ------------------------------------------------------------------------------------------- never crashes


def facts_or_refusal(name: str, data: bytes, limits: ImageLimits) -> ImageFacts | Rejected:
    """Any other exception propagates and fails the test."""
    try:
        return inspect_image(name, data, limits=limits)
    except Rejected as refusal_:
        return refusal_


_MAGICS = [b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*", b"RIFF\x10\x00\x00\x00WEBPVP8 "]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from(_MAGICS), body=st.binary(max_size=2048))
def test_arbitrary_bytes_give_facts_or_a_refusal_and_nothing_else(prefix: bytes, body: bytes) -> None:
    """V-222609, V-222612: whatever the bytes, the decoder's failure is a refusal, never an unhandled error."""
    verdict = facts_or_refusal("fuzz.png", prefix + body, ImageLimits(max_pixels=1_000_000))
    assert verdict.reason if isinstance(verdict, Rejected) else verdict.byte_size == len(prefix + body)


_SEEDS = {name: data for name, (_, data) in FORMAT_FILES.items()}


@settings(max_examples=300, deadline=None)
@given(
    fmt=st.sampled_from(sorted(_SEEDS)),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_damaged_real_images_give_facts_or_a_refusal_and_nothing_else(fmt: str, edits: list[tuple[float, int]]) -> None:
    data = bytearray(_SEEDS[fmt])
    for where, value in edits:
        data[int(where * len(data))] = value
    ext = FORMAT_FILES[fmt][0]
    verdict = facts_or_refusal(f"fuzz.{ext}", bytes(data), LIMITS)
    assert verdict.reason if isinstance(verdict, Rejected) else verdict.sha256


def test_png_chunk_builder_matches_pillow() -> None:
    """The hand-built PNGs above are only evidence if the chunk builder writes what a real encoder writes."""
    chunks = png_chunks(FORMAT_FILES["PNG"][1])
    assert b"\x89PNG\r\n\x1a\n" + b"".join(png_chunk(kind, data) for kind, data in chunks) == FORMAT_FILES["PNG"][1]
