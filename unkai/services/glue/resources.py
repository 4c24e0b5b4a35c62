"""``AWS::Glue::Database``, ``AWS::Glue::Table`` and ``AWS::Glue::Partition`` through
the catalog's own operations.

Ref: a Database gives its name, a Table its name, a Partition an id
(``database|table|value1|value2``); none has GetAtt attributes. Every change replaces
the resource (Glue's tables update in place on AWS; a replaced table keeps no
partitions here, which CloudFormation templates recreate anyway).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from unkai.services import Provisioned, ResourceContext
from unkai.template.names import physical_name

if TYPE_CHECKING:
    from unkai.services.glue.service import Glue


def _ints(value: Any) -> Any:
    """Template scalars come as written: NumberOfBuckets and the like become ints."""
    if isinstance(value, dict):
        return {k: (int(v) if k in ("NumberOfBuckets", "Retention", "SortOrder") and isinstance(v, str)
                    and v.isdigit() else _ints(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def create(glue: "Glue", ctx: ResourceContext, resource_type: str, logical_id: str,
           props: dict[str, Any]) -> Provisioned:
    rctx = ctx.request_context("glue")
    if resource_type == "AWS::Glue::Database":
        data = dict(props.get("DatabaseInput") or {})
        data.setdefault("Name", physical_name(ctx.stack_name, logical_id, 255).lower())
        glue.create_database(rctx, {"DatabaseInput": data})
        return Provisioned(data["Name"].lower())
    if resource_type == "AWS::Glue::Table":
        data = _ints(dict(props.get("TableInput") or {}))
        data.setdefault("Name", physical_name(ctx.stack_name, logical_id, 255).lower())
        glue.create_table(rctx, {"DatabaseName": props["DatabaseName"], "TableInput": data})
        return Provisioned(f"{props['DatabaseName'].lower()}|{data['Name'].lower()}", data["Name"].lower())
    data = _ints(dict(props.get("PartitionInput") or {}))
    glue.create_partition(rctx, {"DatabaseName": props["DatabaseName"], "TableName": props["TableName"],
                                 "PartitionInput": data})
    pid = "|".join([props["DatabaseName"].lower(), props["TableName"].lower(), *data.get("Values", [])])
    return Provisioned(pid)


def update(glue: "Glue", ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
           old_props: dict[str, Any], props: dict[str, Any]) -> Provisioned:
    delete(glue, ctx, resource_type, physical_id, old_props)
    return create(glue, ctx, resource_type, logical_id, props)


def delete(glue: "Glue", ctx: ResourceContext, resource_type: str, physical_id: str, props: dict[str, Any]) -> None:
    cat = glue.catalog
    if resource_type == "AWS::Glue::Database":
        cat.delete_database(ctx.account, ctx.region, physical_id)
    elif resource_type == "AWS::Glue::Table":
        db, _, name = physical_id.partition("|")
        cat.delete_table(ctx.account, ctx.region, db, name)
    else:
        db, table, *values = physical_id.split("|")
        cat.delete_partition(ctx.account, ctx.region, db, table, values)
