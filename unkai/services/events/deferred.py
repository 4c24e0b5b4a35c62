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
and archives behave as when delivery was synchronous. The row holds each event flat, its
``Detail`` as the entry's text, which costs less to write than the parsed event.

A caller off the event loop (a thread) gets the synchronous path: its events are routed
in its own transaction."""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger(__name__)

PUT_JOB = "events.put"
MAX_ATTEMPTS = 185  # EventBridge's own retry limit for an event it cannot deliver


class DeferredDelivery:
    """Mixed into ``Events``: accepting a PutEvents' events now, routing them just after."""

    def defer(self, account: str, region: str, accepted: list[tuple[str, dict[str, Any]]], details: list[str]) -> None:
        """Make ``accepted`` (bus, event) pairs durable in the current transaction and route
        them once it commits; routed at once when there is no running loop in this thread.
        ``details`` are the events' ``Detail`` texts, as the entries gave them."""
        token = accepted[0][1]["id"]  # an event id: unique, and what the claim finds the row by
        # each event flat, its detail as the text it came in (re-encoding the parsed one costs more)
        flat = [[bus, e["id"], e["source"], e["detail-type"], e["time"], e["resources"], text]
                for (bus, e), text in zip(accepted, details)]
        self.cloud.jobs.soon(PUT_JOB, token, {"t": token, "a": account, "r": region, "e": flat},  # type: ignore[attr-defined]
                             lambda: self.route_all(account, region, accepted))  # type: ignore[attr-defined]

    async def run_put(self, job: dict[str, Any], attempt: int) -> None:
        """The jobs runner's handler for an ``events.put`` row no callback claimed (unkai
        stopped before it ran): claimed by its token, its events rebuilt and routed; given
        up after EventBridge's 185 attempts."""
        self.cloud.jobs.run_claimed(PUT_JOB, job, attempt, self._route_job, MAX_ATTEMPTS)  # type: ignore[attr-defined]

    def _route_job(self, job: dict[str, Any], attempt: int) -> None:
        account, region = job["a"], job["r"]
        self.route_all(account, region, [  # type: ignore[attr-defined]
            (bus, {"version": "0", "id": event_id, "detail-type": detail_type, "source": source,
                   "account": account, "time": time, "region": region, "resources": resources,
                   "detail": json.loads(detail)})
            for bus, event_id, source, detail_type, time, resources, detail in job["e"]])

    def forget_deferred(self) -> None:
        """Stop or reset: callbacks already queued leave their rows to the jobs runner."""
        self.cloud.jobs.forget_soon(PUT_JOB)  # type: ignore[attr-defined]
