"""Recipient certificates and the CMS envelope an export leaves in.

A recipient is whoever the site's PKI issued an X.509 certificate to; the export is encrypted to that
certificate's RSA public key as CMS EnvelopedData (RFC 5652) with `cryptography`'s PKCS#7 envelope builder,
AES-256-CBC for the content, so the recipient opens it with their private key and `openssl cms -decrypt`
(or any CMS tool). Nothing here holds or sees a private key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7

MIN_RSA_BITS = 2048
MAX_PEM_LENGTH = 20_000


class CertificateError(ValueError):
    """A certificate that cannot be enrolled; the message says why (answered 400)."""

    field = "certificate"


@dataclass(frozen=True)
class Parsed:
    pem: str
    fingerprint: str
    subject: str
    not_after: datetime


def parse(pem: str) -> Parsed:
    if not isinstance(pem, str) or len(pem) > MAX_PEM_LENGTH or "BEGIN CERTIFICATE" not in pem:
        raise CertificateError("give one PEM certificate (-----BEGIN CERTIFICATE-----)")
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise CertificateError(f"not a readable X.509 certificate ({exc})") from None
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise CertificateError("CMS key transport here needs an RSA certificate")
    if key.key_size < MIN_RSA_BITS:
        raise CertificateError(f"the RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} are required")
    now = datetime.now(UTC)
    if certificate.not_valid_after_utc <= now or certificate.not_valid_before_utc > now:
        raise CertificateError("the certificate is not valid now (expired or not yet valid)")
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not (usage.key_encipherment or usage.key_agreement):
        raise CertificateError("the certificate's key usage does not allow key encipherment")
    der = certificate.public_bytes(serialization.Encoding.DER)
    return Parsed(
        pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        fingerprint=hashlib.sha256(der).hexdigest(),
        subject=certificate.subject.rfc4514_string(),
        not_after=certificate.not_valid_after_utc,
    )


def envelope(data: bytes, certificate_pem: str) -> bytes:
    """`data` as DER CMS EnvelopedData to the certificate's holder."""
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    return (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(data)
        .set_content_encryption_algorithm(algorithms.AES256)
        .add_recipient(certificate)
        .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
