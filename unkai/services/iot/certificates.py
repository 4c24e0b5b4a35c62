"""Real X.509 for IoT: the local certificate authority kept in the state directory, the
certificates CreateKeysAndCertificate and CreateCertificateFromCsr issue from it, and the
reading of certificates clients register.

Why a real CA: devices connect to the MQTT broker over TLS with these certificates, so
they must verify like AWS's do. The CA's key and certificate live in ``<state>/iot/``
(owner-only) and survive resets, so a certificate issued before a snapshot still chains
to the CA after it. Certificate ids are the SHA-256 of the DER bytes, as AWS's are.
``cryptography`` is imported on first use.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path
from typing import Any

from unkai.services.iot import errors

# AWS's own certificates from CreateKeysAndCertificate are valid until the end of 2049.
NOT_AFTER = dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)


class Authority:
    """The local CA: issues device certificates and the broker's server certificate."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._key: Any = None
        self._cert: Any = None

    @property
    def ca_path(self) -> Path:
        self._load()
        return self.directory / "ca.pem"

    def ca_pem(self) -> str:
        return self.ca_path.read_text()

    def _load(self) -> None:
        if self._cert is not None:
            return
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key_path, cert_path = self.directory / "ca.key", self.directory / "ca.pem"
        if key_path.exists() and cert_path.exists():
            self._key = serialization.load_pem_private_key(key_path.read_bytes(), None)
            self._cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "unkai"),
                          x509.NameAttribute(NameOID.COMMON_NAME, "unkai local IoT CA")])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(NOT_AFTER)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                                             key_cert_sign=True, crl_sign=True, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        tmp = key_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        os.replace(tmp, key_path)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._key, self._cert = key, cert

    def _issue(self, public_key: Any, subject: Any, *, server_names: list[str] | None = None) -> Any:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        self._load()
        now = dt.datetime.now(dt.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(self._cert.subject)
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(NOT_AFTER)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                                  critical=False))
        if server_names:
            import ipaddress

            alt: list[Any] = []
            for n in server_names:
                try:
                    alt.append(x509.IPAddress(ipaddress.ip_address(n)))
                except ValueError:
                    alt.append(x509.DNSName(n))
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        return builder.sign(self._key, hashes.SHA256())

    def create_keys_and_certificate(self) -> tuple[str, str, str]:
        """A fresh RSA 2048 key pair and its certificate: (certificate PEM, public PEM, private PEM)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = self._issue(key.public_key(), x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                                           "AWS IoT Certificate")]))
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption()).decode()
        return cert.public_bytes(serialization.Encoding.PEM).decode(), public, private

    def from_csr(self, csr_pem: str) -> str:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode())
        except ValueError:
            raise errors.invalid("The certificate signing request is not valid.") from None
        if not csr.is_signature_valid:
            raise errors.invalid("The certificate signing request is not valid.")
        return self._issue(csr.public_key(), csr.subject).public_bytes(serialization.Encoding.PEM).decode()

    def server_files(self, names: list[str]) -> tuple[Path, Path]:
        """The broker's TLS certificate and key (issued once, for ``names``)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        cert_path, key_path = self.directory / "server.pem", self.directory / "server.key"
        if cert_path.exists() and key_path.exists():
            return cert_path, key_path
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._issue(key.public_key(), x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]),
                           server_names=names)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cert_path, key_path


class Parsed:
    """What unkai keeps of a certificate: id, PEM, validity, issuer and whether it is a CA."""

    def __init__(self, cert: Any) -> None:
        from cryptography.hazmat.primitives import serialization

        self.cert = cert
        der = cert.public_bytes(serialization.Encoding.DER)
        self.id = hashlib.sha256(der).hexdigest()
        self.pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        self.not_before = cert.not_valid_before_utc.timestamp()
        self.not_after = cert.not_valid_after_utc.timestamp()

    def signed_by(self, issuer: "Parsed") -> bool:
        try:
            self.cert.verify_directly_issued_by(issuer.cert)
            return True
        except Exception:  # noqa: BLE001 - any failure means "not issued by it"
            return False


def parse(pem: str) -> Parsed:
    """A certificate from PEM text, or AWS's CertificateValidationException."""
    from cryptography import x509

    try:
        return Parsed(x509.load_pem_x509_certificate((pem or "").strip().encode()))
    except (ValueError, TypeError):
        raise errors.certificate_validation("The certificate is not a valid X.509 certificate.") from None


def parse_der(der: bytes) -> Parsed:
    from cryptography import x509

    return Parsed(x509.load_der_x509_certificate(der))
