"""Object bytes on disk: one file per object version (or part) under the state
directory, named by a random id, never by the key, so no key can reach a path
outside it. A body is streamed into a temporary file while its digests are
computed, then renamed into place just before the metadata commit. Bodies of
64 KiB or less stay in the object's database row instead: one commit, no file."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unkai.http import Request
from unkai.services.s3 import checksums
from unkai.services.s3.chunked import ChunkedDecoder, is_chunked
from unkai.services.s3.state import S3Error

MAX_PUT = 5 * 1024 ** 3
READ_CHUNK = 1024 * 1024
SMALL = 256 * 1024  # objects up to this size are read whole and sent in one piece
INLINE = 64 * 1024  # bodies up to this size are kept in the database row, not in a file
BLOCK = 1024 * 1024  # larger bodies are hashed and written a block at a time, off the event loop


@dataclass
class Received:
    """A body received, with what was computed on the way: in a temp file, or
    (small ones) in ``data``."""

    temp: Path | None
    size: int
    md5: str
    checksum: tuple[str, str] | None = None  # (algorithm, base64 value)
    data: bytes | None = None

    def discard(self) -> None:
        if self.temp is not None:
            self.temp.unlink(missing_ok=True)


class _Digests:
    """Everything computed over a body as it arrives."""

    def __init__(self, algorithm: str | None, sha: bool) -> None:
        self.md5 = hashlib.md5()
        self.flexible = checksums.hasher(algorithm) if algorithm else None
        self.sha = hashlib.sha256() if sha else None

    def update(self, data: bytes) -> None:
        self.md5.update(data)
        if self.flexible is not None:
            self.flexible.update(data)
        if self.sha is not None:
            self.sha.update(data)

    def write(self, out: Any, data: bytes) -> None:
        out.write(data)
        self.update(data)


class Blobs:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "blobs"
        self.tmp = root / "tmp"
        self.dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.tmp, ignore_errors=True)  # half-received bodies of a previous run
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, blob: str) -> Path:
        return self.dir / blob[:2] / blob

    def temp_path(self) -> Path:
        return self.tmp / uuid.uuid4().hex

    async def receive(self, request: Request, checksum_algorithm: str | None = None, limit: int = MAX_PUT,
                      signer: Any = None, inline: bool = True, strict: bool = False) -> Received:
        """Stream the request body in, verifying what the client declared.

        Blocks of a large body are hashed and written by a worker thread while the event
        loop receives the next one. The body's SHA-256 (``x-amz-content-sha256``) is checked
        when signatures are verified (``strict``) or when no other checksum guards the body.
        """
        headers = request.headers
        length = headers.get("x-amz-decoded-content-length") or headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size",
                          ProposedSize=length, MaxSizeAllowed=str(limit))
        algorithm, expected = checksums.requested(headers)
        algorithm = algorithm or checksum_algorithm
        sha_header = headers.get("x-amz-content-sha256") or ""
        guarded = expected is not None or "content-md5" in headers or "x-amz-trailer" in headers
        want_sha = len(sha_header) == 64 and not is_chunked(headers) and (strict or not guarded)
        digests = _Digests(algorithm, want_sha and algorithm != "SHA256")
        decoder = ChunkedDecoder(request.stream(), signer) if is_chunked(headers) else None
        source = decoder.__aiter__() if decoder else request.stream()
        loop = asyncio.get_running_loop()
        temp: Path | None = None
        out = None
        pending: Any = None
        buf = bytearray()
        size = 0
        data = None
        try:
            async for chunk in source:
                size += len(chunk)
                if size > limit:
                    raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size",
                                  ProposedSize=str(size), MaxSizeAllowed=str(limit))
                buf += chunk
                if len(buf) >= BLOCK:
                    if out is None:
                        temp = self.temp_path()
                        out = open(temp, "wb")
                    block = bytes(buf)
                    buf.clear()
                    if pending is not None:
                        await pending
                    pending = loop.run_in_executor(None, digests.write, out, block)
            if pending is not None:
                await pending
            if out is None and inline and len(buf) <= INLINE:
                data = bytes(buf)
                digests.update(data)
            else:
                if out is None:
                    temp = self.temp_path()
                    out = open(temp, "wb")
                digests.write(out, bytes(buf))
                out.close()
            if decoder is not None:
                declared = headers.get("x-amz-decoded-content-length")
                if declared and declared.isdigit() and int(declared) != size:
                    raise S3Error("IncompleteBody", "You did not provide the number of bytes specified by "
                                  "the Content-Length HTTP header")
                if algorithm and expected is None:
                    expected = decoder.trailers.get(checksums.header_name(algorithm))
            digest = digests.md5.digest()
            if headers.get("content-md5") is not None:
                checksums.check_content_md5(headers["content-md5"], digest)
            value = None
            actual = None
            if digests.flexible is not None:
                actual = digests.flexible.digest()
                if expected is not None:
                    checksums.check(algorithm, expected, actual)
                value = checksums.b64(actual)
            if want_sha:
                actual_hex = actual.hex() if digests.sha is None else digests.sha.hexdigest()
                if actual_hex != sha_header.lower():
                    raise S3Error("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header "
                                  "does not match what was computed.", ClientComputedContentSHA256=sha_header,
                                  S3ComputedContentSHA256=actual_hex)
        except BaseException:
            if pending is not None and not pending.done():
                await asyncio.wait([pending])
            if out is not None:
                out.close()
            if temp is not None:
                temp.unlink(missing_ok=True)
            raise
        return Received(temp, size, digest.hex(), (algorithm, value) if algorithm else None, data)

    def adopt(self, temp: Path) -> str:
        """Move a received temp file into the blob store; its id (call inside the metadata transaction)."""
        blob = uuid.uuid4().hex
        target = self.path(blob)
        target.parent.mkdir(exist_ok=True)
        os.replace(temp, target)
        return blob

    def discard(self, blob: str | None) -> None:
        if blob:
            try:
                self.path(blob).unlink()
            except FileNotFoundError:
                pass

    def body(self, blob: str | None, data: bytes | None, start: int, length: int) -> Any:
        """An object's bytes for a response: bytes when small, else a stream of its file."""
        if data is not None:
            return data[start:start + length]
        if length <= SMALL:
            return self.read_all(blob, start, length)
        return stream_file(self.open(blob), start, length)

    def link_copy(self, blob: str) -> Path:
        """A temp file with the blob's bytes (a hard link: no bytes are copied)."""
        temp = self.temp_path()
        try:
            os.link(self.path(blob), temp)
        except OSError:
            shutil.copyfile(self.path(blob), temp)
        return temp

    def read_all(self, blob: str | None, start: int = 0, length: int | None = None) -> bytes:
        if not blob:
            return b""
        with open(self.path(blob), "rb") as f:
            f.seek(start)
            return f.read() if length is None else f.read(length)

    def open(self, blob: str | None, data: bytes | None = None) -> Any:
        """An open file for a blob: opened before the response starts, so a concurrent
        delete or overwrite (which only unlinks) cannot cut a download short."""
        if data is not None:
            return io.BytesIO(data)
        return open(self.path(blob), "rb")

    async def concat(self, blobs: list[str]) -> Path:
        """One temp file holding the blobs' bytes in order (for completing multipart uploads)."""
        temp = self.temp_path()

        def work() -> None:
            with open(temp, "wb") as out:
                for blob in blobs:
                    with open(self.path(blob), "rb") as src:
                        size = os.fstat(src.fileno()).st_size
                        copied = 0
                        while copied < size:
                            n = os.copy_file_range(src.fileno(), out.fileno(), size - copied) \
                                if hasattr(os, "copy_file_range") else 0
                            if n <= 0:
                                src.seek(copied)
                                shutil.copyfileobj(src, out)
                                break
                            copied += n
        try:
            await asyncio.to_thread(work)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return temp


async def stream_file(handle: Any, start: int, length: int) -> AsyncIterator[bytes]:
    """Yield ``length`` bytes of an open file from ``start``, a chunk at a time, then close it."""
    try:
        handle.seek(start)
        left = length
        while left > 0:
            chunk = handle.read(min(READ_CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk
    finally:
        handle.close()
