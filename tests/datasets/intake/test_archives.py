"""iter_archive: members come out one at a time and bounded; every path, link, special file, bomb and lie that an
archive can carry is refused, per member where the rest can still be examined, whole where the archive is hostile."""

from __future__ import annotations

import gzip
import io
import stat
import struct
import tarfile
import tracemalloc
import warnings
import zipfile
import zlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.datasets.intake import ArchiveEntry, ArchiveLimits, Member, Rejected, Skipped, iter_archive
from tests.datasets.intake.builders import (
    MiB,
    RawEntry,
    assemble_zip,
    central_directory_offsets,
    encrypted_entry,
    forward_only,
    image_bytes,
    set_declared_size,
    tar_bytes,
    tar_gz_of_zeros,
    tar_special,
    zip_bytes,
    zip_of_zeros,
)

LIMITS = ArchiveLimits()
PNG = image_bytes("PNG")
JPEG = image_bytes("JPEG")


def entries(data: bytes, limits: ArchiveLimits = LIMITS, name: str = "upload") -> list[ArchiveEntry]:
    return list(iter_archive(io.BytesIO(data), name=name, limits=limits))


def refused_whole(data: bytes | io.BufferedReader, limits: ArchiveLimits = LIMITS) -> tuple[Rejected, list]:
    """Iterate until the archive is refused; return the refusal and what was yielded before it."""
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    before: list[ArchiveEntry] = []
    with pytest.raises(Rejected) as caught:
        before.extend(iter_archive(stream, name="upload.zip", limits=limits))
    assert caught.value.name == "upload.zip"
    return caught.value, before


def members(found: list[ArchiveEntry]) -> dict[str, bytes]:
    return {entry.name: entry.data for entry in found if isinstance(entry, Member)}


def rejections(found: list[ArchiveEntry]) -> dict[str, str]:
    return {entry.name: entry.reason for entry in found if isinstance(entry, Rejected)}


def as_zip(pairs: list[tuple[str, bytes]]) -> bytes:
    return zip_bytes(pairs)


def as_tar(pairs: list[tuple[str, bytes]]) -> bytes:
    return tar_bytes(list(pairs))


def as_tar_gz(pairs: list[tuple[str, bytes]]) -> bytes:
    return tar_bytes(list(pairs), mode="w:gz")


BUILDERS: dict[str, Callable[[list[tuple[str, bytes]]], bytes]] = {"zip": as_zip, "tar": as_tar, "tar.gz": as_tar_gz}


# ------------------------------------------------------------------------------------------------ the basics


@pytest.mark.parametrize("kind", BUILDERS)
def test_members_come_out_with_their_bytes_in_order(kind: str) -> None:
    pairs = [("survey/a.png", PNG), ("survey/b.jpg", JPEG), ("c.png", image_bytes("PNG", size=(9, 9)))]
    found = entries(BUILDERS[kind](pairs))
    assert [(entry.name, entry.data) for entry in found if isinstance(entry, Member)] == pairs
    assert len(found) == len(pairs)


def test_a_tar_gz_is_read_from_a_stream_that_cannot_seek() -> None:
    """An upload can be examined as it arrives; only ZIP, whose directory is at its end, needs to seek."""
    pairs = [("a.png", PNG), ("b.jpg", JPEG)]
    stream = forward_only(as_tar_gz(pairs))
    assert not stream.seekable()
    assert list(iter_archive(stream, name="upload.tgz", limits=LIMITS)) == [Member(*pair) for pair in pairs]


def test_a_zip_requires_a_seekable_stream() -> None:
    with pytest.raises(ValueError, match="seekable"):
        list(iter_archive(forward_only(as_zip([("a.png", PNG)])), name="upload.zip", limits=LIMITS))


def test_directories_are_skipped_silently_and_clutter_is_reported_as_skipped() -> None:
    data = as_zip(
        [("photos/", b""), ("photos/a.png", PNG), ("__MACOSX/photos/._a.png", b"\0\5\26\7"), ("photos/.DS_Store", b"x")]
    )
    found = entries(data)
    assert members(found) == {"photos/a.png": PNG}
    assert [entry.name for entry in found if isinstance(entry, Skipped)] == [
        "__MACOSX/photos/._a.png",
        "photos/.DS_Store",
    ]
    assert not rejections(found)
    assert len(found) == 3


def test_long_and_non_ascii_names_survive_pax_and_gnu_headers() -> None:
    name = "missions/" + "überflug-" * 20 + "/frame.png"
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        assert members(entries(tar_bytes([(name, PNG)], fmt=fmt))) == {name: PNG}


def test_a_zip64_archive_is_read() -> None:
    """Large archives use ZIP64 records; zipfile writes them for small files when its limits are lowered."""
    buffer = io.BytesIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(zipfile, "ZIP64_LIMIT", 16)
        patch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("a.png", PNG)
            archive.writestr("b.jpg", JPEG)
    data = buffer.getvalue()
    assert b"PK\x06\x06" in data
    assert members(entries(data)) == {"a.png": PNG, "b.jpg": JPEG}


def test_something_that_is_not_an_archive_is_refused_naming_what_it_is() -> None:
    reason = refused_whole(PNG)[0].reason
    assert "a PNG image, not a ZIP or tar archive" in reason


def test_a_gzip_that_holds_no_tar_is_refused() -> None:
    assert "not a tar archive" in refused_whole(gzip.compress(b"hello world" * 100))[0].reason


def test_a_zip_with_bytes_appended_after_its_end_record_is_refused() -> None:
    assert "no directory at its end" in refused_whole(as_zip([("a.png", PNG)]) + b"trailing")[0].reason


def test_a_zip_cut_short_is_refused() -> None:
    data = as_zip([("a.png", PNG)])
    assert "no directory at its end" in refused_whole(data[: len(data) // 2])[0].reason


@pytest.mark.parametrize("kind", ["tar", "tar.gz"])
def test_a_tar_cut_inside_a_member_is_refused(kind: str) -> None:
    data = BUILDERS[kind]([("a.png", PNG), ("b.jpg", JPEG)])
    if kind == "tar.gz":
        data = gzip.compress(gzip.decompress(data)[: 512 + len(PNG) // 2])
    else:
        data = data[: 512 + len(PNG) // 2]
    reason = refused_whole(data)[0].reason
    assert "truncated" in reason


def test_a_tar_gz_whose_gzip_checksum_fails_is_refused() -> None:
    """The gzip trailer's CRC covers the whole tar; the stream is read to its end so it is always checked."""
    data = bytearray(as_tar_gz([("a.png", PNG)]))
    data[-8] ^= 0xFF  # first byte of the CRC-32 trailer
    assert "damaged" in refused_whole(bytes(data))[0].reason


def test_a_member_whose_crc_does_not_match_is_refused_and_the_rest_still_examined() -> None:
    data = bytearray(zip_bytes([("a.png", PNG), ("b.jpg", JPEG)], compression=zipfile.ZIP_STORED))
    start = data.index(PNG)
    data[start + 100] ^= 0xFF
    found = entries(bytes(data))
    assert "CRC-32" in rejections(found)["a.png"]
    assert members(found) == {"b.jpg": JPEG}


# --------------------------------------------------------------------------------------------- unsafe paths

UNSAFE_PATHS = [
    ("../evil.png", "'..'"),
    ("photos/../../evil.png", "'..'"),
    ("/etc/cron.d/evil.png", "absolute"),
    ("C:/Windows/evil.png", "drive letter"),
    ("C:\\Windows\\evil.png", "backslash"),
    ("..\\..\\evil.png", "backslash"),
    ("\\\\server\\share\\evil.png", "backslash"),
    ("photos/evil\u202egnp.exe", "direction-override"),
    ("photos/evil\x1b[2J.png", "control characters"),
]


@pytest.mark.parametrize("kind", ["zip", "tar"])
@pytest.mark.parametrize(("path", "said"), UNSAFE_PATHS)
def test_a_member_path_that_could_escape_is_refused_and_safe_members_still_come(
    kind: str, path: str, said: str
) -> None:
    """V-222605, V-222609: zip slip and its relatives (absolute, drive-letter, backslash paths) are refused by
    name before a byte of the member is read; the archive's other members are still examined."""
    found = entries(BUILDERS[kind]([("ok.png", PNG), (path, PNG)]))
    assert members(found) == {"ok.png": PNG}
    assert said in rejections(found)[path]


def test_a_nul_in_a_zip_member_name_is_refused() -> None:
    """zipfile cuts names at a NUL and C tools stop reading there: "evil.php\\0.png" is two names at once."""
    name = b"photos/evil.php\x00.png"
    data = assemble_zip([RawEntry(name, PNG, zlib.crc32(PNG), len(PNG))])
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["photos/evil.php"]
    assert "control characters" in rejections(entries(data))[name.decode()]


def test_a_normalised_path_is_what_comes_out() -> None:
    assert members(entries(as_tar([("./photos//a.png", PNG)]))) == {"photos/a.png": PNG}


# ---------------------------------------------------------------------------------------- links and devices


@pytest.mark.parametrize(
    ("member", "said"),
    [
        (tar_special("link.png", tarfile.SYMTYPE, "/etc/shadow"), "symbolic link to '/etc/shadow'"),
        (tar_special("hard.png", tarfile.LNKTYPE, "ok.png"), "hard link to 'ok.png'"),
        (tar_special("tty.png", tarfile.CHRTYPE), "device file"),
        (tar_special("sda.png", tarfile.BLKTYPE), "device file"),
        (tar_special("pipe.png", tarfile.FIFOTYPE), "named pipe"),
    ],
)
def test_links_devices_and_pipes_in_a_tar_are_refused(member: tarfile.TarInfo, said: str) -> None:
    """V-222609: a link can point anywhere (even at a member that looks harmless); special files are never images."""
    found = entries(tar_bytes([("ok.png", PNG), member, ("after.png", JPEG)]))
    assert members(found) == {"ok.png": PNG, "after.png": JPEG}
    assert said in rejections(found)[member.name]


def test_a_symlink_in_a_zip_is_refused() -> None:
    """V-222609: ZIP marks symlinks with the Unix mode in the external attributes; the target is the data."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("photos/link.png")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "../../../etc/passwd")
        archive.writestr("photos/ok.png", PNG)
    found = entries(buffer.getvalue())
    assert "symbolic link" in rejections(found)["photos/link.png"]
    assert members(found) == {"photos/ok.png": PNG}


def test_a_fifo_in_a_zip_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        fifo = zipfile.ZipInfo("pipe.png")
        fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
        archive.writestr(fifo, b"")
    assert "named pipe" in rejections(entries(buffer.getvalue()))["pipe.png"]


# --------------------------------------------------------------------------------------------- encryption


def test_an_encrypted_zip_member_is_refused() -> None:
    """V-222609: an encrypted member cannot be checked, so it cannot be accepted; the fixture is genuinely
    encrypted (zipfile opens it with the password)."""
    data = assemble_zip(
        [encrypted_entry("secret.png", PNG, b"hunter2"), RawEntry(b"ok.jpg", JPEG, zlib.crc32(JPEG), len(JPEG))]
    )
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("secret.png", pwd=b"hunter2") == PNG
    found = entries(data)
    assert "encrypted" in rejections(found)["secret.png"]
    assert members(found) == {"ok.jpg": JPEG}


# -------------------------------------------------------------------------------------------- duplicates


@pytest.mark.parametrize("kind", BUILDERS)
@pytest.mark.parametrize("second", ["a.png", "A.PNG", "./a.png", "a\u0301.png"])
def test_two_members_with_the_same_name_are_refused(kind: str, second: str) -> None:
    """V-222605: names that are equal once case, `.` components and Unicode form are normalised are one name on
    common filesystems; which member is meant cannot be told, so the second is refused naming the first."""
    first = "a.png" if second != "a\u0301.png" else "\u00e1.png"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate it is asked to write
        data = BUILDERS[kind]([(first, PNG), (second, JPEG)])
    found = entries(data)
    assert members(found) == {first: PNG}
    reason = rejections(found)[second]
    assert first in reason


# ---------------------------------------------------------------------------------------------- zip bombs


@pytest.mark.parametrize("kind", BUILDERS)
def test_too_many_members_refuses_the_archive(kind: str) -> None:
    """V-222594: the member count is capped. For ZIP it is read from the directory before anything is extracted."""
    data = BUILDERS[kind]([(f"{index}.png", PNG) for index in range(6)])
    refusal, before = refused_whole(data, ArchiveLimits(max_members=5))
    assert "more than 5 members" in refusal.reason or "declares 6 members" in refusal.reason
    if kind == "zip":
        assert before == []
    else:
        assert len(before) == 5
    assert len(entries(data, ArchiveLimits(max_members=6))) == 6


def test_a_zip_whose_directory_declares_too_many_bytes_is_refused_before_extracting() -> None:
    """V-222594: honest sizes over the total cap are refused from the central directory, nothing extracted."""
    pairs = [("a.png", PNG), ("b.jpg", JPEG), ("c.png", PNG[::-1])]
    total = sum(len(data) for _, data in pairs)
    refusal, before = refused_whole(as_zip(pairs), ArchiveLimits(max_total_bytes=total - 1))
    assert f"declare {total:,} bytes" in refusal.reason
    assert "before extracting" in refusal.reason
    assert before == []
    assert len(entries(as_zip(pairs), ArchiveLimits(max_total_bytes=total))) == 3


@pytest.mark.parametrize("kind", ["tar", "tar.gz"])
def test_a_tar_member_that_would_pass_the_total_is_refused_from_its_header(kind: str) -> None:
    data = BUILDERS[kind]([("a.png", PNG), ("b.jpg", JPEG)])
    limit = 512 + len(PNG) + 512 + len(JPEG) // 2
    refusal, before = refused_whole(forward_only(data), ArchiveLimits(max_total_bytes=limit))
    assert f"declares {len(JPEG):,} bytes" in refusal.reason
    assert "before extracting it" in refusal.reason
    assert before == [Member("a.png", PNG)]


def test_a_member_over_the_member_cap_is_refused_and_the_rest_still_come() -> None:
    for kind in BUILDERS:
        found = entries(
            BUILDERS[kind]([("big.png", PNG), ("small.jpg", JPEG)]), ArchiveLimits(max_member_bytes=len(JPEG))
        )
        assert f"{len(PNG):,} bytes" in rejections(found)["big.png"], kind
        assert members(found) == {"small.jpg": JPEG}, kind


def test_a_member_that_expands_beyond_the_ratio_cap_is_refused_unread() -> None:
    """V-222594: real imagery barely compresses; a member declaring a thousandfold expansion is refused from the
    directory, before a byte is inflated."""
    data = zip_of_zeros("flat.png", 10 * MiB)
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo("flat.png")
    ratio = info.file_size // info.compress_size
    assert ratio > 100
    reason = rejections(entries(data))["flat.png"]
    assert f"{info.file_size:,} bytes from {info.compress_size:,} compressed" in reason
    assert "100:1" in reason
    assert members(entries(data, ArchiveLimits(max_ratio=ratio + 1))) == {"flat.png": bytes(10 * MiB)}


def test_entries_that_overlap_are_refused_as_a_bomb() -> None:
    """V-222594: non-recursive zip bombs point many directory records at one compressed stream (CVE-2024-0450)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    stored = compressor.compress(bytes(MiB)) + compressor.flush()
    shared = RawEntry(b"a.png", stored, zlib.crc32(bytes(MiB)), MiB, method=8)
    data = assemble_zip([shared], extra_directory=[(RawEntry(b"a.png", stored, shared.crc, MiB, method=8), 0)] * 3)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert len(archive.infolist()) == 4
    refusal, before = refused_whole(data, ArchiveLimits(max_ratio=10_000))
    assert "overlap" in refusal.reason
    assert before == []


def test_a_local_header_that_names_another_file_is_refused() -> None:
    """Tools that read local headers and tools that read the directory must never see different names."""
    data = bytearray(as_zip([("a.png", PNG)]))
    data[30:35] = b"b.png"
    refusal, _ = refused_whole(bytes(data))
    assert "local header differs" in refusal.reason


def peak_bytes(work: Callable[[], None]) -> int:
    tracemalloc.start()
    try:
        work()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def drain(data: bytes | io.BufferedReader, limits: ArchiveLimits) -> Callable[[], None]:
    def run() -> None:
        stream = io.BytesIO(data) if isinstance(data, bytes) else data
        with pytest.raises(Rejected):
            for _ in iter_archive(stream, name="upload.zip", limits=limits):
                pass

    return run


def test_a_member_that_lies_about_its_size_is_stopped_during_extraction_without_holding_it() -> None:
    """V-222594: the directory declares 1,000 bytes for a member that inflates to 200 MB. Every declared number
    passes the checks, so only counting the bytes that actually come out can stop it; it stops within one
    output step, and memory stays a few MB (tracemalloc) instead of 200 MB."""
    honest = zip_of_zeros("zeros.png", 200 * MiB)
    lying = set_declared_size(honest, 1000)
    assert zipfile.ZipFile(io.BytesIO(lying)).getinfo("zeros.png").file_size == 1000

    refusal, _ = refused_whole(lying)
    assert "more than the 1,000 bytes the archive declares" in refusal.reason
    assert peak_bytes(drain(lying, LIMITS)) < 4 * MiB


def test_a_huge_honest_member_is_refused_without_reading_it() -> None:
    data = zip_of_zeros("zeros.png", 200 * MiB)
    found: list[ArchiveEntry] = []
    peak = peak_bytes(lambda: found.extend(iter_archive(io.BytesIO(data), name="upload.zip", limits=LIMITS)))
    assert "100:1" in rejections(found)["zeros.png"]
    assert peak < 1 * MiB


def test_a_tar_gz_bomb_is_stopped_by_the_expansion_ratio_with_bounded_memory() -> None:
    """V-222594: a tar.gz of one 200 MB zero-filled member (under the member cap) is stopped by the measured
    expansion of the gzip stream, read from a stream that cannot seek, within a few MB of memory."""
    data = tar_gz_of_zeros("zeros.png", 200 * MiB)
    assert len(data) < 2 * MiB
    refusal, _ = refused_whole(forward_only(data))
    assert "expands more than 100:1" in refusal.reason
    assert peak_bytes(drain(forward_only(data), LIMITS)) < 8 * MiB


def test_a_tar_stream_is_stopped_at_the_total_cap_counting_actual_bytes() -> None:
    data = tar_gz_of_zeros("zeros.png", 8 * MiB)
    limits = ArchiveLimits(max_total_bytes=4 * MiB, max_ratio=100_000)
    refusal, _ = refused_whole(forward_only(data), limits)
    assert "4,194,304" in refusal.reason


# ----------------------------------------------------------------------------------------- nested archives


def test_a_nested_archive_comes_out_as_an_opaque_member() -> None:
    """Archives inside archives are not expanded (that would multiply every cap); the inner archive is handed
    on as a file and refused by the image check (see test_plan)."""
    inner = as_zip([("a.png", PNG)])
    assert members(entries(as_tar([("inner.zip", inner)]))) == {"inner.zip": inner}


# ------------------------------------------------------------------------------------------- never crashes


def assert_members_or_refusal(data: bytes) -> None:
    found: list[ArchiveEntry] = []
    refusal: Rejected | None = None
    try:
        found.extend(iter_archive(io.BytesIO(data), name="fuzz", limits=LIMITS))
    except Rejected as raised:
        refusal = raised
    assert all(isinstance(entry, Member | Skipped | Rejected) for entry in found)
    assert refusal is None or refusal.reason


_ARCHIVE_MAGICS = [b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"]


@settings(max_examples=300, deadline=None)
@given(prefix=st.sampled_from(_ARCHIVE_MAGICS), body=st.binary(max_size=2048))
def test_arbitrary_bytes_give_members_or_refusals_and_nothing_else(prefix: bytes, body: bytes) -> None:
    """V-222609: a hostile archive ends in a refusal, never in an unhandled error."""
    assert_members_or_refusal(prefix + body)


_SEED_ARCHIVES = [
    as_zip([("a.png", PNG[:300]), ("b/", b"")]),
    as_tar([("a.png", PNG[:300])]),
    as_tar_gz([("a.png", PNG[:300])]),
]


@settings(max_examples=300, deadline=None)
@given(
    seed=st.sampled_from(range(len(_SEED_ARCHIVES))),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=6),
)
def test_damaged_real_archives_give_members_or_refusals_and_nothing_else(
    seed: int, edits: list[tuple[float, int]]
) -> None:
    data = bytearray(_SEED_ARCHIVES[seed])
    for where, value in edits:
        data[int(where * len(data))] = value
    assert_members_or_refusal(bytes(data))


def test_the_central_directory_reader_of_the_fixtures_reads_what_zipfile_writes() -> None:
    """set_declared_size and the overlap fixture are only evidence if the offsets they edit are the real ones."""
    data = as_zip([("a.png", PNG), ("b.jpg", JPEG)])
    offsets = central_directory_offsets(data)
    assert [data[offset + 46 : offset + 51] for offset in offsets] == [b"a.png", b"b.jpg"]
    assert struct.unpack_from("<I", set_declared_size(data, 7), offsets[0] + 24) == (7,)
