"""The audit log's storage is measured against its budget, and 75% of it raises an alert that is itself audited.

STIG: V-222483 (notify the SA and ISSO when audit storage reaches 75% of its allocation); AU-5(1).
The budget is made tiny relative to the real tables so the real measure crosses the thresholds.
"""

from __future__ import annotations

import json
import logging

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from appliance.auditlog.models import AuditRecord
from appliance.auditlog.recorder import record
from appliance.auditlog.storage import audit_storage_used, check_audit_storage

pytestmark = pytest.mark.django_db


@pytest.fixture
def some_records() -> None:
    with transaction.atomic():
        for number in range(20):
            record(action="probe.write", details={"n": number, "text": "x" * 200})


def _alerts(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "appliance.audit" and r.levelno == level]


@pytest.mark.usefixtures("some_records")
def test_the_used_size_counts_the_audit_tables_and_grows_with_them():
    """V-222483 needs a real measure: more records, more bytes (never zero once records exist)."""
    before = audit_storage_used()
    assert before > 20 * 200
    with transaction.atomic():
        for number in range(200):
            record(action="probe.write", details={"n": number, "text": "y" * 1000})
    assert audit_storage_used() > before


@pytest.mark.usefixtures("some_records")
def test_below_75_percent_nothing_is_raised(caplog):
    """V-222483 control case: a budget four times the use is silent and appends nothing."""
    count = AuditRecord.objects.count()
    with caplog.at_level(logging.WARNING, logger="appliance.audit"):
        status = check_audit_storage(budget_bytes=audit_storage_used() * 4)
    assert (status.level, status.percent) == ("ok", 25)
    assert AuditRecord.objects.count() == count
    assert not _alerts(caplog, logging.WARNING)


@pytest.mark.usefixtures("some_records")
def test_at_75_percent_a_warning_is_logged_and_recorded(caplog):
    """V-222483: at 75-94% of the budget, a WARNING on appliance.audit and an audit.storage_warning record with
    used_bytes, budget_bytes and percent."""
    used = audit_storage_used()
    budget = used * 100 // 80
    with caplog.at_level(logging.WARNING, logger="appliance.audit"):
        status = check_audit_storage(budget_bytes=budget)
    assert status.level == "warning"
    assert 75 <= status.percent < 95
    assert len(_alerts(caplog, logging.WARNING)) == 1
    assert f"{status.percent}%" in _alerts(caplog, logging.WARNING)[0].getMessage()
    row = AuditRecord.objects.get(action="audit.storage_warning")
    details = json.loads(row.canonical)["details"]
    assert details == {"used_bytes": used, "budget_bytes": budget, "percent": status.percent, "level": "warning"}


@pytest.mark.usefixtures("some_records")
def test_near_the_limit_the_alert_is_critical(caplog):
    """V-222483, escalated: from 95% (here: a budget smaller than the use) the alert is CRITICAL."""
    with caplog.at_level(logging.WARNING, logger="appliance.audit"):
        status = check_audit_storage(budget_bytes=1)
    assert status.level == "critical"
    assert len(_alerts(caplog, logging.CRITICAL)) == 1
    assert AuditRecord.objects.filter(action="audit.storage_warning").count() == 1


@pytest.mark.usefixtures("some_records")
def test_the_command_exits_non_zero_at_the_threshold_so_a_timer_shows_it(settings, capsys):
    """V-222483 from a periodic timer: `manage.py audit_db storage` fails when the alert is raised."""
    settings.AUDIT_STORAGE_BUDGET_MB = 10_240
    call_command("audit_db", "storage")
    assert "ok" in capsys.readouterr().out
    settings.AUDIT_STORAGE_BUDGET_MB = 1
    used = audit_storage_used()
    if used * 100 // (1024 * 1024) < 75:  # the configured floor is 1 MB: pass a budget the tables exceed instead
        with transaction.atomic():
            for number in range(1 + (800_000 - used) // 1200):
                record(action="probe.write", details={"n": number, "text": "z" * 1000})
    with pytest.raises(CommandError, match=r"audit storage: .* bytes"):
        call_command("audit_db", "storage")
