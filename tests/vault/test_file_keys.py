"""The file KEK: refused when others may touch it, wraps with RFC 3394, never shows its bytes.

V-222589 / V-222587: the key that protects stored data is itself protected (owner-only file). V-222444 and
V-222610: no key material in logs, errors or representations.
"""

from __future__ import annotations

import hashlib
import os
import stat

import pytest
from cryptography.hazmat.primitives import keywrap

from appliance.lib.config import ConfigError
from appliance.vault.keys import (
    FileKeyProvider,
    KeyProviderError,
    configured_provider,
    generate_kek_file,
    key_id_from_check_value,
)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o660, 0o644, 0o700 | 0o070])
def test_a_kek_file_that_group_or_others_may_access_is_refused_naming_path_and_mode(tmp_path, mode):
    path = generate_kek_file(tmp_path / "kek")
    path.chmod(mode)
    with pytest.raises(KeyProviderError) as caught:
        FileKeyProvider(path)
    assert str(path) in str(caught.value)
    assert f"{mode:04o}" in str(caught.value)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_an_owner_only_kek_file_is_accepted(tmp_path, mode):
    path = generate_kek_file(tmp_path / "kek")
    path.chmod(mode)
    assert FileKeyProvider(path).key_id


def test_a_generated_kek_file_is_0600_and_holds_32_random_bytes(tmp_path):
    first = generate_kek_file(tmp_path / "keys" / "a")
    second = generate_kek_file(tmp_path / "keys" / "b")
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert stat.S_IMODE(first.parent.stat().st_mode) == 0o700
    assert len(first.read_bytes()) == 32
    assert first.read_bytes() != second.read_bytes()


def test_generating_never_replaces_an_existing_kek(tmp_path):
    path = generate_kek_file(tmp_path / "kek")
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        generate_kek_file(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_a_kek_file_of_the_wrong_size_is_refused(tmp_path, size):
    path = tmp_path / "kek"
    path.write_bytes(os.urandom(size))
    path.chmod(0o600)
    with pytest.raises(KeyProviderError, match="exactly 32 bytes"):
        FileKeyProvider(path)


def test_a_symlinked_kek_file_is_refused(tmp_path):
    target = generate_kek_file(tmp_path / "kek")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(KeyProviderError, match="cannot open"):
        FileKeyProvider(tmp_path / "link")


def test_a_missing_kek_file_is_refused_naming_it(tmp_path):
    with pytest.raises(KeyProviderError, match=str(tmp_path / "absent")):
        FileKeyProvider(tmp_path / "absent")


def test_wrapping_is_rfc_3394_and_unwraps_to_the_same_key(file_kek):
    dek = os.urandom(32)
    wrapped = file_kek.wrap(dek)
    assert len(wrapped) == 40
    assert wrapped != dek
    assert dek not in wrapped
    assert keywrap.aes_key_unwrap(file_kek.path.read_bytes(), wrapped) == dek  # interoperable with any RFC 3394
    assert file_kek.unwrap(wrapped) == dek


def test_a_key_wrapped_under_another_kek_does_not_unwrap(file_kek, other_kek):
    wrapped = other_kek.wrap(os.urandom(32))
    with pytest.raises(KeyProviderError, match=f"does not unwrap under KEK {file_kek.key_id}"):
        file_kek.unwrap(wrapped)


def test_a_tampered_wrapped_key_does_not_unwrap(file_kek):
    wrapped = bytearray(file_kek.wrap(os.urandom(32)))
    wrapped[7] ^= 1
    with pytest.raises(KeyProviderError):
        file_kek.unwrap(bytes(wrapped))


def test_the_key_id_is_a_stable_check_value_and_reveals_no_key_bytes(file_kek, other_kek):
    kek = file_kek.path.read_bytes()
    assert file_kek.key_id == FileKeyProvider(file_kek.path).key_id
    assert file_kek.key_id != other_kek.key_id
    # As docs/formats/blob.md defines it: SHA-256("appliance.vault.kek-id" ‖ 0x00 ‖ AES-KW(KEK, 32 zero bytes)).
    check_value = keywrap.aes_key_wrap(kek, bytes(32))
    assert file_kek.key_id == hashlib.sha256(b"appliance.vault.kek-id\x00" + check_value).hexdigest()[:16]
    assert file_kek.key_id == key_id_from_check_value(check_value)
    assert kek.hex()[:8] not in file_kek.key_id


def test_the_provider_never_shows_its_key(file_kek):
    kek = file_kek.path.read_bytes()
    shown = repr(file_kek) + str(file_kek)
    assert file_kek.key_id in shown
    assert kek.hex() not in shown
    assert repr(kek) not in shown


def test_development_generates_the_configured_kek_on_first_use(vault_dirs, settings):
    assert not settings.VAULT_KEK_FILE.exists()
    provider = configured_provider()
    assert stat.S_IMODE(settings.VAULT_KEK_FILE.stat().st_mode) == 0o600
    assert configured_provider().key_id == provider.key_id


def test_production_never_generates_a_missing_kek(vault_dirs, settings):
    settings.PRODUCTION = True
    with pytest.raises(ConfigError, match=r"vault\.kek_file"):
        configured_provider()
    assert not settings.VAULT_KEK_FILE.exists()


def test_a_kek_file_exposed_after_start_is_noticed(vault_dirs, settings):
    configured_provider()
    settings.VAULT_KEK_FILE.chmod(0o644)
    with pytest.raises(KeyProviderError, match="0644"):
        configured_provider()
