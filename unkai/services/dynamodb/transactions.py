"""TransactWriteItems and TransactGetItems. Every condition is checked against the
state before the transaction, then every write is applied, all inside the one store
transaction; a failed check cancels the lot with a reason per action. A
ClientRequestToken makes a repeat within ten minutes a no-op, as on AWS."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext
from unkai.services.dynamodb import attributes
from unkai.services.dynamodb.attributes import Item
from unkai.services.dynamodb.errors import validation
from unkai.services.dynamodb.expressions import holds, project
from unkai.services.dynamodb.expressions.ast import Parsed
from unkai.services.dynamodb.expressions.evaluate import Env
from unkai.services.dynamodb.items import check_return_values, condition_of, make_env, projection_of
from unkai.services.dynamodb.tables import Table

MAX_ACTIONS = 100
TOKEN_WINDOW = 600.0


@dataclass
class Action:
    kind: str  # ConditionCheck, Put, Delete, Update
    table: Table
    key: Item
    pk: bytes
    rk: bytes
    env: Env
    condition: Parsed | None
    on_failure: str
    item: Item | None = None  # Put
    update: Parsed | None = None  # Update


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=lambda b: b.hex() if isinstance(b, bytes) else str(b))
    return hashlib.sha256(text.encode()).hexdigest()


class TransactionOperations:
    """Mixed into the DynamoDB service."""

    store: Any
    clock: Any
    items: Any

    def _plan(self, ctx: RequestContext, entry: dict) -> Action:
        kinds = [k for k in ("ConditionCheck", "Put", "Delete", "Update") if entry.get(k) is not None]
        if len(kinds) != 1:
            raise validation("TransactItems can only contain one of Check, Put, Update or Delete")
        kind = kinds[0]
        spec = entry[kind]
        table = self.table(ctx, spec["TableName"])
        expressions = {"ConditionCheck": ("ConditionExpression",), "Put": ("ConditionExpression",),
                       "Delete": ("ConditionExpression",),
                       "Update": ("ConditionExpression", "UpdateExpression")}[kind]
        env = make_env(spec, expressions)
        on_failure = check_return_values(spec.get("ReturnValuesOnConditionCheckFailure"), ("NONE", "ALL_OLD"))
        update = self.parse_update_request(table, spec, env) if kind == "Update" else None
        if kind == "Update" and update is None:
            raise validation("1 validation error detected: Value null at 'transactItems.1.member.update.updateExpression' "
                             "failed to satisfy constraint: Member must not be null")
        condition = condition_of(spec, env)
        if kind == "ConditionCheck" and condition is None:
            raise validation("1 validation error detected: Value null at "
                             "'transactItems.1.member.conditionCheck.conditionExpression' failed to satisfy "
                             "constraint: Member must not be null")
        env.check_unused()
        if kind == "Put":
            item, pk, rk = self.prepare_put(table, spec["Item"])
            return Action(kind, table, table.schema.item_key(item), pk, rk, env, condition, on_failure, item=item)
        key, pk, rk = self.prepare_key(table, spec["Key"])
        return Action(kind, table, key, pk, rk, env, condition, on_failure, update=update)

    def transact_write_items(self, ctx: RequestContext, params: dict) -> dict:
        entries = params["TransactItems"]
        if not 1 <= len(entries) <= MAX_ACTIONS:
            raise validation("1 validation error detected: Value at 'transactItems' failed to satisfy constraint: "
                             "Member must have length less than or equal to 100")
        token = params.get("ClientRequestToken")
        if token is not None:
            digest = _digest(entries)
            row = self.store.one("SELECT digest FROM dynamodb_transactions WHERE account=? AND region=? AND token=? "
                                 "AND created>?", (ctx.account, ctx.region, token, self.clock.now() - TOKEN_WINDOW))
            if row is not None:
                if row[0] != digest:
                    raise ServiceError("IdempotentParameterMismatchException",
                                       "Request parameters do not match the parameters used in the original request")
                return {}
        actions = [self._plan(ctx, e) for e in entries]
        seen: set[tuple[int, bytes, bytes]] = set()
        for action in actions:
            target = (action.table.id, action.pk, action.rk)
            if target in seen:
                raise validation("Transaction request cannot include multiple operations on one item")
            seen.add(target)
        reasons: list[dict] = []
        writes = []
        failed = False
        for action in actions:
            old = self.items.get(action.table, action.pk, action.rk)
            if action.condition is not None and not holds(action.condition.node, old or {}, action.env):
                reason = {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}
                if action.on_failure == "ALL_OLD" and old is not None:
                    reason["Item"] = attributes.to_wire(old)
                reasons.append(reason)
                failed = True
                continue
            try:
                if action.kind == "Put":
                    writes.append((action, old, action.item))
                elif action.kind == "Delete":
                    writes.append((action, old, None))
                elif action.kind == "Update":
                    writes.append((action, old, self.apply_update(action.table, action.update, action.env,
                                                                  action.key, old)))
            except ServiceError as exc:
                reasons.append({"Code": "ValidationError", "Message": exc.message})
                failed = True
                continue
            reasons.append({"Code": "None"})
        if failed:
            codes = ", ".join(r["Code"] for r in reasons)
            raise ServiceError("TransactionCanceledException",
                               f"Transaction cancelled, please refer cancellation reasons for specific reasons "
                               f"[{codes}]", CancellationReasons=reasons)
        for action, old, new in writes:
            self.items.write(action.table, action.key, action.pk, action.rk, old, new)
        if token is not None:
            self.store.execute("INSERT OR REPLACE INTO dynamodb_transactions(account, region, token, digest, created) "
                               "VALUES(?, ?, ?, ?, ?)", (ctx.account, ctx.region, token, digest, self.clock.now()))
            self.store.execute("DELETE FROM dynamodb_transactions WHERE created<?",
                               (self.clock.now() - TOKEN_WINDOW,))
        return {}

    def transact_get_items(self, ctx: RequestContext, params: dict) -> dict:
        entries = params["TransactItems"]
        if not 1 <= len(entries) <= MAX_ACTIONS:
            raise validation("1 validation error detected: Value at 'transactItems' failed to satisfy constraint: "
                             "Member must have length less than or equal to 100")
        plans = []
        for entry in entries:
            spec = entry["Get"]
            table = self.table(ctx, spec["TableName"])
            env = make_env(spec, ("ProjectionExpression",))
            paths = projection_of(spec, env)
            env.check_unused()
            _, pk, rk = self.prepare_key(table, spec["Key"])
            plans.append((table, pk, rk, paths))
        responses = []
        for table, pk, rk, paths in plans:
            item = self.items.get(table, pk, rk)
            if item is None:
                responses.append({})
            else:
                responses.append({"Item": project(item, paths) if paths is not None else item})
        return {"Responses": responses}
