"""Image bytes to the tensor a model takes, as its manifest says, in memory only. Django-free.

Decoding goes through Pillow (the same decoder the import validated the image with), JPEGs at the smallest DCT
scale that still covers the model's input (much less work for a large scan fed to an 800-pixel model). The
returned `Transform` maps the model's input coordinates back to the original image's pixels, so decoders never
need to know how the image was resized.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from appliance.inference.manifest import InputSpec


@dataclass(frozen=True)
class Transform:
    """original = (model - pad) / scale, per axis."""

    scale_x: float
    scale_y: float
    pad_x: float = 0.0
    pad_y: float = 0.0
    width: int = 0  # of the original image
    height: int = 0

    def to_original(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.clip((xs - self.pad_x) / self.scale_x, 0, self.width)
        y = np.clip((ys - self.pad_y) / self.scale_y, 0, self.height)
        return x, y


@dataclass(frozen=True)
class Prepared:
    tensor: np.ndarray  # [3, H, W] float32
    transform: Transform


def target_size(spec: InputSpec, width: int, height: int) -> tuple[int, int]:
    """(width, height) the image is resized to before padding."""
    if spec.resize == "limit_min_side":
        ratio = max(1.0, spec.min_side / min(width, height)) if spec.min_side else 1.0
        m = spec.multiple
        return max(m, round(width * ratio / m) * m), max(m, round(height * ratio / m) * m)
    model_h, model_w = spec.size
    if spec.resize == "letterbox":
        ratio = min(model_w / width, model_h / height)
        return max(1, round(width * ratio)), max(1, round(height * ratio))
    return model_w, model_h


def _decoded(data: bytes, want: tuple[int, int]) -> tuple[Image.Image, int, int]:
    opened = Image.open(io.BytesIO(data))
    width, height = opened.size
    if opened.format == "JPEG":
        opened.draft("RGB", want)  # DCT scaling: only down to a size still covering `want`
    image: Image.Image = opened.convert("RGB") if opened.mode != "RGB" else opened
    return image, width, height


def preprocess(data: bytes, spec: InputSpec) -> Prepared:
    """The normalised CHW tensor of the image in `data`, and how to map back to its pixels."""
    with Image.open(io.BytesIO(data)) as probe:
        width, height = probe.size
    want = target_size(spec, width, height)
    image, width, height = _decoded(data, want)
    resized = image.resize(want, Image.Resampling.BILINEAR) if image.size != want else image
    pixels = np.asarray(resized, dtype=np.float32)
    if spec.channels == "BGR":
        pixels = pixels[:, :, ::-1]
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    normalised = (pixels * np.float32(spec.scale) - mean) / std
    chw = np.ascontiguousarray(normalised.transpose(2, 0, 1), dtype=np.float32)
    scale_x, scale_y = want[0] / width, want[1] / height
    if spec.resize != "letterbox":
        return Prepared(chw, Transform(scale_x, scale_y, 0.0, 0.0, width, height))
    model_h, model_w = spec.size
    pad_x, pad_y = (model_w - want[0]) // 2, (model_h - want[1]) // 2
    canvas = np.empty((3, model_h, model_w), dtype=np.float32)
    canvas[:] = ((114.0 * spec.scale - mean) / std).reshape(3, 1, 1)
    canvas[:, pad_y : pad_y + want[1], pad_x : pad_x + want[0]] = chw
    return Prepared(canvas, Transform(scale_x, scale_y, float(pad_x), float(pad_y), width, height))


def stack(prepared: list[Prepared]) -> np.ndarray:
    """One batch tensor; only same-sized inputs can be batched (the caller groups them)."""
    return np.stack([p.tensor for p in prepared])
