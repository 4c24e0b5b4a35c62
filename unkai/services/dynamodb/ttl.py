"""Time to live: items whose TTL attribute (epoch seconds) has passed are deleted by
the service itself, each with a REMOVE stream record whose userIdentity says so.

Every item's deadline is a column with a partial index, so the sweeper finds what
is due without reading the table. It runs on a clock timer armed for the earliest
deadline, so advancing unkai's clock deletes expired items at once. As on AWS,
deadlines more than five years in the past are ignored.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from unkai.services.dynamodb import attributes
from unkai.services.dynamodb.streams import SERVICE_IDENTITY

log = logging.getLogger("unkai.dynamodb")

FIVE_YEARS = 5 * 365 * 24 * 3600.0
BATCH = 500


class Sweeper:
    def __init__(self, service: Any) -> None:
        self.service = service
        self.store = service.store
        self.clock = service.clock
        self._timer = None
        self._armed_for: float | None = None
        self._started = False

    def start(self) -> None:
        self._started = True
        self.rearm()

    def stop(self) -> None:
        self._started = False
        if self._timer is not None:
            self._timer.cancel()

    def note(self, deadline: float) -> None:
        """A write set a deadline: make sure the timer fires by then."""
        if self._started and (self._armed_for is None or deadline < self._armed_for):
            self.store.after_commit(lambda: self._arm(deadline))

    def rearm_after_commit(self) -> None:
        self.store.after_commit(self.rearm)

    def rearm(self) -> None:
        now = self.clock.now()
        row = self.store.one("SELECT MIN(expires) FROM dynamodb_items WHERE expires IS NOT NULL AND expires > ?",
                             (now - FIVE_YEARS,))
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._armed_for = None, None
        if row and row[0] is not None:
            self._arm(row[0])

    def _arm(self, deadline: float) -> None:
        if not self._started or (self._armed_for is not None and self._armed_for <= deadline):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._armed_for = deadline
        self._timer = self.clock.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer, self._armed_for = None, None
        try:
            while self.sweep() == BATCH:
                pass
        except Exception:  # never let a sweep break the clock
            log.error("TTL sweep failed:\n%s", traceback.format_exc())
        self.rearm()

    def sweep(self) -> int:
        """Delete one batch of expired items; how many."""
        now = self.clock.now()
        items = self.service.items
        with self.store.transaction():
            rows = self.store.all(
                "SELECT table_id, pk, rk, item FROM dynamodb_items WHERE expires IS NOT NULL AND expires <= ? "
                "AND expires > ? ORDER BY expires LIMIT ?", (now, now - FIVE_YEARS, BATCH))
            for table_id, pk, rk, text in rows:
                table = self.service.table_by_id(table_id)
                if table is None:
                    continue
                old = attributes.loads(text)
                items.write(table, table.schema.item_key(old), pk, rk, old, None, identity=SERVICE_IDENTITY)
        return len(rows)
