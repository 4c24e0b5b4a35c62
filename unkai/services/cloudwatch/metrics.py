"""The metric store: every datum PutMetricData (or an unkai service, an EMF log line, a
metric filter) records, and the statistics read back from it.

A metric is a row keyed by namespace, name and its exact set of dimensions (AWS treats
each combination as its own metric). Each put adds one data row per datum: a single
value is ``count=1, sum=min=max=value``; a StatisticSet keeps its four numbers; Values
with Counts keep the distribution, so percentiles can be computed from what was sent
(a StatisticSet has none, as on AWS). Statistics are then aggregated per period at read
time, so any period can be asked for, and retention follows AWS's tiers: sub-minute
data is readable for 3 hours, the rest is kept 455 days.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unkai.clock import Clock
    from unkai.store import Store

MIGRATIONS = [
    """
    CREATE TABLE cloudwatch_metrics (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL, region TEXT NOT NULL,
        namespace TEXT NOT NULL, name TEXT NOT NULL, dims TEXT NOT NULL,
        last_put REAL NOT NULL,
        UNIQUE(account, region, namespace, name, dims)
    );
    CREATE TABLE cloudwatch_data (
        metric_id INTEGER NOT NULL REFERENCES cloudwatch_metrics(id) ON DELETE CASCADE,
        ts REAL NOT NULL, unit TEXT NOT NULL, resolution INTEGER NOT NULL,
        count REAL NOT NULL, sum REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
        vals TEXT
    );
    CREATE INDEX cloudwatch_data_metric ON cloudwatch_data(metric_id, ts);
    """
]

# Each metric's data merged per minute and unit: a read of the basic statistics over whole
# minutes (any period of 60 s or more) sums a few rows per period instead of one row per
# datum. ``last`` is the newest datum's rowid (the unit a period reports is its last datum's).
# Appended after the alarms' migrations. The first step kept it by a trigger on every insert;
# the second replaces the trigger by a fold at read time of the rows added since the last one
# (``cloudwatch_rollup.upto``, a rowid), so a put pays nothing for it and a read folds in one
# statement what the puts since the previous read added.
ROLLUP_MIGRATIONS = [
    """
    CREATE TABLE cloudwatch_minutes (
        metric_id INTEGER NOT NULL REFERENCES cloudwatch_metrics(id) ON DELETE CASCADE,
        minute REAL NOT NULL, unit TEXT NOT NULL,
        count REAL NOT NULL, sum REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL, last INTEGER NOT NULL,
        PRIMARY KEY (metric_id, minute, unit)
    ) WITHOUT ROWID;
    INSERT INTO cloudwatch_minutes(metric_id, minute, unit, count, sum, min, max, last)
        SELECT metric_id, CAST(ts / 60 AS INTEGER) * 60.0, unit, SUM(count), SUM(sum), MIN(min), MAX(max), MAX(rowid)
        FROM cloudwatch_data GROUP BY 1, 2, 3;
    CREATE TRIGGER cloudwatch_data_minutes AFTER INSERT ON cloudwatch_data BEGIN
        INSERT INTO cloudwatch_minutes(metric_id, minute, unit, count, sum, min, max, last)
        VALUES (NEW.metric_id, CAST(NEW.ts / 60 AS INTEGER) * 60.0, NEW.unit, NEW.count, NEW.sum, NEW.min, NEW.max,
                NEW.rowid)
        ON CONFLICT(metric_id, minute, unit) DO UPDATE SET count = count + excluded.count,
            sum = sum + excluded.sum, min = min(min, excluded.min), max = max(max, excluded.max),
            last = excluded.last;
    END;
    """,
    """
    DROP TRIGGER cloudwatch_data_minutes;
    CREATE TABLE cloudwatch_rollup (id INTEGER PRIMARY KEY CHECK (id = 1), upto INTEGER NOT NULL);
    INSERT INTO cloudwatch_rollup(id, upto) SELECT 1, COALESCE(MAX(rowid), 0) FROM cloudwatch_data;
    """,
]

# Puts append to ``cloudwatch_incoming``: one b-tree with no index and no foreign key, so a put's
# commit writes one page to the WAL (cloudwatch_data's (metric_id, ts) index was a second page and
# about a fifth of PutMetricData's time to its answer). Every read first moves the rows there into
# cloudwatch_data, in the order they were put (``MetricStore.flush``), so readers see only
# cloudwatch_data, and rowids there keep the order of the puts. metric_id has no REFERENCES: a
# metric row is never deleted (a reset drops every table), and a put writes its metric row first,
# in the same transaction.
INCOMING_MIGRATIONS = [
    """
    CREATE TABLE cloudwatch_incoming (
        metric_id INTEGER NOT NULL, ts REAL NOT NULL, unit TEXT NOT NULL, resolution INTEGER NOT NULL,
        count REAL NOT NULL, sum REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL, vals TEXT
    );
    """,
]

_DATA_COLUMNS = "metric_id, ts, unit, resolution, count, sum, min, max, vals"
_PUT = f"INSERT INTO cloudwatch_incoming({_DATA_COLUMNS}) VALUES(?,?,?,?,?,?,?,?,?)"
_MOVE = f"INSERT INTO cloudwatch_data({_DATA_COLUMNS}) SELECT {_DATA_COLUMNS} FROM cloudwatch_incoming ORDER BY rowid"

_FOLD = """
    INSERT INTO cloudwatch_minutes(metric_id, minute, unit, count, sum, min, max, last)
    SELECT metric_id, CAST(ts / 60 AS INTEGER) * 60.0, unit, SUM(count), SUM(sum), MIN(min), MAX(max), MAX(rowid)
    FROM cloudwatch_data WHERE rowid > ? AND rowid <= ? GROUP BY 1, 2, 3
    ON CONFLICT(metric_id, minute, unit) DO UPDATE SET count = count + excluded.count, sum = sum + excluded.sum,
        min = min(min, excluded.min), max = max(max, excluded.max), last = max(last, excluded.last)
"""

RETENTION = 455 * 86400  # one-hour data points live 15 months (5-minute ones 63 days, 1-minute ones 15)
HIGH_RES_RETENTION = 3 * 3600  # sub-minute periods are readable for 3 hours
BASIC_STATS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")


def readable_for(period: int) -> float:
    """How far back a period can read, by AWS's tiers (GetMetricStatistics' StartTime rules):
    under a minute 3 hours; a period that is not a multiple of 5 minutes 15 days; not a
    multiple of an hour 63 days; an hour's multiples the whole 455 days."""
    if period < 60:
        return HIGH_RES_RETENTION
    if period % 300:
        return 15 * 86400
    if period % 3600:
        return 63 * 86400
    return RETENTION


def dims_key(dimensions: list[dict] | None) -> str:
    """The canonical text of a dimension set (sorted by name), the metric's identity."""
    if not dimensions:
        return "[]"
    pairs = tuple([(d["Name"], d["Value"]) for d in dimensions])
    for name, value in pairs:
        if type(name) is not str or type(value) is not str:  # only text is cached: 1 and True hash alike
            return _dims_text(pairs)
    return _dims_key(pairs)


@functools.lru_cache(maxsize=4096)  # hot paths (SQS, SNS, DynamoDB requests) name the same few sets over and over
def _dims_key(pairs: tuple) -> str:
    return _dims_text(pairs)


def _dims_text(pairs: tuple) -> str:
    return json.dumps(sorted([n, v] for n, v in pairs), separators=(",", ":"))


def dims_list(key: str) -> list[dict]:
    return [{"Name": n, "Value": v} for n, v in json.loads(key)]


@dataclass
class Point:
    """One datum as stored: a statistic set plus, when known, its values and counts."""

    ts: float
    unit: str
    count: float
    sum: float
    min: float
    max: float
    values: list[tuple[float, float]] | None = None
    resolution: int = 60


@dataclass
class Bucket:
    """The data of one period, merged."""

    ts: float
    count: float = 0.0
    sum: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    values: list[tuple[float, float]] = field(default_factory=list)
    unit: str = "None"

    def add(self, p: Point) -> None:
        self.count += p.count
        self.sum += p.sum
        self.min = min(self.min, p.min)
        self.max = max(self.max, p.max)
        if p.values:
            self.values.extend(p.values)
        elif p.count:
            # A statistic set: its distribution is unknown; its mean stands for it.
            self.values.append((p.sum / p.count, p.count))
        self.unit = p.unit

    def stat(self, name: str) -> float | None:
        """A statistic by CloudWatch's name (Sum, Average, p99, tm90, IQM...), or None when
        it is undefined for this period."""
        if self.count <= 0 and name != "SampleCount":
            return None
        if name == "SampleCount":
            return self.count
        if name == "Sum":
            return self.sum
        if name == "Average":
            return self.sum / self.count
        if name == "Minimum":
            return self.min
        if name == "Maximum":
            return self.max
        lowered = name.lower()
        if lowered.startswith("p"):
            return percentile(self.values, float(name[1:]))
        if lowered == "iqm":
            return trimmed_mean(self.values, 25.0, 75.0)
        if lowered.startswith("tm"):
            return trimmed_mean(self.values, 0.0, float(name[2:]))
        raise ValueError(name)


def percentile(values: list[tuple[float, float]], p: float) -> float | None:
    """The weighted percentile (nearest rank, as CloudWatch's pNN reads)."""
    if not values:
        return None
    ordered = sorted(values)
    total = sum(c for _, c in ordered)
    rank = p / 100.0 * total
    seen = 0.0
    for value, count in ordered:
        seen += count
        if seen >= rank:
            return value
    return ordered[-1][0]


def trimmed_mean(values: list[tuple[float, float]], low: float, high: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    total = sum(c for _, c in ordered)
    lo, hi = low / 100.0 * total, high / 100.0 * total
    seen = acc = weight = 0.0
    for value, count in ordered:
        start, end = seen, seen + count
        seen = end
        overlap = max(0.0, min(end, hi) - max(start, lo))
        acc += value * overlap
        weight += overlap
    return acc / weight if weight else None


# what a basic statistic reads of a period's rows: the column beside the count, and how it folds
_COLUMN = {"SampleCount": ("count", "SUM"), "Sum": ("sum", "SUM"), "Average": ("sum", "SUM"),
           "Minimum": ("min", "MIN"), "Maximum": ("max", "MAX")}


def _fold(fold: str, a: tuple, b: tuple) -> tuple:
    """Two (period, count, column) rows of one period as one."""
    column = a[2] + b[2] if fold == "SUM" else min(a[2], b[2]) if fold == "MIN" else max(a[2], b[2])
    return a[0], a[1] + b[1], column


def _pick(stat: str, rows: Any) -> dict[float, float]:
    """Period start -> ``stat`` from (period start, count, column) rows, as ``Bucket.stat``
    reads a bucket (only SampleCount is defined for a period without data)."""
    if stat == "Average":
        return {k: total / count for k, count, total in rows if count > 0}
    if stat == "SampleCount":
        return {k: count for k, count, _ in rows}
    return {k: value for k, count, value in rows if count > 0}


def valid_stat(name: str) -> bool:
    """Whether ``name`` is a statistic this store computes."""
    if name in BASIC_STATS or name.upper() == "IQM":
        return True
    lowered = name.lower()
    for prefix in ("tm", "p"):
        if lowered.startswith(prefix):
            try:
                value = float(name[len(prefix):])
            except ValueError:
                return False
            return 0.0 <= value <= 100.0
    return False


class MetricStore:
    """Writes and reads data points in the service's store (inside its transactions)."""

    def __init__(self, store: "Store", clock: "Clock") -> None:
        self.store = store
        self.clock = clock
        self._ids: dict[tuple[str, str, str, str, str], int] = {}
        self._touched: dict[int, float] = {}  # metric id -> the last_put written
        # Values services count on their hot paths, summed per metric and minute in memory
        # (count, sum, min, max) until the next read writes them (``flush``).
        self._pending: dict[tuple[str, str, str, str, str, str, float], list[float]] = {}
        # data inserts made, and how many of them a committed fold had seen: a read after no
        # insert skips even asking the rollup whether it is behind
        self._inserts, self._folded = 1, 0
        # puts appended to cloudwatch_incoming, and how many of them a committed move had seen
        # (starting unequal: rows a killed server had acknowledged may wait there)
        self._queued, self._moved = 1, 0
        # metric id -> at least the newest timestamp among its data (raised by every insert,
        # even one later rolled back; never lowered): a read's partial minute after it is not asked
        self._newest: dict[int, float] = {}

    def forget(self) -> None:
        """Drop the id cache and the unwritten counts (the store was reset under them)."""
        self._ids.clear()
        self._touched.clear()
        self._newest.clear()
        self._pending.clear()
        self._folded = self._moved = -1

    def _now(self) -> float:
        return self.clock.now()

    def tally(self, account: str, region: str, namespace: str, name: str, dims: str, value: float, unit: str,
              ts: float, keep: bool = False, samples: int = 1) -> None:
        """Add ``samples`` values ``value`` (one, usually) to the metric's statistic set for ts's
        minute, in memory (O(1), no SQL); ``keep`` also keeps the values themselves, for
        percentiles (a duration's p99)."""
        key = (account, region, namespace, name, dims, unit, ts - ts % 60)
        agg = self._pending.get(key)
        if agg is None:
            self._pending[key] = [float(samples), value * samples, value, value, [value] * samples if keep else None]
        else:
            agg[0] += samples
            agg[1] += value * samples
            if value < agg[2]:
                agg[2] = value
            if value > agg[3]:
                agg[3] = value
            if keep:
                if agg[4] is None:
                    agg[4] = []
                agg[4].extend([value] * samples)

    def flush(self, now: float) -> None:
        """Make everything recorded readable in cloudwatch_data (before anything reads metrics):
        the puts waiting in cloudwatch_incoming, then the tallied minutes as statistic sets."""
        if self._queued != self._moved:
            self._move_incoming()
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        with self.store.transaction():
            for (account, region, namespace, name, dims, unit, minute), (count, total, low, high, kept) \
                    in pending.items():
                mid = self.metric_id(account, region, namespace, name, dims, now)
                self._raise_newest(mid, minute)
                # kept values are stored as a distribution, as an EMF line with several values is
                vals = json.dumps([(v, 1.0) for v in kept]) if kept and len(kept) == count else None
                self._inserts += 1
                self.store.execute(
                    "INSERT INTO cloudwatch_data(metric_id, ts, unit, resolution, count, sum, min, max, vals) "
                    "VALUES(?,?,?,?,?,?,?,?,?)", (mid, minute, unit, 60, count, total, low, high, vals))

    def _move_incoming(self) -> None:
        """Move the rows puts appended to cloudwatch_incoming into cloudwatch_data, in the order
        they were put, in the caller's transaction when there is one (a rolled-back read moves
        nothing, and is not counted as having moved anything)."""
        seen = self._queued
        if not self.store.in_transaction:
            with self.store.transaction():
                self._move(seen)
        else:
            self._move(seen)

    def _move(self, seen: int) -> None:
        self.store.after_commit(lambda: setattr(self, "_moved", max(self._moved, seen)))
        if self.store.execute(_MOVE).rowcount:
            self._inserts += 1  # the rollup has rows to fold
            self.store.execute("DELETE FROM cloudwatch_incoming")

    def metric_id(self, account: str, region: str, namespace: str, name: str, dims: str, now: float) -> int:
        key = (account, region, namespace, name, dims)
        mid = self._ids.get(key)
        if mid is not None:
            # last_put only feeds ListMetrics' RecentlyActive (three hours): a minute's precision
            # spares a hot metric an UPDATE on every put
            if now - self._touched.get(mid, 0.0) >= 60:
                self.store.execute("UPDATE cloudwatch_metrics SET last_put=? WHERE id=?", (now, mid))
                self.store.after_commit(lambda: self._touched.__setitem__(mid, now))
            return mid
        row = self.store.one("SELECT id FROM cloudwatch_metrics WHERE account=? AND region=? AND namespace=? AND "
                             "name=? AND dims=?", key)
        if row:
            mid = row[0]
            self.store.execute("UPDATE cloudwatch_metrics SET last_put=? WHERE id=?", (now, mid))
        else:
            mid = self.store.execute("INSERT INTO cloudwatch_metrics(account, region, namespace, name, dims, last_put) "
                                     "VALUES(?,?,?,?,?,?)", (*key, now)).lastrowid
        self.store.after_commit(lambda: (self._ids.__setitem__(key, mid),  # never cache a rolled-back id
                                         self._touched.__setitem__(mid, now)))
        return mid

    def put(self, account: str, region: str, namespace: str, name: str, dimensions: list[dict] | None,
            points: list[Point], now: float) -> None:
        """Record ``points`` for one metric (joins the caller's transaction)."""
        if not self.store.in_transaction:
            with self.store.transaction():
                self.put(account, region, namespace, name, dimensions, points, now)
            return
        mid = self.metric_id(account, region, namespace, name, dims_key(dimensions), now)
        self._raise_newest(mid, max(p.ts for p in points))
        rows = [(mid, p.ts, p.unit, p.resolution, p.count, p.sum, p.min, p.max,
                 json.dumps(p.values) if p.values else None) for p in points]
        self._queued += 1
        if len(rows) == 1:
            self.store.execute(_PUT, rows[0])
        else:
            self.store.db.executemany(_PUT, rows)

    def put_row(self, account: str, region: str, namespace: str, name: str, dimensions: list[dict] | None,
                row: tuple, now: float) -> None:
        """Record one datum given as a data row without its metric: (ts, unit, resolution,
        count, sum, min, max, values as JSON or None). PutMetricData's path: no Point, no list.
        Joins the caller's transaction."""
        if not self.store.in_transaction:
            with self.store.transaction():
                self.put_row(account, region, namespace, name, dimensions, row, now)
            return
        mid = self.metric_id(account, region, namespace, name, dims_key(dimensions), now)
        self._raise_newest(mid, row[0])
        self._queued += 1
        self.store.execute(_PUT, (mid, *row))

    def _raise_newest(self, metric_id: int, ts: float) -> None:
        newest = self._newest.get(metric_id)
        if newest is not None and ts > newest:  # unknown stays unknown: the store may hold newer
            self._newest[metric_id] = ts

    def newest(self, metric_id: int) -> float:
        """At least the newest timestamp of the metric's data (-inf without data)."""
        newest = self._newest.get(metric_id)
        if newest is None:
            top = self.store.one("SELECT MAX(ts) FROM cloudwatch_data WHERE metric_id=?", (metric_id,))[0]
            newest = self._newest[metric_id] = -math.inf if top is None else top
        return newest

    def find(self, account: str, region: str, namespace: str, name: str, dimensions: list[dict] | None) -> int | None:
        self.flush(self._now())
        key = (account, region, namespace, name, dims_key(dimensions))
        mid = self._ids.get(key)  # a metric put since the start (ids are never reused while cached)
        if mid is not None:
            return mid
        row = self.store.one("SELECT id FROM cloudwatch_metrics WHERE account=? AND region=? AND namespace=? AND "
                             "name=? AND dims=?", key)
        return row[0] if row else None

    def buckets(self, metric_id: int | None, start: float, end: float, period: int, unit: str | None,
                now: float, distribution: bool = True) -> dict[float, Bucket]:
        """The data in ``[start, end)`` merged per period (aligned to the epoch), by period start.
        Without ``distribution`` (only SampleCount, Sum, Average, Minimum, Maximum are read)
        SQLite merges the rows, and the buckets carry no values for percentiles."""
        self.flush(now)
        if metric_id is None:
            return {}
        start = max(start, now - readable_for(period))
        if not distribution:
            return self._merged(metric_id, start, end, period, unit)
        rows = self.store.all("SELECT ts, unit, count, sum, min, max, vals, resolution FROM cloudwatch_data "
                              "WHERE metric_id=? AND ts>=? AND ts<?", (metric_id, start, end))
        out: dict[float, Bucket] = {}
        for ts, row_unit, count, total, low, high, vals, resolution in rows:
            if unit and unit != row_unit:
                continue
            if period < 60 and resolution >= 60:
                aligned = math.floor(ts / 60) * 60.0  # standard-resolution data have minute granularity
            else:
                aligned = ts
            key = math.floor(aligned / period) * float(period)
            bucket = out.get(key)
            if bucket is None:
                bucket = out[key] = Bucket(key)
            bucket.add(Point(ts, row_unit, count, total, low, high,
                             [tuple(v) for v in json.loads(vals)] if vals else None))
        return out

    def statistic(self, metric_id: int | None, start: float, end: float, period: int, unit: str | None,
                  now: float, stat: str) -> dict[float, float]:
        """One basic statistic (SampleCount, Sum, Average, Minimum, Maximum) per period of
        ``[start, end)``: ``buckets(...)[k].stat(stat)`` for every period that has one, read as
        (period, count, the one column the statistic needs) rows with units merged (GetMetricData
        reports none) and no Bucket per period. What GetMetricData's metric stats read."""
        self.flush(now)
        if metric_id is None:
            return {}
        start = max(start, now - readable_for(period))
        column, fold = _COLUMN[stat]
        where_unit, extra = (" AND unit=?", [unit]) if unit else ("", [])
        if period < 60:
            aligned = "CASE WHEN resolution >= 60 THEN CAST(ts / 60 AS INTEGER) * 60.0 ELSE ts END"
            rows = self.store.all(f"SELECT CAST(({aligned}) / ? AS INTEGER) * ? AS k, SUM(count), {fold}({column}) "
                                  f"FROM cloudwatch_data WHERE metric_id=? AND ts>=? AND ts<?{where_unit} GROUP BY k",
                                  [period, float(period), metric_id, start, end, *extra])
            return _pick(stat, rows)
        self.roll_up()
        first, stop = math.ceil(start / 60) * 60.0, math.floor(end / 60) * 60.0
        merged: dict[float, tuple] = {}
        if first > stop:  # start and end inside one minute
            edges: tuple = ((start, end),)
        else:
            edges = ((start, first), (stop, end))
            if period == 60:  # a period is a minute: its rows as stored (one per unit), in the key's order
                for row in self.store.all(f"SELECT minute, count, {column} FROM cloudwatch_minutes WHERE metric_id=? "
                                          f"AND minute>=? AND minute<?{where_unit}", [metric_id, first, stop, *extra]):
                    had = merged.get(row[0])
                    merged[row[0]] = row if had is None else _fold(fold, had, row)
            else:
                merged = {row[0]: row for row in self.store.all(
                    f"SELECT CAST(minute / ? AS INTEGER) * ? AS k, SUM(count), {fold}({column}) FROM "
                    f"cloudwatch_minutes WHERE metric_id=? AND minute>=? AND minute<?{where_unit} GROUP BY k",
                    [period, float(period), metric_id, first, stop, *extra])}
        for lo, hi in edges:  # a partial minute at an end: one aggregate of its points (it lies in one period)
            if lo >= hi or lo > self.newest(metric_id):  # (a range ending now or later: nothing there yet)
                continue
            key = math.floor(lo / period) * float(period)
            row = self.store.one(f"SELECT ?, SUM(count), {fold}({column}) FROM cloudwatch_data WHERE metric_id=? AND "
                                 f"ts>=? AND ts<?{where_unit}", [key, metric_id, lo, hi, *extra])
            if row[1] is not None:
                had = merged.get(key)
                merged[key] = row if had is None else _fold(fold, had, row)
        return _pick(stat, merged.values())

    def roll_up(self) -> None:
        """Fold the data rows added since the last fold into the per-minute rollup (in the
        caller's transaction when there is one: a rolled-back read folds nothing)."""
        seen = self._inserts
        if self._folded == seen:
            return
        if not self.store.in_transaction:  # the fold and its mark commit together
            with self.store.transaction():
                self._fold(seen)
        else:
            self._fold(seen)

    def _fold(self, seen: int) -> None:
        self.store.after_commit(lambda: setattr(self, "_folded", max(self._folded, seen)))
        upto, top = self.store.one("SELECT (SELECT upto FROM cloudwatch_rollup), "
                                   "(SELECT MAX(rowid) FROM cloudwatch_data)")
        upto = upto or 0  # no row: a reset emptied the table (and the data with it)
        if top is None or top <= upto:
            return
        self.store.execute(_FOLD, (upto, top))
        self.store.execute("INSERT OR REPLACE INTO cloudwatch_rollup(id, upto) VALUES(1, ?)", (top,))

    def _merged(self, metric_id: int, start: float, end: float, period: int, unit: str | None
                ) -> dict[float, Bucket]:
        """``buckets`` without values, merged in SQL: one row per period and unit rather than per
        datum. ts is positive, so CAST(... AS INTEGER) floors it as math.floor does. A period
        of whole minutes reads the per-minute rollup (``_by_minutes``)."""
        if period >= 60:
            return self._by_minutes(metric_id, start, end, period, unit)
        aligned = "CASE WHEN resolution >= 60 THEN CAST(ts / 60 AS INTEGER) * 60.0 ELSE ts END"
        sql = (f"SELECT CAST(({aligned}) / ? AS INTEGER) * ? AS k, unit, SUM(count), SUM(sum), MIN(min), "
               f"MAX(max), MAX(rowid) FROM cloudwatch_data WHERE metric_id=? AND ts>=? AND ts<?"
               f"{' AND unit=?' if unit else ''} GROUP BY k, unit")
        args: list[Any] = [period, float(period), metric_id, start, end] + ([unit] if unit else [])
        out: dict[float, Bucket] = {}
        last: dict[float, int] = {}
        for key, row_unit, count, total, low, high, latest in self.store.all(sql, args):
            self._merge(out, last, key, row_unit, count, total, low, high, latest)
        return out

    def _by_minutes(self, metric_id: int, start: float, end: float, period: int, unit: str | None
                    ) -> dict[float, Bucket]:
        """``_merged`` for a period of whole minutes: the rollup's rows for the whole minutes in
        ``[start, end)``, merged per period in SQL, and for each partial minute at its ends one
        aggregate of its points (a partial minute lies in one period)."""
        self.roll_up()
        where_unit = " AND unit=?" if unit else ""
        first, stop = math.ceil(start / 60) * 60.0, math.floor(end / 60) * 60.0
        out: dict[float, Bucket] = {}
        last: dict[float, int] = {}
        if first > stop:  # start and end inside one minute
            edges = [(start, end)]
        else:
            edges = [(start, first), (stop, end)]
            args: list[Any] = [period, float(period), metric_id, first, stop] + ([unit] if unit else [])
            for key, row_unit, count, total, low, high, latest in self.store.all(
                    "SELECT CAST(minute / ? AS INTEGER) * ? AS k, unit, SUM(count), SUM(sum), MIN(min), MAX(max), "
                    f"MAX(last) FROM cloudwatch_minutes WHERE metric_id=? AND minute>=? AND minute<?{where_unit} "
                    "GROUP BY k, unit", args):
                self._merge(out, last, key, row_unit, count, total, low, high, latest)
        for lo, hi in edges:
            if lo >= hi:
                continue
            row = self.store.one(
                "SELECT s.*, (SELECT unit FROM cloudwatch_data WHERE rowid = s.latest) FROM (SELECT SUM(count), "
                "SUM(sum), MIN(min), MAX(max), MAX(rowid) AS latest FROM cloudwatch_data WHERE metric_id=? AND ts>=? "
                f"AND ts<?{where_unit}) AS s", [metric_id, lo, hi] + ([unit] if unit else []))
            if row is not None and row[4] is not None:
                count, total, low, high, latest, row_unit = row
                self._merge(out, last, math.floor(lo / period) * float(period), row_unit, count, total, low, high,
                            latest)
        return out

    @staticmethod
    def _merge(out: dict[float, Bucket], last: dict[float, int], key: float, unit: str, count: float,
               total: float, low: float, high: float, latest: int) -> None:
        """Add one merged row to its period's bucket; the bucket's unit is its newest datum's."""
        bucket = out.get(key)
        if bucket is None:
            out[key] = Bucket(key, count, total, low, high, unit=unit)
            last[key] = latest
            return
        bucket.count += count
        bucket.sum += total
        bucket.min = min(bucket.min, low)
        bucket.max = max(bucket.max, high)
        if latest > last[key]:
            bucket.unit, last[key] = unit, latest

    def list(self, account: str, region: str, namespace: str | None, name: str | None,
             dimensions: list[dict] | None, since: float | None) -> list[dict[str, Any]]:
        self.flush(self._now())
        sql = "SELECT namespace, name, dims FROM cloudwatch_metrics WHERE account=? AND region=?"
        args: list[Any] = [account, region]
        if namespace:
            sql += " AND namespace=?"
            args.append(namespace)
        if name:
            sql += " AND name=?"
            args.append(name)
        if since is not None:
            sql += " AND last_put>=?"
            args.append(since)
        out = []
        for ns, metric, dims in self.store.all(sql + " ORDER BY namespace, name, dims", args):
            have = dict(json.loads(dims))
            if any(d["Name"] not in have or ("Value" in d and d["Value"] is not None and have[d["Name"]] != d["Value"])
                   for d in dimensions or []):
                continue
            out.append({"Namespace": ns, "MetricName": metric, "Dimensions": dims_list(dims)})
        return out

    def expire(self, now: float) -> None:
        self.store.execute("DELETE FROM cloudwatch_data WHERE ts<?", (now - RETENTION,))
        # a minute that straddles the cutoff is read from its data rows (see _merged), so only
        # minutes wholly before it go
        self.store.execute("DELETE FROM cloudwatch_minutes WHERE minute<=?", (now - RETENTION - 60,))
        # rowids are max + 1: had the newest rows gone too, new ones would reuse rowids at or
        # under ``upto`` and never be folded
        self.store.execute("UPDATE cloudwatch_rollup SET upto = MIN(upto, COALESCE((SELECT MAX(rowid) FROM "
                           "cloudwatch_data), 0))")
