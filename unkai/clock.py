"""One clock for everything time-based in unkai.

It follows wall time plus an offset that ``POST /_unkai/clock/advance`` moves
forward, so tests never sleep: visibility timeouts, message delays, retention,
TTL, retries, schedules and presigned-URL expiry all read ``clock.now()``, and
timers set with ``call_at`` fire as soon as an advance makes them due.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import itertools
import logging
import math
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Timer:
    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], Any]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    def __init__(self, offset: float = 0.0) -> None:
        if not math.isfinite(offset) or offset < 0:  # a state dir broken by an older unkai: start over
            offset = 0.0
        self.offset = offset
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._handle: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None
        self._on_advance: list[Callable[[float], Any]] = []
        self._history: list[tuple[float, float]] = [(0.0, offset)]  # (wall time, offset from then on)

    def now(self) -> float:
        return time.time() + self.offset

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def call_at(self, when: float, callback: Callable[[], Any]) -> Timer:
        """Run ``callback`` on the event loop once ``now() >= when``."""
        timer = Timer(when, callback)
        heapq.heappush(self._heap, (when, next(self._seq), timer))
        if self._armed_for is None or when < self._armed_for:
            self._arm()
        return timer

    def call_later(self, delay: float, callback: Callable[[], Any]) -> Timer:
        return self.call_at(self.now() + delay, callback)

    async def sleep_until(self, when: float) -> None:
        if self.now() >= when:
            return
        fut = asyncio.get_running_loop().create_future()
        timer = self.call_at(when, lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            timer.cancel()

    def advance(self, seconds: float) -> None:
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError("the clock only moves forward, by a finite number of seconds")
        self.offset += seconds
        self._history.append((time.time(), self.offset))
        for listener in list(self._on_advance):
            listener(self.offset)
        self._fire()

    def offset_at(self, wall_time: float) -> float:
        """The offset that was in effect at a wall-clock time (since this process started):
        what unkai's clock read then, for timestamps clients took from the wall clock
        (a presigned URL's signing time)."""
        i = bisect.bisect_right(self._history, (wall_time, float("inf"))) - 1
        return self._history[max(i, 0)][1]

    def on_advance(self, listener: Callable[[float], Any]) -> None:
        self._on_advance.append(listener)

    def _arm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        if not self._heap:
            self._armed_for = None
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._armed_for = None
            return
        when = self._heap[0][0]
        self._armed_for = when
        self._handle = loop.call_later(max(0.0, when - self.now()), self._fire)

    def _fire(self) -> None:
        now = self.now()
        due = []
        while self._heap and (self._heap[0][0] <= now or self._heap[0][2].cancelled):
            _, _, timer = heapq.heappop(self._heap)
            if not timer.cancelled:
                due.append(timer)
        self._armed_for = None
        self._arm()
        for timer in due:
            timer.cancelled = True
            try:
                timer.callback()
            except Exception:  # one failing timer must not drop the others due at the same moment
                log.exception("a clock timer's callback failed")
