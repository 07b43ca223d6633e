"""The blob format round-trips at every size and chunking, and refuses every way a stored blob can be tampered with.

V-222588: approved cryptography (AES-256-GCM, HKDF-SHA256) detects unauthorized modification of information at
rest — every altered, moved, dropped, repeated or appended byte is refused. V-222589 / V-222587: stored imagery is
protected by encryption, bound to what it is.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import tracemalloc
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.vault.stream import (
    HEADER_SIZE,
    TAG_SIZE,
    BlobIdentity,
    BlobIntegrityError,
    Header,
    ciphertext_size,
    decrypt,
    decrypt_bytes,
    derive_key,
    encrypt,
    encrypt_bytes,
    segment_nonce,
)

DEK = bytes(range(32))
OTHER_DEK = bytes(range(1, 33))
IDENTITY = BlobIdentity("dataset:1", "item:10", "image")
SEGMENT = 16
SEALED = SEGMENT + TAG_SIZE


def small_blob(plaintext: bytes, *, identity: BlobIdentity = IDENTITY, dek: bytes = DEK) -> bytes:
    return b"".join(encrypt(dek, identity, [plaintext], segment_size=SEGMENT))


def segments_of(blob: bytes) -> list[bytes]:
    body = blob[HEADER_SIZE:]
    return [body[i : i + SEALED] for i in range(0, len(body), SEALED)]


def refusal(blob: bytes, *, identity: BlobIdentity = IDENTITY, dek: bytes = DEK) -> BlobIntegrityError:
    with pytest.raises(BlobIntegrityError) as caught:
        decrypt_bytes(dek, identity, blob)
    return caught.value


class TrickleReader:
    """A file that hands out at most `step` bytes per read, as a pipe or socket may."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = io.BytesIO(data)
        self._step = step

    def readinto(self, buffer: bytearray | memoryview) -> int:
        return self._data.readinto(memoryview(buffer)[: self._step])


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


# Round trips -------------------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    segment_size=st.sampled_from([16, 17, 64, 1000]),
    data=st.data(),
)
def test_any_plaintext_in_any_chunking_comes_back_exactly(segment_size, data):
    """Sizes cluster on segment boundaries (k·size - 1, k·size, k·size + 1), where the last-segment rule bites."""
    boundary = st.builds(lambda k, d: max(0, k * segment_size + d), st.integers(0, 4), st.sampled_from([-1, 0, 1]))
    size = data.draw(st.one_of(boundary, st.integers(0, 5 * segment_size)))
    plaintext = data.draw(st.binary(min_size=size, max_size=size))
    cuts = data.draw(st.lists(st.integers(0, size), max_size=6))
    header = Header.new(segment_size)

    blob = b"".join(encrypt(DEK, IDENTITY, split(plaintext, cuts), header=header))

    assert len(blob) == ciphertext_size(size, segment_size)
    assert blob == encrypt_bytes(DEK, IDENTITY, plaintext, header=header), "chunking must not change the blob"
    assert decrypt_bytes(DEK, IDENTITY, blob) == plaintext
    step = data.draw(st.integers(1, 2 * segment_size + 40))
    assert b"".join(decrypt(DEK, IDENTITY, TrickleReader(blob, step))) == plaintext


def test_the_empty_plaintext_is_one_empty_last_segment():
    blob = small_blob(b"")
    assert len(blob) == HEADER_SIZE + TAG_SIZE
    assert decrypt_bytes(DEK, IDENTITY, blob) == b""


def test_a_plaintext_that_fills_its_last_segment_gets_no_empty_segment_after_it():
    blob = small_blob(b"x" * 2 * SEGMENT)
    assert len(segments_of(blob)) == 2


def test_decrypting_yields_one_segment_at_a_time():
    plaintext = os.urandom(3 * SEGMENT - 5)
    pieces = list(decrypt(DEK, IDENTITY, io.BytesIO(small_blob(plaintext))))
    assert [len(piece) for piece in pieces] == [SEGMENT, SEGMENT, SEGMENT - 5]


def test_every_blob_of_the_same_plaintext_differs():
    """A fresh salt and nonce prefix per blob: equal images do not show as equal ciphertext."""
    assert small_blob(b"same image") != small_blob(b"same image")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (BlobIdentity("a", "bc", "image"), BlobIdentity("ab", "c", "image")),
        (BlobIdentity("", "item", "image"), BlobIdentity("item", "", "image")),
        (BlobIdentity("d", "i", "image"), BlobIdentity("d", "i", "thumbnail")),
    ],
)
def test_no_two_identities_encode_alike(first, second):
    assert first.encode() != second.encode()


# Tampering ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kept", [0, 1, 2])
def test_a_blob_cut_at_a_segment_boundary_is_truncated(kept):
    blob = small_blob(os.urandom(3 * SEGMENT - 3))
    error = refusal(blob[: HEADER_SIZE + kept * SEALED])
    assert error.reason == "truncated"
    assert error.segment == (0 if kept == 0 else kept - 1)


def test_a_blob_cut_inside_its_header_is_truncated():
    assert refusal(small_blob(b"hello")[: HEADER_SIZE - 1]).reason == "truncated"


def test_a_blob_cut_inside_its_last_tag_is_truncated():
    blob = small_blob(os.urandom(2 * SEGMENT + 3))
    assert refusal(blob[: HEADER_SIZE + 2 * SEALED + 10]).reason == "truncated"


@pytest.mark.parametrize("tail", [b"\x00", os.urandom(SEALED), os.urandom(5 * SEALED + 3)])
def test_data_after_a_full_last_segment_is_refused_as_extended(tail):
    blob = small_blob(os.urandom(2 * SEGMENT))
    error = refusal(blob + tail)
    assert error.reason == "extended"
    assert error.segment == 1


def test_the_last_segment_repeated_is_refused_as_extended():
    blob = small_blob(os.urandom(2 * SEGMENT))
    assert refusal(blob + segments_of(blob)[-1]).reason == "extended"


@pytest.mark.parametrize("tail", [b"\x00", os.urandom(SEALED)])
def test_data_after_a_short_last_segment_is_refused(tail):
    blob = small_blob(os.urandom(2 * SEGMENT + 5))
    assert refusal(blob + tail).reason == "authentication"


def test_an_empty_segment_appended_under_the_key_is_refused():
    """Even a writer holding the key cannot give a blob a second encoding with a trailing empty segment."""
    header = Header.new(SEGMENT)
    plaintext = os.urandom(SEGMENT)
    with_extra = b"".join(encrypt(DEK, IDENTITY, [plaintext + b"!"], header=header))[: HEADER_SIZE + SEALED]
    aead = AESGCM(derive_key(DEK, header, IDENTITY))
    forged = with_extra + aead.encrypt(segment_nonce(header.nonce_prefix, 1, last=True), b"", IDENTITY.encode())
    assert refusal(forged).reason == "extended"


@pytest.mark.parametrize(("order", "failing"), [((1, 0, 2), 0), ((0, 2, 1), 1), ((0, 0, 2), 1), ((2, 1, 0), 0)])
def test_reordered_or_repeated_segments_are_refused(order, failing):
    blob = small_blob(os.urandom(3 * SEGMENT - 1))
    segments = segments_of(blob)
    error = refusal(blob[:HEADER_SIZE] + b"".join(segments[i] for i in order))
    assert error.reason in {"authentication", "truncated", "extended"}
    assert error.segment == failing


def test_a_segment_from_another_blob_of_the_same_item_is_refused():
    first, second = small_blob(os.urandom(3 * SEGMENT)), small_blob(os.urandom(3 * SEGMENT))
    spliced = first[:HEADER_SIZE] + segments_of(first)[0] + segments_of(second)[1] + segments_of(first)[2]
    error = refusal(spliced)
    assert (error.reason, error.segment) == ("authentication", 1)


@pytest.mark.parametrize(
    "other",
    [
        BlobIdentity("dataset:1", "item:11", "image"),  # another item of the same dataset
        BlobIdentity("dataset:2", "item:10", "image"),  # the same item number in another dataset
        BlobIdentity("dataset:1", "item:10", "thumbnail"),  # another kind of blob of the same item
    ],
)
def test_a_blob_read_as_another_identity_is_refused(other):
    error = refusal(small_blob(b"secret image"), identity=other)
    assert (error.reason, error.segment) == ("authentication", 0)


def test_a_blob_read_with_another_datasets_key_is_refused():
    error = refusal(small_blob(b"secret image"), dek=OTHER_DEK)
    assert (error.reason, error.segment) == ("authentication", 0)


def test_every_single_bit_flip_anywhere_is_refused():
    """All 8 bits of every byte: header, every segment body and every tag."""
    blob = small_blob(os.urandom(2 * SEGMENT + 7))
    reasons = set()
    for position in range(len(blob)):
        for bit in range(8):
            flipped = bytearray(blob)
            flipped[position] ^= 1 << bit
            reasons.add((position < 5, refusal(bytes(flipped)).reason))
    # Magic and version flips are refused as a foreign header; every other flip fails authentication (a flipped
    # segment size may also be refused as out of range, or cut the blob where no segment ends).
    assert {reason for in_prefix, reason in reasons if in_prefix} == {"header"}
    assert {reason for in_prefix, reason in reasons if not in_prefix} <= {"authentication", "header", "truncated"}
    assert (False, "authentication") in reasons


def test_refusals_name_what_failed_and_carry_no_key_or_plaintext():
    plaintext = b"TOP-SECRET-PIXELS" * 3
    blob = small_blob(plaintext)
    messages = [
        str(refusal(blob[:-1])),
        str(refusal(blob, dek=OTHER_DEK)),
        str(refusal(b"GIF89a" + blob[6:])),
        str(refusal(blob[:4] + b"\x07" + blob[5:])),
    ]
    assert "segment 3 failed authentication" in messages[0]
    assert "segment 0 failed authentication" in messages[1]
    assert "not a vault blob" in messages[2]
    assert "unsupported blob format version 7" in messages[3]
    for message in messages:
        for secret in (DEK.hex(), OTHER_DEK.hex(), plaintext.decode()[:8]):
            assert secret not in message


def test_a_forged_header_cannot_make_the_reader_allocate_more_than_64_mib():
    header = bytearray(small_blob(b"x")[:HEADER_SIZE])
    header[5:9] = (1 << 31).to_bytes(4, "big")
    assert refusal(bytes(header) + b"\x00" * 32).reason == "header"


# Memory ------------------------------------------------------------------------------------------------------------


def _chunks(block: bytes, total: int) -> Iterator[bytes]:
    """`total` bytes as upload-sized chunks, without ever holding them all."""
    for _ in range(total // len(block)):
        yield block


def test_streaming_64_mib_each_way_holds_only_a_few_segments(tmp_path):
    """Encrypting or decrypting 64 MiB in 1 MiB segments holds about three segments at once, whatever the size:
    the stream's own buffer, the segment it is producing, and the previous one that the consumer still holds."""
    segment, total = 1 << 20, 64 << 20
    block = os.urandom(64 << 10)
    expected = hashlib.sha256()
    for chunk in _chunks(block, total):
        expected.update(chunk)
    path = tmp_path / "blob"
    tracemalloc.start()
    try:
        with path.open("wb") as out:
            for sealed in encrypt(DEK, IDENTITY, _chunks(block, total), segment_size=segment):
                out.write(sealed)
            del sealed
        _, encrypt_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        digest, size = hashlib.sha256(), 0
        with path.open("rb") as source:
            for plaintext in decrypt(DEK, IDENTITY, source):
                digest.update(plaintext)
                size += len(plaintext)
        _, decrypt_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == total
    assert digest.digest() == expected.digest()
    assert path.stat().st_size == ciphertext_size(total, segment)
    assert encrypt_peak < 3.5 * segment, encrypt_peak
    assert decrypt_peak < 3.5 * segment, decrypt_peak
