"""Key providers: where the key-encryption key (KEK) lives, and the only code that ever touches it.

A provider wraps and unwraps data keys (DEKs) with AES key wrap (RFC 3394); the DEKs, wrapped, live in the
database (`DataKey`), so a copy of the database alone decrypts nothing. Two providers:

- `FileKeyProvider`: 32 random bytes in a root-owned file. A file that its group or anyone else may read or write
  is refused outright, naming the path and its mode: a KEK others can read protects nothing.
- `Pkcs11KeyProvider`: the KEK is a non-extractable AES key inside an HSM (SoftHSM2 in tests); wrapping and
  unwrapping happen inside the token and the KEK's bytes never reach this process.

A KEK is named by its key id: a short hash of the KEK's key check value (the RFC 3394 wrap of an all-zero key
under the KEK), never of anything that would let one recover it. Both providers compute it the same way, so a
KEK moved from a file into an HSM keeps its id. Nothing here logs, raises or represents key bytes or a PIN.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import pkcs11
from cryptography.hazmat.primitives import keywrap
from django.conf import settings
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import PKCS11Error

from appliance.lib.config import ConfigError, read_secret_file

KEK_SIZE = 32
DEK_SIZE = 32
KEY_ID_LABEL = b"appliance.vault.kek-id\x00"
_ZERO_KEY = bytes(DEK_SIZE)


class KeyProviderError(Exception):
    """A KEK cannot be used (missing, exposed, wrong PIN, not in the token) or a DEK does not unwrap under it.
    The message names the file, token or key id at fault and never any key material."""


class KeyProvider(Protocol):
    """What the vault needs from wherever the KEK lives."""

    @property
    def name(self) -> str:
        """The provider kind stored beside each wrapped DEK ("file" or "pkcs11")."""
        ...

    @property
    def key_id(self) -> str:
        """A stable, public name of the KEK."""
        ...

    def wrap(self, dek: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes) -> bytes: ...


def key_id_from_check_value(check_value: bytes) -> str:
    """The public key id of a KEK, from its check value (the wrap of the all-zero key under it)."""
    return hashlib.sha256(KEY_ID_LABEL + check_value).hexdigest()[:16]


def _check_dek(dek: bytes) -> None:
    if len(dek) != DEK_SIZE:
        raise KeyProviderError(f"a data key has {DEK_SIZE} bytes, got {len(dek)}")


class FileKeyProvider:
    """A KEK of 32 random bytes in a file that only its owner may read (0600 or 0400)."""

    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._kek = _read_kek_file(self.path)
        self.key_id = key_id_from_check_value(keywrap.aes_key_wrap(self._kek, _ZERO_KEY))

    def wrap(self, dek: bytes) -> bytes:
        _check_dek(dek)
        return keywrap.aes_key_wrap(self._kek, dek)

    def unwrap(self, wrapped: bytes) -> bytes:
        try:
            dek = keywrap.aes_key_unwrap(self._kek, bytes(wrapped))
        except (keywrap.InvalidUnwrap, ValueError) as exc:
            raise KeyProviderError(f"the data key does not unwrap under KEK {self.key_id} ({self.path})") from exc
        _check_dek(dek)
        return dek

    def __repr__(self) -> str:
        return f"FileKeyProvider(path={str(self.path)!r}, key_id={self.key_id!r})"


def generate_kek_file(path: Path) -> Path:
    """Create `path` (0600, in a 0700 folder if new) holding a fresh random KEK; never replace an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_bytes(KEK_SIZE))
        handle.flush()
        os.fsync(handle.fileno())
    return path


def _read_kek_file(path: Path) -> bytes:
    """The KEK's bytes, from a regular file of exactly 32 bytes that neither group nor others may access."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise KeyProviderError(f"cannot open KEK file {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise KeyProviderError(f"KEK file {path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyProviderError(
                f"KEK file {path} is accessible to its group or other users (mode {mode:04o}); it must be 0600 or 0400"
            )
        if info.st_uid not in {os.getuid(), 0}:
            raise KeyProviderError(f"KEK file {path} is owned by uid {info.st_uid}, neither this user nor root")
        kek = handle.read(KEK_SIZE + 1)
    if len(kek) != KEK_SIZE:
        held = f"{len(kek)}" if len(kek) < KEK_SIZE else "more"
        raise KeyProviderError(f"KEK file {path} must hold exactly {KEK_SIZE} bytes, it holds {held}")
    return kek


# PKCS#11 ---------------------------------------------------------------------------------------------------------

# The DEK passes through the token only as a temporary object: never stored, readable back only so that it can be
# returned to the caller that unwrapped it.
_TRANSIENT_DEK = {
    Attribute.TOKEN: False,
    Attribute.SENSITIVE: False,
    Attribute.EXTRACTABLE: True,
    Attribute.ENCRYPT: False,
    Attribute.DECRYPT: False,
}


class Pkcs11KeyProvider:
    """A non-extractable AES-256 KEK inside a PKCS#11 token; wrap and unwrap run inside the token.

    Operations are serialised per provider: PKCS#11 login state is shared by everything a process opens on a token,
    so each operation opens, logs in, works and closes under one lock."""

    name = "pkcs11"

    def __init__(self, *, module: str | Path, token_label: str, pin: str, key_label: str) -> None:
        self.module = str(module)
        self.token_label = token_label
        self.key_label = key_label
        self._pin = pin
        self._lock = threading.Lock()
        with self._opened() as (hsm, kek):
            if kek[Attribute.EXTRACTABLE] or not kek[Attribute.SENSITIVE]:
                raise KeyProviderError(
                    f"PKCS#11 key {key_label!r} on token {token_label!r} is extractable or not sensitive; "
                    "a KEK must never leave the token"
                )
            check_value = kek.wrap_key(_import_dek(hsm, _ZERO_KEY), mechanism=Mechanism.AES_KEY_WRAP)
        self.key_id = key_id_from_check_value(bytes(check_value))

    @contextmanager
    def _opened(self) -> Iterator[tuple[Any, Any]]:
        with self._lock:
            try:
                token = pkcs11.lib(self.module).get_token(token_label=self.token_label)
                with token.open(rw=True, user_pin=self._pin) as hsm:
                    kek = hsm.get_key(object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=self.key_label)
                    yield hsm, kek
            except PKCS11Error as exc:
                # The class name says what went wrong (PinIncorrect, NoSuchKey, ...); the PIN is never in it.
                raise KeyProviderError(
                    f"PKCS#11 token {self.token_label!r} ({self.module}), key {self.key_label!r}: {_describe(exc)}"
                ) from None

    def with_key_label(self, key_label: str) -> Pkcs11KeyProvider:
        """Another KEK in the same token, logged in the same way: the target of a rotation."""
        return Pkcs11KeyProvider(module=self.module, token_label=self.token_label, pin=self._pin, key_label=key_label)

    def wrap(self, dek: bytes) -> bytes:
        _check_dek(dek)
        with self._opened() as (hsm, kek):
            return bytes(kek.wrap_key(_import_dek(hsm, dek), mechanism=Mechanism.AES_KEY_WRAP))

    def unwrap(self, wrapped: bytes) -> bytes:
        try:
            with self._opened() as (_hsm, kek):
                unwrapped = kek.unwrap_key(
                    ObjectClass.SECRET_KEY,
                    KeyType.AES,
                    bytes(wrapped),
                    mechanism=Mechanism.AES_KEY_WRAP,
                    template=_TRANSIENT_DEK,
                )
                dek = bytes(unwrapped[Attribute.VALUE])
        except KeyProviderError as exc:
            raise KeyProviderError(f"the data key does not unwrap under KEK {self.key_id}: {exc}") from None
        _check_dek(dek)
        return dek

    def __repr__(self) -> str:
        return (
            f"Pkcs11KeyProvider(module={self.module!r}, token_label={self.token_label!r}, "
            f"key_label={self.key_label!r}, key_id={self.key_id!r})"
        )


def _describe(exc: PKCS11Error) -> str:
    """The error's class (PinIncorrect, NoSuchKey, ...) and text: the library never puts a PIN or key in either."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _import_dek(hsm: Any, dek: bytes) -> Any:
    """A temporary, extractable AES key object holding `dek`, so that the token can wrap it."""
    return hsm.create_object(
        {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES, Attribute.VALUE: dek}
        | _TRANSIENT_DEK
    )


def generate_pkcs11_kek(*, module: str | Path, token_label: str, pin: str, key_label: str) -> Pkcs11KeyProvider:
    """Create a new KEK inside the token (stored, sensitive, non-extractable, wrap/unwrap only) and return its
    provider. Refuses a label that is already taken, so an existing KEK is never shadowed."""
    try:
        token = pkcs11.lib(str(module)).get_token(token_label=token_label)
        with token.open(rw=True, user_pin=pin) as hsm:
            if any(True for _ in hsm.get_objects({Attribute.LABEL: key_label})):
                raise KeyProviderError(f"token {token_label!r} already holds an object labelled {key_label!r}")
            hsm.generate_key(
                KeyType.AES,
                KEK_SIZE * 8,
                label=key_label,
                store=True,
                template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.WRAP: True,
                    Attribute.UNWRAP: True,
                    Attribute.ENCRYPT: False,
                    Attribute.DECRYPT: False,
                },
            )
    except PKCS11Error as exc:
        raise KeyProviderError(f"PKCS#11 token {token_label!r} ({module}): {_describe(exc)}") from None
    return Pkcs11KeyProvider(module=module, token_label=token_label, pin=pin, key_label=key_label)


# The configured provider -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FileStamp:
    """What identifies the KEK file's current state: a replaced or re-permissioned file is read again."""

    path: Path
    stamp: tuple[int, ...]


@lru_cache(maxsize=8)
def _file_provider(stamped: _FileStamp) -> FileKeyProvider:
    return FileKeyProvider(stamped.path)


@lru_cache(maxsize=4)
def _pkcs11_provider(module: str, token_label: str, pin_file: Path, key_label: str) -> Pkcs11KeyProvider:
    pin = read_secret_file(pin_file, setting="vault.pkcs11_pin_file")
    return Pkcs11KeyProvider(module=module, token_label=token_label, pin=pin, key_label=key_label)


def configured_provider() -> KeyProvider:
    """The provider the settings name (`[vault]` in the configuration). Development generates a missing KEK file
    (0600) as it does the secret key; production never does, because a new KEK would orphan every wrapped DEK."""
    p11 = settings.VAULT_PKCS11
    if p11 is not None:  # set exactly when vault.provider = "pkcs11"
        return _pkcs11_provider(str(p11["module"]), p11["token"], Path(p11["pin_file"]), p11["key_label"])
    path = Path(settings.VAULT_KEK_FILE)
    if not path.exists():
        if settings.PRODUCTION:
            raise ConfigError(f"setting 'vault.kek_file': KEK file {path} does not exist")
        generate_kek_file(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise KeyProviderError(f"cannot read KEK file {path}: {exc.strerror}") from exc
    stamp = (info.st_ino, info.st_mode, info.st_uid, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    return _file_provider(_FileStamp(path, stamp))
