"""The store: one SQLite database in WAL mode that every service keeps its state in.

One database means one transaction can span services: an SNS publish and its SQS
fan-out, a DynamoDB write and its stream record, commit together or not at all.
Each commit reaches the WAL file before the request is answered, so an
acknowledged write survives ``kill -9`` of the server (synchronous=NORMAL protects
against process crashes; only a power loss could drop the last commits).

All access happens on the event loop's thread, so a transaction is never
interleaved with another request's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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

    def close(self) -> None:
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

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A transaction; nested calls become savepoints that roll back on their own."""
        depth = self._depth
        mark = len(self._after_commit)
        self.db.execute("BEGIN" if depth == 0 else f"SAVEPOINT s{depth}")
        self._depth += 1
        try:
            yield self.db
        except BaseException:
            self._depth = depth
            if depth == 0:
                self.db.execute("ROLLBACK")
                self._after_commit.clear()
            else:
                self.db.execute(f"ROLLBACK TO s{depth}")
                self.db.execute(f"RELEASE s{depth}")
                del self._after_commit[mark:]
            raise
        self._depth = depth
        if depth == 0:
            self.db.execute("COMMIT")
            callbacks, self._after_commit = self._after_commit, []
            for callback in callbacks:
                callback()
        else:
            self.db.execute(f"RELEASE s{depth}")

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
