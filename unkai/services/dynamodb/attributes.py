"""Attribute values: validating what clients send, comparing, sizing, and storing them.

Inside unkai an attribute value keeps its wire shape (``{"S": "x"}``, ``{"N": "1.5"}``,
``{"B": b"..."}``, ``{"M": {...}}``...), with numbers always in canonical form so that
two equal numbers are equal strings. Items are stored as JSON text in that same shape
(binary as base64), which is also what stream records and events carry.
"""

from __future__ import annotations

import base64
import json
import re
from decimal import Decimal
from typing import Any

from unkai.services.dynamodb import numbers
from unkai.services.dynamodb.errors import invalid, validation

TYPES = ("S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL")
_CANONICAL_INT = re.compile(r"^(0|-?[1-9]\d{0,37})$")
MAX_ITEM_SIZE = 400 * 1024

Value = dict[str, Any]
Item = dict[str, Value]


# -- validating what a client sent ----------------------------------------------------

def check_item(item: Item) -> Item:
    """The item with every value validated and its numbers made canonical."""
    out = {}
    for name, value in item.items():
        out[name] = check_value(value)
    return out


MAX_DEPTH = 32  # AWS: a document nests at most 32 levels


def check_value(value: Any, depth: int = 1) -> Value:
    if not isinstance(value, dict) or not value:
        raise validation("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes")
    if len(value) != 1:
        raise validation("Supplied AttributeValue has more than one datatypes set, "
                         "must contain exactly one of the supported datatypes")
    (t, x), = value.items()
    if t == "S" or t == "B" or t == "BOOL":
        return value
    if t == "N":
        if _CANONICAL_INT.match(x):
            return value
        return {"N": numbers.canonical(x)}
    if t == "M" or t == "L":
        if depth > MAX_DEPTH:
            raise validation("Nesting Levels have exceeded supported limits")
        if t == "M":
            return {"M": {k: check_value(v, depth + 1) for k, v in x.items()}}
        return {"L": [check_value(v, depth + 1) for v in x]}
    if t == "NULL":
        if x is not True:
            raise invalid("Null attribute value types must have the value of true")
        return value
    if t == "SS" or t == "BS":
        if not x:
            raise (invalid("An string set  may not be empty") if t == "SS"
                   else invalid("Binary sets should not be empty"))
        if len(set(x)) != len(x):
            shown = x if t == "SS" else [base64.b64encode(b).decode() for b in x]
            raise invalid(f"Input collection [{', '.join(shown)}] contains duplicates.")
        return value
    if t == "NS":
        if not x:
            raise invalid("An number set  may not be empty")
        canon = [numbers.canonical(n) for n in x]
        if len(set(canon)) != len(canon):
            raise invalid(f"Input collection [{', '.join(x)}] contains duplicates.")
        return {"NS": canon}
    raise validation("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes")


# -- comparing ------------------------------------------------------------------------

def type_of(value: Value) -> str:
    return next(iter(value))


def equal(a: Value | None, b: Value | None) -> bool:
    if a is None or b is None:
        return False
    (ta, xa), = a.items()
    (tb, xb), = b.items()
    if ta != tb:
        return False
    if ta in ("SS", "NS", "BS"):
        return set(xa) == set(xb)
    if ta == "M":
        return xa.keys() == xb.keys() and all(equal(v, xb[k]) for k, v in xa.items())
    if ta == "L":
        return len(xa) == len(xb) and all(equal(u, v) for u, v in zip(xa, xb))
    return xa == xb


def sort_value(value: Value) -> Any:
    """A Python value ordering like DynamoDB orders N, S and B (None for other types).

    Python orders str by code point, which is the order of their UTF-8 bytes."""
    (t, x), = value.items()
    if t == "N":
        return Decimal(x)
    if t == "S" or t == "B":
        return x
    return None


# -- sizes ----------------------------------------------------------------------------

def item_size(item: Item) -> int:
    """DynamoDB's item size: names plus values, as its developer guide counts them."""
    return sum(len(k.encode()) + value_size(v) for k, v in item.items())


def value_size(value: Value) -> int:
    (t, x), = value.items()
    if t == "S":
        return len(x.encode())
    if t == "N":
        return _number_size(x)
    if t == "B":
        return len(x)
    if t == "BOOL" or t == "NULL":
        return 1
    if t == "SS":
        return sum(len(s.encode()) for s in x)
    if t == "NS":
        return sum(_number_size(n) for n in x)
    if t == "BS":
        return sum(len(b) for b in x)
    if t == "L":
        return 3 + sum(value_size(v) + 1 for v in x)
    if t == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in x.items())
    return 0


def _number_size(text: str) -> int:
    digits = len(text.lstrip("-").replace(".", "").strip("0")) or 1
    return (digits + 1) // 2 + 1


# -- storage and the wire -------------------------------------------------------------

def _bytes_default(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    raise TypeError(type(value).__name__)


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_bytes_default).encode


def dumps(item: Item) -> str:
    """JSON text of an item (binary as base64): how items are stored and how stream
    records and events carry them."""
    return _ENCODE(item)


def loads(text: str) -> Item:
    item = json.loads(text)
    if '"B' in text:
        _decode_binary(item)
    return item


def to_wire(item: Item) -> Item:
    """A JSON-ready copy (binary as base64 text), for error bodies and events."""
    return json.loads(dumps(item))


def from_wire(item: Item) -> Item:
    """The inverse of ``to_wire`` (decodes base64 binary in place)."""
    _decode_binary(item)
    return item


def _decode_binary(item: Item) -> None:
    for value in item.values():
        _decode_value(value)


def _decode_value(value: Value) -> None:
    for t, x in value.items():
        if t == "B" and isinstance(x, str):
            value[t] = base64.b64decode(x)
        elif t == "BS":
            value[t] = [base64.b64decode(b) if isinstance(b, str) else b for b in x]
        elif t == "M":
            _decode_binary(x)
        elif t == "L":
            for v in x:
                _decode_value(v)
