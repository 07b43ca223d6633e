"""Cost of the blob format: `appliance.vault.stream` against bare AES-256-GCM over the same bytes in one call.

Every stored image is encrypted on upload and decrypted to be served, thumbnailed or inferred, so the format must
not be what makes an appliance slow. The baseline is the least any AES-GCM encryption at rest must do: one
`AESGCM.encrypt` and one `AESGCM.decrypt` over the whole 16 MiB payload, in memory. Ours does what the blob store
does: derive the blob's key (HKDF), seal 1 MiB segments as the payload streams in (arriving as 64 KiB upload
chunks), assemble the blob, then read it back through a file-like object, opening segment by segment. The ratio is
ours_rate / bare_rate; the goal is 0.8.

Bare and ours alternate for ROUNDS rounds over the same payload, so that drift on a shared machine falls on both
alike. Standalone: `.venv/bin/python -m bench.blob_crypto [ROUNDS]`.
"""

from __future__ import annotations

import io
import os
import sys
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from appliance.vault.stream import BlobIdentity, decrypt, encrypt
from bench._common import BenchResult

GOAL = 0.8
PAYLOAD = 16 << 20
UPLOAD_CHUNK = 64 << 10
SEGMENT = 1 << 20
ROUNDS = 12
IDENTITY = BlobIdentity("dataset:1", "item:1", "image")


def bare(aead: AESGCM, nonce: bytes, payload: bytes) -> int:
    """The baseline: one-shot AES-256-GCM both ways; returns the bytes recovered."""
    return len(aead.decrypt(nonce, aead.encrypt(nonce, payload, None), None))


def ours(dek: bytes, payload: bytes) -> int:
    """The blob format both ways, as the store uses it; returns the bytes recovered."""
    view = memoryview(payload)
    chunks = (view[i : i + UPLOAD_CHUNK] for i in range(0, len(payload), UPLOAD_CHUNK))
    blob = b"".join(encrypt(dek, IDENTITY, chunks, segment_size=SEGMENT))
    return sum(len(piece) for piece in decrypt(dek, IDENTITY, io.BytesIO(blob)))


def measure(rounds: int = ROUNDS) -> BenchResult:
    payload = os.urandom(PAYLOAD)
    dek, nonce = os.urandom(32), os.urandom(12)
    aead = AESGCM(os.urandom(32))
    assert bare(aead, nonce, payload) == ours(dek, payload) == PAYLOAD  # warm-up, and both really round-trip
    bare_seconds = ours_seconds = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        bare(aead, nonce, payload)
        bare_seconds += time.perf_counter() - started
        started = time.perf_counter()
        ours(dek, payload)
        ours_seconds += time.perf_counter() - started
    mib = rounds * PAYLOAD / (1 << 20)
    bare_rate, ours_rate = mib / bare_seconds, mib / ours_seconds
    return BenchResult(
        name="blob_crypto",
        ratio=ours_rate / bare_rate,
        goal=GOAL,
        figures={
            "ours": f"{ours_rate:.0f}MiB/s",
            "bare": f"{bare_rate:.0f}MiB/s",
            "payload": f"{PAYLOAD >> 20}MiB",
            "segment": f"{SEGMENT >> 20}MiB",
            "rounds": str(rounds),
        },
    )


def run() -> list[BenchResult]:
    return [measure()]


if __name__ == "__main__":
    print(measure(int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS).line(), flush=True)
