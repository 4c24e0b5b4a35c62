"""CloudFormation's intrinsic functions and conditions, evaluated as CloudFormation
does: ``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::Join``, ``Fn::Select``, ``Fn::Split``,
``Fn::If``, ``Fn::Equals``, ``Fn::And``, ``Fn::Or``, ``Fn::Not``, ``Fn::FindInMap``,
``Fn::Base64``, ``Fn::GetAZs``, ``Fn::Cidr``, ``Fn::Length``, ``Fn::ToJsonString``;
``Fn::ImportValue`` is refused clearly (unkai runs one stack, with no exports to
import from)."""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Callable
from typing import Any

Path_ = tuple[Any, ...]
ErrorFn = Callable[[str, Path_], Exception]


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


class Placeholder(str):
    """A value known only once resources exist (when validating): functions pass it through."""
_SUB_VAR = re.compile(r"\$\{([^}]*)\}")
CONDITION_FUNCTIONS = ("Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not", "Condition")


def partition_of(region: str) -> tuple[str, str]:
    """(partition, URL suffix) for a region."""
    if region.startswith("cn-"):
        return "aws-cn", "amazonaws.com.cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov", "amazonaws.com"
    return "aws", "amazonaws.com"


def pseudo_parameters(region: str, account: str, stack_name: str, stack_id: str) -> dict[str, Any]:
    partition, suffix = partition_of(region)
    return {
        "AWS::Region": region, "AWS::AccountId": account, "AWS::StackName": stack_name, "AWS::StackId": stack_id,
        "AWS::Partition": partition, "AWS::URLSuffix": suffix, "AWS::NotificationARNs": [],
    }


def is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key, arg = next(iter(value.items()))
    if key == "Condition":  # also an IAM statement's key: a function only when it names a condition
        return isinstance(arg, str)
    return key == "Ref" or key.startswith("Fn::")


class Resolver:
    """Evaluates intrinsics against parameters, mappings, conditions and the resources made
    so far. ``resource(logical_id)`` returns ``(ref, attributes)`` for a created resource,
    or None while it does not exist (then ``placeholders`` decides: a readable stand-in
    for ``unkai validate``, or an error)."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, Any], pseudo: dict[str, Any],
                 resource: Callable[[str], tuple[Any, dict[str, Any]] | None], error: ErrorFn,
                 placeholders: bool = False) -> None:
        self.template = template
        self.parameters = parameters
        self.pseudo = pseudo
        self.resource = resource
        self.error = error
        self.placeholders = placeholders
        self.resources = template.get("Resources") or {}
        self.mappings = template.get("Mappings") or {}
        self.condition_defs = template.get("Conditions") or {}
        self._conditions: dict[str, bool] = {}
        self._evaluating: list[str] = []

    # -- conditions ---------------------------------------------------------------

    def condition(self, name: Any, path: Path_) -> bool:
        if not isinstance(name, str) or name not in self.condition_defs:
            raise self.error(f"Template format error: Unresolved condition dependency {name} in {path[-1] if path else 'template'}", path)
        if name in self._conditions:
            return self._conditions[name]
        if name in self._evaluating:
            raise self.error(f"Circular dependency between conditions: {' -> '.join(self._evaluating + [name])}",
                             ("Conditions", name))
        self._evaluating.append(name)
        try:
            value = self._condition_value(self.condition_defs[name], ("Conditions", name))
        finally:
            self._evaluating.pop()
        self._conditions[name] = value
        return value

    def _condition_value(self, expr: Any, path: Path_) -> bool:
        if isinstance(expr, bool):
            return expr
        if isinstance(expr, str) and expr.lower() in ("true", "false"):
            return expr.lower() == "true"
        if not is_intrinsic(expr) or next(iter(expr)) not in CONDITION_FUNCTIONS:
            raise self.error("Template error: a condition must be Fn::Equals, Fn::And, Fn::Or, Fn::Not or "
                             "Condition", path)
        value = self.resolve(expr, path)
        return bool(value)

    # -- the general case ---------------------------------------------------------

    # Replaces CloudFormation's dynamic references ({{resolve:ssm:...}}, {{resolve:secretsmanager:...}})
    # in strings when resources are created (set by the engine; None while planning).
    dynamic: Callable[[str], str] | None = None

    def resolve(self, value: Any, path: Path_ = ()) -> Any:
        """``value`` with every intrinsic evaluated; ``AWS::NoValue`` removed from mappings and lists."""
        if isinstance(value, str) and self.dynamic is not None and "{{resolve:" in value:
            try:
                return self.dynamic(value)
            except ValueError as exc:
                raise self.error(str(exc), path) from None
        if isinstance(value, dict):
            if is_intrinsic(value):
                key, arg = next(iter(value.items()))
                fn = _FUNCTIONS.get(key)
                if fn is None:
                    raise self.error(f"Template format error: unsupported function {key}", path)
                return fn(self, arg, path + (key,))
            out = {}
            for k, v in value.items():
                r = self.resolve(v, path + (k,))
                if r is not NO_VALUE:
                    out[k] = r
            return out
        if isinstance(value, list):
            out_list = []
            for i, v in enumerate(value):
                r = self.resolve(v, path + (i,))
                if r is not NO_VALUE:
                    out_list.append(r)
            return out_list
        return value

    def prune(self, value: Any, path: Path_ = ()) -> Any:
        """Apply only ``Fn::If`` (and drop ``AWS::NoValue``) so dependencies follow the chosen branches."""
        if isinstance(value, dict):
            if len(value) == 1 and "Fn::If" in value:
                return self.prune(self._if_branch(value["Fn::If"], path + ("Fn::If",)), path)
            if value == {"Ref": "AWS::NoValue"}:
                return NO_VALUE
            out = {}
            for k, v in value.items():
                r = self.prune(v, path + (k,))
                if r is not NO_VALUE:
                    out[k] = r
            return out
        if isinstance(value, list):
            return [r for i, v in enumerate(value) if (r := self.prune(v, path + (i,))) is not NO_VALUE]
        return value

    def _if_branch(self, arg: Any, path: Path_) -> Any:
        if not isinstance(arg, list) or len(arg) != 3:
            raise self.error("Template error: Fn::If requires a list of [condition, value if true, value if false]",
                             path)
        return arg[1] if self.condition(arg[0], path) else arg[2]

    # -- references ---------------------------------------------------------------

    def ref(self, name: Any, path: Path_) -> Any:
        if not isinstance(name, str):
            raise self.error("Template format error: Ref needs the name of a parameter or resource", path)
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            made = self.resource(name)
            if made is None:
                return self._missing(name, None, path)
            return made[0]
        raise self.error(f"Template format error: Unresolved resource dependencies [{name}] in the Resources block "
                         "of the template", path)

    def get_att(self, name: str, attribute: str, path: Path_) -> Any:
        if name not in self.resources:
            raise self.error(f"Template error: instance of Fn::GetAtt references undefined resource {name}", path)
        made = self.resource(name)
        if made is None:
            return self._missing(name, attribute, path)
        attrs = made[1]
        if attribute in attrs:
            return attrs[attribute]
        raise self.error(f"Template error: resource {name} does not support attribute type {attribute} in Fn::GetAtt",
                         path)

    def _missing(self, name: str, attribute: str | None, path: Path_) -> Any:
        if self.placeholders:
            return Placeholder(f"{{{name}.{attribute}}}" if attribute else f"{{{name}}}")
        raise self.error(f"{name} was not created, so {'its ' + attribute if attribute else 'Ref ' + name} "
                         "cannot be resolved", path)

    def references(self, value: Any) -> set[str]:
        """The resources ``value`` refers to (Ref, Fn::GetAtt, Fn::Sub), after ``prune``."""
        found: set[str] = set()
        self._collect(value, found)
        return found & set(self.resources)

    def _collect(self, value: Any, found: set[str]) -> None:
        if isinstance(value, dict):
            if len(value) == 1:
                key, arg = next(iter(value.items()))
                if key == "Ref" and isinstance(arg, str):
                    found.add(arg)
                    return
                if key == "Fn::GetAtt":
                    if isinstance(arg, list) and arg and isinstance(arg[0], str):
                        found.add(arg[0])
                    elif isinstance(arg, str):
                        found.add(arg.split(".", 1)[0])
                    return
                if key == "Fn::Sub":
                    text, variables = (arg, {}) if isinstance(arg, str) else (arg + [None, None])[:2]
                    if isinstance(text, str):
                        for var in _SUB_VAR.findall(text):
                            if not var.startswith("!") and var not in (variables or {}):
                                found.add(var.split(".", 1)[0])
                    if isinstance(variables, dict):
                        self._collect(variables, found)
                    return
            for v in value.values():
                self._collect(v, found)
        elif isinstance(value, list):
            for v in value:
                self._collect(v, found)


def _string(r: Resolver, value: Any, path: Path_, fn: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise r.error(f"Template error: every value of {fn} must resolve to a string, not {json.dumps(value)}", path)
    return value


def _fn_ref(r: Resolver, arg: Any, path: Path_) -> Any:
    return r.ref(r.resolve(arg, path) if isinstance(arg, dict) else arg, path)


def _fn_get_att(r: Resolver, arg: Any, path: Path_) -> Any:
    if isinstance(arg, str):
        arg = arg.split(".", 1)
    if not isinstance(arg, list) or len(arg) != 2:
        raise r.error("Template error: Fn::GetAtt needs [LogicalId, Attribute]", path)
    name, attribute = arg[0], r.resolve(arg[1], path)
    if not isinstance(name, str) or not isinstance(attribute, str):
        raise r.error("Template error: Fn::GetAtt needs [LogicalId, Attribute]", path)
    return r.get_att(name, attribute, path)


def _fn_sub(r: Resolver, arg: Any, path: Path_) -> Any:
    if isinstance(arg, str):
        text, variables = arg, {}
    elif isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str) and isinstance(arg[1], dict):
        text, variables = arg[0], r.resolve(arg[1], path + (1,))
    else:
        raise r.error("Template error: Fn::Sub needs a string, or [string, {variables}]", path)

    stand_in = False

    def one(m: re.Match) -> str:
        nonlocal stand_in
        text = _sub_one(m)
        stand_in = stand_in or isinstance(text, Placeholder)
        return text

    def _sub_one(m: re.Match) -> str:
        name = m.group(1).strip()
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name in variables:
            return _string(r, variables[name], path, "Fn::Sub")
        if name in r.pseudo or name in r.parameters or "." not in name:
            value = r.ref(name, path)
            if isinstance(value, list):
                raise r.error(f"Template error: variable {name} in Fn::Sub is a list; use Fn::Join", path)
            return _string(r, value, path, "Fn::Sub")
        res, attribute = name.split(".", 1)
        return _string(r, r.get_att(res, attribute, path), path, "Fn::Sub")

    out = _SUB_VAR.sub(one, text)
    return Placeholder(out) if stand_in else out  # a stand-in stays one: Fn::Split/Select wait for the real value


def _fn_join(r: Resolver, arg: Any, path: Path_) -> str:
    if not isinstance(arg, list) or len(arg) != 2:
        raise r.error("Template error: Fn::Join needs [delimiter, [values]]", path)
    delimiter, values = arg[0], r.resolve(arg[1], path + (1,))
    if isinstance(values, Placeholder):
        return values
    if not isinstance(delimiter, str) or not isinstance(values, list):
        raise r.error("Template error: Fn::Join needs [delimiter, [values]]", path)
    out = delimiter.join(_string(r, v, path, "Fn::Join") for v in values)
    return Placeholder(out) if any(isinstance(v, Placeholder) for v in values) else out


def _fn_select(r: Resolver, arg: Any, path: Path_) -> Any:
    if not isinstance(arg, list) or len(arg) != 2:
        raise r.error("Template error: Fn::Select needs [index, [values]]", path)
    index, values = r.resolve(arg[0], path + (0,)), r.resolve(arg[1], path + (1,))
    if isinstance(values, Placeholder):
        return values
    try:
        i = int(index)
    except (TypeError, ValueError):
        raise r.error(f"Template error: Fn::Select index {index!r} is not a number", path) from None
    if not isinstance(values, list):
        raise r.error("Template error: Fn::Select needs a list to select from", path)
    if not 0 <= i < len(values):
        raise r.error(f"Template error: Fn::Select cannot select nonexistent value at index {i}", path)
    return values[i]


def _fn_split(r: Resolver, arg: Any, path: Path_) -> list[str]:
    if not isinstance(arg, list) or len(arg) != 2:
        raise r.error("Template error: Fn::Split needs [delimiter, string]", path)
    delimiter, text = arg[0], r.resolve(arg[1], path + (1,))
    if not isinstance(delimiter, str) or not delimiter:
        raise r.error("Template error: Fn::Split needs a delimiter", path)
    if isinstance(text, Placeholder):  # split once the resource exists, not its stand-in
        return text
    return _string(r, text, path, "Fn::Split").split(delimiter)


def _fn_if(r: Resolver, arg: Any, path: Path_) -> Any:
    return r.resolve(r._if_branch(arg, path), path)


def _fn_equals(r: Resolver, arg: Any, path: Path_) -> bool:
    if not isinstance(arg, list) or len(arg) != 2:
        raise r.error("Template error: Fn::Equals needs [value, value]", path)
    a, b = r.resolve(arg[0], path + (0,)), r.resolve(arg[1], path + (1,))
    norm = lambda v: v if isinstance(v, (list, dict)) else _string(r, v, path, "Fn::Equals")  # noqa: E731
    return norm(a) == norm(b)


def _conditions(r: Resolver, arg: Any, path: Path_, fn: str) -> list[bool]:
    if not isinstance(arg, list) or (fn != "Fn::Not" and not 2 <= len(arg) <= 10) or (fn == "Fn::Not" and len(arg) != 1):
        raise r.error(f"Template error: {fn} needs {'one condition' if fn == 'Fn::Not' else '2 to 10 conditions'} "
                      "in a list", path)
    return [r._condition_value(c, path + (i,)) for i, c in enumerate(arg)]


def _fn_condition(r: Resolver, arg: Any, path: Path_) -> bool:
    return r.condition(arg, path)


def _fn_find_in_map(r: Resolver, arg: Any, path: Path_) -> Any:
    if not isinstance(arg, list) or len(arg) not in (3, 4):
        raise r.error("Template error: Fn::FindInMap needs [MapName, TopLevelKey, SecondLevelKey]", path)
    keys = [r.resolve(a, path + (i,)) for i, a in enumerate(arg[:3])]
    default = arg[3].get("DefaultValue", NO_VALUE) if len(arg) == 4 and isinstance(arg[3], dict) else NO_VALUE
    table: Any = r.mappings
    for i, key in enumerate(keys):
        key = _string(r, key, path, "Fn::FindInMap")
        if not isinstance(table, dict) or key not in table:
            if default is not NO_VALUE:
                return r.resolve(default, path + (3,))
            what = ["Mapping", "Key", "Key"][i]
            raise r.error(f"Template error: Unable to get mapping for {'::'.join(map(str, keys[: i + 1]))}"
                          if i else f"Template error: {what} named '{key}' not found in Mappings", path)
        table = table[key]
    return table


def _fn_base64(r: Resolver, arg: Any, path: Path_) -> str:
    return base64.b64encode(_string(r, r.resolve(arg, path), path, "Fn::Base64").encode()).decode()


def _fn_get_azs(r: Resolver, arg: Any, path: Path_) -> list[str]:
    region = r.resolve(arg, path) or r.pseudo["AWS::Region"]
    return [f"{region}{z}" for z in "abc"]


def _fn_cidr(r: Resolver, arg: Any, path: Path_) -> list[str]:
    if not isinstance(arg, list) or len(arg) != 3:
        raise r.error("Template error: Fn::Cidr needs [ipBlock, count, cidrBits]", path)
    block, count, bits = (r.resolve(a, path + (i,)) for i, a in enumerate(arg))
    if isinstance(block, Placeholder):
        return [block]
    try:
        net = ipaddress.ip_network(str(block), strict=False)
        count, bits = int(count), int(bits)
        subnets = net.subnets(new_prefix=net.max_prefixlen - bits)
        out = []
        for _ in range(count):
            out.append(str(next(subnets)))
        return out
    except (ValueError, StopIteration) as exc:
        raise r.error(f"Template error: Fn::Cidr cannot split {block} into {count} /{bits}-bit blocks ({exc})",
                      path) from None


def _fn_length(r: Resolver, arg: Any, path: Path_) -> int:
    value = r.resolve(arg, path)
    if isinstance(value, Placeholder):
        return 0
    if not isinstance(value, list):
        raise r.error("Template error: Fn::Length needs a list", path)
    return len(value)


def _fn_to_json_string(r: Resolver, arg: Any, path: Path_) -> str:
    return json.dumps(r.resolve(arg, path), separators=(",", ":"))


def _fn_import_value(r: Resolver, arg: Any, path: Path_) -> Any:
    raise r.error("Fn::ImportValue is not supported: unkai runs one stack, so there is no other stack's export to "
                  "import. Pass the value as a parameter instead.", path)


def _fn_transform(r: Resolver, arg: Any, path: Path_) -> Any:
    raise r.error("Fn::Transform (AWS::Include and macros) is not supported by unkai", path)


def _fn_for_each(r: Resolver, arg: Any, path: Path_) -> Any:
    raise r.error("Fn::ForEach (AWS::LanguageExtensions) is not supported by unkai", path)


_FUNCTIONS: dict[str, Callable[[Resolver, Any, Path_], Any]] = {
    "Ref": _fn_ref,
    "Condition": _fn_condition,
    "Fn::GetAtt": _fn_get_att,
    "Fn::Sub": _fn_sub,
    "Fn::Join": _fn_join,
    "Fn::Select": _fn_select,
    "Fn::Split": _fn_split,
    "Fn::If": _fn_if,
    "Fn::Equals": _fn_equals,
    "Fn::And": lambda r, a, p: all(_conditions(r, a, p, "Fn::And")),
    "Fn::Or": lambda r, a, p: any(_conditions(r, a, p, "Fn::Or")),
    "Fn::Not": lambda r, a, p: not _conditions(r, a, p, "Fn::Not")[0],
    "Fn::FindInMap": _fn_find_in_map,
    "Fn::Base64": _fn_base64,
    "Fn::GetAZs": _fn_get_azs,
    "Fn::Cidr": _fn_cidr,
    "Fn::Length": _fn_length,
    "Fn::ToJsonString": _fn_to_json_string,
    "Fn::ImportValue": _fn_import_value,
    "Fn::Transform": _fn_transform,
    "Fn::ForEach": _fn_for_each,
}
