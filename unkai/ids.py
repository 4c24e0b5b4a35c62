"""Identifiers AWS hands out, made quickly (the request path makes several per call).

UUIDs are made 64 at a time from one ``os.urandom`` read (one syscall instead of one per
id) and handed out from a deque, whose ``popleft`` is atomic, so two threads never get the
same id; a forked child drops the parent's unused ones."""

from __future__ import annotations

import collections
import os

_BATCH = 64
_ready: collections.deque[str] = collections.deque()


def _fill() -> None:
    raw = bytearray(os.urandom(16 * _BATCH))
    for i in range(0, len(raw), 16):
        raw[i + 6] = (raw[i + 6] & 0x0F) | 0x40  # version 4
        raw[i + 8] = (raw[i + 8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()  # once for the batch; each id is then five slices of it
    _ready.extend([f"{h[i:i + 8]}-{h[i + 8:i + 12]}-{h[i + 12:i + 16]}-{h[i + 16:i + 20]}-{h[i + 20:i + 32]}"
                   for i in range(0, len(h), 32)])


def refill(least: int = _BATCH) -> None:
    """Make ids ahead, so the pool holds at least ``least``: for work that runs after a
    request's answer (PutEvents' routing), so that the next request takes ids already made."""
    while len(_ready) < least:
        _fill()


def uuid4() -> str:
    """A random (version 4) UUID string, as uuid.uuid4() gives, in a fraction of the time."""
    while True:
        try:
            return _ready.popleft()
        except IndexError:
            _fill()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ready.clear)
