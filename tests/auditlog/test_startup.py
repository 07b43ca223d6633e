"""Start-up records which policy is in force, by the SHA-256 of each policy file (V-222473, V-222478)."""

from __future__ import annotations

import hashlib

import pytest
from django.conf import settings

from appliance.access.policy import POLICY_FILES
from appliance.auditlog.models import AuditRecord
from appliance.startup import run_startup_checks
from tests.auditlog.helpers import body_of

pytestmark = pytest.mark.django_db


def test_startup_records_the_policy_files_hashes():
    """An auditor can tell exactly which reviewed policy governed every later decision."""
    run_startup_checks(component="web")
    row = AuditRecord.objects.order_by("-seq").first()
    assert row is not None
    body = body_of(row)
    assert (body["action"], body["component"], body["actor"], body["outcome"]) == (
        "policy.load",
        "web",
        "system",
        "ok",
    )
    expected = {name: hashlib.sha256((settings.POLICY_DIR / name).read_bytes()).hexdigest() for name in POLICY_FILES}
    assert body["details"]["files"] == expected
    assert set(expected) == {"roles.toml", "classification.toml", "security.toml"}
