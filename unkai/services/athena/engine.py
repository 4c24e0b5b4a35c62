"""Running an Athena query with DuckDB over the Glue tables' S3 objects.

A query runs in two steps. ``plan`` (on the event loop, where the store lives) finds the
Glue tables the text names and, for each, the S3 objects it reads: every object under
the table's location, or under each registered partition's location, or, with
partition projection, each object whose key fits the projection's template, with the
partition values read from the key. ``execute`` (in a worker thread, so the server keeps
answering) opens an in-memory DuckDB, defines one view per table over those files
(JSON lines, CSV or Parquet, gzip or not, detected per file from its first bytes, as
Athena reads ``.gz`` objects), translates the Trino spelling (``sql.translate``) and runs
it; ``interrupt`` stops it (StopQueryExecution, the timeout).

DuckDB is imported here only, lazily: it is needed only once a query runs.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unkai.services.athena import sql as athena_sql

CATALOG = "awsdatacatalog"
MAX_ROW_BYTES = 32 * 1024 * 1024  # "The size of a single row or its columns cannot exceed 32 megabytes"


class QueryFailed(Exception):
    """A query Athena would fail, with its StateChangeReason and error category/type."""

    def __init__(self, message: str, category: int = 2, error_type: int = 1006) -> None:
        super().__init__(message)
        self.message = message
        self.category = category
        self.error_type = error_type


@dataclass
class Source:
    """Files of one table read with the same partition values."""

    values: dict[str, str]
    files: list[Any]  # Path or bytes


@dataclass
class TablePlan:
    database: str
    name: str
    table: dict
    sources: list[Source] = field(default_factory=list)


@dataclass
class Plan:
    database: str
    tables: list[TablePlan]
    scanned: int = 0


@dataclass
class WriteSpec:
    """How CTAS or INSERT INTO writes its rows: the table's format and layout."""

    format: str  # parquet | json | textfile
    partition_by: list[str]
    prefix: str  # the written files' name (Athena names them for the query)
    delimiter: str = "\x01"
    compression: str | None = None
    target: list[tuple[str, str]] | None = None  # INSERT INTO: the table's columns and DuckDB types
    label: str = ""
    with_data: bool = True


@dataclass
class Written:
    types: list[tuple[str, str]]  # the rows' columns and DuckDB types
    count: int
    files: list[str]  # paths relative to the output folder


@dataclass
class Outcome:
    columns: list[dict]
    rows: list[list[str | None]]
    header: bool


# -- planning (on the event loop) -------------------------------------------------------------

def split_s3(url: str) -> tuple[str, str]:
    m = re.match(r"^s3a?n?://([^/]+)/?(.*)$", url or "")
    if m is None:
        raise QueryFailed(f"Invalid S3 location: {url}")
    return m.group(1), m.group(2)


def _hidden(key: str, prefix: str) -> bool:
    rest = key[len(prefix):]
    return key.endswith("/") or key.endswith("_$folder$") or any(
        part.startswith(("_", ".")) for part in rest.split("/") if part)


def plan(cloud: Any, account: str, region: str, database: str, text: str) -> Plan:
    glue = cloud.services.get("glue")
    s3 = cloud.services.get("s3")
    if glue is None or s3 is None:
        raise QueryFailed("The Glue Data Catalog is not available.")
    cat = glue.catalog
    wanted: dict[tuple[str, str], dict] = {}
    for parts in athena_sql.names(text):
        if len(parts) == 3 and parts[0] == CATALOG:
            db, name = parts[1], parts[2]
        elif len(parts) == 2:
            db, name = parts
        elif len(parts) == 1:
            db, name = database, parts[0]
        else:
            continue
        if (db, name) in wanted:
            continue
        table = cat.table(account, region, db, name)
        if table is not None:
            wanted[(db, name)] = table
    out = Plan(database, [])
    for (db, name), table in wanted.items():
        tp = TablePlan(db, name, table)
        keys = [k["Name"].lower() for k in table.get("PartitionKeys") or []]
        params = table.get("Parameters") or {}
        location = (table.get("StorageDescriptor") or {}).get("Location") or ""
        if keys and params.get("projection.enabled", "").lower() == "true":
            tp.sources = _projected(s3, table, keys, location)
        elif keys:
            for part in cat.partitions(account, region, db, name):
                loc = (part.get("StorageDescriptor") or {}).get("Location") or ""
                files = _files(s3, loc)
                if files:
                    tp.sources.append(Source(dict(zip(keys, part["Values"])), files))
        elif location:
            files = _files(s3, location)
            if files:
                tp.sources.append(Source({}, files))
        for source in tp.sources:
            out.scanned += sum(len(f) if isinstance(f, bytes) else _size(f) for f in source.files)
        out.tables.append(tp)
    return out


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _files(s3: Any, location: str) -> list[Any]:
    bucket, prefix = split_s3(location)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    try:
        found = s3.object_files(bucket, prefix)
    except Exception:  # noqa: BLE001 - a missing bucket reads as no data, as Athena does
        return []
    return [src for key, src in found if not _hidden(key, prefix)]


def _projected(s3: Any, table: dict, keys: list[str], location: str) -> list[Source]:
    params = table.get("Parameters") or {}
    template = params.get("storage.location.template")
    regex = None
    if template:
        bucket, key_template = split_s3(template)
        prefix = key_template.split("${", 1)[0]
        pattern = re.escape(key_template.rstrip("/"))
        for k in keys:
            pattern = pattern.replace(re.escape("${" + k + "}"), f"(?P<{k}>[^/]+)")
        regex = re.compile("^" + pattern + "/.+$")
    else:
        bucket, prefix = split_s3(location)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
    try:
        found = s3.object_files(bucket, prefix)
    except Exception:  # noqa: BLE001
        return []
    groups: dict[tuple, Source] = {}
    for key, src in found:
        if _hidden(key, prefix):
            continue
        if regex is not None:
            m = regex.match(key)
            if m is None:
                continue
            values = {k: m.group(k) for k in keys}
        else:
            pairs = dict(seg.split("=", 1) for seg in key[len(prefix):].split("/")[:-1] if "=" in seg)
            if not all(k in pairs for k in keys):
                continue
            values = {k: pairs[k] for k in keys}
        if not _in_projection(params, values):
            continue
        groups.setdefault(tuple(values.values()), Source(values, [])).files.append(src)
    return list(groups.values())


def _in_projection(params: dict, values: dict[str, str]) -> bool:
    for k, v in values.items():
        kind = params.get(f"projection.{k}.type", "")
        if kind == "enum":
            allowed = [x.strip() for x in params.get(f"projection.{k}.values", "").split(",")]
            if v not in allowed:
                return False
        elif kind == "integer":
            bounds = params.get(f"projection.{k}.range", "")
            try:
                low, high = (int(x) for x in bounds.split(","))
                if not low <= int(v) <= high:
                    return False
            except ValueError:
                return False
    return True


# -- executing (in a worker thread) ---------------------------------------------------------------

_SCALARS = {
    "string": "VARCHAR", "varchar": "VARCHAR", "char": "VARCHAR", "int": "INTEGER", "integer": "INTEGER",
    "bigint": "BIGINT", "smallint": "SMALLINT", "tinyint": "TINYINT", "double": "DOUBLE", "float": "FLOAT",
    "real": "FLOAT", "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP", "binary": "BLOB",
}


def duck_type(glue_type: str) -> str:
    """A Glue (Hive) column type in DuckDB's words: array<struct<a:int>> -> STRUCT(a INTEGER)[]."""
    t = glue_type.strip()
    low = t.lower()
    if low.startswith("array<") and low.endswith(">"):
        return duck_type(t[6:-1]) + "[]"
    if low.startswith("map<") and low.endswith(">"):
        k, v = split_top(t[4:-1])
        return f"MAP({duck_type(k)}, {duck_type(v)})"
    if low.startswith("struct<") and low.endswith(">"):
        fields = []
        for part in split_top(t[7:-1]):
            name, _, ftype = part.partition(":")
            fields.append(f'"{name.strip()}" {duck_type(ftype)}')
        return f"STRUCT({', '.join(fields)})"
    base = re.sub(r"\(.*\)$", "", low)
    if base == "decimal":
        return t.upper()
    if base in ("varchar", "char"):
        return "VARCHAR"
    return _SCALARS.get(base, "VARCHAR")


def split_top(text: str) -> list[str]:
    """``text`` split at its top-level commas (a type's fields: ``a int, b map<string,int>``)."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "<([":
            depth += 1
        elif ch in ">)]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def table_format(table: dict) -> str:
    """parquet, json or csv: how a Glue table's files are read (and written by INSERT INTO)."""
    return _format(table)


def _format(table: dict) -> str:
    sd = table.get("StorageDescriptor") or {}
    serde = ((sd.get("SerdeInfo") or {}).get("SerializationLibrary") or "").lower()
    inp = (sd.get("InputFormat") or "").lower()
    params = (table.get("Parameters") or {})
    classification = (params.get("classification") or "").lower()
    if "parquet" in serde or "parquet" in inp or classification == "parquet":
        return "parquet"
    if "json" in serde or classification == "json":
        return "json"
    return "csv"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _list(paths: list[str]) -> str:
    return "[" + ", ".join(_quote(p) for p in paths) + "]"


class Engine:
    """One query's DuckDB connection, so it can be interrupted from another thread."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.con: Any = None
        self.cancelled = False

    def interrupt(self) -> None:
        self.cancelled = True
        if self.con is not None:
            try:
                self.con.interrupt()
            except Exception:  # noqa: BLE001 - already finished
                pass

    def _connect(self, query_plan: Plan, tmp: Path) -> Any:
        """A DuckDB connection with one view per table the query names."""
        import duckdb  # lazily: only a running query needs it

        self.con = duckdb.connect(":memory:", config={"threads": 2})
        con = self.con
        for macro in athena_sql.MACROS:
            con.execute(macro)
        con.execute(f"ATTACH ':memory:' AS {CATALOG}")
        schemas = {query_plan.database} | {t.database for t in query_plan.tables}
        for schema in schemas:
            con.execute(f'CREATE SCHEMA IF NOT EXISTS {CATALOG}."{schema}"')
        for tp in query_plan.tables:
            con.execute(f'CREATE VIEW {CATALOG}."{tp.database}"."{tp.name}" AS {self._view(tp, tmp)}')
        con.execute(f"SET search_path = '{CATALOG}.{query_plan.database},memory.main'")
        return con

    def execute(self, text: str, query_plan: Plan) -> Outcome:
        import duckdb

        tmp = tempfile.TemporaryDirectory(dir=self.scratch)
        try:
            con = self._connect(query_plan, Path(tmp.name))
            translated = athena_sql.translate(text)
            try:
                if self.cancelled:  # stopped (or timed out) before DuckDB began
                    raise duckdb.InterruptException("interrupted")
                cursor = con.execute(translated)
                rows = cursor.fetchall()
                description = cursor.description or []
            except duckdb.InterruptException:
                raise QueryFailed("Query cancelled by user", 1, 1) from None
            except duckdb.Error as exc:
                raise _athena_error(exc, query_plan) from None
            columns = [column_info(d[0], str(d[1])) for d in description]
            return Outcome(columns, [[text_value(v) for v in row] for row in rows], True)
        finally:
            if self.con is not None:
                self.con.close()
            tmp.cleanup()

    def write(self, text: str, query_plan: Plan, out: Path, spec: "WriteSpec") -> "Written":
        """Run ``text`` and write its rows under ``out`` in the table format of ``spec``
        (CTAS, INSERT INTO): one file, or one per partition in ``key=value/`` folders.
        With ``spec.target`` the query's columns are matched to it by position and cast to
        its types, as Athena's INSERT INTO does."""
        import duckdb

        tmp = tempfile.TemporaryDirectory(dir=self.scratch)
        try:
            con = self._connect(query_plan, Path(tmp.name))
            translated = athena_sql.translate(text)
            try:
                con.execute(f"CREATE TEMP TABLE _athena_probe AS SELECT * FROM ({translated}) LIMIT 0")
                described = con.execute("DESCRIBE _athena_probe").fetchall()
                names = [str(r[0]) for r in described]
                if spec.target is not None:
                    if len(names) != len(spec.target):
                        raise QueryFailed(f"TYPE_MISMATCH: line 1:1: Insert query has {len(names)} columns, target "
                                          f"table '{spec.label}' has {len(spec.target)} columns", 2, 1301)
                    aliases = ", ".join(f'"_c{i}"' for i in range(len(names)))
                    select = ", ".join(f'CAST("_c{i}" AS {t}) AS "{n}"' for i, (n, t) in enumerate(spec.target))
                    translated = f"SELECT {select} FROM ({translated}) AS _athena_q({aliases})"
                elif len({n.lower() for n in names}) != len(names):
                    raise QueryFailed("SYNTAX_ERROR: line 1:1: Column names of a new table must be unique", 2, 1301)
                con.execute(f"CREATE TEMP TABLE _athena_out AS {translated}")
                described = con.execute("DESCRIBE _athena_out").fetchall()
                types = [(str(r[0]).lower(), str(r[1])) for r in described]
                missing = [k for k in spec.partition_by if k not in {n for n, _ in types}]
                if missing:
                    raise QueryFailed(f"SYNTAX_ERROR: line 1:1: Partition column {missing[0]} is not in the query's "
                                      "columns", 2, 1301)
                count = int(con.execute("SELECT count(*) FROM _athena_out").fetchone()[0])
                if spec.with_data and count:
                    self._copy(con, out, spec, [n for n, _ in types])
            except duckdb.InterruptException:
                raise QueryFailed("Query cancelled by user", 1, 1) from None
            except duckdb.Error as exc:
                raise _athena_error(exc, query_plan) from None
            files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
            return Written(types, count, files)
        finally:
            if self.con is not None:
                self.con.close()
            tmp.cleanup()

    def _copy(self, con: Any, out: Path, spec: "WriteSpec", names: list[str]) -> None:
        out.mkdir(parents=True, exist_ok=True)
        # partition columns go last and only into the folder names, as Hive lays tables out
        ordered = [n for n in names if n not in spec.partition_by] + list(spec.partition_by)
        select = f"SELECT {', '.join(_ident(n) for n in ordered)} FROM _athena_out"
        options = []
        suffix = ""
        if spec.format == "parquet":
            options.append("FORMAT PARQUET")
            codec = (spec.compression or "gzip").lower()
            options.append(f"COMPRESSION {_quote('uncompressed' if codec == 'none' else codec)}")
        elif spec.format == "json":
            options.append("FORMAT JSON")
            suffix = ".json"
        else:
            options += ["FORMAT CSV", f"DELIMITER {_quote(spec.delimiter)}", "HEADER false", "QUOTE ''",
                        "ESCAPE ''", "NULLSTR '\\N'"]
        if spec.format != "parquet":
            codec = (spec.compression or "gzip").lower()
            if codec not in ("none", "uncompressed"):
                options.append(f"COMPRESSION {_quote(codec)}")
                suffix += ".gz" if codec == "gzip" else f".{codec}"
        if spec.partition_by:
            options.append("PARTITION_BY (" + ", ".join(_ident(k) for k in spec.partition_by) + ")")
            options.append(f"FILENAME_PATTERN {_quote(spec.prefix + '_{i}')}")
            if suffix:
                options.append(f"FILE_EXTENSION {_quote(suffix.lstrip('.'))}")
            con.execute(f"COPY ({select}) TO {_quote(str(out))} ({', '.join(options)})")
        else:
            con.execute(f"COPY ({select}) TO {_quote(str(out / (spec.prefix + suffix)))} ({', '.join(options)})")

    def _view(self, tp: TablePlan, tmp: Path) -> str:
        table = tp.table
        sd = table.get("StorageDescriptor") or {}
        cols = [(c["Name"].lower(), duck_type(c.get("Type") or "string")) for c in sd.get("Columns") or []]
        pkeys = [(k["Name"].lower(), duck_type(k.get("Type") or "string")) for k in table.get("PartitionKeys") or []]
        kind = _format(table)
        selects = []
        counter = 0
        for source in tp.sources:
            by_codec: dict[str, list[str]] = {}
            for f in source.files:
                if isinstance(f, bytes):
                    counter += 1
                    path = tmp / f"inline-{counter}"
                    path.write_bytes(f)
                    head = f[:2]
                else:
                    path = f
                    try:
                        with open(f, "rb") as fh:
                            head = fh.read(2)
                    except OSError:
                        continue
                by_codec.setdefault("gzip" if head == b"\x1f\x8b" else "none", []).append(str(path))
            parts = [f"{_quote(source.values.get(k, ''))}::{t} AS \"{k}\"" for k, t in pkeys]
            for codec, paths in by_codec.items():
                reader = self._reader(kind, table, cols, paths, codec)
                select = ", ".join([f'"{c}"' for c, _ in cols] + parts) or "*"
                selects.append(f"SELECT {select} FROM {reader}")
        if not selects:
            fields = [f'NULL::{t} AS "{c}"' for c, t in cols + pkeys] or ["NULL AS _empty"]
            return f"SELECT {', '.join(fields)} WHERE false"
        return " UNION ALL ".join(selects)

    @staticmethod
    def _reader(kind: str, table: dict, cols: list[tuple[str, str]], paths: list[str], codec: str) -> str:
        columns = "{" + ", ".join(f"{_quote(c)}: {_quote(t)}" for c, t in cols) + "}"
        if kind == "parquet":
            return f"read_parquet({_list(paths)}, union_by_name=true)"
        if kind == "json":
            # Athena's limit on a row (32 MB); DuckDB sizes its read buffers from this bound, so a
            # larger one costs every query memory and page faults (256 MB: +25% CPU on 1 GB of lines)
            return (f"read_json({_list(paths)}, format='newline_delimited', columns={columns}, "
                    f"compression='{codec}', maximum_object_size={MAX_ROW_BYTES})")
        sd = table.get("StorageDescriptor") or {}
        serde = sd.get("SerdeInfo") or {}
        sp = serde.get("Parameters") or {}
        params = table.get("Parameters") or {}
        delim = sp.get("field.delim") or sp.get("separatorChar") or ","
        header = str(params.get("skip.header.line.count", "0")).strip() not in ("", "0")
        opencsv = "opencsv" in (serde.get("SerializationLibrary") or "").lower()
        quote = sp.get("quoteChar", '"') if opencsv else ""
        escape = sp.get("escapeChar", "\\") if opencsv else ""
        return (f"read_csv({_list(paths)}, delim={_quote(delim)}, header={str(header).lower()}, "
                f"columns={columns}, quote={_quote(quote)}, escape={_quote(escape)}, compression='{codec}', "
                "null_padding=true, auto_detect=false, nullstr='\\N')")


def _athena_error(exc: Exception, query_plan: Plan) -> QueryFailed:
    text = str(exc).split("\n")[0]
    m = re.search(r"Table with name (\S+) does not exist", text)
    if m:
        name = m.group(1).strip('"')
        return QueryFailed(f"TABLE_NOT_FOUND: line 1:1: Table '{CATALOG}.{query_plan.database}.{name}' does not "
                           "exist", 2, 1301)
    m = re.search(r'Referenced column "?([^"\s]+)"? not found', text)
    if m:
        return QueryFailed(f"COLUMN_NOT_FOUND: line 1:1: Column '{m.group(1)}' cannot be resolved or requester is "
                           "not authorized to access requested resources", 2, 1301)
    m = re.search(r"Scalar Function with name (\S+) does not exist", text)
    if m:
        return QueryFailed(f"FUNCTION_NOT_FOUND: line 1:1: Function '{m.group(1)}' not registered", 2, 1301)
    if "Parser Error" in text:
        detail = text.split(":", 1)[1].strip()
        return QueryFailed(f"SYNTAX_ERROR: line 1:1: {detail}", 2, 1301)
    if "Conversion Error" in text or "Invalid Input Error" in text:
        return QueryFailed(f"HIVE_BAD_DATA: {text.split(':', 1)[1].strip()}", 2, 1201)
    return QueryFailed(f"GENERIC_USER_ERROR: {text}", 2, 1006)


_TYPE_NAMES = [
    ("TIMESTAMP WITH TIME ZONE", "timestamp with time zone"), ("TIMESTAMP", "timestamp"), ("DATE", "date"),
    ("BIGINT", "bigint"), ("HUGEINT", "bigint"), ("UBIGINT", "bigint"), ("INTEGER", "integer"),
    ("UINTEGER", "bigint"), ("SMALLINT", "smallint"), ("TINYINT", "tinyint"), ("DOUBLE", "double"),
    ("FLOAT", "real"), ("DECIMAL", "decimal"), ("VARCHAR", "varchar"), ("BOOLEAN", "boolean"), ("BLOB", "varbinary"),
    ("INTERVAL", "interval day to second"), ("TIME", "time"), ("UUID", "uuid"), ('"NULL"', "unknown"),
    ("NULL", "unknown"),
]


def column_info(name: str, duck: str) -> dict:
    """GetQueryResults' ColumnInfo for a DuckDB result column."""
    if duck.endswith("[]"):
        athena = "array"
    elif duck.startswith("STRUCT"):
        athena = "row"
    elif duck.startswith("MAP"):
        athena = "map"
    else:
        athena = next((a for d, a in _TYPE_NAMES if duck.startswith(d)), "varchar")
    precision, scale = {"bigint": (19, 0), "integer": (10, 0), "smallint": (5, 0), "tinyint": (3, 0),
                        "double": (17, 0), "real": (17, 0), "varchar": (2147483647, 0), "boolean": (0, 0),
                        "date": (0, 0), "timestamp": (3, 0)}.get(athena, (0, 0))
    m = re.match(r"DECIMAL\((\d+),(\d+)\)", duck.replace(" ", ""))
    if m:
        precision, scale = int(m.group(1)), int(m.group(2))
    return {"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": name, "Label": name, "Type": athena,
            "Precision": precision, "Scale": scale, "Nullable": "UNKNOWN", "CaseSensitive": athena == "varchar"}


def text_value(value: Any) -> str | None:
    """A value as Athena's results show it (Trino's text form)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join("null" if v is None else text_value(v) or "" for v in value) + "]"
    if isinstance(value, dict):
        if set(value) == {"key", "value"} and isinstance(value["key"], list):
            items = zip(value["key"], value["value"])
        else:
            items = value.items()
        return "{" + ", ".join(f"{k}={'null' if v is None else text_value(v)}" for k, v in items) + "}"
    if isinstance(value, bytes):
        return " ".join(f"{b:02x}" for b in value)
    return str(value)


def java_double(value: float) -> str:
    """Java's Double.toString, which Athena's text output follows (1.0, 1.5E10, NaN)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0.0"
    if 1e-3 <= abs(value) < 1e7:
        text = repr(value)
        return text if "." in text else text + ".0"
    exponent = math.floor(math.log10(abs(value)))
    mantissa = repr(round(value / 10 ** exponent, 15))
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}E{exponent}"


def csv_text(columns: list[dict], rows: list[list[str | None]], header: bool) -> bytes:
    """The result file Athena writes: every field quoted, NULL as an empty field."""
    def line(values: list[str | None]) -> str:
        return ",".join("" if v is None else '"' + v.replace('"', '""') + '"' for v in values)

    lines = [line([c["Name"] for c in columns])] if header else []
    lines += [line(r) for r in rows]
    return ("\n".join(lines) + "\n").encode() if lines else b""
