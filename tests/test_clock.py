"""unkai's clock: timers due at the same moment all run, even when one of them fails."""

from __future__ import annotations

import asyncio
import logging

from unkai.clock import Clock


def test_a_failing_timer_does_not_drop_the_others_due_with_it(caplog):
    ran: list[str] = []

    def boom() -> None:
        ran.append("boom")
        raise RuntimeError("a service's timer failed")

    async def main() -> None:
        clock = Clock()
        when = clock.now() + 3600
        clock.call_at(when, boom)
        clock.call_at(when, lambda: ran.append("second"))
        clock.call_at(when + 60, lambda: ran.append("later"))
        clock.advance(3600 + 120)
        await asyncio.sleep(0)

    with caplog.at_level(logging.ERROR, logger="unkai.clock"):
        asyncio.run(main())
    assert ran == ["boom", "second", "later"]
    assert "a clock timer's callback failed" in caplog.text
