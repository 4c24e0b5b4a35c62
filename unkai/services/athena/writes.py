"""CREATE TABLE ... AS SELECT and INSERT INTO: a query whose rows become files in S3.

Three steps, each where it belongs: planning the SELECT and checking the target (on the
event loop, in a store transaction); running it and writing the files with DuckDB's
``COPY`` into a scratch folder (in a worker thread, interruptible like any query); then,
in one store transaction, putting the files into unkai's S3 (so notifications fire) and
recording the table and the partitions written in Glue, so a failure leaves neither half.

As on Athena: CTAS writes Parquet unless told ``format='JSON'`` or ``'TEXTFILE'``, under
``external_location`` (which must be empty) or ``<output location>/tables/<query id>/``,
partition columns last and as ``key=value/`` folders; INSERT INTO writes in the table's
own format under its location, matching the query's columns to the table's by position
and adding the partitions it wrote (unless the table uses partition projection).
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unkai.services.athena import ddl
from unkai.services.athena import engine as eng
from unkai.services.athena import statements

if TYPE_CHECKING:
    from unkai.services.athena.executions import Execution
    from unkai.services.athena.service import Athena

CTAS_FORMATS = {"parquet": "parquet", "json": "json", "textfile": "textfile"}
CTAS_PROPERTIES = {"format", "external_location", "partitioned_by", "field_delimiter", "write_compression",
                   "parquet_compression", "compression_level", "table_type", "is_external",
                   "bucketed_by", "bucket_count", "location", "vacuum_min_snapshots_to_keep"}


async def run(svc: "Athena", ex: "Execution", kind: str) -> eng.Outcome:
    """Run a CTAS (``kind="ctas"``) or INSERT INTO (``"insert"``); the rows written."""
    cloud, account, region = svc.cloud, ex.account, ex.region
    database = ex.database or "default"
    cat = cloud.service("glue").catalog
    with svc.store.transaction():
        if kind == "ctas":
            target = _ctas_target(svc, ex, ddl.parse_ctas(ex.query, database))
        else:
            target = _insert_target(cloud, account, region, ddl.parse_insert(ex.query, database))
            target.spec.prefix = _file_prefix(ex.id, svc.clock.now())
        if cat.database(account, region, target.database) is None:
            raise eng.QueryFailed(f"SCHEMA_NOT_FOUND: line 1:1: Schema '{target.database}' does not exist", 2, 1301)
        query_plan = eng.plan(cloud, account, region, database, target.query)
    scratch = Path(svc.config.state_dir) / "athena"
    scratch.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(dir=scratch, prefix="write-"))
    try:
        engine = eng.Engine(scratch)
        written = await svc.run_engine(ex, engine, engine.write, target.query, query_plan, out, target.spec)
        with svc.store.transaction():
            _publish(svc, ex, target, out, written)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return eng.Outcome([eng.column_info("rows", "BIGINT")], [[str(written.count)]], True)


class _Target:
    def __init__(self, database: str, name: str, query: str, location: str, spec: eng.WriteSpec,
                 table: dict | None) -> None:
        self.database = database
        self.name = name
        self.query = query
        self.location = location if location.endswith("/") else location + "/"
        self.spec = spec
        self.table = table  # the existing table (INSERT INTO), None for CTAS


def _file_prefix(qid: str, now: float) -> str:
    """Athena names a written file for its query: time, then the query id."""
    return dt.datetime.fromtimestamp(now, dt.timezone.utc).strftime("%Y%m%d_%H%M%S") + f"_{qid.replace('-', '')}"


def _ctas_target(svc: "Athena", ex: "Execution", ctas: ddl.Ctas) -> _Target:
    cloud = svc.cloud
    unknown = sorted(set(ctas.properties) - CTAS_PROPERTIES)
    if unknown:
        raise eng.QueryFailed(f"INVALID_TABLE_PROPERTY: line 1:1: Catalog 'awsdatacatalog' table property "
                              f"'{unknown[0]}' does not exist", 2, 1301)
    props = {k: v for k, v in ctas.properties.items()}
    if props.get("table_type", "HIVE").upper() != "HIVE":
        raise eng.QueryFailed("NOT_SUPPORTED: unkai writes Hive tables, not Iceberg", 2, 1301)
    if props.get("bucketed_by") or props.get("bucket_count"):
        raise eng.QueryFailed("NOT_SUPPORTED: unkai does not write bucketed tables", 2, 1301)
    fmt = str(props.get("format", "PARQUET")).lower()
    if fmt not in CTAS_FORMATS:
        raise eng.QueryFailed(f"NOT_SUPPORTED: unkai writes PARQUET, JSON and TEXTFILE tables, not {fmt.upper()}",
                              2, 1301)
    if cloud.service("glue").catalog.table(ex.account, ex.region, ctas.database, ctas.name) is not None:
        raise eng.QueryFailed(f"TABLE_ALREADY_EXISTS: line 1:1: Destination table 'awsdatacatalog.{ctas.database}."
                              f"{ctas.name}' already exists", 2, 1301)
    location = props.get("external_location") or props.get("location")
    if location:
        if _has_objects(cloud, location):
            raise eng.QueryFailed(f"HIVE_PATH_ALREADY_EXISTS: Target directory for table '{ctas.database}."
                                  f"{ctas.name}' already exists: {location}. You may need to manually clean the "
                                  "data at location before running CTAS", 2, 1301)
    else:
        location = (ex.output or "").rsplit("/", 1)[0] + f"/tables/{ex.id}/"
    partition_by = [str(p).lower() for p in props.get("partitioned_by") or []]
    compression = props.get("write_compression") or props.get("parquet_compression")
    delimiter = ddl.unescape(str(props.get("field_delimiter", "\\001")))
    spec = eng.WriteSpec(CTAS_FORMATS[fmt], partition_by, _file_prefix(ex.id, svc.clock.now()),
                         delimiter=delimiter, compression=str(compression) if compression else None,
                         with_data=ctas.with_data)
    return _Target(ctas.database, ctas.name, ctas.query, location, spec, None)


def _insert_target(cloud: Any, account: str, region: str, ins: ddl.Insert) -> _Target:
    table = cloud.service("glue").catalog.table(account, region, ins.database, ins.name)
    if table is None:
        raise eng.QueryFailed(f"TABLE_NOT_FOUND: line 1:1: Table 'awsdatacatalog.{ins.database}.{ins.name}' does "
                              "not exist", 2, 1301)
    sd = table.get("StorageDescriptor") or {}
    location = sd.get("Location") or ""
    if not location:
        raise eng.QueryFailed(f"HIVE_INVALID_METADATA: Table {ins.database}.{ins.name} has no location", 2, 1301)
    columns = [(c["Name"].lower(), eng.duck_type(c.get("Type") or "string")) for c in sd.get("Columns") or []]
    keys = [(k["Name"].lower(), eng.duck_type(k.get("Type") or "string")) for k in table.get("PartitionKeys") or []]
    target = columns + keys
    query = ins.query
    if ins.columns is not None:
        names = [n for n, _ in target]
        unknown = [c for c in ins.columns if c not in names]
        if unknown:
            raise eng.QueryFailed(f"COLUMN_NOT_FOUND: line 1:1: Insert column name does not exist in target table: "
                                  f"{unknown[0]}", 2, 1301)
        aliases = ", ".join(f'"_i{i}"' for i in range(len(ins.columns)))
        picks = ", ".join(f'"_i{ins.columns.index(n)}"' if n in ins.columns else "NULL" for n in names)
        query = f"SELECT {picks} FROM ({query}) AS _athena_insert({aliases})"
    kind = eng.table_format(table)
    serde = (sd.get("SerdeInfo") or {}).get("Parameters") or {}
    delimiter = serde.get("field.delim") or serde.get("separatorChar") or ","
    compression = "none" if kind == "csv" and not _gzipped(table) else None
    spec = eng.WriteSpec({"csv": "textfile"}.get(kind, kind), [k for k, _ in keys], "", delimiter=delimiter,
                         compression=compression, target=target, label=f"awsdatacatalog.{ins.database}.{ins.name}")
    return _Target(ins.database, ins.name, query, location, spec, table)


def _gzipped(table: dict) -> bool:
    params = table.get("Parameters") or {}
    return str(params.get("write.compression") or params.get("compressionType") or "").lower() == "gzip"


def _has_objects(cloud: Any, location: str) -> bool:
    bucket, prefix = eng.split_s3(location)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    try:
        return bool(cloud.service("s3").object_files(bucket, prefix))
    except Exception:  # noqa: BLE001 - no bucket: nothing there (writing will say so)
        return False


def _publish(svc: "Athena", ex: "Execution", target: _Target, out: Path, written: eng.Written) -> None:
    """Put the written files into S3 and record the table and partitions in Glue (one transaction)."""
    cloud = svc.cloud
    s3 = cloud.service("s3")
    bucket, prefix = eng.split_s3(target.location)
    spec = target.spec
    try:
        for rel in written.files:
            s3.put_object_bytes(bucket, prefix + rel, (out / rel).read_bytes(), "application/octet-stream",
                                ex.region, "athena.amazonaws.com")
    except Exception as exc:  # noqa: BLE001 - as Athena reports a location it cannot write
        raise eng.QueryFailed(f"HIVE_PATH_ALREADY_EXISTS: Unable to write to {target.location}: the bucket "
                              f"{bucket} does not exist or cannot be written", 2, 1301) from exc
    partitions = sorted({tuple(seg.split("=", 1)[1] for seg in rel.split("/")[:-1] if "=" in seg)
                         for rel in written.files if "/" in rel})
    from urllib.parse import unquote

    if target.table is None:
        types = dict(written.types)
        columns = [{"Name": n, "Type": ddl.hive_type(t)} for n, t in written.types if n not in spec.partition_by]
        keys = [{"Name": k, "Type": ddl.hive_type(types[k])} for k in spec.partition_by]
        fmt = ddl.FORMATS[spec.format]
        serde = {"SerializationLibrary": fmt["SerdeInfo"]["SerializationLibrary"],
                 "Parameters": dict(fmt["SerdeInfo"]["Parameters"])}
        if spec.format == "textfile":
            serde["Parameters"]["field.delim"] = spec.delimiter
        table = {"Name": target.name, "TableType": "EXTERNAL_TABLE", "PartitionKeys": keys,
                 "Parameters": {"EXTERNAL": "TRUE", "classification": spec.format.replace("textfile", "csv"),
                                "has_encrypted_data": "false"},
                 "StorageDescriptor": {"Columns": columns, "Location": target.location,
                                       "InputFormat": fmt["InputFormat"], "OutputFormat": fmt["OutputFormat"],
                                       "SerdeInfo": serde}}
        statements.glue(cloud, ex.account, ex.region, "CreateTable",
                        {"DatabaseName": target.database, "TableInput": table})
        created = cloud.service("glue").catalog.table(ex.account, ex.region, target.database, target.name)
    else:
        created = target.table
        if str((created.get("Parameters") or {}).get("projection.enabled", "")).lower() == "true":
            return  # projection finds the partitions from the keys
    if not spec.partition_by:
        return
    cat = cloud.service("glue").catalog
    for raw in partitions:
        values = [unquote(v) for v in raw]
        if cat.partition(ex.account, ex.region, target.database, target.name, values) is None:
            where = target.location + "/".join(f"{k}={v}" for k, v in zip(spec.partition_by, raw)) + "/"
            statements.add_partition(cloud, ex.account, ex.region, target.database, created, values, where)

