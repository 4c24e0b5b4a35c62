"""SSE-KMS at rest: objects stored with ``aws:kms`` are encrypted with a data key, as S3 does it.

Envelope encryption: when an object is written, KMS makes a fresh 256-bit data key under the
object's KMS key (``new_data_key``, the encryption context ``{"aws:s3:arn": <object ARN>}``, or
the bucket's ARN with an S3 Bucket Key). The bytes go to disk (or into the row) encrypted with
it; only the data key's ciphertext blob is kept, in the object's metadata (``_kms``). Reading
asks KMS to open the blob each time, so a disabled key or one pending deletion makes the object
unreadable (``KMS.DisabledException``, ``KMS.KMSInvalidStateException``) and, under
``--enforce-iam``, the caller needs ``kms:Decrypt`` on the key (``kms:GenerateDataKey`` to write),
with ``kms:ViaService`` set as S3 sets it.

The cipher is AES-256 in counter mode: it keeps an object's length, so ranges, part numbers and
sizes read the stored file at the same offsets, and any range decrypts on its own. Multipart
parts are encrypted with the upload's data key, each from its own random counter, and
re-encrypted into the object's file when the upload completes.
"""

from __future__ import annotations

import base64
import copy
import os
from pathlib import Path
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext
from unkai.services.s3.state import S3Error
from unkai.services.s3.storage import Received

ENVELOPE = "_kms"
BLOCK = 1024 * 1024


def _cipher(data_key: bytes, iv: bytes, offset: int) -> Any:
    """An AES-CTR transformer positioned at byte ``offset`` of a stream that began at ``iv``."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    counter = (int.from_bytes(iv, "big") + offset // 16) % (1 << 128)
    ctx = Cipher(algorithms.AES(data_key), modes.CTR(counter.to_bytes(16, "big"))).encryptor()
    if offset % 16:
        ctx.update(b"\0" * (offset % 16))
    return ctx


def crypt(data_key: bytes, iv: bytes, data: bytes, offset: int = 0) -> bytes:
    """Encrypt or decrypt (the same in counter mode) ``data`` found at ``offset``."""
    return _cipher(data_key, iv, offset).update(data)


def crypt_file(path: Path, data_key: bytes, iv: bytes) -> None:
    """Encrypt a file in place, a block at a time (the length does not change)."""
    cipher = _cipher(data_key, iv, 0)
    with open(path, "r+b") as f:
        pos = 0
        while chunk := f.read(BLOCK):
            f.seek(pos)
            f.write(cipher.update(chunk))
            pos += len(chunk)


def recrypt(sources: list[tuple[Any, tuple[bytes, bytes] | None]], out_path: Path,
            target: tuple[bytes, bytes] | None) -> None:
    """Write ``out_path`` from open handles read in order (each decrypted with its own
    ``(data_key, iv)`` when given), encrypted with ``target``'s when given. Closes the handles."""
    out_cipher = _cipher(*target, 0) if target else None
    with open(out_path, "wb") as out:
        for handle, source in sources:
            with handle:
                in_cipher = _cipher(*source, 0) if source else None
                while chunk := handle.read(BLOCK):
                    if in_cipher is not None:
                        chunk = in_cipher.update(chunk)
                    out.write(out_cipher.update(chunk) if out_cipher is not None else chunk)


class Reader:
    """A decrypting view of an open object file (or row bytes): seek, read and close, as the
    readers of plain files use them."""

    def __init__(self, handle: Any, data_key: bytes, iv: bytes) -> None:
        self.handle, self.data_key, self.iv = handle, data_key, iv
        self.pos = 0
        self.cipher = _cipher(data_key, iv, 0)

    def seek(self, pos: int) -> None:
        self.handle.seek(pos)
        self.pos = pos
        self.cipher = _cipher(self.data_key, self.iv, pos)

    def read(self, n: int = -1) -> bytes:
        data = self.handle.read(n)
        self.pos += len(data)
        return self.cipher.update(data)

    def close(self) -> None:
        self.handle.close()

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def kms_error(exc: ServiceError) -> ServiceError:
    """KMS's refusal as S3 surfaces it (``KMS.DisabledException``...)."""
    if exc.code.startswith(("AccessDenied", "KMS.")):
        return exc
    return S3Error(f"KMS.{exc.code}", exc.message, status=400)


class EncryptionOps:
    """Mixed into the S3 service: making, keeping and opening objects' data keys."""

    cloud: Any
    config: Any
    blobs: Any

    def _kms_allowed(self, ctx: RequestContext | None, key_arn: str, action: str, context: dict) -> None:
        """Under ``--enforce-iam``, the S3 caller must be allowed to use the key as S3 uses it
        for them (``kms:ViaService`` = ``s3.<region>.amazonaws.com``); AccessDenied otherwise."""
        if ctx is None or ctx.protocol == "internal" or not self.config.enforce_iam:
            return
        from unkai.services.iam.enforcement import check

        kctx = copy.copy(ctx)
        kctx.service, kctx.operation = "kms", action
        kctx.extra = {**ctx.extra, "kms:ViaService": f"s3.{key_arn.split(':')[3]}.amazonaws.com"}
        check(self.cloud, kctx, {"KeyId": key_arn, "EncryptionContext": context})

    @staticmethod
    def _kms_context(bucket: str, key: str, meta: dict) -> dict:
        arn = f"arn:aws:s3:::{bucket}" if meta.get("BucketKeyEnabled") else f"arn:aws:s3:::{bucket}/{key}"
        return {"aws:s3:arn": arn}

    def _new_envelope(self, ctx: RequestContext | None, bucket: str, key: str,
                      meta: dict) -> tuple[bytes, bytes] | None:
        """For an object whose encryption is settled in ``meta``: when it is SSE-KMS, a new data
        key from KMS, kept (as its ciphertext) in ``meta``; returns ``(data_key, iv)``."""
        meta.pop(ENVELOPE, None)
        if not str(meta.get("ServerSideEncryption") or "").startswith("aws:kms") or not meta.get("SSEKMSKeyId"):
            return None
        key_arn = meta["SSEKMSKeyId"]
        context = self._kms_context(bucket, key, meta)
        self._kms_allowed(ctx, key_arn, "GenerateDataKey", context)
        try:
            data_key, blob = self.cloud.service("kms").new_data_key(key_arn, context)
        except ServiceError as exc:
            raise kms_error(exc) from None
        iv = os.urandom(16)
        meta[ENVELOPE] = {"key": key_arn, "blob": base64.b64encode(blob).decode(), "iv": base64.b64encode(iv).decode(),
                          "arn": context["aws:s3:arn"]}
        return data_key, iv

    def _open_envelope(self, ctx: RequestContext | None, meta: dict) -> tuple[bytes, bytes] | None:
        """The ``(data_key, iv)`` of a sealed object (or upload), asking KMS to open its data key;
        None when it is not sealed."""
        envelope = meta.get(ENVELOPE)
        if not envelope:
            return None
        context = {"aws:s3:arn": envelope["arn"]}
        self._kms_allowed(ctx, envelope["key"], "Decrypt", context)
        try:
            data_key = self.cloud.service("kms").open_data_key(envelope["key"], base64.b64decode(envelope["blob"]),
                                                               context)
        except ServiceError as exc:
            raise kms_error(exc) from None
        return data_key, base64.b64decode(envelope["iv"])

    def _seal_now(self, sealing: tuple[bytes, bytes] | None, received: Received) -> None:
        """Encrypt a received body before it is committed."""
        if sealing is None:
            return
        if received.data is not None:
            received.data = crypt(*sealing, received.data)
        if received.temp is not None:
            crypt_file(received.temp, *sealing)

    async def _seal(self, sealing: tuple[bytes, bytes] | None, received: Received) -> None:
        import asyncio

        if sealing is not None and received.temp is not None:
            await asyncio.to_thread(crypt_file, received.temp, *sealing)
        elif sealing is not None:
            self._seal_now(sealing, received)

    def _reader(self, ctx: RequestContext | None, obj: Any) -> Any:
        """An open, readable (decrypting when sealed) view of an object's bytes."""
        handle = self.blobs.open(obj.blob, obj.data)
        try:
            opened = self._open_envelope(ctx, obj.meta)
        except BaseException:
            handle.close()
            raise
        return Reader(handle, *opened) if opened is not None else handle

    def _plain_body(self, ctx: RequestContext | None, obj: Any, start: int, length: int) -> Any:
        """An object's bytes for a response (decrypted when sealed): bytes when small, else a stream."""
        if ENVELOPE not in obj.meta:
            return self.blobs.body(obj.blob, obj.data, start, length)
        from unkai.services.s3.storage import SMALL, stream_file

        reader = self._reader(ctx, obj)
        if length <= SMALL:
            with reader:
                reader.seek(start)
                return reader.read(length)
        return stream_file(reader, start, length)
