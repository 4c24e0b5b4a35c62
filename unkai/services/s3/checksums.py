"""The checksums S3 verifies and returns: Content-MD5 and ETags, and the flexible
checksums (CRC32, CRC32C, CRC64NVME, SHA1, SHA256) current SDKs send by default."""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from typing import Any

from unkai.protocol import ServiceError
from unkai.services.s3.state import S3Error

ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
_WIDTH = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8}


class _Crc:
    __slots__ = ("fn", "value", "width")

    def __init__(self, fn: Any, width: int) -> None:
        self.fn, self.value, self.width = fn, 0, width

    def update(self, data: bytes) -> None:
        self.value = self.fn(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(self.width, "big")


def hasher(algorithm: str) -> Any:
    """An object with update(bytes) and digest() for a flexible checksum algorithm."""
    if algorithm == "CRC32":
        return _Crc(zlib.crc32, 4)
    if algorithm in ("CRC32C", "CRC64NVME"):
        from awscrt import checksums as crt  # here, not at the top: a native library slow to load

        return _Crc(crt.crc32c, 4) if algorithm == "CRC32C" else _Crc(crt.crc64nvme, 8)
    if algorithm == "SHA1":
        return hashlib.sha1()
    if algorithm == "SHA256":
        return hashlib.sha256()
    raise invalid_algorithm(algorithm)


def invalid_algorithm(algorithm: str) -> ServiceError:
    return S3Error("InvalidRequest", f"Value for x-amz-checksum-algorithm header is invalid: {algorithm}.")


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def header_name(algorithm: str) -> str:
    return f"x-amz-checksum-{algorithm.lower()}"


def requested(headers: Any) -> tuple[str | None, str | None]:
    """(algorithm, expected base64 value or None if it comes in a trailer) from request headers."""
    for algorithm in ALGORITHMS:
        value = headers.get(header_name(algorithm))
        if value is not None:
            return algorithm, value
    trailer = (headers.get("x-amz-trailer") or "").strip().lower()
    if trailer.startswith("x-amz-checksum-"):
        algorithm = trailer.removeprefix("x-amz-checksum-").upper()
        if algorithm not in ALGORITHMS:
            raise invalid_algorithm(algorithm)
        return algorithm, None
    declared = headers.get("x-amz-sdk-checksum-algorithm") or headers.get("x-amz-checksum-algorithm")
    if declared:
        algorithm = declared.upper()
        if algorithm not in ALGORITHMS:
            raise invalid_algorithm(declared)
        return algorithm, None
    return None, None


def check(algorithm: str, expected: str, actual: bytes) -> None:
    """Raise AWS's error when a client's checksum does not match the bytes received."""
    try:
        raw = base64.b64decode(expected, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != (_WIDTH.get(algorithm) or len(actual)):
        raise S3Error("InvalidRequest", f"Value for {header_name(algorithm)} header is invalid.")
    if raw != actual:
        raise S3Error("BadDigest", f"The {algorithm} you specified did not match the calculated checksum.")


def check_content_md5(expected: str, actual: bytes) -> None:
    try:
        raw = base64.b64decode(expected, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise S3Error("InvalidDigest", "The Content-MD5 you specified was invalid.")
    if raw != actual:
        raise S3Error("BadDigest", "The Content-MD5 you specified did not match what we received.")


def composite(algorithm: str, part_checksums: list[str]) -> str:
    """A multipart object's COMPOSITE checksum: the checksum of the parts' checksums, -N."""
    h = hasher(algorithm)
    for value in part_checksums:
        h.update(base64.b64decode(value))
    return f"{b64(h.digest())}-{len(part_checksums)}"


def multipart_etag(part_md5s: list[str]) -> str:
    """AWS's multipart ETag: MD5 of the concatenated part MD5s, then -N."""
    joined = b"".join(bytes.fromhex(m) for m in part_md5s)
    return f'"{hashlib.md5(joined).hexdigest()}-{len(part_md5s)}"'
