"""deploy/verify-bundle accepts only a bundle whose files are exactly those its release key signed.

STIG: V-222513 (no component is installed without verifying its digital signature) and V-222645 (files are
cryptographically hashed before they are deployed). The bundles here are small but real: sealed by
`deploy/build-bundle seal` (the same code that seals `make bundle`), packed as the same tar, and checked by running
the verifier as an operator would, in a separate process.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "deploy" / "build-bundle"
VERIFY = REPO / "deploy" / "verify-bundle"


@dataclass(frozen=True)
class Sealed:
    folder: Path
    archive: Path
    public_key: Path
    private_key: Path


def _run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *map(str, argv)], capture_output=True, text=True, check=False)


def _verify(bundle: Path, key: Path, *extra: str | Path) -> subprocess.CompletedProcess[str]:
    return _run(VERIFY, "--key", key, bundle, *extra)


def _seal(folder: Path, key: Path, public_key: Path, archive: Path) -> None:
    result = _run(BUILD, "seal", folder, "--key", key, "--public-key", public_key, "--archive", archive)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def sealed(tmp_path: Path) -> Sealed:
    folder = tmp_path / "appliance-9.9.9"
    (folder / "wheelhouse").mkdir(parents=True)
    (folder / "wheelhouse" / "appliance-9.9.9-py3-none-any.whl").write_bytes(bytes(range(256)) * 64)
    (folder / "requirements.txt").write_text("appliance==9.9.9 --hash=sha256:00\n")
    (folder / "ansible" / "roles").mkdir(parents=True)
    (folder / "ansible" / "site.yml").write_text("---\n- name: Install\n  hosts: all\n")
    (folder / "VERSION").write_text("9.9.9\n")
    bundle = Sealed(
        folder, tmp_path / "appliance-9.9.9.tar", tmp_path / "release.pub", tmp_path / "keys" / "release.pem"
    )
    _seal(folder, bundle.private_key, bundle.public_key, bundle.archive)
    return bundle


def test_a_sealed_bundle_verifies_as_archive_and_as_folder(sealed: Sealed):
    """V-222513: the signed archive and its folder pass, naming the number of files and the key."""
    for bundle in (sealed.archive, sealed.folder):
        result = _verify(bundle, sealed.public_key)
        assert result.returncode == 0, result.stderr
        assert "4 files match SHA256SUMS" in result.stdout
    assert sealed.private_key.stat().st_mode & 0o777 == 0o600
    assert sealed.private_key.parent.stat().st_mode & 0o777 == 0o700


def test_one_changed_byte_in_the_archive_is_refused(sealed: Sealed):
    """V-222645: flipping a single byte of one file inside the tar is found and the file is named."""
    with tarfile.open(sealed.archive) as tar:
        member = tar.getmember("appliance-9.9.9/wheelhouse/appliance-9.9.9-py3-none-any.whl")
        offset = member.offset_data + 1000
    data = bytearray(sealed.archive.read_bytes())
    data[offset] ^= 0x01
    sealed.archive.write_bytes(bytes(data))

    result = _verify(sealed.archive, sealed.public_key)

    assert result.returncode == 1
    assert "REFUSED" in result.stderr
    assert "differ from their SHA-256" in result.stderr
    assert "wheelhouse/appliance-9.9.9-py3-none-any.whl" in result.stderr


def test_one_changed_byte_in_an_unpacked_file_is_refused(sealed: Sealed):
    """V-222645: the same check on an unpacked folder."""
    path = sealed.folder / "ansible" / "site.yml"
    path.write_bytes(path.read_bytes().replace(b"all", b"alL"))
    result = _verify(sealed.folder, sealed.public_key)
    assert result.returncode == 1
    assert "ansible/site.yml" in result.stderr


def test_a_missing_file_is_refused(sealed: Sealed, tmp_path: Path):
    """V-222645: a file listed in SHA256SUMS but absent from the archive is named."""
    smaller = tmp_path / "smaller.tar"
    with tarfile.open(sealed.archive) as source, tarfile.open(smaller, "w") as dest:
        for member in source:
            if member.name != "appliance-9.9.9/VERSION":
                dest.addfile(member, source.extractfile(member) if member.isfile() else None)

    result = _verify(smaller, sealed.public_key)

    assert result.returncode == 1
    assert "missing: VERSION" in result.stderr


def test_an_added_file_is_refused(sealed: Sealed):
    """V-222513: a file nobody signed (a planted wheel) is refused even though every listed file matches."""
    (sealed.folder / "wheelhouse" / "evil-1.0-py3-none-any.whl").write_bytes(b"PK")
    result = _verify(sealed.folder, sealed.public_key)
    assert result.returncode == 1
    assert "not listed in SHA256SUMS: wheelhouse/evil-1.0-py3-none-any.whl" in result.stderr


def test_a_bundle_signed_by_another_key_is_refused(sealed: Sealed, tmp_path: Path):
    """V-222513: a self-consistent bundle (sums and signature match each other) sealed with a key other than the
    pinned release key is refused."""
    other = tmp_path / "other"
    _seal(sealed.folder, tmp_path / "other-keys" / "key.pem", tmp_path / "other.pub", other.with_suffix(".tar"))
    assert _verify(other.with_suffix(".tar"), tmp_path / "other.pub").returncode == 0  # valid under its own key

    result = _verify(other.with_suffix(".tar"), sealed.public_key)

    assert result.returncode == 1
    assert "does not verify with release key" in result.stderr


def test_a_rewritten_sums_file_is_refused(sealed: Sealed):
    """V-222513: changing a file and its line in SHA256SUMS together breaks the signature."""
    path = sealed.folder / "VERSION"
    path.write_text("6.6.6\n")
    sums = sealed.folder / "SHA256SUMS"
    lines = [
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  VERSION" if line.endswith("  VERSION") else line
        for line in sums.read_text().splitlines()
    ]
    sums.write_text("\n".join(lines) + "\n")

    result = _verify(sealed.folder, sealed.public_key)

    assert result.returncode == 1
    assert "does not verify" in result.stderr


def test_a_link_in_the_archive_is_refused(sealed: Sealed, tmp_path: Path):
    """A symlink member could point an install outside the bundle; a bundle holds plain files only."""
    linked = tmp_path / "linked.tar"
    with tarfile.open(sealed.archive) as source, tarfile.open(linked, "w") as dest:
        for member in source:
            dest.addfile(member, source.extractfile(member) if member.isfile() else None)
        link = tarfile.TarInfo("appliance-9.9.9/ansible/roles/escape")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc"
        dest.addfile(link)

    result = _verify(linked, sealed.public_key)

    assert result.returncode == 1
    assert "is a link or special file" in result.stderr


def test_extract_unpacks_only_a_verified_archive(sealed: Sealed, tmp_path: Path):
    """V-222513: --extract writes the verified files and checks them again; a refused archive writes nothing."""
    result = _verify(sealed.archive, sealed.public_key, "--extract", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "appliance-9.9.9" / "VERSION").read_text() == "9.9.9\n"

    data = bytearray(sealed.archive.read_bytes())
    with tarfile.open(sealed.archive) as tar:
        data[tar.getmember("appliance-9.9.9/VERSION").offset_data] ^= 0x01
    sealed.archive.write_bytes(bytes(data))
    refused = _verify(sealed.archive, sealed.public_key, "--extract", tmp_path / "refused")
    assert refused.returncode == 1
    assert not (tmp_path / "refused").exists()
