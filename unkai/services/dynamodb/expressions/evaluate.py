"""Evaluating parsed expressions against an item: document paths, operands, conditions
and projections, with the placeholder checks AWS makes before it evaluates anything."""

from __future__ import annotations

from typing import Any

from unkai.services.dynamodb import attributes
from unkai.services.dynamodb.attributes import TYPES, Item, Value
from unkai.services.dynamodb.errors import validation
from unkai.services.dynamodb.expressions.ast import (
    And, Between, Call, Compare, In, Not, Or, Parsed, Path, Ref,
)
from unkai.services.dynamodb.expressions.ast import Value as ValueRef


class Env:
    """ExpressionAttributeNames and -Values of one request, and which were used."""

    __slots__ = ("names", "values", "used_names", "used_values")

    def __init__(self, names: dict[str, str] | None, values: dict[str, Value] | None) -> None:
        self.names = names or {}
        self.values = values or {}
        self.used_names: set[str] = set()
        self.used_values: set[str] = set()

    def bind(self, parsed: Parsed, kind: str) -> None:
        """Check that every placeholder ``parsed`` uses is defined; note them as used."""
        for name in parsed.names:
            if name not in self.names:
                raise validation(f"Invalid {kind}: An expression attribute name used in the document path is "
                                 f"not defined; attribute name: {name}")
        for value in parsed.values:
            if value not in self.values:
                raise validation(f"Invalid {kind}: An expression attribute value used in expression is not "
                                 f"defined; attribute value: {value}")
        self.used_names |= parsed.names
        self.used_values |= parsed.values

    def check_unused(self) -> None:
        unused = [k for k in self.names if k not in self.used_names]
        if unused:
            raise validation(f"Value provided in ExpressionAttributeNames unused in expressions: "
                             f"keys: {{{', '.join(unused)}}}")
        unused = [k for k in self.values if k not in self.used_values]
        if unused:
            raise validation(f"Value provided in ExpressionAttributeValues unused in expressions: "
                             f"keys: {{{', '.join(unused)}}}")

    def resolve(self, path: Path) -> tuple:
        names = self.names
        return tuple(names[e.name] if isinstance(e, Ref) else e for e in path.elements)


# -- document paths -------------------------------------------------------------------

def get_path(item: Item, path: tuple) -> Value | None:
    value = item.get(path[0])
    for element in path[1:]:
        if value is None:
            return None
        if isinstance(element, int):
            items = value.get("L")
            if items is None or element >= len(items):
                return None
            value = items[element]
        else:
            members = value.get("M")
            if members is None:
                return None
            value = members.get(element)
    return value


def show_path(path: tuple) -> str:
    """A path as AWS prints it in messages: [a, b, [0]]."""
    return "[" + ", ".join(f"[{e}]" if isinstance(e, int) else e for e in path) + "]"


# -- operands and conditions ----------------------------------------------------------

def operand(node: Any, item: Item, env: Env) -> Value | None:
    if isinstance(node, Path):
        return get_path(item, env.resolve(node))
    if isinstance(node, ValueRef):
        return env.values[node.name]
    if isinstance(node, Call) and node.name == "size":
        return size(operand(node.args[0], item, env))
    raise AssertionError(node)


def size(value: Value | None) -> Value | None:
    if value is None:
        return None
    (t, x), = value.items()
    if t in ("S", "B", "SS", "NS", "BS", "L", "M"):
        return {"N": str(len(x))}
    return None


def _order(op: str, a: Value | None, b: Value | None) -> bool:
    if a is None or b is None:
        return False
    (ta, xa), = a.items()
    (tb, xb), = b.items()
    if ta != tb or ta not in ("N", "S", "B"):
        return False
    left, right = attributes.sort_value(a), attributes.sort_value(b)
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left >= right


def holds(node: Any, item: Item, env: Env) -> bool:
    """Whether a condition is true of ``item`` (an empty dict when there is no item)."""
    if isinstance(node, Compare):
        a = operand(node.left, item, env)
        b = operand(node.right, item, env)
        if node.op == "=":
            return attributes.equal(a, b)
        if node.op == "<>":
            return not attributes.equal(a, b)
        return _order(node.op, a, b)
    if isinstance(node, And):
        return holds(node.left, item, env) and holds(node.right, item, env)
    if isinstance(node, Or):
        return holds(node.left, item, env) or holds(node.right, item, env)
    if isinstance(node, Not):
        return not holds(node.operand, item, env)
    if isinstance(node, Between):
        a = operand(node.operand, item, env)
        return _order(">=", a, operand(node.low, item, env)) and _order("<=", a, operand(node.high, item, env))
    if isinstance(node, In):
        a = operand(node.operand, item, env)
        return any(attributes.equal(a, operand(c, item, env)) for c in node.choices)
    if isinstance(node, Call):
        return _function(node, item, env)
    raise AssertionError(node)


def _function(node: Call, item: Item, env: Env) -> bool:
    name = node.name
    value = operand(node.args[0], item, env)
    if name == "attribute_exists":
        return value is not None
    if name == "attribute_not_exists":
        return value is None
    if value is None:
        return False
    arg = operand(node.args[1], item, env)
    if arg is None:
        return False
    (t, x), = value.items()
    (ta, xa), = arg.items()
    if name == "attribute_type":
        return ta == "S" and t == xa
    if name == "begins_with":
        return t == ta and t in ("S", "B") and x.startswith(xa)
    if name == "contains":
        if t in ("S", "B"):
            return ta == t and xa in x
        if t in ("SS", "NS", "BS"):
            return ta == t[0] and xa in x
        if t == "L":
            return any(attributes.equal(v, arg) for v in x)
        return False
    raise AssertionError(name)


def check_literals(node: Any, env: Env, kind: str) -> None:
    """The checks AWS makes on literal operands before evaluating anything."""
    if isinstance(node, (And, Or)):
        check_literals(node.left, env, kind)
        check_literals(node.right, env, kind)
    elif isinstance(node, Not):
        check_literals(node.operand, env, kind)
    elif isinstance(node, Call):
        if node.name == "attribute_type" and isinstance(node.args[1], ValueRef):
            arg = env.values[node.args[1].name]
            if attributes.type_of(arg) != "S" or arg["S"] not in TYPES:
                shown = arg.get("S", attributes.type_of(arg))
                raise validation(f"Invalid {kind}: Invalid attribute type name found; type: {shown}, "
                                 f"valid types: {{ B,BOOL,BS,L,M,N,NS,NULL,S,SS }}")
        if node.name == "begins_with" and isinstance(node.args[1], ValueRef):
            t = attributes.type_of(env.values[node.args[1].name])
            if t not in ("S", "B"):
                raise validation(f"Invalid {kind}: Incorrect operand type for operator or function; "
                                 f"operator or function: begins_with, operand type: {t}")
    elif isinstance(node, Between) and isinstance(node.low, ValueRef) and isinstance(node.high, ValueRef):
        low, high = env.values[node.low.name], env.values[node.high.name]
        if attributes.type_of(low) != attributes.type_of(high) or _order(">", low, high):
            raise validation(f"Invalid {kind}: The BETWEEN operator requires upper bound to be greater than or "
                             f"equal to lower bound; lower bound operand: AttributeValue: {_show(low)}, "
                             f"upper bound operand: AttributeValue: {_show(high)}")
    elif isinstance(node, Compare) and node.op not in ("=", "<>"):
        for side in (node.left, node.right):
            if isinstance(side, ValueRef):
                t = attributes.type_of(env.values[side.name])
                if t not in ("N", "S", "B"):
                    raise validation(f"Invalid {kind}: Incorrect operand type for operator or function; "
                                     f"operator: {node.op}, operand type: {t}")


def _show(value: Value) -> str:
    (t, x), = value.items()
    return f"{{{t}:{x}}}"


# -- projections ----------------------------------------------------------------------

def check_paths_disjoint(paths: list[tuple], kind: str) -> None:
    """Two paths may not overlap (one a prefix of the other) nor conflict (the same
    element read as both a map member and a list index)."""
    for i, a in enumerate(paths):
        for b in paths[:i]:
            n = min(len(a), len(b))
            common = 0
            while common < n and a[common] == b[common]:
                common += 1
            if common == n:
                raise validation(f"Invalid {kind}: Two document paths overlap with each other; must remove or "
                                 f"rewrite one of these paths; path one: {show_path(b)}, path two: {show_path(a)}")
            if isinstance(a[common], int) != isinstance(b[common], int):
                raise validation(f"Invalid {kind}: Two document paths conflict with each other; must remove or "
                                 f"rewrite one of these paths; path one: {show_path(b)}, path two: {show_path(a)}")


def project(item: Item, paths: list[tuple]) -> Item:
    """The parts of ``item`` the paths name, nested as in the item; list elements
    picked out keep their relative order and close up."""
    tree: dict = {}
    for path in paths:
        node = tree
        for element in path[:-1]:
            node = node.setdefault(element, {})
        node[path[-1]] = True
    out: Item = {}
    for name, sub in tree.items():
        if name in item:
            value = _pick(item[name], sub)
            if value is not None:
                out[name] = value
    return out


def _pick(value: Value, tree: Any) -> Value | None:
    if tree is True:
        return value
    if "M" in value:
        members = value["M"]
        picked = {}
        for key, sub in tree.items():
            if isinstance(key, str) and key in members:
                v = _pick(members[key], sub)
                if v is not None:
                    picked[key] = v
        return {"M": picked} if picked else None
    if "L" in value:
        entries = value["L"]
        picked_list = []
        for index in sorted(k for k in tree if isinstance(k, int)):
            if index < len(entries):
                v = _pick(entries[index], tree[index])
                if v is not None:
                    picked_list.append(v)
        return {"L": picked_list} if picked_list else None
    return None
