"""Export: the auditor downloads a bundle (.tar.gz) that verifies offline with the audit kit alone; nothing stays
on the appliance's disk, and the export is recorded by the exporter.

STIG: V-222503 (audit tools for auditors only), V-222507 (the bundle's integrity is checkable off the appliance).
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from appliance.auditlog.models import AuditRecord
from appliance.auditlog.recorder import record
from audit.bundle import verify_bundle
from tests.conftest import sign_in


@pytest.fixture
def some_records(db) -> None:
    for index in range(12):
        record(action="test.event", object_id=str(index))


def _extract(content: bytes, into: Path) -> Path:
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as tar:
        tar.extractall(into, filter="data")
    [bundle] = list(into.iterdir())
    return bundle


@pytest.mark.parametrize(("url", "component"), [("auditlog:export", "web"), ("auditlog-api:export", "api")])
def test_the_download_is_a_bundle_that_verifies_offline(client, auditor, some_records, tmp_path, url, component):
    sign_in(client, auditor)
    response = (
        client.post(reverse(url), content_type="application/json") if component == "api" else client.post(reverse(url))
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/gzip"
    assert "no-store" in response["Cache-Control"]
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert ".tar.gz" in disposition
    bundle = _extract(b"".join(response.streaming_content), tmp_path)
    report = verify_bundle(bundle)
    exported = AuditRecord.objects.get(action="audit.export")
    assert report.end == exported.seq + 1  # every record up to and including the export's own
    body = json.loads(exported.canonical)
    assert (body["actor"], body["component"]) == ("aud", component)


def test_no_copy_of_the_log_is_left_on_disk(client, auditor, some_records):
    sign_in(client, auditor)
    response = client.post(reverse("auditlog:export"))
    b"".join(response.streaming_content)
    response.close()
    exports = Path(settings.DATA_DIR) / "exports"
    assert not any(exports.iterdir())


def test_the_export_page_explains_and_offers_the_download(client, auditor):
    sign_in(client, auditor)
    html = client.get(reverse("auditlog:export")).content.decode()
    assert "python -m audit verify BUNDLE" in html
    assert 'method="post"' in html
