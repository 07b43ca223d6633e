"""Checks the stored log against itself and against its signed checkpoints; names the first bad record or
checkpoint.

`verify_log` (`manage.py audit verify`) streams every record once: each leaf hash recomputed from its canonical
text, `seq` dense from 0, times never decreasing, the indexed columns equal to the record they were copied from;
and, as the tree grows, each checkpoint at its size: signed by one of the appliance's keys (current or retired,
V-222507), its signed root equal to the root recomputed from the records (a rehashed edit, a deletion, an
insertion or a reorder shows here, V-222501/V-222502), its stored right edge equal to the tree's, times only
growing; no checkpoint may cover records the log no longer has (a truncated tail). What it cannot see alone is a
log rebuilt end to end under a new key: that needs a checkpoint the auditor kept (`trusted`).

`check_tail` is the start-up self-check (V-222616): the newest checkpoint and the records since it, in O(tail).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from appliance.auditlog.checkpoints import check_row, log_end, newest, range_of
from appliance.auditlog.models import AuditCheckpoint, AuditRecord
from appliance.auditlog.sequencer import format_time
from appliance.auditlog.signing import known_verifier_keys
from audit.bundle import TrustedCheckpoint
from audit.checkpoint import CheckpointError, SignedCheckpoint, VerifierKey, open_checkpoint
from audit.encoding import EncodingError, canonical_json, leaf_hash
from audit.merkle import CompactRange, ProofError


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    problem: str = ""
    bad_seq: int | None = None
    bad_checkpoint: int | None = None  # the size of the first bad checkpoint
    checkpoints: int = 0

    def describe(self) -> str:
        """The failure as one sentence that names the record or checkpoint."""
        if self.bad_checkpoint is not None:
            return f"checkpoint of size {self.bad_checkpoint}: {self.problem}"
        if self.bad_seq is not None:
            return f"record {self.bad_seq}: {self.problem}"
        return self.problem


def check_record_row(row: AuditRecord, expected_seq: int) -> str:
    if row.seq != expected_seq:
        return f"sequence gap: expected record {expected_seq}, found {row.seq}"
    raw = row.canonical.encode("utf-8")
    if bytes(row.leaf_hash) != leaf_hash(raw):
        return "leaf hash does not match the stored record"
    try:
        body = json.loads(raw)
    except ValueError:
        return "stored record is not JSON"
    # A tampered row may hold any JSON at all (a float, a list): it must be named, never crash the verifier.
    try:
        canonical = canonical_json(body)
    except EncodingError as exc:
        return f"stored record has no canonical form: {exc}"
    if canonical != raw:
        return "stored record is not in canonical form"
    if not isinstance(body, dict) or not isinstance(body.get("object"), dict):
        return "stored record is not an audit record object"
    if body.get("seq") != row.seq:
        return f"record says seq {body.get('seq')}"
    copies = {
        "time": (format_time(row.time), body.get("time")),
        "action": (row.action, body.get("action")),
        "outcome": (row.outcome, body.get("outcome")),
        "actor": (row.actor, body.get("actor")),
        "label": (row.label, body.get("label")),
        "object_type": (row.object_type, body["object"].get("type")),
        "object_id": (row.object_id, body["object"].get("id")),
        "client_ip": (row.client_ip, body.get("client_ip")),
        "request_id": (row.request_id, body.get("request_id")),
    }
    for column, (stored, recorded) in copies.items():
        if stored != recorded:
            return f"column {column} ({stored!r}) differs from the record ({recorded!r})"
    return ""


class _CheckpointWalk:
    """Checks each checkpoint when the streamed tree reaches its size; remembers the previous one."""

    def __init__(self, keys: Mapping[str, VerifierKey], trusted: SignedCheckpoint | None) -> None:
        self.keys = dict(keys)
        self.trusted = trusted
        self.rows: Iterator[AuditCheckpoint] = AuditCheckpoint.objects.order_by("size").iterator(chunk_size=500)
        self.pending = next(self.rows, None)
        self.previous: AuditCheckpoint | None = None
        self.count = 0

    def at(self, tree: CompactRange, last_record_time: str) -> VerifyResult | None:
        trusted = self.trusted
        if trusted is not None and trusted.checkpoint.size == tree.size and tree.root() != trusted.checkpoint.root:
            return VerifyResult(
                ok=False,
                checked=tree.size,
                problem=f"the log is not consistent with the trusted checkpoint of size {tree.size}: "
                "its history was rewritten (possibly re-signed with another key)",
                bad_seq=tree.size - 1 if tree.size else None,
            )
        while self.pending is not None and self.pending.size <= tree.size:
            row, self.pending = self.pending, next(self.rows, None)
            problem = self._check(row, tree, last_record_time)
            if problem:
                return VerifyResult(
                    ok=False, checked=tree.size, problem=problem, bad_checkpoint=row.size, checkpoints=self.count
                )
            self.previous = row
            self.count += 1
        return None

    def _check(self, row: AuditCheckpoint, tree: CompactRange, last_record_time: str) -> str:
        signed, problem = check_row(row, self.keys)
        if signed is None:
            return problem
        if row.size != tree.size:  # unreachable with size as the primary key; kept as the invariant it is
            return f"out of order (the tree has {tree.size} records)"
        if bytes(row.root_hash) != tree.root():
            first = self.previous.size if self.previous is not None else 0
            return (
                f"signed root does not match records {first}..{row.size - 1} "
                "(a record in that range was altered, inserted, removed or reordered)"
            )
        try:
            stored_edge = range_of(row).right_edge()
        except ProofError as exc:
            return str(exc)
        if stored_edge != tree.right_edge():
            return "stored right edge differs from the tree's (the next checkpoint would continue a wrong tree)"
        if self.previous is not None and row.time < self.previous.time:
            return "time goes backwards"
        if last_record_time and signed.checkpoint.time.strftime("%Y-%m-%dT%H:%M:%S") < last_record_time[:19]:
            return "dated before the records it covers"
        return ""

    def leftover(self, end: int) -> VerifyResult | None:
        if self.pending is None:
            return None
        return VerifyResult(
            ok=False,
            checked=end,
            problem=f"covers records beyond the log's end ({end}): records were removed from the tail",
            bad_checkpoint=self.pending.size,
            checkpoints=self.count,
        )


def _open_trusted(trusted: TrustedCheckpoint | None) -> SignedCheckpoint | None:
    if trusted is None:
        return None
    try:
        return open_checkpoint(trusted.note, {key.key_id: key for key in trusted.keys})
    except CheckpointError as exc:
        raise ValueError(f"trusted checkpoint: {exc}") from exc


def verify_log(
    progress: Callable[[int], None] | None = None, *, trusted: TrustedCheckpoint | None = None
) -> VerifyResult:
    """Stream every record and checkpoint once (see the module docstring); stop at the first problem.

    `trusted`: a checkpoint saved off the appliance by an earlier verification; the log must still contain it.
    """
    walk = _CheckpointWalk(known_verifier_keys(), _open_trusted(trusted))
    tree = CompactRange()
    last_time = ""
    failure = walk.at(tree, last_time)
    if failure:
        return failure
    for row in AuditRecord.objects.order_by("seq").iterator(chunk_size=2000):
        problem = check_record_row(row, tree.size)
        if not problem and format_time(row.time) < last_time:
            problem = "time is earlier than the record before it (records reordered?)"
        if problem:
            return VerifyResult(ok=False, checked=tree.size, problem=problem, bad_seq=row.seq, checkpoints=walk.count)
        last_time = format_time(row.time)
        tree.append(bytes(row.leaf_hash))
        failure = walk.at(tree, last_time)
        if failure:
            return failure
        if progress is not None and tree.size % 10_000 == 0:
            progress(tree.size)
    if walk.trusted is not None and walk.trusted.checkpoint.size > tree.size:
        return VerifyResult(
            ok=False,
            checked=tree.size,
            problem=f"the log shrank: the trusted checkpoint covers {walk.trusted.checkpoint.size} records, "
            f"the log has {tree.size}",
            bad_seq=tree.size,
        )
    return walk.leftover(tree.size) or VerifyResult(ok=True, checked=tree.size, checkpoints=walk.count)


def check_tail() -> VerifyResult:
    """Start-up self-check (V-222616): the newest checkpoint and the records after it, in O(records since).

    The newest checkpoint must be signed by a known key and agree with its columns; its stored right edge must
    give its signed root (so the next checkpoint continues the right tree); the log must still hold every record
    it covers; the records after it must be dense and each leaf hash must match its canonical text.
    """
    keys = known_verifier_keys()
    row = newest()
    start = 0
    if row is not None:
        _, problem = check_row(row, keys)
        if not problem:
            try:
                if range_of(row).root() != bytes(row.root_hash):
                    problem = "its stored right edge does not give its signed root"
            except ProofError as exc:
                problem = str(exc)
        if not problem and log_end() < row.size:
            problem = f"covers records beyond the log's end ({log_end()}): records were removed from the tail"
        if problem:
            return VerifyResult(ok=False, checked=0, problem=problem, bad_checkpoint=row.size)
        start = row.size
    expected = start
    for record_row in AuditRecord.objects.filter(seq__gte=start).order_by("seq").iterator(chunk_size=2000):
        problem = check_record_row(record_row, expected)
        if problem:
            return VerifyResult(
                ok=False, checked=expected - start, problem=problem, bad_seq=record_row.seq, checkpoints=1
            )
        expected += 1
    return VerifyResult(ok=True, checked=expected - start, checkpoints=0 if row is None else 1)
