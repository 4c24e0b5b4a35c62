"""ACM's records and the X.509 behind them.

A requested certificate is ISSUED as soon as it is requested: unkai has no DNS or mailbox
for ACM to validate against, and what a local system needs is a certificate that is there
(an API Gateway custom domain names it; Terraform's ``aws_acm_certificate_validation``
waits for ISSUED). Each one is signed by a root made for it alone, so no signing key has to
be kept: the leaf and its chain are stored as PEM in the row, and the keys are dropped
(ACM never hands out the private key of a certificate it issued). The validation records
have AWS's shape (a ``_<hash>.<domain>.`` CNAME to ``acm-validations.aws.``) so a
configuration that writes them to Route 53 reads the values it expects.
``cryptography`` is imported on first use.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

MIGRATIONS = [
    """
    CREATE TABLE acm_certificates (
        arn TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        detail TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '{}',
        certificate TEXT NOT NULL,
        chain TEXT NOT NULL,
        token TEXT
    );
    CREATE INDEX acm_certificates_owner ON acm_certificates(account, region);
    """
]

# AWS issues certificates valid for 395 days (13 months)
VALIDITY = dt.timedelta(days=395)


@dataclass
class Certificate:
    arn: str
    detail: dict[str, Any]
    tags: dict[str, str]
    certificate: str
    chain: str


def load(row: tuple) -> Certificate:
    return Certificate(row[0], json.loads(row[1]), json.loads(row[2]), row[3], row[4])


def validation_record(domain: str, arn: str) -> dict[str, str]:
    """The CNAME ACM asks to be created for DNS validation, stable for a certificate and domain."""
    bare = domain.removeprefix("*.")  # a wildcard is validated by its base domain's record, as on AWS
    name = hashlib.md5(f"{arn}|{bare}|name".encode()).hexdigest()
    value = hashlib.md5(f"{arn}|{bare}|value".encode()).hexdigest()
    return {"Name": f"_{name}.{bare}.", "Type": "CNAME",
            "Value": f"_{value}.{hashlib.md5(bare.encode()).hexdigest()[:10]}.acm-validations.aws."}


def _key(algorithm: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    curves = {"EC_prime256v1": ec.SECP256R1, "EC_secp384r1": ec.SECP384R1, "EC_secp521r1": ec.SECP521R1}
    if algorithm in curves:
        return ec.generate_private_key(curves[algorithm]())
    bits = {"RSA_1024": 1024, "RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}.get(algorithm, 2048)
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def issue(domain: str, names: list[str], algorithm: str, now: dt.datetime) -> tuple[str, str, dict[str, Any]]:
    """A leaf for ``domain`` (and every name in ``names``) and its root: (leaf PEM, chain PEM, facts)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "unkai"),
                           x509.NameAttribute(NameOID.COMMON_NAME, "unkai local ACM root")])
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + VALIDITY + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(root_key, hashes.SHA256()))
    key = _key(algorithm)
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)]))
            .issuer_name(root_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(root_key, hashes.SHA256()))
    pem = leaf.public_bytes(serialization.Encoding.PEM).decode()
    chain = root.public_bytes(serialization.Encoding.PEM).decode()
    return pem, chain, facts(leaf)


def facts(cert: Any) -> dict[str, Any]:
    """What DescribeCertificate reports about an X.509 certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        algorithm = f"RSA_{key.key_size}"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        algorithm = {"secp256r1": "EC_prime256v1", "secp384r1": "EC_secp384r1",
                     "secp521r1": "EC_secp521r1"}.get(key.curve.name, key.curve.name)
    else:
        algorithm = "RSA_2048"
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    common = [a.value for a in cert.subject if a.oid == x509.oid.NameOID.COMMON_NAME]
    serial = f"{cert.serial_number:x}"
    serial = "0" * (len(serial) % 2) + serial
    serial = ":".join(serial[i:i + 2] for i in range(0, len(serial), 2))
    return {"Serial": serial, "Subject": cert.subject.rfc4514_string(), "Issuer": cert.issuer.rfc4514_string(),
            "NotBefore": cert.not_valid_before_utc.timestamp(), "NotAfter": cert.not_valid_after_utc.timestamp(),
            "KeyAlgorithm": algorithm, "SignatureAlgorithm": cert.signature_hash_algorithm.name.upper() +
            ("WITHRSA" if algorithm.startswith("RSA") else "WITHECDSA"),
            "DomainName": str(common[0]) if common else (names[0] if names else ""), "Names": list(names)}


def read_pem(pem: bytes) -> Any:
    """The certificate in ``pem`` (ValueError when it is not one)."""
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem)
