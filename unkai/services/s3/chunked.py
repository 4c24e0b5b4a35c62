"""Decoding ``Content-Encoding: aws-chunked`` request bodies: the SigV4 streaming
upload format (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, with a signature per chunk) and
the trailer form SDKs use for checksums (STREAMING-UNSIGNED-PAYLOAD-TRAILER)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

from unkai.protocol import ServiceError
from unkai.services.s3.state import S3Error

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_LINE = 4096


def is_chunked(headers: Any) -> bool:
    sha = headers.get("x-amz-content-sha256") or ""
    encoding = headers.get("content-encoding") or ""
    return sha.startswith("STREAMING-") or "aws-chunked" in encoding


def _incomplete() -> ServiceError:
    return S3Error("IncompleteBody", "The request body terminated unexpectedly")


class ChunkedDecoder:
    """Turns an aws-chunked byte stream into the payload; trailers land in ``trailers``.

    When ``signer`` is given (the request's SigV4 seed signature was verified) every
    chunk signature is checked against the chain, as S3 does.
    """

    def __init__(self, source: AsyncIterator[bytes], signer: Any = None) -> None:
        self.source = source
        self.signer = signer
        self.trailers: dict[str, str] = {}
        self.buf = bytearray()
        self.done = False

    async def _fill(self) -> bool:
        if self.done:
            return False
        try:
            chunk = await self.source.__anext__()
        except StopAsyncIteration:
            self.done = True
            return False
        self.buf += chunk
        return True

    async def _line(self) -> str:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[: i + 2]
                return line.decode("latin-1")
            if len(self.buf) > MAX_LINE or not await self._fill():
                raise _incomplete()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            header = await self._line()
            size_text, _, ext = header.partition(";")
            try:
                size = int(size_text.strip(), 16)
            except ValueError:
                raise S3Error("InvalidChunkSizeError", "Only the last chunk is allowed to have a size less "
                                   "than 8192 bytes") from None
            signature = ext.partition("chunk-signature=")[2].strip() if ext else ""
            digest = hashlib.sha256() if self.signer else None
            left = size
            while left:
                if not self.buf and not await self._fill():
                    raise _incomplete()
                piece = bytes(self.buf[:left])
                del self.buf[: len(piece)]
                left -= len(piece)
                if digest is not None:
                    digest.update(piece)
                yield piece
            if self.signer is not None:
                self.signer.check_chunk(signature, digest.hexdigest() if digest else EMPTY_SHA256)
            if size == 0:
                break
            if await self._line() != "":
                raise _incomplete()
        while True:  # trailers, up to the blank line (or the end of the stream)
            try:
                line = await self._line()
            except ServiceError:
                break
            if not line:
                break
            name, _, value = line.partition(":")
            self.trailers[name.strip().lower()] = value.strip()

