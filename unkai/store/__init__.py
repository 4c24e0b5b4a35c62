"""The store: one SQLite database in WAL mode that every service keeps its state in.

One database means one transaction can span services: an SNS publish and its SQS
fan-out, a DynamoDB write and its stream record, commit together or not at all.
Each commit reaches the WAL file before the request is answered, so an
acknowledged write survives ``kill -9`` of the server (synchronous=NORMAL protects
against process crashes; only a power loss could drop the last commits).

All access happens on the event loop's thread, so a transaction is never
interleaved with another request's (the checkpoint thread has a connection of its own
and only copies the WAL into the database).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS unkai_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS unkai_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Store:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA busy_timeout=10000")
        self.db.execute("PRAGMA temp_store=MEMORY")
        self.db.execute("PRAGMA cache_size=-65536")
        self.db.executescript(SCHEMA)
        self._depth = 0
        self._after_commit: list[Callable[[], Any]] = []
        self._checkpoints: _Checkpoints | None = None

    def checkpoint_in_background(self) -> None:
        """Copy the WAL into the database on a thread of its own instead of in whichever
        commit passes SQLite's automatic checkpoint size: that commit's request would wait for
        the copy and its fsyncs (up to ~10 ms), which is what a write-heavy client's slowest
        calls were. Commits stay as durable: they are in the WAL either way."""
        if self._checkpoints is None:
            self.db.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpoints = _Checkpoints(self.path)

    def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.stop()
            self._checkpoints = None
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass
        self.db.close()

    # -- schema -------------------------------------------------------------

    def migrate(self, component: str, steps: list[str]) -> None:
        """Bring ``component``'s tables up to ``len(steps)``; each step runs once, ever."""
        row = self.db.execute("SELECT version FROM unkai_schema WHERE component=?", (component,)).fetchone()
        current = row[0] if row else 0
        if current > len(steps):
            raise RuntimeError(
                f"The state directory was written by a newer unkai ({component} schema v{current}); "
                f"this version knows v{len(steps)}."
            )
        for version in range(current, len(steps)):
            self.db.executescript("BEGIN IMMEDIATE;" + steps[version] + ";")
            self.db.execute(
                "INSERT INTO unkai_schema(component, version) VALUES(?, ?) "
                "ON CONFLICT(component) DO UPDATE SET version=excluded.version",
                (component, version + 1),
            )
            self.db.execute("COMMIT")

    # -- transactions -------------------------------------------------------

    def transaction(self) -> "_Transaction":
        """A transaction; nested calls become savepoints that roll back on their own."""
        return _Transaction(self)

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def after_commit(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` once the current transaction commits (now, if none is open)."""
        if self._depth == 0:
            callback()
        else:
            self._after_commit.append(callback)

    # -- small conveniences -------------------------------------------------

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        return self.db.execute(sql, params)

    def one(self, sql: str, params: tuple | dict = ()) -> tuple | None:
        return self.db.execute(sql, params).fetchone()

    def all(self, sql: str, params: tuple | dict = ()) -> list[tuple]:
        return self.db.execute(sql, params).fetchall()

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.one("SELECT value FROM unkai_meta WHERE key=?", (key,))
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.execute(
            "INSERT INTO unkai_meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )


class _Transaction:
    """``Store.transaction()``'s context manager: a class, not a generator, because every
    request opens one (a generator-based one costs several times more to enter and leave)."""

    __slots__ = ("store", "depth", "mark")

    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        store = self.store
        depth = self.depth = store._depth
        self.mark = len(store._after_commit)
        store.db.execute("BEGIN" if depth == 0 else f"SAVEPOINT s{depth}")
        store._depth = depth + 1
        return store.db

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        store, depth = self.store, self.depth
        store._depth = depth
        if kind is not None:
            if depth == 0:
                store.db.execute("ROLLBACK")
                store._after_commit.clear()
            else:
                store.db.execute(f"ROLLBACK TO s{depth}")
                store.db.execute(f"RELEASE s{depth}")
                del store._after_commit[self.mark:]
            return False
        if depth == 0:
            store.db.execute("COMMIT")
            callbacks, store._after_commit = store._after_commit, []
            for callback in callbacks:
                try:
                    callback()
                except Exception:  # the transaction committed: the others still run (a queued job's callback)
                    log.exception("a callback after a commit failed")
        else:
            store.db.execute(f"RELEASE s{depth}")
        return False


class _Checkpoints(threading.Thread):
    """``Store.checkpoint_in_background``'s thread: a PASSIVE checkpoint (it never blocks
    the server's writes or reads) on its own connection whenever the WAL file changed, at
    most every ``INTERVAL`` seconds. SQLite releases the GIL while it copies."""

    INTERVAL = 0.5

    def __init__(self, path: Path) -> None:
        super().__init__(name="unkai-checkpoints", daemon=True)
        self._path = path
        self._wal = Path(f"{path}-wal")
        self._stopped = threading.Event()
        self.start()

    def run(self) -> None:
        seen = None
        db = None
        try:
            while not self._stopped.wait(self.INTERVAL):
                try:
                    info = os.stat(self._wal)
                except OSError:
                    continue
                mark = (info.st_mtime_ns, info.st_size)
                if mark == seen:
                    continue
                seen = mark
                if db is None:
                    db = sqlite3.connect(str(self._path), isolation_level=None, check_same_thread=False)
                    db.execute("PRAGMA busy_timeout=100")
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # busy or closing: the next change tries again
                    log.debug("background checkpoint skipped: %s", exc)
        finally:
            if db is not None:
                db.close()

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=5)
