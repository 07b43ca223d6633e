"""The offline audit bundle: its layout, and the verifier an auditor runs with only Python and `cryptography`.

Layout (specified in docs/formats/audit-bundle.md):

    manifest.json         format, version, origin, first and end sequence numbers, export time and exporter
    records.jsonl         one canonical record per line, `seq` ascending, no gap
    checkpoints/*.note    signed checkpoints (C2SP signed notes), one file per checkpoint, named by size
    keys.txt              verifier keys, one per line; the first is the key the log began with
    prefix.json           only when the bundle starts after record 0: the right edge of the earlier tree

The verifier reads the records once, in order, and checks: each line is the canonical encoding of its record;
`seq` is dense from the bundle's start; record times never decrease; the Merkle root of the records up to each
checkpoint equals that checkpoint's signed root; checkpoint sizes and times only grow; each checkpoint is signed
by a trusted key (the first key of the log, a trusted checkpoint's keys, or a key announced by a checkpoint that
a trusted key signed); and the bundle ends with a checkpoint covering its last record. Recomputing every
checkpoint's root from one sequence of leaves proves consistency between consecutive checkpoints directly.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from audit.checkpoint import CheckpointError, SignedCheckpoint, VerifierKey, open_checkpoint
from audit.encoding import EncodingError, canonical_json, leaf_hash
from audit.merkle import CompactRange

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


def decode_record(line: bytes) -> dict:
    """Parse one record line and check that it is exactly the record's canonical encoding.

    The fast path lets the C JSON encoder re-encode; it equals RFC 8785 exactly when the text is ASCII (code-point
    and UTF-16 key order agree) and holds no integer long enough to leave the IEEE-754 safe range. Anything
    else takes the reference encoder.
    """
    try:
        record = json.loads(line, parse_float=_reject_float, parse_constant=_reject_constant)
    except ValueError as exc:
        raise BundleError(f"not JSON ({exc})") from exc
    if not isinstance(record, dict):
        raise BundleError("not a JSON object")
    if line.isascii() and not _LONG_NUMBER.search(line):
        expected = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    else:
        try:
            expected = canonical_json(record)
        except EncodingError as exc:
            raise BundleError(f"has no canonical form ({exc})") from exc
    if expected != line:
        raise BundleError("is not in canonical form (RFC 8785); it was altered or is ambiguous")
    return record


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
) -> Report:
    """Verify the bundle in `directory`; return a report, or raise BundleError naming the first problem."""
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
        nonlocal previous_time
        while pending:
            name, note = pending[0]
            try:
                signed = open_checkpoint(note, report.trusted_keys)
            except CheckpointError as exc:
                raise BundleError(f"checkpoint {name}: {exc}") from exc
            checkpoint = signed.checkpoint
            if checkpoint.size > tree.size:
                return
            pending.pop(0)
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
    for number, line in _record_lines(directory / "records.jsonl"):
        try:
            record = decode_record(line)
        except BundleError as exc:
            raise BundleError(f"record {expected} (records.jsonl line {number}) {exc}") from exc
        seq = record.get("seq")
        if seq != expected:
            if isinstance(seq, int) and seq > expected:
                raise BundleError(f"record {expected} is missing (the next line holds record {seq})")
            raise BundleError(f"record {seq} at line {number} is out of order or repeated (expected {expected})")
        moment = record.get("time")
        if not isinstance(moment, str) or moment < previous_record_time:
            raise BundleError(f"record {seq}: time {moment!r} is earlier than the record before it")
        previous_record_time = moment
        tree.append(leaf_hash(line))
        expected += 1
        report.records += 1
        check_trusted_at(tree.size)
        if pending:
            take_checkpoints()
        if progress is not None and report.records % 100_000 == 0:
            progress(report.records)

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
