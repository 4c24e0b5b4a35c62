"""CloudWatch Logs filter patterns: terms (``ERROR``, ``"exact phrase"``, ``?A ?B``,
``-excluded``), JSON selectors (``{ $.level = "ERROR" && $.ms > 100 }``), space-delimited
fields (``[ip, user, ..., status = 404, size]``) and ``%regex%``.

``compile_pattern(text)`` gives a predicate over a message, or raises ValueError with
AWS's message for a pattern it cannot parse.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[str], bool]

INVALID = "Invalid filter pattern"


def compile_pattern(pattern: str | None) -> Predicate:
    text = (pattern or "").strip()
    if not text:
        return lambda message: True
    if text.startswith("{"):
        if not text.endswith("}"):
            raise ValueError(INVALID)
        return _json_pattern(text[1:-1])
    if text.startswith("["):
        if not text.endswith("]"):
            raise ValueError(INVALID)
        return _delimited_pattern(text[1:-1])
    if len(text) > 1 and text.startswith("%") and text.endswith("%"):
        try:
            regex = re.compile(text[1:-1])
        except re.error:
            raise ValueError(INVALID) from None
        return lambda message: regex.search(message) is not None
    return _term_pattern(text)


# -- terms ----------------------------------------------------------------------------

_TERM = re.compile(r'''\s*([?-]?)("(?:[^"\\]|\\.)*"|[^\s"]+)''')


def _term_pattern(text: str) -> Predicate:
    required: list[str] = []
    optional: list[str] = []
    excluded: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TERM.match(text, pos)
        if m is None:
            if text[pos:].strip():
                raise ValueError(INVALID)
            break
        pos = m.end()
        sign, term = m.group(1), m.group(2)
        if term.startswith('"'):
            term = term[1:-1].replace('\\"', '"')
        {"": required, "?": optional, "-": excluded}[sign].append(term)

    def match(message: str) -> bool:
        if any(t in message for t in excluded):
            return False
        if required and not all(t in message for t in required):
            return False
        if optional and not any(t in message for t in optional):
            return False
        return True

    return match


# -- JSON selectors ---------------------------------------------------------------------

_JSON_TOKEN = re.compile(r"""\s*(?:
    (?P<lp>\() | (?P<rp>\)) | (?P<and>&&) | (?P<or>\|\|) |
    (?P<op>!=|<=|>=|=|<|>) |
    (?P<selector>\$(?:\.[A-Za-z0-9_\-@]+|\[\d+\]|\.\*)*) |
    (?P<string>"(?:[^"\\]|\\.)*") |
    (?P<keyword>IS\s+NULL|NOT\s+EXISTS|IS\s+TRUE|IS\s+FALSE|IS\s+NOT\s+NULL) |
    (?P<bare>[^\s()&|=!<>]+)
)""", re.VERBOSE | re.IGNORECASE)


def _json_tokens(text: str) -> list[tuple[str, str]]:
    tokens = []
    pos = 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        m = _JSON_TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(INVALID)
        kind = m.lastgroup
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


_MISSING = object()


def _select(doc: Any, selector: str) -> Any:
    value = doc
    for part in re.findall(r"\.([A-Za-z0-9_\-@]+|\*)|\[(\d+)\]", selector[1:]):
        key, index = part
        if index:
            if not isinstance(value, list) or int(index) >= len(value):
                return _MISSING
            value = value[int(index)]
        elif key == "*":
            return value
        else:
            if not isinstance(value, dict) or key not in value:
                return _MISSING
            value = value[key]
    return value


def _compare(value: Any, op: str, raw: str, quoted: bool) -> bool:
    if value is _MISSING:
        return False
    if not quoted:
        try:
            number = float(raw)
        except ValueError:
            number = None
        if number is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            return {"=": value == number, "!=": value != number, "<": value < number, ">": value > number,
                    "<=": value <= number, ">=": value >= number}[op]
        if op in ("<", ">", "<=", ">="):
            return False
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (dict, list)):
        return op == "!="
    elif value is None:
        text = "null"
    else:
        text = str(value)
    hit = fnmatch.fnmatchcase(text, raw) if "*" in raw else text == raw
    if op == "=":
        return hit
    if op == "!=":
        return not hit
    return False


class _JsonParser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (kind and tok[0] != kind):
            raise ValueError(INVALID)
        self.pos += 1
        return tok

    def parse(self) -> Callable[[Any], bool]:
        expr = self.expr_or()
        if self.peek() is not None:
            raise ValueError(INVALID)
        return expr

    def expr_or(self) -> Callable[[Any], bool]:
        left = self.expr_and()
        while self.peek() and self.peek()[0] == "or":
            self.take()
            right = self.expr_and()
            left = (lambda a, b: lambda d: a(d) or b(d))(left, right)
        return left

    def expr_and(self) -> Callable[[Any], bool]:
        left = self.atom()
        while self.peek() and self.peek()[0] == "and":
            self.take()
            right = self.atom()
            left = (lambda a, b: lambda d: a(d) and b(d))(left, right)
        return left

    def atom(self) -> Callable[[Any], bool]:
        tok = self.peek()
        if tok and tok[0] == "lp":
            self.take()
            inner = self.expr_or()
            self.take("rp")
            return inner
        selector = self.take("selector")[1]
        nxt = self.take()
        if nxt[0] == "keyword":
            word = " ".join(nxt[1].upper().split())
            checks = {
                "IS NULL": lambda v: v is None,
                "IS NOT NULL": lambda v: v is not _MISSING and v is not None,
                "NOT EXISTS": lambda v: v is _MISSING,
                "IS TRUE": lambda v: v is True,
                "IS FALSE": lambda v: v is False,
            }
            check = checks[word]
            return lambda d: check(_select(d, selector))
        if nxt[0] != "op":
            raise ValueError(INVALID)
        op = nxt[1]
        value_tok = self.take()
        if value_tok[0] == "string":
            raw, quoted = value_tok[1][1:-1].replace('\\"', '"'), True
        elif value_tok[0] == "bare":
            raw, quoted = value_tok[1], False
        else:
            raise ValueError(INVALID)
        return lambda d: _compare(_select(d, selector), op, raw, quoted)


def _json_pattern(body: str) -> Predicate:
    test = _JsonParser(_json_tokens(body)).parse()

    def match(message: str) -> bool:
        start = message.find("{")
        if start < 0:
            return False
        try:
            doc = json.loads(message[start:])
        except ValueError:
            return False
        return test(doc)

    return match


# -- space-delimited ---------------------------------------------------------------------

_FIELD = re.compile(r'"[^"]*"|\[[^\]]*\]|\S+')


def _delimited_pattern(body: str) -> Predicate:
    specs: list[tuple[str, Callable[[str], bool] | None]] = []
    for raw in [p.strip() for p in body.split(",")]:
        if not raw:
            raise ValueError(INVALID)
        if raw == "...":
            specs.append(("...", None))
            continue
        m = re.match(r"^([A-Za-z0-9_\-]+)\s*(?:(!=|<=|>=|=|<|>)\s*(.+))?$", raw)
        if m is None:
            raise ValueError(INVALID)
        name, op, value = m.groups()
        if op is None:
            specs.append((name, None))
            continue
        quoted = value.startswith('"') and value.endswith('"')
        raw_value = value[1:-1] if quoted else value
        specs.append((name, (lambda o, r, q: lambda field: _compare(_as_value(field), o, r, q))(op, raw_value, quoted)))

    def fields_of(message: str) -> list[str]:
        return [f[1:-1] if f[:1] in '"[' else f for f in _FIELD.findall(message)]

    def match(message: str) -> bool:
        fields = fields_of(message)
        return _match_fields(specs, fields)

    return match


def _as_value(field: str) -> Any:
    try:
        return float(field)
    except ValueError:
        return field


def _match_fields(specs: list, fields: list[str]) -> bool:
    if not specs:
        return not fields
    name, check = specs[0]
    if name == "...":
        return any(_match_fields(specs[1:], fields[i:]) for i in range(len(fields) + 1))
    if not fields:
        return False
    if check is not None and not check(fields[0]):
        return False
    return _match_fields(specs[1:], fields[1:])
