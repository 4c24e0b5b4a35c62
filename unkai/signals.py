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

    async def wait(self, key: Hashable, until: float | None = None) -> bool:
        """Wait for ``notify(key)``; False when ``until`` (clock time) came first."""
        fut = asyncio.get_running_loop().create_future()
        waiters = self._waiters[key]
        waiters.add(fut)
        timer = None
        if until is not None:
            timer = self.clock.call_at(until, lambda: fut.done() or fut.set_result(False))
        try:
            return await fut
        finally:
            waiters.discard(fut)
            if not waiters:
                self._waiters.pop(key, None)
            if timer is not None:
                timer.cancel()

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
