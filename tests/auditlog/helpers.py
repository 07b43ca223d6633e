"""Small shared helpers of the audit log tests: one real write to audit, reading records back, and lifting the
append-only triggers for the tamper tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.contrib.sessions.models import Session
from django.db import connection
from django.utils import timezone

from appliance.auditlog.models import AuditRecord
from appliance.auditlog.triggers import install_sql, remove_sql


def write_session_row(key: str) -> Session:
    """A small real write standing in for an action: one row of a table that is not an audit table."""
    return Session.objects.create(session_key=key, session_data="x", expire_date=timezone.now() + timedelta(hours=1))


def body_of(row: AuditRecord) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(row.canonical)
    return body


def all_seqs() -> list[int]:
    return list(AuditRecord.objects.order_by("seq").values_list("seq", flat=True))


@contextmanager
def triggers_lifted() -> Iterator[None]:
    """The append-only triggers removed for a tamper test (as a database superuser could), then put back."""
    with connection.cursor() as cursor:
        for statement in remove_sql(connection.vendor):
            cursor.execute(statement)
    yield
    with connection.cursor() as cursor:
        for statement in install_sql(connection.vendor):
            cursor.execute(statement)
