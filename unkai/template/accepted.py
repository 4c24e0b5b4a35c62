"""Resource types unkai accepts without a service behind them: IAM (unkai does not
enforce permissions), log groups until a logs service claims them, and
CloudFormation's own bookkeeping types. They create nothing but answer ``Ref``
and ``Fn::GetAtt`` as CloudFormation documents, so references to them resolve."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from unkai.services import Provisioned, ResourceContext
from unkai.template.names import physical_name
from unkai.template.intrinsics import partition_of


def _unique_id(prefix: str, name: str) -> str:
    """IAM's unique ids (AROA..., ANPA...), stable for a name so an update does not change them."""
    return prefix + base64.b32encode(hashlib.sha1(name.encode()).digest()).decode()[:17]


def _name(ctx: ResourceContext, logical_id: str, props: dict[str, Any], prop: str, kept: str | None,
          max_len: int = 128) -> str:
    return props.get(prop) or kept or physical_name(ctx.stack_name, logical_id, max_len)


def _role(ctx: ResourceContext, logical_id: str, props: dict[str, Any], kept: str | None) -> Provisioned:
    name = _name(ctx, logical_id, props, "RoleName", kept, 64)
    arn = f"arn:{partition_of(ctx.region)[0]}:iam::{ctx.account}:role{props.get('Path') or '/'}{name}"
    return Provisioned(name, name, {"Arn": arn, "RoleId": _unique_id("AROA", arn)})


def _policy(ctx: ResourceContext, logical_id: str, props: dict[str, Any], kept: str | None) -> Provisioned:
    name = _name(ctx, logical_id, props, "", kept)
    return Provisioned(name, name, {"Id": name})


def _managed_policy(ctx: ResourceContext, logical_id: str, props: dict[str, Any], kept: str | None) -> Provisioned:
    name = props.get("ManagedPolicyName") or (kept.rsplit("/", 1)[-1] if kept else None) \
        or physical_name(ctx.stack_name, logical_id, 128)
    arn = f"arn:{partition_of(ctx.region)[0]}:iam::{ctx.account}:policy{props.get('Path') or '/'}{name}"
    return Provisioned(arn, arn, {"PolicyArn": arn, "PolicyId": _unique_id("ANPA", arn), "DefaultVersionId": "v1",
                                  "AttachmentCount": 0, "IsAttachable": True})


def _instance_profile(ctx: ResourceContext, logical_id: str, props: dict[str, Any], kept: str | None) -> Provisioned:
    name = _name(ctx, logical_id, props, "InstanceProfileName", kept)
    arn = f"arn:{partition_of(ctx.region)[0]}:iam::{ctx.account}:instance-profile{props.get('Path') or '/'}{name}"
    return Provisioned(name, name, {"Arn": arn})


def _log_group(ctx: ResourceContext, logical_id: str, props: dict[str, Any], kept: str | None) -> Provisioned:
    name = _name(ctx, logical_id, props, "LogGroupName", kept, 512)
    arn = f"arn:{partition_of(ctx.region)[0]}:logs:{ctx.region}:{ctx.account}:log-group:{name}:*"
    return Provisioned(name, name, {"Arn": arn})


def _nothing(ctx: ResourceContext, logical_id: str, props: dict[str, Any], kept: str | None) -> Provisioned:
    return Provisioned(_name(ctx, logical_id, props, "", kept))


MAKERS = {
    "AWS::IAM::Role": _role,
    "AWS::IAM::Policy": _policy,
    "AWS::IAM::RolePolicy": _policy,
    "AWS::IAM::ManagedPolicy": _managed_policy,
    "AWS::IAM::InstanceProfile": _instance_profile,
    "AWS::IAM::ServiceLinkedRole": _role,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::CloudFormation::WaitConditionHandle": _nothing,
    "AWS::CDK::Metadata": _nothing,
}


class Accepted:
    """The provider for the types above (services that own a type take precedence)."""

    name = "unkai"
    resource_types = tuple(MAKERS)

    def create_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str,
                        props: dict[str, Any]) -> Provisioned:
        return MAKERS[resource_type](ctx, logical_id, props, None)

    def update_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
                        old_props: dict[str, Any], props: dict[str, Any]) -> Provisioned:
        """In place, keeping a generated name, so nothing that refers to it changes."""
        return MAKERS[resource_type](ctx, logical_id, props, physical_id)

    def delete_resource(self, ctx: ResourceContext, resource_type: str, physical_id: str,
                        props: dict[str, Any]) -> None:
        return None
