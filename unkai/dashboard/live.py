"""Live updates: the event feed (``cloud.feed``, unkai/feed.py) as Server-Sent Events.

There is one feed; this is only another reader of it, like the terminal. Each browser
connection waits on the feed with ``Feed.wait`` and sends what arrived as one SSE message
holding a JSON list, so a burst of events costs one write, not one per event, and a
connection never sends more than ``BATCH`` events at once (the newest; the browser is told
how many it missed). A connection ends when the client goes away or after ``LIFETIME``
seconds; ``EventSource`` then reconnects with ``Last-Event-ID`` and misses nothing the feed
still holds. Nothing here keeps events: memory is bounded by the feed's own ``size``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from unkai.http import Request, Response

if TYPE_CHECKING:
    from unkai.feed import Feed

BATCH = 200        # events per message at most
COALESCE = 0.2     # seconds to gather a burst into one message
HEARTBEAT = 15.0   # a comment line this often keeps proxies and the browser from timing out
LIFETIME = 300.0   # then the browser reconnects (and a forgotten tab holds nothing for long)


def start_id(request: Request, feed: "Feed") -> int:
    """Where a connection starts: ``Last-Event-ID`` (a reconnect), else ``?after=``, else now."""
    for raw in (request.headers.get("last-event-id"), request.query_dict().get("after")):
        if raw and raw.strip().isdigit():
            return min(int(raw), feed.last_id)
    return feed.last_id


def events(request: Request, feed: "Feed") -> Response:
    after = start_id(request, feed)
    return Response(200, [("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-store"),
                          ("x-accel-buffering", "no")], _stream(request, feed, after))


async def _stream(request: Request, feed: "Feed", after: int) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    gone = asyncio.ensure_future(request.disconnected())
    deadline = loop.time() + LIFETIME
    try:
        yield f"retry: 2000\nid: {after}\nevent: hello\ndata: {json.dumps({'last': feed.last_id})}\n\n".encode()
        while not gone.done() and loop.time() < deadline:
            waiter = asyncio.ensure_future(feed.wait(after, min(HEARTBEAT, deadline - loop.time())))
            await asyncio.wait({waiter, gone}, return_when=asyncio.FIRST_COMPLETED)
            if gone.done():
                waiter.cancel()
                break
            found = waiter.result()
            if not found:
                yield b": still here\n\n"
                continue
            await asyncio.sleep(COALESCE)  # let the rest of a burst arrive
            missed = max(0, feed.last_id - after - BATCH)
            found = feed.since(after + missed, limit=BATCH)
            if not found:
                continue
            after = found[-1]["id"]
            data = json.dumps({"events": found, "missed": missed}, ensure_ascii=False, default=str)
            yield f"id: {after}\ndata: {data}\n\n".encode()
    finally:
        gone.cancel()
