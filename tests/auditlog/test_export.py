"""`manage.py audit export` writes a bundle that the auditor's kit verifies off the appliance, and is audited.

STIG: V-222481 (audit records off-loaded to a different system), V-222507 (the bundle carries the signed
checkpoints, so the off-loaded copy is verifiable), and the export itself is an audited privileged action.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from appliance.auditlog.checkpoints import make_checkpoint
from appliance.auditlog.export import ExportError, export_bundle
from appliance.auditlog.models import AuditCheckpoint, AuditRecord
from appliance.auditlog.recorder import record
from audit.bundle import verify_bundle

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def key_dir(settings, tmp_path: Path) -> Path:
    settings.KEY_DIR = tmp_path / "keys"
    return settings.KEY_DIR


def append(count: int) -> None:
    for _ in range(count):
        with transaction.atomic():
            record(action="session.test", details={"n": AuditRecord.objects.count()})


@pytest.fixture
def log() -> None:
    append(5)
    make_checkpoint(force=True)
    append(5)
    make_checkpoint(force=True)
    append(3)  # not yet covered: the export's checkpoint covers them


def last_line(bundle: Path) -> dict:
    return json.loads((bundle / "records.jsonl").read_bytes().splitlines()[-1])


@pytest.mark.usefixtures("log")
def test_a_fresh_export_verifies_with_the_offline_kit(tmp_path):
    bundle = export_bundle(tmp_path / "bundle")
    done = subprocess.run(
        [sys.executable, "-m", "audit", "verify", str(bundle)],
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "OK: log appliance.dev.local: records 0..13 (14), 3 checkpoints" in done.stdout


@pytest.mark.usefixtures("log")
def test_the_export_records_itself_and_the_bundle_covers_that_record(tmp_path):
    bundle = export_bundle(tmp_path / "bundle")
    exported = last_line(bundle)
    assert (exported["seq"], exported["action"]) == (13, "audit.export")
    assert exported["details"] == {"since": 0, "end": 14, "directory": str(tmp_path / "bundle")}
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert (manifest["start"], manifest["end"], manifest["origin"]) == (0, 14, settings.APPLIANCE_ID)
    assert sorted(p.name for p in (bundle / "checkpoints").iterdir())[-1] == f"{14:020d}.note"
    assert verify_bundle(bundle).newest.checkpoint.size == 14


@pytest.mark.parametrize("since", [5, 7, 13])
@pytest.mark.usefixtures("log")
def test_an_export_since_a_record_verifies_from_its_prefix(tmp_path, since):
    """--since between checkpoints: the prefix right edge is rebuilt from the checkpoint before it."""
    bundle = export_bundle(tmp_path / "bundle", since=since)
    report = verify_bundle(bundle)
    assert (report.start, report.end, report.records) == (since, 14, 14 - since)
    assert json.loads((bundle / "prefix.json").read_text())["size"] == since
    assert json.loads((bundle / "records.jsonl").read_bytes().splitlines()[0])["seq"] == since


@pytest.mark.usefixtures("log")
def test_the_command_writes_the_bundle(tmp_path, capsys):
    call_command("audit", "export", str(tmp_path / "out"), "--since", "5")
    assert "python -m audit verify" in capsys.readouterr().out
    assert verify_bundle(tmp_path / "out").start == 5
    assert last_line(tmp_path / "out")["component"] == "cli"


@pytest.mark.usefixtures("log")
def test_an_existing_folder_or_a_since_past_the_end_is_refused_unrecorded(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(ExportError, match="already exists"):
        export_bundle(tmp_path / "taken")
    with pytest.raises(CommandError, match="outside the log"):
        call_command("audit", "export", str(tmp_path / "new"), "--since", "99")
    assert not AuditRecord.objects.filter(action="audit.export").exists()


def test_successive_exports_chain_and_each_shows_the_previous(tmp_path):
    append(2)
    export_bundle(tmp_path / "one")
    second = export_bundle(tmp_path / "two", since=0)
    actions = [json.loads(line)["action"] for line in (second / "records.jsonl").read_bytes().splitlines()]
    assert actions.count("audit.export") == 2
    assert AuditCheckpoint.objects.count() == 2
    verify_bundle(second)
