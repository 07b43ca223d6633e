"""The audit signing key: one Ed25519 key that signs checkpoints, kept in its own file apart from the data keys.

Why a separate key (V-222507): whoever can read the data keys must not thereby be able to forge the audit log's
commitments, and rotating one must not touch the other. The key lives in `KEY_DIR/audit-signing.key` (PEM PKCS#8,
0600). Development generates it on first use, as settings.py does with the development secret key; production
never generates one, because a silently new key would start a second, unrelated history: a missing, unreadable or
group/world-accessible file stops the process with a message naming the path.

Public halves of earlier keys stay known after a rotation as `KEY_DIR/audit-verifier-<key hash>.pub` (the note's
verifier-key text), so the appliance can still verify checkpoints its retired keys signed. The private half of a
retired key is destroyed by the rotation. Nothing here ever logs or returns key bytes other than public ones.

This module reads files only: no database, no audit records (see `checkpoints.py` and the `audit` command).
"""

from __future__ import annotations

import os
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from django.conf import settings

from appliance.lib.config import ConfigError, read_secret_file
from audit.checkpoint import CheckpointError, SigningKey, VerifierKey

KEY_FILE = "audit-signing.key"
PENDING_FILE = "audit-signing.key.new"  # a rotation's new key, until its checkpoint has committed
RETIRED_PATTERN = "audit-verifier-*.pub"
_SETTING = "paths.key_dir"


@dataclass(frozen=True)
class _Cached:
    stamp: tuple[int, ...]  # inode, mode, size, mtime, ctime: a rotation or chmod since means reading it again
    key: SigningKey


_cache: dict[Path, _Cached] = {}


def key_path() -> Path:
    return Path(settings.KEY_DIR) / KEY_FILE


def pending_path() -> Path:
    return Path(settings.KEY_DIR) / PENDING_FILE


def _pem(private: Ed25519PrivateKey) -> bytes:
    return private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def _write_new(path: Path, private: Ed25519PrivateKey) -> None:
    """Create `path` 0600 with the key, never replacing an existing file (O_EXCL)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(_pem(private))
        handle.flush()
        os.fsync(handle.fileno())


def _read(path: Path) -> SigningKey:
    """Load a key file with the secret-file checks (exists, not empty, no group/other access)."""
    text = read_secret_file(path, setting=_SETTING)
    try:
        private = load_pem_private_key(text.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError) as exc:  # the message never carries the key material
        raise ConfigError(f"setting '{_SETTING}': audit signing key {path} is not a PEM PKCS#8 key") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise ConfigError(f"setting '{_SETTING}': audit signing key {path} is not an Ed25519 key")
    try:
        return SigningKey(name=settings.APPLIANCE_ID, private=private)
    except CheckpointError as exc:
        raise ConfigError(f"setting 'appliance.id' cannot name an audit key: {exc}") from exc


def load_signing_key() -> SigningKey:
    """The current audit signing key; generated on first use in development, required in production."""
    path = key_path()
    if not path.exists() and not settings.PRODUCTION:
        with suppress(FileExistsError):  # another process generated it first: use theirs
            _write_new(path, Ed25519PrivateKey.generate())
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigError(
            f"setting '{_SETTING}': the audit signing key {path} is missing or unreadable ({exc.strerror}); "
            "production never generates one (install it, mode 0600)"
        ) from exc
    stamp = (info.st_ino, info.st_mode, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    cached = _cache.get(path)
    if cached is None or cached.stamp != stamp:
        cached = _Cached(stamp=stamp, key=_read(path))
        _cache[path] = cached
    return cached.key


def retired_path(key: VerifierKey) -> Path:
    return Path(settings.KEY_DIR) / f"audit-verifier-{key.hash.hex()}.pub"


def known_verifier_keys() -> dict[str, VerifierKey]:
    """Every key this appliance has signed with: the current one and the retired ones, by key id."""
    current = load_signing_key().verifier
    keys = {current.key_id: current}
    for path in sorted(Path(settings.KEY_DIR).glob(RETIRED_PATTERN)):
        try:
            key = VerifierKey.parse(path.read_text(encoding="utf-8"))
        except (OSError, CheckpointError) as exc:
            raise ConfigError(f"setting '{_SETTING}': retired audit key {path} is unreadable ({exc})") from exc
        keys[key.key_id] = key
    return keys


def prepare_rotation() -> SigningKey:
    """Write a new key to the pending file (0600) and return it; the current key stays in force.

    A pending file left by an interrupted rotation whose checkpoint never committed is replaced: that key was
    never announced, so nothing can depend on it.
    """
    path = pending_path()
    path.unlink(missing_ok=True)
    private = Ed25519PrivateKey.generate()
    _write_new(path, private)
    return SigningKey(name=settings.APPLIANCE_ID, private=private)


def pending_key() -> SigningKey | None:
    """The key of a rotation that was prepared but not yet switched to, if any."""
    path = pending_path()
    return _read(path) if path.exists() else None


def finish_rotation(old: VerifierKey) -> None:
    """Switch to the pending key once its rotation checkpoint has committed; keep the old public key known.

    The old public key is written first, so a crash between the two steps leaves both keys known. The rename
    replaces (and so destroys) the old private key: a retired key can sign nothing any more.
    """
    retired = retired_path(old)
    if not retired.exists():
        retired.write_text(old.text() + "\n", encoding="utf-8")
        retired.chmod(0o644)
    os.replace(pending_path(), key_path())
    _cache.pop(key_path(), None)
