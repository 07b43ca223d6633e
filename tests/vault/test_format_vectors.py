"""docs/formats/blob.md stays true: its test vectors are what the code writes and reads, and what its prose says.

The vectors are read from the document itself. Each is checked three ways: `stream.encrypt` reproduces it byte for
byte, `stream.decrypt` inverts it, and an independent reading of the document's rules (HKDF, nonce, AAD and
segment layout, built here straight from `cryptography`'s primitives) computes the same bytes. So neither the
code nor the document can change without this failing. V-222588, V-222589.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from appliance.vault.stream import BlobIdentity, Header, decrypt_bytes, derive_key, encrypt

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "formats" / "blob.md"


def load_vectors() -> dict[str, Any]:
    text = DOCUMENT.read_text(encoding="utf-8")
    section = text.split("## Test vectors", 1)[1]
    blocks = re.findall(r"```json\n(.*?)\n```", section, flags=re.DOTALL)
    assert len(blocks) == 1, "the Test vectors section holds exactly one json block"
    return json.loads(blocks[0])


SUITE = load_vectors()
VECTORS = SUITE["vectors"]


def shared() -> tuple[bytes, BlobIdentity, Header]:
    identity = BlobIdentity(**SUITE["identity"])
    header = Header(SUITE["segment_size"], bytes.fromhex(SUITE["salt"]), bytes.fromhex(SUITE["nonce_prefix"]))
    return bytes.fromhex(SUITE["dek"]), identity, header


def as_documented(
    dek: bytes, identity: dict[str, str], segment_size: int, salt: bytes, prefix: bytes, plaintext: bytes
):
    """The blob, computed from the document's prose alone: returns (header, aad, blob_key, segments)."""
    u32 = struct.Struct(">I").pack
    header = b"APVB" + b"\x01" + u32(segment_size) + salt + prefix
    aad = b"".join(u32(len(raw)) + raw for raw in (identity[f].encode() for f in ("dataset", "item", "kind")))
    info = b"appliance.vault.blob" + b"\x01" + u32(segment_size) + aad
    blob_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(dek)
    pieces = [plaintext[i : i + segment_size] for i in range(0, len(plaintext), segment_size)] or [b""]
    aead = AESGCM(blob_key)
    segments = [
        aead.encrypt(prefix + u32(i) + (b"\x01" if i == len(pieces) - 1 else b"\x00"), piece, aad)
        for i, piece in enumerate(pieces)
    ]
    return header, aad, blob_key, segments


def test_the_document_covers_empty_one_and_several_segments():
    counts = {len(vector["segments"]) for vector in VECTORS}
    assert {1, 2, 3} <= counts
    assert any(vector["plaintext"] == "" for vector in VECTORS)
    sizes = {len(bytes.fromhex(vector["plaintext"])) for vector in VECTORS}
    assert any(size and size % SUITE["segment_size"] == 0 for size in sizes), "a full last segment is covered"


def test_the_shared_values_are_what_the_code_derives():
    dek, identity, header = shared()
    assert header.encode().hex() == SUITE["header"]
    assert identity.encode().hex() == SUITE["aad"]
    assert derive_key(dek, header, identity).hex() == SUITE["blob_key"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["name"])
def test_encryption_reproduces_the_vector(vector):
    dek, identity, header = shared()
    plaintext = bytes.fromhex(vector["plaintext"])
    produced = list(encrypt(dek, identity, [plaintext], header=header))
    assert produced[0].hex() == SUITE["header"]
    assert [segment.hex() for segment in produced[1:]] == vector["segments"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["name"])
def test_decryption_inverts_the_vector(vector):
    dek, identity, _ = shared()
    blob = bytes.fromhex(SUITE["header"] + "".join(vector["segments"]))
    assert decrypt_bytes(dek, identity, blob).hex() == vector["plaintext"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["name"])
def test_the_vector_follows_from_the_documented_rules(vector):
    header, aad, blob_key, segments = as_documented(
        bytes.fromhex(SUITE["dek"]),
        SUITE["identity"],
        SUITE["segment_size"],
        bytes.fromhex(SUITE["salt"]),
        bytes.fromhex(SUITE["nonce_prefix"]),
        bytes.fromhex(vector["plaintext"]),
    )
    assert header.hex() == SUITE["header"]
    assert aad.hex() == SUITE["aad"]
    assert blob_key.hex() == SUITE["blob_key"]
    assert [segment.hex() for segment in segments] == vector["segments"]
