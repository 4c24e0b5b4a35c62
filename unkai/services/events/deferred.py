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

The job is due at once but does not wake the jobs runner (the callback is its normal
path). If unkai stopped (or was killed) between the commit and the callback, the runner
finds the row at its first scan after the restart, and ``drain`` counts it until then; if
routing raised, the callback wakes the runner. ``run_put`` claims the row the same way, by
the token in its payload, so should the runner ever meet a row whose callback is still
queued, one of the two finds it gone and does nothing. Routing is the same code either way
(``route_all``), so rules, targets, input transformers, retry policies, dead-letter queues
and archives behave as when delivery was synchronous.

The job is compact, because encoding it is on the answer's path and its cost goes by
the number of strings in it: ``{"t": token (the first id), "a": account, "r": region,
"b": the first event's bus, "w": the call's time, "i": the ids joined (36 characters
each), "f": source, detail-type and Detail text three by three, joined by NUL
(``compact``), "x": [[index, bus, time, resources], ...] for the events on another bus,
with a Time of their own or with Resources]}``. Rows written before this form (``"e"``: one list an event) still route.

A caller off the event loop (a thread) gets the synchronous path: its events are routed
in its own transaction."""

from __future__ import annotations

import asyncio
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


def events(job: dict[str, Any], details: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """The (bus, event) pairs, for ``route_all``, of an ``events.put`` job and its events'
    parsed Details (see ``DeferredDelivery``)."""
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


def _strings(job: dict[str, Any]) -> list[str]:
    """A job's ``"f"`` as the list ``compact`` was given."""
    flat = job["f"]
    return flat.split("\0") if isinstance(flat, str) else flat


def _old_events(job: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The (bus, event) pairs of a job written before the compact form: one row an event."""
    account, region = job["a"], job["r"]
    return [(bus, {"version": "0", "id": event_id, "detail-type": detail_type, "source": source,
                   "account": account, "time": time, "region": region, "resources": resources,
                   "detail": json.loads(detail)})
            for bus, event_id, source, detail_type, time, resources, detail in job["e"]]


class DeferredDelivery:
    """Mixed into ``Events``: accepting a PutEvents' events now, routing them just after."""

    _epoch = 0  # bumped when the store is replaced (reset) or the service stops: queued callbacks then skip

    def defer(self, job: dict[str, Any], details: list[Any]) -> None:
        """Make a PutEvents' accepted events durable in the current transaction (``job``,
        the events compact, as the class says) and route them once it commits; routed at
        once when there is no running loop in this thread. ``details`` are their parsed Details."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.route_all(job["a"], job["r"], events(job, details))  # type: ignore[attr-defined]
            return
        row = self.cloud.jobs.enqueue(PUT_JOB, job, wake=False)  # type: ignore[attr-defined]
        epoch = self._epoch
        # after commit only: a rolled-back PutEvents (a caller's transaction failing) delivers nothing
        self.store.after_commit(  # type: ignore[attr-defined]
            lambda: loop.call_soon(self._deliver_job, row, epoch, job, details))

    def _deliver_job(self, row: int, epoch: int, job: dict[str, Any], details: list[Any]) -> None:
        """The loop callback: claim the job row and route its events, in one transaction."""
        if epoch != self._epoch:  # stopped or reset since: the row (if still there) is the runner's
            return
        store = self.store  # type: ignore[attr-defined]
        try:
            with store.transaction():
                # by id and token: once the runner has claimed this row, a later job may reuse its id
                if store.execute("DELETE FROM unkai_jobs WHERE id=? AND kind=? AND json_extract(payload, '$.t')=?",
                                 (row, PUT_JOB, job["t"])).rowcount:
                    self.route_all(job["a"], job["r"], events(job, details))  # type: ignore[attr-defined]
        except Exception:  # left to the jobs runner, which retries with backoff
            log.exception("routing a PutEvents' events failed; the jobs runner retries them")
            self.cloud.jobs.wake()  # type: ignore[attr-defined]
        # the ids the next request takes are made now, after this answer, not during the next one
        ids.refill()

    async def run_put(self, job: dict[str, Any], attempt: int) -> None:
        """The jobs runner's handler for an ``events.put`` row no callback claimed (unkai
        stopped before it ran): claim it by its token and route its events."""
        store = self.store  # type: ignore[attr-defined]
        if attempt >= MAX_ATTEMPTS:  # as AWS gives up on an event after 185 attempts
            with store.transaction():
                store.execute("DELETE FROM unkai_jobs WHERE kind=? AND json_extract(payload, '$.t')=?",
                              (PUT_JOB, job["t"]))
            log.error("gave up routing %d events of a PutEvents after %d attempts",
                      len(job["e"]) if "e" in job else len(_strings(job)) // 3, attempt)
            return
        with store.transaction():
            claimed = store.execute("DELETE FROM unkai_jobs WHERE kind=? AND json_extract(payload, '$.t')=?",
                                    (PUT_JOB, job["t"])).rowcount
            if claimed:
                self.route_all(job["a"], job["r"], _old_events(job) if "e" in job  # type: ignore[attr-defined]
                               else events(job, [json.loads(text) for text in _strings(job)[2::3]]))

    def forget_deferred(self) -> None:
        """Stop or reset: callbacks already queued leave their rows to the jobs runner."""
        self._epoch += 1

