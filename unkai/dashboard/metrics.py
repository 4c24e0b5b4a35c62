"""View 9, metrics and alarms (CloudWatch): the alarms with their states, and the AWS/*
and custom metrics with a small chart of the last hour's sums (GetMetricData), drawn as
an inline SVG so the page needs no charting library."""

from __future__ import annotations

from typing import TYPE_CHECKING

from unkai.dashboard import reads
from unkai.dashboard.html import e, page, table

if TYPE_CHECKING:
    from unkai.dashboard.routes import Dashboard
    from unkai.http import Request, Response

MAX_CHARTS = 24


def _spark(values: list[float], label: str) -> str:
    if not values:
        return "<span class=\"empty\">no data</span>"
    top = max(values) or 1.0
    w, h = 240, 40
    step = w / max(1, len(values) - 1)
    points = " ".join(f"{i * step:.1f},{h - v / top * (h - 4) - 2:.1f}" for i, v in enumerate(values))
    return (f'<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
            f'aria-label="{e(label)}: {len(values)} points, peak {top:g}"><polyline points="{points}"/></svg>')


async def index(dash: "Dashboard", request: "Request", m: object) -> "Response":
    cloud = dash.cloud
    alarms = reads.call(cloud, "cloudwatch", "DescribeAlarms", {}, dash.region).get("MetricAlarms", [])
    rows = [[e(a["AlarmName"]), f'<span class="badge{" bad" if a.get("StateValue") == "ALARM" else ""}">'
             f'{e(a.get("StateValue"))}</span>', e(a.get("Namespace")), e(a.get("MetricName")),
             e(a.get("StateReason"))] for a in alarms]
    body = table(["Alarm", "State", "Namespace", "Metric", "Reason"], rows, caption="Alarms", empty="No alarms.")
    metrics = reads.paged(cloud, "cloudwatch", "ListMetrics", "Metrics", region=dash.region)[:MAX_CHARTS]
    now = cloud.clock.now()
    queries = [{"Id": f"m{i}", "MetricStat": {"Metric": met, "Period": 60, "Stat": "Sum"}}
               for i, met in enumerate(metrics)]
    data = {}
    if queries:
        answer = reads.call(cloud, "cloudwatch", "GetMetricData", {
            "MetricDataQueries": queries, "StartTime": now - 3600, "EndTime": now + 60,
            "ScanBy": "TimestampAscending"}, dash.region)
        data = {r["Id"]: r.get("Values", []) for r in answer.get("MetricDataResults", [])}
    chart_rows = []
    for i, met in enumerate(metrics):
        dims = ", ".join(f"{d['Name']}={d['Value']}" for d in met.get("Dimensions", []))
        label = f"{met['Namespace']} {met['MetricName']}"
        values = [float(v) for v in data.get(f"m{i}", [])]
        chart_rows.append([e(met["Namespace"]), e(met["MetricName"]), e(dims), _spark(values, label),
                           e(f"{sum(values):g}")])
    body += "<h2>Metrics <small>(sums per minute, last hour)</small></h2>" + table(
        ["Namespace", "Metric", "Dimensions", "Last hour", "Sum"], chart_rows, empty="No metrics yet.")
    return page("Metrics and alarms", "ui/metrics", body, dash.live(view="metrics"))
