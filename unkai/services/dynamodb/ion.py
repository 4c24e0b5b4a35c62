"""Items in Amazon Ion text, for exports to S3 and imports from S3 with format ION.

The mapping is AWS's ("DynamoDB table export output format", Ion data type mapping): S is a
string, N a decimal, B a blob, BOOL a bool, NULL an untyped null, L a list, M a struct, and the
sets are lists annotated ``$dynamodb_SS``, ``$dynamodb_NS`` and ``$dynamodb_BS``. Each exported
line is one value ``$ion_1_0 {Item:{...}}``, as AWS writes it. The ``amazon-ion`` library
(AWS's own) reads and writes the text; it is imported only when an ION export or import runs."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from unkai.services.dynamodb import numbers

_SETS = {"SS": "$dynamodb_SS", "NS": "$dynamodb_NS", "BS": "$dynamodb_BS"}
_SET_OF = {annotation: kind for kind, annotation in _SETS.items()}


def _blob(value: Any) -> bytes:
    return base64.b64decode(value) if isinstance(value, str) else bytes(value)


def _to_ion(value: dict) -> Any:
    from amazon.ion.core import IonType
    from amazon.ion.simple_types import IonPyList

    (kind, x), = value.items()
    if kind == "S":
        return x
    if kind == "N":
        return Decimal(x)
    if kind == "B":
        return _blob(x)
    if kind == "BOOL":
        return bool(x)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: _to_ion(v) for k, v in x.items()}
    if kind == "L":
        return [_to_ion(v) for v in x]
    members = [Decimal(v) if kind == "NS" else _blob(v) if kind == "BS" else v for v in x]
    return IonPyList.from_value(IonType.LIST, members, annotations=(_SETS[kind],))


def export_line(item: dict) -> str:
    """One item (as stored: DynamoDB JSON, binary as base64) as AWS's Ion export line."""
    from amazon.ion import simpleion

    return simpleion.dumps({"Item": {k: _to_ion(v) for k, v in item.items()}}, binary=False)


def _number(value: Any) -> str:
    return numbers.canonical(format(value, "f") if isinstance(value, Decimal) else str(value))


def _from_ion(value: Any) -> dict:
    from amazon.ion.core import IonType

    kind = getattr(value, "ion_type", None)
    annotations = [getattr(a, "text", a) for a in getattr(value, "ion_annotations", ())]
    if value is None or kind == IonType.NULL or type(value).__name__ == "IonPyNull":
        return {"NULL": True}
    if kind == IonType.BOOL or isinstance(value, bool):
        return {"BOOL": bool(value)}
    if kind in (IonType.INT, IonType.DECIMAL, IonType.FLOAT) or isinstance(value, (int, float, Decimal)):
        return {"N": _number(value)}
    if kind in (IonType.BLOB, IonType.CLOB) or isinstance(value, bytes):
        return {"B": bytes(value)}
    if kind in (IonType.STRING, IonType.SYMBOL) or isinstance(value, str):
        return {"S": str(getattr(value, "text", value))}
    if kind == IonType.STRUCT or isinstance(value, Mapping):
        return {"M": {str(k): _from_ion(v) for k, v in value.items()}}
    if annotations and annotations[0] in _SET_OF:
        set_kind = _SET_OF[annotations[0]]
        members = [_number(v) if set_kind == "NS" else bytes(v) if set_kind == "BS" else str(v) for v in value]
        return {set_kind: members}
    if kind == IonType.LIST or kind == IonType.SEXP or isinstance(value, list):
        return {"L": [_from_ion(v) for v in value]}
    raise ValueError(f"Unsupported Ion value {value!r}")


def import_items(text: str) -> list[Any]:
    """The values of an Ion text file, each an item (attribute values with binary as bytes) or,
    for a value that is not ``{Item: {...}}``, an error message."""
    from amazon.ion import simpleion

    out: list[Any] = []
    for value in simpleion.loads(text, single_value=False):
        try:
            item = value.get("Item") if isinstance(value, Mapping) else None
            if not isinstance(item, Mapping):
                raise ValueError("Each Ion value must be a struct with an Item field")
            out.append({str(k): _from_ion(v) for k, v in item.items()})
        except (ValueError, KeyError, TypeError) as e:
            out.append(str(e))
    return out
