"""MQTT 5 in front of amqtt, which speaks MQTT 3.1.1 only (its CONNECT handler refuses every
protocol level but 4; amqtt 0.12 has no MQTT 5 code and no release that adds it).

A connection's first packet decides: a CONNECT of protocol level 5 makes this connection a
translated one, anything else passes through untouched (the adapters then hand amqtt the
stream's own ``read``/``write``, so 3.1.1 clients pay nothing). For a 5 client, each packet
it sends is rewritten as its 3.1.1 counterpart for amqtt and each packet amqtt sends is
rewritten as MQTT 5, so the broker's rules (certificates, IoT policies, the publish path)
apply unchanged:

- CONNECT: properties read (Session Expiry Interval 0 means a clean session; an
  Authentication Method, i.e. enhanced authentication, is refused with 0x8C); an empty
  client id gets one assigned and CONNACK names it (Assigned Client Identifier).
- CONNACK carries the MQTT 5 reason code (0x87 Not authorized, 0x85 Client Identifier not
  valid, 0x86 Bad User Name or Password...) and the server's limits as AWS IoT announces
  them: Maximum QoS 1, Topic Alias Maximum 8, no subscription identifiers, no shared
  subscriptions.
- PUBLISH: properties dropped (topic aliases resolved first); QoS 2 is a protocol error
  (DISCONNECT 0x9B QoS not supported), as on AWS. Messages to a 5 client carry no properties.
- SUBSCRIBE: the options byte's QoS (at most 1) kept, No Local / Retain As Published /
  Retain Handling dropped; SUBACK's failure becomes 0x87 Not authorized (0x8F for a filter
  that is not valid). UNSUBACK gets a Success reason code per filter.
- DISCONNECT with reason 0x04 (Disconnect with Will Message) drops the connection so the
  will is published; AUTH packets end the connection (DISCONNECT 0x8C).
- A connection the broker closes for a denied publish gets DISCONNECT 0x87 first.
"""

from __future__ import annotations

import struct
import uuid
from typing import Any

MAX_QOS = 1
TOPIC_ALIAS_MAXIMUM = 8
_CONNACK = {0: 0x00, 1: 0x84, 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87}
# property id -> kind: 1 byte, 2 two-byte int, 4 four-byte int, v varint, s string, b binary, p string pair
_PROPERTIES = {0x01: "1", 0x02: "4", 0x03: "s", 0x08: "s", 0x09: "b", 0x0B: "v", 0x11: "4", 0x12: "s",
               0x13: "2", 0x15: "s", 0x16: "b", 0x17: "1", 0x18: "4", 0x19: "1", 0x1A: "s", 0x1C: "s",
               0x1F: "s", 0x21: "2", 0x22: "2", 0x23: "2", 0x24: "1", 0x25: "1", 0x26: "p", 0x27: "4",
               0x28: "1", 0x29: "1", 0x2A: "1"}


class ProtocolError(Exception):
    """A malformed MQTT 5 packet: the connection ends with this DISCONNECT reason."""

    def __init__(self, reason: int = 0x81) -> None:
        super().__init__(hex(reason))
        self.reason = reason


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value % 128, value // 128
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + varint(len(body)) + body


class _Cursor:
    def __init__(self, data: bytes, at: int = 0) -> None:
        self.data, self.at = data, at

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.data):
            raise ProtocolError(0x81)
        out = self.data[self.at:self.at + n]
        self.at += n
        return out

    def byte(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack("!H", self.take(2))[0]

    def varint(self) -> int:
        value, shift = 0, 0
        for _ in range(4):
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
        raise ProtocolError(0x81)

    def binary(self) -> bytes:
        return self.take(self.u16())

    def properties(self) -> dict[int, Any]:
        end = self.varint() + self.at
        if end > len(self.data):
            raise ProtocolError(0x81)
        found: dict[int, Any] = {}
        while self.at < end:
            ident = self.varint()
            kind = _PROPERTIES.get(ident)
            if kind is None:
                raise ProtocolError(0x81)
            if kind == "1":
                value: Any = self.byte()
            elif kind == "2":
                value = self.u16()
            elif kind == "4":
                value = struct.unpack("!I", self.take(4))[0]
            elif kind == "v":
                value = self.varint()
            elif kind in "sb":
                value = self.binary()
            else:
                value = (self.binary(), self.binary())
            found[ident] = value
        if self.at != end:
            raise ProtocolError(0x81)
        return found

    def rest(self) -> bytes:
        out = self.data[self.at:]
        self.at = len(self.data)
        return out


def _string(value: bytes) -> bytes:
    return struct.pack("!H", len(value)) + value


def _valid_filter(topic_filter: str) -> bool:
    levels = topic_filter.split("/")
    if not topic_filter or any(("#" in level and (level != "#" or i != len(levels) - 1)) or
                               ("+" in level and level != "+") for i, level in enumerate(levels)):
        return False
    return True


class Translation:
    """The state of one MQTT 5 connection's translation, both directions."""

    def __init__(self) -> None:
        self.assigned_id: str | None = None
        self.aliases: dict[int, bytes] = {}
        self.unsubscribes: dict[int, int] = {}  # packet id -> number of filters
        self.subscribes: dict[int, list[bool]] = {}  # packet id -> whether each filter is valid
        self.closing_reason: int | None = None

    # client (MQTT 5) -> amqtt (MQTT 3.1.1): None means the connection ends here ---------------

    def connect(self, body: bytes) -> bytes:
        c = _Cursor(body)
        c.binary()  # "MQTT"
        c.byte()  # 5
        flags, keep_alive = c.byte(), c.u16()
        props = c.properties()
        if 0x15 in props:
            raise ProtocolError(0x8C)  # enhanced authentication is not served
        client_id = c.binary()
        if not client_id:
            self.assigned_id = f"unkai-{uuid.uuid4().hex}"
            client_id = self.assigned_id.encode()
        if props.get(0x11, 0) == 0:
            flags |= 0x02  # no session expiry: nothing outlives the connection (a clean session in 3.1.1)
        out = bytearray(_string(b"MQTT") + bytes([4, flags]) + struct.pack("!H", keep_alive) + _string(client_id))
        if flags & 0x04:
            c.properties()  # will properties
            out += _string(c.binary()) + _string(c.binary())
        if flags & 0x80:
            out += _string(c.binary())
        if flags & 0x40:
            out += _string(c.binary())
        return packet(0x10, bytes(out))

    def inbound(self, first: int, body: bytes) -> bytes | None:
        kind = first >> 4
        c = _Cursor(body)
        if kind == 3:  # PUBLISH
            qos = (first >> 1) & 3
            if qos > MAX_QOS:
                raise ProtocolError(0x9B)
            topic = c.binary()
            packet_id = c.take(2) if qos else b""
            props = c.properties()
            alias = props.get(0x23)
            if alias is not None:
                if not 0 < alias <= TOPIC_ALIAS_MAXIMUM:
                    raise ProtocolError(0x94)
                if topic:
                    self.aliases[alias] = topic
                elif alias in self.aliases:
                    topic = self.aliases[alias]
                else:
                    raise ProtocolError(0x82)
            return packet(first, _string(topic) + packet_id + c.rest())
        if kind in (4, 5, 6, 7):  # PUBACK, PUBREC, PUBREL, PUBCOMP: the packet id alone
            return packet(first, c.take(2))
        if kind == 8:  # SUBSCRIBE
            packet_id = c.take(2)
            c.properties()
            out, valid = bytearray(packet_id), []
            while c.at < len(body):
                topic_filter, options = c.binary(), c.byte()
                ok = _valid_filter(topic_filter.decode("utf-8", "replace")) and not topic_filter.startswith(b"$share/")
                valid.append(ok)
                out += _string(topic_filter) + bytes([min(options & 3, MAX_QOS)])
            if not valid:
                raise ProtocolError(0x82)
            self.subscribes[struct.unpack("!H", packet_id)[0]] = valid
            return packet(first, bytes(out))
        if kind == 10:  # UNSUBSCRIBE
            packet_id = c.take(2)
            c.properties()
            rest = c.rest()
            count, r = 0, _Cursor(rest)
            while r.at < len(rest):
                r.binary()
                count += 1
            self.unsubscribes[struct.unpack("!H", packet_id)[0]] = count
            return packet(first, packet_id + rest)
        if kind == 12:  # PINGREQ
            return packet(first, b"")
        if kind == 14:  # DISCONNECT
            reason = c.byte() if body else 0
            return None if reason == 0x04 else packet(0xE0, b"")  # 0x04: publish the will
        if kind == 15:  # AUTH
            raise ProtocolError(0x8C)
        raise ProtocolError(0x81)

    # amqtt (MQTT 3.1.1) -> client (MQTT 5) --------------------------------------------------

    def outbound(self, first: int, body: bytes) -> bytes:
        kind = first >> 4
        if kind == 2:  # CONNACK
            reason = _CONNACK.get(body[1], 0x80) if len(body) > 1 else 0x80
            props = b""
            if reason == 0:
                props = bytes([0x24, MAX_QOS, 0x29, 0, 0x2A, 0]) + bytes([0x22]) + struct.pack("!H", TOPIC_ALIAS_MAXIMUM)
                if self.assigned_id:
                    props += bytes([0x12]) + _string(self.assigned_id.encode())
            return packet(first, body[:1] + bytes([reason]) + varint(len(props)) + props)
        if kind == 3:  # PUBLISH: no properties
            c = _Cursor(body)
            topic = c.binary()
            packet_id = c.take(2) if (first >> 1) & 3 else b""
            return packet(first, _string(topic) + packet_id + b"\x00" + c.rest())
        if kind == 9:  # SUBACK
            packet_id = body[:2]
            valid = self.subscribes.pop(struct.unpack("!H", packet_id)[0], [])
            codes = bytes(code if code != 0x80 else (0x87 if i >= len(valid) or valid[i] else 0x8F)
                          for i, code in enumerate(body[2:]))
            return packet(first, packet_id + b"\x00" + codes)
        if kind == 11:  # UNSUBACK
            packet_id = body[:2]
            count = self.unsubscribes.pop(struct.unpack("!H", packet_id)[0], 1)
            return packet(first, packet_id + b"\x00" + b"\x00" * count)
        return packet(first, body)  # PUBACK..PUBCOMP (packet id alone is valid MQTT 5), PINGRESP


def disconnect(reason: int) -> bytes:
    return packet(0xE0, bytes([reason, 0]))


async def _read_packet(reader: Any) -> tuple[int, bytes] | None:
    first = await reader.read(1)
    if not first:
        return None
    length, shift = 0, 0
    for _ in range(4):
        byte = await reader.read(1)
        if not byte:
            return None
        length |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            break
        shift += 7
    else:
        raise ProtocolError(0x81)
    body = await reader.read(length) if length else b""
    if len(body) < length:
        return None
    return first[0], body


class VersionedReader:
    """amqtt's reader for one connection: MQTT 3.1.1 passes through, MQTT 5 is translated."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.translation: Translation | None = None
        self.writer: VersionedWriter | None = None
        self._buffer = b""
        self._started = False

    async def read(self, n: int = -1) -> bytes:
        if not self._started:
            self._started = True
            await self._first()
        while self.translation is not None and len(self._buffer) < max(n, 1):
            if not await self._next():
                break
        if n < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:n], self._buffer[n:]
        if self.translation is None and not self._buffer:
            self.read = self.inner.read  # type: ignore[method-assign]  # 3.1.1 from here: no layer at all
        return out

    async def _first(self) -> None:
        try:
            found = await _read_packet(self.inner)
        except Exception:  # noqa: BLE001 - malformed: amqtt sees the end of the stream, the socket closes
            found = None
        if found is None:
            if self.writer is not None:
                try:
                    await self.writer.inner.close()
                except Exception:  # noqa: BLE001
                    pass
            return
        first, body = found
        if first >> 4 == 1 and len(body) > 7 and body[:6] == b"\x00\x04MQTT" and body[6] == 5:
            self.translation = Translation()
            if self.writer is not None:
                self.writer.start(self.translation)
            try:
                self._buffer = self.translation.connect(body)
            except ProtocolError as exc:
                await self._refuse(exc.reason)
            return
        self._buffer = packet(first, body)

    async def _next(self) -> bool:
        try:
            found = await _read_packet(self.inner)
            if found is None:
                return False
            translated = self.translation.inbound(*found)  # type: ignore[union-attr]
        except ProtocolError as exc:
            await self._refuse(exc.reason)
            return False
        if translated is None:
            return False
        self._buffer += translated
        return True

    async def _refuse(self, reason: int) -> None:
        """End a 5 connection with a reason code (CONNACK before it is connected, else DISCONNECT)."""
        if self.writer is None:
            return
        connected = self.writer.connected
        data = packet(0x20, bytes([0, reason, 0])) if not connected else disconnect(reason)
        try:
            self.writer.inner.write(data)
            await self.writer.inner.drain()
            if not connected:  # amqtt never got a CONNECT: nothing else closes this socket
                await self.writer.inner.close()
        except Exception:  # noqa: BLE001 - the peer may be gone already
            pass

    def feed_eof(self) -> None:
        self.inner.feed_eof()


class VersionedWriter:
    """amqtt's writer for one connection (see ``VersionedReader``)."""

    def __init__(self, inner: Any, reader: VersionedReader) -> None:
        self.inner = inner
        self.translation: Translation | None = None
        self.connected = False
        self._pending = b""
        reader.writer = self
        self.drain = inner.drain  # type: ignore[method-assign]
        self.write = inner.write  # type: ignore[method-assign]  # until a 5 CONNECT arrives

    def start(self, translation: Translation) -> None:
        self.translation = translation
        self.write = self._translate  # type: ignore[method-assign]

    def _translate(self, data: bytes) -> None:
        self._pending += data
        while len(self._pending) >= 2:
            length, shift, at = 0, 0, 1
            while at < len(self._pending):
                byte = self._pending[at]
                length |= (byte & 0x7F) << shift
                at += 1
                if not byte & 0x80:
                    break
                shift += 7
            else:
                return
            if len(self._pending) < at + length:
                return
            first, body = self._pending[0], self._pending[at:at + length]
            self._pending = self._pending[at + length:]
            if first >> 4 == 2:
                self.connected = len(body) > 1 and body[1] == 0
            self.inner.write(self.translation.outbound(first, body))  # type: ignore[union-attr]

    def get_peer_info(self) -> Any:
        return self.inner.get_peer_info()

    def get_ssl_info(self) -> Any:
        return self.inner.get_ssl_info()

    async def close(self) -> None:
        if self.translation is not None and self.translation.closing_reason is not None and self.connected:
            try:
                self.inner.write(disconnect(self.translation.closing_reason))
                await self.inner.drain()
            except Exception:  # noqa: BLE001
                pass
        await self.inner.close()


def adapters(reader: Any, writer: Any) -> tuple[VersionedReader, VersionedWriter]:
    """Wrap amqtt's reader and writer adapters of a new connection."""
    versioned = VersionedReader(reader)
    return versioned, VersionedWriter(writer, versioned)
