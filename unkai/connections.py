"""Connection limits for the HTTP server: slow or idle clients cannot hold it.

uvicorn closes a keep-alive connection idle between requests, but a client that sends
half a request head, or stops in the middle of a body, holds a connection (a file
descriptor and its buffers) for ever, and every process on the machine (or a page's
many fetches) can open as many as it likes. ``Guarded`` is mixed into the server's
protocol class and adds, per connection:

- a head timeout: the request line and headers must arrive within ``HEAD_TIMEOUT``
  seconds of the request's first byte (or of connecting);
- a body idle timeout: while a body is due and unkai is ready to read it, some of it
  must arrive every ``BODY_IDLE_TIMEOUT`` seconds;
- a cap of ``MAX_PER_CLIENT`` open connections per client address: past it, the
  oldest connection of that address that is idle or still sending its head is closed
  (a slowloris evicts itself, not the clients doing work); if every one is busy the
  new one is closed.

One timer per connection, re-armed lazily: a request costs a clock read per packet.
The three numbers can be changed with ``UNKAI_HEAD_TIMEOUT``, ``UNKAI_BODY_IDLE_TIMEOUT``
and ``UNKAI_MAX_CONNECTIONS_PER_CLIENT``.
"""

from __future__ import annotations

import os
from typing import Any


def _setting(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


HEAD_TIMEOUT = _setting("UNKAI_HEAD_TIMEOUT", 20.0)
BODY_IDLE_TIMEOUT = _setting("UNKAI_BODY_IDLE_TIMEOUT", 60.0)
MAX_PER_CLIENT = int(_setting("UNKAI_MAX_CONNECTIONS_PER_CLIENT", 512))

# Open connections by client address, oldest first (a dict as an ordered set).
_OPEN: dict[str, dict[Any, None]] = {}


class Guarded:
    """Mixed in before uvicorn's ``HttpToolsProtocol`` (see the module docstring)."""

    loop: Any
    transport: Any
    client: Any
    flow: Any

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._phase = "head"  # head, body, busy (the app has the request), idle (between requests)
        self._since = self._last = self.loop.time()
        self._timer = self.loop.call_later(HEAD_TIMEOUT, self._check)
        self._address = self.client[0] if self.client else ""
        peers = _OPEN.setdefault(self._address, {})
        peers[self] = None
        if len(peers) > MAX_PER_CLIENT:
            victim = next((p for p in peers if p._phase in ("head", "idle") and p is not self), self)
            victim._close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        super().connection_lost(exc)  # type: ignore[misc]

    def handle_websocket_upgrade(self) -> None:
        self._forget()  # the WebSocket protocol takes the connection over (its own limits apply)
        super().handle_websocket_upgrade()  # type: ignore[misc]

    def _forget(self) -> None:
        address = getattr(self, "_address", "")
        peers = _OPEN.get(address, {})
        peers.pop(self, None)
        if not peers:
            _OPEN.pop(address, None)
        timer = getattr(self, "_timer", None)
        if timer is not None:
            timer.cancel()
            self._timer = None
        self._phase = "gone"

    def data_received(self, data: bytes) -> None:
        self._last = self.loop.time()
        super().data_received(data)  # type: ignore[misc]

    def on_message_begin(self) -> None:
        super().on_message_begin()  # type: ignore[misc]
        self._phase = "head"
        self._since = self.loop.time()
        if self._timer is None:
            self._timer = self.loop.call_later(HEAD_TIMEOUT, self._check)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()  # type: ignore[misc]
        self._phase = "body"

    def on_message_complete(self) -> None:
        super().on_message_complete()  # type: ignore[misc]
        self._phase = "busy"

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if self._phase == "busy":
            self._phase = "idle"

    def _check(self) -> None:
        self._timer = None
        now = self.loop.time()
        if self._phase == "head":
            due = self._since + HEAD_TIMEOUT
        elif self._phase == "body" and not self.flow.read_paused:
            due = self._last + BODY_IDLE_TIMEOUT
        elif self._phase == "body":  # unkai is not reading yet: the client is not late
            due = now + BODY_IDLE_TIMEOUT
        else:
            return  # busy: the app's own timeouts; idle: uvicorn's keep-alive timeout
        if now >= due:
            self._close()
            return
        self._timer = self.loop.call_later(due - now, self._check)

    def _close(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()
