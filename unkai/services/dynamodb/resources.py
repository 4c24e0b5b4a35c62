"""AWS::DynamoDB::Table for templates (SAM's AWS::Serverless::SimpleTable arrives as
one), created through the service's own operations. Ref gives the table name;
GetAtt gives Arn and StreamArn. Changing the name, key schema or local indexes
replaces the table, as CloudFormation does; everything else updates in place."""

from __future__ import annotations

from typing import Any

from unkai.protocol import ServiceError
from unkai.services import Provisioned, ResourceContext
from unkai.template.names import physical_name

TYPES = ("AWS::DynamoDB::Table",)
REPLACING = ("TableName", "KeySchema", "LocalSecondaryIndexes")


def _throughput(value: dict | None) -> dict | None:
    if not value:
        return None
    return {"ReadCapacityUnits": int(value["ReadCapacityUnits"]), "WriteCapacityUnits": int(value["WriteCapacityUnits"])}


def _index(spec: dict) -> dict:
    out = {"IndexName": spec["IndexName"], "KeySchema": spec["KeySchema"], "Projection": spec.get("Projection") or {}}
    if spec.get("ProvisionedThroughput"):
        out["ProvisionedThroughput"] = _throughput(spec["ProvisionedThroughput"])
    return out


def _sse(props: dict) -> dict | None:
    sse = props.get("SSESpecification")
    if not sse:
        return None
    out: dict[str, Any] = {"Enabled": _bool(sse.get("SSEEnabled"))}
    if sse.get("SSEType"):
        out["SSEType"] = sse["SSEType"]
    if sse.get("KMSMasterKeyId"):
        out["KMSMasterKeyId"] = sse["KMSMasterKeyId"]
    return out


def _bool(value: Any) -> bool:
    return str(value).lower() == "true"


def _provisioned(service: Any, ctx: ResourceContext, name: str) -> Provisioned:
    table = service.find_table(ctx.account, ctx.region, name)
    attributes = {"Arn": table.arn}
    if table.stream is not None:
        attributes["StreamArn"] = table.stream.arn
    return Provisioned(name, name, attributes)


def create(service: Any, ctx: ResourceContext, resource_type: str, logical_id: str, props: dict) -> Provisioned:
    name = props.get("TableName") or physical_name(ctx.stack_name, logical_id, 255)
    billing = props.get("BillingMode") or "PROVISIONED"
    params: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props.get("AttributeDefinitions") or [],
        "KeySchema": props.get("KeySchema") or [],
        "BillingMode": billing,
    }
    if props.get("ProvisionedThroughput"):
        params["ProvisionedThroughput"] = _throughput(props["ProvisionedThroughput"])
    if props.get("GlobalSecondaryIndexes"):
        params["GlobalSecondaryIndexes"] = [_index(s) for s in props["GlobalSecondaryIndexes"]]
    if props.get("LocalSecondaryIndexes"):
        params["LocalSecondaryIndexes"] = [_index(s) for s in props["LocalSecondaryIndexes"]]
    stream = props.get("StreamSpecification")
    if stream and stream.get("StreamViewType"):
        params["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    if _sse(props):
        params["SSESpecification"] = _sse(props)
    for key in ("TableClass",):
        if props.get(key):
            params[key] = props[key]
    if "DeletionProtectionEnabled" in props:
        params["DeletionProtectionEnabled"] = _bool(props["DeletionProtectionEnabled"])
    if props.get("Tags"):
        params["Tags"] = [{"Key": t["Key"], "Value": str(t["Value"])} for t in props["Tags"]]
    rctx = ctx.request_context("dynamodb", "CreateTable")
    service.create_table(rctx, params)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and _bool(ttl.get("Enabled")):
        service.update_time_to_live(rctx, {"TableName": name, "TimeToLiveSpecification": {
            "Enabled": True, "AttributeName": ttl["AttributeName"]}})
    return _provisioned(service, ctx, name)


def update(service: Any, ctx: ResourceContext, resource_type: str, logical_id: str, name: str, old: dict,
           new: dict) -> Provisioned | None:
    """Update in place, or None when CloudFormation would replace the table."""
    if any(old.get(k) != new.get(k) for k in REPLACING):
        return None
    rctx = ctx.request_context("dynamodb", "UpdateTable")
    table = service.find_table(ctx.account, ctx.region, name)
    if table is None:
        return None
    billing = new.get("BillingMode") or "PROVISIONED"
    if billing != (old.get("BillingMode") or "PROVISIONED") or new.get("ProvisionedThroughput") != old.get(
            "ProvisionedThroughput"):
        params: dict[str, Any] = {"TableName": name, "BillingMode": billing}
        if billing == "PROVISIONED":
            params["ProvisionedThroughput"] = _throughput(new.get("ProvisionedThroughput"))
        service.update_table(rctx, params)
    old_gsis = {g["IndexName"]: g for g in old.get("GlobalSecondaryIndexes") or []}
    new_gsis = {g["IndexName"]: g for g in new.get("GlobalSecondaryIndexes") or []}
    index_updates = [{"Delete": {"IndexName": n}} for n in old_gsis if n not in new_gsis or
                     old_gsis[n].get("KeySchema") != new_gsis[n].get("KeySchema") or
                     old_gsis[n].get("Projection") != new_gsis[n].get("Projection")]
    deleted = {u["Delete"]["IndexName"] for u in index_updates}
    index_updates += [{"Create": _index(g)} for n, g in new_gsis.items() if n not in old_gsis or n in deleted]
    if index_updates:
        for step in index_updates:
            service.update_table(rctx, {"TableName": name, "AttributeDefinitions": new.get("AttributeDefinitions"),
                                        "GlobalSecondaryIndexUpdates": [step]})
    old_stream = (old.get("StreamSpecification") or {}).get("StreamViewType")
    new_stream = (new.get("StreamSpecification") or {}).get("StreamViewType")
    if old_stream != new_stream:
        if old_stream:
            service.update_table(rctx, {"TableName": name, "StreamSpecification": {"StreamEnabled": False}})
        if new_stream:
            service.update_table(rctx, {"TableName": name, "StreamSpecification": {
                "StreamEnabled": True, "StreamViewType": new_stream}})
    if new.get("DeletionProtectionEnabled") != old.get("DeletionProtectionEnabled"):
        service.update_table(rctx, {"TableName": name,
                                    "DeletionProtectionEnabled": _bool(new.get("DeletionProtectionEnabled"))})
    old_ttl, new_ttl = old.get("TimeToLiveSpecification") or {}, new.get("TimeToLiveSpecification") or {}
    if _bool(old_ttl.get("Enabled")) and (not _bool(new_ttl.get("Enabled")) or
                                         old_ttl.get("AttributeName") != new_ttl.get("AttributeName")):
        service.update_time_to_live(rctx, {"TableName": name, "TimeToLiveSpecification": {
            "Enabled": False, "AttributeName": old_ttl["AttributeName"]}})
    if _bool(new_ttl.get("Enabled")) and not (_bool(old_ttl.get("Enabled")) and
                                              old_ttl.get("AttributeName") == new_ttl.get("AttributeName")):
        service.update_time_to_live(rctx, {"TableName": name, "TimeToLiveSpecification": {
            "Enabled": True, "AttributeName": new_ttl["AttributeName"]}})
    table = service.find_table(ctx.account, ctx.region, name)
    table.definition["Tags"] = {t["Key"]: str(t["Value"]) for t in new.get("Tags") or []}
    service._save(table)
    return _provisioned(service, ctx, name)


def delete(service: Any, ctx: ResourceContext, resource_type: str, name: str, props: dict) -> None:
    try:
        service.delete_table(ctx.request_context("dynamodb", "DeleteTable"), {"TableName": name})
    except ServiceError as exc:
        if exc.code != "ResourceNotFoundException":
            raise
