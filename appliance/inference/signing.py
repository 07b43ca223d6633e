"""Model signatures: Ed25519 over the manifest's canonical bytes, detached, naming the signing key by its id.

A site enrols the public keys it trusts (`manage.py models trust-key`); a model is imported only with a signature
by one of them that verifies over its manifest, and only if the file's SHA-256 is the manifest's. The development
key (`development_key`) lives under the key folder, 0600, generated on first use, and never leaves it: it exists
so that `make models` can sign the demo models on a developer's machine; a production site enrols its own
publisher's key instead. Django-free except for reading where the key folder is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

DEVELOPMENT_KEY_NAME = "model-signing-dev.pem"
MAX_SIGNATURE_BYTES = 4096


class SignatureError(ValueError):
    """A signature file that is malformed, by an unknown key, or does not verify."""


@dataclass(frozen=True)
class DetachedSignature:
    key_id: str
    signature: bytes

    def encode(self) -> bytes:
        body = {"algorithm": "ed25519", "key_id": self.key_id, "signature": base64.b64encode(self.signature).decode()}
        return json.dumps(body, sort_keys=True, indent=1).encode() + b"\n"


def key_id(public: Ed25519PublicKey) -> str:
    """The first 16 bytes of the SHA-256 of the raw public key, in hex: short, stable, collision-safe enough."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_from_raw(raw: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(raw)


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_pem(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; anything else is refused with the reason."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise SignatureError("the key file is not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError("the key file holds a public key that is not Ed25519")
    return key


def development_key(key_dir: Path) -> Ed25519PrivateKey:
    """The development model-signing key under `key_dir`, generated (0600, folder 0700) on first use."""
    path = key_dir / DEVELOPMENT_KEY_NAME
    if not path.exists():
        key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: use theirs
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise SignatureError(f"{path} does not hold an Ed25519 private key")
    return loaded


def sign(private: Ed25519PrivateKey, message: bytes) -> DetachedSignature:
    return DetachedSignature(key_id=key_id(private.public_key()), signature=private.sign(message))


def parse_signature(data: bytes) -> DetachedSignature:
    if len(data) > MAX_SIGNATURE_BYTES:
        raise SignatureError("the signature file is too large to be a signature")
    try:
        body = json.loads(data.decode("utf-8"))
        if not isinstance(body, dict) or body.get("algorithm") != "ed25519":
            raise SignatureError("the signature file must be an ed25519 signature object")
        signature = base64.b64decode(str(body["signature"]), validate=True)
        ident = str(body["key_id"])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, binascii.Error) as exc:
        raise SignatureError("the signature file is malformed") from exc
    if len(signature) != 64:
        raise SignatureError("the signature file does not hold a 64-byte Ed25519 signature")
    return DetachedSignature(key_id=ident, signature=signature)


def verify(public: Ed25519PublicKey, signature: DetachedSignature, message: bytes) -> None:
    try:
        public.verify(signature.signature, message)
    except InvalidSignature as exc:
        raise SignatureError(f"the signature by key {signature.key_id} does not verify over this manifest") from exc
