"""Athena's SQL (Trino's dialect) turned into DuckDB's, for what the two spell differently.

The text is tokenized (strings, quoted names and comments are kept whole), so a rewrite
never touches a literal. Functions DuckDB lacks under Trino's name are either renamed
here or defined as macros on each connection (``MACROS``); ``date_parse`` and
``date_format`` have their MySQL-style format strings (``%i``, ``%s``, ``%T``) translated
to strftime's, because DuckDB needs the format as a constant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"(?P<ws>\s+)|(?P<comment>--[^\n]*|/\*.*?\*/)|(?P<str>'(?:[^']|'')*')|(?P<qid>\"(?:[^\"]|\"\")*\")"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_$]*)|(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|(?P<op>.)", re.S)


@dataclass
class Token:
    kind: str
    text: str

    @property
    def word(self) -> str:
        return self.text.lower() if self.kind == "word" else ""


def tokenize(sql: str) -> list[Token]:
    return [Token(m.lastgroup or "op", m.group()) for m in _TOKEN.finditer(sql)]


RENAMES = {
    "approx_distinct": "approx_count_distinct",
    "cardinality": "len",
    "regexp_like": "regexp_matches",
    "json_extract_scalar": "json_extract_string",
    "to_unixtime": "epoch",
    "date_parse": "strptime",
    "date_format": "strftime",
    "array_join": "array_to_string",
    "element_at": "trino_element_at",
    "date_add": "trino_date_add",
    "from_iso8601_timestamp": "trino_from_iso8601_timestamp",
    "from_iso8601_date": "trino_from_iso8601_date",
    "json_parse": "json",
    "json_format": "trino_json_format",
    "arbitrary": "any_value",
    "split": "str_split",
    "strpos": "strpos",
    "codepoint": "unicode",
    "sequence": "generate_series",  # Trino's sequence(start, stop[, step]) is inclusive, as generate_series
}

MACROS = [
    "CREATE MACRO from_unixtime(x) AS make_timestamp(CAST(CAST(x AS DOUBLE) * 1000000 AS BIGINT))",
    "CREATE MACRO trino_from_iso8601_timestamp(x) AS CAST(CAST(x AS TIMESTAMPTZ) AS TIMESTAMP)",
    "CREATE MACRO trino_from_iso8601_date(x) AS CAST(x AS DATE)",
    "CREATE MACRO trino_element_at(a, i) AS a[i]",
    "CREATE MACRO trino_json_format(j) AS CAST(j AS VARCHAR)",
    "CREATE MACRO trino_date_add(u, n, x) AS x + CASE lower(u) WHEN 'millisecond' THEN to_milliseconds(n) "
    "WHEN 'second' THEN to_seconds(n) WHEN 'minute' THEN to_minutes(n) WHEN 'hour' THEN to_hours(n) "
    "WHEN 'day' THEN to_days(n) WHEN 'week' THEN to_weeks(n) WHEN 'month' THEN to_months(n) "
    "WHEN 'quarter' THEN to_months(3 * n) WHEN 'year' THEN to_years(n) END",
]

_FORMAT = {"%i": "%M", "%s": "%S", "%T": "%H:%M:%S", "%h": "%I", "%r": "%I:%M:%S %p", "%k": "%-H", "%l": "%-I",
           "%e": "%-d", "%c": "%-m", "%v": "%V", "%x": "%G", "%W": "%A", "%D": "%d"}


def mysql_format(literal: str) -> str:
    """A quoted MySQL-style format string as a quoted strftime one."""
    body = literal[1:-1]
    out = re.sub(r"%[a-zA-Z%]", lambda m: _FORMAT.get(m.group(), m.group()), body)
    return f"'{out}'"


def statement_kind(sql: str) -> str:
    """Athena's StatementType: DML, DDL or UTILITY."""
    words = [t.word for t in tokenize(sql) if t.kind == "word"]
    first = words[0] if words else ""
    if first in ("show", "describe", "desc", "explain"):
        return "UTILITY"
    if first in ("create", "drop", "alter", "msck"):
        return "DDL"
    return "DML"  # queries, and text that is none of these (DuckDB reports its syntax error)


def translate(sql: str) -> str:
    """DuckDB's spelling of an Athena query."""
    tokens = tokenize(sql.strip().rstrip(";"))
    out: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.kind == "comment":
            i += 1
            continue
        nxt = _next(tokens, i)
        if tok.kind == "word" and nxt is not None and tokens[nxt].text == "(":
            name = tok.word
            if name in ("date_parse", "date_format"):
                # translate the format literal: the first string after the first top-level comma
                depth, j = 0, nxt
                while j < len(tokens):
                    t = tokens[j]
                    if t.text == "(":
                        depth += 1
                    elif t.text == ")":
                        depth -= 1
                        if depth == 0:
                            break
                    elif t.text == "," and depth == 1:
                        k = _next(tokens, j)
                        if k is not None and tokens[k].kind == "str":
                            tokens[k] = Token("str", mysql_format(tokens[k].text))
                        break
                    j += 1
            if name in RENAMES:
                out.append(RENAMES[name])
                i += 1
                continue
        out.append(tok.text)
        i += 1
    return "".join(out)


def _next(tokens: list[Token], i: int) -> int | None:
    j = i + 1
    while j < len(tokens) and tokens[j].kind in ("ws", "comment"):
        j += 1
    return j if j < len(tokens) else None


def names(sql: str) -> list[tuple[str, ...]]:
    """Every dotted name in the query (``db.table``, ``"db"."table"``, ``t``), as lower-case parts:
    the candidates for table references."""
    tokens = [t for t in tokenize(sql) if t.kind not in ("ws", "comment")]
    found: list[tuple[str, ...]] = []
    i = 0
    while i < len(tokens):
        if tokens[i].kind in ("word", "qid"):
            parts = [_ident(tokens[i])]
            while i + 2 < len(tokens) and tokens[i + 1].text == "." and tokens[i + 2].kind in ("word", "qid"):
                parts.append(_ident(tokens[i + 2]))
                i += 2
            found.append(tuple(parts))
        i += 1
    return found


def _ident(tok: Token) -> str:
    return tok.text[1:-1].replace('""', '"').lower() if tok.kind == "qid" else tok.text.lower()
