"""An import killed with SIGKILL half-way through an archive leaves nothing readable behind, no row, and can be
run again (V-222589: plaintext never on disk; all or nothing).

The import runs as a real `manage.py datasets import` process on an appliance of its own (a fresh data folder
with its own SQLite database and KEK), killed once it has written some blobs; then the same commands an operator
would run: `datasets gc`, and the import again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.datasets.imagery import image_bytes

ROOT = Path(__file__).resolve().parents[2]
SETUP = """
from appliance.accounts.models import User
from appliance.auditlog.context import AuditContext, audit_context
from appliance.datasets.actions import create_dataset
with audit_context(AuditContext(component="cli", actor="test")):
    owner = User.objects.create(username="owner", roles=["manager"], clearance="SECRET", compartments=[])
    create_dataset(owner, name="scans", classification="SECRET", compartments=[])
"""


def _manage(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=check
    )


@pytest.fixture
def appliance(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["APPLIANCE_PATHS_DATA_DIR"] = str(tmp_path / "data")
    _manage(env, "migrate", "--no-input")
    _manage(env, "shell", "-c", SETUP)
    return env


def _archive(path: Path, count: int) -> Path:
    with tarfile.open(path, "w") as archive:
        for index in range(count):
            member = path.parent / f"scan{index:03d}.png"
            member.write_bytes(image_bytes(index, "PNG", size=(200, 150)))
            archive.add(member, arcname=member.name)
    return path


def _blob_files(data: Path) -> list[Path]:
    return [path for path in (data / "blobs").rglob("*") if path.is_file()]


def test_a_killed_import_leaves_no_row_and_no_readable_plaintext_and_runs_again(appliance, tmp_path: Path) -> None:
    archive = _archive(tmp_path / "scans.tar", 30)
    data = Path(appliance["APPLIANCE_PATHS_DATA_DIR"])
    process = subprocess.Popen(
        [sys.executable, "manage.py", "datasets", "import", "scans", str(archive), "--as", "owner"],
        cwd=ROOT,
        env=appliance,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while len(_blob_files(data)) < 6 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the import finished before it could be killed: make the archive larger"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    listing = _manage(appliance, "datasets", "list").stdout
    assert "\t0 items\t" in listing  # the rows commit only with the whole import
    left = _blob_files(data)
    assert left, "the kill came after blobs were written"
    originals = [image_bytes(index, "PNG", size=(200, 150)) for index in range(30)]
    windows = {raw[start : start + 32] for raw in originals for start in range(0, len(raw) - 32, 97)}
    for path in left:
        content = path.read_bytes()
        assert not any(window in content for window in windows), f"plaintext in {path}"

    swept = _manage(appliance, "datasets", "gc", "--older-than-hours", "0").stdout
    assert "removed" in swept
    assert _blob_files(data) == []

    _manage(appliance, "datasets", "import", "scans", str(archive), "--as", "owner")
    assert "\t30 items\t" in _manage(appliance, "datasets", "list").stdout
