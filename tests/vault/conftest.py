"""Vault fixtures: a KEK file and a blob folder of each test's own, and the records the vault appends.

Everything is real: real KEK files with real modes, real blob files, the real actions with their audit records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from appliance.auditlog.models import AuditRecord
from appliance.vault.keys import FileKeyProvider, generate_kek_file
from appliance.vault.stream import BlobIdentity


@pytest.fixture
def vault_dirs(settings, tmp_path: Path) -> Path:
    """Point the configured KEK file and blob folder into this test's tmp_path (development mode generates the
    KEK on first use there)."""
    settings.VAULT_PROVIDER = "file"
    settings.VAULT_PKCS11 = None
    settings.VAULT_KEK_FILE = tmp_path / "keys" / "vault-kek"
    settings.VAULT_BLOB_DIR = tmp_path / "blobs"
    return tmp_path


@pytest.fixture
def file_kek(tmp_path: Path) -> FileKeyProvider:
    return FileKeyProvider(generate_kek_file(tmp_path / "kek-a"))


@pytest.fixture
def other_kek(tmp_path: Path) -> FileKeyProvider:
    return FileKeyProvider(generate_kek_file(tmp_path / "kek-b"))


IMAGE = BlobIdentity(dataset="dataset:1", item="item:10", kind="image")


def vault_records(prefix: str = "vault.") -> list[dict[str, Any]]:
    """The bodies of the vault's audit records, oldest first."""
    rows = AuditRecord.objects.filter(action__startswith=prefix).order_by("seq")
    return [json.loads(row.canonical) for row in rows]


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())
