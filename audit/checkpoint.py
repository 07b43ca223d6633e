"""Signed checkpoints: the C2SP tlog-checkpoint body inside a C2SP signed note, signed with Ed25519.

    <origin>\n<size>\n<base64 root>\n[extension lines]\n\n— <key name> <base64(key hash ‖ signature)>\n

Key hash = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4] (0x01: the Ed25519 signature type), so a verifier knows
which key a signature line claims before checking it. Two extension lines are defined by the appliance:
`time <UTC, RFC 3339>` (checkpoint times only ever grow) and `rotate <verifier key>` (the next signing key,
announced in a checkpoint signed by the current one). Verifier keys are written in the note's text form,
`<name>+<hex key hash>+<base64(0x01 ‖ public key)>`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space begin every signature line
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class CheckpointError(ValueError):
    """A checkpoint or key that is malformed, or whose signature does not verify; the message says which."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CheckpointError(f"{what} is not valid base64") from exc


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_hash(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ED25519]) + public).digest()[:4]


def _check_key_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise CheckpointError(f"key name {name!r} must be non-empty without spaces or '+'")


@dataclass(frozen=True)
class VerifierKey:
    name: str
    public: bytes  # raw 32-byte Ed25519 public key

    @property
    def hash(self) -> bytes:
        return key_hash(self.name, self.public)

    @property
    def key_id(self) -> str:
        """How records and file names refer to this key: `<name>+<hex key hash>`."""
        return f"{self.name}+{self.hash.hex()}"

    def text(self) -> str:
        return f"{self.key_id}+{_b64(bytes([ED25519]) + self.public)}"

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise CheckpointError("verifier key must be <name>+<hash>+<base64 key>")
        name, hash_hex, encoded = parts
        _check_key_name(name)
        raw = _unb64(encoded, f"verifier key {name}")
        if len(raw) != 33 or raw[0] != ED25519:
            raise CheckpointError(f"verifier key {name} is not an Ed25519 key")
        key = cls(name=name, public=raw[1:])
        if key.hash.hex() != hash_hex.lower():
            raise CheckpointError(f"verifier key {name}: key hash {hash_hex} does not match the key")
        return key

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    name: str
    private: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        _check_key_name(self.name)

    @classmethod
    def generate(cls, name: str) -> SigningKey:
        return cls(name=name, private=Ed25519PrivateKey.generate())

    @property
    def verifier(self) -> VerifierKey:
        return VerifierKey(name=self.name, public=_raw_public(self.private.public_key()))

    def signature_line(self, text: bytes) -> str:
        signature = self.private.sign(text)
        return f"{SIGNATURE_PREFIX}{self.name} {_b64(self.verifier.hash + signature)}\n"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    time: datetime
    rotate_to: VerifierKey | None = None

    def text(self) -> bytes:
        lines = [
            self.origin,
            str(self.size),
            _b64(self.root),
            f"time {self.time.astimezone(UTC).strftime(TIME_FORMAT)}",
        ]
        if self.rotate_to is not None:
            lines.append(f"rotate {self.rotate_to.text()}")
        return ("\n".join(lines) + "\n").encode("utf-8")


def sign_checkpoint(checkpoint: Checkpoint, *keys: SigningKey) -> str:
    """The signed note of `checkpoint`, with one signature line per key (rotation signs with old and new)."""
    if not checkpoint.origin or "\n" in checkpoint.origin:
        raise CheckpointError("origin must be one non-empty line")
    text = checkpoint.text()
    return text.decode("utf-8") + "\n" + "".join(key.signature_line(text) for key in keys)


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    signers: tuple[str, ...]  # key ids whose signatures verified
    note: str


def _parse_body(text: str) -> Checkpoint:
    lines = text.split("\n")
    if lines[-1] != "" or len(lines) < 5:
        raise CheckpointError("checkpoint body must be origin, size, root and time lines, each ending in a newline")
    origin, size_text, root_text, *extensions = lines[:-1]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointError(f"checkpoint size {size_text!r} is not a decimal number")
    root = _unb64(root_text, "checkpoint root")
    if len(root) != 32:
        raise CheckpointError("checkpoint root is not a SHA-256 hash")
    moment: datetime | None = None
    rotate_to: VerifierKey | None = None
    for line in extensions:
        keyword, _, value = line.partition(" ")
        if keyword == "time" and moment is None:
            try:
                moment = datetime.strptime(value, TIME_FORMAT).replace(tzinfo=UTC)
            except ValueError as exc:
                raise CheckpointError(f"checkpoint time {value!r} is not {TIME_FORMAT}") from exc
        elif keyword == "rotate" and rotate_to is None:
            rotate_to = VerifierKey.parse(value)
        else:
            raise CheckpointError(f"unexpected checkpoint line {line!r}")
    if moment is None:
        raise CheckpointError("checkpoint has no time line")
    return Checkpoint(origin=origin, size=int(size_text), root=root, time=moment, rotate_to=rotate_to)


def open_checkpoint(note: str, trusted: dict[str, VerifierKey]) -> SignedCheckpoint:
    """Parse a signed checkpoint and return it with the trusted keys whose signatures verify.

    `trusted` maps key ids to keys. Raises CheckpointError when the note is malformed or no trusted key signed it.
    """
    text, separator, signatures = note.partition("\n\n")
    if not separator or not signatures.endswith("\n"):
        raise CheckpointError("signed note must be text, a blank line, then signature lines")
    body = (text + "\n").encode("utf-8")
    checkpoint = _parse_body(text + "\n")
    signers: list[str] = []
    for line in signatures[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise CheckpointError(f"malformed signature line {line!r}")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        raw = _unb64(encoded, f"signature by {name}")
        if len(raw) != 4 + 64:
            raise CheckpointError(f"signature by {name} has the wrong length")
        key_id = f"{name}+{raw[:4].hex()}"
        key = trusted.get(key_id)
        if key is not None and key.verify(body, raw[4:]):
            signers.append(key_id)
    if not signers:
        known = ", ".join(trusted) or "none"
        raise CheckpointError(f"checkpoint of size {checkpoint.size} is not signed by a trusted key (trusted: {known})")
    return SignedCheckpoint(checkpoint=checkpoint, signers=tuple(signers), note=note)
