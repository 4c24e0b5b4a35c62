"""The jobs outbox over a real SQLite store: a row another party claims (EventBridge's
PutEvents callback deletes its own job row) may have its id taken by a new job while the
runner still runs the old one; the runner must then leave the new row alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

from unkai.clock import Clock
from unkai.jobs import Jobs
from unkai.signals import Signals
from unkai.store import Store


def _rows(store: Store) -> list[tuple]:
    return store.all("SELECT id, kind, payload FROM unkai_jobs ORDER BY id")


def _scenario(tmp_path: Path, outcome: str) -> list[tuple]:
    """Job A runs; meanwhile its row is claimed elsewhere and job C takes its id; then A's
    handler ends with ``outcome`` (``done`` or ``failed``). Returns the rows left."""
    store = Store(tmp_path / "unkai.db")
    clock = Clock()
    jobs = Jobs(store, clock, Signals(clock))
    started, release = asyncio.Event(), asyncio.Event()

    async def handler(payload: dict, attempt: int) -> None:
        if payload["n"] == "A":
            started.set()
            await release.wait()
            if outcome == "failed":
                raise RuntimeError("A failed")

    async def run() -> list[tuple]:
        jobs.register("t", handler)
        with store.transaction():
            a = jobs.enqueue("t", {"n": "A"})
        jobs.start()
        await asyncio.wait_for(started.wait(), 10)
        with store.transaction():  # claimed by someone else, and its id taken by a new job
            store.execute("DELETE FROM unkai_jobs WHERE id=?", (a,))
            c = jobs.enqueue("t", {"n": "C"}, delay=3600, wake=False)
        assert c == a  # SQLite reuses the highest id once its row is gone
        release.set()
        for _ in range(50):
            await asyncio.sleep(0.01)
            if a not in jobs.inflight:
                break
        await jobs.stop()
        return _rows(store)

    try:
        return asyncio.run(run())
    finally:
        store.close()


def test_a_finished_job_leaves_a_new_job_with_its_id_alone(tmp_path):
    rows = _scenario(tmp_path, "done")
    assert [(kind, payload) for _, kind, payload in rows] == [("t", '{"n":"C"}')]


def test_a_failed_job_does_not_reschedule_a_new_job_with_its_id(tmp_path):
    store_rows = _scenario(tmp_path, "failed")
    assert [(kind, payload) for _, kind, payload in store_rows] == [("t", '{"n":"C"}')]
    store = Store(tmp_path / "unkai.db")
    try:
        assert store.one("SELECT attempts FROM unkai_jobs")[0] == 0
    finally:
        store.close()
