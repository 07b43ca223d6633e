"""A model's manifest: what the file is, how to feed it and how to read its outputs. Django-free.

The manifest is what a site's model-signing key signs (its canonical JSON bytes), and it names the model file's
SHA-256, so one signature covers both. Everything the runtime needs to run a model comes from here, never from
guesses about the graph; `check_graph` then holds the manifest to the graph it describes, so a manifest that lies
about its input is refused at import rather than failing (or worse, mis-decoding) at the first image.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

FORMAT = 1
TASKS = ("layout", "text_detection", "detection", "classification")
DECODERS = ("picodet", "dbnet", "yolo", "classifier")
RESIZES = ("stretch", "letterbox", "limit_min_side")
CHANNELS = ("RGB", "BGR")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,39}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_CLASSES = 1000
MAX_MANIFEST_BYTES = 256 * 1024


class ManifestError(ValueError):
    """The manifest is malformed or does not describe the model; the message says which field and why."""


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int, ...]  # -1 for a dynamic axis
    resize: str
    channels: str
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    min_side: int = 0  # limit_min_side: the shorter side is enlarged to at least this
    multiple: int = 32  # limit_min_side: each side is rounded to a multiple of this

    @property
    def dynamic_batch(self) -> bool:
        return self.shape[0] == -1

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of a fixed-size input; (-1, -1) where the graph takes any size."""
        return self.shape[2], self.shape[3]


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    task: str
    decoder: str
    file: str
    sha256: str
    size: int
    licence: str
    source: str
    input: InputSpec
    classes: tuple[str, ...]
    decode: dict[str, Any]
    raw: dict[str, Any]

    @property
    def ref(self) -> str:
        """How an annotation names the model that proposed it."""
        return f"{self.name}@{self.version}"

    def canonical(self) -> bytes:
        return canonical_bytes(self.raw)


def canonical_bytes(raw: dict[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8: the exact bytes a signature covers."""
    return json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _field(raw: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, kind):
        label = f"{where}{name}"
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ManifestError(f"manifest field {label!r} must be a {expected}")
    return value


def _triple(raw: dict[str, Any], name: str) -> tuple[float, float, float]:
    value = raw.get(name)
    if not isinstance(value, list) or len(value) != 3:
        raise ManifestError(f"manifest field 'input.{name}' must be a list of 3 numbers")
    numbers = []
    for entry in value:
        if isinstance(entry, bool) or not isinstance(entry, int | float) or not math.isfinite(entry):
            raise ManifestError(f"manifest field 'input.{name}' must be a list of 3 finite numbers")
        numbers.append(float(entry))
    return numbers[0], numbers[1], numbers[2]


def _input(raw: Any) -> InputSpec:
    if not isinstance(raw, dict):
        raise ManifestError("manifest field 'input' must be an object")
    shape = raw.get("shape")
    if not isinstance(shape, list) or len(shape) != 4 or not all(type(d) is int and (d > 0 or d == -1) for d in shape):
        raise ManifestError("manifest field 'input.shape' must be [batch, 3, height, width] with -1 for dynamic axes")
    if shape[1] != 3:
        raise ManifestError("manifest field 'input.shape' must have 3 channels (NCHW)")
    resize = _field(raw, "resize", str, "input.")
    if resize not in RESIZES:
        raise ManifestError(f"manifest field 'input.resize' must be one of {', '.join(RESIZES)}")
    if resize != "limit_min_side" and (shape[2] == -1 or shape[3] == -1):
        raise ManifestError(f"input.resize {resize!r} needs a fixed height and width in 'input.shape'")
    channels = _field(raw, "channels", str, "input.")
    if channels not in CHANNELS:
        raise ManifestError(f"manifest field 'input.channels' must be one of {', '.join(CHANNELS)}")
    scale = float(_field(raw, "scale", (int, float), "input."))
    std = _triple(raw, "std")
    if any(value == 0 for value in std):
        raise ManifestError("manifest field 'input.std' must not contain 0")
    min_side = int(raw.get("min_side", 0)) if isinstance(raw.get("min_side", 0), int) else -1
    multiple = int(raw.get("multiple", 32)) if isinstance(raw.get("multiple", 32), int) else -1
    if min_side < 0 or multiple < 1:
        raise ManifestError("manifest fields 'input.min_side' and 'input.multiple' must be positive integers")
    return InputSpec(
        name=_field(raw, "name", str, "input."),
        shape=tuple(shape),
        resize=resize,
        channels=channels,
        scale=scale,
        mean=_triple(raw, "mean"),
        std=std,
        min_side=min_side,
        multiple=multiple,
    )


def parse_manifest(data: bytes) -> Manifest:
    """The manifest in `data` (JSON), checked field by field; `ManifestError` names the first fault."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"the manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"the manifest is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ManifestError("the manifest must be a JSON object")
    if raw.get("format") != FORMAT:
        raise ManifestError(f"manifest field 'format' must be {FORMAT}")
    name = _field(raw, "name", str)
    if not _NAME.fullmatch(name):
        raise ManifestError("manifest field 'name' must be 1-80 lower-case letters, digits, '.', '_' or '-'")
    version = _field(raw, "version", str)
    if not _VERSION.fullmatch(version):
        raise ManifestError("manifest field 'version' must be 1-40 letters, digits, '.', '+', '_' or '-'")
    task = _field(raw, "task", str)
    if task not in TASKS:
        raise ManifestError(f"manifest field 'task' must be one of {', '.join(TASKS)}")
    decoder = _field(raw, "decoder", str)
    if decoder not in DECODERS:
        raise ManifestError(f"manifest field 'decoder' must be one of {', '.join(DECODERS)}")
    sha256 = _field(raw, "sha256", str)
    if not _SHA256.fullmatch(sha256):
        raise ManifestError("manifest field 'sha256' must be 64 lower-case hex digits")
    size = _field(raw, "size", int)
    classes = raw.get("classes")
    if (
        not isinstance(classes, list)
        or not classes
        or len(classes) > MAX_CLASSES
        or not all(isinstance(c, str) and 0 < len(c) <= 100 for c in classes)
        or len(set(classes)) != len(classes)
    ):
        raise ManifestError(f"manifest field 'classes' must be 1 to {MAX_CLASSES} distinct names of 1-100 characters")
    decode = raw.get("decode", {})
    if not isinstance(decode, dict):
        raise ManifestError("manifest field 'decode' must be an object")
    return Manifest(
        name=name,
        version=version,
        task=task,
        decoder=decoder,
        file=_field(raw, "file", str),
        sha256=sha256,
        size=size,
        licence=_field(raw, "licence", str),
        source=str(raw.get("source", "")),
        input=_input(raw.get("input")),
        classes=tuple(classes),
        decode=decode,
        raw=raw,
    )


@dataclass(frozen=True)
class GraphInput:
    """An input of the ONNX graph as the runtime reports it: ints for fixed axes, None for symbolic ones."""

    name: str
    shape: tuple[int | None, ...]


def check_graph(manifest: Manifest, inputs: list[GraphInput]) -> None:
    """Refuse a manifest whose input does not match the graph's: same name, same rank, each fixed axis equal,
    and -1 exactly where the graph's axis is dynamic."""
    if len(inputs) != 1:
        raise ManifestError(f"the model has {len(inputs)} inputs; only single-image-input models are supported")
    graph = inputs[0]
    spec = manifest.input
    if graph.name != spec.name:
        raise ManifestError(f"manifest input name {spec.name!r} does not match the graph's input {graph.name!r}")
    if len(graph.shape) != len(spec.shape):
        raise ManifestError(f"manifest input shape {list(spec.shape)} has a different rank from the graph's")
    for axis, (have, want) in enumerate(zip(graph.shape, spec.shape, strict=True)):
        if (have is None and want != -1) or (have is not None and have != want):
            shown = ["?" if d is None else d for d in graph.shape]
            raise ManifestError(
                f"manifest input shape {list(spec.shape)} does not match the graph's {shown} (axis {axis})"
            )
