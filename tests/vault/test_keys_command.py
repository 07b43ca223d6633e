"""`manage.py keys`: the operator sees the KEK by id only, and a rotation through it is audited as the operator.

V-222589: data keys move to a new KEK without a readable blob becoming unreadable. V-222444: nothing the
command prints or records carries key bytes.
"""

from __future__ import annotations

import getpass
import io
import os
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from appliance.vault.actions import create_data_key, destroy_data_key
from appliance.vault.blobs import blob_path, put, read
from appliance.vault.keys import FileKeyProvider, configured_provider
from tests.vault.conftest import IMAGE, vault_records

pytestmark = pytest.mark.django_db


def keys(*args: str) -> str:
    out = io.StringIO()
    call_command("keys", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_status_names_the_kek_by_id_and_counts_keys(vault_dirs, settings):
    create_data_key(purpose="dataset:1")
    destroy_data_key(key=create_data_key(purpose="dataset:2"), reason="deleted")
    output = keys("status")
    provider = configured_provider()
    assert f"configured KEK: file {provider.key_id}" in output
    assert f"live data keys under {provider.key_id}: 1" in output
    assert "destroyed data keys: 1" in output
    assert settings.VAULT_KEK_FILE.read_bytes().hex() not in output


def test_rotate_kek_through_the_command_keeps_blobs_readable_and_records_the_operator(vault_dirs, settings):
    key = create_data_key(purpose="dataset:1")
    stored = put(key=key, identity=IMAGE, chunks=[b"pixels"])
    new_path = vault_dirs / "keys" / "vault-kek-2"

    output = keys("rotate-kek", "--new-kek-file", str(new_path), "--generate")

    new = FileKeyProvider(new_path)
    assert "1 data keys rewrapped" in output
    assert new.key_id in output
    body = vault_records("vault.kek.rotate")[-1]
    assert body["actor"] == f"os:{getpass.getuser()}"
    assert body["component"] == "cli"
    # Until the configuration names the new KEK, status says the keys are not under the configured one.
    with pytest.raises(CommandError, match=new.key_id):
        keys("status")
    settings.VAULT_KEK_FILE = new_path
    key.refresh_from_db()
    assert read(key=key, identity=IMAGE, blob_id=stored.blob_id) == b"pixels"
    assert f"live data keys under {new.key_id}: 1" in keys("status")


def test_rotate_kek_refuses_an_exposed_new_kek_file(vault_dirs):
    create_data_key(purpose="dataset:1")
    exposed = vault_dirs / "exposed-kek"
    exposed.write_bytes(os.urandom(32))
    exposed.chmod(0o640)
    with pytest.raises(CommandError, match="0640"):
        keys("rotate-kek", "--new-kek-file", str(exposed))
    assert vault_records("vault.kek.rotate") == []


def test_rotate_kek_to_a_pkcs11_label_needs_the_pkcs11_provider(vault_dirs):
    with pytest.raises(CommandError, match=r"vault\.provider = 'pkcs11'"):
        keys("rotate-kek", "--new-pkcs11-key-label", "kek-2")


def test_sweep_orphans_removes_only_old_partial_files(vault_dirs):
    stored = put(key=create_data_key(purpose="dataset:1"), identity=IMAGE, chunks=[b"kept"])
    folder = blob_path(stored.blob_id).parent
    old, young = folder / "a.partial", folder / "b.partial"
    old.write_bytes(b"ciphertext")
    young.write_bytes(b"ciphertext")
    then = time.time() - 3 * 3600
    os.utime(old, (then, then))
    output = keys("sweep-orphans", "--older-than-minutes", "60")
    assert "1 partial blob file(s) removed" in output
    assert not old.exists()
    assert young.exists()
    assert blob_path(stored.blob_id).exists()
