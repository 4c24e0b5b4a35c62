"""Applying an update expression: every right-hand side is read from the item as it
was, then SET, REMOVE, ADD and DELETE change a copy, as DynamoDB does."""

from __future__ import annotations

from typing import Any

from unkai.services.dynamodb import attributes, numbers
from unkai.services.dynamodb.attributes import Item, Value
from unkai.services.dynamodb.errors import invalid, validation
from unkai.services.dynamodb.expressions.ast import Arith, Call, Path, Update
from unkai.services.dynamodb.expressions.ast import Value as ValueRef
from unkai.services.dynamodb.expressions.evaluate import Env, check_paths_disjoint, get_path

TYPE_NAMES = {"S": "STRING", "N": "NUMBER", "B": "BINARY", "SS": "STRING SET", "NS": "NUMBER SET",
              "BS": "BINARY SET", "M": "MAP", "L": "LIST", "NULL": "NULL", "BOOL": "BOOLEAN"}
KIND = "UpdateExpression"


def _bad_operand(op: str, value: Value) -> Exception:
    return validation(f"Invalid {KIND}: Incorrect operand type for operator or function; "
                      f"operator: {op}, operand type: {TYPE_NAMES[attributes.type_of(value)]}")


def _wrong_type() -> Exception:
    return validation("An operand in the update expression has an incorrect data type")


def _invalid_path() -> Exception:
    return validation("The document path provided in the update expression is invalid for update")


def paths(update: Update, env: Env) -> list[tuple]:
    """Every path the update writes, resolved, after AWS's overlap and conflict checks."""
    found = [env.resolve(p) for p, _ in update.set]
    found += [env.resolve(p) for p in update.remove]
    found += [env.resolve(p) for p, _ in update.add]
    found += [env.resolve(p) for p, _ in update.delete]
    check_paths_disjoint(found, KIND)
    return found


def check(update: Update, env: Env, key_names: tuple[str, ...]) -> None:
    """Request-level checks made before the item is read."""
    for path in paths(update, env):
        if path[0] in key_names:
            raise invalid(f"Cannot update attribute {path[0]}. This attribute is part of the key")
    for _, node in update.set:
        _check_literals(node, env)
    for _, ref in update.add:
        value = env.values[ref.name]
        if attributes.type_of(value) not in ("N", "SS", "NS", "BS"):
            raise _bad_operand("ADD", value)
    for _, ref in update.delete:
        value = env.values[ref.name]
        if attributes.type_of(value) not in ("SS", "NS", "BS"):
            raise _bad_operand("DELETE", value)


def _check_literals(node: Any, env: Env) -> None:
    if isinstance(node, Arith):
        for side in (node.left, node.right):
            if isinstance(side, ValueRef) and attributes.type_of(env.values[side.name]) != "N":
                raise _bad_operand(node.op, env.values[side.name])
            _check_literals(side, env)
    elif isinstance(node, Call):
        if node.name == "list_append":
            for side in node.args:
                if isinstance(side, ValueRef) and attributes.type_of(env.values[side.name]) != "L":
                    value = env.values[side.name]
                    raise validation(f"Invalid {KIND}: Incorrect operand type for operator or function; "
                                     f"operator or function: list_append, operand type: "
                                     f"{TYPE_NAMES[attributes.type_of(value)]}")
        for arg in node.args:
            _check_literals(arg, env)


def apply(update: Update, old: Item, env: Env) -> Item:
    """The item after the update (``old`` is left untouched)."""
    # Right-hand sides first, all against the old item.
    assignments = [(env.resolve(p), _value(node, old, env)) for p, node in update.set]
    new = dict(old)
    touched = [env.resolve(p) for p, _ in update.set] + [env.resolve(p) for p in update.remove]
    touched += [env.resolve(p) for p, _ in update.add] + [env.resolve(p) for p, _ in update.delete]
    for top in {p[0] for p in touched if len(p) > 1}:
        if top in new:
            new[top] = _copy(new[top])
    for path, value in assignments:
        _set(new, path, value)
    removals = [env.resolve(p) for p in update.remove]
    # List elements go from the highest index down, so indexes mean the original list.
    removals.sort(key=lambda p: p[-1] if isinstance(p[-1], int) else -1, reverse=True)
    for path in removals:
        _remove(new, path)
    for p, ref in update.add:
        path = env.resolve(p)
        _set(new, path, _add(get_path(new, path), env.values[ref.name]))
    for p, ref in update.delete:
        path = env.resolve(p)
        current = get_path(new, path)
        if current is None:
            continue
        value = env.values[ref.name]
        t = attributes.type_of(value)
        if attributes.type_of(current) != t:
            raise _wrong_type()
        drop = set(value[t])
        kept = [x for x in current[t] if x not in drop]
        if kept:
            _set(new, path, {t: kept})
        else:
            _remove(new, path)
    return new


def _value(node: Any, item: Item, env: Env) -> Value:
    if isinstance(node, Path):
        value = get_path(item, env.resolve(node))
        if value is None:
            raise validation("The provided expression refers to an attribute that does not exist in the item")
        return value
    if isinstance(node, ValueRef):
        return env.values[node.name]
    if isinstance(node, Arith):
        left, right = _value(node.left, item, env), _value(node.right, item, env)
        if "N" not in left or "N" not in right:
            raise _wrong_type()
        if node.op == "+":
            return {"N": numbers.add(left["N"], right["N"])}
        return {"N": numbers.subtract(left["N"], right["N"])}
    if isinstance(node, Call):
        if node.name == "if_not_exists":
            existing = get_path(item, env.resolve(node.args[0]))
            return existing if existing is not None else _value(node.args[1], item, env)
        if node.name == "list_append":
            left, right = _value(node.args[0], item, env), _value(node.args[1], item, env)
            if "L" not in left or "L" not in right:
                raise _wrong_type()
            return {"L": left["L"] + right["L"]}
    raise AssertionError(node)


def _add(current: Value | None, value: Value) -> Value:
    t = attributes.type_of(value)
    if current is None:
        return value
    if attributes.type_of(current) != t:
        raise _wrong_type()
    if t == "N":
        return {"N": numbers.add(current["N"], value["N"])}
    have = set(current[t])
    return {t: current[t] + [x for x in value[t] if x not in have]}


def _copy(value: Value) -> Value:
    (t, x), = value.items()
    if t == "M":
        return {"M": {k: _copy(v) for k, v in x.items()}}
    if t == "L":
        return {"L": [_copy(v) for v in x]}
    return value


def _container(item: Item, path: tuple) -> tuple[list | dict, Any]:
    """The list or map holding the path's last element, and that element."""
    parent = item.get(path[0]) if len(path) == 2 else get_path(item, path[:-1])
    last = path[-1]
    kind = "L" if isinstance(last, int) else "M"
    if parent is None or kind not in parent:
        raise _invalid_path()
    return parent[kind], last


def _set(item: Item, path: tuple, value: Value) -> None:
    if len(path) == 1:
        item[path[0]] = value
        return
    container, last = _container(item, path)
    if isinstance(container, list) and last >= len(container):
        container.append(value)
    else:
        container[last] = value


def _remove(item: Item, path: tuple) -> None:
    if len(path) == 1:
        item.pop(path[0], None)
        return
    container, last = _container(item, path)
    if isinstance(container, list):
        if last < len(container):
            del container[last]
    else:
        container.pop(last, None)
