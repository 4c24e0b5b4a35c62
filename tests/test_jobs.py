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


def _soon_rows(store: Store) -> list[tuple]:
    return store.all("SELECT kind, token, payload FROM unkai_soon ORDER BY id")


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


# -- Jobs.soon: accepted now, run right after the commit, the runner as the fallback --------------


def _soon_world(tmp_path: Path):
    store = Store(tmp_path / "unkai.db")
    clock = Clock()
    return store, Jobs(store, clock, Signals(clock))


def test_soon_runs_once_right_after_its_commit_and_never_for_a_rollback(tmp_path):
    store, jobs = _soon_world(tmp_path)
    ran: list[str] = []

    async def run() -> tuple[list, list, list]:
        with store.transaction():
            jobs.soon("k", "tok-1", {"t": "tok-1", "n": 1}, lambda: ran.append("tok-1"))
            assert ran == [] and _soon_rows(store) == [("k", "tok-1", '{"t":"tok-1","n":1}')]  # durable, not run yet
        try:
            with store.transaction():
                jobs.soon("k", "tok-2", {"t": "tok-2"}, lambda: ran.append("tok-2"))
                raise RuntimeError("the request failed")
        except RuntimeError:
            pass
        before = list(ran)
        await asyncio.sleep(0)  # one loop turn: the callback queued at commit has run
        return before, list(ran), _rows(store) + _soon_rows(store)

    try:
        before, after, rows = asyncio.run(run())
    finally:
        store.close()
    assert before == [] and after == ["tok-1"]  # the rolled-back one neither ran nor left a row
    assert rows == []


def test_soon_off_the_loop_runs_at_once_and_writes_no_row(tmp_path):
    store, jobs = _soon_world(tmp_path)
    ran: list[int] = []
    try:
        with store.transaction():
            jobs.soon("k", "tok", {"t": "tok"}, lambda: ran.append(1))
            assert ran == [1]
        assert _rows(store) == [] and _soon_rows(store) == []
    finally:
        store.close()


def test_a_row_its_callback_left_is_run_once_by_the_runner(tmp_path):
    """A callback that fails (rolled back with its claim) and one that comes after forget_soon
    (its service stopped) hand their rows over to the runner as due jobs; a row a restart
    finds is handed over at start. The runner runs each once through register_soon, and a
    late claim by token finds nothing."""
    store, jobs = _soon_world(tmp_path)
    ran: list[tuple[str, str]] = []

    def failing() -> None:
        store.execute("INSERT INTO unkai_jobs(kind, due, payload) VALUES('junk', 9e9, '{}')")  # rolled back too
        raise RuntimeError("delivery failed")

    async def run() -> list:
        jobs.register_soon("k", lambda payload, attempt: ran.append(("runner", payload["t"])))
        with store.transaction():
            jobs.soon("k", "fails", {"t": "fails"}, failing)
            jobs.soon("k", "forgotten", {"t": "forgotten"}, lambda: ran.append(("callback", "forgotten")))
        jobs.forget_soon("k")  # after the commit, before the callbacks run
        await asyncio.sleep(0)
        assert sorted(p for _, _, p in _rows(store)) == ['{"t":"fails"}', '{"t":"forgotten"}']
        assert _soon_rows(store) == []
        with store.transaction():  # as a process killed before its callback ran leaves it
            store.execute("""INSERT INTO unkai_soon(kind, token, payload) VALUES('k', 'left', '{"t":"left"}')""")
        assert jobs.pending() == {"k": 3}  # what drain waits for
        jobs.start()
        deadline = asyncio.get_running_loop().time() + 60  # a bound on a hang, not a speed check
        while not (len(ran) == 3 and not jobs.inflight) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        with store.transaction():
            late = jobs.claim("k", "fails")
        await jobs.stop()
        assert late is False
        return _rows(store) + _soon_rows(store)

    try:
        rows = asyncio.run(run())
    finally:
        store.close()
    assert sorted(ran) == [("runner", "fails"), ("runner", "forgotten"), ("runner", "left")]
    assert rows == []
