"""Scalar conversions shared by every protocol: text on the wire <-> Python values.

Services see timestamps as epoch seconds (float) and blobs as bytes, whatever the
protocol; they may return datetimes, floats or ints for timestamps.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import math
from typing import TYPE_CHECKING, Any

from unkai.protocol.errors import ParamError

if TYPE_CHECKING:  # botocore.model is imported with the first model (it pulls in awscrt and urllib3)
    from botocore.model import Shape


def to_epoch(value: Any) -> float:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.timestamp()
    return float(value)


def iso8601(value: Any) -> str:
    """AWS's ISO 8601 form: millisecond precision, Z suffix."""
    t = dt.datetime.fromtimestamp(to_epoch(value), dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def rfc822(value: Any) -> str:
    return email.utils.formatdate(int(to_epoch(value)), usegmt=True)


def format_timestamp(value: Any, fmt: str) -> str | float | int:
    if fmt == "iso8601":
        return iso8601(value)
    if fmt == "rfc822":
        return rfc822(value)
    epoch = to_epoch(value)
    return int(epoch) if epoch == int(epoch) else round(epoch, 3)


def parse_timestamp(text: Any, name: str) -> float:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    if not isinstance(text, str):
        raise ParamError("invalid", name, f"Invalid timestamp for parameter {name}.")
    s = text.strip()
    try:
        return float(s)
    except ValueError:
        pass
    try:
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
        return (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).timestamp()
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(s).timestamp()
    except (TypeError, ValueError):
        raise ParamError("invalid", name, f"Invalid timestamp '{text}' for parameter {name}.") from None


def b64decode(text: Any, name: str) -> bytes:
    if isinstance(text, bytes):
        return text
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ParamError("invalid", name, f"Invalid base64 value for parameter {name}.") from None


def b64encode(value: bytes | str) -> str:
    if isinstance(value, str):
        value = value.encode()
    return base64.b64encode(value).decode()


def from_text(text: str, shape: Shape, name: str) -> Any:
    """A scalar from its text form (query strings, headers, XML, URI labels)."""
    t = shape.type_name
    if t in ("string", "character"):
        return text
    if t in ("integer", "long", "short", "byte"):
        try:
            return int(text.strip())
        except ValueError:
            raise ParamError("invalid", name, f"Value {text} for parameter {name} is invalid.") from None
    if t == "boolean":
        low = text.strip().lower()
        if low in ("true", "false"):
            return low == "true"
        raise ParamError("invalid", name, f"Value {text} for parameter {name} is invalid.")
    if t in ("float", "double"):
        try:
            return float(text)
        except ValueError:
            raise ParamError("invalid", name, f"Value {text} for parameter {name} is invalid.") from None
    if t == "timestamp":
        return parse_timestamp(text, name)
    if t == "blob":
        return b64decode(text, name)
    return text


def to_text(value: Any, shape: Shape, default_ts: str = "iso8601") -> str:
    t = shape.type_name
    if t == "boolean":
        return "true" if value else "false"
    if t == "timestamp":
        return str(format_timestamp(value, shape.serialization.get("timestampFormat", default_ts)))
    if t == "blob":
        return b64encode(value)
    if t in ("float", "double"):
        if isinstance(value, float):
            if math.isnan(value):
                return "NaN"
            if math.isinf(value):
                return "Infinity" if value > 0 else "-Infinity"
        return str(value)
    return str(value)
