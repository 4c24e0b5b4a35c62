"""The AWS event-stream message encoding (``application/vnd.amazon.eventstream``):
Kinesis's SubscribeToShard pushes its events to the client in this framing.

A message is a prelude (total length, headers length, CRC32 of both), typed headers,
the payload and a CRC32 of everything before it. Only string headers are written,
which is all the event streams unkai serves need.
"""

from __future__ import annotations

import struct
import zlib

CONTENT_TYPE = "application/vnd.amazon.eventstream"


def _headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack(">B", len(raw_name)) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value
    return bytes(out)


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One framed message with its two CRCs."""
    head = _headers(headers)
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack(">II", total, len(head))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + head + payload
    return body + struct.pack(">I", zlib.crc32(body))


def event(event_type: str, payload: bytes, content_type: str = "application/json") -> bytes:
    """A modeled event (``:message-type`` event), e.g. ``SubscribeToShardEvent``."""
    return encode_message({":message-type": "event", ":event-type": event_type, ":content-type": content_type},
                          payload)


def exception(error_type: str, payload: bytes, content_type: str = "application/json") -> bytes:
    """A modeled error inside the stream (``:message-type`` exception)."""
    return encode_message({":message-type": "exception", ":exception-type": error_type,
                           ":content-type": content_type}, payload)
