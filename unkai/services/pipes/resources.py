"""``AWS::Pipes::Pipe``, made through the service's own operations. Ref gives the pipe's
name; GetAtt gives Arn, CurrentState, CreationTime and LastModifiedTime. A new Name or
Source replaces the pipe (as CloudFormation does); everything else updates in place."""

from __future__ import annotations

from typing import Any

from unkai.protocol import ServiceError
from unkai.services import Provisioned, ResourceContext
from unkai.template.names import physical_name

TYPES = ("AWS::Pipes::Pipe",)
KEYS = ("Description", "DesiredState", "Source", "SourceParameters", "Enrichment", "EnrichmentParameters", "Target",
        "TargetParameters", "RoleArn", "LogConfiguration", "KmsKeyIdentifier")


def _request(name: str, props: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    request: dict[str, Any] = {"Name": name}
    for key in keys:
        if props.get(key) is not None:
            request[key] = props[key]
    return request


def _provisioned(svc: Any, ctx: ResourceContext, name: str) -> Provisioned:
    pipe = svc.describe_pipe(ctx.request_context("pipes", "DescribePipe"), {"Name": name})
    return Provisioned(name, name, {"Arn": pipe["Arn"], "CurrentState": pipe["CurrentState"],
                                    "CreationTime": str(pipe["CreationTime"]),
                                    "LastModifiedTime": str(pipe["LastModifiedTime"])})


def create(svc: Any, ctx: ResourceContext, resource_type: str, logical_id: str, props: dict[str, Any]) -> Provisioned:
    name = props.get("Name") or physical_name(ctx.stack_name, logical_id, 64)
    request = _request(name, props, KEYS)
    if props.get("Tags"):
        request["Tags"] = {k: str(v) for k, v in props["Tags"].items()}
    svc.create_pipe(ctx.request_context("pipes", "CreatePipe"), request)
    return _provisioned(svc, ctx, name)


def update(svc: Any, ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
           old_props: dict[str, Any], props: dict[str, Any]) -> Provisioned:
    if props.get("Name", physical_id) != physical_id or props.get("Source") != old_props.get("Source"):
        delete(svc, ctx, resource_type, physical_id, old_props)
        return create(svc, ctx, resource_type, logical_id, props)
    keys = tuple(k for k in KEYS if k != "Source")
    svc.update_pipe(ctx.request_context("pipes", "UpdatePipe"), _request(physical_id, props, keys))
    return _provisioned(svc, ctx, physical_id)


def delete(svc: Any, ctx: ResourceContext, resource_type: str, physical_id: str, props: dict[str, Any]) -> None:
    try:
        svc.delete_pipe(ctx.request_context("pipes", "DeletePipe"), {"Name": physical_id})
    except ServiceError as exc:
        if exc.code != "NotFoundException":
            raise
