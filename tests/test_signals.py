"""In-process wake-ups (unkai/signals.py) with a real clock and feed: a waiter is
registered the moment it asks, so a notify that lands before the waiting coroutine next
runs still wakes it. Python 3.11's ``asyncio.wait_for`` and ``ensure_future`` start a
coroutine one loop turn later; a long poll built on them slept through such a notify
(the feed and ``GET /_unkai/mail?wait=`` did, and the mail poll then answered empty)."""

from __future__ import annotations

import asyncio

from unkai.clock import Clock
from unkai.feed import Feed
from unkai.signals import Signals


async def _turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_a_notify_before_anyone_awaits_the_watch_wakes_it() -> None:
    async def scenario() -> tuple[bool, bool]:
        signals = Signals(Clock())
        fut = signals.watch(("k",), timeout=30)
        signals.notify(("k",))
        woken = await fut
        await _turns()
        return woken, not signals._waiters
    assert asyncio.run(scenario()) == (True, True)


def test_a_watch_times_out_false_and_a_cancelled_wait_leaves_no_waiter() -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        signals = Signals(Clock())
        timed_out = await signals.wait(("k",), timeout=0.01)
        task = asyncio.ensure_future(signals.wait(("k",), timeout=30))
        await _turns()
        registered = bool(signals._waiters)
        task.cancel()
        await _turns()
        return timed_out, registered, not signals._waiters
    assert asyncio.run(scenario()) == (False, True, True)


def test_a_feed_reader_started_in_the_turn_an_event_is_published_gets_it_at_once() -> None:
    """The reader's first step runs, finds nothing and waits; the publish is the very next
    callback of the same loop turn. The reader must be done a few turns later, not at its
    30-second timeout."""
    async def scenario() -> tuple[bool, list[str]]:
        clock = Clock()
        feed = Feed(clock, Signals(clock))
        loop = asyncio.get_running_loop()
        reader = asyncio.ensure_future(feed.wait(feed.last_id, timeout=30))
        loop.call_soon(lambda: feed.publish("test.happened"))
        await _turns()
        done = reader.done()
        if not done:
            reader.cancel()
            return False, []
        return True, [e["kind"] for e in reader.result()]
    assert asyncio.run(scenario()) == (True, ["test.happened"])
