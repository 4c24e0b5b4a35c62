"""``AWS::CloudWatch::Alarm`` and ``AWS::CloudWatch::CompositeAlarm`` through the
service's own PutMetricAlarm / PutCompositeAlarm.

Ref gives the alarm's name; GetAtt ``Arn`` its ARN. A changed ``AlarmName`` replaces
the alarm; every other change updates it in place, as CloudFormation does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from unkai.services import Provisioned, ResourceContext
from unkai.template.names import physical_name

if TYPE_CHECKING:
    from unkai.services.cloudwatch.service import CloudWatch

_INT = ("Period", "EvaluationPeriods", "DatapointsToAlarm", "ActionsSuppressorWaitPeriod",
        "ActionsSuppressorExtensionPeriod")


def _metrics(items: list[dict]) -> list[dict]:
    out = []
    for q in items:
        q = dict(q)
        if "ReturnData" in q and isinstance(q["ReturnData"], str):
            q["ReturnData"] = q["ReturnData"].lower() == "true"
        if q.get("MetricStat"):
            q["MetricStat"] = dict(q["MetricStat"], Period=int(q["MetricStat"]["Period"]))
        if q.get("Period") is not None:
            q["Period"] = int(q["Period"])
        out.append(q)
    return out


def _request(props: dict[str, Any], name: str) -> dict[str, Any]:
    params = {k: v for k, v in props.items() if k not in ("AlarmName",)}
    params["AlarmName"] = name
    for key in _INT:
        if params.get(key) is not None:
            params[key] = int(params[key])
    if params.get("Threshold") is not None:
        params["Threshold"] = float(params["Threshold"])
    if isinstance(params.get("ActionsEnabled"), str):
        params["ActionsEnabled"] = params["ActionsEnabled"].lower() == "true"
    if params.get("Metrics"):
        params["Metrics"] = _metrics(params["Metrics"])
    return params


def create(cw: "CloudWatch", ctx: ResourceContext, resource_type: str, logical_id: str,
           props: dict[str, Any]) -> Provisioned:
    name = props.get("AlarmName") or physical_name(ctx.stack_name, logical_id, 255)
    request = _request(props, name)
    rctx = ctx.request_context("cloudwatch")
    if resource_type == "AWS::CloudWatch::CompositeAlarm":
        cw.put_composite_alarm(rctx, request)
    else:
        cw.put_metric_alarm(rctx, request)
    return Provisioned(name, name, {"Arn": f"arn:aws:cloudwatch:{ctx.region}:{ctx.account}:alarm:{name}"})


def update(cw: "CloudWatch", ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
           old_props: dict[str, Any], props: dict[str, Any]) -> Provisioned:
    if props.get("AlarmName", physical_id) != physical_id:
        delete(cw, ctx, resource_type, physical_id, old_props)
        return create(cw, ctx, resource_type, logical_id, props)
    return create(cw, ctx, resource_type, logical_id, dict(props, AlarmName=physical_id))


def delete(cw: "CloudWatch", ctx: ResourceContext, resource_type: str, physical_id: str,
           props: dict[str, Any]) -> None:
    cw.store.execute("DELETE FROM cloudwatch_alarms WHERE account=? AND region=? AND name=?",
                     (ctx.account, ctx.region, physical_id))
