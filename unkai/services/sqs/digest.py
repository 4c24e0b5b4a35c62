"""The MD5 digests SQS returns, computed exactly as SDKs verify them."""

from __future__ import annotations

import hashlib
import struct
from typing import Any

_TRANSPORT = {"String": 1, "Number": 1, "Binary": 2}


def md5_body(body: str) -> str:
    return hashlib.md5(body.encode("utf-8")).hexdigest()


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def md5_attributes(attributes: dict[str, dict[str, Any]]) -> str | None:
    """MD5 over name, type, transport byte and value of each attribute, sorted by name."""
    if not attributes:
        return None
    h = hashlib.md5()
    for name in sorted(attributes):
        attr = attributes[name]
        data_type = attr["DataType"]
        h.update(_lp(name.encode()))
        h.update(_lp(data_type.encode()))
        base = data_type.split(".", 1)[0]
        if base == "Binary":
            h.update(b"\x02")
            if "BinaryListValues" in attr and "BinaryValue" not in attr:
                for v in attr["BinaryListValues"]:
                    h.update(_lp(v))
            else:
                h.update(_lp(attr["BinaryValue"]))
        else:
            h.update(b"\x01")
            if "StringListValues" in attr and "StringValue" not in attr:
                for v in attr["StringListValues"]:
                    h.update(_lp(v.encode()))
            else:
                h.update(_lp(attr["StringValue"].encode()))
    return h.hexdigest()


def attributes_size(attributes: dict[str, dict[str, Any]] | None) -> int:
    """Bytes the attributes count toward the message size limit (name, type, value)."""
    total = 0
    for name, attr in (attributes or {}).items():
        total += len(name.encode()) + len(attr.get("DataType", "").encode())
        if "BinaryValue" in attr:
            total += len(attr["BinaryValue"])
        elif "StringValue" in attr:
            total += len(attr["StringValue"].encode())
    return total
