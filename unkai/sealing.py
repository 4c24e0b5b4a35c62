"""Secrets at rest: values sealed with a key kept beside the database, never in it.

SSM SecureString values, Secrets Manager secrets, KMS key material and the like are
stored in the state database as ``seal(plaintext)``: AES-256-GCM under a key read from
``<state dir>/sealing.key`` (created on first use, owner-only). A copy of ``unkai.db``
alone, a backup or a stray ``sqlite3`` session, shows no secret. ``context`` binds a
sealed value to where it belongs (for example its ARN), so a row copied elsewhere does
not open.
"""

from __future__ import annotations

import os
from pathlib import Path

KEY_FILE = "sealing.key"
_VERSION = b"\x01"


class Sealer:
    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / KEY_FILE
        self._aead = None

    def _cipher(self):
        if self._aead is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._aead = AESGCM(self._key())
        return self._aead

    def _key(self) -> bytes:
        try:
            key = self.path.read_bytes()
            if len(key) == 32:
                return key
        except FileNotFoundError:
            pass
        key = os.urandom(32)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
        return key

    def seal(self, plaintext: bytes, context: bytes = b"") -> bytes:
        """``plaintext`` encrypted and authenticated (with ``context``) for storage."""
        nonce = os.urandom(12)
        return _VERSION + nonce + self._cipher().encrypt(nonce, plaintext, context or None)

    def unseal(self, blob: bytes, context: bytes = b"") -> bytes:
        """The plaintext of ``seal(plaintext, context)``; raises ``ValueError`` if the blob
        was altered, sealed under another key or for another context."""
        from cryptography.exceptions import InvalidTag

        if not blob.startswith(_VERSION) or len(blob) < 29:
            raise ValueError("not a sealed value")
        try:
            return self._cipher().decrypt(blob[1:13], blob[13:], context or None)
        except InvalidTag:
            raise ValueError("sealed value does not open with this state directory's key") from None
