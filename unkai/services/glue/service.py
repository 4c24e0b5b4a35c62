"""AWS Glue Data Catalog operations: databases, tables and partitions (JSON protocol)."""

from __future__ import annotations

import re
from typing import Any

from unkai.services import RequestContext, Service
from unkai.services.glue import errors
from unkai.services.glue.catalog import MIGRATIONS, Catalog, matches, page

NAME = re.compile(r"^[\u0020-\uD7FF\uE000-\uFFFD\t]{1,255}$")


def _check_name(name: str, what: str) -> None:
    if not name or not NAME.match(name):
        raise errors.invalid(f"1 validation error detected: Value '{name}' at '{what}' failed to satisfy constraint: "
                             "Member must satisfy regular expression pattern: [\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800"
                             "\\uDC00-\\uDBFF\\uDFFF\\t]*")


class Glue(Service):
    name = "glue"
    migrations = MIGRATIONS
    resource_types = ("AWS::Glue::Database", "AWS::Glue::Table", "AWS::Glue::Partition")

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.catalog = Catalog(self.store)

    def check_unimplemented(self, ctx: RequestContext, operation: str, params: dict) -> None:
        """An operation unkai does not serve still answers EntityNotFoundException for a missing
        database or table first, as AWS does (a crawler's DatabaseName is where it will write, and
        need not exist yet)."""
        if isinstance(params.get("DatabaseName"), str) and operation not in ("CreateCrawler", "UpdateCrawler"):
            if isinstance(params.get("TableName"), str):
                self._table(ctx, params["DatabaseName"], params["TableName"])
            else:
                self._db(ctx, params["DatabaseName"])

    # -- databases -----------------------------------------------------------------------

    def _db(self, ctx: RequestContext, name: str) -> dict:
        found = self.catalog.database(ctx.account, ctx.region, name)
        if found is None:
            raise errors.not_found(f"Database {name} not found.")
        return found

    def create_database(self, ctx: RequestContext, params: dict) -> dict:
        data = params["DatabaseInput"]
        _check_name(data.get("Name") or "", "databaseInput.name")
        name = data["Name"].lower()
        if self.catalog.database(ctx.account, ctx.region, name):
            raise errors.exists("Database already exists.")
        body = {k: v for k, v in data.items() if v is not None}
        body.update(Name=name, CreateTime=self.clock.now(), CatalogId=params.get("CatalogId") or ctx.account)
        body.setdefault("CreateTableDefaultPermissions", [{
            "Principal": {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"}, "Permissions": ["ALL"]}])
        self.catalog.put_database(ctx.account, ctx.region, body)
        return {}

    def get_database(self, ctx: RequestContext, params: dict) -> dict:
        return {"Database": self._db(ctx, params["Name"])}

    def get_databases(self, ctx: RequestContext, params: dict) -> dict:
        items, token = page(self.catalog.databases(ctx.account, ctx.region), params.get("NextToken"),
                            params.get("MaxResults"))
        return {"DatabaseList": items, **({"NextToken": token} if token else {})}

    def update_database(self, ctx: RequestContext, params: dict) -> dict:
        old = self._db(ctx, params["Name"])
        body = {k: v for k, v in params["DatabaseInput"].items() if v is not None}
        body.update(Name=old["Name"], CreateTime=old["CreateTime"], CatalogId=old["CatalogId"])
        self.catalog.put_database(ctx.account, ctx.region, body)
        return {}

    def delete_database(self, ctx: RequestContext, params: dict) -> dict:
        db = self._db(ctx, params["Name"])
        self.catalog.delete_database(ctx.account, ctx.region, db["Name"])
        return {}

    # -- tables -------------------------------------------------------------------------------

    def _table(self, ctx: RequestContext, database: str, name: str) -> dict:
        self._db(ctx, database)
        found = self.catalog.table(ctx.account, ctx.region, database, name)
        if found is None:
            raise errors.not_found(f"Table {name.lower()} not found.")
        return found

    def _table_body(self, ctx: RequestContext, database: str, data: dict, old: dict | None) -> dict:
        _check_name(data.get("Name") or "", "tableInput.name")
        body = {k: v for k, v in data.items() if v is not None}
        now = self.clock.now()
        body.update(Name=data["Name"].lower(), DatabaseName=database.lower(),
                    CreateTime=old["CreateTime"] if old else now, UpdateTime=now,
                    CatalogId=ctx.account, IsRegisteredWithLakeFormation=False,
                    VersionId=str(int(old.get("VersionId", "0")) + 1) if old else "0", CreatedBy=
                    old.get("CreatedBy") if old else f"arn:aws:iam::{ctx.account}:user/unkai")
        body.setdefault("PartitionKeys", [])
        body.setdefault("Retention", 0)
        return body

    def create_table(self, ctx: RequestContext, params: dict) -> dict:
        database = params["DatabaseName"]
        self._db(ctx, database)
        data = params.get("TableInput")
        if not data:
            raise errors.invalid("TableInput is required.")
        if self.catalog.table(ctx.account, ctx.region, database, data.get("Name") or ""):
            raise errors.exists("Table already exists.")
        self.catalog.put_table(ctx.account, ctx.region, self._table_body(ctx, database, data, None))
        return {}

    def update_table(self, ctx: RequestContext, params: dict) -> dict:
        data = params.get("TableInput") or {}
        old = self._table(ctx, params["DatabaseName"], data.get("Name") or "")
        self.catalog.put_table(ctx.account, ctx.region, self._table_body(ctx, params["DatabaseName"], data, old))
        return {}

    def get_table(self, ctx: RequestContext, params: dict) -> dict:
        return {"Table": self._table(ctx, params["DatabaseName"], params["Name"])}

    def get_tables(self, ctx: RequestContext, params: dict) -> dict:
        self._db(ctx, params["DatabaseName"])
        found = [t for t in self.catalog.tables(ctx.account, ctx.region, params["DatabaseName"])
                 if matches(params.get("Expression"), t["Name"])]
        items, token = page(found, params.get("NextToken"), params.get("MaxResults"))
        return {"TableList": items, **({"NextToken": token} if token else {})}

    def delete_table(self, ctx: RequestContext, params: dict) -> dict:
        table = self._table(ctx, params["DatabaseName"], params["Name"])
        self.catalog.delete_table(ctx.account, ctx.region, table["DatabaseName"], table["Name"])
        return {}

    def batch_delete_table(self, ctx: RequestContext, params: dict) -> dict:
        errs = []
        for name in params.get("TablesToDelete") or []:
            table = self.catalog.table(ctx.account, ctx.region, params["DatabaseName"], name)
            if table is None:
                errs.append({"TableName": name, "ErrorDetail": {"ErrorCode": "EntityNotFoundException",
                                                                "ErrorMessage": f"Table {name} not found."}})
            else:
                self.catalog.delete_table(ctx.account, ctx.region, table["DatabaseName"], table["Name"])
        return {"Errors": errs}

    # -- partitions -----------------------------------------------------------------------------

    def _partition_body(self, ctx: RequestContext, table: dict, data: dict) -> dict:
        values = data.get("Values") or []
        keys = table.get("PartitionKeys") or []
        if len(values) != len(keys):
            raise errors.invalid("The number of partition keys do not match the number of partition values")
        body = {k: v for k, v in data.items() if v is not None}
        body.update(DatabaseName=table["DatabaseName"], TableName=table["Name"], CreationTime=self.clock.now(),
                    CatalogId=ctx.account)
        if "StorageDescriptor" not in body:
            sd = dict(table.get("StorageDescriptor") or {})
            if sd.get("Location"):
                sd["Location"] = sd["Location"].rstrip("/") + "/" + "/".join(
                    f"{k['Name']}={v}" for k, v in zip(keys, values)) + "/"
            body["StorageDescriptor"] = sd
        return body

    def create_partition(self, ctx: RequestContext, params: dict) -> dict:
        table = self._table(ctx, params["DatabaseName"], params["TableName"])
        data = params["PartitionInput"]
        if self.catalog.partition(ctx.account, ctx.region, table["DatabaseName"], table["Name"],
                                  data.get("Values") or []):
            raise errors.exists("Partition already exists.")
        self.catalog.put_partition(ctx.account, ctx.region, self._partition_body(ctx, table, data))
        return {}

    def batch_create_partition(self, ctx: RequestContext, params: dict) -> dict:
        table = self._table(ctx, params["DatabaseName"], params["TableName"])
        items = params["PartitionInputList"]
        if len(items) > 100:
            raise errors.invalid("1 validation error detected: Value at 'partitionInputList' failed to satisfy "
                                 "constraint: Member must have length less than or equal to 100")
        errs = []
        for data in items:
            values = data.get("Values") or []
            if self.catalog.partition(ctx.account, ctx.region, table["DatabaseName"], table["Name"], values):
                errs.append({"PartitionValues": values, "ErrorDetail": {
                    "ErrorCode": "AlreadyExistsException", "ErrorMessage": "Partition already exists."}})
                continue
            try:
                body = self._partition_body(ctx, table, data)
            except Exception as exc:  # noqa: BLE001 - reported per entry, as Glue does
                errs.append({"PartitionValues": values, "ErrorDetail": {
                    "ErrorCode": "InvalidInputException", "ErrorMessage": getattr(exc, "message", str(exc))}})
                continue
            self.catalog.put_partition(ctx.account, ctx.region, body)
        return {"Errors": errs}

    def get_partition(self, ctx: RequestContext, params: dict) -> dict:
        table = self._table(ctx, params["DatabaseName"], params["TableName"])
        found = self.catalog.partition(ctx.account, ctx.region, table["DatabaseName"], table["Name"],
                                       params["PartitionValues"])
        if found is None:
            raise errors.not_found("Cannot find partition.")
        return {"Partition": found}

    def get_partitions(self, ctx: RequestContext, params: dict) -> dict:
        table = self._table(ctx, params["DatabaseName"], params["TableName"])
        found = self.catalog.partitions(ctx.account, ctx.region, table["DatabaseName"], table["Name"])
        if params.get("Expression"):
            found = [p for p in found if _partition_matches(params["Expression"], table, p)]
        items, token = page(found, params.get("NextToken"), params.get("MaxResults") or 1000)
        return {"Partitions": items, **({"NextToken": token} if token else {})}

    def batch_get_partition(self, ctx: RequestContext, params: dict) -> dict:
        table = self._table(ctx, params["DatabaseName"], params["TableName"])
        found, missing = [], []
        for key in params["PartitionsToGet"]:
            p = self.catalog.partition(ctx.account, ctx.region, table["DatabaseName"], table["Name"], key["Values"])
            (found if p else missing).append(p or key)
        return {"Partitions": found, "UnprocessedKeys": []}

    def delete_partition(self, ctx: RequestContext, params: dict) -> dict:
        table = self._table(ctx, params["DatabaseName"], params["TableName"])
        if not self.catalog.delete_partition(ctx.account, ctx.region, table["DatabaseName"], table["Name"],
                                             params["PartitionValues"]):
            raise errors.not_found("Cannot find partition.")
        return {}

    def batch_delete_partition(self, ctx: RequestContext, params: dict) -> dict:
        table = self._table(ctx, params["DatabaseName"], params["TableName"])
        errs = []
        for key in params["PartitionsToDelete"]:
            if not self.catalog.delete_partition(ctx.account, ctx.region, table["DatabaseName"], table["Name"],
                                                 key["Values"]):
                errs.append({"PartitionValues": key["Values"], "ErrorDetail": {
                    "ErrorCode": "EntityNotFoundException", "ErrorMessage": "Cannot find partition."}})
        return {"Errors": errs}


def _partition_matches(expression: str, table: dict, partition: dict) -> bool:
    """GetPartitions' Expression for the common ``key = 'value' AND key2 >= 'x'`` forms."""
    values = dict(zip([k["Name"] for k in table.get("PartitionKeys") or []], partition["Values"]))
    for clause in re.split(r"\s+and\s+", expression, flags=re.I):
        m = re.fullmatch(r"\s*(\w+)\s*(=|<>|!=|>=|<=|>|<)\s*'?([^']*)'?\s*", clause)
        if m is None:
            continue
        key, op, want = m.groups()
        have = values.get(key)
        if have is None:
            return False
        a, b = (float(have), float(want)) if _numeric(have) and _numeric(want) else (have, want)
        ok = {"=": a == b, "<>": a != b, "!=": a != b, ">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b}[op]
        if not ok:
            return False
    return True


def _numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False
