"""EventBridge's template resources, made through the service's own operations.

- ``AWS::Events::Rule``: Ref is the rule name (``BUS|NAME`` on a custom bus, as
  CloudFormation gives it); GetAtt Arn. A new Name or EventBusName replaces the rule;
  targets removed from the template are removed from the rule.
- ``AWS::Events::EventBus``: Ref and GetAtt Name give the name; GetAtt Arn, Policy.
  A new Name replaces the bus; Description, DeadLetterConfig, KmsKeyIdentifier and
  Policy update in place.
- ``AWS::Events::EventBusPolicy``: Ref is the StatementId.
- ``AWS::Events::Archive``: Ref is the archive name; GetAtt Arn.
- ``AWS::Events::Connection`` (GetAtt Arn, SecretArn) and ``AWS::Events::ApiDestination``
  (GetAtt Arn): Ref is the name.
SAM's ``EventBridgeRule`` event sources with ``EventBusName`` arrive as rules on that bus."""

from __future__ import annotations

import json
from typing import Any

from unkai.services import Provisioned, ResourceContext
from unkai.services.events import errors
from unkai.services.events.model import DEFAULT_BUS, bus_name
from unkai.template.names import physical_name

TYPES = ("AWS::Events::Rule", "AWS::Events::EventBus", "AWS::Events::EventBusPolicy", "AWS::Events::Archive",
         "AWS::Events::Connection", "AWS::Events::ApiDestination")


def _json(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _tags(props: dict) -> list[dict[str, str]]:
    tags = props.get("Tags") or []
    if isinstance(tags, dict):
        return [{"Key": k, "Value": str(v)} for k, v in tags.items()]
    return [{"Key": t["Key"], "Value": str(t["Value"])} for t in tags]


def create(svc: Any, ctx: ResourceContext, resource_type: str, logical_id: str, props: dict[str, Any]) -> Provisioned:
    if resource_type == "AWS::Events::Rule":
        return _apply_rule(svc, ctx, props.get("Name") or physical_name(ctx.stack_name, logical_id, 64), props)
    if resource_type == "AWS::Events::EventBus":
        name = props.get("Name") or physical_name(ctx.stack_name, logical_id, 256)
        rctx = ctx.request_context("events", "CreateEventBus")
        request = {"Name": name, "Tags": _tags(props)}
        for key in ("Description", "KmsKeyIdentifier", "DeadLetterConfig", "LogConfig", "EventSourceName"):
            if props.get(key):
                request[key] = props[key]
        svc.create_event_bus(rctx, request)
        if props.get("Policy"):
            svc.put_permission(rctx, {"EventBusName": name, "Policy": _json(props["Policy"])})
        return _bus(svc, ctx, name)
    if resource_type == "AWS::Events::EventBusPolicy":
        rctx = ctx.request_context("events", "PutPermission")
        sid = props["StatementId"]
        request: dict[str, Any] = {"EventBusName": props.get("EventBusName")}
        if props.get("Statement"):
            bus = svc.describe_event_bus(rctx, {"Name": props.get("EventBusName")})
            policy = json.loads(bus["Policy"]) if bus.get("Policy") else {"Version": "2012-10-17", "Statement": []}
            statement = dict(props["Statement"], Sid=sid)
            policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != sid] + [statement]
            request["Policy"] = json.dumps(policy)
        else:
            request.update(StatementId=sid, Action=props.get("Action"), Principal=props.get("Principal"))
            if props.get("Condition"):
                request["Condition"] = props["Condition"]
        svc.put_permission(rctx, request)
        return Provisioned(f"{bus_name(props.get('EventBusName'))}|{sid}", sid, {})
    if resource_type == "AWS::Events::Archive":
        name = props.get("ArchiveName") or physical_name(ctx.stack_name, logical_id, 48)
        rctx = ctx.request_context("events", "CreateArchive")
        request = {"ArchiveName": name, "EventSourceArn": props["SourceArn"]}
        if props.get("EventPattern"):
            request["EventPattern"] = _json(props["EventPattern"])
        for key in ("Description", "RetentionDays", "KmsKeyIdentifier"):
            if props.get(key) is not None:
                request[key] = int(props[key]) if key == "RetentionDays" else props[key]
        arn = svc.create_archive(rctx, request)["ArchiveArn"]
        return Provisioned(name, name, {"Arn": arn, "ArchiveName": name})
    if resource_type == "AWS::Events::Connection":
        name = props.get("Name") or physical_name(ctx.stack_name, logical_id, 64)
        rctx = ctx.request_context("events", "CreateConnection")
        request = {"Name": name, "AuthorizationType": props.get("AuthorizationType"),
                   "AuthParameters": props.get("AuthParameters") or {}}
        if props.get("Description"):
            request["Description"] = props["Description"]
        out = svc.create_connection(rctx, request)
        secret = svc.describe_connection(rctx, {"Name": name}).get("SecretArn")
        return Provisioned(name, name, {"Arn": out["ConnectionArn"], "SecretArn": secret})
    if resource_type == "AWS::Events::ApiDestination":
        name = props.get("Name") or physical_name(ctx.stack_name, logical_id, 64)
        rctx = ctx.request_context("events", "CreateApiDestination")
        request = {"Name": name}
        for key in ("Description", "ConnectionArn", "InvocationEndpoint", "HttpMethod",
                    "InvocationRateLimitPerSecond"):
            if props.get(key) is not None:
                request[key] = int(props[key]) if key == "InvocationRateLimitPerSecond" else props[key]
        arn = svc.create_api_destination(rctx, request)["ApiDestinationArn"]
        return Provisioned(name, name, {"Arn": arn})
    raise errors.validation(f"unkai does not create {resource_type}")


def update(svc: Any, ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
           old_props: dict[str, Any], props: dict[str, Any]) -> Provisioned:
    if resource_type == "AWS::Events::Rule":
        name = physical_id.rsplit("|", 1)[-1]
        if props.get("Name", name) != name or bus_name(props.get("EventBusName")) != bus_name(
                old_props.get("EventBusName")):
            return _replace(svc, ctx, resource_type, logical_id, physical_id, old_props, props)
        rctx = ctx.request_context("events", "RemoveTargets")
        old_ids = [t["Id"] for t in old_props.get("Targets") or []]
        new_ids = {t["Id"] for t in props.get("Targets") or []}
        gone = [i for i in old_ids if i not in new_ids]
        if gone:
            svc.remove_targets(rctx, {"Rule": name, "EventBusName": props.get("EventBusName"), "Ids": gone})
        return _apply_rule(svc, ctx, name, props)
    if resource_type == "AWS::Events::EventBus" and props.get("Name", physical_id) == physical_id:
        rctx = ctx.request_context("events", "UpdateEventBus")
        request = {"Name": physical_id}
        for key in ("Description", "KmsKeyIdentifier", "DeadLetterConfig", "LogConfig"):
            request[key] = props.get(key)
        svc.update_event_bus(rctx, request)
        if props.get("Policy"):
            svc.put_permission(rctx, {"EventBusName": physical_id, "Policy": _json(props["Policy"])})
        elif old_props.get("Policy"):
            svc.remove_permission(rctx, {"EventBusName": physical_id, "RemoveAllPermissions": True})
        return _bus(svc, ctx, physical_id)
    if resource_type == "AWS::Events::Archive" and props.get("ArchiveName", physical_id) == physical_id \
            and props.get("SourceArn") == old_props.get("SourceArn"):
        rctx = ctx.request_context("events", "UpdateArchive")
        request = {"ArchiveName": physical_id, "Description": props.get("Description") or "",
                   "RetentionDays": int(props.get("RetentionDays") or 0)}
        if props.get("EventPattern"):
            request["EventPattern"] = _json(props["EventPattern"])
        arn = svc.update_archive(rctx, request)["ArchiveArn"]
        return Provisioned(physical_id, physical_id, {"Arn": arn, "ArchiveName": physical_id})
    return _replace(svc, ctx, resource_type, logical_id, physical_id, old_props, props)


def _replace(svc: Any, ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
             old_props: dict[str, Any], props: dict[str, Any]) -> Provisioned:
    delete(svc, ctx, resource_type, physical_id, old_props)
    return create(svc, ctx, resource_type, logical_id, props)


def delete(svc: Any, ctx: ResourceContext, resource_type: str, physical_id: str, props: dict[str, Any]) -> None:
    from unkai.protocol import ServiceError

    rctx = ctx.request_context("events", "Delete")
    try:
        if resource_type == "AWS::Events::Rule":
            svc.delete_rule(rctx, {"Name": physical_id.rsplit("|", 1)[-1],
                                   "EventBusName": props.get("EventBusName"), "Force": True})
        elif resource_type == "AWS::Events::EventBus":
            svc.delete_event_bus(rctx, {"Name": physical_id})
        elif resource_type == "AWS::Events::EventBusPolicy":
            bus, _, sid = physical_id.rpartition("|")
            svc.remove_permission(rctx, {"EventBusName": bus or DEFAULT_BUS, "StatementId": sid})
        elif resource_type == "AWS::Events::Archive":
            svc.delete_archive(rctx, {"ArchiveName": physical_id})
        elif resource_type == "AWS::Events::Connection":
            svc.delete_connection(rctx, {"Name": physical_id})
        elif resource_type == "AWS::Events::ApiDestination":
            svc.delete_api_destination(rctx, {"Name": physical_id})
    except ServiceError as exc:
        if exc.code != "ResourceNotFoundException":
            raise


def _bus(svc: Any, ctx: ResourceContext, name: str) -> Provisioned:
    bus = svc.describe_event_bus(ctx.request_context("events", "DescribeEventBus"), {"Name": name})
    return Provisioned(name, name, {"Arn": bus["Arn"], "Name": name, "Policy": bus.get("Policy")})


def _apply_rule(svc: Any, ctx: ResourceContext, name: str, props: dict[str, Any]) -> Provisioned:
    rctx = ctx.request_context("events", "PutRule")
    pattern = props.get("EventPattern")
    request = {"Name": name, "State": props.get("State") or "ENABLED", "EventBusName": props.get("EventBusName"),
               "Tags": _tags(props)}
    for key in ("ScheduleExpression", "Description", "RoleArn"):
        if props.get(key):
            request[key] = props[key]
    if pattern:
        request["EventPattern"] = _json(pattern)
    arn = svc.put_rule(rctx, request)["RuleArn"]
    wanted = []
    for target in props.get("Targets") or []:
        target = dict(target)
        if isinstance(target.get("InputTransformer"), dict):
            target["InputTransformer"] = dict(target["InputTransformer"])
        wanted.append(target)
    if wanted:
        result = svc.put_targets(rctx, {"Rule": name, "EventBusName": props.get("EventBusName"), "Targets": wanted})
        if result["FailedEntryCount"]:
            raise errors.validation(result["FailedEntries"][0]["ErrorMessage"])
    bus = bus_name(props.get("EventBusName"))
    ref = name if bus == DEFAULT_BUS else f"{bus}|{name}"
    return Provisioned(ref, ref, {"Arn": arn})
