"""The blob store: encrypted blobs as files under `settings.VAULT_BLOB_DIR`, written atomically.

Why these rules:
- Plaintext never touches disk. `put` encrypts the chunks as they arrive and writes only ciphertext; `read` and
  `open_blob` decrypt into memory.
- No partial blob ever carries a blob's name. Ciphertext goes to `<id>.partial` beside its final place, is
  fsynced, then renamed (atomic on POSIX) and the folder fsynced. Any error removes the temporary file; a killed
  process can leave one behind, but it holds only ciphertext, no reader ever opens it, and `sweep_orphans`
  removes it.
- Blob ids are random (uuid4 hex), sharded two levels deep by their first four hex digits so that no folder grows
  past a few thousand entries. An id is checked before it becomes a path: it can never name another file.

The caller keeps the id, sizes and SHA-256 that `put` returns; the store has no index of its own. Passing that
SHA-256 back to `read` also catches a blob replaced by an older blob of the same identity.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings

from appliance.vault.actions import VaultError
from appliance.vault.keys import KeyProvider, configured_provider
from appliance.vault.models import DataKey
from appliance.vault.stream import BlobIdentity, BlobIntegrityError, Header, decrypt, encrypt

PARTIAL_SUFFIX = ".partial"
_BLOB_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class StoredBlob:
    """What the caller records about a blob it has just stored."""

    blob_id: str
    plaintext_size: int
    ciphertext_size: int
    sha256: str  # of the plaintext, hex


class BlobNotFound(LookupError):
    """No blob has this id (never written, deleted, or its file removed)."""


def blob_root() -> Path:
    return Path(settings.VAULT_BLOB_DIR)


def blob_path(blob_id: str) -> Path:
    """Where the blob `blob_id` lives; refuses anything that is not a blob id."""
    if not _BLOB_ID.fullmatch(blob_id):
        raise ValueError(f"not a blob id: {blob_id!r}")
    return blob_root() / blob_id[:2] / blob_id[2:4] / blob_id


def _data_key(key: DataKey, provider: KeyProvider | None) -> bytes:
    """Unwrap `key`'s DEK with `provider` (default: the configured one), refusing a destroyed key."""
    if key.is_destroyed:
        raise VaultError(f"data key {key.pk} ({key.purpose}) was destroyed; its blobs are unreadable")
    provider = provider or configured_provider()
    if key.kek_id != provider.key_id:
        raise VaultError(
            f"data key {key.pk} is wrapped under KEK {key.kek_id}, but the provider holds KEK {provider.key_id}"
        )
    return provider.unwrap(key.wrapped_bytes())


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def put(
    *,
    key: DataKey,
    identity: BlobIdentity,
    chunks: Iterable[bytes],
    provider: KeyProvider | None = None,
    segment_size: int | None = None,
) -> StoredBlob:
    """Encrypt `chunks` under `key` as the blob `identity` and store it; return its id, sizes and SHA-256.

    On any error (including one raised by `chunks` itself) nothing remains on disk and the error propagates.
    """
    dek = _data_key(key, provider)
    blob_id = uuid.uuid4().hex
    final = blob_path(blob_id)
    final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = final.with_name(blob_id + PARTIAL_SUFFIX)
    digest = hashlib.sha256()
    plaintext_size = ciphertext_size = 0

    def measured() -> Iterator[bytes]:
        nonlocal plaintext_size
        for chunk in chunks:
            digest.update(chunk)
            plaintext_size += len(chunk)
            yield chunk

    header = Header.new(segment_size or settings.VAULT_SEGMENT_SIZE)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            for sealed in encrypt(dek, identity, measured(), header=header):
                out.write(sealed)
                ciphertext_size += len(sealed)
            out.flush()
            os.fsync(out.fileno())
        os.rename(partial, final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _fsync_folder(final.parent)
    return StoredBlob(blob_id, plaintext_size, ciphertext_size, digest.hexdigest())


def open_blob(
    *,
    key: DataKey,
    identity: BlobIdentity,
    blob_id: str,
    provider: KeyProvider | None = None,
    expected_sha256: str | None = None,
) -> Iterator[bytes]:
    """Yield the blob's plaintext one segment at a time, as it is decrypted and checked.

    Plaintext already yielded is void if a later segment raises `BlobIntegrityError`: a caller that must not act on
    a partial image uses `read`, which returns nothing until the whole blob has been checked. With
    `expected_sha256` (what `put` returned), the last step also checks that this is that very content.
    """
    dek = _data_key(key, provider)
    path = blob_path(blob_id)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise BlobNotFound(f"blob {blob_id} does not exist") from None
    with handle:
        digest = hashlib.sha256() if expected_sha256 is not None else None
        for plaintext in decrypt(dek, identity, handle):
            if digest is not None:
                digest.update(plaintext)
            yield plaintext
        if digest is not None and digest.hexdigest() != expected_sha256:
            raise BlobIntegrityError(
                f"blob {blob_id} decrypts, but is not the content recorded for it (an older or other version)",
                reason="digest",
            )


def read(
    *,
    key: DataKey,
    identity: BlobIdentity,
    blob_id: str,
    provider: KeyProvider | None = None,
    expected_sha256: str | None = None,
) -> bytes:
    """The whole plaintext, returned only once every segment (and the digest, if given) has been checked."""
    return b"".join(
        open_blob(key=key, identity=identity, blob_id=blob_id, provider=provider, expected_sha256=expected_sha256)
    )


def delete(*, blob_id: str) -> bool:
    """Remove the blob's file; False if there was none. Destroying the data key is what makes copies worthless."""
    path = blob_path(blob_id)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    _fsync_folder(path.parent)
    return True


def sweep_orphans(*, older_than: timedelta = timedelta(minutes=60)) -> list[Path]:
    """Remove `*.partial` files older than `older_than` (left by a killed writer); return what was removed.

    The age threshold keeps this safe beside a running `put`, whose temporary file is being written right now.
    """
    root = blob_root()
    if not root.is_dir():
        return []
    cutoff = time.time() - older_than.total_seconds()
    removed = []
    for path in root.glob(f"*/*/*{PARTIAL_SUFFIX}"):
        try:
            if path.stat().st_mtime <= cutoff:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            continue  # finished or removed by someone else meanwhile
    return removed
