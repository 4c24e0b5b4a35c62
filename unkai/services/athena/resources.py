"""``AWS::Athena::WorkGroup`` (Ref: its name) and ``AWS::Athena::NamedQuery`` (Ref: its
id), through the service's own operations. Every change replaces the resource."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from unkai.services import Provisioned, ResourceContext

if TYPE_CHECKING:
    from unkai.services.athena.service import Athena


def _config(props: dict[str, Any]) -> dict[str, Any]:
    config = dict(props.get("WorkGroupConfiguration") or {})
    for key in ("EnforceWorkGroupConfiguration", "PublishCloudWatchMetricsEnabled", "RequesterPaysEnabled"):
        if isinstance(config.get(key), str):
            config[key] = config[key].lower() == "true"
    if config.get("BytesScannedCutoffPerQuery") is not None:
        config["BytesScannedCutoffPerQuery"] = int(config["BytesScannedCutoffPerQuery"])
    return config


def create(athena: "Athena", ctx: ResourceContext, resource_type: str, logical_id: str,
           props: dict[str, Any]) -> Provisioned:
    rctx = ctx.request_context("athena")
    if resource_type == "AWS::Athena::WorkGroup":
        name = props["Name"]
        athena.create_work_group(rctx, {"Name": name, "Description": props.get("Description"),
                                        "Configuration": _config(props), "Tags": props.get("Tags")})
        return Provisioned(name, name, {"CreationTime": str(athena.clock.now())})
    out = athena.create_named_query(rctx, {k: props[k] for k in ("Name", "Description", "Database", "QueryString",
                                                                  "WorkGroup") if props.get(k) is not None})
    qid = out["NamedQueryId"]
    return Provisioned(qid, qid, {"NamedQueryId": qid})


def delete(athena: "Athena", ctx: ResourceContext, resource_type: str, physical_id: str,
           props: dict[str, Any]) -> None:
    if resource_type == "AWS::Athena::WorkGroup":
        athena.store.execute("DELETE FROM athena_workgroups WHERE account=? AND region=? AND name=?",
                             (ctx.account, ctx.region, physical_id))
    else:
        athena.store.execute("DELETE FROM athena_named_queries WHERE id=?", (physical_id,))
