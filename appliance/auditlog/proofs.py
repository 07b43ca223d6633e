"""What the appliance can prove about its own log, computed from the database with the auditor's kit (`audit/`).

Two things live here. `prove_inclusion` builds a record's RFC 9162 inclusion proof against the newest signed
checkpoint and checks it server-side, so an auditor sees on one page that the record shown is the one the
signed tree commits to. `verify_step` checks the log in bounded chunks (every leaf recomputed from the record,
`seq` dense, the indexed columns equal to the record, and each checkpoint's root rebuilt from the leaves), so a
page can drive a full verification of any size with plain requests: Django answers each chunk in a request
of its own, and nothing runs in a background thread.

The progress of a verification travels between the chunks as a signed token (Django's signing, bound to the
auditor), holding the next `seq`, the fixed end and the Merkle tree's right edge: the browser carries it, but
cannot skip a range or forge a partial root, so the final "ok" that is recorded means every record was checked.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import overload

from django.core import signing

from appliance.auditlog.checkpoints import check_row
from appliance.auditlog.models import AuditCheckpoint, AuditRecord
from appliance.auditlog.signing import known_verifier_keys

# The row check that `verify_log` applies; reused, not restated, so the chunked verifier and `audit verify`
# can never disagree about what a good record is.
from appliance.auditlog.verification import check_record_row
from audit.encoding import leaf_hash
from audit.merkle import CompactRange, ProofError, inclusion_proof, verify_inclusion

VERIFY_CHUNK = 50_000
_STATE_SALT = "appliance.auditlog.proofs.verify"
_STATE_MAX_AGE_SECONDS = 6 * 3600


class _PackedLeaves(Sequence[bytes]):
    """All leaf hashes in one bytearray (32 bytes each): a million leaves cost 32 MB, not a million objects."""

    def __init__(self, hashes: Iterator[bytes | memoryview]) -> None:
        self._data = bytearray()
        for value in hashes:
            self._data += bytes(value)
        self._size = len(self._data) // 32

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._size))]
        if not 0 <= index < self._size:
            raise IndexError(index)
        return bytes(self._data[index * 32 : index * 32 + 32])


@dataclass(frozen=True)
class InclusionProof:
    """A record's place in the tree of a signed checkpoint, and whether the proof leads to the signed root."""

    seq: int
    leaf_hash: bytes  # recomputed from the record's canonical text, not read from the stored column
    checkpoint_size: int
    checkpoint_root: bytes
    checkpoint_time: datetime
    checkpoint_key_id: str
    hashes: list[bytes] = field(default_factory=list)
    verified: bool = False
    problem: str = ""


def recomputed_leaf(record: AuditRecord) -> bytes:
    return leaf_hash(record.canonical.encode("utf-8"))


def prove_inclusion(record: AuditRecord, checkpoint: AuditCheckpoint | None) -> InclusionProof | None:
    """The inclusion proof of `record` in `checkpoint`'s tree, checked; None when no checkpoint covers it yet.

    The proof is built from the stored leaf hashes 0..size-1 and checked with the leaf recomputed from the
    record's text, so a record edited behind the triggers' back fails here even if its leaf column was left alone.
    """
    if checkpoint is None or record.seq >= checkpoint.size:
        return None
    size = checkpoint.size
    root = bytes(checkpoint.root_hash)
    leaf = recomputed_leaf(record)
    base = InclusionProof(
        seq=record.seq,
        leaf_hash=leaf,
        checkpoint_size=size,
        checkpoint_root=root,
        checkpoint_time=checkpoint.time,
        checkpoint_key_id=checkpoint.key_id,
    )
    stored = AuditRecord.objects.filter(seq__lt=size).order_by("seq").values_list("leaf_hash", flat=True)
    leaves = _PackedLeaves(stored.iterator(chunk_size=10_000))
    if len(leaves) != size:
        return _with(base, problem=f"the log holds {len(leaves)} records below the checkpoint's size {size}")
    try:
        hashes = inclusion_proof(leaves, record.seq, size)
    except ProofError as exc:
        return _with(base, problem=str(exc))
    try:
        verify_inclusion(record.seq, size, leaf, hashes, root)
    except ProofError as exc:
        return _with(base, hashes=hashes, problem=str(exc))
    return _with(base, hashes=hashes, verified=True)


def _with(base: InclusionProof, **changes: object) -> InclusionProof:
    values = {**base.__dict__, **changes}
    return InclusionProof(**values)


# --- chunked verification -----------------------------------------------------------------------------------------


class StateError(ValueError):
    """The verification token is missing, altered, expired, another auditor's, or not for this position."""


@dataclass(frozen=True)
class VerifyState:
    """Where a verification stands: records [0, next) checked, `edge` the right edge of their Merkle tree."""

    actor: str
    next: int
    total: int
    edge: list[bytes]
    checkpoints: int = 0  # how many checkpoint roots the records so far were checked against

    def dumps(self) -> str:
        payload = {
            "a": self.actor,
            "n": self.next,
            "t": self.total,
            "e": [h.hex() for h in self.edge],
            "c": self.checkpoints,
        }
        return signing.dumps(payload, salt=_STATE_SALT, compress=True)

    @classmethod
    def loads(cls, token: str, *, actor: str, position: int) -> VerifyState:
        """The state in `token`, refused unless it is `actor`'s, current, and at `position`."""
        try:
            payload = signing.loads(token, salt=_STATE_SALT, max_age=_STATE_MAX_AGE_SECONDS)
            state = cls(
                actor=str(payload["a"]),
                next=int(payload["n"]),
                total=int(payload["t"]),
                edge=[bytes.fromhex(h) for h in payload["e"]],
                checkpoints=int(payload["c"]),
            )
        except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
            raise StateError("the verification token is not valid; start again") from exc
        if state.actor != actor:
            raise StateError("the verification token belongs to another user; start again")
        if state.next != position:
            raise StateError(f"the verification token is at record {state.next}, not {position}")
        return state


@dataclass(frozen=True)
class StepResult:
    state: VerifyState
    ok: bool
    problem: str = ""
    bad_seq: int | None = None

    @property
    def checked(self) -> int:
        return self.state.next

    @property
    def done(self) -> bool:
        return not self.ok or self.state.next >= self.state.total


def start_verification(*, actor: str, total: int) -> VerifyState:
    """A verification of records [0, total): the log as it is now; what is appended meanwhile is for the next."""
    return VerifyState(actor=actor, next=0, total=total, edge=[])


def verify_step(state: VerifyState, *, limit: int = VERIFY_CHUNK) -> StepResult:
    """Check the next `limit` records after `state` and every checkpoint whose size falls in that range."""
    start = state.next
    end = min(state.total, start + max(1, limit))
    try:
        tree = CompactRange.from_right_edge(start, state.edge)
    except ProofError as exc:
        return StepResult(state=state, ok=False, problem=f"verification state is inconsistent: {exc}", bad_seq=start)
    # Whole rows: each checkpoint is checked as the offline verifier checks it (signed by a key this log knows,
    # for this log, its columns agreeing with its note), and the records are held to its *signed* root.
    checkpoints_here = {row.size: row for row in AuditCheckpoint.objects.filter(size__gt=start, size__lte=end)}
    keys = known_verifier_keys() if checkpoints_here else {}
    expected, checkpoints = start, 0
    rows = AuditRecord.objects.filter(seq__gte=start, seq__lt=end).order_by("seq").iterator(chunk_size=2000)
    for row in rows:
        problem = check_record_row(row, expected)
        if problem:
            return StepResult(state=_at(state, expected, tree, checkpoints), ok=False, problem=problem, bad_seq=row.seq)
        tree.append(bytes(row.leaf_hash))
        expected += 1
        checkpoint = checkpoints_here.get(expected)
        if checkpoint is not None:
            checkpoints += 1
            signed, problem = check_row(checkpoint, keys)
            if signed is None:
                problem = f"checkpoint {expected}: {problem}"
            elif tree.root() != signed.checkpoint.root:
                problem = f"records 0..{expected - 1} do not hash to the root signed in checkpoint {expected}"
            if problem:
                at = _at(state, expected, tree, checkpoints)
                return StepResult(state=at, ok=False, problem=problem, bad_seq=expected - 1)
    if expected < end:
        at = _at(state, expected, tree, checkpoints)
        return StepResult(state=at, ok=False, problem=f"record {expected} is missing", bad_seq=expected)
    return StepResult(state=_at(state, expected, tree, checkpoints), ok=True)


def _at(state: VerifyState, position: int, tree: CompactRange, checked: int) -> VerifyState:
    """The state after records up to `position` and `checked` more checkpoints."""
    return VerifyState(
        actor=state.actor,
        next=position,
        total=state.total,
        edge=tree.right_edge(),
        checkpoints=state.checkpoints + checked,
    )
