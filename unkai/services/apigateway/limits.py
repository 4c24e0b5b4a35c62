"""Throttling and quotas: token buckets (burst and rate) for stages, methods, routes and
usage-plan keys, on unkai's clock so tests move time instead of sleeping, and
usage-plan quotas counted in the store so they survive restarts."""

from __future__ import annotations

import calendar
import time
from typing import Any

from unkai.store import Store

MIGRATIONS = [
    """
    CREATE TABLE apigateway_usage (
        plan_id TEXT NOT NULL,
        key_id TEXT NOT NULL,
        day TEXT NOT NULL,
        used INTEGER NOT NULL,
        PRIMARY KEY (plan_id, key_id, day)
    );
    """
]


class Bucket:
    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float) -> bool:
        if now > self.stamp:
            self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Limits:
    def __init__(self, store: Store, clock: Any) -> None:
        self.store = store
        self.clock = clock
        store.migrate("apigateway_usage", MIGRATIONS)
        self.buckets: dict[tuple, Bucket] = {}

    def allow(self, key: tuple, rate: float | None, burst: int | None) -> bool:
        """Take one token from the bucket ``key``; no limit when rate or burst is unset.
        A limit of 0 blocks everything, as on AWS."""
        if rate is None and burst is None:
            return True
        rate = float(rate if rate is not None else 0.0)
        burst = int(burst if burst is not None else max(rate, 0))
        bucket = self.buckets.get(key)
        now = self.clock.now()
        if bucket is None or bucket.rate != rate or bucket.burst != burst:
            bucket = self.buckets[key] = Bucket(rate, burst, now)
        return bucket.take(now)

    # -- quotas ----------------------------------------------------------------------

    @staticmethod
    def _period_start(quota: dict, now: float) -> str:
        t = time.gmtime(now)
        period = (quota.get("period") or "DAY").upper()
        if period == "DAY":
            start = calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0))
        elif period == "WEEK":
            start = calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0)) - t.tm_wday * 86400
        else:
            start = calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0))
        return time.strftime("%Y-%m-%d", time.gmtime(start))

    def consume_quota(self, plan_id: str, key_id: str, quota: dict | None) -> bool:
        """Count one request against the plan's quota for this key; False once it is spent."""
        day = time.strftime("%Y-%m-%d", time.gmtime(self.clock.now()))
        limit = (quota or {}).get("limit")
        with self.store.transaction():
            if limit is not None:
                start = self._period_start(quota or {}, self.clock.now())
                row = self.store.one("SELECT COALESCE(SUM(used), 0) FROM apigateway_usage WHERE plan_id=? AND "
                                     "key_id=? AND day>=?", (plan_id, key_id, start))
                if row[0] >= int(limit):
                    return False
            self.store.execute(
                "INSERT INTO apigateway_usage(plan_id, key_id, day, used) VALUES(?,?,?,1) "
                "ON CONFLICT(plan_id, key_id, day) DO UPDATE SET used=used+1", (plan_id, key_id, day))
        return True

    def usage(self, plan_id: str, key_id: str | None) -> dict[str, list[list[int]]]:
        """GetUsage's items: {keyId: [[used, remaining], ...]} per day recorded."""
        rows = self.store.all("SELECT key_id, day, used FROM apigateway_usage WHERE plan_id=? ORDER BY day",
                              (plan_id,))
        out: dict[str, list[list[int]]] = {}
        for key, _day, used in rows:
            if key_id and key != key_id:
                continue
            out.setdefault(key, []).append([used, 0])
        return out
