"""AWS IoT SQL (version 2016-03-23): ``SELECT ... FROM 'topic/filter' WHERE ...``.

A small tokenizer and precedence-climbing parser turn a rule's statement into a tree of
tuples once (when the rule is created, so a bad statement is a SqlParseException then,
as AWS answers); ``Query.run(message)`` evaluates it against one message. AWS's
*Undefined* is a distinct value (``UNDEFINED``): a missing field, a comparison with it,
or a function of it is Undefined, a select item that is Undefined is left out of the
result, and a WHERE clause that is not exactly ``true`` drops the message.

Functions served: topic(n), clientid(), principal(), timestamp(), newuuid(), traceid(),
concat, upper, lower, trim, length, substring, startswith, endswith, abs, round, floor,
ceil, power, sqrt, mod, cast, coalesce, isundefined, isnull, get, encode(*, 'base64'),
and the MQTT 5 ones, get_mqtt_property(name) and get_user_properties([key]);
the others (aws_lambda(), get_thing_shadow()...) are listed in docs/iot.md as not served.
"""

from __future__ import annotations

import base64
import json
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable


class SqlError(ValueError):
    """A statement that does not parse; the service answers SqlParseException."""


class _Undefined:
    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED = _Undefined()

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>\d+\.\d*(?:[eE][+-]?\d+)?|\d*\.\d+(?:[eE][+-]?\d+)?|\d+(?:[eE][+-]?\d+)?)
  | (?P<str>'(?:[^']|'')*')
  | (?P<qid>"(?:[^"]|"")*"|`[^`]*`)
  | (?P<id>[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<op><>|!=|<=|>=|\|\||[-+*/%=<>(),.\[\]])
""", re.VERBOSE)

_KEYWORDS = {"select", "from", "where", "and", "or", "not", "as", "true", "false", "null", "value", "case",
             "when", "then", "else", "end", "in"}


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise SqlError(f"Expected a valid token at 1:{pos + 1}")
        pos = m.end()
        kind = m.lastgroup
        if kind == "ws":
            continue
        value = m.group()
        if kind == "id" and value.lower() in _KEYWORDS:
            out.append(("kw", value.lower()))
        elif kind == "qid":
            out.append(("id", value[1:-1].replace('""', '"')))
        else:
            out.append((kind, value))
    out.append(("end", ""))
    return out


@dataclass
class Message:
    """One message as the rules engine sees it."""

    topic: str
    payload: bytes
    client_id: str = ""
    principal: str = ""
    timestamp_ms: int = 0
    trace_id: str = ""
    properties: Any = None  # properties.Properties: its MQTT 5 properties, if any
    _json: Any = field(default=None, repr=False)
    _parsed: bool = False

    @property
    def document(self) -> Any:
        if not self._parsed:
            self._parsed = True
            try:
                self._json = json.loads(self.payload)
            except (ValueError, UnicodeDecodeError):
                self._json = UNDEFINED
        return self._json


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        return self.toks[min(self.i + offset, len(self.toks) - 1)]

    def take(self) -> tuple[str, str]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def accept(self, kind: str, value: str | None = None) -> bool:
        k, v = self.peek()
        if k == kind and (value is None or v == value):
            self.i += 1
            return True
        return False

    def expect(self, kind: str, value: str | None = None) -> str:
        k, v = self.peek()
        if k != kind or (value is not None and v != value):
            raise SqlError(f"Expected {value or kind} but found {v or 'end of statement'!r} at token {self.i + 1}")
        self.i += 1
        return v

    # expressions: OR < AND < NOT < comparison < additive < multiplicative < unary < postfix
    def expr(self) -> tuple:
        left = self.conj()
        while self.accept("kw", "or"):
            left = ("or", left, self.conj())
        return left

    def conj(self) -> tuple:
        left = self.neg()
        while self.accept("kw", "and"):
            left = ("and", left, self.neg())
        return left

    def neg(self) -> tuple:
        if self.accept("kw", "not"):
            return ("not", self.neg())
        return self.comparison()

    def comparison(self) -> tuple:
        left = self.additive()
        k, v = self.peek()
        if k == "op" and v in ("=", "<>", "!=", "<", ">", "<=", ">="):
            self.i += 1
            return ("cmp", "<>" if v == "!=" else v, left, self.additive())
        if k == "kw" and v == "in":
            self.i += 1
            return ("in", left, self.additive())
        return left

    def additive(self) -> tuple:
        left = self.term()
        while self.peek()[0] == "op" and self.peek()[1] in ("+", "-", "||"):
            op = self.take()[1]
            left = ("arith", op, left, self.term())
        return left

    def term(self) -> tuple:
        left = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in ("*", "/", "%"):
            op = self.take()[1]
            left = ("arith", op, left, self.unary())
        return left

    def unary(self) -> tuple:
        if self.accept("op", "-"):
            return ("neg", self.unary())
        return self.postfix()

    def postfix(self) -> tuple:
        node = self.primary()
        while True:
            if self.accept("op", "."):
                k, v = self.take()
                if k not in ("id", "kw"):
                    raise SqlError(f"Expected a field name after '.' but found {v!r}")
                node = ("field", node, v)
            elif self.accept("op", "["):
                index = self.expr()
                self.expect("op", "]")
                node = ("index", node, index)
            else:
                return node

    def primary(self) -> tuple:
        k, v = self.take()
        if k == "num":
            return ("lit", float(v) if any(c in v for c in ".eE") else int(v))
        if k == "str":
            return ("lit", v[1:-1].replace("''", "'"))
        if k == "kw" and v in ("true", "false"):
            return ("lit", v == "true")
        if k == "kw" and v == "null":
            return ("lit", None)
        if k == "op" and v == "(":
            node = self.expr()
            self.expect("op", ")")
            return node
        if k == "op" and v == "*":
            return ("star",)
        if k == "kw" and v == "case":
            return self.case()
        if k == "id":
            if self.accept("op", "("):
                return self.call(v.lower())
            return ("field", ("root",), v)
        raise SqlError(f"Unexpected {v or 'end of statement'!r} at token {self.i}")

    def case(self) -> tuple:
        subject = None if self.peek() == ("kw", "when") else self.expr()
        branches = []
        while self.accept("kw", "when"):
            cond = self.expr()
            self.expect("kw", "then")
            branches.append((cond, self.expr()))
        default = self.expr() if self.accept("kw", "else") else ("lit", UNDEFINED)
        self.expect("kw", "end")
        return ("case", subject, tuple(branches), default)

    def call(self, name: str) -> tuple:
        args: list[tuple] = []
        if name == "cast":
            value = self.expr()
            self.expect("kw", "as")
            kind = self.expect("id").lower()
            self.expect("op", ")")
            return ("call", "cast", (value, ("lit", kind)))
        if not self.accept("op", ")"):
            args.append(self.expr())
            while self.accept("op", ","):
                args.append(self.expr())
            self.expect("op", ")")
        if name not in _FUNCTIONS:
            raise SqlError(f"Undefined function: {name}")
        return ("call", name, tuple(args))


@dataclass
class Query:
    items: list[tuple[tuple, str | None]]  # (expression, alias)
    value: bool  # SELECT VALUE
    topic_filter: str
    where: tuple | None

    def matches_topic(self, topic: str) -> bool:
        return topic_matches(self.topic_filter, topic)

    def run(self, msg: Message) -> Any:
        """The rule's output for ``msg`` (a dict, or any value for SELECT VALUE), or
        UNDEFINED when the WHERE clause drops it."""
        if self.where is not None and evaluate(self.where, msg) is not True:
            return UNDEFINED
        if self.value:
            return evaluate(self.items[0][0], msg)
        out: dict[str, Any] = {}
        for node, alias in self.items:
            if node == ("star",):
                doc = msg.document
                if isinstance(doc, dict):
                    out.update(doc)
                elif len(self.items) == 1:  # SELECT * of a non-JSON payload passes it on as it is
                    return msg.payload if doc is UNDEFINED else doc
                continue
            value = evaluate(node, msg)
            if value is UNDEFINED:
                continue
            out[alias or _name_of(node)] = value
        return out


def _name_of(node: tuple) -> str:
    if node[0] == "field":
        return node[2]
    if node[0] == "index":
        return _name_of(node[1])
    if node[0] == "call":
        return node[1]
    return "_" + str(abs(hash(node)) % 1000)


def parse(text: str) -> Query:
    """A rule's SQL statement, or SqlError."""
    p = _Parser(text or "")
    p.expect("kw", "select")
    value = p.accept("kw", "value")
    items: list[tuple[tuple, str | None]] = []
    while True:
        node = p.expr()
        alias = None
        if p.accept("kw", "as"):
            k, alias = p.take()
            if k not in ("id", "kw", "str"):
                raise SqlError(f"Expected an alias after AS but found {alias!r}")
            alias = alias.strip("'")
        items.append((node, alias))
        if not p.accept("op", ","):
            break
    p.expect("kw", "from")
    k, topic = p.take()
    if k != "str":
        raise SqlError("Expected a quoted topic filter after FROM")
    topic = topic[1:-1]
    if not valid_filter(topic):
        raise SqlError(f"Invalid topic filter: {topic}")
    where = p.expr() if p.accept("kw", "where") else None
    if p.peek()[0] != "end":
        raise SqlError(f"Unexpected {p.peek()[1]!r} at token {p.i + 1}")
    if value and len(items) != 1:
        raise SqlError("SELECT VALUE takes exactly one expression")
    return Query(items, value, topic, where)


def valid_filter(topic_filter: str) -> bool:
    if not topic_filter or len(topic_filter) > 256:
        return False
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic-filter matching: ``+`` one level, ``#`` the rest (and the parent)."""
    f, t = topic_filter.split("/"), topic.split("/")
    for i, level in enumerate(f):
        if level == "#":
            return not (i == 0 and t[0].startswith("$"))
        if i >= len(t):
            return False
        if level == "+":
            if i == 0 and t[0].startswith("$"):
                return False
            continue
        if level != t[i]:
            return False
    return len(f) == len(t)


# -- evaluation ------------------------------------------------------------------------------

def _num(v: Any) -> float | int | None:
    if isinstance(v, bool) or v is None or v is UNDEFINED:
        return None
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        try:
            return int(v) if re.fullmatch(r"-?\d+", v.strip()) else float(v)
        except ValueError:
            return None
    return None


def _compare(op: str, a: Any, b: Any) -> Any:
    if a is UNDEFINED or b is UNDEFINED:
        return UNDEFINED
    if isinstance(a, (int, float)) and isinstance(b, str) and not isinstance(a, bool):
        b = _num(b) if _num(b) is not None else b
    elif isinstance(b, (int, float)) and isinstance(a, str) and not isinstance(b, bool):
        a = _num(a) if _num(a) is not None else a
    if op == "=":
        return a == b
    if op == "<>":
        return a != b
    try:
        return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
    except TypeError:
        return UNDEFINED


def _arith(op: str, a: Any, b: Any) -> Any:
    if op == "||":
        return UNDEFINED if a is UNDEFINED or b is UNDEFINED else _text(a) + _text(b)
    if op == "+" and isinstance(a, str) and isinstance(b, str) and (_num(a) is None or _num(b) is None):
        return a + b
    x, y = _num(a), _num(b)
    if x is None or y is None:
        return UNDEFINED
    try:
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "*":
            return x * y
        if op == "/":
            return x / y if isinstance(x, float) or isinstance(y, float) or x % y else x // y
        return x % y
    except ZeroDivisionError:
        return UNDEFINED


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v, separators=(",", ":"))


def evaluate(node: tuple, msg: Message) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "root":
        return msg.document
    if kind == "star":
        return msg.document
    if kind == "field":
        base = evaluate(node[1], msg)
        return base.get(node[2], UNDEFINED) if isinstance(base, dict) else UNDEFINED
    if kind == "index":
        base, index = evaluate(node[1], msg), evaluate(node[2], msg)
        if isinstance(base, list) and isinstance(index, int) and not isinstance(index, bool):
            return base[index] if -len(base) <= index < len(base) else UNDEFINED
        return UNDEFINED
    if kind == "and":
        a = evaluate(node[1], msg)
        if a is False:
            return False
        b = evaluate(node[2], msg)
        return (a and b) if isinstance(a, bool) and isinstance(b, bool) else (False if b is False else UNDEFINED)
    if kind == "or":
        a = evaluate(node[1], msg)
        if a is True:
            return True
        b = evaluate(node[2], msg)
        return (a or b) if isinstance(a, bool) and isinstance(b, bool) else (True if b is True else UNDEFINED)
    if kind == "not":
        a = evaluate(node[1], msg)
        return (not a) if isinstance(a, bool) else UNDEFINED
    if kind == "cmp":
        return _compare(node[1], evaluate(node[2], msg), evaluate(node[3], msg))
    if kind == "in":
        a, b = evaluate(node[1], msg), evaluate(node[2], msg)
        return a in b if isinstance(b, list) and a is not UNDEFINED else UNDEFINED
    if kind == "arith":
        return _arith(node[1], evaluate(node[2], msg), evaluate(node[3], msg))
    if kind == "neg":
        x = _num(evaluate(node[1], msg))
        return UNDEFINED if x is None else -x
    if kind == "case":
        subject = evaluate(node[1], msg) if node[1] is not None else None
        for cond, result in node[2]:
            hit = evaluate(cond, msg)
            if (node[1] is None and hit is True) or (node[1] is not None and hit == subject):
                return evaluate(result, msg)
        return evaluate(node[3], msg)
    if kind == "call":
        if node[1] == "encode" and node[2] and node[2][0] == ("star",):
            args = [msg.payload, *(evaluate(a, msg) for a in node[2][1:])]
        else:
            args = [evaluate(a, msg) for a in node[2]]
        return _FUNCTIONS[node[1]](msg, *args)
    raise SqlError(f"cannot evaluate {kind}")


def _topic(msg: Message, n: Any = None) -> Any:
    if n is None:
        return msg.topic
    levels = msg.topic.split("/")
    return levels[n - 1] if isinstance(n, int) and 1 <= n <= len(levels) else UNDEFINED


def _strfn(fn: Callable[[str], Any]) -> Callable[..., Any]:
    return lambda msg, v: fn(v) if isinstance(v, str) else UNDEFINED


def _numfn(fn: Callable[[float], Any]) -> Callable[..., Any]:
    def call(msg: Message, v: Any) -> Any:
        x = _num(v)
        return UNDEFINED if x is None else fn(x)
    return call


def _cast(msg: Message, v: Any, kind: str) -> Any:
    if v is UNDEFINED:
        return UNDEFINED
    if kind in ("string", "varchar"):
        return _text(v)
    if kind in ("int", "integer"):
        x = _num(v)
        return UNDEFINED if x is None else int(x)
    if kind in ("decimal", "double", "float"):
        x = _num(v)
        return UNDEFINED if x is None else float(x)
    if kind in ("bool", "boolean"):
        if isinstance(v, str):
            return {"true": True, "false": False}.get(v.lower(), UNDEFINED)
        return bool(v)
    return UNDEFINED


def _substring(msg: Message, s: Any, start: Any, end: Any = None) -> Any:
    if not isinstance(s, str) or _num(start) is None:
        return UNDEFINED
    return s[int(start):] if end is None else s[int(start):int(_num(end) or 0)]


def _encode(msg: Message, value: Any, scheme: Any) -> Any:
    if scheme != "base64":
        return UNDEFINED
    data = value if isinstance(value, bytes) else _text(value).encode()
    return base64.b64encode(data).decode()


def _mqtt_property(msg: Message, name: Any) -> Any:
    """``get_mqtt_property('content_type' | 'format_indicator' | 'response_topic' |
    'correlation_data')``: the message's MQTT 5 header (correlation data base64-encoded,
    the format ``UNSPECIFIED_BYTES`` or ``UTF8_DATA``), Undefined when it has none."""
    if not isinstance(name, str):
        return UNDEFINED
    if msg.properties is None:
        return "UNSPECIFIED_BYTES" if name == "format_indicator" else UNDEFINED
    value = msg.properties.mqtt_property(name)
    return UNDEFINED if value is None else value


def _user_properties(msg: Message, key: Any = None) -> Any:
    """``get_user_properties(key)``: the values of the message's user properties named
    ``key``, in order (a key may repeat), Undefined when there are none;
    ``get_user_properties()``: every user property as ``{"key": "value"}`` objects."""
    pairs = msg.properties.user if msg.properties is not None else ()
    if key is None:
        return [{k: v} for k, v in pairs] or UNDEFINED
    values = [v for k, v in pairs if k == key]
    return values or UNDEFINED


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "topic": _topic,
    "clientid": lambda msg: msg.client_id or UNDEFINED,
    "principal": lambda msg: msg.principal or UNDEFINED,
    "timestamp": lambda msg: msg.timestamp_ms,
    "newuuid": lambda msg: str(uuid.uuid4()),
    "traceid": lambda msg: msg.trace_id or UNDEFINED,
    "concat": lambda msg, *vs: UNDEFINED if any(v is UNDEFINED for v in vs) else "".join(_text(v) for v in vs),
    "upper": _strfn(str.upper),
    "lower": _strfn(str.lower),
    "trim": _strfn(str.strip),
    "length": _strfn(len),
    "substring": _substring,
    "startswith": lambda msg, s, p: s.startswith(p) if isinstance(s, str) and isinstance(p, str) else UNDEFINED,
    "endswith": lambda msg, s, p: s.endswith(p) if isinstance(s, str) and isinstance(p, str) else UNDEFINED,
    "abs": _numfn(abs),
    "round": _numfn(lambda x: int(math.floor(x + 0.5))),
    "floor": _numfn(lambda x: int(math.floor(x))),
    "ceil": _numfn(lambda x: int(math.ceil(x))),
    "sqrt": _numfn(lambda x: math.sqrt(x) if x >= 0 else UNDEFINED),
    "power": lambda msg, a, b: UNDEFINED if _num(a) is None or _num(b) is None else _num(a) ** _num(b),
    "mod": lambda msg, a, b: _arith("%", a, b),
    "cast": _cast,
    "coalesce": lambda msg, *vs: next((v for v in vs if v is not UNDEFINED and v is not None), UNDEFINED),
    "isundefined": lambda msg, v: v is UNDEFINED,
    "isnull": lambda msg, v: v is None,
    "get": lambda msg, base, key: (base[key] if isinstance(base, list) and isinstance(key, int)
                                   and -len(base) <= key < len(base) else base.get(key, UNDEFINED)
                                   if isinstance(base, dict) else UNDEFINED),
    "encode": _encode,
    "get_mqtt_property": _mqtt_property,
    "get_user_properties": _user_properties,
}


def substitute(template: str, msg: Message) -> str:
    """An action parameter's ``${expression}`` substitution templates, evaluated against
    the message (``${topic()}``, ``${clientid()}``, ``${payload.field}``)."""
    if "${" not in template:
        return template

    def one(m: re.Match) -> str:
        try:
            p = _Parser(m.group(1))
            node = p.expr()
            value = evaluate(node, msg)
        except SqlError:
            return ""
        return "" if value is UNDEFINED else _text(value)

    return re.sub(r"\$\{([^}]*)\}", one, template)
