"""Amazon DynamoDB over the store: the service class, assembled from one mixin per
concern (tables, items, queries, transactions, PartiQL)."""

from __future__ import annotations

import time
from typing import Any

from unkai.services import Provisioned, ResourceContext, Service
from unkai.services.dynamodb import backups, errors, exports, resources, throughput
from unkai.services.dynamodb.backups import BackupOperations
from unkai.services.dynamodb.catalog import Catalog
from unkai.services.dynamodb.exports import ExportOperations
from unkai.services.dynamodb.items import ItemOperations
from unkai.services.dynamodb.partiql import PartiQLOperations
from unkai.services.dynamodb.query import QueryOperations
from unkai.services.dynamodb.storage import MIGRATIONS, Items
from unkai.services.dynamodb.streams import StreamLog
from unkai.services.dynamodb.transactions import TransactionOperations
from unkai.services.dynamodb.ttl import Sweeper

# The single-table operations AWS/DynamoDB's SuccessfulRequestLatency is reported for.
_TIMED = frozenset(("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"))

# Operations whose answer carries a list of per-table ConsumedCapacity.
_BATCH_CAPACITY = frozenset(("BatchGetItem", "BatchWriteItem"))
_CAPACITY_METRIC = {"GetItem": "ConsumedReadCapacityUnits", "Query": "ConsumedReadCapacityUnits",
                    "Scan": "ConsumedReadCapacityUnits", "BatchGetItem": "ConsumedReadCapacityUnits",
                    "PutItem": "ConsumedWriteCapacityUnits", "UpdateItem": "ConsumedWriteCapacityUnits",
                    "DeleteItem": "ConsumedWriteCapacityUnits", "BatchWriteItem": "ConsumedWriteCapacityUnits"}


def _total(cap: dict) -> dict:
    """A ConsumedCapacity of mode INDEXES as mode TOTAL words it."""
    return {"TableName": cap["TableName"], "CapacityUnits": cap["CapacityUnits"]}


def _count_capacity(cw: Any, ctx: Any, metric: str, cap: dict) -> None:
    """AWS/DynamoDB Consumed*CapacityUnits: by TableName, or by TableName and
    GlobalSecondaryIndexName for what a global index served (AWS's dimensions)."""
    table = cap["TableName"]
    for name, used in (cap.get("GlobalSecondaryIndexes") or {}).items():
        cw.count(ctx.account, ctx.region, "AWS/DynamoDB", metric,
                 [{"Name": "TableName", "Value": table}, {"Name": "GlobalSecondaryIndexName", "Value": name}],
                 float(used["CapacityUnits"]))
    units = (cap.get("Table") or {}).get("CapacityUnits", cap["CapacityUnits"]) + sum(  # a local index is the table's
        float(used["CapacityUnits"]) for used in (cap.get("LocalSecondaryIndexes") or {}).values())
    if units or not cap.get("GlobalSecondaryIndexes"):
        cw.count(ctx.account, ctx.region, "AWS/DynamoDB", metric, [{"Name": "TableName", "Value": table}],
                 float(units))


class DynamoDB(Catalog, ItemOperations, QueryOperations, TransactionOperations, PartiQLOperations,
               BackupOperations, ExportOperations, Service):
    name = "dynamodb"
    max_body = 16 * 1024 * 1024  # AWS: an HTTP request to DynamoDB is at most 16 MB
    migrations = MIGRATIONS + backups.MIGRATIONS + exports.MIGRATIONS
    resource_types = resources.TYPES

    def check_unimplemented(self, ctx: Any, operation: str, params: dict) -> None:
        """An operation unkai does not serve still answers "Requested resource not found" for a
        missing table first, as AWS does."""
        if isinstance(params.get("TableName"), str):
            self.table(ctx, params["TableName"])

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self._init_catalog()
        self.streams = StreamLog(self)
        self.ttl = Sweeper(self)
        self.items = Items(self.store, self.streams, self.ttl.note, self.clock)
        self.buckets = throughput.Buckets()

    def handler(self, operation: str) -> Any:
        """The operation's handler. Item and query operations are throttled on PROVISIONED
        tables (throughput.py), report AWS/DynamoDB's Consumed*CapacityUnits, throttle
        events, and SuccessfulRequestLatency (TableName, Operation) when they succeed."""
        found = super().handler(operation)
        if found is None or (operation not in _TIMED and operation not in _BATCH_CAPACITY):
            return found
        unit = _CAPACITY_METRIC[operation]
        kind = "R" if operation in throughput.READS else "W"
        batch = operation in _BATCH_CAPACITY

        def timed(ctx: Any, params: dict) -> Any:
            cw = self.cloud.services.get("cloudwatch")
            now = self.clock.now()
            if batch:
                params, drawn, held = self._admit_batch(ctx, operation, params, kind, now, cw)
            else:
                drawn, held = self._admit(ctx, operation, params, kind, now, cw), {}
            if cw is None and not drawn:
                return found(ctx, params)
            started = time.perf_counter()
            asked = params.get("ReturnConsumedCapacity")
            # The capacity a request uses is computed (in Python, no SQL) whether or not
            # the caller asked for it, then shaped back to what the caller asked for.
            result = found(ctx, {**params, "ReturnConsumedCapacity": "INDEXES"})
            used = result.pop("ConsumedCapacity", None)
            if asked == "INDEXES" and used is not None:
                result["ConsumedCapacity"] = used
            elif asked == "TOTAL" and used is not None:
                result["ConsumedCapacity"] = ([_total(u) for u in used] if isinstance(used, list) else _total(used))
            for cap in used if isinstance(used, list) else [used] if used else []:
                if cw is not None:
                    _count_capacity(cw, ctx, unit, cap)
                bucket = drawn.get(cap["TableName"])
                if bucket is not None:
                    key, rate = bucket
                    self.buckets.take(key, rate, throughput.consumed(cap, key[1]), now)
            if held:  # tables of a batch that were throttled: handed back unprocessed, as AWS does
                name = "UnprocessedItems" if operation == "BatchWriteItem" else "UnprocessedKeys"
                result[name] = {**(result.get(name) or {}), **held}
            if operation in _TIMED and cw is not None:
                table = str(params.get("TableName") or "").rsplit("/", 1)[-1]
                cw.count(ctx.account, ctx.region, "AWS/DynamoDB", "SuccessfulRequestLatency",
                         [{"Name": "TableName", "Value": table}, {"Name": "Operation", "Value": operation}],
                         (time.perf_counter() - started) * 1000, "Milliseconds")
            return result

        return timed

    # -- provisioned throughput (throughput.py) ------------------------------------

    def _drawn(self, ctx: Any, name: str, kind: str, index: str | None, now: float
               ) -> tuple[Any, tuple[tuple[int, str, str], float] | None, bool]:
        """(table, its bucket key and rate or None when on demand, whether it admits now)."""
        if name.startswith("arn:") and ":table/" in name:
            name = name.rsplit("/", 1)[-1]
        table = self.find_table(ctx.account, ctx.region, name)
        if table is None:
            return None, None, True
        limit = throughput.limits(table.definition, kind, index)
        if limit is None:
            return table, None, True
        key = (table.id, limit[0], kind)
        return table, (key, limit[1]), self.buckets.admits(key, limit[1], now)

    def _throttled(self, ctx: Any, cw: Any, table: Any, kind: str, index: str, events: int,
                   operation: str | None) -> None:
        """AWS/DynamoDB's throttle metrics, counted now: the request's transaction rolls back."""
        if cw is None:
            return
        if events:
            cw.count(ctx.account, ctx.region, "AWS/DynamoDB", throughput.event_metric(kind),
                     throughput.dims(table.name, index), float(events), now=True)
        if operation:
            cw.count(ctx.account, ctx.region, "AWS/DynamoDB", "ThrottledRequests",
                     [{"Name": "TableName", "Value": table.name}, {"Name": "Operation", "Value": operation}],
                     now=True)

    def _admit(self, ctx: Any, operation: str, params: dict, kind: str, now: float, cw: Any) -> dict:
        """Throttle a single-table request whose bucket is empty; else the bucket it draws from."""
        index = params.get("IndexName") if operation in ("Query", "Scan") else None
        table, bucket, admitted = self._drawn(ctx, str(params.get("TableName") or ""), kind, index, now)
        if bucket is None:
            return {}
        if not admitted:
            self._throttled(ctx, cw, table, kind, bucket[0][1], 1, operation)
            raise errors.throughput_exceeded(table.arn, kind, bucket[0][1])
        return {table.name: bucket}

    def _admit_batch(self, ctx: Any, operation: str, params: dict, kind: str, now: float, cw: Any
                     ) -> tuple[dict, dict, dict]:
        """A batch runs for the tables that admit it; a throttled table's requests come back
        unprocessed, and only when every table is throttled is the batch refused (AWS)."""
        requests = params.get("RequestItems")
        if not isinstance(requests, dict):
            return params, {}, {}
        drawn, held, last = {}, {}, None
        for name, entry in requests.items():
            table, bucket, admitted = self._drawn(ctx, str(name), kind, None, now)
            if bucket is None:
                continue
            if admitted:
                drawn[table.name] = bucket
                continue
            events = len(entry.get("Keys") or []) if isinstance(entry, dict) else len(entry or [])
            self._throttled(ctx, cw, table, kind, "", events, None)
            held[name] = entry
            last = table
        if held and len(held) == len(requests):
            self._throttled(ctx, cw, last, kind, "", 0, operation)
            raise errors.throughput_exceeded(last.arn, kind)
        if held:
            params = {**params, "RequestItems": {n: e for n, e in requests.items() if n not in held}}
        return params, drawn, held

    async def start(self) -> None:
        self.cloud.jobs.register("dynamodb.backfill", self._backfill)
        self.cloud.jobs.register("dynamodb.purge", self._purge)
        self.cloud.jobs.register("dynamodb.export", self._run_export)
        self.cloud.jobs.register("dynamodb.import", self._run_import)
        self.ttl.start()

    async def stop(self) -> None:
        self.ttl.stop()

    async def pausing(self) -> None:
        self.ttl.stop()

    async def resetting(self) -> None:
        self._pending = None
        self._clear()
        self.items._counts.clear()
        self.buckets.clear()
        self.ttl.start()

    # -- template resources -------------------------------------------------------

    def create_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str,
                        props: dict[str, Any]) -> Provisioned:
        return resources.create(self, ctx, resource_type, logical_id, props)

    def update_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
                        old_props: dict[str, Any], props: dict[str, Any]) -> Provisioned:
        updated = resources.update(self, ctx, resource_type, logical_id, physical_id, old_props, props)
        if updated is not None:
            return updated
        return super().update_resource(ctx, resource_type, logical_id, physical_id, old_props, props)

    def delete_resource(self, ctx: ResourceContext, resource_type: str, physical_id: str,
                        props: dict[str, Any]) -> None:
        resources.delete(self, ctx, resource_type, physical_id, props)
