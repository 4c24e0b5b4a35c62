"""Provisioned throughput, enforced as AWS enforces it: a table (or a global secondary
index) in PROVISIONED billing mode earns its read and write capacity units every second
of unkai's clock and keeps up to 300 seconds of what it did not use as burst capacity
(AWS: "DynamoDB currently retains up to five minutes (300 seconds) of unused read and
write capacity"). A request is admitted while its bucket holds capacity; what it then
consumes is taken afterwards (as DynamoDB does, a request is not refused for being larger
than what is left, and may leave the bucket in debt). A request that finds its bucket
empty is answered ProvisionedThroughputExceededException and consumes nothing.

PAY_PER_REQUEST tables never throttle and cost one dictionary lookup here. The buckets
are in memory: a restart refills them, as 300 idle seconds would.
"""

from __future__ import annotations

from typing import Any

BURST_SECONDS = 300.0

READS = frozenset(("GetItem", "Query", "Scan", "BatchGetItem"))


class Buckets:
    """Unused capacity per (table id, global index name or "", "R" | "W")."""

    def __init__(self) -> None:
        self._held: dict[tuple[int, str, str], tuple[float, float]] = {}

    def _level(self, key: tuple[int, str, str], rate: float, now: float) -> float:
        held = self._held.get(key)
        cap = rate * BURST_SECONDS
        if held is None:
            return cap  # a new (or just restarted) table has its full burst
        level, since = held
        return min(cap, level + max(0.0, now - since) * rate)

    def admits(self, key: tuple[int, str, str], rate: float, now: float) -> bool:
        """Whether a request may run now: the bucket still holds some capacity."""
        return self._level(key, rate, now) > 0

    def take(self, key: tuple[int, str, str], rate: float, units: float, now: float) -> None:
        """Consume what a request used (the bucket may go into debt)."""
        self._held[key] = (self._level(key, rate, now) - units, now)

    def clear(self) -> None:
        self._held.clear()


def rate(spec: dict | None, kind: str) -> float | None:
    """The provisioned units per second of a table or index definition, None when on demand."""
    throughput = (spec or {}).get("ProvisionedThroughput")
    if not throughput:
        return None
    return float(throughput["ReadCapacityUnits" if kind == "R" else "WriteCapacityUnits"] or 0) or None


def index_spec(definition: dict, index: str | None) -> dict | None:
    """A global secondary index's definition (which carries its own throughput), else None."""
    if not index:
        return None
    return next((g for g in definition.get("GlobalSecondaryIndexes") or [] if g.get("IndexName") == index), None)


def limits(definition: dict, kind: str, index: str | None) -> tuple[str, float] | None:
    """The bucket a request on this table (or global index) draws from: (index name or "",
    units per second); None for a PAY_PER_REQUEST table, which AWS never throttles this way."""
    if definition.get("BillingMode") == "PAY_PER_REQUEST":
        return None
    gsi = index_spec(definition, index)
    if gsi is not None:
        r = rate(gsi, kind)
        return (index or "", r) if r else None
    r = rate(definition, kind)
    return ("", r) if r else None


def consumed(cap: dict | None, index: str) -> float:
    """What a request's ConsumedCapacity (mode INDEXES) took from the bucket it drew from:
    a global index's own units, or the table's with its local indexes' (they share them)."""
    if not cap:
        return 0.0
    if index:
        return float(((cap.get("GlobalSecondaryIndexes") or {}).get(index) or {}).get("CapacityUnits", 0.0))
    table = (cap.get("Table") or {}).get("CapacityUnits", cap.get("CapacityUnits", 0.0))
    return float(table) + sum(float(u.get("CapacityUnits", 0.0))
                              for u in (cap.get("LocalSecondaryIndexes") or {}).values())


def event_metric(kind: str) -> str:
    return "ReadThrottleEvents" if kind == "R" else "WriteThrottleEvents"


def dims(table: str, index: str) -> list[dict[str, Any]]:
    out = [{"Name": "TableName", "Value": table}]
    if index:
        out.append({"Name": "GlobalSecondaryIndexName", "Value": index})
    return out
