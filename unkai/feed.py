"""The event feed: one stream of what happens in the cloud (invocations, deliveries,
API requests, mail, errors, state changes) that the terminal, the dashboard and tests
all read.

Services publish small JSON-ready dicts with ``cloud.feed.publish(kind, **fields)``;
``kind`` is dotted, service first (``lambda.invoke``, ``sqs.dlq``, ``apigateway.request``,
``ses.send``). Each event gets an increasing ``id`` and unkai's clock ``time``. The feed
keeps only the newest ``size`` events in memory: it is a view of what is happening, not
a record (durable state stays in the store), so publishing is O(1), never blocks and
never fails the publisher. Readers catch up with ``since(after_id)`` and wait for more
with ``wait(after_id, timeout)``; ``GET /_unkai/feed?after=ID&wait=S`` is the same over
HTTP, and in-process readers (the terminal) can ``subscribe`` a callback.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import secrets
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unkai.clock import Clock
    from unkai.signals import Signals

log = logging.getLogger(__name__)

Event = dict[str, Any]
_KEY = ("unkai", "feed")
_RESERVED = ("id", "time", "kind")  # a publisher's field never shadows the feed's own

# What set the current work going ("sqs orders", "POST /prod/questions", "Invoke"...): set by
# whoever starts work for someone else, read by the publishers of ``lambda.invoke`` and the
# like. A context variable, so it follows the work through awaits and into tasks it starts.
TRIGGER: contextvars.ContextVar[str] = contextvars.ContextVar("unkai_trigger", default="")


# The X-Ray trace root (``1-5f84c7a1-6c4d1a0b2e3f405162738495``) of the request this work serves,
# carried as AWS carries it: the ``X-Amzn-Trace-Id`` header of an API call (boto3 inside a
# function sends ``_X_AMZN_TRACE_ID``, which unkai sets per invocation), an SQS message's
# ``AWSTraceHeader``, an API Gateway request's own trace id. ``publish`` stamps it on events as
# ``trace``, so the dashboard follows one request across services.
TRACE: contextvars.ContextVar[str] = contextvars.ContextVar("unkai_trace", default="")


def trace_root(header: str | None) -> str:
    """The ``Root`` of an X-Ray trace header (``Root=1-...;Parent=...;Sampled=0``), or ''."""
    for part in (header or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == "Root" and value:
            return value[:64]
    return ""


def new_trace(epoch: float) -> str:
    """A new trace root, shaped as X-Ray shapes them (version, epoch seconds in hex, 96 random bits)."""
    return f"1-{int(epoch):08x}-{secrets.token_hex(12)}"


def trace_header(root: str) -> str:
    """The header a traced call passes on (``_X_AMZN_TRACE_ID``, ``AWSTraceHeader``)."""
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled=0"


def triggered_by(label: str) -> contextvars.Token:
    """Mark the current task's work as caused by ``label``; returns the token to reset it."""
    return TRIGGER.set(label)


def is_failure(event: Event) -> bool:
    """Whether an event tells of something that went wrong (shown red in the terminal and
    the dashboard, and counted as an error)."""
    kind = event.get("kind", "")
    if kind == "lambda.invoke":
        return event.get("status") in ("error", "throttled")
    if kind == "apigateway.request":
        return int(event.get("status") or 0) >= 500
    if kind == "lambda.durable":
        return event.get("status") in ("FAILED", "TIMED_OUT")
    return kind in ("lambda.async_retry", "lambda.async_failed", "sqs.dlq", "delivery.failed") or \
        kind.endswith((".error", ".failed"))


class Feed:
    def __init__(self, clock: "Clock", signals: "Signals", size: int = 10_000) -> None:
        self.clock = clock
        self.signals = signals
        self.events: deque[Event] = deque(maxlen=size)
        self.last_id = 0
        self._subscribers: list[Callable[[Event], None]] = []

    def publish(self, kind: str, **fields: Any) -> Event:
        """Record that ``kind`` happened; wakes every waiting reader."""
        self.last_id += 1
        event = {"id": self.last_id, "time": self.clock.now(), "kind": kind,
                 **{k: v for k, v in fields.items() if v is not None and k not in _RESERVED}}
        if "trace" not in event and TRACE.get():
            event["trace"] = TRACE.get()
        self.events.append(event)
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:  # a reader's bug must not break the publisher
                log.exception("feed subscriber failed")
        self.signals.notify(_KEY)
        return event

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event from now on; returns the unsubscriber."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def since(self, after: int = 0, kinds: tuple[str, ...] = (), limit: int = 1000) -> list[Event]:
        """Events with an id above ``after`` (oldest first), optionally only those whose
        kind starts with one of ``kinds``."""
        if after >= self.last_id or not self.events:
            return []
        # ids are consecutive in the deque, so the first wanted one is found by arithmetic:
        # a reader that is up to date costs O(new events), not O(size).
        start = max(0, after - self.events[0]["id"] + 1)
        found: list[Event] = []
        for event in itertools.islice(self.events, start, None):
            if not kinds or event["kind"].startswith(kinds):
                found.append(event)
                if len(found) >= limit:
                    break
        return found

    async def wait(self, after: int, timeout: float, kinds: tuple[str, ...] = ()) -> list[Event]:
        """``since(after)``, waiting up to ``timeout`` real seconds for the first new event."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = self.since(after, kinds)
            remaining = deadline - loop.time()
            if found or remaining <= 0:
                return found
            await self.signals.wait(_KEY, timeout=remaining)
