"""The statements Athena answers from the catalog rather than by scanning data: SHOW
TABLES / DATABASES / PARTITIONS, DESCRIBE, MSCK REPAIR TABLE, ALTER TABLE ... ADD
PARTITION, CREATE EXTERNAL TABLE, CREATE DATABASE, DROP TABLE and DROP DATABASE (the
last four parsed by ``ddl.py`` and made through Glue's own operations, so a table made
by DDL is the same row as one made through Glue's API). Anything else that is not a
query fails with Athena's wording for an unsupported statement."""

from __future__ import annotations

import re
from typing import Any

from unkai.protocol import ServiceError
from unkai.services.athena import ddl
from unkai.services.athena.engine import Outcome, QueryFailed, column_info, split_s3


def _one_column(name: str, values: list[str]) -> Outcome:
    return Outcome([column_info(name, "VARCHAR")], [[v] for v in values], False)


def _table_ref(text: str, database: str) -> tuple[str, str]:
    parts = [p.strip('"`').lower() for p in text.split(".")]
    if len(parts) == 3:
        parts = parts[1:]
    return (parts[0], parts[1]) if len(parts) == 2 else (database, parts[0])


def run(cloud: Any, account: str, region: str, database: str, text: str) -> Outcome:
    glue = cloud.services.get("glue")
    cat = glue.catalog
    kind = ddl.classify(text)
    if kind == "create_external":
        return _create_external(cloud, account, region, ddl.parse_create_external(text, database))
    if kind == "simple":
        return _simple(cloud, account, region, ddl.parse_simple(text, database))
    q = " ".join(text.strip().rstrip(";").split())
    m = re.fullmatch(r"(?i)show\s+(?:databases|schemas)(?:\s+like\s+'([^']*)')?", q)
    if m:
        names = [d["Name"] for d in cat.databases(account, region)]
        return _one_column("database_name", _like(names, m.group(1)))
    m = re.fullmatch(r"(?i)show\s+tables(?:\s+(?:in|from)\s+(\S+))?(?:\s+(?:like\s+)?'([^']*)')?", q)
    if m:
        db = (m.group(1) or database).strip('"`').lower()
        if cat.database(account, region, db) is None:
            raise QueryFailed(f"SCHEMA_NOT_FOUND: Schema {db} does not exist", 2, 1301)
        return _one_column("tab_name", _like([t["Name"] for t in cat.tables(account, region, db)], m.group(2)))
    m = re.fullmatch(r"(?i)(?:describe|desc)\s+(?:formatted\s+|extended\s+)?(\S+)", q)
    if m:
        db, name = _table_ref(m.group(1), database)
        table = _table(cat, account, region, db, name)
        sd = table.get("StorageDescriptor") or {}
        rows = [f"{c['Name']:<24}\t{c.get('Type', 'string'):<24}\t{c.get('Comment', '')}"
                for c in (sd.get("Columns") or []) + (table.get("PartitionKeys") or [])]
        return _one_column("col_name", rows)
    m = re.fullmatch(r"(?i)show\s+partitions\s+(\S+)", q)
    if m:
        db, name = _table_ref(m.group(1), database)
        table = _table(cat, account, region, db, name)
        keys = [k["Name"] for k in table.get("PartitionKeys") or []]
        return _one_column("partition", ["/".join(f"{k}={v}" for k, v in zip(keys, p["Values"]))
                                         for p in cat.partitions(account, region, db, name)])
    m = re.fullmatch(r"(?i)msck\s+repair\s+table\s+(\S+)", q)
    if m:
        db, name = _table_ref(m.group(1), database)
        table = _table(cat, account, region, db, name)
        return _repair(cloud, account, region, db, table)
    m = re.fullmatch(r"(?i)alter\s+table\s+(\S+)\s+add\s+(?:if\s+not\s+exists\s+)?(.*)", q)
    if m:
        db, name = _table_ref(m.group(1), database)
        table = _table(cat, account, region, db, name)
        keys = [k["Name"].lower() for k in table.get("PartitionKeys") or []]
        for spec, location in re.findall(r"(?i)partition\s*\(([^)]*)\)(?:\s+location\s+'([^']*)')?", m.group(2)):
            values = dict((k.strip().lower(), v.strip().strip("'\"")) for k, _, v in
                          (part.partition("=") for part in spec.split(",")))
            if set(values) != set(keys):
                raise QueryFailed("HIVE_METASTORE_ERROR: partition keys do not match the table's", 2, 1301)
            ordered = [values[k] for k in keys]
            if cat.partition(account, region, db, name, ordered) is None:
                _add_partition(cloud, account, region, db, table, ordered, location or None)
        return _one_column("result", [])
    raise QueryFailed(f"NOT_SUPPORTED: unkai does not run this statement: {q[:60]}", 2, 1301)


def _like(names: list[str], pattern: str | None) -> list[str]:
    if not pattern:
        return names
    regex = "|".join(p.replace("*", ".*") for p in pattern.split("|"))
    return [n for n in names if re.fullmatch(regex, n)]


def _table(cat: Any, account: str, region: str, db: str, name: str) -> dict:
    table = cat.table(account, region, db, name)
    if table is None:
        raise QueryFailed(f"TABLE_NOT_FOUND: line 1:1: Table 'awsdatacatalog.{db}.{name}' does not exist", 2, 1301)
    return table


def glue(cloud: Any, account: str, region: str, operation: str, params: dict) -> dict:
    """Call one of Glue's operations as Athena does, in the caller's transaction; Glue's
    error becomes the query's failure."""
    from unkai.http import Headers, Request
    from unkai.services import RequestContext

    ctx = RequestContext(service="glue", operation=operation, region=region, account=account, request_id="",
                         request=Request("POST", "/", headers=Headers()), protocol="internal")
    snake = "".join("_" + ch.lower() if ch.isupper() else ch for ch in operation).lstrip("_")
    try:
        return getattr(cloud.service("glue"), snake)(ctx, params)
    except ServiceError as exc:
        if exc.code == "AlreadyExistsException":
            raise QueryFailed(f"FAILED: AlreadyExistsException: {exc.message}", 2, 1301) from None
        if exc.code == "EntityNotFoundException":
            raise QueryFailed(f"FAILED: SemanticException: {exc.message}", 2, 1301) from None
        raise QueryFailed(f"FAILED: {exc.code}: {exc.message}", 2, 1301) from None


def _create_external(cloud: Any, account: str, region: str, create: "ddl.Create") -> Outcome:
    cat = cloud.service("glue").catalog
    if cat.database(account, region, create.database) is None:
        raise QueryFailed(f"FAILED: SemanticException [Error 10072]: Database does not exist: {create.database}",
                          2, 1301)
    if cat.table(account, region, create.database, create.table_input["Name"]) is not None:
        if create.if_not_exists:
            return _one_column("result", [])
        raise QueryFailed(f"FAILED: AlreadyExistsException: Table {create.table_input['Name']} already exists",
                          2, 1301)
    glue(cloud, account, region, "CreateTable", {"DatabaseName": create.database, "TableInput": create.table_input})
    return _one_column("result", [])


def _simple(cloud: Any, account: str, region: str, st: "ddl.Simple") -> Outcome:
    cat = cloud.service("glue").catalog
    if st.verb == "create_database":
        if cat.database(account, region, st.database) is not None:
            if st.if_flag:
                return _one_column("result", [])
            raise QueryFailed(f"FAILED: AlreadyExistsException: Database {st.database} already exists", 2, 1301)
        body: dict[str, Any] = {"Name": st.database}
        if st.comment:
            body["Description"] = st.comment
        if st.location:
            body["LocationUri"] = st.location
        if st.properties:
            body["Parameters"] = st.properties
        glue(cloud, account, region, "CreateDatabase", {"DatabaseInput": body})
    elif st.verb == "drop_table":
        if cat.table(account, region, st.database, st.name or "") is None:
            if st.if_flag:
                return _one_column("result", [])
            raise QueryFailed(f"FAILED: SemanticException [Error 10001]: Table not found {st.database}.{st.name}",
                              2, 1301)
        glue(cloud, account, region, "DeleteTable", {"DatabaseName": st.database, "Name": st.name})  # data stay
    else:
        if cat.database(account, region, st.database) is None:
            if st.if_flag:
                return _one_column("result", [])
            raise QueryFailed(f"FAILED: SemanticException [Error 10072]: Database does not exist: {st.database}",
                              2, 1301)
        if cat.tables(account, region, st.database):
            raise QueryFailed(f"FAILED: InvalidOperationException: Database {st.database} is not empty. One or more "
                              "tables exist.", 2, 1301)
        glue(cloud, account, region, "DeleteDatabase", {"Name": st.database})
    return _one_column("result", [])


def _add_partition(cloud: Any, account: str, region: str, db: str, table: dict, values: list[str],
                   location: str | None) -> None:
    data: dict[str, Any] = {"Values": values}
    if location:
        data["StorageDescriptor"] = dict(table.get("StorageDescriptor") or {}, Location=location)
    glue(cloud, account, region, "CreatePartition", {"DatabaseName": db, "TableName": table["Name"],
                                                     "PartitionInput": data})


def add_partition(cloud: Any, account: str, region: str, db: str, table: dict, values: list[str],
                  location: str | None) -> None:
    """Register a partition (INSERT INTO a partitioned table adds those it wrote)."""
    _add_partition(cloud, account, region, db, table, values, location)


def _repair(cloud: Any, account: str, region: str, db: str, table: dict) -> Outcome:
    keys = [k["Name"].lower() for k in table.get("PartitionKeys") or []]
    location = (table.get("StorageDescriptor") or {}).get("Location") or ""
    bucket, prefix = split_s3(location)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    try:
        found = cloud.service("s3").object_files(bucket, prefix)
    except Exception:  # noqa: BLE001 - nothing to repair
        found = []
    cat = cloud.service("glue").catalog
    added = []
    for key, _src in found:
        segs = key[len(prefix):].split("/")[:-1]
        pairs = [s.split("=", 1) for s in segs[:len(keys)] if "=" in s]
        if len(pairs) != len(keys) or [p[0].lower() for p in pairs] != keys:
            continue
        values = [p[1] for p in pairs]
        if cat.partition(account, region, db, table["Name"], values) is None:
            part_loc = f"s3://{bucket}/{prefix}" + "/".join(segs[:len(keys)]) + "/"
            _add_partition(cloud, account, region, db, table, values, part_loc)
            added.append(f"{table['Name']}:" + "/".join(segs[:len(keys)]))
    lines = ["Partitions not in metastore:\t" + "\t".join(added)] if added else []
    lines += [f"Repair: Added partition to metastore {a}" for a in added]
    return _one_column("result", lines)
