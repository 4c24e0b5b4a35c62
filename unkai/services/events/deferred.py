"""PutEvents answers before its events are routed, as AWS does, without losing any.

AWS delivers an accepted event to its rules' targets asynchronously: PutEvents only
accepts it. unkai does the same so the call answers at once: the handler writes ONE
durable outbox job (``events.put``, ``unkai.jobs``) holding the call's accepted events, in
the request's transaction, so an acknowledged PutEvents survives kill -9. Once that
commits, the events are routed and delivered by a loop callback queued at commit time
(``loop.call_soon``), which runs right after the response is written and before the
loop reads any later request, so a client that receives from a target queue after
PutEvents finds the message there, as before. That callback deletes the job row in the
transaction that writes the deliveries: whoever deletes the row delivers, so the events
are delivered exactly once.

The mechanism is ``unkai.jobs.Jobs.soon`` (SES's sends use it too): the callback is the
row's normal path, and the jobs runner does not see it. If unkai stopped (or was killed)
between the commit and the callback, the row is handed over to the runner as a due job at
the next start (``drain`` counts it until it is done); so is a row whose routing raised.
The runner's handler (``run_put``, through ``Jobs.run_claimed``) claims it by the token in
its payload. Routing is the same code either way
(``route_all``), so rules, targets, input transformers, retry policies, dead-letter queues
and archives behave as when delivery was synchronous.

The job is compact, because encoding it is on the answer's path and its cost goes by
the number of strings in it: ``{"t": token (the first id), "a": account, "r": region,
"b": the first event's bus, "w": the call's time, "i": the ids joined (36 characters
each), "f": source, detail-type and Detail text three by three, joined by NUL
(``compact``), "x": [[index, bus, time, resources], ...] for the events on another bus,
with a Time of their own or with Resources]}``. The callback builds the events from it
and the Details the handler parsed; the runner parses the Details again. Rows written
before this form (``"e"``: one list an event) still route.

A caller off the event loop (a thread) gets the synchronous path: its events are routed
in its own transaction."""

from __future__ import annotations

import json
import logging
from typing import Any

from unkai import ids

log = logging.getLogger(__name__)

PUT_JOB = "events.put"
MAX_ATTEMPTS = 185  # EventBridge's own retry limit for an event it cannot deliver


def compact(flat: list[str]) -> str | list[str]:
    """The job's ``"f"``: the strings joined by NUL, one string to encode instead of three an
    event; the list itself if one of them holds a NUL (a valid Detail never does: JSON has
    no raw control characters, but a Source or DetailType might)."""
    joined = "\0".join(flat)
    return joined if joined.count("\0") == len(flat) - 1 else flat


def _strings(job: dict[str, Any]) -> list[str]:
    """A job's ``"f"`` as the list ``compact`` was given."""
    flat = job["f"]
    return flat.split("\0") if isinstance(flat, str) else flat


def events(job: dict[str, Any], details: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """The (bus, event) pairs, for ``route_all``, of an ``events.put`` job and its events'
    parsed Details (see the module's docstring)."""
    account, region, bus, time, event_ids, flat = job["a"], job["r"], job["b"], job["w"], job["i"], _strings(job)
    odd = {k: (b, w, resources) for k, b, w, resources in job["x"]}
    out = []
    for k, detail in enumerate(details):
        found = odd.get(k)
        b, w, resources = found if found is not None else (bus, time, [])
        i = 3 * k
        out.append((b, {"version": "0", "id": event_ids[36 * k:36 * k + 36], "detail-type": flat[i + 1],
                        "source": flat[i], "account": account, "time": w, "region": region,
                        "resources": resources, "detail": detail}))
    return out


def _old_events(job: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The (bus, event) pairs of a job written before the compact form: one row an event."""
    account, region = job["a"], job["r"]
    return [(bus, {"version": "0", "id": event_id, "detail-type": detail_type, "source": source,
                   "account": account, "time": time, "region": region, "resources": resources,
                   "detail": json.loads(detail)})
            for bus, event_id, source, detail_type, time, resources, detail in job["e"]]


class DeferredDelivery:
    """Mixed into ``Events``: accepting a PutEvents' events now, routing them just after."""

    def defer(self, job: dict[str, Any], details: list[Any]) -> None:
        """Make a PutEvents' accepted events durable in the current transaction (``job``,
        the events compact, as the module says) and route them once it commits; routed at
        once when there is no running loop in this thread. ``details`` are their parsed Details."""

        def route() -> None:
            self.route_all(job["a"], job["r"], events(job, details))  # type: ignore[attr-defined]
            # the ids the next request takes are made now, after this answer, not during the next one
            ids.refill()

        self.cloud.jobs.soon(PUT_JOB, job["t"], job, route)  # type: ignore[attr-defined]

    async def run_put(self, job: dict[str, Any], attempt: int) -> None:
        """The jobs runner's handler for an ``events.put`` row no callback claimed (unkai
        stopped before it ran): claimed by its token, its events rebuilt and routed; given
        up after EventBridge's 185 attempts."""
        self.cloud.jobs.run_claimed(PUT_JOB, job, attempt, self._route_job, MAX_ATTEMPTS)  # type: ignore[attr-defined]

    def _route_job(self, job: dict[str, Any], attempt: int) -> None:
        self.route_all(job["a"], job["r"], _old_events(job) if "e" in job  # type: ignore[attr-defined]
                       else events(job, [json.loads(text) for text in _strings(job)[2::3]]))

    def forget_deferred(self) -> None:
        """Stop or reset: callbacks already queued leave their rows to the jobs runner."""
        self.cloud.jobs.forget_soon(PUT_JOB)  # type: ignore[attr-defined]
