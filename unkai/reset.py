"""Resetting the cloud between tests: back to just after the stack was deployed (its
resources kept, their data gone) or, with ``empty``, to no state at all, in milliseconds
instead of the second a restart costs.

The design: every byte of state is in the one SQLite store plus a few directories of
files (S3 bodies, mail), so a reset is a copy of a snapshot, not a walk over services.
``take()`` copies the store page by page into an in-memory database with SQLite's
backup API once the stack is deployed (and again whenever the template is re-applied),
and hard-links the state files of that moment aside; ``reset()`` copies the snapshot
back over the live database in one transaction (a few ms for a stack), deletes files
created since and re-links the ones deleted since. What services keep in memory is
derived from the store, so each drops it through ``Service.resetting()``.

Services load on first use (unkai/cloud.py), often after the snapshot was taken: a
package loaded later hands its new tables (and any rows its set-up wrote) to the
snapshots (``adopt``), so a reset keeps them, as if it had been loaded before.

Work in flight is stopped first: the job runner, Lambda's async queue and event source
pollers are cancelled (an invocation cut short kills its worker, never hands it the
next event), other invocations get a moment to finish, then everything is restarted
over the restored state. unkai's clock is kept: time never runs backwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unkai.cloud import Cloud

log = logging.getLogger(__name__)

FILE_DIRS = ("s3",)  # state kept as files beside the store
KEEP_META = ("clock_offset",)  # meta rows that describe the running cloud, not the user's data
SETTLE_SECONDS = 2.0  # how long in-flight invocations may take to finish before the restore


class Snapshot:
    """A copy of the store (in memory) and of the state files (hard links) at one moment."""

    def __init__(self, db: sqlite3.Connection, files: dict[str, Path]) -> None:
        self.db = db
        self.files = files  # relative path -> its hard link under the snapshot directory


class Resetter:
    def __init__(self, cloud: "Cloud") -> None:
        self.cloud = cloud
        self.state_dir: Path = cloud.config.state_dir
        self.dir = self.state_dir / "snapshots"
        self.empty: Snapshot | None = None
        self.deployed: Snapshot | None = None
        self.lock = asyncio.Lock()

    # -- snapshots ------------------------------------------------------------------------

    def take_empty(self) -> None:
        """The state of a new cloud: every table created, none holding a row (built on the
        first ``reset(empty=True)``, from the live schema)."""
        db = self._copy()
        names = [n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                          "AND name NOT LIKE 'sqlite_%' AND name != 'unkai_schema'")]
        db.execute("PRAGMA foreign_keys=OFF")
        for name in names:
            if name == "unkai_meta":
                db.execute(f"DELETE FROM unkai_meta WHERE key NOT IN ({','.join('?' * len(KEEP_META))}) "
                           "AND key NOT LIKE 'sns.%' AND key NOT LIKE 'sns_%'", KEEP_META)
            else:
                db.execute(f'DELETE FROM "{name}"')
        if db.execute("SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'").fetchone():
            db.execute("DELETE FROM sqlite_sequence")
        db.commit()
        self.empty = Snapshot(db, {})

    def take(self) -> None:
        """Remember the state now as the one ``reset()`` returns to: taken once ``unkai up``
        is ready (its stack deployed) and again whenever the template is re-applied."""
        files = self._link_files("deployed")
        self.deployed = Snapshot(self._copy(), files)

    async def settle_and_take(self, timeout: float = 5.0) -> None:
        """``take()`` once the deploy's own follow-up work (confirmation mails, custom
        resources' invocations...) is done, so every reset starts from the same state."""
        # messages a crash left in flight come back only after their visibility timeout: not waited for
        await self.cloud.drain(timeout, ignore=("_interrupted_by_a_restart",))
        self.take()

    def schema_now(self) -> set[str] | None:
        """The names of the store's tables, indexes and triggers now (None with no snapshot yet:
        nothing to adopt into)."""
        if self.empty is None and self.deployed is None:
            return None
        return {n for (n,) in self.cloud.store.db.execute("SELECT name FROM sqlite_master")}

    def adopt(self, before: set[str]) -> None:
        """A service package was loaded after the snapshots were taken: copy the tables,
        indexes and triggers it created since ``before`` (with their rows) and its schema
        versions into each snapshot, so a reset keeps them."""
        db = self.cloud.store.db
        new = [(kind, name, sql) for kind, name, sql in db.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")
            if name not in before]
        if not new:
            return
        components = db.execute("SELECT component, version FROM unkai_schema").fetchall()
        for snapshot in {id(s): s for s in (self.empty, self.deployed) if s is not None}.values():
            target = snapshot.db
            for kind, name, sql in new:
                if target.execute("SELECT 1 FROM sqlite_master WHERE name=?", (name,)).fetchone():
                    continue  # there already (a virtual table's own tables come with it)
                target.execute(sql)
                if kind == "table":
                    rows = db.execute(f'SELECT * FROM "{name}"').fetchall()
                    if rows:
                        marks = ",".join("?" * len(rows[0]))
                        target.executemany(f'INSERT INTO "{name}" VALUES ({marks})', rows)
            target.executemany("INSERT OR IGNORE INTO unkai_schema(component, version) VALUES (?, ?)", components)
            target.commit()

    def _copy(self) -> sqlite3.Connection:
        db = sqlite3.connect(":memory:", check_same_thread=False)
        self.cloud.store.db.backup(db)
        return db

    def _files(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for top in FILE_DIRS:
            root = self.state_dir / top
            if not root.is_dir():
                continue
            for base, _, names in os.walk(root):
                for name in names:
                    path = Path(base) / name
                    found[str(path.relative_to(self.state_dir))] = path
        return found

    def _link_files(self, label: str) -> dict[str, Path]:
        import shutil

        target = self.dir / label
        shutil.rmtree(target, ignore_errors=True)
        linked: dict[str, Path] = {}
        for rel, path in self._files().items():
            if ".tmp" in path.name or path.name.startswith("tmp"):
                continue
            copy = target / rel
            copy.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, copy)
            except OSError:  # another file system: copy it
                shutil.copy2(path, copy)
            linked[rel] = copy
        return linked

    # -- reset ------------------------------------------------------------------------

    async def reset(self, empty: bool = False) -> float:
        """Bring the state back; returns the milliseconds it took."""
        async with self.lock:
            started = time.perf_counter()
            if empty and self.empty is None:
                self.take_empty()
            snapshot = self.empty if empty else self.deployed
            if snapshot is None:
                raise RuntimeError("unkai has no snapshot to reset to yet (it is still starting)")
            cloud = self.cloud
            if empty:
                if cloud.stack is not None:
                    await cloud.stack.stop()
                    cloud.stack = None
                self.deployed = snapshot  # from now on the cloud's starting point is empty
            await self._pause()
            store = cloud.store
            if store.in_transaction:  # never while a request holds one: we run between requests
                raise RuntimeError("a store transaction is open")
            snapshot.db.backup(store.db)
            self._restore_files(snapshot.files)
            with store.transaction():  # the clock is kept: time never runs backwards
                store.set_meta("clock_offset", repr(cloud.clock.offset))
            for service in list(cloud.services.loaded().values()):
                try:
                    await service.resetting()
                except Exception:  # keep resetting the rest
                    log.exception("resetting %s failed", service.name)
            cloud.jobs.start()
            ms = (time.perf_counter() - started) * 1000
            cloud.feed.publish("unkai.reset", empty=empty, ms=round(ms, 2))
            return ms

    async def _pause(self) -> None:
        """Stop the work that would write to the store while it is replaced."""
        cloud = self.cloud
        await cloud.jobs.stop()
        for service in list(cloud.services.loaded().values()):
            try:
                await service.pausing()
            except Exception:
                log.exception("pausing %s failed", service.name)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_SECONDS
        lam = cloud.services.loaded().get("lambda")
        while lam is not None and lam.runtime.busy and loop.time() < deadline:
            await asyncio.sleep(0.002)

    def _restore_files(self, files: dict[str, Path]) -> None:
        now = self._files()
        for rel, path in now.items():
            if rel not in files:
                path.unlink(missing_ok=True)
        for rel, copy in files.items():
            if rel not in now:
                path = self.state_dir / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(copy, path)
                except OSError:
                    import shutil

                    shutil.copy2(copy, path)
