"""The statements that make or fill tables, read into what Glue and the writer need:
``CREATE EXTERNAL TABLE`` (Hive's DDL, as Athena takes it), ``CREATE TABLE ... AS SELECT``
with its ``WITH (format=..., external_location=..., partitioned_by=ARRAY[...])``
properties, ``INSERT INTO ... SELECT | VALUES``, ``CREATE DATABASE``, ``DROP TABLE`` and
``DROP DATABASE``.

Parsing walks the tokens of ``sql.tokenize`` (strings and quoted names stay whole), so
a column type such as ``array<struct<a:int,b:string>>`` is read back as written. What
Athena would refuse to parse fails with Hive's ``ParseException`` wording; table formats
unkai cannot write (ORC, Avro) fail as unsupported, never half-done.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from unkai.services.athena.engine import QueryFailed, split_top
from unkai.services.athena.sql import Token, tokenize

# Glue's StorageDescriptor for each format a table can be written in (what Athena's CTAS records).
FORMATS: dict[str, dict[str, Any]] = {
    "parquet": {"InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                              "Parameters": {"serialization.format": "1"}}},
    "json": {"InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
             "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
             "SerdeInfo": {"SerializationLibrary": "org.apache.hive.hcatalog.data.JsonSerDe", "Parameters": {}}},
    "textfile": {"InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
                 "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                 "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                               "Parameters": {}}},
}
STORED_AS = {"parquet": "parquet", "textfile": "textfile", "jsonfile": "json", "json": "json"}
UNWRITABLE = ("orc", "avro", "ion", "sequencefile", "rcfile")


@dataclass
class Create:
    """CREATE EXTERNAL TABLE: the Glue TableInput, and where it goes."""

    database: str
    table_input: dict
    if_not_exists: bool


@dataclass
class Ctas:
    database: str
    name: str
    properties: dict[str, Any]
    query: str
    with_data: bool


@dataclass
class Insert:
    database: str
    name: str
    columns: list[str] | None
    query: str


@dataclass
class Simple:
    """CREATE DATABASE / DROP TABLE / DROP DATABASE."""

    verb: str  # create_database | drop_table | drop_database
    database: str
    name: str | None
    if_flag: bool
    comment: str | None = None
    location: str | None = None
    properties: dict[str, str] = field(default_factory=dict)


def _parse_error(tok: Token | None, text: str) -> QueryFailed:
    near = tok.text if tok is not None else "<EOF>"
    line, col = 1, 0
    if tok is not None and getattr(tok, "pos", None) is not None:
        before = text[:tok.pos]  # type: ignore[attr-defined]
        line, col = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1)
    return QueryFailed(f"FAILED: ParseException line {line}:{col} cannot recognize input near '{near}'", 2, 1301)


class _Cursor:
    def __init__(self, text: str) -> None:
        self.text = text
        toks, pos = [], 0
        for tok in tokenize(text):
            tok.pos = pos  # type: ignore[attr-defined]
            pos += len(tok.text)
            if tok.kind not in ("ws", "comment"):
                toks.append(tok)
        self.toks = toks
        self.i = 0

    def peek(self, ahead: int = 0) -> Token | None:
        j = self.i + ahead
        return self.toks[j] if j < len(self.toks) else None

    def word(self, *words: str) -> bool:
        """Take the next words if they are these (case-insensitive)."""
        for k, w in enumerate(words):
            tok = self.peek(k)
            if tok is None or tok.word != w:
                return False
        self.i += len(words)
        return True

    def need(self, *words: str) -> None:
        if not self.word(*words):
            raise _parse_error(self.peek(), self.text)

    def op(self, ch: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "op" and tok.text == ch:
            self.i += 1
            return True
        return False

    def need_op(self, ch: str) -> None:
        if not self.op(ch):
            raise _parse_error(self.peek(), self.text)

    def string(self) -> str:
        tok = self.peek()
        if tok is None or tok.kind != "str":
            raise _parse_error(tok, self.text)
        self.i += 1
        return unescape(tok.text[1:-1].replace("''", "'"))

    def name(self) -> str:
        tok = self.peek()
        if tok is None or tok.kind not in ("word", "qid"):
            raise _parse_error(tok, self.text)
        self.i += 1
        return tok.text[1:-1].replace('""', '"') if tok.kind == "qid" else tok.text

    def qualified(self, database: str) -> tuple[str, str]:
        parts = [self.name()]
        while self.op("."):
            parts.append(self.name())
        parts = [p.lower() for p in parts]
        if len(parts) == 3:
            parts = parts[1:]
        if len(parts) == 2:
            return parts[0], parts[1]
        if len(parts) == 1:
            return database, parts[0]
        raise _parse_error(self.peek(), self.text)

    def done(self) -> bool:
        while self.op(";"):
            pass
        return self.peek() is None

    def rest(self) -> str:
        tok = self.peek()
        return self.text[tok.pos:] if tok is not None else ""  # type: ignore[attr-defined]


def unescape(value: str) -> str:
    r"""Hive's escapes in a DDL string: ``'\t'``, ``'\n'``, ``'\001'``, ``'\\'``."""
    def one(m: re.Match) -> str:
        s = m.group(1)
        if s.isdigit():
            return chr(int(s, 8))
        return {"t": "\t", "n": "\n", "r": "\r", "\\": "\\", "'": "'", '"': '"'}.get(s, s)

    return re.sub(r"\\([0-7]{1,3}|.)", one, value)


def _backticks(text: str) -> str:
    """Hive quotes names with backticks; the tokenizer knows double quotes."""
    return re.sub(r"`([^`]*)`", lambda m: '"' + m.group(1).replace('"', '""') + '"', text)


def classify(text: str) -> str | None:
    """Which of this module's statements ``text`` is, if any."""
    words = [t.word for t in tokenize(text) if t.kind == "word"][:4]
    if words[:1] == ["insert"]:
        return "insert"
    if words[:3] == ["create", "external", "table"]:
        return "create_external"
    if words[:2] == ["create", "table"]:
        return "ctas" if re.search(r"(?is)\bas\s*\(?\s*(select|with|values)\b", text) else "create_external"
    if words[:2] in (["create", "database"], ["create", "schema"], ["drop", "table"], ["drop", "database"],
                     ["drop", "schema"]):
        return "simple"
    return None


def parse_simple(text: str, database: str) -> Simple:
    c = _Cursor(_backticks(text))
    if c.word("create"):
        if not (c.word("database") or c.word("schema")):
            raise _parse_error(c.peek(), c.text)
        flag = c.word("if", "not", "exists")
        out = Simple("create_database", c.name().lower(), None, flag)
        while not c.done():
            if c.word("comment"):
                out.comment = c.string()
            elif c.word("location"):
                out.location = c.string()
            elif c.word("with", "dbproperties") or c.word("dbproperties"):
                out.properties = _properties(c)
            else:
                raise _parse_error(c.peek(), c.text)
        return out
    c.need("drop")
    if c.word("table"):
        flag = c.word("if", "exists")
        db, name = c.qualified(database)
        if not c.done():
            raise _parse_error(c.peek(), c.text)
        return Simple("drop_table", db, name, flag)
    if not (c.word("database") or c.word("schema")):
        raise _parse_error(c.peek(), c.text)
    flag = c.word("if", "exists")
    name = c.name().lower()
    c.word("restrict")
    if c.word("cascade"):
        raise QueryFailed("NOT_SUPPORTED: unkai does not drop a database's tables with CASCADE", 2, 1301)
    if not c.done():
        raise _parse_error(c.peek(), c.text)
    return Simple("drop_database", name, None, flag)


def _properties(c: _Cursor) -> dict[str, str]:
    c.need_op("(")
    out: dict[str, str] = {}
    while True:
        key = c.string()
        c.need_op("=")
        out[key] = c.string()
        if c.op(")"):
            return out
        c.need_op(",")


def _type(c: _Cursor) -> str:
    """A column type as Hive writes it, lower-cased (``array<struct<a:int>>``, ``decimal(10,2)``)."""
    parts: list[str] = []
    depth = 0
    while True:
        tok = c.peek()
        if tok is None:
            raise _parse_error(tok, c.text)
        if depth == 0 and (tok.text in (",", ")") or tok.word == "comment"):
            break
        if tok.text in ("<", "("):
            depth += 1
        elif tok.text in (">", ")"):
            depth -= 1
        parts.append(tok.text.lower() if tok.kind == "word" else tok.text.strip('"'))
        c.i += 1
    if not parts:
        raise _parse_error(c.peek(), c.text)
    return "".join(parts)


def _columns(c: _Cursor) -> list[dict]:
    c.need_op("(")
    cols: list[dict] = []
    while True:
        col: dict[str, Any] = {"Name": c.name().lower(), "Type": _type(c)}
        if c.word("comment"):
            col["Comment"] = c.string()
        cols.append(col)
        if c.op(")"):
            return cols
        c.need_op(",")


def parse_create_external(text: str, database: str) -> Create:
    c = _Cursor(_backticks(text))
    c.need("create")
    c.word("external")
    c.need("table")
    flag = c.word("if", "not", "exists")
    db, name = c.qualified(database)
    columns = _columns(c)
    sd: dict[str, Any] = {"Columns": columns}
    table: dict[str, Any] = {"Name": name, "TableType": "EXTERNAL_TABLE", "Parameters": {"EXTERNAL": "TRUE"},
                             "PartitionKeys": []}
    serde: dict[str, Any] = {"Parameters": {}}
    while not c.done():
        if c.word("comment"):
            table["Description"] = c.string()
        elif c.word("partitioned", "by"):
            table["PartitionKeys"] = _columns(c)
        elif c.word("clustered", "by") or c.word("sorted", "by") or c.word("skewed", "by"):
            raise QueryFailed("NOT_SUPPORTED: unkai does not read bucketed or skewed tables", 2, 1301)
        elif c.word("row", "format", "serde"):
            serde["SerializationLibrary"] = c.string()
            if c.word("with", "serdeproperties"):
                serde["Parameters"].update(_properties(c))
        elif c.word("row", "format", "delimited"):
            serde["SerializationLibrary"] = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
            while True:
                if c.word("fields", "terminated", "by"):
                    serde["Parameters"]["field.delim"] = c.string()
                    if c.word("escaped", "by"):
                        serde["Parameters"]["escape.delim"] = c.string()
                elif c.word("collection", "items", "terminated", "by"):
                    serde["Parameters"]["collection.delim"] = c.string()
                elif c.word("map", "keys", "terminated", "by"):
                    serde["Parameters"]["mapkey.delim"] = c.string()
                elif c.word("lines", "terminated", "by"):
                    serde["Parameters"]["line.delim"] = c.string()
                elif c.word("null", "defined", "as"):
                    serde["Parameters"]["serialization.null.format"] = c.string()
                else:
                    break
        elif c.word("stored", "as", "inputformat"):
            sd["InputFormat"] = c.string()
            c.need("outputformat")
            sd["OutputFormat"] = c.string()
        elif c.word("stored", "as"):
            kind = c.name().lower()
            if kind in STORED_AS:
                fmt = FORMATS[STORED_AS[kind]]
                sd["InputFormat"], sd["OutputFormat"] = fmt["InputFormat"], fmt["OutputFormat"]
                serde.setdefault("SerializationLibrary", fmt["SerdeInfo"]["SerializationLibrary"])
            elif kind in UNWRITABLE:
                raise QueryFailed(f"NOT_SUPPORTED: unkai reads JSON, CSV/TSV and Parquet tables, not {kind.upper()}",
                                  2, 1301)
            else:
                raise _parse_error(c.peek(-1), c.text)
        elif c.word("location"):
            sd["Location"] = c.string()
        elif c.word("tblproperties"):
            table["Parameters"].update(_properties(c))
        else:
            raise _parse_error(c.peek(), c.text)
    if "Location" not in sd:
        raise QueryFailed("FAILED: SemanticException [Error 10000]: An external table needs a LOCATION", 2, 1301)
    if not serde.get("SerializationLibrary"):
        serde["SerializationLibrary"] = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
    sd.setdefault("InputFormat", "org.apache.hadoop.mapred.TextInputFormat")
    sd.setdefault("OutputFormat", "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat")
    sd["SerdeInfo"] = serde
    table["StorageDescriptor"] = sd
    return Create(db, table, flag)


def _value(c: _Cursor) -> Any:
    """A CTAS property value: a string, a number, a boolean or ARRAY['a', 'b']."""
    if c.word("array"):
        c.need_op("[")
        items: list[Any] = []
        if c.op("]"):
            return items
        while True:
            items.append(c.string())
            if c.op("]"):
                return items
            c.need_op(",")
    tok = c.peek()
    if tok is not None and tok.kind == "str":
        return c.string()
    if tok is not None and tok.kind == "num":
        c.i += 1
        return tok.text
    if tok is not None and tok.word in ("true", "false"):
        c.i += 1
        return tok.word
    raise _parse_error(tok, c.text)


def parse_ctas(text: str, database: str) -> Ctas:
    c = _Cursor(_backticks(text))
    c.need("create", "table")
    if c.word("if", "not", "exists"):
        raise QueryFailed("NOT_SUPPORTED: CREATE TABLE IF NOT EXISTS ... AS is not supported", 2, 1301)
    db, name = c.qualified(database)
    props: dict[str, Any] = {}
    if c.word("with"):
        c.need_op("(")
        while True:
            key = c.name().lower()
            c.need_op("=")
            props[key] = _value(c)
            if c.op(")"):
                break
            c.need_op(",")
    c.need("as")
    body = c.rest().strip().rstrip(";").strip()
    with_data = True
    m = re.search(r"(?is)\s+with\s+(no\s+)?data\s*$", body)
    if m:
        with_data = not m.group(1)
        body = body[:m.start()]
    if body.startswith("(") and body.endswith(")"):
        body = body[1:-1]
    if not body:
        raise _parse_error(None, text)
    return Ctas(db, name, props, body, with_data)


def parse_insert(text: str, database: str) -> Insert:
    c = _Cursor(_backticks(text))
    c.need("insert")
    if c.word("overwrite"):
        raise QueryFailed("NOT_SUPPORTED: INSERT OVERWRITE is not supported by Athena", 2, 1301)
    c.need("into")
    db, name = c.qualified(database)
    columns = None
    tok, nxt = c.peek(), c.peek(1)
    if tok is not None and tok.text == "(" and nxt is not None and nxt.word not in ("select", "with", "values"):
        c.need_op("(")
        columns = []
        while True:
            columns.append(c.name().lower())
            if c.op(")"):
                break
            c.need_op(",")
    body = c.rest().strip().rstrip(";").strip()
    if not body:
        raise _parse_error(None, text)
    return Insert(db, name, columns, body)


# -- types, from what DuckDB reports to what Glue records ------------------------------------------

_HIVE = {"VARCHAR": "string", "BIGINT": "bigint", "HUGEINT": "bigint", "UBIGINT": "bigint", "INTEGER": "int",
         "UINTEGER": "bigint", "SMALLINT": "smallint", "USMALLINT": "int", "TINYINT": "tinyint", "UTINYINT": "smallint",
         "DOUBLE": "double", "FLOAT": "float", "BOOLEAN": "boolean", "DATE": "date", "TIMESTAMP": "timestamp",
         "TIMESTAMP WITH TIME ZONE": "timestamp", "BLOB": "binary", '"NULL"': "string", "NULL": "string"}


def hive_type(duck: str) -> str:
    """A DuckDB column type as Glue records it: INTEGER[] -> array<int>, STRUCT(a INTEGER) -> struct<a:int>."""
    t = duck.strip()
    if t.endswith("[]"):
        return f"array<{hive_type(t[:-2])}>"
    up = t.upper()
    if up.startswith("STRUCT(") and t.endswith(")"):
        fields = []
        for part in split_top(t[7:-1]):
            part = part.strip()
            if part.startswith('"'):
                end = part.index('"', 1)
                fname, ftype = part[1:end], part[end + 1:]
            else:
                fname, _, ftype = part.partition(" ")
            fields.append(f"{fname.lower()}:{hive_type(ftype)}")
        return f"struct<{','.join(fields)}>"
    if up.startswith("MAP(") and t.endswith(")"):
        k, v = split_top(t[4:-1])
        return f"map<{hive_type(k)},{hive_type(v)}>"
    if up.startswith("DECIMAL"):
        return t.lower().replace(" ", "")
    return _HIVE.get(up, "string")
