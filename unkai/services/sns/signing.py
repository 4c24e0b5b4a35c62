"""Message signatures: one RSA key and self-signed certificate per state directory,
made once and kept in the store, so every SNS message carries a Signature that a
handler can verify the way AWS documents (fetch SigningCertURL, rebuild the canonical
string, check SHA1withRSA for SignatureVersion 1 or SHA256withRSA for 2)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import threading
import functools
from typing import TYPE_CHECKING, Any
from concurrent.futures import Future, ThreadPoolExecutor

from unkai.store import Store

if TYPE_CHECKING:  # cryptography is imported where it is used: it is slow to import, and start-up need not wait
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

# AWS signs with 2048-bit keys; a 1024-bit key verifies the same way everywhere (OpenSSL,
# cryptography, Go, Java, Node) and costs a third as much per publish: see docs/sns.md.
KEY_BITS = 1024
_META_KEY = "sns.signing_key"
_META_CERT = "sns.signing_cert"

NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


def canonical(fields: dict[str, str | None]) -> str:
    """AWS's string to sign: each present field as ``Name\\nValue\\n``, in the documented order."""
    names = NOTIFICATION_FIELDS if fields.get("Type") == "Notification" else CONFIRMATION_FIELDS
    return "".join(f"{n}\n{fields[n]}\n" for n in names if fields.get(n) is not None)


_SEALED = "sealed:"


class Signer:
    """The key and certificate; created in the background on first start."""

    def __init__(self, store: Store, sealer: Any = None) -> None:
        self.store = store
        self.sealer = sealer  # the private key is kept sealed (unkai/sealing.py), never in the clear
        self._key: RSAPrivateKey | None = None
        self.cert_pem = b""
        self.cert_name = ""
        self._pending: Future | None = None
        self._lock = threading.Lock()

    async def prepare(self) -> None:
        """Load the key, or make one in a thread without holding up startup, then keep it."""
        key_pem, cert_pem = self.store.get_meta(_META_KEY), self.store.get_meta(_META_CERT)
        if key_pem and cert_pem:
            if key_pem.startswith(_SEALED):
                key_pem = self.sealer.unseal(base64.b64decode(key_pem[len(_SEALED):]), b"sns-signing").decode()
            elif self.sealer is not None:  # kept in the clear by an older unkai: seal it now
                with self.store.transaction():
                    self._save(key_pem.encode(), cert_pem.encode())
            self._load(key_pem.encode(), cert_pem.encode())
            return
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="unkai-sns-key")
        self._pending = pool.submit(_generate)
        pool.shutdown(wait=False)
        asyncio.get_running_loop().create_task(self._keep())

    async def _keep(self) -> None:
        pems = await asyncio.wrap_future(self._pending)  # type: ignore[arg-type]
        with self.store.transaction():
            self._save(*pems)

    def _save(self, key_pem: bytes, cert_pem: bytes) -> None:
        stored = key_pem.decode() if self.sealer is None else \
            _SEALED + base64.b64encode(self.sealer.seal(key_pem, b"sns-signing")).decode()
        self.store.set_meta(_META_KEY, stored)
        self.store.set_meta(_META_CERT, cert_pem.decode())
        if self._key is None:
            self._load(key_pem, cert_pem)

    def _ready(self) -> RSAPrivateKey:
        """The key, waiting for its making if a message needs it sooner."""
        if self._key is None:
            with self._lock:
                if self._key is None:
                    self._save(*(self._pending.result() if self._pending else _generate()))
        return self._key  # type: ignore[return-value]

    def _load(self, key_pem: bytes, cert_pem: bytes) -> None:
        self.cert_pem = cert_pem
        self.cert_name = f"SimpleNotificationService-{hashlib.md5(cert_pem).hexdigest()}.pem"
        from cryptography.hazmat.primitives import serialization

        self._key = serialization.load_pem_private_key(key_pem, password=None)  # type: ignore[assignment]

    def certificate(self) -> tuple[str, bytes]:
        """The certificate's file name and PEM bytes."""
        self._ready()
        return self.cert_name, self.cert_pem

    def sign(self, string_to_sign: str, version: str = "1") -> str:
        key = self._ready()
        pad, hashes = _padding_and_hashes()
        return base64.b64encode(key.sign(string_to_sign.encode(), pad, hashes.get(version, hashes["1"]))).decode()


@functools.cache
def _padding_and_hashes() -> tuple[Any, dict[str, Any]]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return padding.PKCS1v15(), {"1": hashes.SHA1(), "2": hashes.SHA256()}


def _generate() -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "unkai (local Amazon SNS)"),
        x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com"),
    ])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)
