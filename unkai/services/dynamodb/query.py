"""Query and Scan. A Query is one index range scan over (partition bytes, sort bytes)
in the base table or a secondary index, so its cost follows the rows it returns,
not the table's size. Pages end at Limit items read or 1 MB, as on AWS."""

from __future__ import annotations

from typing import Any

from unkai.services import RequestContext
from unkai.services.dynamodb import attributes, legacy
from unkai.services.dynamodb.attributes import Item
from unkai.services.dynamodb.errors import invalid, validation
from unkai.services.dynamodb.expressions import check_literals, holds, parse_condition, project
from unkai.services.dynamodb.expressions.ast import And, Between, Call, Compare, Path, Value
from unkai.services.dynamodb.items import capacity, condition_of, make_env, projection_of, read_units
from unkai.services.dynamodb.keys import KeySchema, encode, partition, segment_bounds, successor
from unkai.services.dynamodb.tables import Index, Table

MAX_PAGE_BYTES = 1024 * 1024


class KeyRange:
    """A Query's key condition as byte bounds on the sort key."""

    def __init__(self) -> None:
        self.pk = b""
        self.lower: bytes | None = None
        self.lower_inclusive = True
        self.upper: bytes | None = None
        self.upper_inclusive = True


def conjuncts(node: Any) -> list:
    if isinstance(node, And):
        return conjuncts(node.left) + conjuncts(node.right)
    return [node]


def key_range(node: Any, schema: KeySchema, env: Any) -> KeyRange:
    """AWS's key condition rules: the hash key with =, optionally one sort key
    condition (=, <, <=, >, >=, BETWEEN, begins_with)."""
    parts = conjuncts(node)
    if len(parts) > 2:
        raise validation("Conditions can be of length 1 or 2 only")
    found: dict[str, tuple[str, list]] = {}
    for part in parts:
        if isinstance(part, Compare):
            op, left, right = part.op, part.left, part.right
            if isinstance(right, Path) and isinstance(left, Value):
                left, right = right, left
                op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
            if op == "<>":
                raise validation("Unsupported operator on KeyConditionExpression: operator: <>")
            operands = [right]
        elif isinstance(part, Between):
            op, left, operands = "BETWEEN", part.operand, [part.low, part.high]
        elif isinstance(part, Call) and part.name == "begins_with":
            op, left, operands = "begins_with", part.args[0], [part.args[1]]
        else:
            name = {"Or": "OR", "Not": "NOT", "In": "IN"}.get(type(part).__name__,
                                                               getattr(part, "name", type(part).__name__))
            raise validation(f"Invalid operator used in KeyConditionExpression: {name}")
        if not isinstance(left, Path) or not all(isinstance(o, Value) for o in operands):
            raise validation("Invalid condition in KeyConditionExpression: Multiple attribute names used in one "
                             "condition" if isinstance(left, Path) else "Query key condition not supported")
        path = env.resolve(left)
        if len(path) != 1:
            raise validation("KeyConditionExpressions must only contain primitive top level attributes")
        name = path[0]
        if name in found:
            raise validation("KeyConditionExpressions must only contain one condition per key")
        found[name] = (op, [env.values[o.name] for o in operands])
    result = KeyRange()
    hash_cond = found.pop(schema.hash.name, None)
    if hash_cond is None:
        raise validation(f"Query condition missed key schema element: {schema.hash.name}")
    op, values = hash_cond
    if op != "=":
        raise validation("Query key condition not supported")
    _check_type(values, schema.hash.type)
    _check_not_empty(values, schema.hash.name)
    result.pk = partition(encode(values[0]))
    if not found:
        return result
    if schema.range is None:
        raise validation("Query key condition not supported")
    if schema.range.name not in found:
        raise validation(f"Query condition missed key schema element: {schema.range.name}")
    op, values = found.pop(schema.range.name)
    if op == "begins_with" and schema.range.type == "N":
        raise validation("Invalid KeyConditionExpression: Incorrect operand type for operator or function; "
                         "operator or function: begins_with, operand type: N")
    _check_type(values, schema.range.type)
    _check_not_empty(values, schema.range.name)
    encoded = [encode(v) for v in values]
    if op == "=":
        result.lower = result.upper = encoded[0]
    elif op == "<":
        result.upper, result.upper_inclusive = encoded[0], False
    elif op == "<=":
        result.upper = encoded[0]
    elif op == ">":
        result.lower, result.lower_inclusive = encoded[0], False
    elif op == ">=":
        result.lower = encoded[0]
    elif op == "BETWEEN":
        result.lower, result.upper = encoded
    else:
        result.lower = encoded[0]
        result.upper, result.upper_inclusive = successor(encoded[0]), False
    return result


def _check_not_empty(values: list, name: str) -> None:
    """AWS refuses an empty string or binary as a key condition's value, as it does in a key."""
    for v in values:
        kind = attributes.type_of(v)
        if kind in ("S", "B") and len(v[kind]) == 0:
            raise validation("One or more parameter values are not valid. The AttributeValue for a key attribute "
                             f"cannot contain an empty {'string' if kind == 'S' else 'binary'} value. Key: {name}")


SELECT_VALUES = "[SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"  # AWS's order


def check_select(params: dict) -> None:
    """Select outside the enum fails first, with AWS's "1 validation error detected" wording."""
    select = params.get("Select")
    if select is not None and select not in ("SPECIFIC_ATTRIBUTES", "COUNT", "ALL_ATTRIBUTES",
                                             "ALL_PROJECTED_ATTRIBUTES"):
        raise validation(f"1 validation error detected: Value '{select}' at 'select' failed to satisfy constraint: "
                         f"Member must satisfy enum value set: {SELECT_VALUES}")


def _check_type(values: list, expected: str) -> None:
    for v in values:
        if attributes.type_of(v) != expected:
            raise invalid("Condition parameter type does not match schema type")


class QueryOperations:
    """Mixed into the DynamoDB service."""

    store: Any

    def table(self, ctx: RequestContext, name: str) -> Table: ...

    def _index(self, table: Table, params: dict) -> Index | None:
        name = params.get("IndexName")
        if name is None:
            return None
        index = table.indexes.get(name)
        if index is None:
            raise validation(f"The table does not have the specified index: {name}")
        if index.status == "CREATING":
            raise validation(f"Cannot read from backfilling global secondary index: {name}")
        if index.kind == "GLOBAL" and params.get("ConsistentRead"):
            raise validation("Consistent reads are not supported on global secondary indexes")
        return index

    def _select(self, params: dict, index: Index | None, has_projection: bool) -> str:
        select = params.get("Select")
        if select is None:
            if has_projection:
                return "SPECIFIC_ATTRIBUTES"
            return "ALL_PROJECTED_ATTRIBUTES" if index is not None else "ALL_ATTRIBUTES"
        if has_projection and select != "SPECIFIC_ATTRIBUTES":
            which = "ProjectionExpression" if params.get("ProjectionExpression") else "AttributesToGet"
            raise validation(f"Cannot specify the {which} when choosing to get {select}")
        if select == "SPECIFIC_ATTRIBUTES" and not has_projection:
            raise validation("One or more parameter values were invalid: Must specify the AttributesToGet or "
                             "ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES")
        if select == "ALL_PROJECTED_ATTRIBUTES" and index is None:
            raise validation("One or more parameter values were invalid: Select type ALL_PROJECTED_ATTRIBUTES is "
                             "not supported for table without IndexName")
        if select == "ALL_ATTRIBUTES" and index is not None and index.kind == "GLOBAL" and index.projection != "ALL":
            raise validation(f"One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported "
                             f"for global secondary index {index.name} because its projection type is not ALL")
        return select

    def _start(self, table: Table, index: Index | None, raw: Item | None) -> tuple[bytes, ...] | None:
        """ExclusiveStartKey as the byte tuple the SQL continues after."""
        if raw is None:
            return None
        start = attributes.check_item(raw)
        wanted = set(table.schema.names) | (set(index.schema.names) if index else set())
        if set(start) != wanted:
            raise validation("The provided starting key is invalid: The provided key element does not match the "
                             "schema")
        try:
            table.schema.check_key(table.schema.item_key(start))
            tpk, trk = table.schema.encode(start)
            if index is None:
                return tpk, trk
            index.schema.check_key(index.schema.item_key(start))
            ipk, irk = index.schema.encode(start)
        except Exception:
            raise validation("The provided starting key is invalid: The provided key element does not match the "
                             "schema") from None
        return ipk, irk, tpk, trk

    def _page(self, table: Table, index: Index | None, rows: Any, params: dict, env: Any, filter_: Any,
              paths: list | None, select: str) -> dict:
        limit = params.get("Limit")
        if limit is not None and limit < 1:
            raise validation(f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy "
                             "constraint: Member must have value greater than or equal to 1")
        items: list[Item] = []
        scanned = 0
        count = 0
        size = 0
        last: Item | None = None
        more = False
        projected_view = index is not None and (index.kind == "GLOBAL" or select != "ALL_ATTRIBUTES")
        for text in rows:
            if (limit is not None and scanned >= limit) or size >= MAX_PAGE_BYTES:
                more = True
                break
            item = attributes.loads(text)
            scanned += 1
            size += len(text)
            last = item
            view = index.project(item, table.schema) if projected_view else item
            if filter_ is not None and not holds(filter_.node, view, env):
                continue
            count += 1
            if select != "COUNT":
                items.append(project(view, paths) if paths is not None else view)
        out: dict[str, Any] = {"Count": count, "ScannedCount": scanned}
        if select != "COUNT":
            out["Items"] = items
        if more and last is not None:
            key = table.schema.item_key(last)
            if index is not None:
                key.update(index.schema.item_key(last))
            out["LastEvaluatedKey"] = key
        cap = capacity(table, read_units(size, bool(params.get("ConsistentRead"))),
                       params.get("ReturnConsumedCapacity"), index.name if index else None)
        if cap:
            out["ConsumedCapacity"] = cap
        return out

    def _filter(self, params: dict, env: Any, legacy_param: str, keys: tuple[str, ...]) -> Any:
        parsed = condition_of(params, env, "FilterExpression", legacy_param, expected=False)
        if parsed is not None and keys and params.get("FilterExpression") is not None:
            for name in _top_names(parsed.node, env):
                if name in keys:
                    raise validation(f"Filter Expression can only contain non-primary key attributes: Primary key "
                                     f"attribute: {name}")
        return parsed

    # -- Query ----------------------------------------------------------------------

    def query(self, ctx: RequestContext, params: dict) -> dict:
        check_select(params)
        table = self.table(ctx, params["TableName"])
        index = self._index(table, params)
        schema = index.schema if index is not None else table.schema
        env = make_env(params, ("KeyConditionExpression", "FilterExpression", "ProjectionExpression"))
        legacy.mixed(params, ("KeyConditions",), ("KeyConditionExpression",))
        if params.get("KeyConditionExpression") is not None:
            parsed = parse_condition(params["KeyConditionExpression"], "KeyConditionExpression")
            env.bind(parsed, "KeyConditionExpression")
            check_literals(parsed.node, env, "KeyConditionExpression")
        elif params.get("KeyConditions"):
            parsed = legacy.key_conditions(env, params["KeyConditions"])
        else:
            raise validation("Either the KeyConditions or KeyConditionExpression parameter must be specified in "
                             "the request.")
        filter_ = self._filter(params, env, "QueryFilter", schema.names)
        paths = projection_of(params, env)
        env.check_unused()
        select = self._select(params, index, paths is not None)
        bounds = key_range(parsed.node, schema, env)
        start = self._start(table, index, params.get("ExclusiveStartKey"))
        forward = params.get("ScanIndexForward", True)
        rows = self._query_rows(table, index, bounds, start, forward)
        return self._page(table, index, rows, params, env, filter_, paths, select)

    def _query_rows(self, table: Table, index: Index | None, bounds: KeyRange, start: tuple | None,
                    forward: bool) -> Any:
        order = "" if forward else " DESC"
        if index is None:
            sql = "SELECT item FROM dynamodb_items WHERE table_id=? AND pk=?"
            args: list[Any] = [table.id, bounds.pk]
            rk = "rk"
        else:
            sql = ("SELECT i.item FROM dynamodb_index_entries e JOIN dynamodb_items i ON i.table_id=? AND "
                   "i.pk=e.tpk AND i.rk=e.trk WHERE e.index_id=? AND e.pk=?")
            args = [table.id, index.id, bounds.pk]
            rk = "e.rk"
        if bounds.lower is not None:
            sql += f" AND {rk} >{'=' if bounds.lower_inclusive else ''} ?"
            args.append(bounds.lower)
        if bounds.upper is not None:
            sql += f" AND {rk} <{'=' if bounds.upper_inclusive else ''} ?"
            args.append(bounds.upper)
        cmp = ">" if forward else "<"
        if index is None:
            if start is not None:
                if start[0] != bounds.pk:
                    raise validation("The provided starting key is outside query boundaries based on provided "
                                     "conditions")
                sql += f" AND rk {cmp} ?"
                args.append(start[1])
            sql += f" ORDER BY rk{order}"
        else:
            if start is not None:
                if start[0] != bounds.pk:
                    raise validation("The provided starting key is outside query boundaries based on provided "
                                     "conditions")
                sql += f" AND (e.rk, e.tpk, e.trk) {cmp} (?, ?, ?)"
                args += [start[1], start[2], start[3]]
            sql += f" ORDER BY e.rk{order}, e.tpk{order}, e.trk{order}"
        return (row[0] for row in self.store.execute(sql, args))

    # -- Scan -----------------------------------------------------------------------

    def scan_rows(self, table: Table, index: Index | None, start: tuple | None,
                  bounds: tuple[bytes, bytes | None] | None = None) -> Any:
        """Items (JSON text) of the table or index in key order, after ``start``, within
        a parallel scan segment's partition ``bounds``."""
        if index is None:
            sql = "SELECT item FROM dynamodb_items WHERE table_id=?"
            args: list[Any] = [table.id]
            pk, cols = "pk", "(pk, rk)"
        else:
            sql = ("SELECT i.item FROM dynamodb_index_entries e JOIN dynamodb_items i ON i.table_id=? AND "
                   "i.pk=e.tpk AND i.rk=e.trk WHERE e.index_id=?")
            args = [table.id, index.id]
            pk, cols = "e.pk", "(e.pk, e.rk, e.tpk, e.trk)"
        if bounds is not None:
            sql += f" AND {pk} >= ?"
            args.append(bounds[0])
            if bounds[1] is not None:
                sql += f" AND {pk} < ?"
                args.append(bounds[1])
        if start is not None:
            sql += f" AND {cols} > ({', '.join('?' * len(start))})"
            args += list(start)
        return (row[0] for row in self.store.execute(sql + f" ORDER BY {cols[1:-1]}", args))

    def scan(self, ctx: RequestContext, params: dict) -> dict:
        check_select(params)
        table = self.table(ctx, params["TableName"])
        index = self._index(table, params)
        env = make_env(params, ("FilterExpression", "ProjectionExpression"))
        filter_ = self._filter(params, env, "ScanFilter", ())
        paths = projection_of(params, env)
        env.check_unused()
        select = self._select(params, index, paths is not None)
        segment, total = params.get("Segment"), params.get("TotalSegments")
        if segment is not None and total is None:
            raise validation("The TotalSegments parameter is required but was not present in the request when "
                             "Segment parameter is present")
        if total is not None and segment is None:
            raise validation("The Segment parameter is required but was not present in the request when parameter "
                             "TotalSegments is present")
        if total is not None:
            if not 1 <= total <= 1000000:
                raise validation(f"1 validation error detected: Value '{total}' at 'totalSegments' failed to satisfy "
                                 "constraint: Member must have value less than or equal to 1000000")
            if not 0 <= segment < total:
                raise validation(f"The Segment parameter is zero-based and must be less than parameter "
                                 f"TotalSegments: Segment: {segment} is not less than TotalSegments: {total}")
        start = self._start(table, index, params.get("ExclusiveStartKey"))
        bounds = segment_bounds(segment, total) if total is not None else None
        rows = self.scan_rows(table, index, start, bounds)
        return self._page(table, index, rows, params, env, filter_, paths, select)


def _top_names(node: Any, env: Any) -> set[str]:
    names: set[str] = set()

    def walk(n: Any) -> None:
        if isinstance(n, Path):
            names.add(env.resolve(n)[0])
        elif hasattr(n, "__slots__"):
            for slot in n.__slots__:
                value = getattr(n, slot)
                if isinstance(value, tuple):
                    for v in value:
                        walk(v)
                else:
                    walk(value)
    walk(node)
    return names
