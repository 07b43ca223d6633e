"""Checks the stored log: every leaf hash recomputed from its canonical record, `seq` dense from 0, and the
indexed columns equal to the record they were copied from. Names the first bad record."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from appliance.auditlog.models import AuditRecord
from appliance.auditlog.recorder import format_time
from audit.encoding import EncodingError, canonical_json, leaf_hash


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    problem: str = ""
    bad_seq: int | None = None


def _check_row(row: AuditRecord, expected_seq: int) -> str:
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


def verify_log(progress: Callable[[int], None] | None = None) -> VerifyResult:
    expected = 0
    for row in AuditRecord.objects.order_by("seq").iterator(chunk_size=2000):
        problem = _check_row(row, expected)
        if problem:
            return VerifyResult(ok=False, checked=expected, problem=problem, bad_seq=row.seq)
        expected += 1
        if progress is not None and expected % 10_000 == 0:
            progress(expected)
    return VerifyResult(ok=True, checked=expected)
