"""Release: the two-person rule (requester never approves), the recipient's certificate, CMS EnvelopedData that
`openssl cms -decrypt` opens, plain only where the level's rule allows, every step audited, and nobody without
the data's clearance may request, approve or download.

STIG: V-222425 (authorizations enforced), V-222474 (what, who, outcome recorded), V-222597 (cryptography keeps
an export confidential on its way to the recipient: CMS EnvelopedData to their certificate).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from appliance.access.denial import AccessDenied
from appliance.access.policy import PolicyError
from appliance.exchange.actions import (
    Conflict,
    ExchangeError,
    OwnRequest,
    decide_release,
    download_release,
    enroll_recipient,
    request_release,
    revoke_recipient,
)
from appliance.exchange.jobs import read_export
from appliance.exchange.models import Export, ExportFormat, Recipient, ReleaseState
from appliance.exchange.policy import load_release_rules, release_rules
from tests.datasets.conftest import person
from tests.exchange.conftest import Scene, finished_export
from tests.labeling.conftest import records

UNCLASSIFIED_ROW = "[release]\nUNCLASSIFIED = { two_person = true, plain = true }\n"
POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"


def make_certificate(tmp_path: Path, *, key=None, days: int = 30) -> tuple[str, Path, Path]:
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Partner lab")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    cert_path, key_path = tmp_path / "recipient.pem", tmp_path / "recipient.key"
    cert_path.write_text(pem)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return pem, cert_path, key_path


@pytest.fixture
def admin(db: None):
    return person("sysadmin", "admin", "UNCLASSIFIED", [])


@pytest.fixture
def recipient(admin, tmp_path: Path) -> tuple[Recipient, Path, Path]:
    pem, cert_path, key_path = make_certificate(tmp_path)
    return enroll_recipient(admin, name="Partner lab", certificate_pem=pem), cert_path, key_path


@pytest.fixture
def export(scene: Scene) -> Export:
    return finished_export(scene, ExportFormat.COCO)


def test_two_people_release_an_export_that_openssl_cms_decrypts(scene: Scene, export: Export, recipient) -> None:
    enrolled, cert_path, key_path = recipient
    release = request_release(scene.requester, export=export, recipient=enrolled, reason="model training at partner")
    assert release.state == ReleaseState.REQUESTED
    with pytest.raises(Conflict):
        download_release(scene.requester, release=release)
    approved = decide_release(scene.approver, release=release, approve=True, version=release.version)
    assert approved.state == ReleaseState.APPROVED
    delivery = download_release(scene.requester, release=approved)
    assert delivery.file_name.endswith(".zip.p7m")
    assert b"SECRET//ALPHA" not in delivery.data
    envelope = cert_path.parent / "export.p7m"
    envelope.write_bytes(delivery.data)
    openssl = shutil.which("openssl")
    assert openssl is not None
    opened = subprocess.run(
        [
            openssl,
            "cms",
            "-decrypt",
            "-inform",
            "DER",
            "-in",
            str(envelope),
            "-recip",
            str(cert_path),
            "-inkey",
            str(key_path),
            "-binary",
        ],
        capture_output=True,
        check=True,
    ).stdout
    assert opened == read_export(export)
    assert hashlib.sha256(opened).hexdigest() == export.sha256
    [requested] = records("export.release.request")
    [decided] = records("export.release.approve")
    [downloaded] = records("export.release.download")
    assert requested["details"]["recipient"] == enrolled.fingerprint
    assert decided["object"]["id"] == str(release.pk)
    assert downloaded["details"]["sha256"] == delivery.sha256
    assert downloaded["details"]["export_sha256"] == export.sha256
    assert downloaded["details"]["encrypted_to"] == enrolled.fingerprint
    assert downloaded["label"] == "SECRET//ALPHA"


def test_the_requester_cannot_approve_their_own_request(scene: Scene, export: Export, recipient) -> None:
    release = request_release(scene.requester, export=export, recipient=recipient[0], reason="training")
    with pytest.raises(OwnRequest):
        decide_release(scene.requester, release=release, approve=True, version=release.version)
    release.refresh_from_db()
    assert release.state == ReleaseState.REQUESTED
    [refused] = records("export.release.decide")
    assert refused["outcome"] == "denied"


@pytest.mark.parametrize("who", ["low_manager", "outside_manager"])
def test_nobody_without_the_datas_clearance_or_membership_can_request_approve_or_download(
    scene: Scene, export: Export, recipient, who: str
) -> None:
    stranger = getattr(scene, who)
    with pytest.raises(AccessDenied):
        request_release(stranger, export=export, recipient=recipient[0], reason="x")
    release = request_release(scene.requester, export=export, recipient=recipient[0], reason="training")
    with pytest.raises(AccessDenied):
        decide_release(stranger, release=release, approve=True, version=release.version)
    approved = decide_release(scene.approver, release=release, approve=True, version=release.version)
    with pytest.raises(AccessDenied):
        download_release(stranger, release=approved)
    assert len(records("access.denied")) == 3


def test_only_the_requester_downloads_and_a_second_decision_is_a_conflict(
    scene: Scene, export: Export, recipient
) -> None:
    release = request_release(scene.requester, export=export, recipient=recipient[0], reason="training")
    approved = decide_release(scene.approver, release=release, approve=True, version=release.version)
    with pytest.raises(Conflict):
        decide_release(scene.approver, release=approved, approve=False, version=release.version)
    with pytest.raises(AccessDenied):
        download_release(scene.approver, release=approved)


def test_a_rejected_request_cannot_be_downloaded(scene: Scene, export: Export, recipient) -> None:
    release = request_release(scene.requester, export=export, recipient=recipient[0], reason="training")
    rejected = decide_release(scene.approver, release=release, approve=False, version=release.version)
    assert rejected.state == ReleaseState.REJECTED
    with pytest.raises(Conflict):
        download_release(scene.requester, release=rejected)
    assert len(records("export.release.reject")) == 1


def test_plain_release_is_refused_where_the_levels_rule_forbids_it(scene: Scene, export: Export) -> None:
    with pytest.raises(ExchangeError, match="only encrypted"):
        request_release(scene.requester, export=export, recipient=None, plain=True, reason="training")


def test_a_revoked_recipient_stops_a_delivery(scene: Scene, export: Export, recipient, admin) -> None:
    release = request_release(scene.requester, export=export, recipient=recipient[0], reason="training")
    approved = decide_release(scene.approver, release=release, approve=True, version=release.version)
    revoke_recipient(admin, recipient=recipient[0])
    approved.refresh_from_db()
    with pytest.raises(Conflict, match="revoked"):
        download_release(scene.requester, release=approved)


def test_only_an_admin_enrolls_and_only_a_usable_rsa_certificate(scene: Scene, admin, tmp_path: Path) -> None:
    pem, _, _ = make_certificate(tmp_path)
    with pytest.raises(AccessDenied):
        enroll_recipient(scene.requester, name="x", certificate_pem=pem)
    ec_pem, _, _ = make_certificate(tmp_path, key=ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ExchangeError, match="RSA"):
        enroll_recipient(admin, name="x", certificate_pem=ec_pem)
    with pytest.raises(ExchangeError, match="PEM"):
        enroll_recipient(admin, name="x", certificate_pem="not a certificate")
    enrolled = enroll_recipient(admin, name="x", certificate_pem=pem)
    [entry] = records("export.recipient.enroll")
    assert entry["details"]["fingerprint"] == enrolled.fingerprint
    with pytest.raises(ExchangeError, match="already enrolled"):
        enroll_recipient(admin, name="y", certificate_pem=pem)


def test_the_release_table_must_cover_every_level_with_booleans(tmp_path: Path) -> None:
    levels = ["UNCLASSIFIED", "SECRET"]
    for body, message in (
        ("[release]\nUNCLASSIFIED = { two_person = true, plain = true }\n", "no row"),
        (f'{UNCLASSIFIED_ROW}SECRET = {{ two_person = "yes", plain = false }}\n', "true or false"),
        ("[release]\nUNCLASSIFIED = { two_person = true, plain = true }\nSECRET = { two_person = true }\n", "exactly"),
        ("[release]\nBOGUS = { two_person = true, plain = true }\n", "unknown level"),
    ):
        (tmp_path / "classification.toml").write_text(body)
        with pytest.raises(PolicyError, match=message):
            load_release_rules(tmp_path, levels)
    rules = load_release_rules(POLICY_DIR, ["UNCLASSIFIED", "CUI", "CONFIDENTIAL", "SECRET", "TOP SECRET"])
    assert all(rule.two_person for rule in rules.values())
    assert [level for level, rule in rules.items() if rule.plain] == ["UNCLASSIFIED"]


def test_a_level_whose_rule_waives_the_second_person_is_approved_as_requested(
    scene: Scene, export: Export, recipient, settings, tmp_path: Path
) -> None:
    """The rule is data: with SECRET's `two_person = false` the request is approved when made (and says so)."""
    for name in ("roles.toml", "security.toml"):
        (tmp_path / name).write_bytes((POLICY_DIR / name).read_bytes())
    text = (POLICY_DIR / "classification.toml").read_text()
    (tmp_path / "classification.toml").write_text(
        text.replace("SECRET = { two_person = true, plain = false }", "SECRET = { two_person = false, plain = false }")
    )
    settings.POLICY_DIR = tmp_path
    release_rules.cache_clear()
    try:
        release = request_release(scene.requester, export=export, recipient=recipient[0], reason="training")
    finally:
        release_rules.cache_clear()
    assert release.state == ReleaseState.APPROVED
    assert release.decided_by is None
    assert records("export.release.request")[0]["details"]["two_person"] is False
    assert download_release(scene.requester, release=release).data[:1] == b"\x30"
