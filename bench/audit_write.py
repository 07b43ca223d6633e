"""Cost of auditing a write: N transactions doing the same small insert, with `record()` and without it.

The baseline runs in the same process against the same database, interleaved with the audited runs in rounds so
that drift (autovacuum, cache warm-up, the machine's other load) falls on both alike. The ratio is
audited_rate / bare_rate; the target is 0.8. A second figure does the same with 16 concurrent clients (threads,
each with its own connection), in three rounds of bare, audited and "floor" (the bare transaction plus one raw
INSERT of a record-sized row, the least any in-transaction audit write costs) in rotating order, and checks that
no transaction failed and that the sequence the run appended has no gap.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.utils import timezone

from appliance.auditlog.context import AuditContext, audit_context
from appliance.auditlog.models import AuditRecord
from appliance.auditlog.recorder import record
from bench._common import BenchResult

GOAL = 0.8
ROUNDS = 4
PER_ROUND = 400  # per kind: 1,600 bare and 1,600 audited transactions in all
CLIENTS = 16
PER_CLIENT = 60  # per kind, client and round
CONCURRENT_ROUNDS = 3  # 2,880 bare, 2,880 audited and 2,880 floor transactions in all
CONTEXT = AuditContext(component="system", actor="bench", roles=("manager",), session="bench", client_ip="127.0.0.1")


def _write(key: str) -> None:
    Session.objects.create(session_key=key, session_data="bench", expire_date=timezone.now() + timedelta(hours=1))


def bare(key: str) -> None:
    with transaction.atomic():
        _write(key)


def audited(key: str) -> None:
    with transaction.atomic():
        _write(key)
        record(action="bench.write", object_type="session", object_id=key, details={"bench": True})


# The floor: the same transaction plus one raw INSERT of a staged-record-sized row into a table shaped like the
# staging table (bigserial key, text body), and nothing else (no encoding, no lock, no sequencing). Any design that
# writes the record in the action's own transaction pays at least this; audited/floor shows what the rest costs.
FLOOR_TABLE = "bench_audit_floor"
_FLOOR_BODY = (
    '{"action":"bench.write","actor":"bench","client_ip":"127.0.0.1","component":"system","details":{"bench":true},'
    '"label":"","object":{"id":"0123456789abcdef-00-00","type":"session"},"occurred":"2026-11-01T08:00:00.000000Z",'
    '"outcome":"ok","request_id":"","roles":["manager"],"session":"bench","token":"","v":1}'
)


def floor(key: str) -> None:
    with transaction.atomic():
        _write(key)
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {FLOOR_TABLE} (body) VALUES (%s)", [_FLOOR_BODY])  # noqa: S608


def _timed(kind: Callable[[str], None], prefix: str, count: int) -> float:
    started = time.perf_counter()
    for index in range(count):
        kind(f"{prefix}-{index}")
    return time.perf_counter() - started


def _last_seq() -> int:
    last = AuditRecord.objects.order_by("-seq").values_list("seq", flat=True).first()
    return -1 if last is None else last


def _dense_since(before: int, expected: int) -> bool:
    """The records appended since `before` are exactly `expected` and numbered without a gap."""
    seqs = list(AuditRecord.objects.filter(seq__gt=before).order_by("seq").values_list("seq", flat=True))
    return len(seqs) == expected and seqs == list(range(before + 1, before + 1 + expected))


def single_client(run_id: str) -> BenchResult:
    bare_seconds = audited_seconds = 0.0
    _timed(bare, f"{run_id}-warm-b", 50)
    _timed(audited, f"{run_id}-warm-a", 50)
    before = _last_seq()
    for round_ in range(ROUNDS):
        # Alternate which kind goes first, so neither always runs on the warmer side of a round.
        order = [(bare, "b"), (audited, "a")] if round_ % 2 == 0 else [(audited, "a"), (bare, "b")]
        for kind, tag in order:
            seconds = _timed(kind, f"{run_id}-{tag}{round_}", PER_ROUND)
            if kind is bare:
                bare_seconds += seconds
            else:
                audited_seconds += seconds
    total = ROUNDS * PER_ROUND
    bare_rate, audited_rate = total / bare_seconds, total / audited_seconds
    return BenchResult(
        name="audit_write",
        ratio=audited_rate / bare_rate,
        goal=GOAL,
        figures={
            "audited": f"{audited_rate:.0f}/s",
            "bare": f"{bare_rate:.0f}/s",
            "n": str(total),
            "clients": "1",
            "gap_free": str(_dense_since(before, total)).lower(),
            "db": connection.vendor,
        },
    )


def _concurrent(kind: Callable[[str], None], prefix: str) -> tuple[float, int]:
    """Run CLIENTS threads of PER_CLIENT transactions each; return wall seconds and the number of failures."""

    def client(number: int) -> int:
        failures = 0
        try:
            with audit_context(CONTEXT):
                for index in range(PER_CLIENT):
                    try:
                        kind(f"{prefix}-{number}-{index}")
                    except Exception:  # counted and reported: a benchmark that hides errors measures nothing
                        failures += 1
        finally:
            connection.close()
        return failures

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        failures = sum(pool.map(client, range(CLIENTS)))
    return time.perf_counter() - started, failures


def concurrent_clients(run_id: str) -> BenchResult:
    _concurrent(bare, f"{run_id}-cwarm")  # opens the connections' first pages and the threads' caches
    seconds = dict.fromkeys(("bare", "audited", "floor"), 0.0)
    errors = dict.fromkeys(seconds, 0)
    before = _last_seq()
    kinds = {"bare": bare, "audited": audited, "floor": floor}
    for round_ in range(CONCURRENT_ROUNDS):
        # Rotate the order, so that drift on a shared machine falls on each kind alike.
        order = list(kinds)[round_ % 3 :] + list(kinds)[: round_ % 3]
        for name in order:
            spent, failed = _concurrent(kinds[name], f"{run_id}-c{name[0]}{round_}")
            seconds[name] += spent
            errors[name] += failed
    total = CONCURRENT_ROUNDS * CLIENTS * PER_CLIENT
    rate = {name: total / spent for name, spent in seconds.items()}
    return BenchResult(
        name="audit_write_16_clients",
        ratio=rate["audited"] / rate["bare"],
        goal=GOAL,
        figures={
            "audited": f"{rate['audited']:.0f}/s",
            "bare": f"{rate['bare']:.0f}/s",
            "n": str(total),
            "clients": str(CLIENTS),
            "errors": str(sum(errors.values())),
            "gap_free": str(_dense_since(before, total - errors["audited"])).lower(),
            "db": connection.vendor,
            "floor": f"{rate['floor']:.0f}/s",
            "floor_ratio": f"{rate['floor'] / rate['bare']:.3f}",
        },
    )


def run() -> list[BenchResult]:
    if connection.vendor != "postgresql":
        raise SystemExit("audit_write measures PostgreSQL: set DATABASE_URL=postgres://...")
    run_id = uuid.uuid4().hex[:8]
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {FLOOR_TABLE} (id bigserial PRIMARY KEY, body text NOT NULL)")
    try:
        with audit_context(CONTEXT):
            results = [single_client(run_id)]
        results.append(concurrent_clients(run_id))
    finally:
        Session.objects.filter(session_key__startswith=run_id).delete()  # the audit records stay: append-only
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
    return results
