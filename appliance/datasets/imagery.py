"""Derived images, made in memory from validated originals: the grid thumbnail and, for large images, a preview.

Both are re-encoded by Pillow from decoded pixels (never copied bytes), so nothing of the original's container
(metadata, trailing data, embedded profiles with payloads) survives into them. JPEG where the image is opaque,
PNG where it has transparency. The preview exists so that a browser never has to decode a 20,000-pixel-wide
original to show it: the item page shows the preview and offers the original for download.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import Image

THUMBNAIL_EDGE = 256
PREVIEW_EDGE = 2048
JPEG_QUALITY = 85


@dataclass(frozen=True)
class Derived:
    data: bytes
    format: str  # "JPEG" or "PNG"
    width: int
    height: int


def _flatten(image: Image.Image) -> tuple[Image.Image, str]:
    """Pixels ready to encode, and the format that keeps them: PNG for transparency, JPEG otherwise.

    Returns `image` itself when its mode is already right: a conversion to the same mode is a full copy.
    """
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        return (image if image.mode == "RGBA" else image.convert("RGBA")), "PNG"
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit and float TIFFs: scale to 8 bits to show
        return image.point(lambda value: value / 256).convert("L"), "JPEG"
    if image.mode in ("L", "RGB"):
        return image, "JPEG"
    return image.convert("RGB"), "JPEG"


def fitted(width: int, height: int, edge: int) -> tuple[int, int]:
    """The size of a `width` x `height` image scaled to fit an `edge`-sided square (never enlarged)."""
    scale = min(1.0, edge / max(width, height))
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    else:
        image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def downscaled(original: bytes, *, edge: int) -> Derived:
    """The image fitted inside an `edge`-sided square (never enlarged), re-encoded; `original` is already validated."""
    with Image.open(io.BytesIO(original)) as image:
        # JPEG: decode straight at the smallest scale that still covers the target (less memory, much faster).
        # The box must be the fitted size: Pillow reduces only while *both* sides stay at or above the box.
        image.draft(image.mode if image.mode in ("L", "RGB") else "RGB", fitted(*image.size, edge))
        image.load()
        pixels, fmt = _flatten(image)
        pixels.thumbnail((edge, edge), Image.Resampling.LANCZOS)
        return Derived(_encode(pixels, fmt), fmt, pixels.width, pixels.height)


def thumbnail(original: bytes) -> Derived:
    return downscaled(original, edge=THUMBNAIL_EDGE)


def needs_preview(width: int, height: int, *, over_pixels: int) -> bool:
    """Whether an image is too large to send to a browser whole (configurable, `datasets.preview_over_pixels`)."""
    return width * height > over_pixels


def preview(original: bytes) -> Derived:
    return downscaled(original, edge=PREVIEW_EDGE)
