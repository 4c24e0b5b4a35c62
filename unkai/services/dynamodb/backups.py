"""On-demand backups and point-in-time restores (CreateBackup, DescribeBackup, ListBackups,
DeleteBackup, RestoreTableFromBackup, RestoreTableToPointInTime).

A backup is a copy of the table's definition and items, taken inside CreateBackup's
transaction, so it is exactly the table as it was when the call was answered. Point-in-time
recovery keeps, while it is enabled, the *before* image of every write
(``dynamodb_pitr_log``, written by ``Items.write`` in the write's own transaction, stamped
with unkai's clock). A restore to time T starts from the current items and undoes the logged
writes made after T, newest first: a log only as large as the writes made, and a restore
exact to the write."""

from __future__ import annotations

import json
import uuid
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext
from unkai.services.dynamodb import attributes
from unkai.services.dynamodb.errors import table_not_found, validation
from unkai.services.dynamodb.tables import Table

MIGRATIONS = [
    """
    CREATE TABLE dynamodb_backups (
        arn TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        table_name TEXT NOT NULL,
        created REAL NOT NULL,
        source TEXT NOT NULL,
        item_count INTEGER NOT NULL,
        size_bytes INTEGER NOT NULL
    );
    CREATE TABLE dynamodb_backup_items (
        arn TEXT NOT NULL,
        n INTEGER NOT NULL,
        item TEXT NOT NULL,
        PRIMARY KEY (arn, n)
    ) WITHOUT ROWID;
    CREATE TABLE dynamodb_pitr_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        table_id INTEGER NOT NULL,
        at REAL NOT NULL,
        pk BLOB NOT NULL,
        rk BLOB NOT NULL,
        before TEXT
    );
    CREATE INDEX dynamodb_pitr_log_table ON dynamodb_pitr_log(table_id, at);
    """,
]


def backup_not_found(arn: str) -> ServiceError:
    return ServiceError("BackupNotFoundException", f"Backup not found: {arn}")


def table_already_exists(name: str) -> ServiceError:
    return ServiceError("TableAlreadyExistsException", f"Table already exists: {name}")


def log_write(store: Any, table: Table, now: float, pk: bytes, rk: bytes, old: Any) -> None:
    """Called by ``Items.write`` for a table with point-in-time recovery on: keep the before image."""
    store.db.execute("INSERT INTO dynamodb_pitr_log(table_id, at, pk, rk, before) VALUES(?,?,?,?,?)",
                     (table.id, now, pk, rk, attributes.dumps(old) if old is not None else None))


def items_at(store: Any, table_id: int, when: float) -> dict[tuple[bytes, bytes], str | None]:
    """The table's items as they were at ``when`` (JSON text by key; None: absent then): the
    current items with the logged writes made after ``when`` undone, newest first. Restores
    and exports to S3 both read a point in time this way."""
    state: dict[tuple[bytes, bytes], str | None] = {
        (pk, rk): text for pk, rk, text in store.execute(
            "SELECT pk, rk, item FROM dynamodb_items WHERE table_id=?", (table_id,))}
    for pk, rk, before in store.execute(
            "SELECT pk, rk, before FROM dynamodb_pitr_log WHERE table_id=? AND at>? ORDER BY seq DESC",
            (table_id, when)):
        state[(pk, rk)] = before
    return dict(sorted(state.items()))


class BackupOperations:
    """Mixed into the DynamoDB service."""

    store: Any
    clock: Any
    items: Any

    def table(self, ctx: RequestContext, name: str) -> Table: ...
    def _describe(self, table: Table, status: str | None = None) -> dict: ...
    def _save(self, table: Table) -> None: ...
    def create_table(self, ctx: RequestContext, params: dict) -> dict: ...
    def find_table(self, account: str, region: str, name: str) -> Table | None: ...

    # -- on-demand backups -------------------------------------------------------------

    def create_backup(self, ctx: RequestContext, params: dict) -> dict:
        name = params["TableName"]
        try:
            table = self.table(ctx, name)
        except ServiceError:
            raise table_not_found(name) from None
        now = self.clock.now()
        arn = f"{table.arn}/backup/{int(now * 1000):014d}-{uuid.uuid4().hex[:8]}"
        source = self._describe(table)
        rows = self.store.all("SELECT item FROM dynamodb_items WHERE table_id=? ORDER BY pk, rk", (table.id,))
        self.store.db.executemany("INSERT INTO dynamodb_backup_items(arn, n, item) VALUES(?,?,?)",
                                  ((arn, n, row[0]) for n, row in enumerate(rows)))
        self.store.execute("INSERT INTO dynamodb_backups(arn, account, region, name, table_name, created, source, "
                           "item_count, size_bytes) VALUES(?,?,?,?,?,?,?,?,?)",
                           (arn, ctx.account, ctx.region, params["BackupName"], table.name, now,
                            json.dumps(source, default=str), source["ItemCount"], source["TableSizeBytes"]))
        # AWS answers CREATING; unkai's copy is already whole, so every later read says AVAILABLE
        return {"BackupDetails": dict(self._backup_details(self._backup_row(ctx, arn)), BackupStatus="CREATING")}

    def _backup_row(self, ctx: RequestContext, arn: str) -> tuple:
        row = self.store.one("SELECT arn, name, table_name, created, source, item_count, size_bytes "
                             "FROM dynamodb_backups WHERE arn=? AND account=? AND region=?",
                             (arn, ctx.account, ctx.region))
        if row is None:
            raise backup_not_found(arn)
        return row

    @staticmethod
    def _backup_details(row: tuple) -> dict:
        return {"BackupArn": row[0], "BackupName": row[1], "BackupSizeBytes": row[6], "BackupStatus": "AVAILABLE",
                "BackupType": "USER", "BackupCreationDateTime": row[3]}

    def _backup_description(self, row: tuple) -> dict:
        source = json.loads(row[4])
        billing = (source.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
        throughput = {k: v for k, v in source["ProvisionedThroughput"].items() if k != "NumberOfDecreasesToday"}
        features: dict[str, Any] = {}
        for key in ("LocalSecondaryIndexes", "GlobalSecondaryIndexes"):
            if source.get(key):
                features[key] = [{k: v for k, v in i.items() if k in ("IndexName", "KeySchema", "Projection",
                                                                      "ProvisionedThroughput")}
                                 for i in source[key]]
        if source.get("StreamSpecification"):
            features["StreamDescription"] = source["StreamSpecification"]
        if source.get("SSEDescription"):
            features["SSEDescription"] = source["SSEDescription"]
        return {
            "BackupDetails": self._backup_details(row),
            "SourceTableDetails": {
                "TableName": source["TableName"], "TableId": source["TableId"], "TableArn": source["TableArn"],
                "TableSizeBytes": source["TableSizeBytes"], "KeySchema": source["KeySchema"],
                "TableCreationDateTime": source["CreationDateTime"], "ProvisionedThroughput": throughput,
                "ItemCount": source["ItemCount"], "BillingMode": billing},
            "SourceTableFeatureDetails": features,
        }

    def describe_backup(self, ctx: RequestContext, params: dict) -> dict:
        return {"BackupDescription": self._backup_description(self._backup_row(ctx, params["BackupArn"]))}

    def delete_backup(self, ctx: RequestContext, params: dict) -> dict:
        row = self._backup_row(ctx, params["BackupArn"])
        description = self._backup_description(row)
        description["BackupDetails"]["BackupStatus"] = "DELETED"
        self.store.execute("DELETE FROM dynamodb_backups WHERE arn=?", (row[0],))
        self.store.execute("DELETE FROM dynamodb_backup_items WHERE arn=?", (row[0],))
        return {"BackupDescription": description}

    def list_backups(self, ctx: RequestContext, params: dict) -> dict:
        kind = params.get("BackupType") or "USER"
        where, args = "account=? AND region=?", [ctx.account, ctx.region]
        if params.get("TableName"):
            where += " AND table_name=?"
            args.append(params["TableName"])
        if params.get("TimeRangeLowerBound") is not None:
            where += " AND created>=?"
            args.append(params["TimeRangeLowerBound"])
        if params.get("TimeRangeUpperBound") is not None:
            where += " AND created<=?"
            args.append(params["TimeRangeUpperBound"])
        if params.get("ExclusiveStartBackupArn"):
            where += " AND arn>?"
            args.append(params["ExclusiveStartBackupArn"])
        rows = [] if kind not in ("USER", "ALL") else self.store.all(
            f"SELECT arn, name, table_name, created, source, item_count, size_bytes FROM dynamodb_backups "
            f"WHERE {where} ORDER BY arn", args)
        limit = params.get("Limit") or 100
        summaries = []
        for row in rows[:limit]:
            source = json.loads(row[4])
            summaries.append({"TableName": row[2], "TableId": source["TableId"], "TableArn": source["TableArn"],
                              **self._backup_details(row)})
        out: dict[str, Any] = {"BackupSummaries": summaries}
        if len(rows) > limit:
            out["LastEvaluatedBackupArn"] = rows[limit - 1][0]
        return out

    def restore_table_from_backup(self, ctx: RequestContext, params: dict) -> dict:
        row = self._backup_row(ctx, params["BackupArn"])
        target = params["TargetTableName"]
        if self.find_table(ctx.account, ctx.region, target) is not None:
            raise table_already_exists(target)
        source = json.loads(row[4])
        items = (attributes.loads(text) for (text,) in self.store.execute(
            "SELECT item FROM dynamodb_backup_items WHERE arn=? ORDER BY n", (row[0],)))
        restored = self._restore(ctx, source, target, params, items)
        summary = {"SourceBackupArn": row[0], "SourceTableArn": source["TableArn"], "RestoreDateTime": row[3]}
        return {"TableDescription": self._restored(restored, summary)}

    # -- point-in-time recovery --------------------------------------------------------

    def restore_table_to_point_in_time(self, ctx: RequestContext, params: dict) -> dict:
        name = params.get("SourceTableName") or (params.get("SourceTableArn") or "").rsplit("/", 1)[-1]
        if not name:
            raise validation("1 validation error detected: Either SourceTableName or SourceTableArn must be "
                             "specified")
        table = self.find_table(ctx.account, ctx.region, name)
        if table is None:
            raise ServiceError("SourceTableNotFoundException", f"Source table not found: {name}")
        target = params["TargetTableName"]
        if self.find_table(ctx.account, ctx.region, target) is not None:
            raise table_already_exists(target)
        pitr = table.definition.get("PITR") or {}
        if not pitr.get("Enabled"):
            raise ServiceError("PointInTimeRecoveryUnavailableException",
                               f"Point in time recovery is not enabled for table '{name}'")
        now = self.clock.now()
        earliest = max(pitr["Since"], now - pitr["Days"] * 86400)
        if params.get("UseLatestRestorableTime"):
            when = now
        elif params.get("RestoreDateTime") is not None:
            when = float(params["RestoreDateTime"])
            if not earliest <= when <= now:
                raise ServiceError("InvalidRestoreTimeException",
                                   f"Invalid restore time: requested {when:.3f}, latest restorable {now:.3f}, "
                                   f"earliest restorable {earliest:.3f}")
        else:
            raise validation("RestoreDateTime must be set when UseLatestRestorableTime is false")
        state = items_at(self.store, table.id, when)
        source = self._describe(table)
        items = (attributes.loads(text) for text in state.values() if text is not None)
        restored = self._restore(ctx, source, target, params, items)
        summary = {"SourceTableArn": table.arn, "RestoreDateTime": when}
        return {"TableDescription": self._restored(restored, summary)}

    # -- resource policies (stored, not enforced) -----------------------------------------

    def _policy_table(self, ctx: RequestContext, arn: str) -> Table:
        return self._table_by_arn(ctx, arn.split("/stream/")[0])  # type: ignore[attr-defined]

    def put_resource_policy(self, ctx: RequestContext, params: dict) -> dict:
        table = self._policy_table(ctx, params["ResourceArn"])
        try:
            json.loads(params["Policy"])
        except ValueError:
            raise validation("Invalid policy document: the policy is not valid JSON") from None
        current = table.definition.get("ResourcePolicy")
        expected = params.get("ExpectedRevisionId")
        if expected is not None and (current is None or current["RevisionId"] != expected):
            raise ServiceError("PolicyNotFoundException", f"Resource-based policy not found for the provided "
                               f"ResourceArn: Requested update for policy with revision id {expected}, but the "
                               f"policy associated to target table {table.name} has revision id "
                               f"{current['RevisionId'] if current else 'None'}.")
        revision = str(int(self.clock.now() * 1000))
        table.definition["ResourcePolicy"] = {"Policy": params["Policy"], "RevisionId": revision}
        self._save(table)
        return {"RevisionId": revision}

    def get_resource_policy(self, ctx: RequestContext, params: dict) -> dict:
        table = self._policy_table(ctx, params["ResourceArn"])
        policy = table.definition.get("ResourcePolicy")
        if policy is None:
            raise ServiceError("PolicyNotFoundException", f"Resource-based policy not found for the provided "
                               f"ResourceArn: {params['ResourceArn']}")
        return dict(policy)

    def delete_resource_policy(self, ctx: RequestContext, params: dict) -> dict:
        table = self._policy_table(ctx, params["ResourceArn"])
        policy = table.definition.pop("ResourcePolicy", None)
        if policy is None:
            raise ServiceError("PolicyNotFoundException", f"Resource-based policy not found for the provided "
                               f"ResourceArn: {params['ResourceArn']}")
        self._save(table)
        return {"RevisionId": str(int(self.clock.now() * 1000))}

    def pitr_changed(self, table: Table, enabled: bool) -> None:
        """UpdateContinuousBackups turned recovery off: the history goes with it, as on AWS."""
        if not enabled:
            self.store.execute("DELETE FROM dynamodb_pitr_log WHERE table_id=?", (table.id,))

    # -- shared ------------------------------------------------------------------------

    def _restore(self, ctx: RequestContext, source: dict, target: str, params: dict, items: Any) -> Table:
        """Create ``target`` with the source's schema (and the request's overrides), then its items."""
        billing = params.get("BillingModeOverride") or \
            (source.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
        create: dict[str, Any] = {"TableName": target, "KeySchema": source["KeySchema"],
                                  "AttributeDefinitions": source["AttributeDefinitions"], "BillingMode": billing}
        if billing == "PROVISIONED":
            create["ProvisionedThroughput"] = params.get("ProvisionedThroughputOverride") or {
                k: source["ProvisionedThroughput"][k] or 1 for k in ("ReadCapacityUnits", "WriteCapacityUnits")}
        gsis = params.get("GlobalSecondaryIndexOverride")
        if gsis is None:
            gsis = [{k: v for k, v in i.items() if k in ("IndexName", "KeySchema", "Projection")} |
                    ({"ProvisionedThroughput": {k: i["ProvisionedThroughput"][k] or 1
                                                for k in ("ReadCapacityUnits", "WriteCapacityUnits")}}
                     if billing == "PROVISIONED" else {})
                    for i in source.get("GlobalSecondaryIndexes") or []]
        lsis = params.get("LocalSecondaryIndexOverride")
        if lsis is None:
            lsis = [{k: v for k, v in i.items() if k in ("IndexName", "KeySchema", "Projection")}
                    for i in source.get("LocalSecondaryIndexes") or []]
        if gsis:
            create["GlobalSecondaryIndexes"] = gsis
        if lsis:
            create["LocalSecondaryIndexes"] = lsis
        if params.get("SSESpecificationOverride"):
            create["SSESpecification"] = params["SSESpecificationOverride"]
        self.create_table(ctx, create)
        table = self.find_table(ctx.account, ctx.region, target)
        assert table is not None
        for item in items:
            pk, rk = table.schema.encode(item)
            self.items.write(table, table.schema.item_key(item), pk, rk, None, item)
        return table

    def _restored(self, table: Table, summary: dict) -> dict:
        table.definition["RestoreSummary"] = dict(summary, RestoreInProgress=False)
        self._save(table)
        # AWS answers the restore while it runs; unkai's is done, so later reads say ACTIVE
        description = self._describe(table, "CREATING")
        description["RestoreSummary"] = dict(summary, RestoreInProgress=True)
        return description
