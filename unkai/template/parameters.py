"""Template parameters: the value each one takes (override, else default), checked
against its type and constraints with CloudFormation's messages, and
``AWS::SSM::Parameter::Value<...>`` types read from Parameter Store."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from unkai.template.loader import Source, TemplateError

_SSM_VALUE = re.compile(r"^AWS::SSM::Parameter::Value<(.+)>$")
_LIST = re.compile(r"^List<(.+)>$")
_PLAIN_TYPES = ("String", "Number", "List<Number>", "CommaDelimitedList", "AWS::SSM::Parameter::Name")

SsmLookup = Callable[[str], "str | None"]


def _is_valid_type(kind: str) -> bool:
    m = _SSM_VALUE.match(kind)
    if m:
        kind = m.group(1)
        if kind == "List<String>":
            return True
    return kind in _PLAIN_TYPES or kind.startswith("AWS::") or bool(_LIST.match(kind) and
                                                                     _LIST.match(kind).group(1).startswith("AWS::"))


def _is_list(kind: str) -> bool:
    return kind == "CommaDelimitedList" or kind.startswith("List<")


def _number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


def resolve(source: Source, overrides: dict[str, str], ssm: SsmLookup | None = None,
            strict: bool = True) -> tuple[dict[str, Any], dict[str, str]]:
    """(values for Ref, raw string values) of every declared parameter.

    Raises TemplateError naming the parameter and its line. Not ``strict`` (validating a
    template alone): values that are missing or in Parameter Store become placeholders
    and constraints are not checked."""
    declared = source.data.get("Parameters") or {}
    if not isinstance(declared, dict):
        raise source.error("Template format error: Parameters must be a mapping", ("Parameters",))
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(f"Parameters: [{', '.join(unknown)}] do not exist in the template", source.file)
    missing = [name for name, spec in declared.items()
               if name not in overrides and not (isinstance(spec, dict) and "Default" in spec)]
    if missing and strict:
        raise source.error(f"Parameters: [{', '.join(missing)}] must have values",
                           ("Parameters", missing[0]), where=f"Parameters.{missing[0]}")
    values: dict[str, Any] = {}
    raw: dict[str, str] = {}
    for name, spec in declared.items():
        path = ("Parameters", name)
        if not isinstance(spec, dict) or "Type" not in spec:
            raise source.error("Template format error: every parameter needs a Type", path)
        kind = str(spec["Type"])
        if not _is_valid_type(kind):
            raise source.error(f"Template format error: Unrecognized parameter type: {kind}", path + ("Type",))
        text = overrides[name] if name in overrides else spec.get("Default", "{" + name + "}")
        if isinstance(text, list):
            text = ",".join(str(t) for t in text)
        text = "" if text is None else (str(text).lower() if isinstance(text, bool) else str(text))
        raw[name] = text
        ssm_kind = _SSM_VALUE.match(kind)
        if ssm_kind:
            kind = ssm_kind.group(1)
            if not strict or ssm is None:  # validating alone: Parameter Store is not at hand
                values[name] = ["{ssm:" + text + "}"] if _is_list(kind) else "{ssm:" + text + "}"
                continue
            found = ssm(text)
            if found is None:
                raise source.error(f"Parameters [{name}] referenced by the template could not be resolved: "
                                   f"Unable to fetch parameters [{text}] from parameter store for this account.",
                                   path)
            text = found
        if strict:
            _check(source, name, spec, kind, text, path)
        if _is_list(kind):
            values[name] = [] if text == "" else [t.strip() if kind != "CommaDelimitedList" else t
                                                  for t in text.split(",")]
        elif kind == "Number":
            values[name] = _number(text) if _number(text) is not None else text
        else:
            values[name] = text
    return values, raw


def _check(source: Source, name: str, spec: dict, kind: str, text: str, path: tuple) -> None:
    described = spec.get("ConstraintDescription")

    def fail(message: str) -> TemplateError:
        if described:
            message = f"Parameter '{name}' failed to satisfy constraint: {described}"
        return source.error(message, path)

    items = text.split(",") if _is_list(kind) and text else [text]
    for item in items:
        item = item.strip() if kind != "CommaDelimitedList" else item
        if kind in ("Number", "List<Number>"):
            n = _number(item)
            if n is None:
                raise source.error(f"Parameter '{name}' must be a number not {item}", path)
            if "MinValue" in spec and n < float(spec["MinValue"]):
                raise fail(f"Parameter '{name}' must be a number not less than {spec['MinValue']}")
            if "MaxValue" in spec and n > float(spec["MaxValue"]):
                raise fail(f"Parameter '{name}' must be a number not greater than {spec['MaxValue']}")
        if "AllowedValues" in spec:
            allowed = [str(v).lower() if isinstance(v, bool) else str(v) for v in spec["AllowedValues"] or []]
            if item not in allowed:
                raise fail(f"Parameter '{name}' must be one of AllowedValues")
        if "AllowedPattern" in spec:
            try:
                pattern = re.compile(str(spec["AllowedPattern"]))
            except re.error as exc:
                raise source.error(f"Parameter '{name}' has an invalid AllowedPattern: {exc}",
                                   path + ("AllowedPattern",)) from None
            if not pattern.fullmatch(item):
                raise fail(f"Parameter '{name}' must match pattern {spec['AllowedPattern']}")
        if "MinLength" in spec and len(item) < int(spec["MinLength"]):
            raise fail(f"Parameter '{name}' must contain at least {spec['MinLength']} characters")
        if "MaxLength" in spec and len(item) > int(spec["MaxLength"]):
            raise fail(f"Parameter '{name}' must contain at most {spec['MaxLength']} characters")
