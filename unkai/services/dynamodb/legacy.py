"""The pre-expression parameters SDKs still send (Expected, AttributeUpdates,
KeyConditions, QueryFilter, ScanFilter, AttributesToGet), translated into the same
parsed forms expressions produce, so one evaluator serves both."""

from __future__ import annotations

from typing import Any

from unkai.services.dynamodb.attributes import check_value
from unkai.services.dynamodb.errors import invalid, validation
from unkai.services.dynamodb.expressions.ast import (
    And, Between, Call, Compare, In, Not, Or, Parsed, Path, Update, Value,
)
from unkai.services.dynamodb.expressions.evaluate import Env

OPERATORS = {"EQ": "=", "NE": "<>", "LE": "<=", "LT": "<", "GE": ">=", "GT": ">"}
ARITY = {"EQ": 1, "NE": 1, "LE": 1, "LT": 1, "GE": 1, "GT": 1, "NOT_NULL": 0, "NULL": 0, "CONTAINS": 1,
         "NOT_CONTAINS": 1, "BEGINS_WITH": 1, "BETWEEN": 2}


def _value(env: Env, value: Any) -> Value:
    name = f":legacy{len(env.values)}"
    env.values[name] = check_value(value)
    env.used_values.add(name)
    return Value(name)


def _condition(env: Env, attr: str, spec: dict, expected: bool) -> Any:
    path = Path((attr,))
    op = spec.get("ComparisonOperator")
    if op is None:
        if not expected:
            raise validation("One or more parameter values were invalid: ComparisonOperator is required")
        exists = spec.get("Exists", True)
        if not exists:
            if "Value" in spec:
                raise invalid("Value cannot be used when Exists is false")
            return Call("attribute_not_exists", (path,))
        if "Value" not in spec:
            raise invalid("Value must be provided when Exists is true")
        return Compare("=", path, _value(env, spec["Value"]))
    if "Value" in spec and "AttributeValueList" in spec:
        raise invalid("Value and AttributeValueList cannot be used together")
    values = spec.get("AttributeValueList")
    if values is None:
        values = [spec["Value"]] if "Value" in spec else []
    if op == "IN":
        if not values:
            raise invalid("Invalid number of argument(s) for the IN ComparisonOperator")
        return In(path, tuple(_value(env, v) for v in values))
    if op not in ARITY:
        raise validation(f"1 validation error detected: Value '{op}' at 'comparisonOperator' failed to satisfy "
                         "constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, "
                         "EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]")
    if len(values) != ARITY[op]:
        raise invalid(f"Invalid number of argument(s) for the {op} ComparisonOperator")
    args = [_value(env, v) for v in values]
    if op in OPERATORS:
        return Compare(OPERATORS[op], path, args[0])
    if op == "NOT_NULL":
        return Call("attribute_exists", (path,))
    if op == "NULL":
        return Call("attribute_not_exists", (path,))
    if op == "CONTAINS":
        return Call("contains", (path, args[0]))
    if op == "NOT_CONTAINS":
        return And(Call("attribute_exists", (path,)), Not(Call("contains", (path, args[0]))))
    if op == "BEGINS_WITH":
        return Call("begins_with", (path, args[0]))
    return Between(path, args[0], args[1])


def conditions(env: Env, specs: dict, operator: str | None, expected: bool = False) -> Parsed | None:
    """Expected / QueryFilter / ScanFilter as one parsed condition."""
    if not specs:
        return None
    nodes = [_condition(env, attr, spec, expected) for attr, spec in specs.items()]
    node = nodes[0]
    for other in nodes[1:]:
        node = Or(node, other) if operator == "OR" else And(node, other)
    return Parsed(node)


def key_conditions(env: Env, specs: dict) -> Parsed:
    nodes = [_condition(env, attr, spec, False) for attr, spec in specs.items()]
    node = nodes[0]
    for other in nodes[1:]:
        node = And(node, other)
    return Parsed(node)


def attribute_updates(env: Env, updates: dict) -> Parsed:
    result = Update()
    for attr, spec in updates.items():
        path = Path((attr,))
        action = spec.get("Action", "PUT")
        if action == "PUT":
            if "Value" not in spec:
                raise invalid("Only DELETE action is allowed when no attribute value is specified")
            result.set.append((path, _value(env, spec["Value"])))
        elif action == "DELETE":
            if "Value" in spec:
                result.delete.append((path, _value(env, spec["Value"])))
            else:
                result.remove.append(path)
        elif action == "ADD":
            if "Value" not in spec:
                raise invalid("Only DELETE action is allowed when no attribute value is specified")
            value = _value(env, spec["Value"])
            if "L" in env.values[value.name]:
                empty = _value(env, {"L": []})
                result.set.append((path, Call("list_append", (Call("if_not_exists", (path, empty)), value))))
            else:
                result.add.append((path, value))
    return Parsed(result)


def attributes_to_get(names: list[str]) -> list[tuple]:
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise invalid(f"Duplicate value in attribute name: {dup}")
    return [(n,) for n in names]


def mixed(params: dict, legacy: tuple[str, ...], modern: tuple[str, ...]) -> None:
    """AWS refuses a request that mixes both styles."""
    old = [k for k in legacy if params.get(k) is not None]
    new = [k for k in modern if params.get(k) is not None]
    if old and new:
        raise validation(f"Can not use both expression and non-expression parameters in the same request: "
                         f"Non-expression parameters: {{{', '.join(old)}}} Expression parameters: "
                         f"{{{', '.join(new)}}}")
