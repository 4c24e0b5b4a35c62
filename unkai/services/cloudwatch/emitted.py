"""Metrics that arrive without a PutMetricData call, as on AWS.

- **AWS/Lambda**: every invocation the event feed reports (``lambda.invoke``) adds
  ``Invocations``, ``Errors`` (0 or 1) and ``Duration``, per ``FunctionName`` and across
  all functions (no dimensions), and ``Throttles`` when the feed reports a throttle.
- **AWS/Lambda** ``AsyncEventsDropped`` and ``DeadLetterErrors`` from ``lambda.async_failed``.
- **AWS/ApiGateway** from ``apigateway.request``: REST APIs by ``ApiName`` (and ``Stage``),
  HTTP APIs by ``ApiId`` (and ``Stage``), through the in-memory ``count`` path.
- **Gauges** AWS samples once a minute (SQS queue depths, SES reputation): each service's
  ``metric_samples(when)``, asked at every minute boundary of unkai's clock (``sample``).
- **Embedded Metric Format**: a function log line that is a JSON object with an ``_aws``
  member (as Powertools' Metrics writes it) becomes metrics, the way Lambda's log
  agent extracts them: each ``CloudWatchMetrics`` directive names a namespace, dimension
  sets and metrics whose values are the line's top-level members.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from unkai.services.cloudwatch.metrics import Point

if TYPE_CHECKING:
    from unkai.services.cloudwatch.service import CloudWatch

log = logging.getLogger(__name__)


def start(cw: "CloudWatch") -> None:
    cw.cloud.feed.subscribe(lambda event: _on_feed(cw, event))
    logs = cw.cloud.services.get("logs")
    if logs is not None and hasattr(logs, "listeners"):
        logs.listeners.append(lambda *args: _on_logs(cw, *args))


def sample(cw: "CloudWatch", when: float) -> None:
    """The gauges services publish once a minute (``Service.metric_samples``: SQS queue
    depths and ages, SES reputation), stamped at the minute that ends at ``when``, as AWS's
    one-minute data points are; called inside the evaluation's transaction."""
    for service in list(cw.cloud.services.loaded().values()):  # one not loaded holds no state
        try:
            samples = service.metric_samples(when)
        except Exception:  # one service's gauges never stop the others' or the alarms
            log.exception("%s could not sample its metrics", service.name)
            continue
        for account, region, namespace, name, dims, value, unit in samples:
            cw.record(account, region, namespace, name, dims or None, float(value), unit, when - 60)


def _on_feed(cw: "CloudWatch", event: dict[str, Any]) -> None:
    kind = event.get("kind")
    if kind == "lambda.invoke":
        _lambda(cw, event)
    elif kind == "apigateway.request":
        _apigateway(cw, event)
    elif kind == "lambda.async_failed":
        _async_failed(cw, event)


def _apigateway(cw: "CloudWatch", event: dict[str, Any]) -> None:
    """AWS/ApiGateway: REST APIs by ApiName (and Stage) with 4XXError/5XXError; HTTP APIs by
    ApiId (and Stage) with 4xx/5xx, as AWS names them."""
    account, region, stage = event.get("account"), event.get("region"), event.get("stage")
    if not account or not region:
        return
    rest = event.get("api_kind") == "rest"
    key, value = ("ApiName", event.get("api_name")) if rest else ("ApiId", event.get("api_id"))
    if not value:
        return
    status = int(event.get("status") or 0)
    client, server = ("4XXError", "5XXError") if rest else ("4xx", "5xx")
    api = {"Name": key, "Value": value}
    # A request is a hot path: ``count`` (in memory until the next read), not ``record``.
    for dims in ([api], [api, {"Name": "Stage", "Value": stage}] if stage else None):
        if dims is None:
            continue
        cw.count(account, region, "AWS/ApiGateway", "Count", dims)
        cw.count(account, region, "AWS/ApiGateway", client, dims, 1.0 if 400 <= status < 500 else 0.0)
        cw.count(account, region, "AWS/ApiGateway", server, dims, 1.0 if status >= 500 else 0.0)
        if event.get("latency_ms") is not None:
            cw.count(account, region, "AWS/ApiGateway", "Latency", dims, float(event["latency_ms"]), "Milliseconds")
        if event.get("integration_latency_ms") is not None:  # only when an integration was called
            cw.count(account, region, "AWS/ApiGateway", "IntegrationLatency", dims,
                     float(event["integration_latency_ms"]), "Milliseconds")


def _async_failed(cw: "CloudWatch", event: dict[str, Any]) -> None:
    """AWS/Lambda AsyncEventsDropped (every event given up) and DeadLetterErrors (the
    dead-letter queue could not take it)."""
    parts = (event.get("arn") or "").split(":")
    if len(parts) < 7:
        return
    region, account, name = parts[3], parts[4], parts[6]
    ts = float(event.get("time") or cw.clock.now())
    with cw.store.transaction():
        for dims in ([{"Name": "FunctionName", "Value": name}], None):
            cw.record(account, region, "AWS/Lambda", "AsyncEventsDropped", dims, 1.0, "Count", ts)
            if event.get("dlq"):
                cw.record(account, region, "AWS/Lambda", "DeadLetterErrors", dims,
                          1.0 if event.get("dlq_failed") else 0.0, "Count", ts)


def _lambda(cw: "CloudWatch", event: dict[str, Any]) -> None:
    arn = event.get("arn") or ""
    parts = arn.split(":")
    if len(parts) < 7:
        return
    region, account, name = parts[3], parts[4], parts[6]
    failed = event.get("status") == "error"
    if event.get("status") == "throttled":
        ts = float(event.get("time") or cw.clock.now())
        with cw.store.transaction():
            for dims in ([{"Name": "FunctionName", "Value": name}], None):
                cw.record(account, region, "AWS/Lambda", "Throttles", dims, 1.0, "Count", ts)
        return
    # an invocation is a hot path: counted in memory (``count``) until the next metric read;
    # Duration keeps each value, for its percentiles (p99 alarms on a function's duration are common)
    for dims in ([{"Name": "FunctionName", "Value": name}], None):
        cw.count(account, region, "AWS/Lambda", "Invocations", dims, 1.0)
        cw.count(account, region, "AWS/Lambda", "Errors", dims, 1.0 if failed else 0.0)
        if event.get("duration_ms") is not None:
            cw.count(account, region, "AWS/Lambda", "Duration", dims, float(event["duration_ms"]), "Milliseconds",
                     keep=True)


def _on_logs(cw: "CloudWatch", account: str, region: str, group: str, stream: str,
             events: list[tuple[int, str]]) -> None:
    if not group.startswith("/aws/lambda/"):
        return
    for ts, message in events:
        text = message.strip()
        if not (text.startswith("{") and '"_aws"' in text):
            continue
        try:
            doc = json.loads(text)
        except ValueError:
            continue
        try:
            emf(cw, account, region, doc, ts)
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            log.info("an EMF line in %s was not valid and was kept as a log event only: %s", group, exc)


def emf(cw: "CloudWatch", account: str, region: str, doc: dict, ts_ms: int) -> None:
    """Record the metrics of one EMF document (AWS's specification, version 0)."""
    meta = doc.get("_aws")
    if not isinstance(meta, dict):
        return
    ts = float(meta.get("Timestamp", ts_ms)) / 1000.0
    for directive in meta.get("CloudWatchMetrics") or []:
        namespace = directive.get("Namespace") or "aws-embedded-metrics"
        dim_sets = directive.get("Dimensions") or [[]]
        for metric in directive.get("Metrics") or []:
            name = metric.get("Name") if isinstance(metric, dict) else None
            if not name or name not in doc:
                continue
            raw = doc[name]
            values = raw if isinstance(raw, list) else [raw]
            values = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if not values:
                continue
            unit = metric.get("Unit") or "None"
            resolution = 1 if metric.get("StorageResolution") == 1 else 60
            for dim_names in dim_sets:
                if any(d not in doc for d in dim_names):
                    continue
                dims = [{"Name": d, "Value": str(doc[d])} for d in dim_names]
                point = Point(ts, unit, float(len(values)), sum(values), min(values), max(values),
                              [(v, 1.0) for v in values] if len(values) > 1 else None, resolution)
                cw.metrics.put(account, region, namespace, name, dims, [point], cw.clock.now())
