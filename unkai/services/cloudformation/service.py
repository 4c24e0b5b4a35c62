"""AWS CloudFormation, read side: the stack ``unkai up TEMPLATE`` deployed, as
``describe-stacks``, ``list-stack-resources`` and friends show it, and template
validation with the same checks ``unkai validate`` runs. Stacks are created by the
template engine (``unkai/template/``), not by CreateStack."""

from __future__ import annotations

import json
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext, Service
from unkai.services.cloudformation.stacks import Stack, StackResource, Stacks

PAGE = 100


def _not_found(name: str) -> ServiceError:
    return ServiceError("ValidationError", f"Stack with id {name} does not exist")


class CloudFormation(Service):
    name = "cloudformation"

    def check_unimplemented(self, ctx: RequestContext, operation: str, params: dict) -> None:
        """An operation unkai does not serve still answers ValidationError "Stack with id NAME does not exist" first, as AWS does."""
        if isinstance(params.get("StackName"), str):
            self._stack(ctx, params["StackName"])

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.stacks = Stacks(self.store)

    def _stack(self, ctx: RequestContext, name: str | None) -> Stack:
        if not name:
            raise ServiceError("ValidationError", "1 validation error detected: Value null at 'stackName' failed to "
                               "satisfy constraint: Member must not be null")
        stack = self.stacks.find(ctx.account, ctx.region, name)
        if stack is None:
            raise _not_found(name)
        return stack

    # -- stacks -------------------------------------------------------------------

    def describe_stacks(self, ctx: RequestContext, params: dict) -> dict:
        if params.get("StackName"):
            stacks = [self._stack(ctx, params["StackName"])]
        else:
            stacks = [s for s in self.stacks.all(ctx.account, ctx.region) if s.deleted is None]
        return {"Stacks": [self._describe(s) for s in stacks]}

    def _describe(self, stack: Stack) -> dict[str, Any]:
        out: dict[str, Any] = {
            "StackId": stack.stack_id, "StackName": stack.name, "CreationTime": stack.created,
            "StackStatus": stack.status, "DisableRollback": True, "NotificationARNs": [],
            "Parameters": [{k: v for k, v in p.items()} for p in stack.parameters],
            "Outputs": stack.outputs, "Tags": [], "EnableTerminationProtection": False,
            "DriftInformation": {"StackDriftStatus": "NOT_CHECKED"},
            "Capabilities": _capabilities(stack.processed),
        }
        return out | _when_and_why(stack, "Description")

    def list_stacks(self, ctx: RequestContext, params: dict) -> dict:
        wanted = set(params.get("StackStatusFilter") or [])
        summaries = []
        for s in self.stacks.all(ctx.account, ctx.region):
            if wanted and s.status not in wanted:
                continue
            summaries.append({"StackId": s.stack_id, "StackName": s.name, "CreationTime": s.created,
                              "StackStatus": s.status, "DriftInformation": {"StackDriftStatus": "NOT_CHECKED"}}
                             | _when_and_why(s, "TemplateDescription"))
        return {"StackSummaries": summaries}

    # -- resources ----------------------------------------------------------------

    def list_stack_resources(self, ctx: RequestContext, params: dict) -> dict:
        stack = self._stack(ctx, params.get("StackName"))
        resources = list(self.stacks.resources(stack.stack_id).values())
        start = _page_start(params.get("NextToken"))
        page = resources[start:start + PAGE]
        out: dict[str, Any] = {"StackResourceSummaries": [_summary(r) for r in page]}
        if start + PAGE < len(resources):
            out["NextToken"] = str(start + PAGE)
        return out

    def describe_stack_resources(self, ctx: RequestContext, params: dict) -> dict:
        if params.get("StackName"):
            stack = self._stack(ctx, params["StackName"])
        elif params.get("PhysicalResourceId"):
            stack = self._by_physical_id(ctx, params["PhysicalResourceId"])
        else:
            raise ServiceError("ValidationError", "Either StackName or PhysicalResourceId must be specified.")
        resources = self.stacks.resources(stack.stack_id).values()
        if params.get("LogicalResourceId"):
            resources = [r for r in resources if r.logical_id == params["LogicalResourceId"]]
        if params.get("PhysicalResourceId"):
            resources = [r for r in resources if r.physical_id == params["PhysicalResourceId"]]
        return {"StackResources": [_resource(stack, r) for r in resources]}

    def _by_physical_id(self, ctx: RequestContext, physical_id: str) -> Stack:
        for stack in self.stacks.all(ctx.account, ctx.region):
            if stack.deleted is None and any(r.physical_id == physical_id
                                             for r in self.stacks.resources(stack.stack_id).values()):
                return stack
        raise ServiceError("ValidationError", f"Stack for {physical_id} does not exist")

    def describe_stack_resource(self, ctx: RequestContext, params: dict) -> dict:
        stack = self._stack(ctx, params.get("StackName"))
        res = self.stacks.resources(stack.stack_id).get(params.get("LogicalResourceId") or "")
        if res is None:
            raise ServiceError("ValidationError", f"Resource {params.get('LogicalResourceId')} does not exist for "
                               f"stack {params.get('StackName')}")
        detail = _resource(stack, res)
        detail["LastUpdatedTimestamp"] = detail.pop("Timestamp")
        metadata = ((stack.processed.get("Resources") or {}).get(res.logical_id) or {}).get("Metadata")
        if metadata is not None:
            detail["Metadata"] = json.dumps(metadata)
        return {"StackResourceDetail": detail}

    # -- writes: stacks come from `unkai up TEMPLATE` -------------------------------

    def _deployed_by_unkai_up(self, ctx: RequestContext, params: dict) -> dict:
        raise ServiceError("ValidationError", f"unkai deploys stacks from `unkai up TEMPLATE` (and re-applies the "
                           f"template when it changes); {ctx.operation} is not supported.")

    create_stack = update_stack = delete_stack = _deployed_by_unkai_up
    create_change_set = execute_change_set = _deployed_by_unkai_up

    # -- templates ----------------------------------------------------------------

    def get_template(self, ctx: RequestContext, params: dict) -> dict:
        stack = self._stack(ctx, params.get("StackName"))
        stage = params.get("TemplateStage") or "Original"
        if stage not in ("Original", "Processed"):
            raise ServiceError("ValidationError", f"1 validation error detected: Value '{stage}' at 'templateStage' "
                               "failed to satisfy constraint: Member must satisfy enum value set: [Original, Processed]")
        body = stack.template if stage == "Original" else json.dumps(stack.processed, indent=2)
        return {"TemplateBody": body, "StagesAvailable": ["Original", "Processed"]}

    def validate_template(self, ctx: RequestContext, params: dict) -> dict:
        data, plan = self._checked_template(ctx, params)
        declared = data.get("Parameters") or {}
        out: dict[str, Any] = {"Parameters": [
            {k: v for k, v in (("ParameterKey", name), ("DefaultValue", _str(spec.get("Default"))),
                               ("NoEcho", str(spec.get("NoEcho", "false")).lower() == "true"),
                               ("Description", spec.get("Description"))) if v is not None}
            for name, spec in declared.items()
        ]}
        if isinstance(data.get("Description"), str):
            out["Description"] = data["Description"]
        caps = _capabilities(plan.template, data)
        if caps:
            out["Capabilities"] = caps
            out["CapabilitiesReason"] = "The following resource(s) require capabilities: " + \
                                        ", ".join(sorted({r["Type"] for r in (plan.template.get("Resources") or {}).values()
                                                          if r.get("Type", "").startswith("AWS::IAM::")})) \
                if any(c.endswith("IAM") for c in caps) else "The template contains a transform"
        transforms = data.get("Transform")
        if transforms:
            out["DeclaredTransforms"] = transforms if isinstance(transforms, list) else [transforms]
        return out

    def get_template_summary(self, ctx: RequestContext, params: dict) -> dict:
        if params.get("StackName"):
            stack = self._stack(ctx, params["StackName"])
            params = {"TemplateBody": stack.template}
        data, plan = self._checked_template(ctx, params)
        declared = data.get("Parameters") or {}
        out: dict[str, Any] = {"Parameters": []}
        for name, spec in declared.items():
            entry: dict[str, Any] = {"ParameterKey": name, "ParameterType": str(spec.get("Type")),
                                     "NoEcho": str(spec.get("NoEcho", "false")).lower() == "true",
                                     "ParameterConstraints": {}}
            if "Default" in spec:
                entry["DefaultValue"] = _str(spec["Default"])
            if "Description" in spec:
                entry["Description"] = spec["Description"]
            if "AllowedValues" in spec:
                entry["ParameterConstraints"]["AllowedValues"] = [_str(v) for v in spec["AllowedValues"]]
            out["Parameters"].append(entry)
        if isinstance(data.get("Description"), str):
            out["Description"] = data["Description"]
        out["ResourceTypes"] = sorted({r["Type"] for r in plan.template["Resources"].values()})
        out["Version"] = str(data.get("AWSTemplateFormatVersion", "2010-09-09"))
        caps = _capabilities(plan.template, data)
        if caps:
            out["Capabilities"] = caps
        if data.get("Transform"):
            t = data["Transform"]
            out["DeclaredTransforms"] = t if isinstance(t, list) else [t]
        return out

    def _checked_template(self, ctx: RequestContext, params: dict) -> tuple[dict, Any]:
        from unkai.template.loader import TemplateError, parse
        from unkai.template.plan import make_plan

        body = params.get("TemplateBody")
        if params.get("TemplateURL") and not body:
            raise ServiceError("ValidationError", "unkai reads templates from TemplateBody; TemplateURL is not "
                               "supported")
        if not body:
            raise ServiceError("ValidationError", "Either Template URL or Template Body must be specified.")
        try:
            source = parse(body)
            plan = make_plan(source, "validation", "arn:aws:cloudformation:validation", ctx.region, ctx.account,
                             {}, strict=False)
        except TemplateError as exc:
            message = str(exc)
            if not message.startswith("Template"):
                message = "Template format error: " + message
            raise ServiceError("ValidationError", message) from None
        return source.data, plan


def _when_and_why(stack: Stack, description_key: str) -> dict[str, Any]:
    """A stack's optional members: description, update and deletion times, status reason."""
    found = {description_key: stack.description, "LastUpdatedTime": stack.updated, "DeletionTime": stack.deleted,
             "StackStatusReason": stack.reason}
    return {k: v for k, v in found.items() if v}


def _page_start(token: str | None) -> int:
    if not token:
        return 0
    try:
        return max(0, int(token))
    except ValueError:
        raise ServiceError("ValidationError", "Invalid NextToken") from None


def _str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _capabilities(processed: dict[str, Any], original: dict[str, Any] | None = None) -> list[str]:
    caps = []
    resources = (processed.get("Resources") or {}).values()
    iam = [r for r in resources if isinstance(r, dict) and str(r.get("Type", "")).startswith("AWS::IAM::")]
    if iam:
        named = any(k in (r.get("Properties") or {}) for r in iam for k in ("RoleName", "UserName", "GroupName",
                                                                           "ManagedPolicyName"))
        caps.append("CAPABILITY_NAMED_IAM" if named else "CAPABILITY_IAM")
    if original is not None and original.get("Transform"):
        caps.append("CAPABILITY_AUTO_EXPAND")
    return caps


def _summary(res: StackResource) -> dict[str, Any]:
    out: dict[str, Any] = {"LogicalResourceId": res.logical_id, "ResourceType": res.type,
                           "LastUpdatedTimestamp": res.updated, "ResourceStatus": res.status,
                           "DriftInformation": {"StackResourceDriftStatus": "NOT_CHECKED"}}
    if res.physical_id:
        out["PhysicalResourceId"] = res.physical_id
    if res.reason:
        out["ResourceStatusReason"] = res.reason
    return out


def _resource(stack: Stack, res: StackResource) -> dict[str, Any]:
    out: dict[str, Any] = {"StackName": stack.name, "StackId": stack.stack_id, "LogicalResourceId": res.logical_id,
                           "ResourceType": res.type, "Timestamp": res.updated, "ResourceStatus": res.status,
                           "DriftInformation": {"StackResourceDriftStatus": "NOT_CHECKED"}}
    if res.physical_id:
        out["PhysicalResourceId"] = res.physical_id
    if res.reason:
        out["ResourceStatusReason"] = res.reason
    return out
