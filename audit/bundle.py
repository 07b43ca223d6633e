"""The offline audit bundle: its layout, and the verifier an auditor runs with only Python and `cryptography`.

Layout (specified in docs/formats/audit-bundle.md):

    manifest.json         format, version, origin, first and end sequence numbers, export time and exporter
    records.jsonl         one canonical record per line, `seq` ascending, no gap
    checkpoints/*.note    signed checkpoints (C2SP signed notes), one file per checkpoint, named by size
    keys.txt              verifier keys, one per line; the first is the key the log began with
    prefix.json           only when the bundle starts after record 0: the right edge of the earlier tree

The verifier reads the records in order (by default in chunks, in worker processes: see `verify_bundle` and
the format document for exactly what each pass checks), and checks: each line is the canonical encoding of its
record (by default only where `seq` and `time` could not otherwise be read unambiguously, and for every line
before naming a problem; with `strict` always); `seq` is dense from the bundle's start; record times never
decrease; the Merkle root of the records up to each checkpoint equals that checkpoint's signed root; checkpoint
sizes and times only grow; each checkpoint is signed by a trusted key (the first key of the log, a trusted
checkpoint's keys, or a key announced by a checkpoint that a trusted key signed); and the bundle ends with a
checkpoint covering its last record. Recomputing every checkpoint's root from one sequence of leaves proves
consistency between consecutive checkpoints directly.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import itertools
import json
import json.encoder
import multiprocessing
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise, repeat
from operator import eq, itemgetter
from pathlib import Path
from typing import Any

from audit.checkpoint import CheckpointError, SignedCheckpoint, VerifierKey, open_checkpoint
from audit.encoding import MAX_SAFE_INTEGER, EncodingError, canonical_json
from audit.merkle import CompactRange, LeafPyramid, ProofError

FORMAT = "appliance-audit-bundle"
VERSION = 1
RECORD_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_LONG_NUMBER = re.compile(rb"\d{16,}")


class BundleError(Exception):
    """The bundle fails verification; the message names the first bad record or checkpoint."""


@dataclass
class TrustedCheckpoint:
    """A checkpoint the auditor verified before and kept off the appliance, with the keys trusted then."""

    note: str
    keys: list[VerifierKey]

    @classmethod
    def load(cls, path: Path) -> TrustedCheckpoint:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(note=data["note"], keys=[VerifierKey.parse(k) for k in data["keys"]])
        except (OSError, ValueError, KeyError, TypeError, CheckpointError) as exc:
            raise BundleError(f"trusted checkpoint {path}: unreadable ({exc})") from exc

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"note": self.note, "keys": [k.text() for k in self.keys]}, indent=2) + "\n")


@dataclass
class Report:
    origin: str
    start: int
    end: int
    records: int = 0
    checkpoints: int = 0
    signers: set[str] = field(default_factory=set)
    newest: SignedCheckpoint | None = None
    trusted_keys: dict[str, VerifierKey] = field(default_factory=dict)


def _reject_float(text: str) -> float:
    raise BundleError(f"number {text} is not an integer (audit records hold no floats)")


def _reject_constant(text: str) -> float:
    raise BundleError(f"{text} is not JSON")


# Built once: `json.loads`/`json.dumps` with keyword arguments build a new decoder or encoder on every call, which
# was a measurable share of the verifier's time per record. Same parameters, so the same results and errors.
_DECODER = json.JSONDecoder(parse_float=_reject_float, parse_constant=_reject_constant)
_ENCODE_SORTED = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
# Keys in the order they were parsed: for a line whose keys are already sorted at every level (as a canonical
# line's are), this gives the same text as _ENCODE_SORTED at less than half the cost. Built once from the C
# encoder the json module itself uses (what JSONEncoder.encode builds anew on every call); where Python has no C
# accelerator, the public encoder with the same parameters.
_C_MAKE_ENCODER = getattr(json.encoder, "c_make_encoder", None)
_encode_as_parsed: Callable[[object], str]
if _C_MAKE_ENCODER is not None:
    _encode_chunks = _C_MAKE_ENCODER(
        None, json.JSONEncoder().default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )

    def _encode_with_c(value: object) -> str:
        return "".join(_encode_chunks(value, 0))

    _encode_as_parsed = _encode_with_c

else:  # pragma: no cover - CPython always has the accelerator
    _encode_as_parsed = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _sorted_and_safe(record: dict) -> bool:
    """Every object's keys in ascending order and every integer inside the IEEE-754 safe range.

    With this, re-encoding in parsed order equals re-encoding with sorted keys, and (for ASCII text) equals RFC
    8785 (see `decode_record`): the hot loop's cheaper replacement for sorting keys and scanning for long numbers.
    """
    stack: list[Any] = [record]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        if node.__class__ is dict:
            keys = list(node)
            if keys != sorted(keys):
                return False
            node = node.values()
        for item in node:
            kind = item.__class__
            if kind is dict or kind is list:
                push(item)
            elif kind is int and not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                return False
    return True


def decode_record(line: bytes) -> dict:
    """Parse one record line and check that it is exactly the record's canonical encoding.

    The fast path lets the C JSON encoder re-encode; it equals RFC 8785 exactly when the text is ASCII (code-point
    and UTF-16 key order agree) and holds no integer long enough to leave the IEEE-754 safe range. Anything
    else takes the reference encoder.
    """
    ascii_text = line.isascii()
    try:
        if ascii_text and line[:2] == b'{"':
            # What json.loads does with these bytes (its encoding sniffing says UTF-8 for them), minus the sniffing.
            record = _DECODER.decode(line.decode("ascii"))
        else:
            record = json.loads(line, parse_float=_reject_float, parse_constant=_reject_constant)
    except ValueError as exc:
        raise BundleError(f"not JSON ({exc})") from exc
    if not isinstance(record, dict):
        raise BundleError("not a JSON object")
    if ascii_text and not _LONG_NUMBER.search(line):
        expected = _ENCODE_SORTED(record).encode()
    else:
        try:
            expected = canonical_json(record)
        except EncodingError as exc:
            raise BundleError(f"has no canonical form ({exc})") from exc
    if expected != line:
        raise BundleError("is not in canonical form (RFC 8785); it was altered or is ambiguous")
    return record


# The chunked verifier (see `verify_bundle`): records.jsonl is cut at line ends into pieces of about this size,
# each checked on its own (in worker processes when there are several CPUs), the tree built from their leaf hashes.
CHUNK_BYTES = 4 << 20
# Bundles smaller than this are checked in this process: starting workers would cost more than it saves.
PARALLEL_FROM_BYTES = 64 << 20
# The C encoder with sorted keys, called directly: one call per record returns a 1-tuple holding its encoding.
_ENCODE_SORTED_ONE = (
    _C_MAKE_ENCODER(None, json.JSONEncoder().default, json.encoder.encode_basestring, None, ":", ",", True, False, True)
    if _C_MAKE_ENCODER is not None
    else None
)
# An integer token of 16 digits or more in a line without whitespace: one that might leave the IEEE-754 safe range.
_LONG_INTEGER_TOKEN = re.compile(r"[\[:,]-?\d{16}")
# The members every version-1 record ends with, in canonical order (every other member name sorts before "seq"),
# up to the end of its line: where the chunked check reads `seq` and `time` without parsing the whole record.
_V1_TAIL = re.compile(
    rb',"seq":(0|[1-9][0-9]*),"session":"[^"\\\n]*","time":"([^"\\\n]*)","token":"[^"\\\n]*","v":1\}\n'
)
_FIRST = itemgetter(0)
_SECOND = itemgetter(1)
_SEQ = itemgetter("seq")
_TIME = itemgetter("time")

# What a chunk check returns when every line in it passed: the number of records, the first record's seq, the
# records' leaf hashes as a pyramid (indexed from that seq, which the caller checks is the tree's next index), and
# their times. None means "not decided here": the caller falls back to the line-by-line verifier, which decides
# and names the first problem.
ChunkResult = tuple[int, Any, LeafPyramid, list[str] | list[bytes]]


def _canonical_chunk(records: list[Any], lines: list[str], text: str) -> bool:
    """Every line is exactly the RFC 8785 encoding of its parsed record (ASCII text, so code-point key order is
    UTF-16 order): the C encoder with sorted keys reproduces each line, and no integer leaves the safe range."""
    if _ENCODE_SORTED_ONE is None:
        return False
    if list(map(_ENCODE_SORTED_ONE, records, repeat(0))) != list(zip(lines)):
        return False
    if _LONG_INTEGER_TOKEN.search(text):
        flagged = (record for line, record in zip(lines, records, strict=True) if _LONG_INTEGER_TOKEN.search(line))
        return all(map(_sorted_and_safe, flagged))
    return True


def check_chunk(path: str, begin: int, end: int, strict: bool) -> ChunkResult | None:
    """Check the lines of records.jsonl in bytes [begin, end) (whole lines) on their own; None if any is unusual.

    Each line's `seq` and `time` are read from the members a version-1 record ends with (`_V1_TAIL`), where the
    chunk qualifies: no backslash (so every member name is spelt literally), every line starting `{"`, and
    `"seq":` and `"time":` exactly once per line (so the values read are the record's only ones, at its top
    level). Otherwise, and always with `strict`, every line is parsed (stdlib C parser) and must be exactly the
    canonical encoding of its record. Either way `seq` must be dense and `time` never decrease within the chunk
    (the caller joins chunks). Needs only the standard library.
    """
    collecting = gc.isenabled()
    gc.disable()  # a full check builds millions of containers that all survive: collecting finds nothing to free
    try:
        with open(path, "rb") as handle:
            handle.seek(begin)
            data = handle.read(end - begin)
        if len(data) != end - begin or not data.endswith(b"\n"):
            return None
        body = data[:-1]
        raw = body.split(b"\n")
        count = len(raw)
        fields: list[tuple[bytes, bytes]] = []
        if (
            not strict
            and b"\\" not in data
            and data.count(b'"seq":') == count
            and data.count(b'"time":') == count
            and all(map(bytes.startswith, raw, repeat(b'{"')))
        ):
            fields = _V1_TAIL.findall(data)
        if len(fields) == count:
            first = int(fields[0][0])
            if list(map(_FIRST, fields)) != [b"%d" % seq for seq in range(first, first + count)]:
                return None
            times = list(map(_SECOND, fields))  # bytes: UTF-8 orders as the text does
        else:
            records = _canonical_records(body, raw)
            if records is None:
                return None
            try:
                first = records[0]["seq"]
                if not isinstance(first, int) or not all(map(eq, map(_SEQ, records), itertools.count(first))):
                    return None
                times = list(map(_TIME, records))
            except KeyError:
                return None
            if set(map(type, times)) != {str}:
                return None
        if times != sorted(times):
            return None
        sha256 = hashlib.sha256
        leaves = b"".join([sha256(b"\x00" + line).digest() for line in raw])
        return count, first, LeafPyramid(first, leaves), times
    finally:
        if collecting:
            gc.enable()


def _canonical_records(body: bytes, raw: list[bytes]) -> list[Any] | None:
    """The records of a chunk's lines if every line is exactly its record's canonical encoding, else None."""
    if not body.isascii():  # the reference check, line by line (key order by UTF-16 code units)
        try:
            return [decode_record(line) for line in raw]
        except BundleError:
            return None
    try:
        records: list[Any] = _DECODER.decode((b"[" + body.replace(b"\n", b",") + b"]").decode("ascii"))
    except (ValueError, BundleError):
        return None
    if len(records) != len(raw) or set(map(type, records)) != {dict}:
        return None
    text = body.decode("ascii")
    return records if _canonical_chunk(records, text.split("\n"), text) else None


def _check_chunk_task(task: tuple[str, int, int, bool]) -> ChunkResult | None:
    return check_chunk(*task)


def _chunk_bounds(path: Path, chunk_bytes: int) -> list[tuple[int, int]]:
    """Byte ranges of about `chunk_bytes`, each starting at a line start and ending after a newline (or the end)."""
    size = path.stat().st_size
    bounds = [0]
    with path.open("rb") as handle:
        while bounds[-1] + chunk_bytes < size:
            handle.seek(bounds[-1] + chunk_bytes)
            handle.readline()
            if handle.tell() >= size:
                break
            bounds.append(handle.tell())
    bounds.append(size)
    return [(a, b) for a, b in pairwise(bounds) if b > a]


def worker_count(path: Path, workers: int | None) -> int:
    """How many processes check the chunks of `path`: `workers` if given, else one per CPU for a large file."""
    if workers is not None:
        return max(1, workers)
    if path.stat().st_size < PARALLEL_FROM_BYTES:
        return 1
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _start_method() -> str:
    """fork, the cheapest, only while this process runs a single thread (forking a threaded process can deadlock
    the child); otherwise a fork server, or clean interpreters."""
    methods = multiprocessing.get_all_start_methods()
    try:
        threads = len(os.listdir("/proc/self/task"))  # every thread, not only those the threading module started
    except OSError:
        threads = threading.active_count()
    if threads == 1 and "fork" in methods:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def _checked_chunks(path: Path, strict: bool, workers: int, chunk_bytes: int) -> Iterator[ChunkResult | None]:
    """The chunk checks' results in file order, computed `workers` at a time in worker processes (or here)."""
    tasks = [(str(path), begin, end, strict) for begin, end in _chunk_bounds(path, chunk_bytes)]
    if workers <= 1 or len(tasks) <= 1:
        yield from map(_check_chunk_task, tasks)
        return
    with multiprocessing.get_context(_start_method()).Pool(min(workers, len(tasks))) as pool:
        yield from pool.imap(_check_chunk_task, tasks)


def _text(value: str | bytes) -> str:
    """A record time as the line-by-line verifier holds it (the chunk check hands them over as read)."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


class _Undecided(Exception):
    """The chunked verifier met something unusual; the line-by-line verifier decides and names it."""


def _decode_or_name(line: bytes, seq: int, number: int) -> dict:
    """`decode_record`, with its refusal naming the record and line: the verifier's path for anything unusual."""
    try:
        return decode_record(line)
    except BundleError as exc:
        raise BundleError(f"record {seq} (records.jsonl line {number}) {exc}") from exc


def _record_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                raise BundleError(f"records.jsonl line {number}: the file is truncated (no final newline)")
            yield number, raw[:-1]


def _load_checkpoints(directory: Path) -> list[tuple[str, str]]:
    if not directory.is_dir():
        raise BundleError("the bundle has no checkpoints/ folder")
    return [(p.name, p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.note"))]


def _prefix_range(path: Path, start: int) -> CompactRange:
    """The compact range of the records before the bundle's start, as the exporter wrote it."""
    tree = CompactRange()
    if start == 0:
        return tree
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        hashes = [base64.b64decode(h, validate=True) for h in data["right_edge"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"prefix.json: unreadable ({exc})") from exc
    if data.get("size") != start:
        raise BundleError(f"prefix.json: size {data.get('size')} differs from the bundle's start {start}")
    return CompactRange.from_right_edge(start, hashes)


def verify_bundle(
    directory: Path,
    *,
    trusted: TrustedCheckpoint | None = None,
    progress: Callable[[int], None] | None = None,
    strict: bool = False,
    workers: int | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> Report:
    """Verify the bundle in `directory`; return a report, or raise BundleError naming the first problem.

    The records are checked in chunks (`check_chunk`; in `workers` processes, by default one per CPU for a large
    bundle), and the tree and every checkpoint from the chunks' leaf hashes. Anything unusual in a chunk, and any
    failure at all, sends the whole bundle through the line-by-line verifier, which checks every line's canonical
    form and names the first bad record or checkpoint exactly. `strict` checks every line's canonical form on the
    chunked path too. `workers=0` is the line-by-line verifier alone.
    """
    if workers != 0:
        records = directory / "records.jsonl"
        try:
            processes = worker_count(records, workers)
        except OSError:
            processes = 0  # no records file: the line-by-line verifier words that
        if processes:
            try:
                return _verify(
                    directory, trusted, progress, lambda: _checked_chunks(records, strict, processes, chunk_bytes)
                )
            except (_Undecided, BundleError, ProofError, OSError, ValueError):
                pass  # decided and worded below (a file changing underneath, a time that is not UTF-8, ...)
    return _verify(directory, trusted, progress, None)


def _verify(
    directory: Path,
    trusted: TrustedCheckpoint | None,
    progress: Callable[[int], None] | None,
    chunks: Callable[[], Iterator[ChunkResult | None]] | None,
) -> Report:
    """`verify_bundle`, with the records checked chunk by chunk (`chunks`) or, without it, line by line."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        origin, start, end = manifest["origin"], int(manifest["start"]), int(manifest["end"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"manifest.json: unreadable ({exc})") from exc
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise BundleError(f"manifest.json: not a {FORMAT} version {VERSION}")
    try:
        bundle_keys = [VerifierKey.parse(line) for line in (directory / "keys.txt").read_text().splitlines() if line]
    except (OSError, CheckpointError) as exc:
        raise BundleError(f"keys.txt: {exc}") from exc
    if not bundle_keys:
        raise BundleError("keys.txt: no key")

    report = Report(origin=origin, start=start, end=end)
    initial = trusted.keys if trusted is not None else bundle_keys[:1]
    report.trusted_keys = {key.key_id: key for key in initial}
    trusted_state: SignedCheckpoint | None = None
    if trusted is not None:
        try:
            trusted_state = open_checkpoint(trusted.note, report.trusted_keys)
        except CheckpointError as exc:
            raise BundleError(f"trusted checkpoint: {exc}") from exc
        if trusted_state.checkpoint.origin != origin:
            raise BundleError(f"trusted checkpoint is for log {trusted_state.checkpoint.origin!r}, not {origin!r}")
        if trusted_state.checkpoint.size > end:
            raise BundleError(
                f"the log shrank: the trusted checkpoint covers {trusted_state.checkpoint.size} records, "
                f"the bundle ends at {end} (records were removed or an old state was replayed)"
            )
        if trusted_state.checkpoint.size < start:
            raise BundleError(
                f"the bundle starts at record {start}, after the trusted checkpoint's size "
                f"{trusted_state.checkpoint.size}; export with --since {trusted_state.checkpoint.size} or less"
            )

    pending = _load_checkpoints(directory / "checkpoints")
    tree = _prefix_range(directory / "prefix.json", start)
    previous_time: datetime | None = None
    previous_record_time = ""
    expected = start
    # The first pending checkpoint, opened (parsed and its signature checked) once, when it becomes the first: the
    # same moment the verifier always opened it, but no longer again for every record until the tree reaches it.
    head: SignedCheckpoint | None = None
    trusted_size = trusted_state.checkpoint.size if trusted_state is not None else -1

    def check_trusted_at(size: int) -> None:
        if (
            trusted_state is not None
            and trusted_state.checkpoint.size == size
            and tree.root() != trusted_state.checkpoint.root
        ):
            raise BundleError(
                f"the log is not consistent with the trusted checkpoint of size {size}: "
                "its history was rewritten (possibly re-signed with another key)"
            )

    def take_checkpoints() -> None:
        nonlocal previous_time, head
        while pending:
            name, note = pending[0]
            if head is None:
                try:
                    head = open_checkpoint(note, report.trusted_keys)
                except CheckpointError as exc:
                    raise BundleError(f"checkpoint {name}: {exc}") from exc
            signed = head
            checkpoint = signed.checkpoint
            if checkpoint.size > tree.size:
                return
            pending.pop(0)
            head = None  # the trusted keys may change below: the next checkpoint is opened with them
            where = f"checkpoint of size {checkpoint.size} ({name})"
            if checkpoint.origin != origin:
                raise BundleError(f"{where}: origin {checkpoint.origin!r} is not this log's {origin!r}")
            if checkpoint.size < tree.size or (report.newest and checkpoint.size <= report.newest.checkpoint.size):
                raise BundleError(f"{where}: out of order or replayed (sizes must only grow)")
            if checkpoint.root != tree.root():
                first = report.newest.checkpoint.size if report.newest else start
                raise BundleError(
                    f"{where}: signed root does not match records {first}..{checkpoint.size - 1} "
                    "(a record in that range was altered, inserted, removed or reordered)"
                )
            if previous_time is not None and checkpoint.time < previous_time:
                raise BundleError(f"{where}: time goes backwards ({checkpoint.time:%Y-%m-%dT%H:%M:%SZ})")
            if previous_record_time and checkpoint.time.strftime("%Y-%m-%dT%H:%M:%S") < previous_record_time[:19]:
                raise BundleError(f"{where}: dated before the records it covers")
            previous_time = checkpoint.time
            report.newest = signed
            report.checkpoints += 1
            report.signers.update(signed.signers)
            if checkpoint.rotate_to is not None:
                report.trusted_keys[checkpoint.rotate_to.key_id] = checkpoint.rotate_to

    check_trusted_at(tree.size)
    take_checkpoints()
    # The hot loop: everything per record is inlined and bound to locals (this loop runs once per record of a log
    # that holds millions). Each check, its order and its message are those of `decode_record`, `_record_lines`,
    # `check_trusted_at` and `take_checkpoints`; only the per-record function calls and lookups are gone.
    next_size = head.checkpoint.size if head is not None else -1
    if chunks is not None:
        # The chunked path: each chunk's lines were checked on their own; here only what joins them (seq and time
        # across chunk ends) and the tree, advanced in bulk to each moment the line-by-line loop below would stop
        # at (a checkpoint's size, the trusted size), where the same functions run.
        checked = chunks()
        try:
            for result in checked:
                if result is None:
                    raise _Undecided
                count, first, pyramid, times = result
                if first != expected or _text(times[0]) < previous_record_time:
                    raise _Undecided
                done_before, done = expected - start, 0
                while done < count:
                    step = count - done
                    if trusted_size > expected:
                        step = min(step, trusted_size - expected)
                    if pending and next_size > expected:
                        step = min(step, next_size - expected)
                    tree.extend_from(pyramid, step)
                    done += step
                    expected += step
                    previous_record_time = _text(times[done - 1])
                    if expected == trusted_size:
                        check_trusted_at(tree.size)
                    if expected >= next_size and pending:
                        take_checkpoints()
                        next_size = head.checkpoint.size if head is not None else -1
                if progress is not None:
                    for mark in range((done_before // 100_000 + 1) * 100_000, expected - start + 1, 100_000):
                        progress(mark)
        finally:
            close = getattr(checked, "close", None)
            if close is not None:
                close()  # stops the worker processes at once when the verifier gives up early
        return _finish(report, expected, start, end, pending)
    scan = _DECODER.scan_once  # type: ignore[attr-defined]  # set by JSONDecoder.__init__
    encode = _encode_as_parsed
    sorted_and_safe = _sorted_and_safe
    sha256 = hashlib.sha256
    append = tree.append
    number = 0
    with (directory / "records.jsonl").open("rb") as handle:
        for raw in handle:
            number += 1
            if raw[-1:] != b"\n":
                raise BundleError(f"records.jsonl line {number}: the file is truncated (no final newline)")
            line = raw[:-1]
            # Fast path: ASCII text that parses to an object filling the whole line and re-encodes to the same bytes
            # with its keys already in order. Anything else (including every kind of error) takes the general path,
            # `decode_record`, which decides and words the outcome exactly as it always has.
            record = None
            if line[:2] == b'{"' and line.isascii():
                text = line.decode("ascii")
                try:
                    record, stop = scan(text, 0)
                except (StopIteration, ValueError, BundleError):
                    record = None
                else:
                    if (
                        stop != len(text)
                        or record.__class__ is not dict
                        or encode(record) != text
                        or not sorted_and_safe(record)
                    ):
                        record = None
            if record is None:
                record = _decode_or_name(line, expected, number)
            seq = record.get("seq")
            if seq != expected:
                if isinstance(seq, int) and seq > expected:
                    raise BundleError(f"record {expected} is missing (the next line holds record {seq})")
                raise BundleError(f"record {seq} at line {number} is out of order or repeated (expected {expected})")
            moment = record.get("time")
            if not isinstance(moment, str) or moment < previous_record_time:
                raise BundleError(f"record {seq}: time {moment!r} is earlier than the record before it")
            previous_record_time = moment
            append(sha256(b"\x00" + line).digest())
            expected += 1
            if expected == trusted_size:
                check_trusted_at(tree.size)
            if expected >= next_size and pending:
                take_checkpoints()
                next_size = head.checkpoint.size if head is not None else -1
            if progress is not None and (expected - start) % 100_000 == 0:
                progress(expected - start)
    return _finish(report, expected, start, end, pending)


def _finish(report: Report, expected: int, start: int, end: int, pending: list[tuple[str, str]]) -> Report:
    """The checks after the last record: the records end where the manifest says and a checkpoint covers them."""
    report.records = expected - start
    if expected != end:
        raise BundleError(f"records.jsonl ends at record {expected - 1}, the manifest says {end - 1}")
    if pending:
        raise BundleError(f"checkpoint {pending[0][0]} covers records beyond the bundle's end ({end})")
    if report.newest is None or report.newest.checkpoint.size != end:
        covered = report.newest.checkpoint.size if report.newest else start
        raise BundleError(
            f"records {covered}..{end - 1} are not covered by any checkpoint (the tail was truncated or forged)"
        )
    return report


def parse_record_time(text: str) -> datetime:
    return datetime.strptime(text, RECORD_TIME_FORMAT).replace(tzinfo=UTC)


def write_bundle(
    directory: Path,
    *,
    origin: str,
    start: int,
    records: Iterator[bytes],
    checkpoints: list[tuple[int, str]],
    keys: list[VerifierKey],
    prefix_right_edge: list[bytes],
    exported_by: str,
    exported_at: datetime,
) -> int:
    """Write a bundle in the layout above from canonical records (streamed), checkpoint notes and keys.

    Returns the bundle's end (one past its last record). The folder must not exist yet: a bundle is written
    whole, never merged into an older one.
    """
    directory.mkdir(parents=True, exist_ok=False)
    (directory / "checkpoints").mkdir()
    end = start
    with (directory / "records.jsonl").open("wb") as handle:
        for line in records:
            handle.write(line + b"\n")
            end += 1
    for size, note in checkpoints:
        (directory / "checkpoints" / f"{size:020d}.note").write_text(note, encoding="utf-8")
    (directory / "keys.txt").write_text("".join(key.text() + "\n" for key in keys), encoding="utf-8")
    if start:
        prefix = {"size": start, "right_edge": [base64.b64encode(h).decode("ascii") for h in prefix_right_edge]}
        (directory / "prefix.json").write_text(json.dumps(prefix, indent=2) + "\n", encoding="utf-8")
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "origin": origin,
        "start": start,
        "end": end,
        "exported_at": exported_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "exported_by": exported_by,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return end
