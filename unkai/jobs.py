"""Durable deferred work: the outbox behind every delivery that happens after a
request is answered (SNS to HTTP, email and Lambda; S3 events; async Lambda
invokes and their retries).

A job is a row written in the same transaction as the change that caused it, so
an acknowledged publish is never lost; it runs after that transaction commits,
is retried with backoff when its handler fails, and is picked up again after a
restart. Delivery is at least once, as on AWS.

``soon`` is the same outbox for work a request only accepts and does right after its answer
(PutEvents' routing, SES's delivery): one row written in the request's transaction, in
``unkai_soon`` (one b-tree, cheaper to write than a job), and a loop callback queued when
that commits (``loop.call_soon``, so it runs after the answer is written and before the loop
reads a later request) that claims the row by its id and token and does the work in the
claim's transaction. Whoever deletes the row does the work, so it is done exactly once.
A row its callback could not do (it raised; its service stopped or reset first) or that a
restart found (kill -9) becomes an ordinary due job, which the runner gives to the
``register_soon`` handler of its kind; that claims it by the token in its payload.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from unkai.clock import Clock
from unkai.signals import Signals
from unkai.store import Store

log = logging.getLogger("unkai.jobs")

MIGRATIONS = [
    """
    CREATE TABLE unkai_jobs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        due REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        payload TEXT NOT NULL
    );
    CREATE INDEX unkai_jobs_due ON unkai_jobs(due);
    """,
    # soon's rows: one b-tree (no due index to keep) and the token in a column, so the
    # request that writes one and the callback that claims it do the least they can
    """
    CREATE TABLE unkai_soon (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        token TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    """,
]

Handler = Callable[[dict[str, Any], int], Awaitable[Any]]


class Retry(Exception):
    """Raised by a handler to run the job again after ``after`` seconds."""

    def __init__(self, after: float, reason: str = "") -> None:
        super().__init__(reason)
        self.after = after


def _encoder() -> Callable[[Any], str]:
    """``json.dumps(o, separators=(",", ":"))``, a fifth cheaper: the C encoder called directly
    (``JSONEncoder.encode`` adds a Python layer, and ``json.dumps`` with options builds an
    encoder per call). Every job's payload goes through it, on its request's path."""
    from json import encoder

    if encoder.c_make_encoder is None:  # a Python without the C accelerator
        return json.JSONEncoder(separators=(",", ":")).encode

    def default(o: Any) -> Any:
        raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")

    # no circular-reference check: a payload is plain data, and the check's dict would be shared by every call
    make = encoder.c_make_encoder(None, default, encoder.encode_basestring_ascii, None, ":", ",", False, False, True)
    return lambda o: "".join(make(o, 0))


_ENCODE = _encoder()


class Jobs:
    def __init__(self, store: Store, clock: Clock, signals: Signals, concurrency: int = 64) -> None:
        self.store = store
        self.clock = clock
        self.signals = signals
        self.handlers: dict[str, Handler] = {}
        self.inflight: set[int] = set()
        self.concurrency = concurrency
        self._task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        # Called with a due job's kind when no handler is registered for it: the cloud loads
        # the service the job belongs to (services are loaded on first use).
        self.missing: Callable[[str], Awaitable[None]] | None = None
        self._epochs: dict[str, int] = {}  # per kind, bumped by forget_soon: queued soon callbacks then skip
        store.migrate("jobs", MIGRATIONS)

    def register(self, kind: str, handler: Handler) -> None:
        """``handler(payload, attempt)`` runs each job of ``kind``; attempt counts from 0."""
        self.handlers[kind] = handler

    def enqueue(self, kind: str, payload: dict[str, Any], delay: float = 0.0, wake: bool = True) -> int:
        """Add a job in the current transaction; it runs once that commits. ``wake=False``
        is for a backup job that its caller runs itself right after the commit (deleting
        the row as it does): the runner is not woken for it, and finds it, if it is still
        there, at its next scan or after a restart; the caller calls ``wake`` if it gives up."""
        cur = self.store.execute(
            "INSERT INTO unkai_jobs(kind, due, payload) VALUES(?, ?, ?)",
            (kind, self.clock.now() + delay, _ENCODE(payload)),
        )
        if wake:
            self.store.after_commit(self._wake)
        return cur.lastrowid

    def soon(self, kind: str, token: str, payload: dict[str, Any], run: Callable[[], None]) -> None:
        """Accept work now, do it right after the answer: ``payload`` (which must hold ``"t":
        token``, a value unique to this job) is written in the current transaction, and once
        that commits a loop callback claims the row and calls ``run()`` in the claim's
        transaction. Off the event loop (a thread), ``run()`` is called now, in the caller's
        transaction, and no row is written. Should ``run`` raise, or the callback come after
        ``forget_soon(kind)``, the row becomes a due job that the runner hands to the
        ``register_soon`` handler of ``kind`` (so does every row a restart finds)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            run()
            return
        job = self.store.execute("INSERT INTO unkai_soon(kind, token, payload) VALUES(?, ?, ?)",
                                 (kind, token, _ENCODE(payload))).lastrowid
        epoch = self._epochs.get(kind, 0)
        # after commit only: a rolled-back request (a caller's transaction failing) runs nothing
        self.store.after_commit(lambda: loop.call_soon(self._run_soon, job, kind, token, epoch, run))

    def _run_soon(self, job: int, kind: str, token: str, epoch: int, run: Callable[[], None]) -> None:
        if epoch != self._epochs.get(kind, 0):  # its service stopped or reset since: the runner's
            self._hand_over(job, token)
            return
        try:
            with self.store.transaction():
                # by id and token: a row whose id was taken again (after a hand-over) is not this one
                if self.store.execute("DELETE FROM unkai_soon WHERE id=? AND token=?", (job, token)).rowcount:
                    run()
        except Exception:  # rolled back with the claim: the runner retries it with backoff
            log.exception("job %s (%s) failed right after its request; the jobs runner retries it", job, kind)
            self._hand_over(job, token)

    def _hand_over(self, job: int | None = None, token: str | None = None) -> None:
        """Make a ``soon`` row (every one, when no id is given: at start) a due job of the runner's."""
        where, args = ("WHERE id=? AND token=?", (job, token)) if job is not None else ("", ())
        try:
            with self.store.transaction():
                moved = self.store.execute(
                    f"INSERT INTO unkai_jobs(kind, due, payload) SELECT kind, ?, payload FROM unkai_soon {where}",
                    (self.clock.now(), *args)).rowcount
                if moved:
                    self.store.execute(f"DELETE FROM unkai_soon {where}", args)
                    self.store.after_commit(self._wake)
        except Exception:  # the store is closing (the cloud stops): a restart hands it over
            log.warning("could not hand a soon job over to the jobs runner; the next start will", exc_info=True)

    def claim(self, kind: str, token: str) -> bool:
        """Delete the ``kind`` job holding ``token`` in the current transaction; True when this
        caller deleted it, and so does its work."""
        return bool(self.store.execute(
            "DELETE FROM unkai_jobs WHERE kind=? AND json_extract(payload, '$.t')=?", (kind, token)).rowcount)

    def register_soon(self, kind: str, run: Callable[[dict[str, Any], int], None], max_attempts: int = 0) -> None:
        """The runner's side of ``soon``: for a ``kind`` row no callback claimed, ``run_claimed``."""

        async def handler(payload: dict[str, Any], attempt: int) -> None:
            self.run_claimed(kind, payload, attempt, run, max_attempts)

        self.register(kind, handler)

    def run_claimed(self, kind: str, payload: dict[str, Any], attempt: int,
                    run: Callable[[dict[str, Any], int], None], max_attempts: int = 0) -> None:
        """Claim a ``soon`` row by its payload's token and call ``run(payload, attempt)`` in
        that transaction; nothing when a callback claimed it first. After ``max_attempts``
        failed attempts (when given) the row is dropped, logged."""
        with self.store.transaction():
            if not self.claim(kind, payload["t"]):
                return
            if max_attempts and attempt >= max_attempts:
                log.error("gave up on a %s job after %d attempts", kind, attempt)
                return
            run(payload, attempt)

    def forget_soon(self, kind: str) -> None:
        """The service of ``kind`` stops or resets: callbacks already queued leave their rows
        to the runner."""
        self._epochs[kind] = self._epochs.get(kind, 0) + 1

    def wake(self) -> None:
        """Have the runner look at the table again (a job enqueued with ``wake=False`` is due)."""
        self._wake()

    def _wake(self) -> None:
        self.signals.notify("unkai.jobs")

    def pending(self) -> dict[str, int]:
        """Jobs waiting or running, by kind: what ``drain`` waits for."""
        rows = self.store.all("SELECT kind, COUNT(*) FROM unkai_jobs GROUP BY kind")
        return self._with_soon({kind: n for kind, n in rows})

    def due_pending(self) -> dict[str, int]:
        """Jobs due now or running (not those waiting for a later retry)."""
        rows = self.store.all(
            "SELECT kind, COUNT(*) FROM unkai_jobs WHERE due <= ? GROUP BY kind", (self.clock.now(),)
        )
        return self._with_soon({kind: n for kind, n in rows})

    def _with_soon(self, found: dict[str, int]) -> dict[str, int]:
        for kind, n in self.store.all("SELECT kind, COUNT(*) FROM unkai_soon GROUP BY kind"):
            found[kind] = found.get(kind, 0) + n  # accepted, their callbacks still to run
        return found

    def start(self) -> None:
        self._hand_over()  # rows a stop or kill -9 left (their callbacks are gone with the old process)
        self._task = asyncio.create_task(self._run(), name="unkai-jobs")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            now = self.clock.now()
            room = self.concurrency - len(self.inflight)
            rows = []
            if room > 0:
                rows = self.store.all(
                    "SELECT id, kind, attempts, payload FROM unkai_jobs WHERE due <= ? ORDER BY due LIMIT ?",
                    (now, room + len(self.inflight)),
                )
            for job_id, kind, attempts, payload in rows:
                if job_id in self.inflight or len(self.inflight) >= self.concurrency:
                    continue
                self.inflight.add(job_id)
                task = asyncio.create_task(self._run_one(job_id, kind, attempts, payload))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            nxt = self.store.one("SELECT MIN(due) FROM unkai_jobs WHERE due > ?", (now,))
            until = nxt[0] if nxt and nxt[0] is not None else None
            if until is None:
                until = now + 3600
            await self.signals.wait("unkai.jobs", until=until)

    async def _run_one(self, job_id: int, kind: str, attempts: int, payload: str) -> None:
        handler = self.handlers.get(kind)
        try:
            if handler is None and self.missing is not None:
                await self.missing(kind)
                handler = self.handlers.get(kind)
            if handler is None:
                raise Retry(60, f"no handler for job kind {kind!r} yet")
            await handler(json.loads(payload), attempts)
        except Retry as retry:
            self._reschedule(job_id, payload, retry.after)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("job %s (%s) failed:\n%s", job_id, kind, traceback.format_exc())
            self._reschedule(job_id, payload, min(300.0, 2.0 ** attempts))
        else:
            with self.store.transaction():  # the row it ran: another may have claimed it, and a new one taken its id
                self.store.execute("DELETE FROM unkai_jobs WHERE id=? AND payload=?", (job_id, payload))
        finally:
            self.inflight.discard(job_id)
            self._wake()

    def _reschedule(self, job_id: int, payload: str, after: float) -> None:
        with self.store.transaction():
            self.store.execute(
                "UPDATE unkai_jobs SET due=?, attempts=attempts+1 WHERE id=? AND payload=?",
                (self.clock.now() + after, job_id, payload),
            )
