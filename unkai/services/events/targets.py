"""Delivering an event to a rule's or a schedule's target: what the target receives
(``Input``, ``InputPath``, ``InputTransformer``). The hand-off to the service that
owns the target is the shared ``unkai.targets.deliver``."""

from __future__ import annotations

import json
import re
from typing import Any

_PATH_PART = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\['([^']+)'\]|\[\"([^\"]+)\"\]")
_VAR = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_MISSING = object()


def json_path(document: Any, path: str) -> Any:
    """The value at a simple JSONPath (``$``, ``$.detail.id``, ``$.resources[0]``), or None."""
    path = path.strip()
    if not path.startswith("$"):
        raise ValueError(f"invalid JSON path {path}")
    value = document
    rest = path[1:]
    pos = 0
    while pos < len(rest):
        m = _PATH_PART.match(rest, pos)
        if not m:
            raise ValueError(f"invalid JSON path {path}")
        pos = m.end()
        key, index = m.group(1) or m.group(3) or m.group(4), m.group(2)
        if index is not None:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else _MISSING
        else:
            value = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
        if value is _MISSING:
            return None
    return value


def check_target_input(target: dict[str, Any]) -> str | None:
    """Why a target's input settings are invalid, or None."""
    given = [k for k in ("Input", "InputPath", "InputTransformer") if target.get(k) is not None]
    if len(given) > 1:
        return "Only one of Input, InputPath, or InputTransformer must be provided."
    if target.get("Input") is not None:
        try:
            json.loads(target["Input"])
        except ValueError:
            return "Input must be valid JSON."
    transformer = target.get("InputTransformer")
    if transformer is not None:
        for name, path in (transformer.get("InputPathsMap") or {}).items():
            try:
                json_path({}, path)
            except ValueError:
                return f"Target {target.get('Id')} has an invalid InputPathsMap path for {name}: {path}"
    return None


def render(target: dict[str, Any], event: dict[str, Any], rule_arn: str, rule_name: str) -> str:
    """The text the target receives for ``event``."""
    if target.get("Input") is not None:
        return target["Input"]
    if target.get("InputPath"):
        return json.dumps(json_path(event, target["InputPath"]))
    transformer = target.get("InputTransformer")
    if transformer:
        values = {name: json_path(event, path) for name, path in (transformer.get("InputPathsMap") or {}).items()}
        values.update({"aws.events.rule-arn": rule_arn, "aws.events.rule-name": rule_name,
                       "aws.events.event": event, "aws.events.event.json": event,
                       "aws.events.event.ingestion-time": event.get("time")})
        return _fill(transformer.get("InputTemplate", ""), values)
    return json.dumps(event)


def _fill(template: str, values: dict[str, Any]) -> str:
    """InputTemplate: inside quotes a value goes in as text, outside as JSON (AWS's rule)."""
    def one(m: re.Match) -> str:
        name = m.group(1)
        if name not in values:
            return m.group(0)
        value = values[name]
        quoted = m.start() > 0 and template[m.start() - 1] == '"' and template[m.end():m.end() + 1] == '"'
        if quoted:
            text = value if isinstance(value, str) else json.dumps(value)
            return json.dumps(text)[1:-1]
        if isinstance(value, str) and not _is_json_template(template):
            return value
        return "null" if value is None else json.dumps(value)

    return _VAR.sub(one, template)


def _is_json_template(template: str) -> bool:
    return template.lstrip().startswith(("{", "["))
