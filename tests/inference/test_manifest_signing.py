"""Manifests and signatures on their own (no database): what a model publisher's files must look like."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.inference.manifest import GraphInput, ManifestError, canonical_bytes, check_graph, parse_manifest
from appliance.inference.signing import SignatureError, development_key, parse_signature, sign, verify

BASE = {
    "format": 1,
    "name": "toy",
    "version": "1",
    "task": "detection",
    "decoder": "yolo",
    "file": "toy.onnx",
    "sha256": "0" * 64,
    "size": 10,
    "licence": "Apache-2.0",
    "input": {
        "name": "images",
        "shape": [1, 3, 64, 64],
        "resize": "letterbox",
        "channels": "RGB",
        "scale": 1 / 255,
        "mean": [0, 0, 0],
        "std": [1, 1, 1],
    },
    "classes": ["a", "b"],
}


def manifest(**changes: object) -> bytes:
    return canonical_bytes({**BASE, **changes})


def test_a_complete_manifest_parses() -> None:
    parsed = parse_manifest(manifest())
    assert parsed.ref == "toy@1"
    assert parsed.input.size == (64, 64)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"decoder": "magic"}, "'decoder' must be one of"),
        ({"sha256": "abc"}, "'sha256' must be 64"),
        ({"classes": []}, "'classes' must be 1 to"),
        ({"classes": ["a", "a"]}, "distinct"),
        ({"name": "Bad Name"}, "'name' must be"),
        ({"input": {**BASE["input"], "shape": [1, 1, 64, 64]}}, "3 channels"),  # type: ignore[dict-item]
        ({"input": {**BASE["input"], "std": [1, 0, 1]}}, "must not contain 0"),  # type: ignore[dict-item]
        ({"input": {**BASE["input"], "shape": [1, 3, -1, -1]}}, "needs a fixed height"),  # type: ignore[dict-item]
    ],
)
def test_a_bad_manifest_is_refused_naming_the_field(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifest(manifest(**changes))


def test_a_manifest_that_is_not_json_is_refused() -> None:
    with pytest.raises(ManifestError, match="not JSON"):
        parse_manifest(b"\x00\x01not json")


def test_the_graph_check_compares_every_axis() -> None:
    parsed = parse_manifest(manifest())
    check_graph(parsed, [GraphInput("images", (1, 3, 64, 64))])
    with pytest.raises(ManifestError, match=r"does not match the graph's \[1, 3, 640, 640\] \(axis 2\)"):
        check_graph(parsed, [GraphInput("images", (1, 3, 640, 640))])
    with pytest.raises(ManifestError, match="does not match the graph's input 'x'"):
        check_graph(parsed, [GraphInput("x", (1, 3, 64, 64))])
    with pytest.raises(ManifestError, match=r"axis 0"):
        check_graph(parsed, [GraphInput("images", (None, 3, 64, 64))])


def test_a_signature_verifies_only_over_the_exact_bytes_signed() -> None:
    key = Ed25519PrivateKey.generate()
    body = manifest()
    detached = parse_signature(sign(key, body).encode())
    verify(key.public_key(), detached, body)
    altered = bytearray(body)
    altered[10] ^= 1
    with pytest.raises(SignatureError, match="does not verify"):
        verify(key.public_key(), detached, bytes(altered))
    with pytest.raises(SignatureError, match="does not verify"):
        verify(Ed25519PrivateKey.generate().public_key(), detached, body)


def test_a_malformed_signature_file_is_refused() -> None:
    with pytest.raises(SignatureError, match="malformed"):
        parse_signature(json.dumps({"algorithm": "ed25519"}).encode())
    with pytest.raises(SignatureError, match="ed25519"):
        parse_signature(json.dumps({"algorithm": "rsa"}).encode())


def test_the_development_key_is_made_once_and_private(tmp_path) -> None:
    first = development_key(tmp_path / "keys")
    again = development_key(tmp_path / "keys")
    path = tmp_path / "keys" / "model-signing-dev.pem"
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "keys").stat().st_mode & 0o777 == 0o700
    message = b"same key"
    verify(again.public_key(), sign(first, message), message)
