"""In-process wake-ups: a long poll or an event-source poller waits on a key, and
whoever commits a change under that key notifies it, so delivery starts within
milliseconds of the event and nobody polls on an interval."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Hashable

from unkai.clock import Clock


class Signals:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._waiters: dict[Hashable, set[asyncio.Future]] = defaultdict(set)
        clock.on_advance(lambda _offset: self.notify_all())

    def watch(self, key: Hashable, until: float | None = None, timeout: float | None = None) -> asyncio.Future:
        """A future that ``notify(key)`` resolves with True, or with False when ``until``
        (clock time) or ``timeout`` (real seconds) came first. It is registered at once, so
        a notify that comes before anyone awaits it is not missed (a coroutine handed to
        ``asyncio.wait_for`` or ``ensure_future`` on Python 3.11 only starts later)."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        waiters = self._waiters[key]
        waiters.add(fut)
        handles = []
        if until is not None:
            handles.append(self.clock.call_at(until, lambda: fut.done() or fut.set_result(False)))
        if timeout is not None:
            handles.append(loop.call_later(max(timeout, 0.0), lambda: fut.done() or fut.set_result(False)))

        def forget(_: asyncio.Future) -> None:
            found = self._waiters.get(key)
            if found is not None:
                found.discard(fut)
                if not found:
                    del self._waiters[key]
            for handle in handles:
                handle.cancel()
        fut.add_done_callback(forget)
        return fut

    async def wait(self, key: Hashable, until: float | None = None, timeout: float | None = None) -> bool:
        """Wait for ``notify(key)``; False when ``until`` (clock time) or ``timeout`` (real
        seconds) came first."""
        fut = self.watch(key, until, timeout)
        try:
            return await fut
        finally:
            if not fut.done():  # the waiter was cancelled
                fut.cancel()

    def notify(self, key: Hashable) -> None:
        for fut in self._waiters.get(key, ()):
            if not fut.done():
                fut.set_result(True)

    def notify_all(self) -> None:
        """Wake everyone (the clock moved): each waiter re-checks its own condition."""
        for waiters in list(self._waiters.values()):
            for fut in waiters:
                if not fut.done():
                    fut.set_result(True)
