"""Item operations: PutItem, GetItem, UpdateItem, DeleteItem, BatchGetItem and
BatchWriteItem, and the request plumbing they share with Query, Scan and
transactions (placeholders, conditions, projections, return values, capacity).

Each operation runs inside the gateway's store transaction, so a conditional
write's read, check and write are one atomic step: concurrent writers queue on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext
from unkai.services.dynamodb import attributes, legacy
from unkai.services.dynamodb.attributes import MAX_ITEM_SIZE, Item, check_item, check_value
from unkai.services.dynamodb.errors import condition_failed, invalid, validation
from unkai.services.dynamodb.expressions import Env, check_literals, holds, parse_condition, parse_projection
from unkai.services.dynamodb.expressions import parse_update, project
from unkai.services.dynamodb.expressions import update as updates
from unkai.services.dynamodb.expressions.ast import Parsed
from unkai.services.dynamodb.expressions.evaluate import check_paths_disjoint
from unkai.services.dynamodb.storage import check_index_keys
from unkai.services.dynamodb.tables import Table

MAX_BATCH_WRITE = 25
MAX_BATCH_GET_BYTES = 16 * 1024 * 1024  # AWS's cap on one BatchGetItem answer
MAX_BATCH_GET = 100


# -- request plumbing -----------------------------------------------------------------

def make_env(params: dict, expressions: tuple[str, ...]) -> Env:
    """The request's placeholders, validated; ``expressions`` are the expression
    parameters the operation accepts (for AWS's 'only with expressions' check)."""
    names = params.get("ExpressionAttributeNames")
    values = params.get("ExpressionAttributeValues")
    if names is not None:
        if not names:
            raise validation("ExpressionAttributeNames must not be empty")
        for key in names:
            if not key.startswith("#") or len(key) < 2:
                raise validation(f'ExpressionAttributeNames contains invalid key: Syntax error; key: "{key}"')
    checked = None
    if values is not None:
        if not values:
            raise validation("ExpressionAttributeValues must not be empty")
        checked = {}
        for key, value in values.items():
            if not key.startswith(":") or len(key) < 2:
                raise validation(f'ExpressionAttributeValues contains invalid key: Syntax error; key: "{key}"')
            try:
                checked[key] = check_value(value)
            except ServiceError as exc:
                raise validation(f"ExpressionAttributeValues contains invalid value: {exc.message} for key {key}")
    if not any(params.get(e) is not None for e in expressions):
        if names is not None:
            raise validation("ExpressionAttributeNames can only be specified when using expressions")
        if values is not None:
            raise validation("ExpressionAttributeValues can only be specified when using expressions")
    return Env(names, checked)


def condition_of(params: dict, env: Env, expression: str = "ConditionExpression",
                 legacy_param: str = "Expected", expected: bool = True) -> Parsed | None:
    legacy.mixed(params, (legacy_param, "ConditionalOperator"), (expression,))
    text = params.get(expression)
    if text is not None:
        parsed = parse_condition(text, expression)
        env.bind(parsed, expression)
        check_literals(parsed.node, env, expression)
        return parsed
    if params.get(legacy_param):
        return legacy.conditions(env, params[legacy_param], params.get("ConditionalOperator"), expected)
    if params.get("ConditionalOperator"):
        raise validation(f"ConditionalOperator can only be used when {legacy_param} is specified")
    return None


def projection_of(params: dict, env: Env) -> list[tuple] | None:
    legacy.mixed(params, ("AttributesToGet",), ("ProjectionExpression",))
    text = params.get("ProjectionExpression")
    if text is not None:
        parsed = parse_projection(text)
        env.bind(parsed, "ProjectionExpression")
        paths = [env.resolve(p) for p in parsed.node]
        check_paths_disjoint(paths, "ProjectionExpression")
        return paths
    if params.get("AttributesToGet"):
        return legacy.attributes_to_get(params["AttributesToGet"])
    return None


def capacity(table: Table, units: float | Callable[[], float], mode: str | None,
             index: str | None = None) -> dict | None:
    """ConsumedCapacity when the request asked for it (``units`` may be a callable, so
    the sizes behind it are only computed then)."""
    if mode not in ("TOTAL", "INDEXES"):
        return None
    if callable(units):
        units = units()
    out: dict[str, Any] = {"TableName": table.name, "CapacityUnits": units}
    if mode == "INDEXES":
        if index is None:
            out["Table"] = {"CapacityUnits": units}
        else:
            key = "LocalSecondaryIndexes" if table.indexes[index].kind == "LOCAL" else "GlobalSecondaryIndexes"
            out["Table"] = {"CapacityUnits": 0.0}
            out[key] = {index: {"CapacityUnits": units}}
    return out


def write_units(*items: Item | None) -> float:
    size = max((attributes.item_size(i) for i in items if i is not None), default=0)
    return float(max(1, math.ceil(size / 1024)))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


def check_return_values(value: str | None, allowed: tuple[str, ...]) -> str:
    value = value or "NONE"
    if value not in allowed:
        raise validation("Return values set to invalid value")
    return value


def check_size(item: Item, update: bool = False) -> None:
    if attributes.item_size(item) > MAX_ITEM_SIZE:
        raise validation("Item size to update has exceeded the maximum allowed size" if update
                         else "Item size has exceeded the maximum allowed size")


class ItemOperations:
    """Mixed into the DynamoDB service."""

    items: Any

    def table(self, ctx: RequestContext, name: str) -> Table: ...

    # -- single-item building blocks (also used by transactions and PartiQL) ------

    def prepare_put(self, table: Table, raw: Item) -> tuple[Item, bytes, bytes]:
        item = check_item(raw)
        table.schema.check_item(item)
        check_index_keys(table, item)
        check_size(item)
        pk, rk = table.schema.encode(item)
        return item, pk, rk

    def prepare_key(self, table: Table, raw: Item) -> tuple[Item, bytes, bytes]:
        key = table.schema.check_key(check_item(raw))
        pk, rk = table.schema.encode(key)
        return key, pk, rk

    def check_condition(self, parsed: Parsed | None, old: Item | None, env: Env, on_failure: str | None) -> None:
        if parsed is not None and not holds(parsed.node, old or {}, env):
            raise condition_failed(attributes.to_wire(old) if on_failure == "ALL_OLD" and old else None)

    # -- PutItem / GetItem / DeleteItem / UpdateItem --------------------------------

    def _put_or_delete(self, ctx: RequestContext, params: dict, deleting: bool) -> dict:
        table = self.table(ctx, params["TableName"])
        env = make_env(params, ("ConditionExpression",))
        returns = check_return_values(params.get("ReturnValues"), ("NONE", "ALL_OLD"))
        on_failure = check_return_values(params.get("ReturnValuesOnConditionCheckFailure"), ("NONE", "ALL_OLD"))
        condition = condition_of(params, env)
        env.check_unused()
        if deleting:
            key, pk, rk = self.prepare_key(table, params["Key"])
            item = None
        else:
            item, pk, rk = self.prepare_put(table, params["Item"])
            key = table.schema.item_key(item)
        old = self.items.get(table, pk, rk)
        self.check_condition(condition, old, env, on_failure)
        self.items.write(table, key, pk, rk, old, item)
        out: dict[str, Any] = {}
        if returns == "ALL_OLD" and old is not None:
            out["Attributes"] = old
        cap = capacity(table, lambda: write_units(old, item), params.get("ReturnConsumedCapacity"))
        if cap:
            out["ConsumedCapacity"] = cap
        return out

    def put_item(self, ctx: RequestContext, params: dict) -> dict:
        return self._put_or_delete(ctx, params, deleting=False)

    def delete_item(self, ctx: RequestContext, params: dict) -> dict:
        return self._put_or_delete(ctx, params, deleting=True)

    def get_item(self, ctx: RequestContext, params: dict) -> dict:
        table = self.table(ctx, params["TableName"])
        env = make_env(params, ("ProjectionExpression",))
        paths = projection_of(params, env)
        env.check_unused()
        _, pk, rk = self.prepare_key(table, params["Key"])
        item = self.items.get(table, pk, rk)
        out: dict[str, Any] = {}
        if item is not None:
            out["Item"] = project(item, paths) if paths is not None else item
        cap = capacity(table, lambda: read_units(attributes.item_size(item) if item else 0, bool(params.get("ConsistentRead"))),
                       params.get("ReturnConsumedCapacity"))
        if cap:
            out["ConsumedCapacity"] = cap
        return out

    def parse_update_request(self, table: Table, params: dict, env: Env) -> Parsed | None:
        legacy.mixed(params, ("AttributeUpdates",), ("UpdateExpression",))
        if params.get("UpdateExpression") is not None:
            parsed = parse_update(params["UpdateExpression"])
            env.bind(parsed, "UpdateExpression")
        elif params.get("AttributeUpdates"):
            parsed = legacy.attribute_updates(env, params["AttributeUpdates"])
        else:
            return None
        updates.check(parsed.node, env, table.schema.names)
        return parsed

    def apply_update(self, table: Table, parsed: Parsed | None, env: Env, key: Item, old: Item | None) -> Item:
        base = old if old is not None else dict(key)
        new = updates.apply(parsed.node, base, env) if parsed is not None else dict(base)
        check_index_keys(table, new)
        check_size(new, update=True)
        return new

    def update_item(self, ctx: RequestContext, params: dict) -> dict:
        table = self.table(ctx, params["TableName"])
        env = make_env(params, ("UpdateExpression", "ConditionExpression"))
        returns = check_return_values(params.get("ReturnValues"),
                                      ("NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"))
        on_failure = check_return_values(params.get("ReturnValuesOnConditionCheckFailure"), ("NONE", "ALL_OLD"))
        parsed = self.parse_update_request(table, params, env)
        condition = condition_of(params, env)
        env.check_unused()
        key, pk, rk = self.prepare_key(table, params["Key"])
        old = self.items.get(table, pk, rk)
        self.check_condition(condition, old, env, on_failure)
        new = self.apply_update(table, parsed, env, key, old)
        self.items.write(table, key, pk, rk, old, new)
        out: dict[str, Any] = {}
        if returns == "ALL_OLD" and old is not None:
            out["Attributes"] = old
        elif returns == "ALL_NEW":
            out["Attributes"] = new
        elif returns in ("UPDATED_OLD", "UPDATED_NEW") and parsed is not None:
            paths = updates.paths(parsed.node, env)
            source = old if returns == "UPDATED_OLD" else new
            picked = project(source or {}, paths)
            if picked:
                out["Attributes"] = picked
        cap = capacity(table, lambda: write_units(old, new), params.get("ReturnConsumedCapacity"))
        if cap:
            out["ConsumedCapacity"] = cap
        return out

    # -- batches --------------------------------------------------------------------

    def batch_write_item(self, ctx: RequestContext, params: dict) -> dict:
        requests = params["RequestItems"]
        total = sum(len(v) for v in requests.values())
        if not requests or total > MAX_BATCH_WRITE or any(not v for v in requests.values()):
            raise validation("1 validation error detected: Value at 'requestItems' failed to satisfy constraint: "
                             "Map value must satisfy constraint: [Member must have length less than or equal to 25, "
                             "Member must have length greater than or equal to 1]")
        planned = []
        for name, entries in requests.items():
            table = self.table(ctx, name)
            seen: set[tuple[bytes, bytes]] = set()
            for entry in entries:
                put, delete = entry.get("PutRequest"), entry.get("DeleteRequest")
                if (put is None) == (delete is None):
                    raise validation("Supplied AttributeValue has more than one datatypes set, must contain exactly "
                                     "one of the supported datatypes" if put and delete else
                                     "1 validation error detected: WriteRequest must contain exactly one of "
                                     "PutRequest or DeleteRequest")
                if put is not None:
                    item, pk, rk = self.prepare_put(table, put["Item"])
                    planned.append((table, table.schema.item_key(item), pk, rk, item))
                else:
                    key, pk, rk = self.prepare_key(table, delete["Key"])
                    planned.append((table, key, pk, rk, None))
                if (pk, rk) in seen:
                    raise validation("Provided list of item keys contains duplicates")
                seen.add((pk, rk))
        used: dict[str, float] = {}
        for table, key, pk, rk, item in planned:
            old = self.items.get(table, pk, rk)
            self.items.write(table, key, pk, rk, old, item)
            used[table.name] = used.get(table.name, 0.0) + write_units(old, item)
        out: dict[str, Any] = {"UnprocessedItems": {}}
        mode = params.get("ReturnConsumedCapacity")
        if mode in ("TOTAL", "INDEXES"):
            out["ConsumedCapacity"] = [capacity(self.table(ctx, n), u, mode) for n, u in used.items()]
        return out

    def batch_get_item(self, ctx: RequestContext, params: dict) -> dict:
        requests = params["RequestItems"]
        total = sum(len(r.get("Keys") or []) for r in requests.values())
        if total > MAX_BATCH_GET:
            raise validation("Too many items requested for the BatchGetItem call")
        if not requests or any(not r.get("Keys") for r in requests.values()):
            raise validation("1 validation error detected: Value at 'requestItems' failed to satisfy constraint: "
                             "Map value must satisfy constraint: [Member must have length less than or equal to 100, "
                             "Member must have length greater than or equal to 1]")
        plans = []
        for name, request in requests.items():
            table = self.table(ctx, name)
            env = make_env(request, ("ProjectionExpression",))
            paths = projection_of(request, env)
            env.check_unused()
            keys = []
            seen: set[tuple[bytes, bytes]] = set()
            for raw in request["Keys"]:
                _, pk, rk = self.prepare_key(table, raw)
                if (pk, rk) in seen:
                    raise validation("Provided list of item keys contains duplicates")
                seen.add((pk, rk))
                keys.append((pk, rk, raw))
            plans.append((name, table, paths, keys, bool(request.get("ConsistentRead"))))
        responses: dict[str, list] = {}
        used: dict[str, float] = {}
        unprocessed: dict[str, dict] = {}
        size, full = 0, False
        for name, table, paths, keys, consistent in plans:
            found = responses.setdefault(name, [])
            for pk, rk, raw in keys:
                item = None if full else self.items.get(table, pk, rk)
                item_size = attributes.item_size(item) if item is not None else 0
                if full or size + item_size > MAX_BATCH_GET_BYTES:
                    full = True  # AWS answers at most 16 MB; the keys left over come back unprocessed
                    left = unprocessed.setdefault(name, {k: v for k, v in requests[name].items() if k != "Keys"})
                    left.setdefault("Keys", []).append(raw)
                    continue
                if item is not None:
                    size += item_size
                    found.append(project(item, paths) if paths is not None else item)
                    used[name] = used.get(name, 0.0) + read_units(item_size, consistent)
        out: dict[str, Any] = {"Responses": responses, "UnprocessedKeys": unprocessed}
        mode = params.get("ReturnConsumedCapacity")
        if mode in ("TOTAL", "INDEXES"):
            out["ConsumedCapacity"] = [capacity(self.table(ctx, n), used.get(n, 0.0), mode) for n in responses]
        return out

