"""Spools and the two stream pieces they stand on: the push-style `Encryptor` writes exactly what `encrypt` writes,
the `SeekableDecryptor` reads any byte range of a blob and refuses every tampered blob as `decrypt` does, and a
`Spool` keeps an upload encrypted under a key that lives only in memory, leaving nothing behind.

V-222589 (no plaintext imagery at rest, not even in temporary files), V-222588 (tampering is detected).
"""

from __future__ import annotations

import gc
import hashlib
import io
import itertools
import os
import pickle
import signal
import stat
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.datasets.intake import ArchiveLimits, Member, iter_archive
from appliance.vault.spool import Spool, spool_root, sweep_spool
from appliance.vault.stream import (
    HEADER_SIZE,
    TAG_SIZE,
    BlobIdentity,
    BlobIntegrityError,
    Encryptor,
    Header,
    SeekableDecryptor,
    ciphertext_size,
    decrypt_bytes,
    encrypt,
)
from tests.vault.test_format_vectors import VECTORS, shared

DEK = bytes(range(32))
IDENTITY = BlobIdentity("dataset:1", "item:10", "image")
SEGMENT = 16
SEALED = SEGMENT + TAG_SIZE


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def pushed(plaintext_chunks: list[bytes], header: Header, *, dek: bytes = DEK) -> bytes:
    encryptor = Encryptor(dek, IDENTITY, header)
    out = [encryptor.start()]
    out += [encryptor.update(chunk) for chunk in plaintext_chunks]
    out.append(encryptor.finish())
    return b"".join(out)


def blob_of(plaintext: bytes, segment_size: int = SEGMENT) -> bytes:
    return b"".join(encrypt(DEK, IDENTITY, [plaintext], segment_size=segment_size))


def reader(blob: bytes, *, identity: BlobIdentity = IDENTITY) -> SeekableDecryptor:
    return SeekableDecryptor(DEK, identity, io.BytesIO(blob))


# Encryptor ---------------------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(segment_size=st.sampled_from([16, 17, 64, 1000]), data=st.data())
def test_the_encryptor_writes_what_encrypt_writes_for_any_chunking(segment_size, data):
    """Sizes cluster on segment boundaries (k·size - 1, k·size, k·size + 1), where keeping back the last full
    segment matters; chunkings include empty chunks and chunks longer than a segment."""
    boundary = st.builds(lambda k, d: max(0, k * segment_size + d), st.integers(0, 4), st.sampled_from([-1, 0, 1]))
    size = data.draw(st.one_of(boundary, st.integers(0, 5 * segment_size)))
    plaintext = data.draw(st.binary(min_size=size, max_size=size))
    cuts = data.draw(st.lists(st.integers(0, size), max_size=8))
    chunks = split(plaintext, cuts)
    if data.draw(st.booleans()):
        chunks.insert(data.draw(st.integers(0, len(chunks))), b"")
    header = Header.new(segment_size)

    blob = pushed(chunks, header)

    assert blob == b"".join(encrypt(DEK, IDENTITY, [plaintext], header=header))
    assert len(blob) == ciphertext_size(size, segment_size)
    assert decrypt_bytes(DEK, IDENTITY, blob) == plaintext


@pytest.mark.parametrize("vector", VECTORS, ids=[vector["name"] for vector in VECTORS])
def test_the_encryptor_reproduces_the_documented_vectors_one_byte_at_a_time(vector):
    dek, identity, header = shared()
    plaintext = bytes.fromhex(vector["plaintext"])
    encryptor = Encryptor(dek, identity, header)
    blob = encryptor.start() + b"".join(encryptor.update(plaintext[i : i + 1]) for i in range(len(plaintext)))
    blob += encryptor.finish()
    assert blob == header.encode() + b"".join(bytes.fromhex(segment) for segment in vector["segments"])


def test_update_returns_only_whole_segments_and_keeps_back_a_full_one_until_more_arrives():
    encryptor = Encryptor(DEK, IDENTITY, Header.new(SEGMENT))
    encryptor.start()
    assert encryptor.update(b"x" * SEGMENT) == b"", "a full segment may still be the last"
    assert len(encryptor.update(b"y")) == SEALED, "one more byte: the held segment is sealed as not last"
    assert len(encryptor.update(b"z" * (3 * SEGMENT))) == 3 * SEALED
    assert len(encryptor.finish()) == TAG_SIZE + 1


@pytest.mark.parametrize(
    "misuse",
    [
        pytest.param(lambda e: e.update(b"x"), id="update-before-start"),
        pytest.param(lambda e: e.finish(), id="finish-before-start"),
        pytest.param(lambda e: (e.start(), e.start()), id="start-twice"),
        pytest.param(lambda e: (e.start(), e.finish(), e.update(b"x")), id="update-after-finish"),
        pytest.param(lambda e: (e.start(), e.finish(), e.finish()), id="finish-twice"),
    ],
)
def test_the_encryptor_refuses_to_be_driven_out_of_order(misuse):
    with pytest.raises(ValueError, match="encryptor"):
        misuse(Encryptor(DEK, IDENTITY))


def test_the_encryptor_repr_shows_no_key():
    encryptor = Encryptor(DEK, IDENTITY)
    assert DEK.hex() not in repr(encryptor)
    assert "segment_size=1048576" in repr(encryptor)


# SeekableDecryptor: reading -----------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    size=st.sampled_from([0, 1, 15, 16, 17, 47, 48, 49, 100]),
    steps=st.lists(
        st.tuples(st.sampled_from([io.SEEK_SET, io.SEEK_CUR, io.SEEK_END]), st.integers(-60, 120), st.integers(-1, 70)),
        max_size=12,
    ),
)
def test_any_seek_and_read_returns_what_a_plain_file_would(size, steps):
    plaintext = os.urandom(size)
    blob = reader(blob_of(plaintext))
    plain = io.BytesIO(plaintext)
    assert blob.size == size
    for whence, offset, length in steps:
        target = {io.SEEK_SET: 0, io.SEEK_CUR: plain.tell(), io.SEEK_END: size}[whence] + offset
        if target < 0:
            with pytest.raises(ValueError, match="negative seek"):
                blob.seek(offset, whence)
            continue
        assert blob.seek(offset, whence) == plain.seek(offset, whence)
        assert blob.read(length) == plain.read(length)
        assert blob.tell() == plain.tell()


def test_reads_span_segments_and_stop_at_the_end():
    plaintext = os.urandom(5 * SEGMENT + 3)
    blob = reader(blob_of(plaintext))
    assert blob.read(3) == plaintext[:3]
    assert blob.read(2 * SEGMENT) == plaintext[3 : 3 + 2 * SEGMENT], "one read crosses segment boundaries"
    assert blob.read() == plaintext[3 + 2 * SEGMENT :]
    assert blob.read(10) == b""
    assert blob.seek(1000) == 1000
    assert blob.read(10) == b"", "past the end is empty, as for any file"
    buffer = bytearray(8)
    blob.seek(-4, io.SEEK_END)
    assert blob.readinto(buffer) == 4
    assert bytes(buffer[:4]) == plaintext[-4:]


def test_a_closed_reader_refuses_to_read_and_closes_its_file(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(blob_of(b"secret"))
    source = path.open("rb")
    blob = SeekableDecryptor(DEK, IDENTITY, source)
    blob.close()
    assert source.closed
    assert repr(blob) == "<SeekableDecryptor closed>"
    with pytest.raises(ValueError, match="closed"):
        blob.read(1)
    with pytest.raises(ValueError, match="closed"):
        blob.seek(0)


def test_a_reader_that_fails_to_open_closes_its_file(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(blob_of(b"secret")[:-1])
    source = path.open("rb")
    with pytest.raises(BlobIntegrityError):
        SeekableDecryptor(DEK, IDENTITY, source)
    assert source.closed


def test_the_reader_repr_shows_no_key_or_plaintext():
    blob = reader(blob_of(b"TOP-SECRET-PIXELS"))
    blob.read()
    assert repr(blob) == "<SeekableDecryptor size=17>"


def _zip_of(members: dict[str, bytes]) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as writer:
        for index, (name, data) in enumerate(members.items()):
            method = zipfile.ZIP_DEFLATED if index % 2 else zipfile.ZIP_STORED
            writer.writestr(name, data, compress_type=method)
    return archive.getvalue()


MEMBERS = {
    "survey/001.png": os.urandom(70_000),
    "survey/002.png": os.urandom(8_000) * 12,  # repeats within deflate's window: compresses about 12:1
    "survey/003.png": os.urandom(9_000),
}


def test_zipfile_reads_a_zip_stored_in_a_blob(tmp_path):
    path = tmp_path / "archive.blob"
    path.write_bytes(b"".join(encrypt(DEK, IDENTITY, [_zip_of(MEMBERS)], segment_size=4096)))
    with zipfile.ZipFile(SeekableDecryptor(DEK, IDENTITY, path.open("rb"))) as archive:
        assert archive.testzip() is None
        assert {name: archive.read(name) for name in archive.namelist()} == MEMBERS


def test_the_archive_reader_reads_a_zip_stored_in_a_blob(tmp_path):
    path = tmp_path / "archive.blob"
    path.write_bytes(b"".join(encrypt(DEK, IDENTITY, [_zip_of(MEMBERS)], segment_size=4096)))
    with SeekableDecryptor(DEK, IDENTITY, path.open("rb")) as blob:
        entries = list(iter_archive(blob, name="archive.zip", limits=ArchiveLimits()))
    assert entries == [Member(name, data) for name, data in MEMBERS.items()]


# SeekableDecryptor: tampering ---------------------------------------------------------------------------------------


def verdict(blob: bytes, *, identity: BlobIdentity = IDENTITY) -> tuple[str, int | None] | None:
    """What the seekable reader says, opening the blob and reading all of it; None if it accepts it."""
    try:
        with reader(blob, identity=identity) as opened:
            opened.read()
    except BlobIntegrityError as refused:
        return refused.reason, refused.segment
    return None


def forward_verdict(blob: bytes, *, identity: BlobIdentity = IDENTITY) -> tuple[str, int | None] | None:
    try:
        decrypt_bytes(DEK, identity, blob)
    except BlobIntegrityError as refused:
        return refused.reason, refused.segment
    return None


@pytest.mark.parametrize("kept", [0, 1, 2])
def test_a_blob_cut_at_a_segment_boundary_is_refused_on_opening(kept):
    blob = blob_of(os.urandom(3 * SEGMENT - 3))
    with pytest.raises(BlobIntegrityError) as refused:
        reader(blob[: HEADER_SIZE + kept * SEALED])
    assert (refused.value.reason, refused.value.segment) == ("truncated", 0 if kept == 0 else kept - 1)


@pytest.mark.parametrize(
    "extra", [b"x", bytes(TAG_SIZE), os.urandom(SEALED), None], ids=["byte", "tag", "segment", "repeated-last"]
)
def test_a_blob_with_anything_appended_is_refused_on_opening(extra):
    blob = blob_of(os.urandom(2 * SEGMENT))
    extended = blob + (blob[-SEALED:] if extra is None else extra)
    with pytest.raises(BlobIntegrityError) as refused:
        reader(extended)
    assert (refused.value.reason, refused.value.segment) == ("extended", 1)


def test_a_flipped_bit_in_a_middle_segment_is_refused_when_that_segment_is_read():
    plaintext = os.urandom(4 * SEGMENT)
    blob = bytearray(blob_of(plaintext))
    blob[HEADER_SIZE + 2 * SEALED + 5] ^= 0x10
    opened = reader(bytes(blob))  # the last segment is intact: opening succeeds
    assert opened.read(2 * SEGMENT) == plaintext[: 2 * SEGMENT], "segments before the damage still read"
    with pytest.raises(BlobIntegrityError) as refused:
        opened.read(1)
    assert (refused.value.reason, refused.value.segment) == ("authentication", 2)


def test_a_flipped_bit_in_the_last_segment_is_refused_on_opening():
    blob = bytearray(blob_of(os.urandom(3 * SEGMENT + 4)))
    blob[-1] ^= 0x01
    with pytest.raises(BlobIntegrityError) as refused:
        reader(bytes(blob))
    assert (refused.value.reason, refused.value.segment) == ("authentication", 3)


def test_swapped_segments_are_refused_wherever_the_reader_starts():
    plaintext = os.urandom(4 * SEGMENT)
    blob = blob_of(plaintext)
    first, second = (HEADER_SIZE + i * SEALED for i in (1, 2))
    swapped = blob[:first] + blob[second : second + SEALED] + blob[first:second] + blob[second + SEALED :]
    opened = reader(swapped)
    opened.seek(2 * SEGMENT + 3)  # straight to the second swapped segment
    with pytest.raises(BlobIntegrityError) as refused:
        opened.read(1)
    assert (refused.value.reason, refused.value.segment) == ("authentication", 2)
    assert verdict(swapped) == ("authentication", 1)


def test_a_blob_read_as_another_identity_is_refused_on_opening():
    assert verdict(blob_of(b"image"), identity=BlobIdentity("dataset:1", "item:11", "image")) == (
        "authentication",
        0,
    )


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 32, 33, 50])
def test_both_readers_give_the_same_verdict_for_every_cut_and_every_extension(size):
    """Whatever the damage, an operator sees the same reason whichever reader found it."""
    blob = blob_of(os.urandom(size))
    variants = [blob[:cut] for cut in range(len(blob))]
    variants += [blob + os.urandom(extra) for extra in range(1, 3 * SEALED)]
    variants += [blob + blob[HEADER_SIZE:]]
    for variant in variants:
        assert verdict(variant) == forward_verdict(variant), len(variant) - len(blob)
    assert verdict(blob) is None


# Spool -------------------------------------------------------------------------------------------------------------


def test_a_spool_round_trips_and_measures_what_it_was_given():
    chunks = [os.urandom(70_000) for _ in range(40)]  # 2.7 MiB in upload-sized chunks
    plaintext = b"".join(chunks)
    with Spool() as spool:
        for chunk in chunks:
            spool.write(chunk)
        spool.close_for_writing()
        assert spool.size == len(plaintext)
        assert spool.sha256 == hashlib.sha256(plaintext).hexdigest()
        assert spool.path.stat().st_size == ciphertext_size(len(plaintext))
        with spool.open() as first, spool.open() as second:
            second.seek(1_500_000)
            assert second.read(10) == plaintext[1_500_000:1_500_010]
            assert first.read() == plaintext, "readers are independent"


def test_a_spool_is_a_private_file_with_a_random_name_in_a_private_folder(settings):
    with Spool() as one, Spool() as two:
        assert one.path.parent == two.path.parent == Path(settings.VAULT_BLOB_DIR) / "spool"
        process, spool_id, suffix = one.path.name.split(".")
        assert (spool_id, suffix) == (one.spool_id, "spool")
        assert two.path.name.startswith(process + "."), "one process, one name among spool files"
        assert one.spool_id != two.spool_id
        assert len(one.spool_id) == 32
        assert stat.S_IMODE(one.path.stat().st_mode) == 0o600
        assert stat.S_IMODE(one.path.parent.stat().st_mode) == 0o700
        assert one.identity == BlobIdentity("spool", one.spool_id, "upload")


def test_a_spool_folder_made_with_loose_permissions_is_tightened():
    folder = spool_root()
    folder.mkdir(parents=True, mode=0o755)
    folder.chmod(0o755)
    with Spool():
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_the_spool_file_holds_only_ciphertext():
    plaintext = os.urandom(3 * (1 << 20) + 77)
    with Spool() as spool:
        for start in range(0, len(plaintext), 65_536):
            spool.write(plaintext[start : start + 65_536])
        spool.close_for_writing()
        on_disk = spool.path.read_bytes()
    blocks = {plaintext[i : i + 16] for i in range(0, len(plaintext) - 15, 16)}
    assert not any(on_disk[i : i + 16] in blocks for i in range(len(on_disk) - 15))


def test_the_spool_key_never_shows_and_cannot_be_pickled():
    with Spool() as spool:
        spool.write(b"TOP-SECRET-PIXELS")
        key = spool._dek
        assert len(key) == 32
        assert key.hex() not in repr(spool)
        assert repr(key) not in repr(spool)
        assert repr(spool) == f"<Spool {spool.spool_id} writing size=17>"
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(spool)


def test_two_spools_never_share_a_key():
    with Spool() as one, Spool() as two:
        assert one._dek != two._dek


def test_a_spool_is_read_only_after_writing_and_unreadable_before():
    with Spool() as spool:
        spool.write(b"abc")
        with pytest.raises(ValueError, match="still being written"):
            spool.open()
        spool.close_for_writing()
        with pytest.raises(ValueError, match="not open for writing"):
            spool.write(b"d")
        with pytest.raises(ValueError, match="not open for writing"):
            spool.close_for_writing()


def test_deleting_a_spool_removes_its_file_and_key_and_is_idempotent():
    spool = Spool()
    spool.write(b"abc")
    spool.close_for_writing()
    opened = spool.open()
    spool.delete()
    spool.delete()
    assert spool.deleted
    assert not spool.path.exists()
    assert spool._dek == b""
    with pytest.raises(FileNotFoundError):
        opened.read()
    with pytest.raises(ValueError, match="deleted"):
        spool.open()


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_spools_and_their_readers_hold_no_file_descriptor_once_written():
    with Spool():  # the process's lock, made once
        before = open_descriptors()
        spools = []
        for index in range(300):
            spool = Spool()
            spool.write(os.urandom(100 + index))
            spool.close_for_writing()
            spools.append(spool)
        readers = [spool.open() for spool in spools]
        assert [len(reader.read()) for reader in readers] == [100 + index for index in range(300)]
        assert open_descriptors() == before
        for spool in spools:
            spool.delete()


def test_leaving_the_with_block_deletes_the_spool_even_on_error():
    def upload_that_fails() -> None:
        with Spool() as spool:
            spool.write(b"abc")
            (seen,) = spool_root().glob("*.spool")
            assert seen == spool.path
            raise RuntimeError(str(spool.path))

    with pytest.raises(RuntimeError) as failed:
        upload_that_fails()
    assert not Path(str(failed.value)).exists()


def test_a_spool_nobody_holds_any_more_deletes_its_file():
    spool = Spool()
    path = spool.path
    del spool
    gc.collect()
    assert not path.exists()


# Sweeping ----------------------------------------------------------------------------------------------------------


def test_the_sweep_removes_the_spools_of_a_killed_process_and_spares_live_ones():
    live = Spool()
    report = spool_root() / "orphans"
    child = os.fork()
    if child == 0:  # the child: spool two uploads, then die without any cleanup
        try:
            orphans = [Spool(), Spool()]
            orphans[0].write(os.urandom(100_000))
            orphans[1].write(os.urandom(10))
            orphans[1].close_for_writing()
            report.write_text("\n".join(orphan.path.name for orphan in orphans))
        finally:
            os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(child, 0)
    orphans = [spool_root() / name for name in report.read_text().split()]
    report.unlink()
    assert all(orphan.exists() for orphan in orphans), "the killed process could not clean up"
    child_lock = spool_root() / (orphans[0].name.split(".")[0] + ".lock")
    old = time.time() - 3600
    os.utime(live.path, (old, old))

    removed = sweep_spool(older_than=timedelta(minutes=10))

    assert sorted(removed) == sorted([*orphans, child_lock]), "a dead process's spools go, however young"
    assert live.path.exists(), "a live process's spool stays, however old"
    live.delete()


def test_the_sweep_removes_unvouched_files_only_once_they_are_old():
    """A spool with no lock file (removed by hand) and a lock its process died before naming: the age threshold
    covers the instant between a process creating its lock and renaming it into place."""
    folder = spool_root()
    folder.mkdir(parents=True, exist_ok=True)
    leftovers = [folder / ("f" * 16 + "." + "0" * 32 + ".spool"), folder / ("e" * 16 + ".lock.new")]
    for leftover in leftovers:
        leftover.write_bytes(b"")
    assert sweep_spool(older_than=timedelta(minutes=10)) == []
    assert sorted(sweep_spool(older_than=timedelta(0))) == sorted(leftovers)


def test_the_sweep_of_a_missing_folder_finds_nothing():
    assert sweep_spool() == []
