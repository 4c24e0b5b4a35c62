"""CloudWatch Logs Insights: the query language, compiled once and run over stored events.

A query is a pipeline of commands separated by ``|`` (``fields``, ``filter``, ``stats``,
``sort``, ``limit``, ``parse``, ``display``, ``dedup``), each compiled to a Python
function over records. A record is one log event's discovered fields, as AWS discovers
them: ``@timestamp``, ``@message``, ``@logStream``, ``@log``, ``@ingestionTime``; every
member of a JSON message, nested ones joined with ``.`` (``detail.hub``, ``tags.0``); and,
in Lambda's log groups, ``@type``, ``@requestId``, ``@duration``, ``@billedDuration``,
``@memorySize``, ``@maxMemoryUsed`` and ``@initDuration`` from REPORT lines. Compile
errors are ``InsightsError`` with the character offsets AWS reports in
MalformedQueryException's ``queryCompileError``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import operator
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]


class InsightsError(ValueError):
    def __init__(self, message: str, start: int = 0, end: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.start = start
        self.end = end


# -- discovering fields ---------------------------------------------------------------------

_REPORT = re.compile(r"^REPORT RequestId: (\S+)\s+Duration: ([\d.]+) ms\s+Billed Duration: (\d+) ms\s+"
                     r"Memory Size: (\d+) MB\s+Max Memory Used: (\d+) MB(?:\s+Init Duration: ([\d.]+) ms)?")
_START_END = re.compile(r"^(START|END) RequestId: (\S+)")


def flatten(value: Any, prefix: str, out: Record) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            flatten(v, f"{prefix}.{i}", out)
    elif prefix:
        out[prefix] = value


def record(ts: int, ingest: int, message: str, stream: str, log: str, lambda_group: bool,
           discover: bool = True) -> Record:
    """An event as a query sees it; ``discover=False`` leaves out the fields found in the
    message (JSON members, Lambda's REPORT values) for a query that reads none of them."""
    rec: Record = {"@timestamp": ts, "@message": message, "@logStream": stream, "@log": log,
                   "@ingestionTime": ingest}
    if not discover:
        return rec
    text = message.lstrip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            flatten(doc, "", rec)
    elif lambda_group:
        m = _REPORT.match(text)
        if m:
            rec.update({"@type": "REPORT", "@requestId": m.group(1), "@duration": float(m.group(2)),
                        "@billedDuration": float(m.group(3)), "@memorySize": float(m.group(4)) * 1e6,
                        "@maxMemoryUsed": float(m.group(5)) * 1e6})
            if m.group(6):
                rec["@initDuration"] = float(m.group(6))
        else:
            m2 = _START_END.match(text)
            if m2:
                rec.update({"@type": m2.group(1), "@requestId": m2.group(2)})
    return rec


# -- tokens -----------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<regex>/(?:[^/\\\n]|\\.)+/[a-z]*)
  | (?P<num>\d+(?:\.\d+)?(?:[smhdwqy]|ms|mo)?\b)
  | (?P<field>`[^`]+`|@?[A-Za-z_][A-Za-z0-9_.\-@$]*)
  | (?P<op><=|>=|!=|=~|==|[=<>+\-*/%(),\[\]|^])
""", re.X)


@dataclass
class Tok:
    kind: str
    text: str
    start: int
    end: int


def tokenize(text: str) -> list[Tok]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise InsightsError(f"unexpected symbol found {text[pos]} at line 1 and position {pos + 1}", pos, pos)
        if m.lastgroup != "ws":
            out.append(Tok(m.lastgroup or "op", m.group(), m.start(), m.end()))
        pos = m.end()
    return out


def _split_pipes(tokens: list[Tok]) -> list[list[Tok]]:
    parts: list[list[Tok]] = [[]]
    depth = 0
    for t in tokens:
        if t.text in ("(", "["):
            depth += 1
        elif t.text in (")", "]"):
            depth -= 1
        if t.text == "|" and t.kind == "op" and depth == 0:
            parts.append([])
        else:
            parts[-1].append(t)
    return parts


# -- expressions ------------------------------------------------------------------------------

_PERIOD = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "mo": 2592000, "q": 7776000,
           "y": 31536000}
_BIN = {"or": 1, "and": 2, "=": 4, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4, "like": 4, "=~": 4,
        "in": 4, "+": 5, "-": 5, "*": 6, "/": 6, "%": 6, "^": 7}
AGGREGATES = {"count", "count_distinct", "sum", "avg", "min", "max", "pct", "percentile", "stddev", "earliest",
              "latest", "sortsfirst", "sortslast"}


class Parser:
    def __init__(self, tokens: list[Tok], text: str) -> None:
        self.toks = tokens
        self.i = 0
        self.text = text

    def peek(self, k: int = 0) -> Tok | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> Tok:
        t = self.peek()
        if t is None:
            end = len(self.text)
            raise InsightsError("unexpected end of input", end, end)
        self.i += 1
        return t

    def expect(self, text: str) -> None:
        t = self.take()
        if t.text.lower() != text:
            raise InsightsError(f"expected {text} but found {t.text}", t.start, t.end)

    def at_word(self, *words: str) -> bool:
        t = self.peek()
        return t is not None and t.kind == "field" and t.text.lower() in words

    def expr(self, min_prec: int = 0) -> Any:
        left = self.unary()
        while True:
            t = self.peek()
            if t is None:
                return left
            op = t.text.lower()
            negated = False
            if op == "not" and self.peek(1) is not None and self.peek(1).text.lower() in ("like", "in"):
                negated = True
                op = self.peek(1).text.lower()
            if (t.kind == "op" or t.kind == "field") and op in _BIN and _BIN[op] >= min_prec:
                if t.kind == "field" and op not in ("and", "or", "like", "in"):
                    return left
                self.take()
                if negated:
                    self.take()
                if op == "in":
                    self.expect("[")
                    items = []
                    while self.peek() is not None and self.peek().text != "]":
                        items.append(self.expr(5))
                        if self.peek() is not None and self.peek().text == ",":
                            self.take()
                    self.expect("]")
                    node: Any = ("in", left, items)
                else:
                    right = self.expr(_BIN[op] + (0 if op == "^" else 1))
                    node = ("bin", op, left, right)
                left = ("not", node) if negated else node
            else:
                return left

    def unary(self) -> Any:
        t = self.take()
        low = t.text.lower()
        if t.kind == "field" and low == "not":
            return ("not", self.expr(3))
        if t.text == "-":
            return ("neg", self.unary())
        if t.text == "(":
            node = self.expr()
            self.expect(")")
            return node
        if t.kind == "str":
            return ("lit", _unquote(t.text))
        if t.kind == "regex":
            body, _, flags = t.text[1:].rpartition("/")
            try:
                return ("regex", re.compile(body, re.I if "i" in flags else 0))
            except re.error as exc:
                raise InsightsError(f"invalid regular expression: {exc}", t.start, t.end) from None
        if t.kind == "num":
            m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|mo|[smhdwqy])?", t.text)
            if m.group(2):
                return ("period", float(m.group(1)) * _PERIOD[m.group(2)])
            return ("lit", float(m.group(1)) if "." in m.group(1) else int(m.group(1)))
        if t.kind == "field":
            if self.peek() is not None and self.peek().text == "(":
                self.take()
                args = []
                if self.peek() is not None and self.peek().text == "*":
                    self.take()
                    args.append(("star",))
                while self.peek() is not None and self.peek().text != ")":
                    args.append(self.expr())
                    if self.peek() is not None and self.peek().text == ",":
                        self.take()
                self.expect(")")
                name = low
                if name not in FUNCTIONS and name not in AGGREGATES:
                    raise InsightsError(f"unknown function {t.text}", t.start, t.end)
                return ("call", name, args)
            if low in ("true", "false"):
                return ("lit", low == "true")
            return ("field", t.text.strip("`"))
        raise InsightsError(f"unexpected symbol found {t.text} at line 1 and position {t.start + 1}", t.start, t.end)


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def _cmp(op: str, a: Any, b: Any) -> bool:
    if a is None or b is None:
        return op == "!=" and (a is None) != (b is None)
    na, nb = _num(a), _num(b)
    if na is not None and nb is not None and not (isinstance(a, str) and isinstance(b, str)):
        a, b = na, nb
    else:
        a, b = str(a), str(b)
    return _COMPARE[op](a, b)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge}


def _like(value: Any, pattern: Any) -> bool:
    if value is None:
        return False
    if isinstance(pattern, re.Pattern):
        return pattern.search(str(value)) is not None
    return str(pattern) in str(value)


def _arith(op: str, a: Any, b: Any) -> Any:
    x, y = _num(a), _num(b)
    if x is None or y is None:
        return None
    try:
        r = {"+": lambda: x + y, "-": lambda: x - y, "*": lambda: x * y, "/": lambda: x / y,
             "%": lambda: x % y, "^": lambda: x ** y}[op]()
    except (ZeroDivisionError, OverflowError):
        return None
    return int(r) if r == int(r) and op != "/" and isinstance(a, int) and isinstance(b, int) else r


def _bin_ts(ts: Any, period: float) -> Any:
    n = _num(ts)
    if n is None:
        return None
    ms = period * 1000
    return int(n // ms * ms)


def _ts_value(v: Any) -> float | None:
    return _num(v)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "strlen": lambda s: len(str(s)) if s is not None else None,
    "toupper": lambda s: str(s).upper() if s is not None else None,
    "tolower": lambda s: str(s).lower() if s is not None else None,
    "trim": lambda s, c=None: str(s).strip(c) if s is not None else None,
    "ltrim": lambda s, c=None: str(s).lstrip(c) if s is not None else None,
    "rtrim": lambda s, c=None: str(s).rstrip(c) if s is not None else None,
    "concat": lambda *a: "".join(str(x) for x in a if x is not None),
    "substr": lambda s, start, length=None: None if s is None else (
        str(s)[int(start):] if length is None else str(s)[int(start):int(start) + int(length)]),
    "replace": lambda s, a, b: None if s is None else str(s).replace(str(a), str(b)),
    "strcontains": lambda s, sub: 1 if s is not None and str(sub) in str(s) else 0,
    "ispresent": lambda v: v is not None,
    "isempty": lambda v: v is None or v == "",
    "isblank": lambda v: v is None or str(v).strip() == "",
    "coalesce": lambda *a: next((x for x in a if x is not None), None),
    "abs": lambda v: abs(_num(v)) if _num(v) is not None else None,
    "ceil": lambda v: math.ceil(_num(v)) if _num(v) is not None else None,
    "floor": lambda v: math.floor(_num(v)) if _num(v) is not None else None,
    "sqrt": lambda v: math.sqrt(_num(v)) if _num(v) is not None and _num(v) >= 0 else None,
    "log": lambda v: math.log(_num(v)) if _num(v) else None,
    "pow": lambda a, b: _arith("^", a, b),
    "greatest": lambda *a: max((_num(x) for x in a if _num(x) is not None), default=None),
    "least": lambda *a: min((_num(x) for x in a if _num(x) is not None), default=None),
    "bin": None,  # needs the record's @timestamp: handled in evaluate
    "datefloor": lambda ts, period: _bin_ts(ts, period),
    "dateceil": lambda ts, period: None if _bin_ts(ts, period) is None else (
        _bin_ts(ts, period) + (0 if _bin_ts(ts, period) == _num(ts) else int(period * 1000))),
    "frommillis": lambda v: int(_num(v)) if _num(v) is not None else None,
    "tomillis": lambda v: int(_num(v)) if _num(v) is not None else None,
    "isvalidip": lambda v: bool(v) and re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]+", str(v)) is not None,
}


def evaluate(node: Any, rec: Record) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "field":
        return rec.get(node[1])
    if kind in ("regex", "period"):
        return node[1]
    if kind == "neg":
        v = _num(evaluate(node[1], rec))
        return -v if v is not None else None
    if kind == "not":
        return not _truthy(evaluate(node[1], rec))
    if kind == "in":
        v = evaluate(node[1], rec)
        return any(_cmp("=", v, evaluate(item, rec)) for item in node[2])
    if kind == "bin":
        op = node[1]
        if op == "and":
            return _truthy(evaluate(node[2], rec)) and _truthy(evaluate(node[3], rec))
        if op == "or":
            return _truthy(evaluate(node[2], rec)) or _truthy(evaluate(node[3], rec))
        a, b = evaluate(node[2], rec), evaluate(node[3], rec)
        if op in ("like", "=~"):
            return _like(a, b)
        if op in ("=", "==", "!=", "<", "<=", ">", ">="):
            return _cmp(op, a, b)
        return _arith(op, a, b)
    if kind == "call":
        name, args = node[1], node[2]
        if name == "bin":
            period = evaluate(args[0], rec) if args else 60
            return _bin_ts(rec.get("@timestamp"), float(period))
        values = [evaluate(a, rec) for a in args]
        try:
            return FUNCTIONS[name](*values)
        except (TypeError, ValueError):
            return None
    raise InsightsError(f"{kind} cannot be used here")


def _constant_bin_ms(node: Any) -> int | None:
    """The period of ``bin(<constant>)`` in whole milliseconds, else None."""
    if node[0] == "call" and node[1] == "bin" and len(node[2]) == 1 and node[2][0][0] in ("period", "lit"):
        seconds = _num(node[2][0][1])
        if seconds is not None and seconds > 0 and float(seconds * 1000).is_integer():
            return int(seconds * 1000)
    return None


def counted_rows(q: Query, groups: list[tuple[Any, int]]) -> list[Record]:
    """The rows the stats step of a ``counted`` query makes, from SQLite's (bin start or None,
    count) groups: then the query's later commands run over them."""
    _, names, group, _ = q.counted or (0, [], None, None)
    out = []
    for key, n in groups:
        row: Record = {}
        if group is not None:
            row[group] = key
            row["__timestamps"] = {group}
        for name in names:
            row[name] = n
        out.append(row)
    return out


def run_after(q: Query, records: list[Record], first: int, stopped: Callable[[], bool] | None = None
              ) -> list[Record]:
    """The query's commands from step ``first`` on (after a step SQLite did)."""
    for step in q.steps[first:]:
        if stopped is not None and stopped():
            raise Stopped
        records = step(records)
    return records


def _reader(node: Any) -> Callable[[Record], Any]:
    """``evaluate(node, r)`` as a function of the record, shortened for the two commonest
    group keys (a field, and bin() of a constant period) since stats runs it per event."""
    if node[0] == "field":
        return lambda r, name=node[1]: r.get(name)
    if node[0] == "call" and node[1] == "bin" and len(node[2]) == 1 and node[2][0][0] in ("period", "lit") \
            and _num(node[2][0][1]) is not None:
        ms = _num(node[2][0][1]) * 1000
        if ms > 0:
            def bin_of(r: Record) -> Any:
                ts = r.get("@timestamp")
                if not isinstance(ts, int) or isinstance(ts, bool):
                    return _bin_ts(ts, ms / 1000)
                return int(ts // ms * ms)
            return bin_of
    return lambda r: evaluate(node, r)


_SCALARS = (str, int, float, bool, type(None))


def _group_key(v: Any) -> Any:
    """A stats group's key for a value: a scalar with its type (1, 1.0 and true stay apart,
    as their JSON texts would), else its JSON text."""
    if isinstance(v, _SCALARS):
        return (type(v), v)
    return json.dumps(v, default=str)


def _truthy(v: Any) -> bool:
    return bool(v) and v != 0


# -- commands ------------------------------------------------------------------------------

@dataclass
class Query:
    steps: list[Callable[[list[Record]], list[Record]]] = field(default_factory=list)
    shown: list[str] | None = None
    limit: int | None = None
    sorted: bool = False
    stats: bool = False
    discover: bool = True  # whether the query may read fields discovered in messages
    # A first command `stats count(*) [by bin(<constant>)]`, which SQLite can count:
    # (its step's index, the aggregates' names, the group's name or None, the bin in ms or None)
    counted: tuple[int, list[str], str | None, int | None] | None = None
    pointers: bool = False  # whether it names @ptr (a stats query shows none otherwise)


# Fields every event has without reading its message, and the words of the query language
# that the tokenizer also reads as field names.
_BUILTIN_FIELDS = frozenset(("@timestamp", "@message", "@logStream", "@log", "@ingestionTime", "@ptr"))
_WORDS = frozenset(("fields", "display", "filter", "stats", "sort", "limit", "head", "parse", "dedup", "by", "as",
                    "asc", "desc", "and", "or", "not", "in", "like", "true", "false", "null"))


def _needs_discovery(tokens: list[Tok]) -> bool:
    """Whether a query names any field other than the built-in ones (conservatively: any
    name that is not a function call or a word of the language)."""
    for i, t in enumerate(tokens):
        if t.kind != "field":
            continue
        if i + 1 < len(tokens) and tokens[i + 1].text == "(":
            continue  # a function
        name = t.text.strip("`")
        if name.lower() in _WORDS and not t.text.startswith("`"):
            continue
        if name not in _BUILTIN_FIELDS:
            return True
    return False


def _name_of(node: Any, text: str) -> str:
    if node[0] == "field":
        return node[1]
    return text


def _projections(p: Parser, text: str) -> list[tuple[str, Any]]:
    out = []
    while p.peek() is not None:
        start = p.peek().start
        node = p.expr()
        end = p.toks[p.i - 1].end
        name = _name_of(node, text[start:end])
        if p.at_word("as"):
            p.take()
            name = p.take().text.strip("`")
        out.append((name, node))
        if p.peek() is not None and p.peek().text == ",":
            p.take()
        elif p.peek() is not None:
            t = p.peek()
            raise InsightsError(f"unexpected symbol found {t.text} at line 1 and position {t.start + 1}", t.start,
                                t.end)
    return out


def _aggregate(name: str, args: list, records: list[Record]) -> Any:
    if name == "count":
        if not args or args[0][0] == "star":
            return len(records)
        return sum(1 for r in records if evaluate(args[0], r) is not None)
    values = [evaluate(args[0], r) for r in records] if args else []
    present = [v for v in values if v is not None]
    if name == "count_distinct":
        return len({json.dumps(v) if not isinstance(v, str) else v for v in present})
    if name in ("earliest", "latest", "sortsfirst", "sortslast"):
        pairs = [(r.get("@timestamp") or 0, v) for r, v in zip(records, values) if v is not None]
        if not pairs:
            return None
        if name in ("earliest", "latest"):
            pairs.sort(key=lambda x: x[0])
            return pairs[0][1] if name == "earliest" else pairs[-1][1]
        ordered = sorted((v for _, v in pairs), key=lambda v: (_num(v) is None, _num(v) or 0, str(v)))
        return ordered[0] if name == "sortsfirst" else ordered[-1]
    nums = [n for n in (_num(v) for v in present) if n is not None]
    if not nums:
        return None
    if name == "sum":
        return sum(nums)
    if name == "avg":
        return sum(nums) / len(nums)
    if name == "min":
        return min(nums)
    if name == "max":
        return max(nums)
    if name == "stddev":
        return statistics.stdev(nums) if len(nums) > 1 else 0.0
    if name in ("pct", "percentile"):
        p = _num(evaluate(args[1], {})) if len(args) > 1 else 50.0
        ordered = sorted(nums)
        k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
        return ordered[k]
    return None


def compile_query(text: str) -> Query:
    """Compile a query; raises InsightsError for what AWS rejects as malformed."""
    if not text.strip():
        raise InsightsError("Query string cannot be empty", 0, 0)
    q = Query()
    tokens = tokenize(text)
    q.discover = _needs_discovery(tokens)
    q.pointers = any(t.text.strip("`") == "@ptr" for t in tokens)
    for part in _split_pipes(tokens):
        if not part:
            raise InsightsError("unexpected symbol found | at line 1", 0, 0)
        head = part[0]
        command = head.text.lower()
        p = Parser(part[1:], text)
        if command == "fields":
            projections = _projections(p, text)

            def step(records: list[Record], projections: list = projections) -> list[Record]:
                for r in records:
                    for name, node in projections:
                        r[name] = evaluate(node, r)
                return records
            q.steps.append(step)
            q.shown = (q.shown or []) + [n for n, _ in projections if n not in (q.shown or [])]
        elif command == "display":
            projections = _projections(p, text)

            def step(records: list[Record], projections: list = projections) -> list[Record]:
                for r in records:
                    for name, node in projections:
                        r[name] = evaluate(node, r)
                return records
            q.steps.append(step)
            q.shown = [n for n, _ in projections]
        elif command == "filter":
            node = p.expr()
            if p.peek() is not None:
                t = p.peek()
                raise InsightsError(f"unexpected symbol found {t.text} at line 1 and position {t.start + 1}",
                                    t.start, t.end)
            q.steps.append(lambda records, node=node: [r for r in records if _truthy(evaluate(node, r))])
        elif command == "stats":
            aggs: list[tuple[str, str, list]] = []
            groups: list[tuple[str, Any]] = []
            while p.peek() is not None and not p.at_word("by"):
                start = p.peek().start
                node = p.expr()
                end = p.toks[p.i - 1].end
                if node[0] != "call" or node[1] not in AGGREGATES:
                    raise InsightsError("stats requires an aggregation function", start, end)
                name = text[start:end]
                if p.at_word("as"):
                    p.take()
                    name = p.take().text.strip("`")
                aggs.append((name, node[1], node[2]))
                if p.peek() is not None and p.peek().text == ",":
                    p.take()
            if not aggs:
                raise InsightsError("stats requires an aggregation function", head.start, head.end)
            if p.at_word("by"):
                p.take()
                groups = _projections(p, text)

            def step(records: list[Record], aggs: list = aggs, groups: list = groups) -> list[Record]:
                buckets: dict[tuple, list[Record]] = {}
                keys: dict[tuple, list] = {}
                readers = [_reader(node) for _, node in groups]
                for r in records:
                    key_values = [read(r) for read in readers]
                    key = tuple(map(_group_key, key_values))
                    members = buckets.get(key)
                    if members is None:
                        buckets[key] = [r]
                        keys[key] = key_values
                    else:
                        members.append(r)
                out = []
                for key, members in buckets.items():
                    row: Record = {}
                    for (name, node), value in zip(groups, keys[key]):
                        row[name] = value
                        if node[0] == "call" and node[1] in ("bin", "datefloor", "dateceil"):
                            row.setdefault("__timestamps", set()).add(name)
                    for name, fn, args in aggs:
                        row[name] = _aggregate(fn, args, members)
                    out.append(row)
                return out
            if not q.steps and all(fn == "count" and (not args or args[0][0] == "star") for _, fn, args in aggs):
                bin_ms = _constant_bin_ms(groups[0][1]) if len(groups) == 1 else None
                if not groups or bin_ms is not None:
                    q.counted = (len(q.steps), [a[0] for a in aggs], groups[0][0] if groups else None, bin_ms)
            q.steps.append(step)
            q.shown = [n for n, _ in groups] + [a[0] for a in aggs]
            q.stats = True
        elif command == "sort":
            keys_: list[tuple[Any, bool]] = []
            while p.peek() is not None:
                node = p.expr()
                desc = False
                if p.at_word("asc", "desc"):
                    desc = p.take().text.lower() == "desc"
                keys_.append((node, desc))
                if p.peek() is not None and p.peek().text == ",":
                    p.take()

            def step(records: list[Record], keys_: list = keys_) -> list[Record]:
                for node, desc in reversed(keys_):
                    present = [r for r in records if evaluate(node, r) is not None]
                    missing = [r for r in records if evaluate(node, r) is None]
                    present.sort(key=lambda r: _sort_key(evaluate(node, r)), reverse=desc)
                    records = present + missing
                return records
            q.steps.append(step)
            q.sorted = True
        elif command in ("limit", "head"):
            t = p.take()
            if t.kind != "num" or not t.text.isdigit() or not 0 < int(t.text) <= 10000:
                raise InsightsError("limit must be a number between 1 and 10000", t.start, t.end)
            n = int(t.text)
            q.steps.append(lambda records, n=n: records[:n])
            q.limit = n
        elif command == "parse":
            source = ("field", "@message")
            if p.peek() is not None and p.peek().kind == "field":
                source = ("field", p.take().text.strip("`"))
            t = p.take()
            if t.kind == "regex":
                body, _, flags = t.text[1:].rpartition("/")
                try:
                    rx = re.compile(body.replace("(?<", "(?P<").replace("(?P<=", "(?<=").replace("(?P<!", "(?<!"),
                                    re.I if "i" in flags else 0)
                except re.error as exc:
                    raise InsightsError(f"invalid regular expression: {exc}", t.start, t.end) from None
                names = list(rx.groupindex)
            elif t.kind == "str":
                glob = _unquote(t.text)
                rx = re.compile(_glob(glob), re.S)
                if not p.at_word("as"):
                    raise InsightsError("parse with a glob needs 'as' and field names", t.start, t.end)
                p.take()
                names = []
                while p.peek() is not None:
                    names.append(p.take().text.strip("`"))
                    if p.peek() is not None and p.peek().text == ",":
                        p.take()
                if len(names) != rx.groups:
                    raise InsightsError("the number of fields does not match the number of wildcards", t.start,
                                        t.end)
            else:
                raise InsightsError("parse needs a glob string or a regular expression", t.start, t.end)

            def step(records: list[Record], rx: re.Pattern = rx, names: list = names, source: Any = source) -> list:
                for r in records:
                    value = evaluate(source, r)
                    m = rx.search(str(value)) if value is not None else None
                    if m:
                        for i, name in enumerate(names, 1):
                            r[name] = m.group(name) if name in rx.groupindex else m.group(i)
                return records
            q.steps.append(step)
        elif command == "dedup":
            fields_ = [node for _, node in _projections(p, text)]

            def step(records: list[Record], fields_: list = fields_) -> list[Record]:
                seen, out = set(), []
                for r in records:
                    key = tuple(json.dumps(evaluate(n, r), default=str) for n in fields_)
                    if key in seen:
                        continue
                    seen.add(key)
                    out.append(r)
                return out
            q.steps.append(step)
        elif command in ("unmask", "pattern", "diff", "anomaly", "filterindex", "source"):
            raise InsightsError(f"unkai does not run the {command} command", head.start, head.end)
        else:
            raise InsightsError(f"unexpected symbol found {head.text} at line 1 and position {head.start + 1}",
                                head.start, head.end)
    return q


def _glob(glob: str) -> str:
    """A parse glob as a regex: each ``*`` captures (lazily, the last greedily to the end)."""
    parts = glob.split("*")
    if len(parts) == 1:
        return re.escape(glob)
    body = "(.*?)".join(re.escape(s) for s in parts[:-1])
    return body + ("(.*?)" + re.escape(parts[-1]) if parts[-1] else "(.*)")


def _sort_key(v: Any) -> tuple:
    n = _num(v)
    return (0, n, "") if n is not None else (1, 0.0, str(v))


class Stopped(Exception):
    """A running query was stopped (StopQuery, or its timeout) between two of its steps."""


def run(q: Query, records: list[Record], stopped: Callable[[], bool] | None = None) -> list[Record]:
    if not q.sorted and not q.stats:
        records.sort(key=lambda r: r.get("@timestamp") or 0, reverse=True)
    for step in q.steps:
        if stopped is not None and stopped():
            raise Stopped
        records = step(records)
    return records


def show(value: Any, is_time: bool = False) -> str:
    """A value as GetQueryResults shows it (timestamps as ``2026-12-03 06:31:00.000``)."""
    if is_time and _num(value) is not None:
        return dt.datetime.fromtimestamp(_num(value) / 1000, dt.timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return str(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def rows(q: Query, records: list[Record], limit: int) -> list[list[dict]]:
    """The result rows: each a list of ``{"field", "value"}`` (missing fields left out)."""
    out = []
    for r in records[:limit]:
        times = r.get("__timestamps") or set()
        names = q.shown if q.shown is not None else ["@timestamp", "@message"]
        row = []
        for name in names:
            v = r.get(name)
            if v is None:
                continue
            row.append({"field": name, "value": show(v, name in ("@timestamp", "@ingestionTime") or name in times)})
        if not q.stats and "@ptr" in r:
            row.append({"field": "@ptr", "value": r["@ptr"]})
        out.append(row)
    return out
