"""MQTT 5 message properties: what a PUBLISH carries besides its topic and payload.

AWS IoT Core forwards a message's Payload Format Indicator, Content Type, Response Topic,
Correlation Data, User Properties and Message Expiry Interval from the publisher to MQTT 5
subscribers, whichever way the message came in (an MQTT 5 PUBLISH, HTTPS Publish's
``userProperties``/``contentType``/... parameters, a republish action's ``headers``), and
strips them for MQTT 3.1.1 subscribers ("MQTT 5 properties" in AWS IoT's developer guide).

``Properties`` is that set, once, for every path: read from an MQTT 5 PUBLISH
(``from_mqtt``), from HTTPS Publish (``from_publish``), from a republish action's headers
(``from_headers``), kept with a retained message (``to_json``/``from_json``), written into
a PUBLISH for an MQTT 5 subscriber (``encode``), and read by the rules engine's
``get_mqtt_property()`` and ``get_user_properties()``. A message expires ``message_expiry``
seconds after it was accepted on unkai's clock (``expires_at``): an expired retained or
queued message is not delivered, and a later delivery carries the remaining interval, as
the MQTT 5 specification asks of a server (3.3.2.3.3).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from dataclasses import dataclass, replace
from typing import Any, Callable

FORMATS = {"UNSPECIFIED_BYTES": 0, "UTF8_DATA": 1}
FORMAT_NAMES = {v: k for k, v in FORMATS.items()}


class InvalidProperties(ValueError):
    """A property value that cannot be used (the caller answers with its service's error)."""


def _string(value: bytes) -> bytes:
    return struct.pack("!H", len(value)) + value


@dataclass(frozen=True)
class Properties:
    """One message's MQTT 5 properties (None: absent)."""

    payload_format: int | None = None
    content_type: str | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    user: tuple[tuple[str, str], ...] = ()
    message_expiry: int | None = None  # seconds, as published
    expires_at: float | None = None  # unkai's clock; set when the message is accepted

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.payload_format, self.content_type, self.response_topic,
                                           self.correlation_data, self.message_expiry)) or bool(self.user)

    # -- in ------------------------------------------------------------------------------------

    @classmethod
    def from_mqtt(cls, found: dict[int, Any]) -> Properties | None:
        """From a PUBLISH's property list (``mqtt5._Cursor.properties``: id -> value, user
        properties as a list of byte pairs)."""
        try:
            props = cls(payload_format=found.get(0x01),
                        content_type=found[0x03].decode() if 0x03 in found else None,
                        response_topic=found[0x08].decode() if 0x08 in found else None,
                        correlation_data=found.get(0x09),
                        user=tuple((k.decode(), v.decode()) for k, v in found.get(0x26, ())),
                        message_expiry=found.get(0x02))
        except UnicodeDecodeError:
            raise InvalidProperties("a property is not UTF-8") from None
        return props or None

    @classmethod
    def from_publish(cls, params: dict) -> Properties | None:
        """From iot-data Publish's parameters: ``userProperties`` (a JSON array of one-key
        objects, base64 in its header), ``payloadFormatIndicator``, ``contentType``,
        ``responseTopic``, ``correlationData`` (base64) and ``messageExpiry``."""
        user: list[tuple[str, str]] = []
        raw = params.get("userProperties")
        if raw is not None:
            if isinstance(raw, str):  # botocore JSON-encodes the JSON string it is given
                try:
                    raw = json.loads(raw)
                except ValueError:
                    raise InvalidProperties("userProperties is not a JSON array") from None
            if not isinstance(raw, list) or not all(isinstance(o, dict) for o in raw):
                raise InvalidProperties("userProperties must be a JSON array of objects")
            user = [(str(k), v if isinstance(v, str) else json.dumps(v)) for o in raw for k, v in o.items()]
        fmt = params.get("payloadFormatIndicator")
        if fmt is not None and fmt not in FORMATS:
            raise InvalidProperties(f"Invalid payloadFormatIndicator: {fmt}")
        expiry = params.get("messageExpiry")
        if expiry is not None and not 0 <= int(expiry) <= 0xFFFFFFFF:
            raise InvalidProperties(f"Invalid messageExpiry: {expiry}")
        props = cls(payload_format=FORMATS[fmt] if fmt is not None else None,
                    content_type=params.get("contentType"), response_topic=params.get("responseTopic"),
                    correlation_data=_b64(params.get("correlationData"), "correlationData"),
                    user=tuple(user), message_expiry=int(expiry) if expiry is not None else None)
        _check_response_topic(props.response_topic)
        return props or None

    @classmethod
    def from_headers(cls, headers: dict, sub: Callable[[str], str]) -> Properties | None:
        """From a republish action's ``headers`` (botocore's ``MqttHeaders``), each value a
        substitution template (``sub``)."""
        def value(name: str) -> str | None:
            v = headers.get(name)
            return None if v is None else sub(str(v))

        fmt, expiry = value("payloadFormatIndicator"), value("messageExpiry")
        if fmt is not None and fmt not in FORMATS:
            raise InvalidProperties(f"Invalid payloadFormatIndicator: {fmt}")
        if expiry is not None and not (expiry.isdigit() and int(expiry) <= 0xFFFFFFFF):
            raise InvalidProperties(f"Invalid messageExpiry: {expiry}")
        user = tuple((sub(str(p.get("key", ""))), sub(str(p.get("value", ""))))
                     for p in headers.get("userProperties") or [])
        props = cls(payload_format=FORMATS[fmt] if fmt is not None else None, content_type=value("contentType"),
                    response_topic=value("responseTopic"),
                    correlation_data=_b64(value("correlationData"), "correlationData"), user=user,
                    message_expiry=int(expiry) if expiry is not None else None)
        _check_response_topic(props.response_topic)
        return props or None

    def stamped(self, now: float) -> Properties:
        """These properties for a message accepted at ``now``: when it expires."""
        if self.message_expiry is None or self.expires_at is not None:
            return self
        return replace(self, expires_at=now + self.message_expiry)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    # -- out -----------------------------------------------------------------------------------

    def encode(self, now: float) -> bytes:
        """The PUBLISH property list (with its length) for an MQTT 5 subscriber; the Message
        Expiry Interval is what remains of it at ``now``."""
        out = bytearray()
        if self.payload_format is not None:
            out += bytes([0x01, self.payload_format])
        if self.expires_at is not None:
            out += b"\x02" + struct.pack("!I", max(1, math.ceil(self.expires_at - now)))
        if self.content_type is not None:
            out += b"\x03" + _string(self.content_type.encode())
        if self.response_topic is not None:
            out += b"\x08" + _string(self.response_topic.encode())
        if self.correlation_data is not None:
            out += b"\x09" + _string(self.correlation_data)
        for key, value in self.user:
            out += b"\x26" + _string(key.encode()) + _string(value.encode())
        from unkai.services.iot.mqtt5 import varint

        return varint(len(out)) + bytes(out)

    def user_json(self) -> bytes | None:
        """User properties as AWS writes them (GetRetainedMessage): ``[{"key": "value"}, ...]``."""
        if not self.user:
            return None
        return json.dumps([{k: v} for k, v in self.user], separators=(",", ":")).encode()

    def to_json(self) -> str:
        doc: dict[str, Any] = {"pfi": self.payload_format, "ct": self.content_type, "rt": self.response_topic,
                               "cd": base64.b64encode(self.correlation_data).decode()
                               if self.correlation_data is not None else None,
                               "up": [list(p) for p in self.user] or None, "mei": self.message_expiry,
                               "exp": self.expires_at}
        return json.dumps({k: v for k, v in doc.items() if v is not None}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> Properties | None:
        if not text:
            return None
        doc = json.loads(text)
        return cls(payload_format=doc.get("pfi"), content_type=doc.get("ct"), response_topic=doc.get("rt"),
                   correlation_data=base64.b64decode(doc["cd"]) if "cd" in doc else None,
                   user=tuple((k, v) for k, v in doc.get("up") or ()), message_expiry=doc.get("mei"),
                   expires_at=doc.get("exp"))

    # -- the rules engine -----------------------------------------------------------------------

    def mqtt_property(self, name: str) -> Any:
        """``get_mqtt_property(name)``: None when the message does not carry it."""
        if name == "format_indicator":
            return FORMAT_NAMES.get(self.payload_format or 0)
        if name == "content_type":
            return self.content_type
        if name == "response_topic":
            return self.response_topic
        if name == "correlation_data":
            return base64.b64encode(self.correlation_data).decode() if self.correlation_data is not None else None
        return None


def _b64(text: str | None, name: str) -> bytes | None:
    if text is None:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidProperties(f"{name} must be base64-encoded") from None


def _check_response_topic(topic: str | None) -> None:
    if topic is not None and (not topic or "+" in topic or "#" in topic):
        raise InvalidProperties(f"Invalid responseTopic: {topic}")
