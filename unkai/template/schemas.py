"""Resource-type checks from CloudFormation's resource schemas, so ``unkai validate`` refuses
what deployment would (a ``Fn::GetAtt`` of an attribute the type does not have, a property
of the wrong type, an unknown or missing property) with CloudFormation's own words.

The schemas are AWS's registry schemas as cfn-lint ships them (with cfn-lint's list of
attributes that ``Fn::GetAtt`` reads beyond ``readOnlyProperties``), cut down to what the
checks need (property types, required properties, attributes) for the services unkai serves
or is adding, and kept in ``resource_schemas.json``. Regenerate it with
``python -m unkai.template.schemas PATH/TO/cfnlint`` (an unpacked cfn-lint wheel).

A compact spec is ``"s"`` string, ``"i"`` integer, ``"n"`` number, ``"b"`` boolean, ``"*"``
anything, ``[spec]`` a list of spec, ``{"m": spec}`` a map of spec, or ``{"p": {name: spec},
"r": [required], "x": 1}`` an object (``x``: other keys allowed).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

DATA = Path(__file__).with_name("resource_schemas.json")
PREFIXES = ("AWS::SQS::", "AWS::SNS::", "AWS::S3::", "AWS::DynamoDB::", "AWS::Lambda::", "AWS::ApiGateway::",
            "AWS::ApiGatewayV2::", "AWS::Events::", "AWS::Scheduler::", "AWS::SSM::", "AWS::Logs::", "AWS::IAM::",
            "AWS::SES::", "AWS::Cognito::", "AWS::Kinesis::", "AWS::KinesisFirehose::", "AWS::SecretsManager::",
            "AWS::KMS::", "AWS::CloudWatch::", "AWS::StepFunctions::", "AWS::AppConfig::", "AWS::Pipes::")
_INT = re.compile(r"^-?\d+$")
_NUM = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_NAMES = {"s": "String", "i": "Integer", "n": "Number", "b": "Boolean"}


@functools.lru_cache(maxsize=1)
def _schemas() -> dict[str, Any]:
    try:
        return json.loads(DATA.read_text())
    except (OSError, ValueError):
        return {}


def attributes(resource_type: str) -> list[str] | None:
    """The ``Fn::GetAtt`` attributes of a type (regular expressions), or None when no schema knows the type."""
    schema = _schemas().get(resource_type)
    return None if schema is None else schema["a"]


def has_attribute(resource_type: str, attribute: str) -> bool:
    found = attributes(resource_type)
    return found is None or any(re.fullmatch(a, attribute) for a in found)


def check_properties(resource_type: str, props: Any, skip: Callable[[Any], bool]) -> str | None:
    """CloudFormation's complaint about a resource's properties, or None. ``skip(value)`` says a value is
    not known yet (an intrinsic, or a stand-in for a resource not made yet): it is not checked."""
    schema = _schemas().get(resource_type)
    if schema is None:
        return None
    return _check({"p": schema["p"], "r": schema.get("r", [])}, props, "#", skip)


def _found(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, (int, float)):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "JSONArray"
    return "JSONObject"


def _check(spec: Any, value: Any, path: str, skip: Callable[[Any], bool]) -> str | None:
    if spec == "*" or skip(value):
        return None
    if isinstance(spec, str):
        ok = {"s": not isinstance(value, (dict, list)),
              "i": (isinstance(value, int) and not isinstance(value, bool)) or
                   (isinstance(value, str) and bool(_INT.match(value.strip()))),
              "n": (isinstance(value, (int, float)) and not isinstance(value, bool)) or
                   (isinstance(value, str) and bool(_NUM.match(value.strip()))),
              "b": isinstance(value, bool) or (isinstance(value, str) and value.lower() in ("true", "false"))}[spec]
        return None if ok else f"{path}: expected type: {_NAMES[spec]}, found: {_found(value)}"
    if isinstance(spec, list):
        if not isinstance(value, list):
            return f"{path}: expected type: JSONArray, found: {_found(value)}"
        for i, item in enumerate(value):
            problem = _check(spec[0], item, f"{path}/{i}", skip)
            if problem:
                return problem
        return None
    if not isinstance(value, dict):
        return f"{path}: expected type: JSONObject, found: {_found(value)}"
    if "m" in spec:
        for key, item in value.items():
            problem = _check(spec["m"], item, f"{path}/{key}", skip)
            if problem:
                return problem
        return None
    props = spec.get("p", {})
    for key in spec.get("r", []):
        if key not in value:
            return f"{path}: required key [{key}] not found"
    for key, item in value.items():
        if key not in props:
            if not spec.get("x"):
                return f"{path}: extraneous key [{key}] is not permitted"
            continue
        problem = _check(props[key], item, f"{path}/{key}", skip)
        if problem:
            return problem
    return None


# -- generating resource_schemas.json from cfn-lint's data (a development step) ----------------------------


def _compact(node: dict, schema: dict, depth: int) -> Any:
    if depth > 6:
        return "*"
    if "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/definitions/"):
            return "*"
        target = schema.get("definitions", {}).get(ref.split("/")[-1])
        return _compact(target, schema, depth + 1) if isinstance(target, dict) else "*"
    if any(k in node for k in ("oneOf", "anyOf", "allOf")) and "type" not in node and "properties" not in node:
        return "*"
    kind = node.get("type")
    if isinstance(kind, list):
        return "*"
    if kind == "string":
        return "s"
    if kind == "integer":
        return "i"
    if kind == "number":
        return "n"
    if kind == "boolean":
        return "b"
    if kind == "array":
        items = node.get("items")
        return [_compact(items, schema, depth + 1) if isinstance(items, dict) else "*"]
    if kind == "object" or "properties" in node:
        if "properties" not in node:
            patterns = node.get("patternProperties") or {}
            if len(patterns) == 1:
                return {"m": _compact(next(iter(patterns.values())), schema, depth + 1)}
            return "*"
        if any(k in node for k in ("oneOf", "anyOf", "allOf", "patternProperties")):
            extra = 1
        else:
            extra = 0 if node.get("additionalProperties") is False else 1
        out: dict[str, Any] = {"p": {k: _compact(v, schema, depth + 1) for k, v in node["properties"].items()
                                     if isinstance(v, dict)}}
        required = [r for r in node.get("required", []) if isinstance(r, str)]
        if required:
            out["r"] = required
        if extra:
            out["x"] = 1
        return out
    return "*"


def _getatt_lists(cfnlint: Path) -> tuple[list[str], dict[str, list[str]]]:
    import ast

    tree = ast.parse((cfnlint / "schema" / "_getatts.py").read_text())
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and \
                node.targets[0].id in ("_all_property_types", "_exceptions"):
            found[node.targets[0].id] = ast.literal_eval(node.value)
    return found["_all_property_types"], found["_exceptions"]


def generate(cfnlint: Path) -> dict[str, Any]:
    """The compact schemas for PREFIXES' types from an unpacked cfn-lint package directory."""
    data = cfnlint / "data" / "schemas"
    index = json.loads((data / "providers" / "us-east-1.json").read_text())
    all_props, exceptions = _getatt_lists(cfnlint)
    out: dict[str, Any] = {}
    for type_name, digest in sorted(index.items()):
        if not type_name.startswith(PREFIXES):
            continue
        schema = json.loads((data / "resources" / f"{digest}.json").read_text())
        props = {k: _compact(v, schema, 0) for k, v in (schema.get("properties") or {}).items()
                 if isinstance(v, dict)}
        read_only = [p.split("/", 2)[2].replace("/", ".") for p in schema.get("readOnlyProperties", [])
                     if p.startswith("/properties/")]
        attrs = [re.escape(a) for a in read_only]
        if type_name in all_props:
            attrs += [re.escape(k) for k, v in props.items() if not isinstance(v, (list, dict))]
            attrs += [re.escape(k) + r"\..*" for k, v in props.items() if isinstance(v, dict)]
        attrs += [re.escape(a) for a in exceptions.get(type_name, [])]
        entry: dict[str, Any] = {"a": sorted(set(attrs)), "p": {k: v for k, v in props.items()
                                                                if k not in read_only}}
        required = [r for r in schema.get("required", []) if r not in read_only]
        if required:
            entry["r"] = required
        out[type_name] = entry
    return out


if __name__ == "__main__":
    import sys

    DATA.write_text(json.dumps(generate(Path(sys.argv[1])), separators=(",", ":"), sort_keys=True) + "\n")
    print(f"wrote {DATA} ({DATA.stat().st_size} bytes)")
