"""EventBridge event patterns (also Lambda's FilterCriteria, which share the syntax): exact values, ``prefix``, ``suffix``,
``anything-but``, ``numeric``, ``exists``, ``equals-ignore-case``, ``wildcard``,
``cidr`` and ``$or``, matched as EventBridge matches them (a list of values
matches when any one does; an array in the event matches when any element does)."""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import operator
from typing import Any, Callable

_ABSENT = object()


class InvalidPattern(ValueError):
    pass


def parse(text: str) -> dict[str, Any]:
    try:
        pattern = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidPattern("Event pattern is not valid. Reason: Invalid JSON") from None
    if not isinstance(pattern, dict) or not pattern:
        raise InvalidPattern("Event pattern is not valid. Reason: Filter is not an object")
    _check(pattern, 1)
    return pattern


MAX_DEPTH = 100  # matching recurses once a level: far past any real pattern, far from Python's limit


def _check(pattern: dict[str, Any], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidPattern(f"Event pattern is not valid. Reason: nested deeper than {MAX_DEPTH} levels")
    for key, value in pattern.items():
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2:
                raise InvalidPattern("$or must be an array of at least two patterns")
            for alt in value:
                if not isinstance(alt, dict):
                    raise InvalidPattern("$or must be an array of at least two patterns")
                _check(alt, depth + 1)
        elif isinstance(value, dict):
            _check(value, depth + 1)
        elif not isinstance(value, list):
            raise InvalidPattern(f"Event pattern is not valid. Reason: '{key}' must be an object or an array")
        elif not value:
            raise InvalidPattern("Event pattern is not valid. Reason: Empty arrays are not allowed")


def matches(pattern: dict[str, Any], event: Any) -> bool:
    for key, want in pattern.items():
        if key == "$or":
            if not any(matches(alt, event) for alt in want):
                return False
            continue
        have = event.get(key, _ABSENT) if isinstance(event, dict) else _ABSENT
        if isinstance(want, dict):
            if not isinstance(have, dict) or not matches(want, have):
                return False
        elif not _any_value(want, have):
            return False
    return True


def matcher(pattern: dict[str, Any]) -> Callable[[Any], bool]:
    """``pattern`` as a function of an event that answers what ``matches(pattern, event)``
    does, for a pattern matched many times (a bus's rules): the plain-string lists and the
    numeric ranges that most patterns are made of are checked without ``matches``'s
    general walk; everything else calls the very helpers ``matches`` calls. A pattern of a
    shape ``parse`` would refuse is left to ``matches`` whole."""
    checks: list[Callable[[Any], bool]] = []
    for key, want in pattern.items():
        if key == "$or" and isinstance(want, list) and all(isinstance(alt, dict) for alt in want):
            alts = [matcher(alt) for alt in want]
            checks.append(lambda event, alts=alts: any(alt(event) for alt in alts))
        elif key != "$or" and isinstance(want, dict):
            checks.append(_nested(key, matcher(want)))
        elif key != "$or" and isinstance(want, list):
            checks.append(_field(key, want))
        else:
            return lambda event: matches(pattern, event)
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:  # the usual pattern: a source and one more field; no generator to drive
        first, second = checks
        return lambda event: first(event) and second(event)
    return lambda event: all(check(event) for check in checks)


def _nested(key: str, inner: Callable[[Any], bool]) -> Callable[[Any], bool]:
    def check(event: Any) -> bool:
        have = event.get(key, _ABSENT) if isinstance(event, dict) else _ABSENT
        return isinstance(have, dict) and inner(have)
    return check


_COMPARE = {"<": operator.lt, "<=": operator.le, "=": operator.eq, ">": operator.gt, ">=": operator.ge}


def _field(key: str, rules: list[Any]) -> Callable[[Any], bool]:
    """One field's list of rules: ``_any_value`` with the common cases unrolled."""
    if rules and all(type(rule) is str for rule in rules):  # exact strings: a set look-up
        strings = frozenset(rules)

        def exact(event: Any) -> bool:
            have = event.get(key, _ABSENT) if isinstance(event, dict) else _ABSENT
            if type(have) is str:
                return have in strings
            if isinstance(have, list):
                return any(type(v) is str and v in strings for v in have)
            return False
        return exact
    ranges = [_numeric(rule) for rule in rules]
    if rules and all(r is not None for r in ranges):  # numeric ranges only
        def numeric(event: Any) -> bool:
            have = event.get(key, _ABSENT) if isinstance(event, dict) else _ABSENT
            values = have if isinstance(have, list) else (have,)
            for value in values:
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    for bounds in ranges:
                        if all(compare(value, bound) for compare, bound in bounds):  # type: ignore[union-attr]
                            return True
            return False
        if len(ranges) == 1 and len(ranges[0]) == 1:  # one comparison, [">=", 0]: a plain number is one call
            ((compare, bound),) = ranges[0]  # type: ignore[misc]

            def compare_one(event: Any) -> bool:
                have = event.get(key, _ABSENT) if isinstance(event, dict) else _ABSENT
                kind = type(have)
                if kind is int or kind is float:
                    return compare(have, bound)
                return numeric(event)  # arrays, subclasses, absent: the general loop
            return compare_one
        return numeric

    def general(event: Any) -> bool:
        return _any_value(rules, event.get(key, _ABSENT) if isinstance(event, dict) else _ABSENT)
    return general


def _numeric(rule: Any) -> list[tuple[Callable[[Any, Any], bool], int | float]] | None:
    """A ``{"numeric": [op, bound, ...]}`` rule as comparisons, or None for anything else
    (left to ``_one``)."""
    if not isinstance(rule, dict) or len(rule) != 1 or not isinstance(rule.get("numeric"), list):
        return None
    arg = rule["numeric"]
    if not arg or len(arg) % 2:
        return None
    bounds = []
    for i in range(0, len(arg), 2):
        compare, bound = _COMPARE.get(arg[i]) if isinstance(arg[i], str) else None, arg[i + 1]
        if compare is None or type(bound) not in (int, float):
            return None
        bounds.append((compare, bound))
    return bounds


def _any_value(rules: list[Any], have: Any) -> bool:
    values = have if isinstance(have, list) else [have]
    for rule in rules:
        if isinstance(rule, dict) and "exists" in rule:
            present = have is not _ABSENT
            if present == bool(rule["exists"]):
                return True
            continue
        if have is _ABSENT:
            continue
        if any(_one(rule, v) for v in values):
            return True
    return False


def _one(rule: Any, value: Any) -> bool:
    if not isinstance(rule, dict):
        if isinstance(rule, bool) or isinstance(value, bool):
            return rule is value
        return rule == value
    (op, arg), = rule.items()
    if op == "prefix":
        if isinstance(arg, dict):  # {"prefix": {"equals-ignore-case": "x"}}
            return isinstance(value, str) and value.lower().startswith(str(arg.get("equals-ignore-case", "")).lower())
        return isinstance(value, str) and value.startswith(arg)
    if op == "suffix":
        if isinstance(arg, dict):
            return isinstance(value, str) and value.lower().endswith(str(arg.get("equals-ignore-case", "")).lower())
        return isinstance(value, str) and value.endswith(arg)
    if op == "equals-ignore-case":
        return isinstance(value, str) and value.lower() == str(arg).lower()
    if op == "wildcard":
        return isinstance(value, str) and fnmatch.fnmatchcase(value, arg.replace("[", "[[]"))
    if op == "anything-but":
        if isinstance(arg, dict):
            return not _one(arg, value)
        excluded = arg if isinstance(arg, list) else [arg]
        return not any(_one(x, value) for x in excluded)
    if op == "numeric":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        for i in range(0, len(arg), 2):
            cmp, bound = arg[i], arg[i + 1]
            ok = {"<": value < bound, "<=": value <= bound, "=": value == bound, ">": value > bound,
                  ">=": value >= bound}.get(cmp)
            if not ok:
                return False
        return True
    if op == "cidr":
        try:
            return ipaddress.ip_address(value) in ipaddress.ip_network(arg, strict=False)
        except (ValueError, TypeError):
            return False
    raise InvalidPattern(f"Event pattern is not valid. Reason: Unrecognized match type {op}")
