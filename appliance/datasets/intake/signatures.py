"""Recognises what a run of bytes is from its content, and finds payloads hidden inside an image.

Why from the bytes and never from the name: a name or a browser's content type is whatever the uploader says;
the bytes are what a decoder, a browser or an analyst's tool will act on. Why look for hidden payloads: a file that
is two things at once (a polyglot: an image that is also a ZIP, a JAR, an HTML page or a PDF) passes an image check
and then does something else in the hands of another program. In a classified enclave there is a second reason: a
payload hidden beside the pixels is data that nobody labeling the image ever sees, stored and exported under the
image's classification. So the appliance stores nothing that carries one.

The searches are chosen to be exact enough that ordinary compressed pixel data does not trip them: each needs at
least six specific bytes, which on random data is about one false match in ten thousand 100 MB images (the
arithmetic is in docs/import-safety.md); a refusal gives the byte offset so a security officer can judge it.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class ImageFormat:
    """One accepted image format: the name Pillow gives it, what people call it, its MIME type and extensions."""

    pillow_name: str
    label: str
    mime_type: str
    extensions: tuple[str, ...]


JPEG = ImageFormat("JPEG", "JPEG", "image/jpeg", (".jpg", ".jpeg", ".jpe"))
PNG = ImageFormat("PNG", "PNG", "image/png", (".png",))
TIFF = ImageFormat("TIFF", "TIFF", "image/tiff", (".tif", ".tiff"))
WEBP = ImageFormat("WEBP", "WebP", "image/webp", (".webp",))
ACCEPTED_FORMATS = (JPEG, PNG, TIFF, WEBP)
ACCEPTED_LABELS = "JPEG, PNG, TIFF and WebP"

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic TIFF and BigTIFF, both byte orders


def accepted_format(data: bytes) -> ImageFormat | None:
    """Return the accepted format whose signature `data` starts with, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data[:4] in _TIFF_MAGIC:
        return TIFF
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    return None


def format_for_extension(ext: str) -> ImageFormat | None:
    """Return the accepted format an extension (with its dot, lower case) names, or None."""
    for fmt in ACCEPTED_FORMATS:
        if ext in fmt.extensions:
            return fmt
    return None


# (offset, signature, description). Order matters only where one signature is a prefix of another.
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"GIF87a", "a GIF image"),
    (0, b"GIF89a", "a GIF image"),
    (0, b"%PDF-", "a PDF document"),
    (0, b"PK\x03\x04", "a ZIP archive"),
    (0, b"PK\x05\x06", "a ZIP archive"),
    (0, b"PK\x07\x08", "a ZIP archive"),
    (0, b"\x1f\x8b", "a gzip-compressed file"),
    (257, b"ustar", "a tar archive"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (0, b"Rar!\x1a\x07", "a RAR archive"),
    (0, b"\xfd7zXZ\x00", "an xz-compressed file"),
    (0, b"\x28\xb5\x2f\xfd", "a Zstandard-compressed file"),
    (0, b"8BPS", "a Photoshop document"),
    (4, b"ftyp", "an ISO media file (HEIC, AVIF or MP4)"),
    (0, b"\x00\x00\x00\x0cjP  \r\n\x87\n", "a JPEG 2000 image"),
    (0, b"\xff\x4f\xff\x51", "a JPEG 2000 codestream"),
    (0, b"\x00\x00\x00\x0cJXL \r\n\x87\n", "a JPEG XL image"),
    (0, b"\xff\x0a", "a JPEG XL image"),
    (0, b"\x00\x00\x01\x00", "a Windows icon"),
    (0, b"\x7fELF", "an ELF executable"),
    (0, b"MZ", "a Windows executable"),
    (0, b"#!", "a script"),
    (0, b"RIFF", "a RIFF file (audio or video, not WebP)"),
)
_ARCHIVES = frozenset(
    {
        "a ZIP archive",
        "a Java archive (JAR, a ZIP archive)",
        "a gzip-compressed file",
        "a tar archive",
        "a 7-Zip archive",
        "a RAR archive",
        "a bzip2-compressed file",
        "an xz-compressed file",
        "a Zstandard-compressed file",
    }
)
_BMP_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})


def describe(data: bytes) -> str:
    """Say in words what `data` is ("a GIF image", "an HTML document", "a ZIP archive"), for refusal messages."""
    fmt = accepted_format(data)
    if fmt is not None:
        return f"a {fmt.label} image"
    if not data:
        return "empty"
    for offset, signature, description in _SIGNATURES:
        if data.startswith(signature, offset):
            if description == "a ZIP archive" and b"META-INF/" in data:
                return "a Java archive (JAR, a ZIP archive)"
            return description
    if data.startswith(b"BM") and len(data) >= 18 and struct.unpack_from("<I", data, 14)[0] in _BMP_HEADER_SIZES:
        return "a BMP image"
    if data.startswith(b"BZh") and data[3:4].isdigit():
        return "a bzip2-compressed file"
    return _describe_text(data) or "data of an unrecognised type"


def is_archive_description(description: str) -> bool:
    return description in _ARCHIVES


def _describe_text(data: bytes) -> str | None:
    head = data[:4096].removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "an SVG image (XML text)"
    if head.startswith((b"<!doctype html", b"<html", b"<script", b"<body", b"<head")):
        return "an HTML document"
    if head.startswith(b"<?php"):
        return "a PHP script"
    if head.startswith(b"<?xml"):
        return "an XML document"
    try:
        text = data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text and all(char.isprintable() or char in "\t\r\n" for char in text):
        return "a text file"
    return None


# Markup a browser would run if it ever sniffed the file as HTML, and server-side script openers. Each pattern
# starts with "<" so the scan is a fast memchr for that byte; everything after it is case-insensitive.
_MARKUP = re.compile(
    rb"<(?i:script[\s>/]|html[\s>]|!doctype\s+html|\?php\s|iframe[\s>/]|body[\s>]|object[\s>]|embed[\s>]"
    rb"|(?:img|svg)[^<>]{0,256}?\bon[a-z]+\s*=)"
)
_PDF = re.compile(rb"%PDF-\d")
_ZIP_END = b"PK\x05\x06"
_ZIP_CENTRAL = b"PK\x01\x02"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP_MAX_TAIL = 22 + 0xFFFF  # an end record plus the longest comment: where every ZIP reader looks


def find_hidden_payload(data: bytes | str) -> str | None:
    """Describe a script, HTML, PDF or ZIP payload anywhere in `data`, or return None.

    A ZIP is found the way ZIP readers find one: by its end record near the end of the file, whatever comes
    before it, so an archive hidden in an image's metadata is found even when nothing follows the image.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    markup = _MARKUP.search(raw)
    if markup is not None:
        snippet = markup.group()[:24].decode("ascii", "backslashreplace")
        return f"HTML or script markup ({snippet!r} at byte {markup.start():,})"
    pdf = _PDF.search(raw)
    if pdf is not None:
        return f"a PDF document (its header at byte {pdf.start():,})"
    zip_end = find_zip_end(raw)
    if zip_end is not None:
        kind = "a Java archive (JAR)" if b"META-INF/" in raw[max(0, zip_end - 0x10000) :] else "a ZIP archive"
        return f"{kind} (its directory ends at byte {zip_end:,})"
    return None


def find_zip_end(data: bytes) -> int | None:
    """Return the offset of a ZIP end record that points at a real central directory, or None."""
    start = max(0, len(data) - _ZIP_MAX_TAIL)
    pos = data.rfind(_ZIP_END, start)
    while pos != -1:
        if pos + 22 <= len(data):
            cd_size, cd_offset = struct.unpack_from("<II", data, pos + 12)
            if data.startswith(_ZIP64_LOCATOR, max(0, pos - 20)):
                return pos
            directory_here = pos - cd_size >= 0 and data.startswith(_ZIP_CENTRAL, pos - cd_size)
            if cd_size == 0 or directory_here or data.startswith(_ZIP_CENTRAL, cd_offset):
                return pos
        pos = data.rfind(_ZIP_END, start, pos)
    return None
