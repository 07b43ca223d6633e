"""Small shared helpers of the audit log tests: one real write to audit, and reading records back."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.contrib.sessions.models import Session
from django.utils import timezone

from appliance.auditlog.models import AuditRecord


def write_session_row(key: str) -> Session:
    """A small real write standing in for an action: one row of a table that is not an audit table."""
    return Session.objects.create(session_key=key, session_data="x", expire_date=timezone.now() + timedelta(hours=1))


def body_of(row: AuditRecord) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(row.canonical)
    return body


def all_seqs() -> list[int]:
    return list(AuditRecord.objects.order_by("seq").values_list("seq", flat=True))
