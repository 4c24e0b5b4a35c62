"""The MQTT load generator of bench/iot.py, run as its own process (one per core).

It has to offer 10,000 QoS 1 messages/s from 1,000 TLS connections while using little
CPU, so that the broker, not the generator, is what is measured:

- raw asyncio TLS transports (uvloop when importable), no MQTT library;
- CONNECT and PUBLISH packets encoded once per client, only the packet id patched in;
- one scheduler, not a timer per client: the period (``batch / rate`` seconds) is cut into
  5 ms ticks and each tick writes to the clients of its slot, so every client sends
  ``rate`` messages/s, ``batch`` packets per write; a generator behind schedule catches up
  at once and the per-second "offered" counts show it;
- PUBACKs recognised by their fixed header alone (``0x40 0x02`` + packet id), the
  latency taken from the send time kept per packet id.

Protocol with the parent: it prints ``ready CONNECTED REFUSED`` once its clients are
connected, reads ``go T0`` (a time.monotonic() value, shared by all processes on Linux)
from stdin, publishes from T0 for SECONDS, waits up to DRAIN seconds for the last
PUBACKs, and prints one JSON line.

    python bench/iot_load.py --port P --ca CA --cert C --key K --first 0 --count 500 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time

TICK = 0.005


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def connect_packet(client_id: str, keep_alive: int) -> bytes:
    body = _utf8("MQTT") + bytes([4, 0x02]) + keep_alive.to_bytes(2, "big") + _utf8(client_id)
    return b"\x10" + _varint(len(body)) + body


class Client(asyncio.Protocol):
    """One MQTT connection: its pre-encoded PUBLISH and the send time of each packet id."""

    def __init__(self, gen: Generator, index: int, payload: bytes) -> None:
        self.gen = gen
        topic = _utf8(f"bench/load/{index}")
        body_len = len(topic) + 2 + len(payload)
        head = b"\x32" + _varint(body_len) + topic
        self.template = bytearray(head + b"\0\0" + payload)
        self.pid_at = len(head)
        self.sent_at = [0.0] * 65536
        self.pid = 0
        self.buf = b""
        self.connack: asyncio.Future = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.connack.done():
            self.connack.set_result(-1)
        self.gen.lost += 1

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        pos, end = 0, len(buf)
        gen = self.gen
        now = time.monotonic()
        while end - pos >= 2:
            first, length = buf[pos], buf[pos + 1]
            if length & 0x80:  # a long packet (none expected): decode the remaining length
                length, shift, i = 0, 0, pos + 1
                while i < end:
                    length |= (buf[i] & 0x7F) << shift
                    shift += 7
                    i += 1
                    if not buf[i - 1] & 0x80:
                        break
                else:
                    break
                start = i
            else:
                start = pos + 2
            if end - start < length:
                break
            if first == 0x40:  # PUBACK
                sent = self.sent_at[(buf[start] << 8) | buf[start + 1]]
                gen.ack(now, now - sent)
            elif first == 0x20 and not self.connack.done():  # CONNACK
                self.connack.set_result(buf[start + 1])
            pos = start + length
        self.buf = buf[pos:] if pos < end else b""

    def publish(self, n: int, now: float) -> None:
        """Write N PUBLISH packets at once."""
        out = []
        template, at, sent_at = self.template, self.pid_at, self.sent_at
        for _ in range(n):
            pid = self.pid % 65535 + 1
            self.pid = pid
            template[at] = pid >> 8
            template[at + 1] = pid & 0xFF
            sent_at[pid] = now
            out.append(bytes(template))
        self.transport.write(b"".join(out) if n > 1 else out[0])  # type: ignore[union-attr]


class Generator:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        buckets = int(args.seconds + args.drain) + 3
        self.offered = [0] * buckets
        self.acked = [0] * buckets
        self.latencies: list[float] = []
        self.t0 = 0.0
        self.total_acked = 0
        self.lost = 0

    def ack(self, now: float, latency: float) -> None:
        self.total_acked += 1
        if self.t0:
            second = int(now - self.t0)
            if 0 <= second < len(self.acked):
                self.acked[second] += 1
            self.latencies.append(latency)

    async def run(self) -> None:
        args = self.args
        loop = asyncio.get_running_loop()
        context = ssl.create_default_context(cafile=args.ca)
        context.load_cert_chain(args.cert, args.key)
        gate = asyncio.Semaphore(args.concurrency)
        payload = json.dumps({"v": 1, "pad": "x" * max(0, args.payload - 16)}).encode()

        async def connect(i: int) -> Client | None:
            async with gate:
                try:
                    _, client = await loop.create_connection(lambda: Client(self, i, payload), "127.0.0.1",
                                                             args.port, ssl=context, server_hostname="localhost")
                    client.transport.write(connect_packet(f"load-{i}", args.keep_alive))
                    code = await asyncio.wait_for(client.connack, 60)
                except (OSError, asyncio.TimeoutError, ssl.SSLError):
                    return None
                return client if code == 0 else None

        got = await asyncio.gather(*(connect(i) for i in range(args.first, args.first + args.count)))
        clients = [c for c in got if c is not None]
        print(f"ready {len(clients)} {args.count - len(clients)}", flush=True)
        line = await loop.run_in_executor(None, sys.stdin.readline)
        self.t0 = t0 = float(line.split()[1])
        self.lost = 0
        period = args.batch / args.rate
        slots = max(1, round(period / TICK))
        tick = period / slots
        by_slot = [clients[s::slots] for s in range(slots)]
        ticks = round(args.seconds / tick)
        cpu0 = time.process_time()
        await asyncio.sleep(max(0.0, t0 - time.monotonic()))
        behind = 0.0
        for k in range(ticks):
            due = t0 + k * tick
            now = time.monotonic()
            if now < due:
                await asyncio.sleep(due - now)
                now = time.monotonic()
            else:
                behind = max(behind, now - due)
                if k % slots == 0:
                    await asyncio.sleep(0)  # let PUBACKs in even when behind
            second = int(now - t0)
            group = by_slot[k % slots]
            for client in group:
                client.publish(args.batch, now)
            if second < len(self.offered):
                self.offered[second] += len(group) * args.batch
        sent_end = time.monotonic()
        offered = ticks // slots * len(clients) * args.batch + sum(len(by_slot[s]) for s in range(ticks % slots)) \
            * args.batch
        deadline = sent_end + args.drain
        while self.total_acked < offered and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        cpu = time.process_time() - cpu0
        lost = self.lost  # before our own closes
        for client in clients:
            client.transport.write(b"\xe0\x00")
            client.transport.close()
        print(json.dumps({"connected": len(clients), "refused": args.count - len(clients), "offered": offered,
                          "acknowledged": self.total_acked, "offered_per_second": self.offered,
                          "acknowledged_per_second": self.acked, "send_seconds": round(sent_end - t0, 3),
                          "max_behind_schedule_s": round(behind, 4), "connections_lost": lost,
                          "cpu_seconds": round(cpu, 3),
                          "latencies_us": [int(x * 1e6) for x in self.latencies]}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=10, help="messages/s per client")
    parser.add_argument("--batch", type=int, default=1, help="PUBLISH packets per write")
    parser.add_argument("--payload", type=int, default=16, help="payload bytes (about)")
    parser.add_argument("--drain", type=float, default=5, help="seconds to wait for the last PUBACKs")
    parser.add_argument("--keep-alive", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=50, help="TLS handshakes at once")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(Generator(args).run())
    else:
        uvloop.run(Generator(args).run())


if __name__ == "__main__":
    main()
