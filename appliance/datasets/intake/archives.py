"""Streams the members out of an uploaded ZIP or tar (plain or gzip-compressed), one at a time, in memory.

`iter_archive` yields each member as a `Member(name, data)`, a `Skipped` (operating-system clutter) or a `Rejected`
(this member is unsafe; the others are still examined, so one import reports every problem at once). Problems that
condemn the whole archive — too many members, too many bytes, a lying header, a damaged stream — are raised as
`Rejected(archive_name, reason)` and end the iteration; a caller that already received members must discard them.

Why it is written this way:
- Nothing is extracted to disk (plaintext imagery must never touch it), so there is no path to "sanitise": every
  unsafe path (`..`, absolute, drive letter, backslash) and every link or special file is refused outright, because
  a later export or a person's own tools would trust it.
- Memory is bounded by one member (`max_member_bytes`) plus small buffers, whatever the archive holds. Caps on the
  member count and total size are checked from the ZIP central directory or each tar header BEFORE anything is
  decompressed, and the actual decompressed bytes are counted DURING extraction, stopping the moment a declared
  size or a cap is exceeded: declared sizes are what an attacker writes, never what the reader trusts.
- The ZIP directory and tar headers are parsed here rather than by `zipfile`/`tarfile`: those modules read a
  whole central directory or extended header into memory before the caller can count it, follow sparse maps, and
  (on Python 3.12.1, which this appliance runs) carry known parser denials of service (CVE-2024-0450 overlapping
  ZIP entries, CVE-2024-6232 tar header backtracking). The subset accepted is small on purpose: ZIP with stored or
  deflated members; tar (ustar, GNU, pax) with regular files and directories, uncompressed or gzip.
- Archives inside an archive are not expanded: a nested ZIP or tar is yielded as a member like any other file and
  refused by `inspect_image` as "not an image". Expanding them would multiply every cap.
"""

from __future__ import annotations

import gzip
import io
import stat
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple

from appliance.datasets.intake.names import collision_key, member_path_problem, normalise_member_path, skip_reason
from appliance.datasets.intake.outcomes import Rejected, Skipped, printable
from appliance.datasets.intake.signatures import describe

MiB = 1024 * 1024
GiB = 1024 * MiB

_READ_CHUNK = 64 * 1024  # compressed bytes read at a time
_OUTPUT_CHUNK = 1 * MiB  # most decompressed bytes produced by one step; the unit of overshoot past a cap


@dataclass(frozen=True)
class ArchiveLimits:
    """How much one archive may cost.

    max_members counts every entry, directories and skipped clutter included (each costs a header to process).
    max_member_bytes is the largest single member ever held in memory. max_total_bytes caps all decompressed
    bytes (for tar: the whole decompressed stream, headers and padding included, since skipping a member still
    means decompressing it). max_ratio caps how many times a member may expand (for tar.gz: the whole stream);
    real photographs and scans barely compress, while zip bombs expand a thousandfold.
    """

    max_members: int = 10_000
    max_member_bytes: int = 256 * MiB
    max_total_bytes: int = 4 * GiB
    max_ratio: int = 100

    def __post_init__(self) -> None:
        for field_name in ("max_members", "max_member_bytes", "max_total_bytes", "max_ratio"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ArchiveLimits.{field_name} must be a positive integer, got {value!r}")


class Member(NamedTuple):
    """One extracted regular file: its normalised path inside the archive and its bytes."""

    name: str
    data: bytes


ArchiveEntry = Member | Skipped | Rejected


def iter_archive(fileobj: BinaryIO, *, name: str, limits: ArchiveLimits) -> Iterator[ArchiveEntry]:
    """Yield every member of the ZIP or tar in `fileobj`, each checked; raise `Rejected(name, …)` for the archive.

    The type comes from the content, not from `name`, which only labels messages. A ZIP must be seekable (its
    directory is at the end); a tar, plain or gzip-compressed, may be a forward-only stream.
    """
    start = fileobj.tell() if fileobj.seekable() else 0
    head = _read_head(fileobj, 512)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        if not fileobj.seekable():
            raise ValueError("a ZIP archive must be given as a seekable file object")
        yield from _iter_zip(fileobj, start, name, limits)
        return
    if head.startswith(b"\x1f\x8b") or head.startswith(b"ustar", 257):
        source: BinaryIO | _Prefixed = fileobj
        if fileobj.seekable():
            fileobj.seek(start)
        else:
            source = _Prefixed(head, fileobj)
        yield from _iter_tar(source, head.startswith(b"\x1f\x8b"), name, limits)
        return
    raise Rejected(name, f"the file is {describe(head)}, not a ZIP or tar archive")


def _read_head(fileobj: BinaryIO, size: int) -> bytes:
    """Read up to `size` bytes, looping over short reads (a pipe or socket may return fewer than asked)."""
    head = b""
    while len(head) < size:
        chunk = fileobj.read(size - len(head))
        if not chunk:
            break
        head += chunk
    return head


class _Gate:
    """The checks every member passes whatever the archive type: count, path, type, clutter, duplicate names."""

    def __init__(self, archive: str, limits: ArchiveLimits) -> None:
        self.archive = archive
        self.limits = limits
        self.count = 0
        self.seen: dict[str, str] = {}

    def count_one(self) -> None:
        self.count += 1
        if self.count > self.limits.max_members:
            raise Rejected(self.archive, f"the archive holds more than {self.limits.max_members:,} members")

    def admit(self, name: str, kind: str, link_target: str | None = None) -> str | Skipped | Rejected | None:
        """Return the normalised path to extract, a verdict to report instead, or None for a directory."""
        self.count_one()
        problem = member_path_problem(name)
        if problem:
            return Rejected(name, problem)
        if kind == "directory":
            return None
        if kind != "file":
            return Rejected(name, _kind_reason(kind, link_target))
        path = normalise_member_path(name)
        if not path:
            return Rejected(name, "its path names no file")
        skip = skip_reason(path)
        if skip:
            return Skipped(name, skip)
        key = collision_key(path)
        first = self.seen.get(key)
        if first is not None:
            return Rejected(
                name, f"another member has the same name ({printable(first)}); which one is meant cannot be told"
            )
        self.seen[key] = name
        return path


def _kind_reason(kind: str, link_target: str | None) -> str:
    target = f" to {printable(link_target)!r}" if link_target else ""
    return {
        "symlink": f"it is a symbolic link{target}; links are refused because they can point outside the import",
        "hardlink": f"it is a hard link{target}; links are refused because they can point outside the import",
        "device": "it is a device file, which is never imagery",
        "fifo": "it is a named pipe (FIFO), which is never imagery",
        "socket": "it is a socket, which is never imagery",
    }.get(kind, f"it is a special member ({kind}), not a regular file")


def _member_too_big(name: str, size: int, limits: ArchiveLimits) -> Rejected | None:
    if size > limits.max_member_bytes:
        return Rejected(name, f"it is {size:,} bytes, over the {limits.max_member_bytes:,}-byte limit for one member")
    return None


# ---------------------------------------------------------------------------------------------------------- ZIP

_EOCD = struct.Struct("<4sHHHHIIH")
_EOCD64_LOCATOR = struct.Struct("<4sIQI")
_EOCD64 = struct.Struct("<4sQHHIIQQQQ")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_ZIP_MAX_TAIL = _EOCD.size + 0xFFFF
_FLAG_ENCRYPTED = 0x0001
_FLAG_STRONG_ENCRYPTION = 0x0040
_FLAG_UTF8 = 0x0800
_STORED, _DEFLATED, _AES = 0, 8, 99


@dataclass(frozen=True)
class _ZipEntry:
    raw_name: bytes
    name: str | None  # None when the name claims UTF-8 but is not
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    mode: int  # Unix mode from the external attributes (0 when the creator recorded none)
    offset: int


def _iter_zip(fileobj: BinaryIO, start: int, archive: str, limits: ArchiveLimits) -> Iterator[ArchiveEntry]:
    entries, directory_offset = _zip_directory(fileobj, start, archive, limits)
    declared_total = sum(entry.size for entry in entries)
    if declared_total > limits.max_total_bytes:
        raise Rejected(
            archive,
            f"its members declare {declared_total:,} bytes in all, over the {limits.max_total_bytes:,}-byte "
            "limit for one archive (checked before extracting anything)",
        )
    _check_no_overlap(entries, directory_offset, archive)

    gate = _Gate(archive, limits)
    extracted = 0
    for entry in entries:
        if entry.name is None:
            gate.count_one()
            yield Rejected(entry.raw_name.decode("utf-8", "backslashreplace"), "its name is not valid UTF-8")
            continue
        verdict = gate.admit(entry.name, _zip_kind(entry.name, entry.mode))
        if verdict is None or isinstance(verdict, Skipped | Rejected):
            if verdict is not None:
                yield verdict
            continue
        problem = _zip_member_problem(entry, limits)
        if problem:
            yield problem
            continue
        outcome = _zip_extract(fileobj, start, entry, directory_offset, archive, limits.max_total_bytes - extracted)
        if isinstance(outcome, Rejected):
            yield outcome
            continue
        extracted += len(outcome)
        yield Member(verdict, outcome)
        del outcome  # hold at most one member at a time


def _zip_directory(fileobj: BinaryIO, start: int, archive: str, limits: ArchiveLimits) -> tuple[list[_ZipEntry], int]:
    """Read the central directory entry by entry, refusing the archive as soon as the count passes its cap."""
    end = fileobj.seek(0, 2)
    tail_start = max(start, end - _ZIP_MAX_TAIL)
    fileobj.seek(tail_start)
    tail = fileobj.read(end - tail_start)
    # The end record must end exactly where the file does: readers that search differently must not disagree.
    pos = tail.rfind(b"PK\x05\x06")
    while pos != -1 and not (
        pos + _EOCD.size <= len(tail) and pos + _EOCD.size + _EOCD.unpack_from(tail, pos)[7] == len(tail)
    ):
        pos = tail.rfind(b"PK\x05\x06", 0, pos)
    if pos == -1:
        raise Rejected(archive, "the ZIP archive has no directory at its end (it is truncated or has data appended)")
    _, disk, directory_disk, disk_entries, count, size, offset, _ = _EOCD.unpack_from(tail, pos)
    directory_end = tail_start + pos
    if disk or directory_disk or disk_entries != count:
        raise Rejected(archive, "the ZIP archive spans several disks, which is not accepted")
    fileobj.seek(max(start, directory_end - _EOCD64_LOCATOR.size))
    if count == 0xFFFF or 0xFFFFFFFF in (size, offset) or fileobj.read(4) == b"PK\x06\x07":
        # ZIP64: the 64-bit record is authoritative whenever its locator is present, placeholders or not.
        count, size, offset, directory_end = _zip64_directory(fileobj, start, directory_end, archive)
    offset += start
    if offset + size != directory_end or offset < start:
        raise Rejected(archive, "the ZIP directory is not where the archive says it is (damaged, or data inserted)")
    if count > limits.max_members:
        raise Rejected(
            archive,
            f"the archive declares {count:,} members, over the limit of {limits.max_members:,} (checked before "
            "extracting anything)",
        )

    entries: list[_ZipEntry] = []
    fileobj.seek(offset)
    consumed = 0
    while consumed < size:
        fixed = fileobj.read(_CENTRAL.size)
        if len(fixed) < _CENTRAL.size or not fixed.startswith(b"PK\x01\x02"):
            raise Rejected(archive, "the ZIP directory is damaged")
        (_, _, _, flags, method, _, _, crc, csize, usize, name_len, extra_len, comment_len, _, _,
         external, local_offset) = _CENTRAL.unpack(fixed)  # fmt: skip
        raw_name = fileobj.read(name_len)
        extra = fileobj.read(extra_len)
        fileobj.seek(comment_len, 1)
        consumed += _CENTRAL.size + name_len + extra_len + comment_len
        if len(entries) >= limits.max_members:
            raise Rejected(archive, f"the archive holds more than {limits.max_members:,} members")
        usize, csize, local_offset = _zip64_sizes(extra, usize, csize, local_offset, archive)
        entries.append(
            _ZipEntry(
                raw_name=raw_name,
                name=_zip_name(raw_name, flags),
                flags=flags,
                method=method,
                crc=crc,
                compressed_size=csize,
                size=usize,
                mode=external >> 16,
                offset=local_offset + start,
            )
        )
    if consumed != size or len(entries) != count:
        raise Rejected(archive, "the ZIP directory is damaged (its entries do not match its end record)")
    return entries, offset


def _zip64_directory(fileobj: BinaryIO, start: int, end_record: int, archive: str) -> tuple[int, int, int, int]:
    fileobj.seek(max(0, end_record - _EOCD64_LOCATOR.size))
    locator = fileobj.read(_EOCD64_LOCATOR.size)
    if len(locator) < _EOCD64_LOCATOR.size or not locator.startswith(b"PK\x06\x07"):
        raise Rejected(archive, "the ZIP archive's end record is damaged (a ZIP64 value without its ZIP64 record)")
    _, _, record_offset, _ = _EOCD64_LOCATOR.unpack(locator)
    record_offset += start
    fileobj.seek(record_offset)
    record = fileobj.read(_EOCD64.size)
    if len(record) < _EOCD64.size or not record.startswith(b"PK\x06\x06"):
        raise Rejected(archive, "the ZIP archive's ZIP64 end record is damaged")
    _, _, _, _, disk, directory_disk, disk_entries, count, size, offset = _EOCD64.unpack(record)
    if disk or directory_disk or disk_entries != count:
        raise Rejected(archive, "the ZIP archive spans several disks, which is not accepted")
    return count, size, offset, record_offset


def _zip64_sizes(extra: bytes, usize: int, csize: int, offset: int, archive: str) -> tuple[int, int, int]:
    """Replace 0xFFFFFFFF placeholders with the 64-bit values of the ZIP64 extra field, in the order APPNOTE gives."""
    if 0xFFFFFFFF not in (usize, csize, offset):
        return usize, csize, offset
    pos = 0
    while pos + 4 <= len(extra):
        header_id, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        pos += 4 + length
        if header_id != 0x0001:
            continue
        values = [value for (value,) in struct.iter_unpack("<Q", body[: len(body) // 8 * 8])]
        result = []
        for placeholder in (usize, csize, offset):
            if placeholder == 0xFFFFFFFF:
                if not values:
                    break
                result.append(values.pop(0))
            else:
                result.append(placeholder)
        else:
            return result[0], result[1], result[2]
    raise Rejected(archive, "the ZIP directory is damaged (a ZIP64 size is missing)")


def _zip_name(raw: bytes, flags: int) -> str | None:
    if flags & _FLAG_UTF8:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return raw.decode("cp437")  # the ZIP default for names without the UTF-8 flag


def _zip_kind(name: str, mode: int) -> str:
    file_type = stat.S_IFMT(mode)
    if file_type == stat.S_IFLNK:
        return "symlink"
    if file_type in {stat.S_IFCHR, stat.S_IFBLK}:
        return "device"
    if file_type == stat.S_IFIFO:
        return "fifo"
    if file_type == stat.S_IFSOCK:
        return "socket"
    if name.endswith("/") or file_type == stat.S_IFDIR:
        return "directory"
    return "file"


def _zip_member_problem(entry: _ZipEntry, limits: ArchiveLimits) -> Rejected | None:
    """Refusals decided from the directory alone, before a byte of the member is read."""
    name = entry.name or ""
    if entry.flags & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION) or entry.method == _AES:
        return Rejected(name, "it is encrypted; an encrypted member cannot be checked, so it is refused")
    if entry.method not in {_STORED, _DEFLATED}:
        return Rejected(name, f"it uses ZIP compression method {entry.method}; only stored and deflate are accepted")
    too_big = _member_too_big(name, entry.size, limits)
    if too_big:
        return too_big
    if entry.size > limits.max_ratio * max(entry.compressed_size, 1):
        return Rejected(
            name,
            f"it declares {entry.size:,} bytes from {entry.compressed_size:,} compressed, an expansion over the "
            f"{limits.max_ratio}:1 limit (a zip-bomb sign)",
        )
    return None


def _check_no_overlap(entries: list[_ZipEntry], directory_offset: int, archive: str) -> None:
    """Refuse entries whose data overlap: the construction of non-recursive zip bombs that reuse one compressed
    stream for many members (CVE-2024-0450). Uses the smallest extent each entry can have."""
    ordered = sorted(entries, key=lambda entry: entry.offset)
    for entry, following in zip(ordered, [*ordered[1:], None], strict=True):
        limit = following.offset if following is not None else directory_offset
        if entry.offset + _LOCAL.size + len(entry.raw_name) + entry.compressed_size > limit:
            raise Rejected(archive, "members overlap inside the archive (a zip-bomb construction)")


def _zip_extract(
    fileobj: BinaryIO, start: int, entry: _ZipEntry, directory_offset: int, archive: str, total_left: int
) -> bytes | Rejected:
    """Decompress one member, counting what comes out and stopping the moment it passes what was declared."""
    name = entry.name or ""
    fileobj.seek(entry.offset)
    local = fileobj.read(_LOCAL.size)
    if len(local) < _LOCAL.size or not local.startswith(b"PK\x03\x04"):
        raise Rejected(archive, f"{printable(name)}: its local header is missing (the archive is damaged)")
    _, _, flags, _, _, _, _, _, _, name_len, extra_len = _LOCAL.unpack(local)
    if fileobj.read(name_len) != entry.raw_name:
        raise Rejected(
            archive,
            f"{printable(name)}: the name in its local header differs from the directory, a trick to show one "
            "name and extract another",
        )
    if flags & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION):
        return Rejected(name, "it is encrypted; an encrypted member cannot be checked, so it is refused")
    data_start = entry.offset + _LOCAL.size + name_len + extra_len
    if data_start + entry.compressed_size > directory_offset:
        raise Rejected(archive, f"{printable(name)}: its data runs into the archive's directory")
    fileobj.seek(data_start)

    cap = min(entry.size, total_left)
    chunks: list[bytes] = []
    produced = 0
    crc = 0
    decompressor = zlib.decompressobj(-15) if entry.method == _DEFLATED else None
    remaining = entry.compressed_size
    while True:
        if decompressor is not None and decompressor.unconsumed_tail:
            raw = decompressor.unconsumed_tail
        elif remaining:
            raw = fileobj.read(min(_READ_CHUNK, remaining))
            if not raw:
                return Rejected(name, "the archive ends inside this member (it is truncated)")
            remaining -= len(raw)
        elif decompressor is not None and not decompressor.eof:
            raw = b""  # all input given: drain output the decoder may still hold
        else:
            break
        try:
            out = raw if decompressor is None else decompressor.decompress(raw, _OUTPUT_CHUNK)
        except zlib.error as exc:
            return Rejected(name, f"its compressed data is damaged ({exc})")
        if not raw and not out:
            break
        produced += len(out)
        if produced > cap:
            raise Rejected(archive, _overrun(name, entry.size, produced, cap, total_left))
        crc = zlib.crc32(out, crc)
        chunks.append(out)
        if decompressor is not None and decompressor.eof:
            break
    if decompressor is not None and not decompressor.eof:
        return Rejected(name, "its compressed data ends early (the member is damaged)")
    if produced != entry.size:
        return Rejected(name, f"it holds {produced:,} bytes, not the {entry.size:,} its directory entry declares")
    if crc != entry.crc:
        return Rejected(name, "its contents fail their CRC-32 check (the member is damaged)")
    return b"".join(chunks)


def _overrun(name: str, declared: int, produced: int, cap: int, total_left: int) -> str:
    if cap < declared:
        return (
            f"{printable(name)}: extraction passed the archive's total byte limit (stopped after {produced:,} bytes "
            f"of this member with {total_left:,} left); the archive is refused"
        )
    return (
        f"{printable(name)}: it decompresses to more than the {declared:,} bytes the archive declares for it "
        f"(stopped after {produced:,}); an archive that lies about its sizes is refused whole"
    )


# ---------------------------------------------------------------------------------------------------------- tar

_BLOCK = 512
_ZERO_BLOCK = bytes(_BLOCK)
_MAX_EXTENDED_HEADER = 1 * MiB  # a pax or GNU long-name header larger than this is not a real name or path
_MAX_EXTENDED_RUN = 8  # extended headers in a row before a member; more is a loop, not an archive
_TAR_SLACK = 64 * 1024  # end-of-archive blocks and record padding beyond the last member
_RATIO_GRACE = 1 * MiB  # tar headers and padding are zeros that compress well; judge the ratio after this much
_GZIP_READ = 16 * 1024  # small compressed reads keep the expansion-ratio measurement close to the truth
_TAR_KINDS = {
    b"0": "file",
    b"\0": "file",
    b"7": "file",  # contiguous file: a regular file to every modern reader
    b"5": "directory",
    b"1": "hardlink",
    b"2": "symlink",
    b"3": "device",
    b"4": "device",
    b"6": "fifo",
}
_TAR_EXTENDED = {b"x", b"g", b"L", b"K"}
_TAR_REFUSED_LAYOUTS = {b"S": "a GNU sparse file", b"M": "a multi-volume continuation"}


class _Prefixed:
    """A forward-only stream with the bytes already read to recognise it put back in front."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self.head = head
        self.rest = rest

    def read(self, size: int = -1) -> bytes:
        if self.head:
            out = self.head[:size] if size >= 0 else self.head
            self.head = self.head[len(out) :]
            return out
        return self.rest.read(size)


class _Counting:
    """Counts the compressed bytes handed to the gzip decoder, for the expansion-ratio check."""

    def __init__(self, source: BinaryIO | _Prefixed) -> None:
        self.source = source
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        out = self.source.read(_GZIP_READ if size < 0 else min(size, _GZIP_READ))
        self.count += len(out)
        return out

    def seek(self, offset: int, /) -> int:
        # Part of the file protocol gzip expects; only rewinding a GzipFile calls it, and this reader never does.
        raise io.UnsupportedOperation("the archive stream is read forward only")


class _TarStream:
    """The decompressed tar stream, with every byte counted against the total cap and the expansion ratio."""

    def __init__(self, source: BinaryIO | _Prefixed, compressed: bool, archive: str, limits: ArchiveLimits) -> None:
        self.counter = _Counting(source)
        self.gzip = gzip.GzipFile(fileobj=self.counter, mode="rb") if compressed else None
        self.source = source
        self.archive = archive
        self.limits = limits
        self.position = 0

    def read(self, size: int) -> bytes:
        chunks = []
        left = size
        while left:
            step = min(left, _OUTPUT_CHUNK)
            try:
                out = self.gzip.read(step) if self.gzip is not None else self.source.read(step)
            except (OSError, EOFError, zlib.error) as exc:
                raise Rejected(self.archive, f"the gzip stream is damaged or truncated ({exc})") from None
            if not out:
                break
            self.position += len(out)
            left -= len(out)
            self._check_caps()
            chunks.append(out)
        return b"".join(chunks)

    def drain(self) -> None:
        while self.gzip is not None and self.read(_OUTPUT_CHUNK):
            pass

    def skip(self, size: int) -> None:
        while size:
            out = self.read(min(size, _OUTPUT_CHUNK))
            if not out:
                raise Rejected(self.archive, "the tar archive is truncated inside a member")
            size -= len(out)

    def _check_caps(self) -> None:
        if self.position > self.limits.max_total_bytes + _TAR_SLACK:
            raise Rejected(
                self.archive,
                f"extraction passed the {self.limits.max_total_bytes:,}-byte limit for one archive "
                f"(stopped after {self.position:,} bytes); the archive is refused",
            )
        if (
            self.gzip is not None
            and self.position > _RATIO_GRACE
            and self.position > self.limits.max_ratio * self.counter.count
        ):
            raise Rejected(
                self.archive,
                f"the gzip stream expands more than {self.limits.max_ratio}:1 ({self.position:,} bytes from "
                f"{self.counter.count:,}); stopped as a decompression bomb",
            )


@dataclass(frozen=True)
class _TarHeader:
    name: bytes
    linkname: bytes
    size: int
    kind: bytes


def _iter_tar(
    source: BinaryIO | _Prefixed, compressed: bool, archive: str, limits: ArchiveLimits
) -> Iterator[ArchiveEntry]:
    stream = _TarStream(source, compressed, archive, limits)
    gate = _Gate(archive, limits)
    extended: dict[str, bytes] = {}
    extended_run = 0
    while True:
        header_at = stream.position
        block = stream.read(_BLOCK)
        if not block or block == _ZERO_BLOCK:
            # The end-of-archive marker, or a stream that simply stops at a member boundary. gzip's CRC and
            # length trailer cover every member, so a compressed stream is read to its end to check them.
            stream.drain()
            return
        if len(block) < _BLOCK:
            raise Rejected(archive, "the tar archive is truncated inside a header")
        header = _tar_header(block, header_at, archive, first=header_at == 0)
        if header.kind in _TAR_REFUSED_LAYOUTS:
            raise Rejected(archive, f"it contains {_TAR_REFUSED_LAYOUTS[header.kind]}, which is not accepted")
        if header.kind in _TAR_EXTENDED:
            extended_run += 1
            if extended_run > _MAX_EXTENDED_RUN or header.size > _MAX_EXTENDED_HEADER:
                raise Rejected(archive, "the tar archive has oversized or endless extended headers")
            body = stream.read(header.size)
            if len(body) < header.size:
                raise Rejected(archive, "the tar archive is truncated inside an extended header")
            stream.skip(_padding(header.size))
            _apply_extended(header.kind, body, extended, archive)
            continue
        extended_run = 0
        raw_name = extended.pop("path", header.name)
        raw_link = extended.pop("linkpath", header.linkname)
        size = int(extended.pop("size")) if "size" in extended else header.size
        extended.clear()
        kind = _TAR_KINDS.get(header.kind, f"tar type {header.kind!r}")
        if header.kind == b"\0" and raw_name.endswith(b"/"):  # old-style directory, as tarfile reads it
            kind = "directory"
        data_size = size if kind == "file" or header.kind not in _TAR_KINDS else 0
        if stream.position + data_size + _padding(data_size) > limits.max_total_bytes:
            raise Rejected(
                archive,
                f"a member declares {size:,} bytes, which would take the archive past its "
                f"{limits.max_total_bytes:,}-byte limit (checked from its header, before extracting it)",
            )
        try:
            name = raw_name.decode("utf-8")
            link = raw_link.decode("utf-8")
        except UnicodeDecodeError:
            gate.count_one()
            stream.skip(data_size + _padding(data_size))
            yield Rejected(raw_name.decode("utf-8", "backslashreplace"), "its name is not valid UTF-8")
            continue
        verdict = gate.admit(name, kind, link)
        if not isinstance(verdict, str):
            stream.skip(data_size + _padding(data_size))
            if verdict is not None:
                yield verdict
            continue
        too_big = _member_too_big(name, size, limits)
        if too_big:
            stream.skip(data_size + _padding(data_size))
            yield too_big
            continue
        data = stream.read(size)
        if len(data) < size:
            raise Rejected(archive, f"{printable(name)}: the tar archive ends inside this member (it is truncated)")
        stream.skip(_padding(size))
        yield Member(verdict, data)
        del data  # hold at most one member at a time


def _padding(size: int) -> int:
    return -size % _BLOCK


def _tar_header(block: bytes, at: int, archive: str, *, first: bool) -> _TarHeader:
    try:
        stored = _tar_number(block[148:156])
        size = _tar_number(block[124:136])
    except ValueError:
        stored = size = -1
    unsigned = sum(block) - sum(block[148:156]) + 8 * 0x20
    signed = unsigned - 256 * sum(1 for byte in block[:148] + block[156:] if byte > 127)
    if stored not in {unsigned, signed} or size < 0:
        what = "the file is not a tar archive" if first else f"a tar header is damaged (at byte {at:,})"
        raise Rejected(archive, what + " (its header checksum fails)")
    name = block[0:100].split(b"\0", 1)[0]
    prefix = block[345:500].split(b"\0", 1)[0]
    if block[257:263] == b"ustar\x00" and prefix:  # POSIX ustar; GNU headers use this area for other fields
        name = prefix + b"/" + name
    return _TarHeader(name=name, linkname=block[157:257].split(b"\0", 1)[0], size=size, kind=block[156:157])


def _tar_number(field: bytes) -> int:
    """Octal ASCII, or GNU base-256 after a 0x80 marker byte (0xFF marks a negative value, refused)."""
    if field[:1] == b"\x80":
        return int.from_bytes(field[1:], "big")
    if field[:1] >= b"\x80":
        raise ValueError("negative or malformed")
    text = field.split(b"\0", 1)[0].strip(b" ")
    if text.strip(b"01234567"):
        raise ValueError("not octal")
    return int(text, 8) if text else 0


def _apply_extended(kind: bytes, body: bytes, extended: dict[str, bytes], archive: str) -> None:
    """Record a long name (GNU L/K) or the pax keys that matter (path, linkpath, size); refuse sparse files."""
    if kind == b"L":
        extended["path"] = body.split(b"\0", 1)[0]
        return
    if kind == b"K":
        extended["linkpath"] = body.split(b"\0", 1)[0]
        return
    records = _pax_records(body, archive)
    if any(key.startswith("GNU.sparse.") for key in records):
        raise Rejected(archive, "it contains a GNU sparse file, which is not accepted")
    if kind == b"g":
        return  # global defaults (times, owners); a global path or size is not honoured by common tools
    for key in ("path", "linkpath", "size"):
        if key in records:
            extended[key] = records[key]
    if "size" in extended and not extended["size"].isdigit():
        raise Rejected(archive, "a pax header gives a size that is not a number")


def _pax_records(body: bytes, archive: str) -> dict[str, bytes]:
    """Parse `"<length> <key>=<value>\\n"` records in one linear pass (no regular expression to backtrack)."""
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(body) and body[pos] != 0:
        space = body.find(b" ", pos, pos + 21)
        digits = body[pos:space] if space != -1 else b""
        length = int(digits) if digits.isdigit() else 0
        record = body[space + 1 : pos + length]
        if length <= 0 or pos + length > len(body) or not record.endswith(b"\n") or b"=" not in record:
            raise Rejected(archive, "a pax extended header is damaged")
        key, _, value = record[:-1].partition(b"=")
        records[key.decode("utf-8", "replace")] = value
        pos += length
    return records
