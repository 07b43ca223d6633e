"""Canonical encoding of audit records (RFC 8785, JCS) and their Merkle leaf hash (RFC 9162).

Records hold only strings, integers, booleans, null, lists and objects. Without floats, RFC 8785 reduces to:
object members sorted by the UTF-16 code units of their names, no insignificant whitespace, UTF-8 output, and
ECMAScript string escaping. The encoder is hand-written (about forty lines) because the verifier must run with
nothing but the standard library and `cryptography`; the tests cross-check it against an independent
implementation.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
import re
from collections.abc import Mapping, Sequence

# ECMAScript JSON.stringify escapes exactly these, and other control characters as \u00xx (lowercase hex).
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Integers beyond this range cannot round-trip through an IEEE double, which RFC 8785 numbers are.
MAX_SAFE_INTEGER = 2**53 - 1

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


class EncodingError(ValueError):
    """A value that has no canonical form in an audit record (a float, an unsafe integer, a non-string key)."""


_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _SHORT_ESCAPES.get(char) or f"\\u{ord(char):04x}"


def _encode_string(text: str) -> str:
    # One regular-expression pass: most strings need no escape at all, and this is the encoder's hot path.
    return '"' + _NEEDS_ESCAPE.sub(_escape, text) + '"'


def _utf16_key(name: str) -> bytes:
    try:
        return name.encode("utf-16-be")
    except UnicodeEncodeError as exc:  # a lone surrogate in a key: caught here, before the final UTF-8 encode
        raise EncodingError("object keys must be valid Unicode (no lone surrogates)") from exc


def _encode(value: object, parts: list[str]) -> None:
    kind = type(value)  # exact types first: the common case, and much cheaper than isinstance chains
    if kind is str:
        parts.append(_encode_string(value))  # type: ignore[arg-type]
    elif value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif kind is dict or isinstance(value, Mapping):
        mapping: Mapping[object, object] = value  # type: ignore[assignment]
        keys = _sorted_keys(mapping)
        parts.append("{")
        first = True
        for key in keys:
            if not first:
                parts.append(",")
            first = False
            parts.append(_encode_string(key))
            parts.append(":")
            _encode(mapping[key], parts)
        parts.append("}")
    elif isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise EncodingError(f"integer {value} is outside the IEEE-754 safe range")
        parts.append(str(int(value)))
    elif isinstance(value, str):
        parts.append(_encode_string(value))
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            _encode(item, parts)
        parts.append("]")
    else:
        raise EncodingError(f"{type(value).__name__} has no canonical form in an audit record")


def _sorted_keys(mapping: Mapping[object, object]) -> list[str]:
    """The keys in RFC 8785 order: by UTF-16 code units, which for all-ASCII keys is plain string order."""
    keys = list(mapping)
    for key in keys:
        if type(key) is not str and not isinstance(key, str):
            raise EncodingError(f"object keys must be strings, not {type(key).__name__}")
    names: list[str] = keys  # type: ignore[assignment]
    if all(name.isascii() for name in names):
        names.sort()
    else:
        names.sort(key=_utf16_key)
    return names


# The json module's C encoder with sorted keys and no spaces, built once. For values of exactly the plain types
# (dict with ASCII keys, list, tuple, str, safe int, bool, None) its output is exactly RFC 8785: code-point order
# equals UTF-16 order for ASCII keys, and its string escaping is ECMAScript's (the tests cross-check both with an
# independent implementation). It returns a 1-tuple holding the text.
_C_MAKE_ENCODER = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODE = (
    _C_MAKE_ENCODER(None, None, json.encoder.encode_basestring, None, ":", ",", True, False, True)
    if _C_MAKE_ENCODER is not None
    else None
)
_MAX_DEPTH = 64  # deeper than any record; past it (or in a cycle) the reference encoder decides


def _plain(value: object, depth: int = 0) -> bool:
    """Whether `value` holds only the plain types the C encoder encodes canonically (see `_C_ENCODE`)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER  # type: ignore[operator]
    if depth >= _MAX_DEPTH:
        return False
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str or not key.isascii():
                return False
            if type(item) is not str and not _plain(item, depth + 1):  # most values are strings: no call for them
                return False
        return True
    if kind is list or kind is tuple:
        return all(type(item) is str or _plain(item, depth + 1) for item in value)  # type: ignore[attr-defined]
    return False


def canonical_json(value: object) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of `value`; raise EncodingError for what has no such form."""
    if _C_ENCODE is not None and _plain(value):
        try:
            return _C_ENCODE(value, 0)[0].encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate: not valid Unicode text, so not valid I-JSON
            raise EncodingError("strings must be valid Unicode (no lone surrogates)") from exc
    return reference_canonical_json(value)


def reference_canonical_json(value: object) -> bytes:
    """`canonical_json` by the hand-written encoder alone: for every value the C fast path does not take, and for
    the tests that hold the two paths to the same bytes."""
    parts: list[str] = []
    _encode(value, parts)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: not valid Unicode text, so not valid I-JSON
        raise EncodingError("strings must be valid Unicode (no lone surrogates)") from exc


def leaf_hash(canonical_record: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || record)."""
    return hashlib.sha256(LEAF_PREFIX + canonical_record).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()
