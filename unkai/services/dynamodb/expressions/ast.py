"""The parsed forms of expressions. Paths keep their ``#name`` references unresolved,
so one parse serves every request that reuses the same expression text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True, slots=True)
class Ref:
    """``#name``: resolved through ExpressionAttributeNames at evaluation."""

    name: str


PathElement = Union[str, Ref, int]


@dataclass(frozen=True, slots=True)
class Path:
    elements: tuple[PathElement, ...]


@dataclass(frozen=True, slots=True)
class Value:
    """``:value``: looked up in ExpressionAttributeValues."""

    name: str


@dataclass(frozen=True, slots=True)
class Call:
    """A function: attribute_exists, begins_with, size, if_not_exists, list_append..."""

    name: str
    args: tuple


@dataclass(frozen=True, slots=True)
class Arith:
    op: str  # + or -
    left: object
    right: object


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # = <> < <= > >=
    left: object
    right: object


@dataclass(frozen=True, slots=True)
class Between:
    operand: object
    low: object
    high: object


@dataclass(frozen=True, slots=True)
class In:
    operand: object
    choices: tuple


@dataclass(frozen=True, slots=True)
class And:
    left: object
    right: object


@dataclass(frozen=True, slots=True)
class Or:
    left: object
    right: object


@dataclass(frozen=True, slots=True)
class Not:
    operand: object


@dataclass(slots=True)
class Parsed:
    """A parsed expression and the placeholders it uses."""

    node: object
    names: set[str] = field(default_factory=set)
    values: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Update:
    """A parsed update expression: its actions by section, in the order written."""

    set: list[tuple[Path, object]] = field(default_factory=list)
    remove: list[Path] = field(default_factory=list)
    add: list[tuple[Path, Value]] = field(default_factory=list)
    delete: list[tuple[Path, Value]] = field(default_factory=list)
