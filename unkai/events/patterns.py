"""Event patterns, as EventBridge rules and Lambda's FilterCriteria write them:
``{"body": {"kind": ["order"], "total": [{"numeric": [">", 100]}]}}``.

``matches(pattern, event)`` tells whether an event (a dict) matches; ``check(pattern)``
raises ValueError for a pattern AWS would reject.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from typing import Any

_MISSING = object()


def check(pattern: Any) -> None:
    if not isinstance(pattern, dict):
        raise ValueError("Event pattern must be a JSON object")
    for key, value in pattern.items():
        if key in ("$or",):
            if not isinstance(value, list):
                raise ValueError("$or must be an array")
            for sub in value:
                check(sub)
        elif isinstance(value, dict):
            check(value)
        elif not isinstance(value, list):
            raise ValueError(f"Match value must be an array for key '{key}'")


def matches(pattern: dict, event: Any) -> bool:
    for key, rule in pattern.items():
        if key == "$or":
            if not any(matches(sub, event) for sub in rule):
                return False
            continue
        value = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(rule, dict):
            if value is _MISSING or not isinstance(value, dict):
                return False
            if not matches(rule, value):
                return False
        elif not _match_list(rule, value):
            return False
    return True


def _match_list(rules: list, value: Any) -> bool:
    if isinstance(value, list):
        if not value:
            return any(isinstance(r, dict) and r.get("exists") is False for r in rules)
        return any(_match_one(rule, v) for rule in rules for v in value)
    return any(_match_one(rule, value) for rule in rules)


def _match_one(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict):
        return _match_operator(rule, value)
    if value is _MISSING:
        return False
    if rule is None:
        return value is None
    if isinstance(rule, bool) or isinstance(value, bool):
        return rule is value
    if isinstance(rule, (int, float)) and isinstance(value, (int, float)):
        return float(rule) == float(value)
    return rule == value


def _match_operator(rule: dict, value: Any) -> bool:
    op, arg = next(iter(rule.items()))
    if op == "exists":
        return (value is not _MISSING) == bool(arg)
    if value is _MISSING:
        return False
    if op == "prefix":
        if isinstance(arg, dict):
            return isinstance(value, str) and value.lower().startswith(str(arg.get("equals-ignore-case", "")).lower())
        return isinstance(value, str) and value.startswith(arg)
    if op == "suffix":
        if isinstance(arg, dict):
            return isinstance(value, str) and value.lower().endswith(str(arg.get("equals-ignore-case", "")).lower())
        return isinstance(value, str) and value.endswith(arg)
    if op == "equals-ignore-case":
        return isinstance(value, str) and value.lower() == str(arg).lower()
    if op == "wildcard":
        return isinstance(value, str) and fnmatch.fnmatchcase(value, arg)
    if op == "anything-but":
        if isinstance(arg, dict):
            return not _match_operator(arg, value)
        banned = arg if isinstance(arg, list) else [arg]
        return not any(_match_one(b, value) for b in banned)
    if op == "numeric":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        for i in range(0, len(arg) - 1, 2):
            cmp, bound = arg[i], float(arg[i + 1])
            ok = {"=": value == bound, "<": value < bound, "<=": value <= bound, ">": value > bound,
                  ">=": value >= bound}.get(cmp, False)
            if not ok:
                return False
        return True
    if op == "cidr":
        try:
            return ipaddress.ip_address(value) in ipaddress.ip_network(arg, strict=False)
        except ValueError:
            return False
    return False
