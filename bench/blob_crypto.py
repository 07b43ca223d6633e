"""Cost of the blob format: `appliance.vault.stream` against bare AES-256-GCM over the same bytes in one call.

Every stored image is encrypted on upload and decrypted to be served, thumbnailed or inferred, so the format must
not be what makes an appliance slow. The baseline is the least any AES-GCM encryption at rest must do: one
`AESGCM.encrypt` and one `AESGCM.decrypt` over the whole 16 MiB payload, in memory. Ours does what the blob store
does: derive the blob's key (HKDF), seal 1 MiB segments as the payload streams in (arriving as 64 KiB upload
chunks), write each to a file-like object, then read it back segment by segment. The ratio is ours_rate /
bare_rate; the goal is 0.8. A second figure (`ours_joined`, `joined_ratio`) assembles the blob and the plaintext in
one piece each, as serving does: the baseline's one-shot calls allocate and fill two fresh 16 MiB buffers, which
costs more than the cipher on this machine (page faults), and the joined variant pays that cost too.

Bare and ours alternate for ROUNDS rounds over the same payload, so that drift on a shared machine falls on both
alike. Standalone: `.venv/bin/python -m bench.blob_crypto [ROUNDS]`.
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Iterator

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


def _chunks(payload: bytes) -> Iterator[memoryview]:
    view = memoryview(payload)
    return (view[i : i + UPLOAD_CHUNK] for i in range(0, len(payload), UPLOAD_CHUNK))


def ours(dek: bytes, payload: bytes) -> int:
    """The blob format both ways, as the store uses it: each sealed segment written to a file as it is made
    (`blobs.put`), then read back segment by segment (`blobs.open_blob`); returns the bytes recovered."""
    out = io.BytesIO()
    for sealed in encrypt(dek, IDENTITY, _chunks(payload), segment_size=SEGMENT):
        out.write(sealed)
    out.seek(0)
    return sum(len(piece) for piece in decrypt(dek, IDENTITY, out))


def ours_joined(dek: bytes, payload: bytes) -> int:
    """The same, but the blob assembled in one piece and the plaintext joined back into one (as `blobs.read`
    does for serving): the cost of allocating two 16 MiB buffers, which the one-shot baseline pays as well."""
    blob = b"".join(encrypt(dek, IDENTITY, _chunks(payload), segment_size=SEGMENT))
    return len(b"".join(decrypt(dek, IDENTITY, io.BytesIO(blob))))


def measure(rounds: int = ROUNDS) -> BenchResult:
    payload = os.urandom(PAYLOAD)
    dek, nonce = os.urandom(32), os.urandom(12)
    aead = AESGCM(os.urandom(32))
    # Warm-up, and all three really round-trip.
    assert bare(aead, nonce, payload) == ours(dek, payload) == ours_joined(dek, payload) == PAYLOAD
    bare_seconds = ours_seconds = joined_seconds = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        bare(aead, nonce, payload)
        bare_seconds += time.perf_counter() - started
        started = time.perf_counter()
        ours(dek, payload)
        ours_seconds += time.perf_counter() - started
        started = time.perf_counter()
        ours_joined(dek, payload)
        joined_seconds += time.perf_counter() - started
    mib = rounds * PAYLOAD / (1 << 20)
    bare_rate, ours_rate, joined_rate = mib / bare_seconds, mib / ours_seconds, mib / joined_seconds
    return BenchResult(
        name="blob_crypto",
        ratio=ours_rate / bare_rate,
        goal=GOAL,
        figures={
            "ours": f"{ours_rate:.0f}MiB/s",
            "ours_joined": f"{joined_rate:.0f}MiB/s",
            "joined_ratio": f"{joined_rate / bare_rate:.3f}",
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
