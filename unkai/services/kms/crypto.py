"""KMS's cryptography, with the ``cryptography`` library: key material for each key spec,
symmetric ciphertext blobs, RSA encryption, signatures and HMACs.

A symmetric ciphertext blob is ``0x01 | key id (16 bytes) | material version (4 bytes) |
nonce (12) | AES-256-GCM(plaintext)`` with the canonical JSON of the encryption context as
associated data: only the key (and the state directory whose sealer holds its material)
opens it, and a changed context or a flipped bit is InvalidCiphertextException.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
from typing import Any

_BLOB = b"\x01"

SIGNING = {
    "RSA": ["RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512", "RSASSA_PKCS1_V1_5_SHA_256",
            "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512"],
    "ECC_NIST_P256": ["ECDSA_SHA_256"], "ECC_NIST_P384": ["ECDSA_SHA_384"], "ECC_NIST_P521": ["ECDSA_SHA_512"],
    "ECC_SECG_P256K1": ["ECDSA_SHA_256"],
}
RSA_ENCRYPTION = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
MACS = {"HMAC_224": ["HMAC_SHA_224"], "HMAC_256": ["HMAC_SHA_256"], "HMAC_384": ["HMAC_SHA_384"],
        "HMAC_512": ["HMAC_SHA_512"]}
SPECS = ("SYMMETRIC_DEFAULT", "RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
         "ECC_SECG_P256K1", "HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512")


def new_material(spec: str) -> bytes:
    """Fresh key material: 32 random bytes, an HMAC key, or a private key in PKCS#8 DER."""
    if spec == "SYMMETRIC_DEFAULT":
        return os.urandom(32)
    if spec.startswith("HMAC_"):
        return os.urandom(int(spec.split("_")[1]) // 8)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if spec.startswith("RSA_"):
        key: Any = rsa.generate_private_key(public_exponent=65537, key_size=int(spec.split("_")[1]))
    else:
        curve = {"ECC_NIST_P256": ec.SECP256R1(), "ECC_NIST_P384": ec.SECP384R1(), "ECC_NIST_P521": ec.SECP521R1(),
                 "ECC_SECG_P256K1": ec.SECP256K1()}[spec]
        key = ec.generate_private_key(curve)
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _context(context: dict | None) -> bytes:
    if not context:
        return b"{}"
    return json.dumps(context, sort_keys=True, separators=(",", ":")).encode()


@functools.lru_cache(maxsize=256)
def _aead(material: bytes) -> Any:
    """The AES-GCM cipher of one key material, kept for the next call (the key schedule is
    set up once instead of on every Encrypt/Decrypt)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(material)


def encrypt(key_id: str, version: int, material: bytes, plaintext: bytes, context: dict | None) -> bytes:
    nonce = os.urandom(12)
    head = _BLOB + bytes.fromhex(key_id.replace("-", "")) + version.to_bytes(4, "big")  # key ids are UUIDs
    return head + nonce + _aead(material).encrypt(nonce, plaintext, head + _context(context))


def blob_key(blob: bytes) -> tuple[str, int] | None:
    """The key id and material version a symmetric ciphertext blob names, or None."""
    if len(blob) < 1 + 16 + 4 + 12 + 16 or not blob.startswith(_BLOB):
        return None
    h = blob[1:17].hex()  # the key id as uuid.UUID formats it, without building one
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}", int.from_bytes(blob[17:21], "big")


def decrypt(material: bytes, blob: bytes, context: dict | None) -> bytes | None:
    from cryptography.exceptions import InvalidTag

    head, nonce, body = blob[:21], blob[21:33], blob[33:]
    try:
        return _aead(material).decrypt(nonce, body, head + _context(context))
    except (InvalidTag, ValueError):
        return None


def _private(material: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_der_private_key(material, password=None)


def public_key(material: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return _private(material).public_key().public_bytes(serialization.Encoding.DER,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)


def _oaep(algorithm: str) -> Any:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    h = hashes.SHA1() if algorithm == "RSAES_OAEP_SHA_1" else hashes.SHA256()
    return padding.OAEP(mgf=padding.MGF1(algorithm=h), algorithm=h, label=None)


def rsa_encrypt(material: bytes, plaintext: bytes, algorithm: str) -> bytes:
    return _private(material).public_key().encrypt(plaintext, _oaep(algorithm))


def rsa_decrypt(material: bytes, blob: bytes, algorithm: str) -> bytes | None:
    try:
        return _private(material).decrypt(blob, _oaep(algorithm))
    except ValueError:
        return None


def _hash(algorithm: str) -> Any:
    from cryptography.hazmat.primitives import hashes

    return {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[algorithm.rsplit("_", 1)[-1]]


def _sig_args(algorithm: str, digest: bool) -> tuple[Any, Any]:
    from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

    h = _hash(algorithm)
    chosen = utils.Prehashed(h) if digest else h
    if algorithm.startswith("ECDSA"):
        return (ec.ECDSA(chosen),), None
    pad = padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size) if "PSS" in algorithm else padding.PKCS1v15()
    return (pad, chosen), pad


def sign(material: bytes, message: bytes, algorithm: str, digest: bool) -> bytes:
    args, _ = _sig_args(algorithm, digest)
    return _private(material).sign(message, *args)


def verify(material: bytes, message: bytes, signature: bytes, algorithm: str, digest: bool) -> bool:
    from cryptography.exceptions import InvalidSignature

    args, _ = _sig_args(algorithm, digest)
    try:
        _private(material).public_key().verify(signature, message, *args)
        return True
    except (InvalidSignature, ValueError):
        return False


def mac(material: bytes, message: bytes, algorithm: str) -> bytes:
    name = {"HMAC_SHA_224": "sha224", "HMAC_SHA_256": "sha256", "HMAC_SHA_384": "sha384",
            "HMAC_SHA_512": "sha512"}[algorithm]
    return hmac.new(material, message, getattr(hashlib, name)).digest()
