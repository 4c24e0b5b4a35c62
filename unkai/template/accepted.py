"""Resource types unkai accepts without a service behind them: CloudFormation's own
bookkeeping types. They create nothing but answer ``Ref`` as CloudFormation documents,
so references to them resolve. (IAM and log groups used to be here; their services
own them now.)"""

from __future__ import annotations

from typing import Any

from unkai.services import Provisioned, ResourceContext
from unkai.template.names import physical_name


def _nothing(ctx: ResourceContext, logical_id: str, props: dict[str, Any], kept: str | None) -> Provisioned:
    return Provisioned(kept or physical_name(ctx.stack_name, logical_id, 128))


MAKERS = {
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
