"""The KEK inside a real PKCS#11 token (SoftHSM2): it never leaves the token, yet wraps what the vault needs.

V-222583 / V-222572: the KEK lives in, and wrapping runs inside, a cryptographic module. V-222555: the vault
authenticates to the module with a PIN read from an owner-only file, and a wrong PIN gets nothing. V-222589:
blobs stay readable across a rotation from a file KEK into the HSM.

The token is created in a temporary folder (SOFTHSM2_CONF); the library reads that variable when it is loaded,
so the fixture unloads it afterwards, and every PKCS#11 test lives in this one module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.exceptions import AttributeSensitive, KeyUnextractable

from appliance.lib.config import ConfigError
from appliance.vault.actions import create_data_key, rotate_kek
from appliance.vault.blobs import put, read
from appliance.vault.keys import (
    FileKeyProvider,
    KeyProviderError,
    Pkcs11KeyProvider,
    configured_provider,
    generate_pkcs11_kek,
)
from tests.vault.conftest import IMAGE, vault_records

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
TOKEN = "vault-test"
PIN = "4711-pin"
SO_PIN = "so-12345678"

pytestmark = pytest.mark.skipif(
    not MODULE.exists() or shutil.which("softhsm2-util") is None,
    reason=f"SoftHSM2 is not installed ({MODULE}); apt-get install softhsm2",
)


@dataclass(frozen=True)
class Token:
    module: Path
    label: str
    pin: str
    pin_file: Path

    def provider(self, key_label: str) -> Pkcs11KeyProvider:
        return Pkcs11KeyProvider(module=self.module, token_label=self.label, pin=self.pin, key_label=key_label)

    def open(self):
        return pkcs11.lib(str(self.module)).get_token(token_label=self.label).open(rw=True, user_pin=self.pin)


@pytest.fixture(scope="module")
def token(tmp_path_factory) -> Iterator[Token]:
    """A fresh SoftHSM2 token in a folder of this module's own, holding one non-extractable KEK, "kek-1"."""
    home = tmp_path_factory.mktemp("hsm")
    (home / "tokens").mkdir()
    conf = home / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {home / 'tokens'}\nobjectstore.backend = file\n")
    pin_file = home / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(conf))
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--so-pin", SO_PIN, "--pin", PIN],
            check=True,
            capture_output=True,
        )
        generate_pkcs11_kek(module=MODULE, token_label=TOKEN, pin=PIN, key_label="kek-1")
        try:
            yield Token(MODULE, TOKEN, PIN, pin_file)
        finally:
            # pytest-django runs this module's database tests apart from the others, so this fixture may be set up
            # twice; unloading makes the library read the next token folder's SOFTHSM2_CONF.
            pkcs11.unload(str(MODULE))


def test_the_kek_cannot_be_read_or_exported_from_the_token(token):
    with token.open() as hsm:
        kek = hsm.get_key(object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label="kek-1")
        assert kek[Attribute.SENSITIVE] is True
        assert kek[Attribute.EXTRACTABLE] is False
        with pytest.raises(AttributeSensitive):
            kek[Attribute.VALUE]
        with pytest.raises(KeyUnextractable):
            kek.wrap_key(kek)


def test_wrap_and_unwrap_run_inside_the_token(token):
    provider = token.provider("kek-1")
    dek = os.urandom(32)
    wrapped = provider.wrap(dek)
    assert len(wrapped) == 40
    assert dek not in wrapped
    assert provider.unwrap(wrapped) == dek


def test_the_token_leaves_no_copy_of_a_data_key_behind(token):
    provider = token.provider("kek-1")
    with token.open() as hsm:
        before = sum(1 for _ in hsm.get_objects())
    provider.unwrap(provider.wrap(os.urandom(32)))
    with token.open() as hsm:
        assert sum(1 for _ in hsm.get_objects()) == before


def test_a_known_kek_gives_the_same_wrapping_and_key_id_in_a_file_and_in_the_token(token, tmp_path):
    """AES key wrap is RFC 3394 on both sides: a KEK moved from a file into an HSM keeps its id and its keys."""
    kek = os.urandom(32)
    path = tmp_path / "kek"
    path.write_bytes(kek)
    path.chmod(0o600)
    with token.open() as hsm:
        hsm.create_object(
            {
                Attribute.CLASS: ObjectClass.SECRET_KEY,
                Attribute.KEY_TYPE: KeyType.AES,
                Attribute.VALUE: kek,
                Attribute.LABEL: "imported",
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.WRAP: True,
                Attribute.UNWRAP: True,
            }
        )
    in_file, in_token = FileKeyProvider(path), token.provider("imported")
    assert in_file.key_id == in_token.key_id
    dek = os.urandom(32)
    assert in_token.wrap(dek) == in_file.wrap(dek)
    assert in_file.unwrap(in_token.wrap(dek)) == dek


def test_a_wrong_pin_gets_nothing_and_is_not_repeated_in_the_error(token):
    with pytest.raises(KeyProviderError, match="PinIncorrect") as caught:
        Pkcs11KeyProvider(module=token.module, token_label=token.label, pin="0000-wrong", key_label="kek-1")
    assert "0000-wrong" not in str(caught.value)
    assert PIN not in str(caught.value)


def test_a_missing_kek_label_is_refused_naming_it(token):
    with pytest.raises(KeyProviderError, match=r"'no-such-kek'.*NoSuchKey"):
        token.provider("no-such-kek")


def test_an_extractable_key_is_refused_as_a_kek(token):
    with token.open() as hsm:
        hsm.generate_key(
            KeyType.AES,
            256,
            label="leaky",
            store=True,
            template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True, Attribute.WRAP: True},
        )
    with pytest.raises(KeyProviderError, match="extractable"):
        token.provider("leaky")


def test_generating_a_kek_never_shadows_an_existing_label(token):
    with pytest.raises(KeyProviderError, match="already holds"):
        generate_pkcs11_kek(module=token.module, token_label=token.label, pin=token.pin, key_label="kek-1")


def test_a_foreign_wrapped_key_does_not_unwrap(token):
    with pytest.raises(KeyProviderError, match="does not unwrap"):
        token.provider("kek-1").unwrap(os.urandom(40))


def test_the_provider_never_shows_its_pin(token):
    shown = repr(token.provider("kek-1"))
    assert token.pin not in shown
    assert "kek-1" in shown


@pytest.mark.django_db
def test_the_configured_provider_reads_the_pin_from_an_owner_only_file(token, settings, vault_dirs):
    settings.VAULT_PROVIDER = "pkcs11"
    settings.VAULT_PKCS11 = {
        "module": token.module,
        "token": token.label,
        "pin_file": token.pin_file,
        "key_label": "kek-1",
    }
    provider = configured_provider()
    assert provider.name == "pkcs11"
    assert provider.key_id == token.provider("kek-1").key_id
    key = create_data_key(purpose="dataset:1")
    assert key.kek_provider == "pkcs11"
    stored = put(key=key, identity=IMAGE, chunks=[b"imagery under the HSM"])
    assert read(key=key, identity=IMAGE, blob_id=stored.blob_id) == b"imagery under the HSM"

    exposed = token.pin_file.with_name("pin-exposed")
    exposed.write_text(token.pin)
    exposed.chmod(0o644)
    settings.VAULT_PKCS11 = {**settings.VAULT_PKCS11, "pin_file": exposed}
    with pytest.raises(ConfigError, match=r"vault\.pkcs11_pin_file"):
        configured_provider()


@pytest.mark.django_db
def test_rotating_from_a_file_kek_into_the_token_keeps_blobs_readable_and_is_audited(token, vault_dirs, file_kek):
    payload = os.urandom(70_000)
    key = create_data_key(purpose="dataset:1", provider=file_kek)
    stored = put(key=key, identity=IMAGE, chunks=[payload], provider=file_kek, segment_size=16 * 1024)
    hsm = token.provider("kek-1")

    assert rotate_kek(old=file_kek, new=hsm) == {"rewrapped": 1, "already_current": 0, "destroyed": 0}

    key.refresh_from_db()
    assert (key.kek_provider, key.kek_id) == ("pkcs11", hsm.key_id)
    assert read(key=key, identity=IMAGE, blob_id=stored.blob_id, provider=hsm) == payload
    details = vault_records("vault.kek.rotate")[-1]["details"]
    assert (details["old_kek_provider"], details["new_kek_provider"]) == ("file", "pkcs11")
    assert (details["old_kek_id"], details["new_kek_id"]) == (file_kek.key_id, hsm.key_id)
