"""From a template file to a plan: parameters resolved, SAM expanded, conditions
applied, and the resources in dependency order. Nothing is created here, so
``unkai validate`` runs exactly these checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from unkai.template import parameters as params_mod
from unkai.template import sam, schemas
from unkai.template.intrinsics import Placeholder, Resolver, pseudo_parameters
from unkai.template.loader import Source, TemplateError

TOP_LEVEL = ("AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Rules", "Mappings", "Conditions",
             "Transform", "Resources", "Outputs", "Hooks", "Globals")
RESOURCE_KEYS = ("Type", "Properties", "DependsOn", "Condition", "Metadata", "DeletionPolicy", "UpdateReplacePolicy",
                 "CreationPolicy", "UpdatePolicy", "Version")


@dataclass
class Plan:
    source: Source
    stack_name: str
    stack_id: str
    region: str
    account: str
    template: dict[str, Any]  # CloudFormation, after the SAM transform
    parameters: dict[str, Any]  # what Ref gives for each parameter
    raw_parameters: dict[str, str]
    order: list[str] = field(default_factory=list)  # resources to create, dependencies first
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # with Fn::If branches chosen
    depends: dict[str, set[str]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # those whose condition holds
    local_code: sam.LocalPaths | None = None

    @property
    def pseudo(self) -> dict[str, Any]:
        return pseudo_parameters(self.region, self.account, self.stack_name, self.stack_id)

    def error(self, message: str, path: tuple = ()) -> TemplateError:
        """An error located in the file the user wrote, even for resources SAM generated."""
        if len(path) >= 2 and path[0] == "Resources":
            logical_id = path[1]
            mine = (self.source.data.get("Resources") or {}).get(logical_id)
            expanded = (self.template.get("Resources") or {}).get(logical_id) or {}
            if not (isinstance(mine, dict) and mine.get("Type") == expanded.get("Type")):
                where_path, where = self.source.locate(logical_id)
                return self.source.error(message, where_path, where=where)
        return self.source.error(message, path)

    def resolver(self, resource: Callable[[str], tuple[Any, dict[str, Any]] | None],
                 placeholders: bool = False) -> Resolver:
        return Resolver(self.template, self.parameters, self.pseudo, resource, self.error, placeholders)

    def resource_line(self, logical_id: str) -> int | None:
        return self.error("", ("Resources", logical_id)).line


def make_plan(source: Source, stack_name: str, stack_id: str, region: str, account: str,
              overrides: dict[str, str], ssm: params_mod.SsmLookup | None = None, strict: bool = True) -> Plan:
    for key in source.data:
        if key not in TOP_LEVEL:
            raise source.error(f"Template format error: Invalid template property or properties [{key}]", (key,),
                               where=key)
    values, raw = params_mod.resolve(source, overrides, ssm, strict)
    pseudo = pseudo_parameters(region, account, stack_name, stack_id)
    sam_values = {k: ",".join(v) if isinstance(v, list) else str(v) for k, v in values.items()}
    sam_values.update({k: v for k, v in pseudo.items() if isinstance(v, str)})
    template, local_code = sam.expand(source, sam_values, region)
    plan = Plan(source, stack_name, stack_id, region, account, template, values, raw, local_code=local_code)
    _check_resources(plan)
    resolver = plan.resolver(lambda _: None, placeholders=True)
    for name in template.get("Conditions") or {}:
        resolver.condition(name, ("Conditions", name))
    included: dict[str, dict[str, Any]] = {}
    for logical_id, resource in template["Resources"].items():
        path = ("Resources", logical_id)
        if "Condition" in resource and not resolver.condition(resource["Condition"], path + ("Condition",)):
            continue
        included[logical_id] = resource
    for logical_id, resource in included.items():
        path = ("Resources", logical_id)
        pruned = dict(resource)
        pruned["Properties"] = resolver.prune(resource.get("Properties") or {}, path + ("Properties",))
        plan.resources[logical_id] = pruned
        refs = resolver.references(pruned["Properties"])
        excluded = sorted(refs - set(included))
        if excluded:
            raise plan.error(f"Template format error: Unresolved resource dependencies [{', '.join(excluded)}] in the "
                             "Resources block of the template (their conditions are false)", path)
        depends_on = resource.get("DependsOn") or []
        depends_on = [depends_on] if isinstance(depends_on, str) else depends_on
        for dep in depends_on:
            if dep not in template["Resources"]:
                raise plan.error(f"Template format error: Unresolved resource dependencies [{dep}] in the Resources "
                                 "block of the template", path + ("DependsOn",))
        plan.depends[logical_id] = (refs | {d for d in depends_on if d in included}) - {logical_id}
        if logical_id in refs:
            raise plan.error(f"Circular dependency between resources: [{logical_id}]", path)
    plan.order = _order(plan)
    for name, output in (template.get("Outputs") or {}).items():
        path = ("Outputs", name)
        if not isinstance(output, dict) or "Value" not in output:
            raise plan.error("Template format error: every Outputs member must contain a Value object", path)
        if "Condition" in output and not resolver.condition(output["Condition"], path + ("Condition",)):
            continue
        plan.outputs[name] = output
    # every reference and function checked now, with stand-ins for what resources will give
    for logical_id in plan.order:
        path = ("Resources", logical_id, "Properties")
        props = resolver.resolve(plan.resources[logical_id]["Properties"], path)
        problem = schemas.check_properties(plan.resources[logical_id]["Type"], props, _not_known_yet)
        if problem:
            raise plan.error(f"Properties validation failed for resource {logical_id} with message: {problem}", path)
    for name, output in plan.outputs.items():
        resolver.resolve(output["Value"], ("Outputs", name, "Value"))
    return plan


def _not_known_yet(value: Any) -> bool:
    """Values the schema check leaves alone: stand-ins for what resources will give, and local code."""
    return isinstance(value, Placeholder) or (isinstance(value, dict) and "LocalPath" in value)


def _check_resources(plan: Plan) -> None:
    resources = plan.template.get("Resources")
    for logical_id, resource in resources.items():
        path = ("Resources", logical_id)
        if not logical_id.isalnum():
            raise plan.error(f"Template format error: Resource name {logical_id} is non alphanumeric.", path)
        if not isinstance(resource, dict) or not isinstance(resource.get("Type"), str):
            raise plan.error("Template format error: [/Resources/" + logical_id + "] Every Resources object must "
                             "contain a Type member.", path)
        for key in resource:
            if key not in RESOURCE_KEYS:
                raise plan.error(f"Invalid template resource property '{key}'", path + (key,))
        props = resource.get("Properties")
        if props is not None and not isinstance(props, dict):
            raise plan.error("Properties must be a mapping", path + ("Properties",))
        if resource["Type"].startswith("AWS::Serverless::"):
            raise plan.error(f"{resource['Type']} needs the SAM transform: add "
                             "'Transform: AWS::Serverless-2016-10-31' to the template", path + ("Type",))


def _order(plan: Plan) -> list[str]:
    """Dependencies first; otherwise the template's order. Cycles are reported."""
    remaining = {lid: set(deps) for lid, deps in plan.depends.items()}
    order: list[str] = []
    done: set[str] = set()
    while remaining:
        ready = [lid for lid, deps in remaining.items() if deps <= done]
        if not ready:
            cycle = sorted(remaining)
            raise plan.error(f"Circular dependency between resources: [{', '.join(cycle)}]", ("Resources", cycle[0]))
        for lid in ready:
            order.append(lid)
            done.add(lid)
            del remaining[lid]
    return order
