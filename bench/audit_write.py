"""Cost of auditing a write: N transactions doing the same small insert, with `record()` and without it.

The baseline runs in the same process against the same database, interleaved with the audited runs in rounds so
that drift (autovacuum, cache warm-up, the machine's other load) falls on both alike. The ratio is
audited_rate / bare_rate; the target is 0.8. A second figure does the same with 16 concurrent clients (threads,
each with its own connection), where every audited append waits for the one append lock, and checks that no
transaction failed and that the sequence the run appended has no gap.
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
PER_CLIENT = 60  # per kind and client: 960 bare and 960 audited transactions in all
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
    bare_seconds, bare_errors = _concurrent(bare, f"{run_id}-cb")
    before = _last_seq()
    audited_seconds, audited_errors = _concurrent(audited, f"{run_id}-ca")
    total = CLIENTS * PER_CLIENT
    bare_rate, audited_rate = total / bare_seconds, total / audited_seconds
    return BenchResult(
        name="audit_write_16_clients",
        ratio=audited_rate / bare_rate,
        goal=GOAL,
        figures={
            "audited": f"{audited_rate:.0f}/s",
            "bare": f"{bare_rate:.0f}/s",
            "n": str(total),
            "clients": str(CLIENTS),
            "errors": str(bare_errors + audited_errors),
            "gap_free": str(_dense_since(before, total - audited_errors)).lower(),
            "db": connection.vendor,
        },
    )


def run() -> list[BenchResult]:
    if connection.vendor != "postgresql":
        raise SystemExit("audit_write measures PostgreSQL: set DATABASE_URL=postgres://...")
    run_id = uuid.uuid4().hex[:8]
    try:
        with audit_context(CONTEXT):
            results = [single_client(run_id)]
        results.append(concurrent_clients(run_id))
    finally:
        Session.objects.filter(session_key__startswith=run_id).delete()  # the audit records stay: append-only
    return results
