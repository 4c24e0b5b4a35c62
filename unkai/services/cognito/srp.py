"""Cognito's SRP-6a, the server side of the exchange Amplify, pycognito and warrant
perform for USER_SRP_AUTH.

The group is RFC 5054's 3072-bit prime with g = 2; hashes are SHA-256 over the
"padded hex" encoding those clients use (an even number of hex digits, with a ``00``
prefix when the top bit is set); the password hash is
``H(salt || H(poolName || userIdForSrp || ":" || password))``, where poolName is the
pool id after its region; the session key is an HKDF of S keyed by u with the info
"Caldera Derived Key". The client proves knowledge of the key with
``HMAC(key, poolName || userIdForSrp || secretBlock || timestamp)``. Only the verifier
``g^x mod N`` and its salt are stored, never the password.
"""

from __future__ import annotations

import hashlib
import hmac
import os

N_HEX = (
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C"
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF"
)
N = int(N_HEX, 16)
G = 2
INFO = b"Caldera Derived Key"


def pad_hex(value: int | str) -> str:
    text = value if isinstance(value, str) else f"{value:x}"
    if len(text) % 2 == 1:
        return "0" + text
    if text and text[0] in "89ABCDEFabcdef":
        return "00" + text
    return text


def _hash_hex(hex_text: str) -> str:
    return hashlib.sha256(bytes.fromhex(hex_text)).hexdigest().rjust(64, "0")


K = int(_hash_hex("00" + N_HEX + "0" + "2"), 16)


def _x(pool_name: str, user_id: str, password: str, salt_hex: str) -> int:
    inner = hashlib.sha256(f"{pool_name}{user_id}:{password}".encode()).hexdigest().rjust(64, "0")
    return int(_hash_hex(pad_hex(salt_hex) + inner), 16)


def verifier(pool_name: str, user_id: str, password: str) -> tuple[str, str]:
    """A fresh (salt hex, verifier hex) for a password."""
    salt = os.urandom(16).hex()
    return salt, f"{pow(G, _x(pool_name, user_id, password, salt), N):x}"


def private_b() -> int:
    """The server's random secret for one exchange."""
    return int.from_bytes(os.urandom(128), "big") % N


def public_b(b: int, verifier_hex: str) -> int:
    return (K * int(verifier_hex, 16) + pow(G, b, N)) % N


def session_key(a_hex: str, b: int, big_b: int, verifier_hex: str) -> bytes | None:
    """The 16-byte key the client derives too; None for an A that SRP must refuse."""
    try:
        big_a = int(a_hex, 16)
    except ValueError:
        return None
    if big_a % N == 0:
        return None
    u = int(_hash_hex(pad_hex(big_a) + pad_hex(big_b)), 16)
    if u == 0:
        return None
    s = pow(big_a * pow(int(verifier_hex, 16), u, N), b, N)
    prk = hmac.new(bytes.fromhex(pad_hex(f"{u:x}")), bytes.fromhex(pad_hex(s)), hashlib.sha256).digest()
    return hmac.new(prk, INFO + b"\x01", hashlib.sha256).digest()[:16]


def claim_signature(key: bytes, pool_name: str, user_id: str, secret_block: bytes, timestamp: str) -> bytes:
    message = pool_name.encode() + user_id.encode() + secret_block + timestamp.encode()
    return hmac.new(key, message, hashlib.sha256).digest()
