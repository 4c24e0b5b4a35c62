"""Subscription filter policies: validated once when set, compiled into matchers, and
applied to every publish against the message attributes or the JSON message body
(``FilterPolicyScope``).

The operator set is the documented one: exact strings, numbers, true/false/null,
``prefix``, ``suffix``, ``equals-ignore-case``, ``wildcard``, ``anything-but`` (a value,
a list, or a ``prefix``/``suffix``/``wildcard``/``equals-ignore-case`` pattern),
``numeric`` ranges, ``exists``, ``cidr`` and ``$or``; body policies may nest keys.
Validation errors carry AWS's texts.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from typing import Any

from unkai.protocol import ServiceError

MAX_KEYS = 5
MAX_COMBINATIONS = 150
MAX_SIZE = 256 * 1024
_NUMERIC_OPS = ("<", "<=", "=", ">", ">=")
_MISSING = object()

Matcher = Callable[[list[Any]], bool]  # the leaf's values (empty when the key is absent) -> match


class FilterPolicy:
    """A compiled policy: alternatives (from ``$or``), each a map of key path -> matchers."""

    __slots__ = ("scope", "alternatives", "text")

    def __init__(self, text: str, scope: str, alternatives: list[dict[str, list[tuple[str, Any]]]]) -> None:
        self.text = text
        self.scope = scope
        self.alternatives = alternatives

    def matches(self, attributes: dict[str, list[Any]] | None, body: Callable[[], dict[str, list[Any]] | None]) -> bool:
        """``attributes``: attribute name -> typed values; ``body``: lazily flattened JSON body."""
        if self.scope == "MessageBody":
            flat = body()
            if flat is None:
                return False
            return any(_all_keys(alt, flat, True) for alt in self.alternatives)
        attrs = attributes or {}
        return any(_all_keys(alt, attrs, bool(attrs)) for alt in self.alternatives)


def _all_keys(alternative: dict[str, list[tuple[str, Any]]], values: dict[str, list[Any]], any_present: bool) -> bool:
    for key, conditions in alternative.items():
        found = values.get(key, _MISSING)
        if not any(_test(kind, arg, found, any_present) for kind, arg in conditions):
            return False
    return True


def _test(kind: str, arg: Any, found: Any, any_present: bool) -> bool:
    if kind == "exists":  # a property exists when it has a non-null, non-empty value
        present = found is not _MISSING and any(v is not None and v != "" for v in found)
        return present if arg else (not present and any_present)
    if found is _MISSING:
        return False
    if kind == "not":
        return bool(found) and not any(arg(v) for v in found)
    return any(arg(v) for v in found)


# -- typed values ----------------------------------------------------------------------

def attribute_values(attributes: dict[str, dict]) -> dict[str, list[Any]]:
    """Message attributes as filterable values: strings, numbers (Number), array elements."""
    out: dict[str, list[Any]] = {}
    for name, attr in attributes.items():
        data_type = attr.get("DataType", "")
        base = data_type.split(".", 1)[0]
        value = attr.get("StringValue")
        if base == "Binary" or value is None:
            continue
        if data_type == "String.Array":
            try:
                parsed = json.loads(value)
            except ValueError:
                continue
            out[name] = [_number(v) if _is_num(v) else v for v in (parsed if isinstance(parsed, list) else [parsed])]
        elif base == "Number":
            try:
                out[name] = [_Num(float(value), value)]
            except ValueError:
                continue
        else:
            out[name] = [value]
    return out


def flatten_body(body: str) -> dict[str, list[Any]] | None:
    """A JSON object body as leaf path -> values (``a.b``); None when it is not a JSON object."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    out: dict[str, list[Any]] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else k)
        elif isinstance(node, list):
            for item in node:
                walk(item, path)
        else:
            out.setdefault(path, []).append(_number(node) if _is_num(node) else node)

    try:
        walk(doc, "")
    except RecursionError:  # a body nested deeper than any policy can look: match it as a non-object
        return None
    return out


class _Num(float):
    """A number; a Number attribute's also keeps its text, so it equals its string form too."""

    text: str | None

    def __new__(cls, value: float, text: str | None = None) -> "_Num":
        obj = super().__new__(cls, value)
        obj.text = text
        return obj


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number(v: Any) -> _Num:
    return _Num(float(v))


# -- compiling ---------------------------------------------------------------------------

class _Invalid(Exception):
    pass


def compile_policy(text: str, scope: str, subscribe_call: bool = False) -> FilterPolicy:
    """Validate and compile a FilterPolicy; raises InvalidParameter with AWS's message."""
    prefix = "Invalid parameter: Attributes Reason: " if subscribe_call else "Invalid parameter: "
    if len(text.encode()) > MAX_SIZE:
        raise ServiceError("InvalidParameter", f"{prefix}FilterPolicy: Filter policy is too large")
    try:
        policy = json.loads(text)
    except (ValueError, RecursionError):
        raise ServiceError("InvalidParameter", f"{prefix}FilterPolicy: failed to parse JSON.") from None
    if not isinstance(policy, dict):
        raise ServiceError("InvalidParameter", f"{prefix}FilterPolicy: Filter policy must be a JSON object")
    try:
        if len(policy) > MAX_KEYS:
            raise _Invalid("FilterPolicy: Filter policy can not have more than 5 keys")
        alternatives = _expand(policy, "", scope, 1)
        combinations = sum(_combinations(alt) for alt in alternatives)
        if combinations > MAX_COMBINATIONS:
            raise _Invalid("FilterPolicy: Filter policy is too complex")
        compiled = [{key: [_compile(rule) for rule in rules] for key, (rules, _) in alt.items()}
                    for alt in alternatives]
    except _Invalid as exc:
        raise ServiceError("InvalidParameter", f"{prefix}{exc}") from None
    except RecursionError:  # nested thousands of levels deep
        raise ServiceError("InvalidParameter", f"{prefix}FilterPolicy: Filter policy is too complex") from None
    return FilterPolicy(text, scope, compiled)


def _expand(node: dict, path: str, scope: str, depth: int) -> list[dict[str, tuple[list, int]]]:
    """The policy as alternatives (``$or`` multiplies them), each key path -> (rules, depth)."""
    alternatives: list[dict[str, tuple[list, int]]] = [{}]
    for key, value in node.items():
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2 or not all(isinstance(v, dict) for v in value):
                raise _Invalid("FilterPolicy: $or must be an array of at least two objects")
            branches = [b for v in value for b in _expand(v, path, scope, depth)]
            alternatives = [{**alt, **branch} for alt in alternatives for branch in branches]
            continue
        full = f"{path}.{key}" if path else key
        if isinstance(value, dict):
            if scope == "MessageAttributes":
                raise _Invalid("Filter policy scope MessageAttributes does not support nested filter policy")
            nested = _expand(value, full, scope, depth + 1)
            alternatives = [{**alt, **branch} for alt in alternatives for branch in nested]
        elif isinstance(value, list):
            if not value:
                raise _Invalid("FilterPolicy: Empty arrays are not allowed")
            for alt in alternatives:
                alt[full] = (value, depth)
        else:
            raise _Invalid(f'FilterPolicy: "{key}" must be an object or an array')
    return alternatives


def _combinations(alternative: dict[str, tuple[list, int]]) -> int:
    total = 1
    for rules, depth in alternative.values():
        total *= len(rules) * depth
    return total


def _compile(rule: Any) -> tuple[str, Any]:
    if rule is None or isinstance(rule, (bool, str)):
        return "any", _equals(rule)
    if _is_num(rule):
        return "any", _equals_number(float(rule))
    if not isinstance(rule, dict):
        raise _Invalid("FilterPolicy: Match value must be String, number, true, false, or null")
    if len(rule) != 1:
        raise _Invalid("FilterPolicy: Only one key allowed in match expression")
    (op, arg), = rule.items()
    if op == "exists":
        if not isinstance(arg, bool):
            raise _Invalid("FilterPolicy: exists match pattern must be either true or false.")
        return "exists", arg
    if op == "anything-but":
        return "not", _anything_but(arg)
    if op in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
        return "any", _string_pattern(op, arg)
    if op == "numeric":
        return "any", _numeric(arg)
    if op == "cidr":
        return "any", _cidr(arg)
    raise _Invalid(f"FilterPolicy: Unrecognized match type {op}")


def _equals(expected: Any) -> Callable[[Any], bool]:
    if isinstance(expected, str):
        return lambda v: (v == expected and isinstance(v, str)) or (isinstance(v, _Num) and v.text == expected)
    return lambda v: v is expected or (v == expected and type(v) is type(expected))


def _equals_number(expected: float) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, float) and round(v, 5) == round(expected, 5)


def _string_pattern(op: str, arg: Any) -> Callable[[Any], bool]:
    if op in ("prefix", "suffix") and isinstance(arg, dict) and list(arg) == ["equals-ignore-case"] \
            and isinstance(arg["equals-ignore-case"], str):
        low = arg["equals-ignore-case"].casefold()
        if op == "prefix":
            return lambda v: isinstance(v, str) and v.casefold().startswith(low)
        return lambda v: isinstance(v, str) and v.casefold().endswith(low)
    if not isinstance(arg, str):
        raise _Invalid(f"FilterPolicy: {op} match pattern must be a string")
    if op == "prefix":
        return lambda v: isinstance(v, str) and v.startswith(arg)
    if op == "suffix":
        return lambda v: isinstance(v, str) and v.endswith(arg)
    if op == "equals-ignore-case":
        low = arg.casefold()
        return lambda v: isinstance(v, str) and v.casefold() == low
    regex = _wildcard(arg)
    return lambda v: isinstance(v, str) and regex.fullmatch(v) is not None


def _wildcard(pattern: str) -> re.Pattern:
    if "**" in pattern:
        raise _Invalid("FilterPolicy: Consecutive wildcard characters at pos " + str(pattern.index("**") + 1))
    parts, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "*\\":
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append(".*" if ch == "*" else re.escape(ch))
        i += 1
    return re.compile("".join(parts), re.DOTALL)


def _anything_but(arg: Any) -> Callable[[Any], bool]:
    """The excluded set: a value matches it when it must NOT be delivered."""
    if isinstance(arg, list):
        if not arg:
            raise _Invalid("FilterPolicy: Empty arrays are not allowed")
        tests = []
        for item in arg:
            if isinstance(item, str):
                tests.append(_equals(item))
            elif _is_num(item):
                tests.append(_equals_number(float(item)))
            else:
                raise _Invalid("FilterPolicy: Inside anything but list, start|null|boolean is not supported.")
        return lambda v: any(t(v) for t in tests)
    if isinstance(arg, str):
        return _equals(arg)
    if _is_num(arg):
        return _equals_number(float(arg))
    if isinstance(arg, dict):
        if len(arg) != 1:
            raise _Invalid("FilterPolicy: Only one key allowed in match expression")
        (op, inner), = arg.items()
        if op in ("prefix", "suffix", "wildcard"):
            return _string_pattern(op, inner)
        if op == "equals-ignore-case":
            items = inner if isinstance(inner, list) else [inner]
            if not items or not all(isinstance(i, str) for i in items):
                raise _Invalid("FilterPolicy: equals-ignore-case match pattern must be a string")
            lows = {i.casefold() for i in items}
            return lambda v: isinstance(v, str) and v.casefold() in lows
        raise _Invalid(f"FilterPolicy: Unsupported anything-but pattern: {op}")
    raise _Invalid("FilterPolicy: Value of anything-but must be an array or single string/number value.")


def _numeric(arg: Any) -> Callable[[Any], bool]:
    if not isinstance(arg, list) or not arg:
        raise _Invalid("FilterPolicy: Invalid member in numeric match: ]")
    terms = list(arg)
    op = terms[0]
    if not isinstance(op, str):
        raise _Invalid(f"FilterPolicy: Invalid member in numeric match: {op}")
    if op not in _NUMERIC_OPS:
        raise _Invalid(f"FilterPolicy: Unrecognized numeric range operator: {op}")
    if len(terms) < 2 or not _is_num(terms[1]):
        raise _Invalid(f"FilterPolicy: Value of {'equals' if op == '=' else op} must be numeric")
    checks = [(op, float(terms[1]))]
    if len(terms) > 2:
        if op not in (">", ">="):
            raise _Invalid("FilterPolicy: Too many elements in numeric expression")
        op2 = terms[2]
        if not isinstance(op2, str):
            raise _Invalid(f"FilterPolicy: Bad value in numeric range: {op2}")
        if op2 not in ("<", "<="):
            raise _Invalid(f"FilterPolicy: Bad numeric range operator: {op2}")
        if len(terms) < 4 or not _is_num(terms[3]):
            raise _Invalid(f"FilterPolicy: Value of {op2} must be numeric")
        if terms[3] <= terms[1]:
            raise _Invalid("FilterPolicy: Bottom must be less than top")
        if len(terms) > 4:
            raise _Invalid("FilterPolicy: Too many terms in numeric range expression")
        checks.append((op2, float(terms[3])))

    def test(v: Any) -> bool:
        if not isinstance(v, float):
            return False
        x = round(v, 5)
        for o, bound in checks:
            bound = round(bound, 5)
            if not ((o == "<" and x < bound) or (o == "<=" and x <= bound) or (o == "=" and x == bound)
                    or (o == ">" and x > bound) or (o == ">=" and x >= bound)):
                return False
        return True

    return test


def _cidr(arg: Any) -> Callable[[Any], bool]:
    if not isinstance(arg, str):
        raise _Invalid("FilterPolicy: prefix match pattern must be a string")
    if arg.count("/") != 1:
        raise _Invalid("FilterPolicy: Malformed CIDR, one '/' required")
    address, mask = arg.split("/")
    if not mask.isdigit():
        raise _Invalid("FilterPolicy: Malformed CIDR, mask bits must be an integer")
    try:
        network = ipaddress.ip_network(arg, strict=False)
    except ValueError:
        raise _Invalid(f"FilterPolicy: Nonstandard IP address: {address}") from None

    def test(v: Any) -> bool:
        if not isinstance(v, str):
            return False
        try:
            return ipaddress.ip_address(v) in network
        except ValueError:
            return False

    return test
