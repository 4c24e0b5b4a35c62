"""The table operations: CreateTable, DescribeTable, ListTables, UpdateTable,
DeleteTable, tags, TTL settings, limits and endpoints; and finding a request's table.

Adding a global secondary index to a populated table backfills it in the
background, a chunk per transaction, while IndexStatus says CREATING; dropping a
table or an index frees its rows the same way. Both are durable jobs, so a restart
finishes them.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from unkai.services import RequestContext
from unkai.services.dynamodb import tables as tdefs
from unkai.protocol import ServiceError
from unkai.services.dynamodb.errors import invalid, not_found, table_not_found, validation
from unkai.services.dynamodb.attributes import loads
from unkai.services.dynamodb.storage import expiry, index_key
from unkai.services.dynamodb.tables import Table, build_table, describe, missing_table, table_exists

CHUNK = 2000
GENERATION = "dynamodb.generation"


class Catalog:
    """Mixed into the DynamoDB service: tables and their lifecycle."""

    store: Any
    clock: Any
    cloud: Any
    streams: Any

    def _init_catalog(self) -> None:
        self._tables: dict[tuple[str, str, str], Table] = {}
        self._by_id: dict[int, Table] = {}
        self._pending: str | None = None  # the generation a not yet committed change wrote

    # -- finding tables -----------------------------------------------------------

    def _fresh(self) -> bool:
        """Whether the cache may be used. While a definition change is uncommitted it
        may not; if that change was rolled back, the generation in the store says so."""
        if self._pending is None:
            return True
        if self.store.get_meta(GENERATION, "") != self._pending:  # rolled back
            self._pending = None
            self._clear()
            return True
        return False

    def _clear(self) -> None:
        self._tables.clear()
        self._by_id.clear()

    def _changed(self) -> None:
        """Note that a table definition changed (in the current transaction)."""
        self._pending = uuid.uuid4().hex
        self.store.set_meta(GENERATION, self._pending)
        self._clear()
        self.store.after_commit(self._committed)

    def _committed(self) -> None:
        self._pending = None
        self._clear()

    def _load(self, where: str, args: tuple) -> Table | None:
        row = self.store.one(f"SELECT id, account, region, name, definition, status, created FROM dynamodb_tables "
                             f"WHERE {where}", args)
        if row is None:
            return None
        stream = self.store.one("SELECT id, arn, label, view_type FROM dynamodb_streams WHERE table_id=? AND "
                                "disabled IS NULL", (row[0],))
        return build_table(row, stream)

    def find_table(self, account: str, region: str, name: str) -> Table | None:
        cache = self._fresh()
        key = (account, region, name)
        table = self._tables.get(key)
        if table is None:
            table = self._load("account=? AND region=? AND name=?", key)
            if table is not None and cache:
                self._tables[key] = table
                self._by_id[table.id] = table
        return table

    def table_by_id(self, table_id: int) -> Table | None:
        cache = self._fresh()
        table = self._by_id.get(table_id)
        if table is None:
            table = self._load("id=?", (table_id,))
            if table is not None and cache:
                self._by_id[table_id] = table
        return table

    def table(self, ctx: RequestContext, name: str) -> Table:
        """The request's table, by name or ARN."""
        if name.startswith("arn:"):
            name = name.rsplit("/", 1)[-1] if ":table/" in name else name
        table = self.find_table(ctx.account, ctx.region, name)
        if table is None:
            raise missing_table(name)
        return table

    def _counts(self, table: Table) -> tuple[tuple[int, int], dict[str, tuple[int, int]]]:
        counts = self.items.counts(table.id)
        index_counts = {}
        for index in table.indexes.values():
            n = self.store.one("SELECT COUNT(*) FROM dynamodb_index_entries WHERE index_id=?", (index.id,))[0]
            index_counts[index.name] = (n, int(counts[1] * n / counts[0]) if counts[0] else 0)
        return counts, index_counts

    def _describe(self, table: Table, status: str | None = None) -> dict:
        counts, index_counts = self._counts(table)
        return describe(table, counts, index_counts, status)

    def _save(self, table: Table) -> None:
        self.store.execute("UPDATE dynamodb_tables SET definition=? WHERE id=?",
                           (json.dumps(table.definition), table.id))
        self._changed()

    # -- CreateTable / DescribeTable / ListTables / DeleteTable --------------------

    def create_table(self, ctx: RequestContext, params: dict) -> dict:
        definition = tdefs.check_definition(params)
        name = params["TableName"]
        if self.find_table(ctx.account, ctx.region, name) is not None:
            raise table_exists(name)
        now = self.clock.now()
        for spec in definition["LocalSecondaryIndexes"] + definition["GlobalSecondaryIndexes"]:
            spec["Id"] = self._new_index_id()
            spec["IndexStatus"] = "ACTIVE"
        stream_spec = definition.pop("StreamSpecification")
        cur = self.store.execute(
            "INSERT INTO dynamodb_tables(account, region, name, definition, status, created) VALUES(?, ?, ?, ?, ?, ?)",
            (ctx.account, ctx.region, name, json.dumps(definition), "ACTIVE", now))
        table_id = cur.lastrowid
        self.store.execute("UPDATE dynamodb_index_ids SET table_id=? WHERE table_id=0", (table_id,))
        self._changed()
        if stream_spec and stream_spec.get("StreamEnabled"):
            self.streams.enable(self.table_by_id(table_id), stream_spec["StreamViewType"])
            self._changed()
        table = self.table_by_id(table_id)
        return {"TableDescription": self._describe(table)}

    def _new_index_id(self) -> int:
        return self.store.execute("INSERT INTO dynamodb_index_ids(table_id) VALUES(0)").lastrowid

    def describe_table(self, ctx: RequestContext, params: dict) -> dict:
        return {"Table": self._describe(self.table(ctx, params["TableName"]))}

    def list_tables(self, ctx: RequestContext, params: dict) -> dict:
        limit = params.get("Limit", 100)
        if not 1 <= limit <= 100:
            raise validation(f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: "
                             f"Member must have value {'less than or equal to 100' if limit > 100 else 'greater than or equal to 1'}")
        start = params.get("ExclusiveStartTableName") or ""
        rows = self.store.all("SELECT name FROM dynamodb_tables WHERE account=? AND region=? AND name>? "
                              "ORDER BY name LIMIT ?", (ctx.account, ctx.region, start, limit + 1))
        names = [r[0] for r in rows]
        out: dict[str, Any] = {"TableNames": names[:limit]}
        if len(names) > limit:
            out["LastEvaluatedTableName"] = names[limit - 1]
        return out

    def delete_table(self, ctx: RequestContext, params: dict) -> dict:
        table = self.table(ctx, params["TableName"])
        if table.definition.get("DeletionProtectionEnabled"):
            raise validation("Resource cannot be deleted as it is currently protected against deletion. "
                             "Disable deletion protection first.")
        description = self._describe(table, "DELETING")
        if table.stream is not None:
            self.streams.disable(table.stream.id)
        self.store.execute("DELETE FROM dynamodb_tables WHERE id=?", (table.id,))
        self.store.after_commit(lambda: self.items.forget(table.id))
        self.cloud.jobs.enqueue("dynamodb.purge", {"table_id": table.id})
        for index in table.indexes.values():
            self.cloud.jobs.enqueue("dynamodb.purge", {"index_id": index.id})
        self._changed()
        return {"TableDescription": description}

    # -- UpdateTable ------------------------------------------------------------------

    def update_table(self, ctx: RequestContext, params: dict) -> dict:
        table = self.table(ctx, params["TableName"])
        d = json.loads(json.dumps(table.definition))
        changed = False
        if "DeletionProtectionEnabled" in params:
            d["DeletionProtectionEnabled"] = bool(params["DeletionProtectionEnabled"])
            changed = True
        if params.get("TableClass"):
            d["TableClass"] = params["TableClass"]
            changed = True
        if params.get("SSESpecification") is not None:
            d["SSESpecification"] = params["SSESpecification"]
            changed = True
        if params.get("OnDemandThroughput") is not None:
            d["OnDemandThroughput"] = {**(d.get("OnDemandThroughput") or {}), **params["OnDemandThroughput"]}
            changed = True
        billing = params.get("BillingMode") or d.get("BillingMode", "PROVISIONED")
        if params.get("BillingMode") or params.get("ProvisionedThroughput"):
            if billing == "PAY_PER_REQUEST" and params.get("ProvisionedThroughput"):
                raise invalid("Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when "
                              "BillingMode is PAY_PER_REQUEST")
            if billing == "PROVISIONED":
                throughput = params.get("ProvisionedThroughput") or d.get("ProvisionedThroughput")
                if not throughput:
                    raise validation("One or more parameter values were invalid: ProvisionedThroughput must be "
                                     "specified when BillingMode is PROVISIONED")
                d["ProvisionedThroughput"] = {"ReadCapacityUnits": throughput["ReadCapacityUnits"],
                                              "WriteCapacityUnits": throughput["WriteCapacityUnits"]}
            else:
                d["ProvisionedThroughput"] = None
            if billing != d.get("BillingMode"):
                d["BillingModeUpdated"] = self.clock.now()
            d["BillingMode"] = billing
            changed = True
        if params.get("AttributeDefinitions"):
            known = {a["AttributeName"]: a for a in d["AttributeDefinitions"]}
            for a in params["AttributeDefinitions"]:
                if a["AttributeName"] in known and known[a["AttributeName"]]["AttributeType"] != a["AttributeType"]:
                    raise invalid(f"Cannot change the type of attribute {a['AttributeName']}")
                known[a["AttributeName"]] = a
            d["AttributeDefinitions"] = list(known.values())
        backfill = []
        for update in params.get("GlobalSecondaryIndexUpdates") or []:
            changed = True
            backfill += self._index_update(table, d, update, billing)
        stream_spec = tdefs.check_stream_spec(params.get("StreamSpecification"))
        if stream_spec is not None:
            changed = True
            if stream_spec["StreamEnabled"] and table.stream is not None:
                raise validation(f"Table already has an enabled stream: TableName: {table.name}")
            if not stream_spec["StreamEnabled"] and table.stream is None:
                raise validation(f"Table already has no stream enabled: TableName: {table.name}")
        if not changed:
            raise validation("At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, "
                             "GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required")
        used = set()
        for e in d["KeySchema"]:
            used.add(e["AttributeName"])
        for spec in d.get("LocalSecondaryIndexes", []) + d.get("GlobalSecondaryIndexes", []):
            used |= {e["AttributeName"] for e in spec["KeySchema"]}
        d["AttributeDefinitions"] = [a for a in d["AttributeDefinitions"] if a["AttributeName"] in used]
        if stream_spec is not None:
            if stream_spec["StreamEnabled"]:
                self.streams.enable(table, stream_spec["StreamViewType"])
            else:
                d["LatestStream"] = {"Arn": table.stream.arn, "Label": table.stream.label}
                self.streams.disable(table.stream.id)
        table.definition = d
        self._save(table)
        for name in backfill:
            self.cloud.jobs.enqueue("dynamodb.backfill", {"table_id": table.id, "index": name, "after": None})
        return {"TableDescription": self._describe(self.table_by_id(table.id))}

    def _index_update(self, table: Table, d: dict, update: dict, billing: str) -> list[str]:
        gsis = d.setdefault("GlobalSecondaryIndexes", [])
        if "Create" in update:
            spec = update["Create"]
            seen = {g["IndexName"] for g in gsis} | {i["IndexName"] for i in d.get("LocalSecondaryIndexes", [])}
            if spec["IndexName"] in seen:
                raise validation("Attempting to create an index which already exists")
            gsi = tdefs.check_gsi(spec, set(), billing)
            types = {a["AttributeName"] for a in d["AttributeDefinitions"]}
            missing = [e["AttributeName"] for e in gsi["KeySchema"] if e["AttributeName"] not in types]
            if missing:
                raise invalid(f"Some index key attributes are not defined in AttributeDefinitions. Keys: "
                              f"[{', '.join(missing)}], AttributeDefinitions: [{', '.join(sorted(types))}]")
            if len(gsis) >= tdefs.MAX_GSI:
                raise validation("One or more parameter values were invalid: GlobalSecondaryIndex count exceeds "
                                 "the per-table limit of 20")
            gsi["Id"] = self._new_index_id()
            self.store.execute("UPDATE dynamodb_index_ids SET table_id=? WHERE id=?", (table.id, gsi["Id"]))
            gsi["IndexStatus"] = "CREATING"
            gsis.append(gsi)
            return [gsi["IndexName"]]
        if "Delete" in update:
            name = update["Delete"]["IndexName"]
            spec = next((g for g in gsis if g["IndexName"] == name), None)
            if spec is None:
                raise not_found("Requested resource not found")
            gsis.remove(spec)
            self.cloud.jobs.enqueue("dynamodb.purge", {"index_id": spec["Id"]})
            return []
        if "Update" in update:
            name = update["Update"]["IndexName"]
            spec = next((g for g in gsis if g["IndexName"] == name), None)
            if spec is None:
                raise not_found("Requested resource not found")
            if update["Update"].get("ProvisionedThroughput"):
                spec["ProvisionedThroughput"] = update["Update"]["ProvisionedThroughput"]
            return []
        return []

    # -- background: backfills and purges ---------------------------------------------

    async def _backfill(self, payload: dict, attempt: int) -> None:
        with self.store.transaction():
            table = self.table_by_id(payload["table_id"])
            index = table.indexes.get(payload["index"]) if table else None
            if index is None or index.status != "CREATING":
                return
            after = bytes.fromhex(payload["after"]) if payload.get("after") else None
            sql = "SELECT pk, rk, item FROM dynamodb_items WHERE table_id=?"
            args: tuple = (table.id,)
            if after is not None:
                sql += " AND (pk, rk) > (?, ?)"
                split = int.from_bytes(after[:4], "big")
                args += (after[4:4 + split], after[4 + split:])
            rows = self.store.all(sql + " ORDER BY pk, rk LIMIT ?", (*args, CHUNK))
            for pk, rk, text in rows:
                entry = index_key(index, loads(text))
                if entry is not None:
                    self.store.execute("INSERT OR REPLACE INTO dynamodb_index_entries(index_id, pk, rk, tpk, trk) "
                                       "VALUES(?, ?, ?, ?, ?)", (index.id, entry[0], entry[1], pk, rk))
            if len(rows) == CHUNK:
                pk, rk = rows[-1][0], rows[-1][1]
                cursor = len(pk).to_bytes(4, "big") + pk + rk
                self.cloud.jobs.enqueue("dynamodb.backfill", {**payload, "after": cursor.hex()})
                return
            for spec in table.definition.get("GlobalSecondaryIndexes", []):
                if spec["IndexName"] == index.name:
                    spec["IndexStatus"] = "ACTIVE"
            self._save(table)

    async def _purge(self, payload: dict, attempt: int) -> None:
        with self.store.transaction():
            if "table_id" in payload:
                n = self.store.execute(
                    "DELETE FROM dynamodb_items WHERE table_id=? AND (pk, rk) IN (SELECT pk, rk FROM dynamodb_items "
                    "WHERE table_id=? LIMIT ?)", (payload["table_id"], payload["table_id"], CHUNK)).rowcount
            else:
                n = self.store.execute(
                    "DELETE FROM dynamodb_index_entries WHERE index_id=? AND (pk, rk, tpk, trk) IN (SELECT pk, rk, "
                    "tpk, trk FROM dynamodb_index_entries WHERE index_id=? LIMIT ?)",
                    (payload["index_id"], payload["index_id"], CHUNK)).rowcount
            if n == CHUNK:
                self.cloud.jobs.enqueue("dynamodb.purge", payload)

    # -- tags -------------------------------------------------------------------------

    def _table_by_arn(self, ctx: RequestContext, arn: str) -> Table:
        prefix = f"arn:aws:dynamodb:{ctx.region}:{ctx.account}:table/"
        if not arn.startswith(prefix) or "/" in arn[len(prefix):]:
            if arn.startswith("arn:aws:dynamodb:") and ":table/" in arn:
                raise not_found(f"Requested resource not found: ResourcArn: {arn} not found")
            raise validation(f"Invalid TableArn: Invalid ResourceArn provided as input {arn}")
        table = self.find_table(ctx.account, ctx.region, arn[len(prefix):])
        if table is None:
            raise not_found(f"Requested resource not found: ResourcArn: {arn} not found")
        return table

    def tag_resource(self, ctx: RequestContext, params: dict) -> dict:
        table = self._table_by_arn(ctx, params["ResourceArn"])
        tags = dict(table.definition.get("Tags") or {})
        for tag in params["Tags"]:
            tags[tag["Key"]] = tag["Value"]
        if len(tags) > 50:
            raise validation("One or more parameter values were invalid: The number of tags exceeds the limit of 50")
        table.definition["Tags"] = tags
        self._save(table)
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict) -> dict:
        table = self._table_by_arn(ctx, params["ResourceArn"])
        tags = dict(table.definition.get("Tags") or {})
        for key in params["TagKeys"]:
            tags.pop(key, None)
        table.definition["Tags"] = tags
        self._save(table)
        return {}

    def list_tags_of_resource(self, ctx: RequestContext, params: dict) -> dict:
        table = self._table_by_arn(ctx, params["ResourceArn"])
        tags = [{"Key": k, "Value": v} for k, v in sorted((table.definition.get("Tags") or {}).items())]
        start = int(params["NextToken"]) if str(params.get("NextToken") or "").isdigit() else 0
        page = tags[start:start + 10]
        out: dict[str, Any] = {"Tags": page}
        if start + 10 < len(tags):
            out["NextToken"] = str(start + 10)
        return out

    # -- TTL settings -----------------------------------------------------------------

    def update_time_to_live(self, ctx: RequestContext, params: dict) -> dict:
        table = self.table(ctx, params["TableName"])
        spec = params["TimeToLiveSpecification"]
        enabled, name = spec["Enabled"], spec["AttributeName"]
        current = table.definition.get("TTL") or {}
        if enabled and current.get("Enabled"):
            raise validation("TimeToLive is already enabled")
        if not enabled and not current.get("Enabled"):
            raise validation("TimeToLive is already disabled")
        if not enabled and current.get("AttributeName") != name:
            raise validation(f"TimeToLive is active on a different AttributeName: current AttributeName is "
                             f"{current.get('AttributeName')}")
        table.definition["TTL"] = {"Enabled": enabled, "AttributeName": name}
        self._save(table)
        table = self.table_by_id(table.id)
        self._recompute_expiry(table)
        return {"TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": name}}

    def _recompute_expiry(self, table: Table) -> None:
        self.store.execute("UPDATE dynamodb_items SET expires=NULL WHERE table_id=? AND expires IS NOT NULL",
                           (table.id,))
        name = table.ttl_attribute
        if name is None:
            return
        marker = json.dumps(name)
        for pk, rk, text in self.store.all("SELECT pk, rk, item FROM dynamodb_items WHERE table_id=? AND "
                                            "instr(item, ?) > 0", (table.id, marker)):
            deadline = expiry(table, loads(text))
            if deadline is not None:
                self.store.execute("UPDATE dynamodb_items SET expires=? WHERE table_id=? AND pk=? AND rk=?",
                                   (deadline, table.id, pk, rk))
        self.ttl.rearm_after_commit()

    def describe_time_to_live(self, ctx: RequestContext, params: dict) -> dict:
        table = self.table(ctx, params["TableName"])
        ttl = table.definition.get("TTL") or {}
        if not ttl.get("Enabled"):
            return {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}
        return {"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": ttl["AttributeName"]}}

    # -- account-level ------------------------------------------------------------------

    def describe_limits(self, ctx: RequestContext, params: dict) -> dict:
        return dict(tdefs.DEFAULT_LIMITS)

    def describe_endpoints(self, ctx: RequestContext, params: dict) -> dict:
        return {"Endpoints": [{"Address": ctx.request.host or "127.0.0.1", "CachePeriodInMinutes": 1440}]}

    # -- point-in-time recovery settings ------------------------------------------------

    def _backups_table(self, ctx: RequestContext, name: str) -> Table:
        # AWS answers these two with TableNotFoundException, not ResourceNotFoundException
        try:
            return self.table(ctx, name)
        except ServiceError:
            raise table_not_found(name) from None

    def update_continuous_backups(self, ctx: RequestContext, params: dict) -> dict:
        """Turns point-in-time recovery on (writes from now on can be undone by a restore) or off."""
        table = self._backups_table(ctx, params["TableName"])
        spec = params["PointInTimeRecoverySpecification"]
        days = spec.get("RecoveryPeriodInDays")
        if days is not None and not 1 <= days <= 35:
            raise validation("1 validation error detected: Value '%s' at 'pointInTimeRecoverySpecification."
                             "recoveryPeriodInDays' failed to satisfy constraint: Member must have value less "
                             "than or equal to 35" % days)
        current = table.definition.get("PITR") or {}
        if spec["PointInTimeRecoveryEnabled"]:
            since = current.get("Since") if current.get("Enabled") else self.clock.now()
            table.definition["PITR"] = {"Enabled": True, "Days": days or current.get("Days") or 35, "Since": since}
        else:
            table.definition["PITR"] = {"Enabled": False}
        self._save(table)
        self.pitr_changed(table, bool(spec["PointInTimeRecoveryEnabled"]))
        return self._continuous_backups(table)

    def describe_continuous_backups(self, ctx: RequestContext, params: dict) -> dict:
        return self._continuous_backups(self._backups_table(ctx, params["TableName"]))

    def _continuous_backups(self, table: Table) -> dict:
        pitr = table.definition.get("PITR") or {}
        if not pitr.get("Enabled"):
            description: dict[str, Any] = {"PointInTimeRecoveryStatus": "DISABLED"}
        else:
            now = self.clock.now()
            description = {"PointInTimeRecoveryStatus": "ENABLED", "RecoveryPeriodInDays": pitr["Days"],
                           "EarliestRestorableDateTime": max(pitr["Since"], now - pitr["Days"] * 86400),
                           "LatestRestorableDateTime": now}
        return {"ContinuousBackupsDescription": {"ContinuousBackupsStatus": "ENABLED",
                                                 "PointInTimeRecoveryDescription": description}}
