"""The audit record's wire form: RFC 8785 canonical JSON and the RFC 9162 leaf hash (V-222473..V-222478).

These tests need no database: the `audit` package is the auditor's kit and must work without Django. The encoder is
cross-checked against an independent RFC 8785 implementation (`rfc8785`), and pinned by golden vectors written out
literally, so that a change in either implementation or in Python's own JSON cannot pass unnoticed.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import rfc8785
from hypothesis import example, given
from hypothesis import strategies as st

from audit.encoding import (
    MAX_SAFE_INTEGER,
    EncodingError,
    canonical_json,
    leaf_hash,
    node_hash,
    reference_canonical_json,
)

# Every Unicode scalar value except surrogates, weighted towards the ranges where encoders differ: control
# characters (escaping), U+E000..U+FFFF and non-BMP characters (UTF-16 order differs from code-point order).
_scalar = st.characters(exclude_categories=["Cs"])
_tricky = st.one_of(
    st.characters(min_codepoint=0x00, max_codepoint=0x20),
    st.characters(min_codepoint=0x7F, max_codepoint=0xA0),
    st.characters(min_codepoint=0xE000, max_codepoint=0xFFFF, exclude_categories=["Cs"]),
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
    st.sampled_from(['"', "\\", "/", "\u2028", "\u2029"]),
)
texts = st.text(alphabet=st.one_of(_scalar, _tricky), max_size=12)
safe_ints = st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
scalars = st.one_of(st.none(), st.booleans(), safe_ints, texts)
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(texts, children, max_size=6)),
    max_leaves=30,
)

# A fixed record with every field a real record has, and keys chosen so that UTF-16 order (U+1F600 before U+E000)
# differs from code-point order. Its bytes and leaf hash are written out literally below: never regenerate them
# from the code under test.
GOLDEN_RECORD: dict[str, Any] = {
    "v": 1,
    "seq": 0,
    "time": "2026-01-02T03:04:05.000006Z",
    "component": "web",
    "actor": "ana",
    "roles": ["analyst", "reviewer"],
    "session": "s-1",
    "token": "",
    "request_id": "0123456789abcdef",
    "client_ip": "10.0.0.7",
    "action": "dataset.view",
    "object": {"type": "dataset", "id": "42"},
    "label": "SECRET//ALPHA",
    "outcome": "ok",
    "details": {
        "\u20ac": 1,
        "\r": 2,
        "\U0001f600": 3,
        "\ue000": 4,
        "\u00fc": True,
        "note": 'tab\there "q" \x1f\x7f',
        "n": None,
        "big": -(2**53 - 1),
    },
}
GOLDEN_BYTES = (
    b'{"action":"dataset.view","actor":"ana","client_ip":"10.0.0.7","component":"web","details":'
    b'{"\\r":2,"big":-9007199254740991,"n":null,"note":"tab\\there \\"q\\" \\u001f\x7f",'
    b'"\xc3\xbc":true,"\xe2\x82\xac":1,"\xf0\x9f\x98\x80":3,"\xee\x80\x80":4},'
    b'"label":"SECRET//ALPHA","object":{"id":"42","type":"dataset"},"outcome":"ok",'
    b'"request_id":"0123456789abcdef","roles":["analyst","reviewer"],"seq":0,"session":"s-1",'
    b'"time":"2026-01-02T03:04:05.000006Z","token":"","v":1}'
)
GOLDEN_LEAF_HASH = "dfd305ac143b5d55f0033099fc276057b3adf17ba9e2545fd571f1acdba97e47"


@given(values)
@example({"\ue000": 0, "\U0001f600": 1})  # UTF-16: D83D DE00 < E000, though U+1F600 > U+E000
@example(["\x00\x1f\x7f\u2028", "\U0010ffff"])
@example([MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 0, True, False, None])
def test_it_matches_an_independent_rfc8785_implementation(value: object) -> None:
    """Our dependency-free encoder and `rfc8785` agree byte for byte (V-222473..V-222478: one record, one form)."""
    assert canonical_json(value) == rfc8785.dumps(value)


@given(values)
@example({"k": ['\x00\x1f\x7f\u2028\\"', -MAX_SAFE_INTEGER, (1, 2)], "j": {"z": None, "a": True}})
def test_the_fast_path_and_the_hand_written_encoder_give_the_same_bytes(value: object) -> None:
    """Plain values take the json module's C encoder; both paths must produce one and the same canonical form."""
    assert canonical_json(value) == reference_canonical_json(value)


def test_it_sorts_object_keys_by_utf16_code_units_not_code_points() -> None:
    """The exact case where a code-point sort (Python's default) would give a different, non-canonical order."""
    assert canonical_json({"\ue000": 0, "\U0001f600": 1}) == '{"\U0001f600":1,"\ue000":0}'.encode()


def test_it_escapes_control_characters_like_ecmascript() -> None:
    assert canonical_json('\x00\b\t\n\f\r\x1f\x7f"\\/') == b'"\\u0000\\b\\t\\n\\f\\r\\u001f\x7f\\"\\\\/"'


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(1.0, id="float"),
        pytest.param({"x": [0.5]}, id="nested-float"),
        pytest.param(float("nan"), id="nan"),
        pytest.param(MAX_SAFE_INTEGER + 1, id="int-too-big"),
        pytest.param(-MAX_SAFE_INTEGER - 1, id="int-too-small"),
        pytest.param({"n": 2**64}, id="nested-huge-int"),
        pytest.param({1: "x"}, id="int-key"),
        pytest.param({None: "x"}, id="none-key"),
        pytest.param({("a",): "x"}, id="tuple-key"),
        pytest.param(b"bytes", id="bytes"),
        pytest.param([bytearray(b"x")], id="bytearray"),
        pytest.param("\ud800", id="lone-high-surrogate"),
        pytest.param({"k\udfff": 1}, id="lone-low-surrogate-in-key"),
        pytest.param({1, 2}, id="set"),
        pytest.param(object(), id="object"),
    ],
)
def test_it_refuses_values_without_a_canonical_form(value: object) -> None:
    """Floats, unsafe integers, non-string keys, bytes and invalid Unicode have no RFC 8785 form in a record."""
    with pytest.raises(EncodingError):
        canonical_json(value)


@given(st.one_of(st.floats(), st.integers().filter(lambda n: abs(n) > MAX_SAFE_INTEGER)))
def test_it_refuses_every_float_and_every_unsafe_integer(value: float | int) -> None:
    with pytest.raises(EncodingError):
        canonical_json({"details": [value]})


def test_the_golden_record_encodes_to_the_exact_bytes() -> None:
    """A literal vector, so an auditor's independent implementation can check itself against ours (V-222473)."""
    assert canonical_json(GOLDEN_RECORD) == GOLDEN_BYTES
    assert rfc8785.dumps(GOLDEN_RECORD) == GOLDEN_BYTES


def test_the_golden_record_has_the_exact_leaf_hash() -> None:
    assert leaf_hash(GOLDEN_BYTES).hex() == GOLDEN_LEAF_HASH


@given(st.binary(max_size=200))
def test_the_leaf_hash_is_sha256_of_zero_byte_and_record(record: bytes) -> None:
    """RFC 9162 domain separation: a leaf can never be mistaken for an interior node."""
    assert leaf_hash(record) == hashlib.sha256(b"\x00" + record).digest()


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    """The empty-leaf vector of RFC 9162 (SHA-256 of a single 0x00 byte), and node ≠ leaf over the same bytes."""
    assert leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    left, right = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert node_hash(left, right) != leaf_hash(left + right)
