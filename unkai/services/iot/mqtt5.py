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
  them: Maximum QoS 1, Topic Alias Maximum 8, no subscription identifiers, shared
  subscriptions available.
- PUBLISH: topic aliases resolved; the message properties (``properties.Properties``)
  travel beside the 3.1.1 packet to the broker's publish path, and a message for a 5
  client gets its properties back (``expect``: the broker names the properties of each
  delivery before amqtt writes it); QoS 2 is a protocol error (DISCONNECT 0x9B QoS not
  supported), as on AWS.
- SUBSCRIBE: the options byte's QoS (at most 1) kept, No Local / Retain As Published /
  Retain Handling dropped; SUBACK's failure becomes 0x87 Not authorized (0x8F for a filter
  that is not valid). UNSUBACK gets a Success reason code per filter.
- DISCONNECT with reason 0x04 (Disconnect with Will Message) drops the connection so the
  will is published; AUTH packets end the connection (DISCONNECT 0x8C).
- A connection the broker closes for a denied publish gets DISCONNECT 0x87 first.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import uuid
from collections import deque
from typing import Any

from unkai.services.iot.properties import InvalidProperties, Properties

log = logging.getLogger(__name__)

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
                found.setdefault(ident, []).append(value)  # a User Property may repeat
                continue
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
    if topic_filter.startswith("$share/"):  # a shared subscription: $share/{name}/{filter}
        parts = topic_filter.split("/", 2)
        if len(parts) < 3 or not parts[1] or "+" in parts[1] or "#" in parts[1]:
            return False
        topic_filter = parts[2]
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
        self.keep_alive = 0
        self.client_id = ""
        self.session_expiry = 0  # the CONNECT's Session Expiry Interval (seconds)
        self.publish_properties: Properties | None = None  # those of the PUBLISH last read
        self.deliveries: deque[tuple[bytes, bytes, bytes]] = deque()  # (topic, payload, encoded properties)

    def expect(self, topic: str, payload: bytes, encoded: bytes) -> None:
        """The next PUBLISH amqtt writes with this topic and payload carries ``encoded``."""
        if len(self.deliveries) >= 1024:  # never written (the subscriber went away): forget the oldest
            self.deliveries.popleft()
        self.deliveries.append((topic.encode(), bytes(payload), encoded))

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
        self.session_expiry = props.get(0x11, 0)
        if self.session_expiry == 0:
            flags |= 0x02  # no session expiry: nothing outlives the connection (a clean session in 3.1.1)
        self.keep_alive, self.client_id = keep_alive, client_id.decode("utf-8", "replace")
        out = bytearray(_string(b"MQTT") + bytes([4, flags]) + b"\x00\x00" + _string(client_id))
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
            try:
                self.publish_properties = Properties.from_mqtt(props)
            except InvalidProperties:
                raise ProtocolError(0x81) from None
            return packet(first, _string(topic) + packet_id + c.rest())
        if kind in (4, 5, 6, 7):  # PUBACK, PUBREC, PUBREL, PUBCOMP: the packet id alone
            return packet(first, c.take(2))
        if kind == 8:  # SUBSCRIBE
            packet_id = c.take(2)
            c.properties()
            out, valid = bytearray(packet_id), []
            while c.at < len(body):
                topic_filter, options = c.binary(), c.byte()
                ok = _valid_filter(topic_filter.decode("utf-8", "replace"))
                valid.append(ok)
                if not ok:  # a filter amqtt refuses too, so SUBACK says so (0x8F Topic Filter invalid)
                    topic_filter = b"#/invalid"
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
                props = bytes([0x24, MAX_QOS, 0x29, 0, 0x2A, 1, 0x22]) + struct.pack("!H", TOPIC_ALIAS_MAXIMUM)
                if self.assigned_id:
                    props += bytes([0x12]) + _string(self.assigned_id.encode())
            return packet(first, body[:1] + bytes([reason]) + varint(len(props)) + props)
        if kind == 3:  # PUBLISH: the properties the broker named for it, if any
            c = _Cursor(body)
            topic = c.binary()
            packet_id = c.take(2) if (first >> 1) & 3 else b""
            payload = c.rest()
            encoded = b"\x00"
            if self.deliveries:
                for i, (t, p, e) in enumerate(self.deliveries):
                    if t == topic and p == payload:
                        encoded = e
                        del self.deliveries[i]
                        break
            return packet(first, _string(topic) + packet_id + encoded + payload)
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


def _remaining(buffer: bytearray | bytes, at: int = 1) -> tuple[int, int] | None:
    """(remaining length, where the body starts) of the packet at the start of ``buffer``,
    None while incomplete; ProtocolError when the length takes more than 4 bytes."""
    length, shift = 0, 0
    for i in range(at, min(at + 4, len(buffer))):
        byte = buffer[i]
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return length, i + 1
        shift += 7
    if len(buffer) >= at + 4:
        raise ProtocolError(0x81)
    return None


def _connect_v3(body: bytes) -> tuple[bytes, int, str]:
    """A 3.1.1 CONNECT's body with keep-alive 0 for amqtt, the real keep-alive, the client id."""
    c = _Cursor(body)
    c.binary()
    c.byte()
    c.byte()
    keep_alive = c.u16()
    client_id = c.binary().decode("utf-8", "replace")
    return body[:8] + b"\x00\x00" + body[10:], keep_alive, client_id


class VersionedReader:
    """amqtt's reader for one connection (see the module's docstring), which also:

    - answers a connected client's QoS 0 and 1 PUBLISH itself (``on_publish``: the broker's
      ``accept``, i.e. its policy check and the publish path in one store transaction),
      PUBACK after the commit, so amqtt never parses, queues or acknowledges them;
    - enforces the keep-alive (a connection silent for 1.5 times its keep-alive is closed),
      amqtt being told 0, since amqtt no longer sees every packet.

    Everything else (CONNECT, SUBSCRIBE, PINGREQ, PUBACKs of deliveries, QoS 2...) is handed
    to amqtt as bytes, translated from MQTT 5 first when the client speaks 5.
    """

    CHUNK = 65536

    def __init__(self, chunk: Any, on_publish: Any = None) -> None:
        self._chunk = chunk  # async () -> bytes; b"" at the end of the stream
        self.on_publish = on_publish
        self.translation: Translation | None = None
        self.writer: VersionedWriter | None = None
        self.client_id = ""
        self.keep_alive = 0
        self._in = bytearray()
        self._out = bytearray()
        self._acks = bytearray()
        self._started = False
        self._eof = False
        self._last = 0.0
        self._timer: Any = None

    async def read(self, n: int = -1) -> bytes:
        while (len(self._out) < max(n, 1)) and not self._eof:
            await self._pump()
        if n < 0 or n >= len(self._out):
            out = bytes(self._out)
            self._out.clear()
        else:
            out = bytes(self._out[:n])
            del self._out[:n]
        return out

    def feed_eof(self) -> None:
        self._eof = True

    async def _pump(self) -> None:
        try:
            data = await self._chunk()
        except Exception:  # noqa: BLE001 - a reset connection is the end of its stream
            data = b""
        if not data:
            self._end()
            return
        self._last = asyncio.get_running_loop().time()
        self._in += data
        acked = False
        try:
            while self._in and not self._eof:
                found = _remaining(self._in)
                if found is None:
                    break
                length, at = found
                if len(self._in) < at + length:
                    break
                first, body = self._in[0], bytes(self._in[at:at + length])
                del self._in[:at + length]
                if not self._started:
                    self._started = True
                    await self._connect(first, body)
                    continue
                if self.translation is not None:
                    translated = self.translation.inbound(first, body)
                    if translated is None:  # MQTT 5 DISCONNECT with the will: end as if lost
                        self._end()
                        break
                    first, body = translated[0], translated[_remaining(translated)[1]:]  # type: ignore[index]
                if first >> 4 == 3 and self._fast(first, body):
                    acked |= (first >> 1) & 3 == 1
                    continue
                self._out += packet(first, body)
        except ProtocolError as exc:
            await self._refuse(exc.reason)
            self._end()
        if acked and self.writer is not None:
            try:
                self._flush()
                await self.writer.inner.drain()
            except Exception:  # noqa: BLE001
                self._end()

    def _end(self) -> None:
        self._eof = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _connect(self, first: int, body: bytes) -> None:
        if first >> 4 != 1 or len(body) < 10 or body[:6] != b"\x00\x04MQTT":
            raise ProtocolError(0x81)
        if body[6] == 5:
            self.translation = Translation()
            if self.writer is not None:
                self.writer.start(self.translation)
            connect = self.translation.connect(body)
            self.keep_alive, self.client_id = self.translation.keep_alive, self.translation.client_id
        elif body[6] == 4:
            rewritten, self.keep_alive, self.client_id = _connect_v3(body)
            connect = packet(first, rewritten)
        else:
            connect = packet(first, body)  # amqtt answers an unknown level with return code 0x01
        self._out += connect
        if self.keep_alive:
            self._arm(self.keep_alive * 1.5)

    def _arm(self, delay: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(delay, self._check)

    def _check(self) -> None:
        """The keep-alive: [MQTT-3.1.2-24] a client silent for 1.5 keep-alives is disconnected."""
        self._timer = None
        if self._eof:
            return
        idle = asyncio.get_running_loop().time() - self._last
        limit = self.keep_alive * 1.5
        if idle < limit:
            self._arm(limit - idle)
            return
        log.info("MQTT client %s: no packet for %.0f s (keep-alive %d s), closing", self.client_id, idle,
                 self.keep_alive)
        if self.writer is not None:
            asyncio.ensure_future(self.writer.inner.close())

    def _fast(self, first: int, body: bytes) -> bool:
        """Handle a 3.1.1 PUBLISH here, or False to hand it to amqtt (QoS 2, not connected yet,
        a client id amqtt generated)."""
        qos = (first >> 1) & 3
        writer = self.writer
        properties = None
        if self.translation is not None:  # read with this PUBLISH (amqtt's own path drops them)
            properties, self.translation.publish_properties = self.translation.publish_properties, None
        if self.on_publish is None or qos > 1 or writer is None or not writer.connected or not self.client_id:
            return False
        c = _Cursor(body)
        topic = c.binary().decode("utf-8", "replace")
        packet_id = c.take(2) if qos else b""
        payload = c.rest()
        if not self.on_publish(self.client_id, topic, payload, qos, bool(first & 1), properties):
            self._flush()
            if self.translation is not None:  # an MQTT 5 client learns why (DISCONNECT 0x87 Not authorized)
                self.translation.closing_reason = 0x87
                writer.inner.write(disconnect(0x87))
            self._end()
            asyncio.ensure_future(writer.inner.close())
            return True
        if qos:
            self._acks += b"\x40\x02" + packet_id  # PUBACK (the same bytes in MQTT 5: Success)
        return True

    def _flush(self) -> None:
        """Write the PUBACKs of one read's messages at once (one TLS record, one send)."""
        if self._acks and self.writer is not None:
            self.writer.inner.write(bytes(self._acks))
            self._acks.clear()

    async def _refuse(self, reason: int) -> None:
        """End a connection: an MQTT 5 client gets the reason code (in CONNACK before it is
        connected, else in DISCONNECT); a malformed 3.1.1 stream is just closed."""
        writer = self.writer
        if writer is None:
            return
        try:
            if self.translation is not None:
                writer.inner.write(disconnect(reason) if writer.connected else packet(0x20, bytes([0, reason, 0])))
                await writer.inner.drain()
            await writer.inner.close()
        except Exception:  # noqa: BLE001 - the peer may be gone already
            pass


class VersionedWriter:
    """amqtt's writer for one connection (see ``VersionedReader``)."""

    def __init__(self, inner: Any, reader: VersionedReader) -> None:
        self.inner = inner
        self.translation: Translation | None = None
        self.connected = False
        self._pending = b""
        reader.writer = self
        self.drain = inner.drain  # type: ignore[method-assign]

    def start(self, translation: Translation) -> None:
        self.translation = translation

    def write(self, data: bytes) -> None:  # type: ignore[method-assign]
        if self.translation is None:
            # 3.1.1: amqtt's first packet is its CONNACK; after it, amqtt writes straight through
            if not self.connected and len(data) >= 4 and data[0] >> 4 == 2:
                self.connected = data[3] == 0
            if self.connected:
                self.write = self.inner.write  # type: ignore[method-assign]
            self.inner.write(data)
            return
        self._pending += data
        while len(self._pending) >= 2:
            found = _remaining(self._pending)
            if found is None:
                return
            length, at = found
            if len(self._pending) < at + length:
                return
            first, body = self._pending[0], self._pending[at:at + length]
            self._pending = self._pending[at + length:]
            if first >> 4 == 2:
                self.connected = len(body) > 1 and body[1] == 0
            self.inner.write(self.translation.outbound(first, body))

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


def stream_adapters(reader: Any, writer: Any, on_publish: Any = None) -> tuple[VersionedReader, VersionedWriter]:
    """A TLS connection's reader and writer for amqtt (``reader``/``writer``: asyncio streams)."""
    from amqtt.adapters import StreamWriterAdapter

    versioned = VersionedReader(lambda: reader.read(VersionedReader.CHUNK), on_publish)
    return versioned, VersionedWriter(StreamWriterAdapter(writer), versioned)


def websocket_adapters(connection: Any, on_publish: Any = None) -> tuple[VersionedReader, VersionedWriter]:
    """A WebSocket connection's reader and writer for amqtt (MQTT packets in binary messages)."""
    from amqtt.adapters import WebSocketsWriter

    async def chunk() -> bytes:
        message = await connection.recv()
        return message.encode() if isinstance(message, str) else message

    versioned = VersionedReader(chunk, on_publish)
    return versioned, VersionedWriter(WebSocketsWriter(connection), versioned)
