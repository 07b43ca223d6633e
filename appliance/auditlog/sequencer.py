"""Giving records their place in the log: `seq`, the log's time, the leaf hash, and a checkpoint when one is due.

Two ways in, one way of appending (`append_bodies`):

- direct: `record()` finds the append lock free, takes it and appends in the action's own transaction. This is
  every append on SQLite (one writer at a time anyway) and every uncontended one on PostgreSQL.
- staged: another transaction holds the lock, so `record()` stages the record (AuditStaged) in the action's
  transaction instead of queueing behind it. After the commit, `sequence_staged` moves staged records into the
  log in batches, each batch and the deletion of its staged rows in one transaction.

Nothing staged is ever left behind: every transaction that appended or staged runs `sequence_staged` after its
commit, which tries the lock without waiting and, after each batch it commits, looks again. A writer that finds
the lock taken may leave, because the holder either has not yet read the staged rows (and will see this one) or
will look again after its own commit (and see it then). Within one process the same holds one level up: one
thread at a time runs `sequence_staged` after commits, and a thread that finds another one at it leaves it a
note instead, which that thread reads before it stops (`_sequence_here_or_leave_it`). `drain_staged` waits for
the lock instead: for exports, checkpoints and verification, which must see every committed record in its place.

The log's `time` is read under the lock, so it never decreases as `seq` grows; a staged record also carries
`occurred`, the time its action committed, so an auditor can see when sequencing lagged.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from appliance.auditlog.checkpoints import after_append, size_and_time
from appliance.auditlog.locking import APPEND_LOCK_ID, hold_append_lock
from appliance.auditlog.models import AuditCheckpoint, AuditRecord, AuditStaged
from audit.encoding import EncodingError, canonical_json, leaf_hash

logger = logging.getLogger("appliance.audit")
BATCH = 500


def format_time(moment: datetime) -> str:
    """The record's time field: UTC, microseconds, `Z` (also what the verifier compares the `time` column to)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# Raw SQL for the per-action hot paths; the only names spliced in are the models' own table names.
_NEXT_SEQ_AND_NEWEST_CHECKPOINT = (
    f"SELECT (SELECT MAX(seq) FROM {AuditRecord._meta.db_table}), "  # noqa: S608
    f"(SELECT size FROM {AuditCheckpoint._meta.db_table} ORDER BY size DESC LIMIT 1), "
    f"(SELECT time FROM {AuditCheckpoint._meta.db_table} ORDER BY size DESC LIMIT 1)"
)
# Through the primary key's index, never a scan of the table: staged rows are inserted and deleted all day, so
# between vacuums the heap is mostly dead rows that a sequential scan (what EXISTS over the table plans) reads
# in full, every time, on the path that runs after each direct append.
_ANY_STAGED = f"SELECT id FROM {AuditStaged._meta.db_table} ORDER BY id LIMIT 1"  # noqa: S608
_TAKE_BATCH = (
    f"DELETE FROM {AuditStaged._meta.db_table} WHERE id IN "  # noqa: S608
    f"(SELECT id FROM {AuditStaged._meta.db_table} ORDER BY id LIMIT %s) RETURNING id, body"
)
_STAGE_UNLESS_LOCKED = (
    f"INSERT INTO {AuditStaged._meta.db_table} (body) SELECT %s WHERE NOT pg_try_advisory_xact_lock(%s)"
)


def _scalar(sql: str, params: Sequence[int] = ()) -> Any:
    """One value from one raw query: the hot paths below run per audited action, where the ORM's query building
    costs more than the query itself."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def _next_seq_and_newest_checkpoint() -> tuple[int, tuple[int, datetime | None]]:
    """The next `seq` and the newest checkpoint's size and time, in one round trip (both read under the lock)."""
    with connection.cursor() as cursor:
        cursor.execute(_NEXT_SEQ_AND_NEWEST_CHECKPOINT)
        last, size, moment = cursor.fetchone()
    return (0 if last is None else int(last) + 1), size_and_time(size, moment)


_COLUMNS = (
    "seq",
    "time",
    "actor",
    "action",
    "outcome",
    "object_type",
    "object_id",
    "label",
    "client_ip",
    "request_id",
    "canonical",
    "leaf_hash",
)
_INSERT = (
    f"INSERT INTO {AuditRecord._meta.db_table} ({', '.join(_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join(['%s'] * len(_COLUMNS))})"
)
# PostgreSQL parses the client address itself (text cast to inet), sparing a Python-side parse per row.
_INSERT_PG = (
    f"INSERT INTO {AuditRecord._meta.db_table} ({', '.join(_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('%s::inet' if column == 'client_ip' else '%s' for column in _COLUMNS)})"
)


def _insert(rows: Sequence[AuditRecord]) -> None:
    """INSERT the rows in one round trip, with each value adapted as the ORM would store it."""
    ops = connection.ops
    postgres = connection.vendor == "postgresql"
    params: list[tuple[Any, ...]] = [
        (
            row.seq,
            ops.adapt_datetimefield_value(row.time),
            row.actor,
            row.action,
            row.outcome,
            row.object_type,
            row.object_id,
            row.label,
            (row.client_ip or None) if postgres else ops.adapt_ipaddressfield_value(row.client_ip),
            row.request_id,
            row.canonical,
            row.leaf_hash,
        )
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(_INSERT_PG if postgres else _INSERT, params)


def append_bodies(bodies: Sequence[Mapping[str, Any]]) -> list[AuditRecord]:
    """Append one record per body (each without `seq` and `time`) at the end of the log. The caller holds the
    append lock in the current transaction; the bodies were already checked to have a canonical form."""
    first, newest_checkpoint = _next_seq_and_newest_checkpoint()
    # Read only once the lock is held: read before it, a writer that waited would record an earlier time under
    # a later seq.
    moment = timezone.now()
    stamp = format_time(moment)
    rows = []
    for offset, body in enumerate(bodies):
        full = {**body, "seq": first + offset, "time": stamp}
        canonical = canonical_json(full)
        rows.append(
            AuditRecord(
                seq=first + offset,
                time=moment,
                actor=full["actor"],
                action=full["action"],
                outcome=full["outcome"],
                object_type=full["object"]["type"],
                object_id=full["object"]["id"],
                label=full["label"],
                client_ip=full["client_ip"],
                request_id=full["request_id"],
                canonical=canonical.decode("utf-8"),
                leaf_hash=leaf_hash(canonical),
            )
        )
    _insert(rows)
    after_append(rows[-1], newest_checkpoint)  # a signed checkpoint, when one is due, in this same transaction
    return rows


def _staged_text(body: Mapping[str, Any]) -> str:
    return canonical_json({**body, "occurred": format_time(timezone.now())}).decode("utf-8")


def stage(body: Mapping[str, Any]) -> None:
    """Stage a record in the caller's transaction, stamped with when it occurred."""
    AuditStaged.objects.create(body=_staged_text(body))


def stage_unless_locked(body: Mapping[str, Any]) -> bool:
    """PostgreSQL: take the append lock if it is free, else stage the record; True when it was staged.

    One statement does both, because this is the hot path of every audited action under load: the INSERT happens
    exactly when the lock could not be taken, and the lock, once taken, is this transaction's until it ends.
    """
    with connection.cursor() as cursor:
        cursor.execute(_STAGE_UNLESS_LOCKED, [_staged_text(body), APPEND_LOCK_ID])
        return cursor.rowcount == 1


class StagedRecordDamaged(RuntimeError):
    """A staged row is not a record `record()` could have staged: it was written past the recorder (tampering).

    Sequencing stops there, and stays stopped, rather than skip it or guess: the records behind it stay staged
    (durable, in order) and every attempt raises a CRITICAL alert naming the row, until an operator has examined
    and removed it. Appends that find the lock free go on meanwhile."""


_REQUIRED = ("actor", "action", "outcome", "object", "label", "client_ip", "request_id")


def _body_of(pk: int, text: str) -> dict[str, Any]:
    try:
        body = json.loads(text)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("object"), dict)
            or not all(key in body for key in _REQUIRED)
        ):
            raise ValueError("not a staged audit record")
        canonical_json(body)
    except (ValueError, EncodingError) as exc:
        raise StagedRecordDamaged(f"staged audit record {pk} is damaged ({exc}); sequencing stops at it") from exc
    return body


def _move_batch() -> int:
    """Sequence up to BATCH staged records, oldest first; the caller holds the lock in its transaction."""
    if connection.vendor == "postgresql":
        # Taken and deleted in one statement (one round trip); the deletion commits with the appends or not at all.
        with connection.cursor() as cursor:
            cursor.execute(_TAKE_BATCH, [BATCH])
            staged = sorted(cursor.fetchall())
    else:
        staged = list(AuditStaged.objects.order_by("id").values_list("id", "body")[:BATCH])
        AuditStaged.objects.filter(id__in=[pk for pk, _ in staged]).delete()
    if staged:
        append_bodies([_body_of(pk, body) for pk, body in staged])
    return len(staged)


def _try_session_lock() -> bool:
    return bool(_scalar("SELECT pg_try_advisory_lock(%s)", [APPEND_LOCK_ID]))


def _release_session_lock() -> None:
    _scalar("SELECT pg_advisory_unlock(%s)", [APPEND_LOCK_ID])


def _anything_staged() -> bool:
    return _scalar(_ANY_STAGED) is not None


def sequence_staged() -> int:
    """Move staged records into the log unless someone else holds the lock (who will look again); return how many.

    Runs outside any transaction (after a commit). The lock is tried at session level, in one statement without
    a transaction, because most tries under load find it taken; once taken, each batch commits on its own and the
    lock is released before looking again (so that the look sees everything committed while it was held).
    """
    if connection.vendor != "postgresql":
        return drain_staged()
    moved = 0
    while _try_session_lock():
        try:
            while count := _move_batch_in_own_transaction():
                moved += count
        finally:
            _release_session_lock()
        if not _anything_staged():
            break
    return moved


def _move_batch_in_own_transaction() -> int:
    with transaction.atomic():
        return _move_batch()


# Within one process, one thread at a time sequences after commits; the others only say that they want it done.
# The thread that sequences looks again whenever someone wanted it while it worked, and once more after letting go,
# so no wish is lost; across processes the database lock does the same (see `sequence_staged`). This spares every
# other committing thread the lock attempt's round trip, which under load nearly always finds the lock taken.
_sequencing = threading.Lock()
_wanted = threading.Event()


def _sequence_here_or_leave_it() -> None:
    _wanted.set()
    while _sequencing.acquire(blocking=False):
        try:
            while _wanted.is_set():
                _wanted.clear()
                sequence_staged()
        finally:
            _sequencing.release()
        if not _wanted.is_set():
            return


def _sequence_after_commit(*, look_first: bool) -> None:
    """The on-commit hook. A failure here cannot undo the committed action, and loses nothing (the records stay
    staged for the next writer, export or check), so it is logged for the operator rather than raised."""
    try:
        if not look_first or _anything_staged():
            _sequence_here_or_leave_it()
    except StagedRecordDamaged as exc:
        logger.critical("AUDIT: %s", exc)
    except Exception:
        logger.critical("staged audit records could not be sequenced yet; they stay staged", exc_info=True)


def after_staging_commit() -> None:
    """After a transaction that staged: sequence (its own record is there to move)."""
    _sequence_after_commit(look_first=False)


def after_append_commit() -> None:
    """After a transaction that held the lock: someone may have staged behind it, so look (one cheap query)."""
    _sequence_after_commit(look_first=True)


def drain_staged() -> int:
    """Wait for the lock and sequence every staged record committed so far, in one transaction."""
    moved = 0
    with transaction.atomic():
        hold_append_lock()
        while count := _move_batch():
            moved += count
    return moved
