"""Decides whether one file's bytes are a single, complete, honest image of an accepted format.

`inspect_image` returns the facts the item will be stored with, or raises `Rejected` saying what is wrong. It works
on bytes in memory and never writes them anywhere (plaintext imagery must not touch disk). It must never accept a
file that a decoder would read differently from what a person is shown, and never let a file decide how much memory
or time the decoder spends; the checks run cheapest first so a hostile file costs as little as possible.

Multi-image files (multi-page TIFF, animated WebP or PNG, multi-picture JPEG) are refused, not cut down to their
first frame: the appliance stores the original bytes, so "first frame only" would store pages that no analyst is
shown and no reviewer can label, under a classification nobody checked. Re-encoding the first frame instead would
alter the imagery. A site that needs the pages splits them before import, where a person sees each one.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import warnings
import zlib
from dataclasses import dataclass

from PIL import Image, ImageFile, TiffImagePlugin, UnidentifiedImageError

from appliance.datasets.intake.names import extension, name_problem
from appliance.datasets.intake.outcomes import Rejected
from appliance.datasets.intake.signatures import (
    ACCEPTED_LABELS,
    JPEG,
    PNG,
    TIFF,
    WEBP,
    ImageFormat,
    accepted_format,
    describe,
    find_hidden_payload,
    format_for_extension,
    is_archive_description,
)

MiB = 1024 * 1024

# TIFF tag 330: pointers to further images tucked under the main one (thumbnails, masks, whole other pictures).
_TIFF_SUBIFDS = 330


@dataclass(frozen=True)
class ImageLimits:
    """How much one image may cost. Both caps are checked before any pixel is decoded.

    max_bytes bounds the encoded file held in memory. max_pixels bounds the decoded raster (up to 16 bytes a pixel
    in Pillow's widest modes); the default, 8192 x 8192, stays below Pillow's own decompression-bomb threshold
    (`Image.MAX_IMAGE_PIXELS`, about 89.5 million), which remains on as a second, independent line.
    """

    max_bytes: int = 256 * MiB
    max_pixels: int = 8192 * 8192

    def __post_init__(self) -> None:
        for field_name in ("max_bytes", "max_pixels"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ImageLimits.{field_name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class ImageFacts:
    """What the appliance records about an accepted image; `sha256` is of the exact bytes that were checked."""

    name: str
    format: str
    mime_type: str
    width: int
    height: int
    mode: str
    byte_size: int
    sha256: str


class _Malformed(Exception):
    """The container structure is broken; the message says how."""


def inspect_image(name: str, data: bytes, *, limits: ImageLimits) -> ImageFacts:
    """Return the facts of an acceptable image, or raise `Rejected(name, reason)`.

    Order: the name, the size, the format from the magic bytes, the extension against that format, the container
    walked to its logical end (truncation, damage, trailing payloads), hidden payloads anywhere, and only then
    Pillow: header, pixel cap, single frame, full decode.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # A process-wide Pillow switch that turns truncated files into silently padded images. Refuse to vouch
        # for anything while it is on rather than flip shared state under other threads.
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; images cannot be validated with it on")
    problem = name_problem(name)
    if problem:
        raise Rejected(name, problem)
    if not data:
        raise Rejected(name, "the file is empty")
    if len(data) > limits.max_bytes:
        raise Rejected(name, f"the file is {len(data):,} bytes, over the {limits.max_bytes:,}-byte limit for one image")

    fmt = accepted_format(data)
    if fmt is None:
        raise Rejected(name, _unsupported(describe(data)))
    _check_extension(name, fmt)

    try:
        end = _logical_end(data, fmt)
    except _Malformed as exc:
        raise Rejected(name, str(exc)) from None
    if end is not None and end < len(data):
        trailing = data[end:]
        raise Rejected(
            name,
            f"there are {len(trailing):,} bytes after the end of the {fmt.label} image ({describe(trailing)}); "
            "a file must hold one image and nothing else",
        )
    payload = find_hidden_payload(data)
    if payload:
        raise Rejected(name, f"the {fmt.label} image carries a second payload: {payload}")

    width, height, mode = _decode(name, data, fmt, limits)
    return ImageFacts(
        name=name,
        format=fmt.pillow_name,
        mime_type=fmt.mime_type,
        width=width,
        height=height,
        mode=mode,
        byte_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _unsupported(description: str) -> str:
    reason = f"the file is {description}, which is not accepted; accepted formats are {ACCEPTED_LABELS}"
    if is_archive_description(description):
        reason += " (archives inside an archive are never expanded)"
    return reason


def _check_extension(name: str, fmt: ImageFormat) -> None:
    ext = extension(name)
    named = format_for_extension(ext)
    if named is fmt:
        return
    expected = fmt.extensions[0]
    if named is not None:
        reason = f"the file is a {fmt.label} image, but its name says {named.label}"
    elif not ext:
        reason = f"the file is a {fmt.label} image, but its name has no extension; name it {expected}"
    else:
        reason = f"the file is a {fmt.label} image, but its name ends in {ext}; name it {expected}"
    raise Rejected(name, reason)


def _decode(name: str, data: bytes, fmt: ImageFormat, limits: ImageLimits) -> tuple[int, int, str]:
    """Open with Pillow restricted to the detected format, check the header, then decode every pixel."""
    with warnings.catch_warnings():
        # Scoped: the filter list is restored on exit, so no other code sees bomb warnings turned into errors.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=[fmt.pillow_name]) as image:
                if image.format != fmt.pillow_name:
                    raise Rejected(name, f"Pillow reads it as {image.format}, not as a plain {fmt.label} image")
                width, height = image.size
                if width * height > limits.max_pixels:
                    raise Rejected(
                        name,
                        f"its header declares {width:,} x {height:,} = {width * height:,} pixels, over the "
                        f"{limits.max_pixels:,}-pixel limit (checked before decoding)",
                    )
                _check_single_image(name, image, fmt)
                image.load()
                mode = image.mode
                texts = [value for value in image.info.values() if isinstance(value, str | bytes)]
        except Rejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise Rejected(name, f"refused as a possible decompression bomb: {exc}") from None
        except UnidentifiedImageError:
            raise Rejected(
                name, f"it starts like a {fmt.label} image, but the {fmt.label} decoder cannot read it"
            ) from None
        except Exception as exc:  # any decoder failure on hostile input is a refusal, never a crash
            raise Rejected(name, f"the {fmt.label} image is damaged or incomplete: {exc}") from None
    for text in texts:
        payload = find_hidden_payload(text)
        if payload:
            raise Rejected(name, f"the {fmt.label} image's metadata carries a second payload: {payload}")
    return width, height, mode


def _check_single_image(name: str, image: Image.Image, fmt: ImageFormat) -> None:
    # `is_animated` is read from the header for every format here (for TIFF: "is there a next page?"), unlike
    # `n_frames`, which for TIFF walks every page a hostile file chooses to chain.
    if getattr(image, "is_animated", False):
        what = {
            TIFF: "the TIFF has more than one page or image",
            JPEG: "the JPEG holds more than one picture (a multi-picture MPO file)",
        }.get(fmt, f"the {fmt.label} image is animated")
        raise Rejected(
            name,
            f"{what}; only single images are accepted, because frames beyond the first would be stored but never "
            "shown for labeling or review. Split it into one file per image first",
        )
    if isinstance(image, TiffImagePlugin.TiffImageFile) and _TIFF_SUBIFDS in image.tag_v2:
        raise Rejected(
            name,
            "the TIFF carries sub-images (SubIFDs) besides the main image; only single images are accepted",
        )


def _logical_end(data: bytes, fmt: ImageFormat) -> int | None:
    """Return where the image's own structure says it ends, raising `_Malformed` if it is cut short or broken.

    TIFF has no end: its parts are found through offsets and may sit anywhere, so TIFF relies on the payload
    scan and the full decode instead.
    """
    if fmt is JPEG:
        return _jpeg_end(data)
    if fmt is PNG:
        return _png_end(data)
    if fmt is WEBP:
        return _webp_end(data)
    return None


_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RST0-7 carry no length
_JPEG_EOI, _JPEG_SOS, _JPEG_SOI = 0xD9, 0xDA, 0xD8
_JPEG_FILL = re.compile(rb"\xff+")  # fill bytes may precede any marker
_JPEG_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7]")  # in scan data, 0xFF is stuffed (00) or a restart
# Real JPEGs have tens of segments. The walk is a loop per segment, so a file built of millions of tiny segments
# must not be able to buy seconds of CPU with each upload.
_JPEG_MAX_SEGMENTS = 65_536


def _jpeg_end(data: bytes) -> int:
    """Walk the JPEG's marker segments and entropy-coded scans to the end-of-image marker."""
    size = len(data)
    pos = 2
    for _ in range(_JPEG_MAX_SEGMENTS):
        if pos >= size:
            raise _Malformed("the JPEG image is truncated: it ends before its end-of-image marker")
        fill = _JPEG_FILL.match(data, pos)
        if fill is None:
            raise _Malformed(f"the JPEG image is damaged: no marker where one must be (byte {pos:,})")
        pos = fill.end()
        if pos >= size:
            raise _Malformed("the JPEG image is truncated: it ends before its end-of-image marker")
        marker = data[pos]
        pos += 1
        if marker == _JPEG_EOI:
            return pos
        if marker in _JPEG_STANDALONE:
            continue
        if marker == _JPEG_SOI or marker < 0xC0:
            raise _Malformed(f"the JPEG image is damaged: invalid marker 0xFF{marker:02X} at byte {pos - 2:,}")
        if pos + 2 > size:
            raise _Malformed("the JPEG image is truncated inside a segment header")
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2:
            raise _Malformed(f"the JPEG image is damaged: a segment of impossible length at byte {pos - 2:,}")
        pos += length
        if pos > size:
            raise _Malformed("the JPEG image is truncated: a segment runs past the end of the file")
        if marker == _JPEG_SOS:
            scan_end = _JPEG_SCAN_END.search(data, pos)
            if scan_end is None:
                raise _Malformed("the JPEG image is truncated: its image data ends before the end-of-image marker")
            pos = scan_end.start()
    raise _Malformed(f"the JPEG image has more than {_JPEG_MAX_SEGMENTS:,} segments, far beyond any real image")


_PNG_MAX_CHUNK = 2**31 - 1
# An encoder splitting pixel data into 256-byte chunks would need a 256 MiB file to reach this many.
_PNG_MAX_CHUNKS = 1_048_576


def _png_end(data: bytes) -> int:
    """Walk the PNG's chunks, checking each chunk's CRC, to the end of IEND."""
    size = len(data)
    view = memoryview(data)
    pos = 8
    first = True
    for _ in range(_PNG_MAX_CHUNKS):
        if pos + 12 > size:
            raise _Malformed("the PNG image is truncated: it ends before its IEND chunk")
        length, kind = struct.unpack_from(">I4s", data, pos)
        if length > _PNG_MAX_CHUNK or not kind.isalpha():
            raise _Malformed(f"the PNG image is damaged: an invalid chunk header at byte {pos:,}")
        if first and kind != b"IHDR":
            raise _Malformed("the PNG image is damaged: it does not start with an IHDR chunk")
        first = False
        end = pos + 12 + length
        if end > size:
            raise _Malformed(f"the PNG image is truncated inside its {kind.decode('ascii')} chunk")
        (stored_crc,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(view[pos + 4 : end - 4]) != stored_crc:
            raise _Malformed(
                f"the PNG image is damaged: the {kind.decode('ascii')} chunk at byte {pos:,} fails its checksum"
            )
        if kind == b"IEND":
            return end
        pos = end
    raise _Malformed(f"the PNG image has more than {_PNG_MAX_CHUNKS:,} chunks, far beyond any real image")


def _webp_end(data: bytes) -> int:
    """The RIFF header states the file's length; anything past it is not part of the image."""
    if len(data) < 12:
        raise _Malformed("the WebP image is truncated: its header is incomplete")
    (riff_size,) = struct.unpack_from("<I", data, 4)
    end = 8 + riff_size
    if riff_size < 4 or end > len(data):
        raise _Malformed(
            f"the WebP image is truncated: its header declares {end:,} bytes but the file has {len(data):,}"
        )
    return end
