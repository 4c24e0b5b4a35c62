"""Amazon DynamoDB over the store: the service class, assembled from one mixin per
concern (tables, items, queries, transactions, PartiQL)."""

from __future__ import annotations

import time
from typing import Any

from unkai.services import Provisioned, ResourceContext, Service
from unkai.services.dynamodb import backups, resources
from unkai.services.dynamodb.backups import BackupOperations
from unkai.services.dynamodb.catalog import Catalog
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
               BackupOperations, Service):
    name = "dynamodb"
    max_body = 16 * 1024 * 1024  # AWS: an HTTP request to DynamoDB is at most 16 MB
    migrations = MIGRATIONS + backups.MIGRATIONS
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

    def handler(self, operation: str) -> Any:
        """The operation's handler; single-table ones also report AWS/DynamoDB's
        SuccessfulRequestLatency (TableName, Operation) when they succeed, as AWS does."""
        found = super().handler(operation)
        if found is None or (operation not in _TIMED and operation not in _BATCH_CAPACITY):
            return found
        unit = _CAPACITY_METRIC[operation]

        def timed(ctx: Any, params: dict) -> Any:
            cw = self.cloud.services.get("cloudwatch")
            if cw is None:
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
                _count_capacity(cw, ctx, unit, cap)
            if operation in _TIMED:
                table = str(params.get("TableName") or "").rsplit("/", 1)[-1]
                cw.count(ctx.account, ctx.region, "AWS/DynamoDB", "SuccessfulRequestLatency",
                         [{"Name": "TableName", "Value": table}, {"Name": "Operation", "Value": operation}],
                         (time.perf_counter() - started) * 1000, "Milliseconds")
            return result

        return timed

    async def start(self) -> None:
        self.cloud.jobs.register("dynamodb.backfill", self._backfill)
        self.cloud.jobs.register("dynamodb.purge", self._purge)
        self.ttl.start()

    async def stop(self) -> None:
        self.ttl.stop()

    async def pausing(self) -> None:
        self.ttl.stop()

    async def resetting(self) -> None:
        self._pending = None
        self._clear()
        self.items._counts.clear()
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
