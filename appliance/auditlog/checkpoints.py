"""Signed checkpoints of the audit log: when one is due, how it is made, and how one is checked on its own.

A checkpoint is the appliance's signed commitment (a C2SP signed note, V-222507) to the Merkle root of its first
`size` records. `record()` calls `after_append` in the same transaction, right after its insert: every
`checkpoint_every_records` records, or once `checkpoint_every_seconds` have passed since the last checkpoint
(policies/security.toml), a checkpoint covering every record so far is appended. An exported checkpoint held
off the appliance is what lets an auditor detect a modified or deleted record (V-222501, V-222502) even after
the append-only triggers were lifted by a database superuser.

Appends stay fast: a checkpoint continues the tree from the previous checkpoint's stored right edge (after
checking that the edge gives that checkpoint's signed root), so it reads only the records since, never the whole
log. It never certifies what it cannot vouch for: leaves are recomputed from the records' canonical text, `seq`
must be dense, and a previous checkpoint that does not verify stops it (CheckpointRefused; an automatic
checkpoint logs CRITICAL instead of failing the action that triggered it, since the damage is already done and
`audit verify` names it).

This module never updates or deletes a row, and it never appends an audit record itself (recorder.py calls it).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from appliance.access.policy import get_policy
from appliance.auditlog.locking import hold_append_lock
from appliance.auditlog.models import AuditCheckpoint, AuditRecord
from appliance.auditlog.signing import (
    finish_rotation,
    known_verifier_keys,
    load_signing_key,
    pending_key,
)
from audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    SignedCheckpoint,
    SigningKey,
    VerifierKey,
    open_checkpoint,
    sign_checkpoint,
)
from audit.encoding import leaf_hash
from audit.merkle import CompactRange, ProofError

logger = logging.getLogger("appliance.audit")
_deferred: ContextVar[bool] = ContextVar("audit_checkpoints_deferred", default=False)


class CheckpointRefused(RuntimeError):
    """The log is not in a state a new checkpoint may vouch for; the message says which record or checkpoint."""


@contextmanager
def deferred() -> Iterator[None]:
    """Suspend automatic checkpoints: for an operation that appends its record and then its own checkpoint
    (a key rotation), where an automatic one at the same size would take the size it needs."""
    token = _deferred.set(True)
    try:
        yield
    finally:
        _deferred.reset(token)


def newest() -> AuditCheckpoint | None:
    """The checkpoint covering the most records, or None before the first."""
    return AuditCheckpoint.objects.order_by("-size").first()


def log_end() -> int:
    """One past the highest `seq` (the log's size if nothing was removed)."""
    last = AuditRecord.objects.aggregate(last=Max("seq"))["last"]
    return 0 if last is None else int(last) + 1


def encode_edge(hashes: list[bytes]) -> str:
    return json.dumps([base64.b64encode(h).decode("ascii") for h in hashes])


def range_of(row: AuditCheckpoint) -> CompactRange:
    """The compact range stored with `row`; raises ProofError when the stored edge is malformed."""
    try:
        hashes = [base64.b64decode(text, validate=True) for text in json.loads(row.right_edge)]
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ProofError(f"stored right edge is unreadable ({exc})") from exc
    return CompactRange.from_right_edge(row.size, hashes)


def check_row(row: AuditCheckpoint, trusted: Mapping[str, VerifierKey]) -> tuple[SignedCheckpoint | None, str]:
    """Check a checkpoint row by itself: signed by a trusted key, for this log, agreeing with its columns.

    Returns the opened note and "" or None and the problem. A replayed note (an older checkpoint copied in as a
    newer one) shows here as a note whose size is not its row's.
    """
    try:
        signed = open_checkpoint(row.note, dict(trusted))
    except CheckpointError as exc:
        return None, str(exc)
    body = signed.checkpoint
    rotate_text = body.rotate_to.text() if body.rotate_to is not None else ""
    if body.origin != settings.APPLIANCE_ID:
        return None, f"its note is for log {body.origin!r}, not {settings.APPLIANCE_ID!r}"
    if body.size != row.size:
        return None, f"its note is for size {body.size} (an older checkpoint replayed or moved)"
    if body.root != bytes(row.root_hash):
        return None, "column root_hash differs from the signed root"
    if body.time != row.time:
        return None, "column time differs from the signed time"
    if row.key_id not in signed.signers:
        return None, f"column key_id {row.key_id} names a key that did not sign it"
    if rotate_text != row.rotate_to:
        return None, "column rotate_to differs from the signed rotation"
    if body.rotate_to is not None and body.rotate_to.key_id not in signed.signers:
        return None, "a rotation must be signed by the new key as well as the old"
    return signed, ""


def _verified_range(row: AuditCheckpoint | None) -> CompactRange:
    """Where the next checkpoint continues from: `row`'s range, once it is shown to give `row`'s signed root."""
    if row is None:
        return CompactRange()
    _, problem = check_row(row, known_verifier_keys())
    if problem:
        raise CheckpointRefused(f"checkpoint of size {row.size}: {problem}")
    try:
        tree = range_of(row)
    except ProofError as exc:
        raise CheckpointRefused(f"checkpoint of size {row.size}: {exc}") from exc
    if tree.root() != bytes(row.root_hash):
        raise CheckpointRefused(f"checkpoint of size {row.size}: its stored right edge does not give its root")
    return tree


def _append_leaves(tree: CompactRange, end: int) -> None:
    """Add records tree.size..end-1, recomputing each leaf from the canonical text (never trusting the column)."""
    rows = (
        AuditRecord.objects.filter(seq__gte=tree.size, seq__lt=end)
        .order_by("seq")
        .values_list("seq", "canonical", "leaf_hash")
    )
    for seq, canonical, stored in rows.iterator(chunk_size=2000):
        if seq != tree.size:
            raise CheckpointRefused(f"record {tree.size} is missing (found {seq})")
        leaf = leaf_hash(canonical.encode("utf-8"))
        if leaf != bytes(stored):
            raise CheckpointRefused(f"record {seq}: leaf hash does not match the stored record")
        tree.append(leaf)
    if tree.size != end:
        raise CheckpointRefused(f"record {tree.size} is missing (the log ends at {end})")


def _append(
    previous: AuditCheckpoint | None,
    end: int,
    *,
    signers: tuple[SigningKey, ...],
    rotate_to: VerifierKey | None = None,
) -> AuditCheckpoint:
    if previous is not None and previous.size > end:
        raise CheckpointRefused(
            f"checkpoint of size {previous.size} covers records beyond the log's end ({end}): records were removed"
        )
    tree = _verified_range(previous)
    _append_leaves(tree, end)
    # The note carries whole seconds; never earlier than the previous checkpoint, even if the clock stepped back.
    moment = timezone.now().replace(microsecond=0)
    if previous is not None:
        moment = max(moment, previous.time)
    body = Checkpoint(origin=settings.APPLIANCE_ID, size=end, root=tree.root(), time=moment, rotate_to=rotate_to)
    return AuditCheckpoint.objects.create(
        size=end,
        root_hash=body.root,
        time=moment,
        key_id=signers[0].verifier.key_id,
        note=sign_checkpoint(body, *signers),
        right_edge=encode_edge(tree.right_edge()),
        rotate_to=rotate_to.text() if rotate_to is not None else "",
    )


def _first_record_time() -> datetime | None:
    return AuditRecord.objects.filter(seq=0).values_list("time", flat=True).first()


def _due(covered: int, covered_at: datetime | None, end: int, moment: datetime) -> bool:
    """Whether a checkpoint is due at log size `end`, the newest covering `covered` records, signed `covered_at`
    (None before the first checkpoint)."""
    rules = get_policy().security
    if end <= covered:
        return False
    if end - covered >= rules.checkpoint_every_records:
        return True
    since = covered_at if covered_at is not None else _first_record_time()
    return since is not None and moment - since >= timedelta(seconds=rules.checkpoint_every_seconds)


def _due_after(previous: AuditCheckpoint | None, end: int, moment: datetime) -> bool:
    return _due(previous.size if previous else 0, previous.time if previous else None, end, moment)


_NEWEST_SIZE_AND_TIME = f"SELECT size, time FROM {AuditCheckpoint._meta.db_table} ORDER BY size DESC LIMIT 1"  # noqa: S608


def _newest_size_and_time() -> tuple[int, datetime | None]:
    """The newest checkpoint's size and time in one raw query (this runs on every append)."""
    with connection.cursor() as cursor:
        cursor.execute(_NEWEST_SIZE_AND_TIME)
        row = cursor.fetchone()
    if row is None:
        return 0, None
    return size_and_time(*row)


def size_and_time(size: int | None, moment: datetime | str | None) -> tuple[int, datetime | None]:
    """A checkpoint's size and time as a raw query returns them (both None: no checkpoint yet), normalised."""
    if size is None or moment is None:
        return 0, None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:  # SQLite hands back naive UTC, as the ORM stored it
        moment = moment.replace(tzinfo=UTC)
    return int(size), moment


def after_append(row: AuditRecord, newest_size_and_time: tuple[int, datetime | None] | None = None) -> None:
    """The recorder's hook, in the append's transaction: append a checkpoint covering `row` when one is due.

    Runs on every append, so it reads only the newest checkpoint's size and time (or takes them from the caller,
    who read them under the append lock in the query that gave out `seq`); the whole row only when due.
    """
    if _deferred.get():
        return
    covered, covered_at = newest_size_and_time if newest_size_and_time is not None else _newest_size_and_time()
    end = row.seq + 1
    if not _due(covered, covered_at, end, row.time):
        return
    previous = newest()
    try:
        with transaction.atomic():  # a savepoint: a refusal leaves the caller's transaction usable
            _append(previous, end, signers=(load_signing_key(),))
    except CheckpointRefused as exc:
        logger.critical("audit checkpoint refused at record %s: %s", row.seq, exc)


def make_checkpoint(*, force: bool = False) -> AuditCheckpoint | None:
    """Append a checkpoint covering every record so far if one is due (or `force`); return it, or the newest.

    Forced, it raises CheckpointRefused when the log cannot be vouched for. Returns None only for an empty log.
    """
    with transaction.atomic():
        hold_append_lock()
        previous = newest()
        end = log_end()
        if end == 0 or (previous is not None and previous.size == end):
            return previous
        if not force and not _due_after(previous, end, timezone.now()):
            return previous
        return _append(previous, end, signers=(load_signing_key(),))


def make_rotation_checkpoint(*, old: SigningKey, new: SigningKey) -> AuditCheckpoint:
    """The checkpoint that announces `new` (`rotate` line), signed by both keys, covering every record so far.

    The caller appends the rotation's audit record first, with automatic checkpoints `deferred()`, so that this
    checkpoint covers it.
    """
    with transaction.atomic():
        hold_append_lock()
        previous = newest()
        end = log_end()
        if previous is not None and previous.size >= end:
            raise CheckpointRefused("a rotation checkpoint must cover its own audit record")
        return _append(previous, end, signers=(old, new), rotate_to=new.verifier)


def complete_interrupted_rotation() -> bool:
    """Finish a rotation whose checkpoint committed but whose key switch did not happen (a crash in between)."""
    pending = pending_key()
    if pending is None:
        return False
    if not AuditCheckpoint.objects.filter(rotate_to=pending.verifier.text()).exists():
        return False
    finish_rotation(load_signing_key().verifier)
    return True


def key_history() -> list[VerifierKey]:
    """The log's keys in order: the key of its first checkpoint, then each key a rotation announced."""
    known = known_verifier_keys()
    first_id = AuditCheckpoint.objects.order_by("size").values_list("key_id", flat=True).first()
    if first_id is None:
        return [load_signing_key().verifier]
    if first_id not in known:
        raise CheckpointRefused(f"the public key {first_id} of the log's first checkpoint is not under KEY_DIR")
    keys = [known[first_id]]
    announced = AuditCheckpoint.objects.exclude(rotate_to="").order_by("size").values_list("rotate_to", flat=True)
    for text in announced.iterator():
        try:
            key = VerifierKey.parse(text)
        except CheckpointError as exc:
            raise CheckpointRefused(f"a rotation announces an unreadable key ({exc})") from exc
        if key not in keys:
            keys.append(key)
    return keys
