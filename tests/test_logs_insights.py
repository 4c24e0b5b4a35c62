"""CloudWatch Logs Insights queries over stored events, query definitions, and metric filters
that turn log events into CloudWatch metrics."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def logs(unkai):
    return unkai.client("logs")


@pytest.fixture(scope="module")
def group(unkai, logs):
    """A log group with JSON lines from two devices and a plain line."""
    name = f"/app/{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=name)
    logs.create_log_stream(logGroupName=name, logStreamName="s1")
    now = int(unkai.advance(0)["epoch"] * 1000) - 60_000
    lines = [
        {"level": "INFO", "device_id": "123456789", "log_event": "NodeRegisterStarted", "ms": 12,
         "detail": {"hub": "h1"}},
        {"level": "ERROR", "device_id": "123456789", "log_event": "NodeRegisterFailed", "ms": 40,
         "detail": {"hub": "h1"}},
        {"level": "INFO", "device_id": "555", "log_event": "NodeRegisterFinished", "ms": 8, "detail": {"hub": "h2"}},
    ]
    events = [{"timestamp": now + i * 1000, "message": json.dumps(line)} for i, line in enumerate(lines)]
    events.append({"timestamp": now + 5000, "message": "[WARN] disk 91% full on node-7"})
    logs.put_log_events(logGroupName=name, logStreamName="s1", logEvents=events)
    return name, now


def query(logs, name: str, text: str, start: int) -> dict:
    qid = logs.start_query(logGroupName=name, startTime=start // 1000 - 60, endTime=start // 1000 + 120,
                           queryString=text)["queryId"]
    deadline = time.monotonic() + 30
    while True:
        out = logs.get_query_results(queryId=qid)
        if out["status"] not in ("Scheduled", "Running") or time.monotonic() > deadline:
            return out


def table(out: dict) -> list[dict]:
    return [{f["field"]: f["value"] for f in row if f["field"] != "@ptr"} for row in out["results"]]


def test_fields_filter_sort_over_json_fields(logs, group):
    name, now = group
    out = query(logs, name, "fields level, log_event, detail.hub | filter device_id = '123456789' "
                            "| sort @timestamp desc", now)
    assert out["status"] == "Complete"
    assert table(out) == [{"level": "ERROR", "log_event": "NodeRegisterFailed", "detail.hub": "h1"},
                          {"level": "INFO", "log_event": "NodeRegisterStarted", "detail.hub": "h1"}]
    assert out["statistics"]["recordsScanned"] == 4.0
    assert all(any(f["field"] == "@ptr" for f in row) for row in out["results"])


def test_stats_by_group_and_bin(logs, group):
    name, now = group
    out = query(logs, name, "filter ispresent(level) | stats count(*) as n, avg(ms) as avg_ms, max(ms) by level "
                            "| sort level", now)
    assert table(out) == [{"level": "ERROR", "n": "1", "avg_ms": "40", "max(ms)": "40"},
                          {"level": "INFO", "n": "2", "avg_ms": "10", "max(ms)": "12"}]
    out = query(logs, name, "stats count(*) as c by bin(1h)", now)
    rows = table(out)
    assert sum(int(r["c"]) for r in rows) == 4 and rows[0]["bin(1h)"].endswith(":00:00.000")
    # counted by SQLite (a first `stats count(*) by bin()`) or event by event (after a filter): the same answer
    counted = query(logs, name, "stats count(*) by bin(2s) | sort bin(2s) desc | limit 2", now)
    scanned = query(logs, name, "filter @message like /./ | stats count(*) by bin(2s) | sort bin(2s) desc "
                                "| limit 2", now)
    assert table(counted) == table(scanned) and len(table(counted)) == 2
    assert counted["statistics"] == scanned["statistics"]
    assert counted["statistics"]["recordsScanned"] == 4.0 and counted["statistics"]["recordsMatched"] == 2.0


def test_parse_like_regex_in_and_limit(logs, group):
    name, now = group
    out = query(logs, name, "filter @message like /disk/ | parse @message '[*] disk *% full on *' as lvl, pct, node "
                            "| display lvl, pct, node", now)
    assert table(out) == [{"lvl": "WARN", "pct": "91", "node": "node-7"}]
    out = query(logs, name, "fields log_event | filter level in ['ERROR', 'WARN'] or ms < 10 | sort ms asc "
                            "| limit 1", now)
    assert table(out) == [{"log_event": "NodeRegisterFinished"}]
    out = query(logs, name, "fields @message | filter @message =~ /NodeRegister(Failed|Finished)/ "
                            "| stats count_distinct(device_id) as devices", now)
    assert table(out) == [{"devices": "2"}]


def test_malformed_queries_and_unknown_groups(logs, group):
    name, now = group
    with pytest.raises(ClientError) as exc:
        logs.start_query(logGroupName=name, startTime=0, endTime=10, queryString="fields @message | bogus x")
    assert exc.value.response["Error"]["Code"] == "MalformedQueryException"
    with pytest.raises(ClientError) as exc:
        logs.start_query(logGroupName="/nope", startTime=0, endTime=10, queryString="fields @message")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        logs.start_query(logGroupName=name, startTime=10, endTime=0, queryString="fields @message")
    assert exc.value.response["Error"]["Code"] == "InvalidParameterException"


def test_query_definitions_and_describe_queries(logs, group):
    name, now = group
    qid = logs.put_query_definition(name=f"errors-{uuid.uuid4().hex[:4]}", logGroupNames=[name],
                                    queryString="filter level = 'ERROR'")["queryDefinitionId"]
    found = logs.describe_query_definitions(queryDefinitionNamePrefix="errors-")["queryDefinitions"]
    assert qid in [d["queryDefinitionId"] for d in found]
    assert logs.delete_query_definition(queryDefinitionId=qid)["success"] is True
    query(logs, name, "fields @message", now)
    assert any(q["logGroupName"] == name for q in logs.describe_queries(logGroupName=name)["queries"])


def test_metric_filters_feed_cloudwatch_metrics(unkai, logs):
    cw = unkai.client("cloudwatch")
    name = f"/app/{uuid.uuid4().hex[:8]}"
    ns = f"Logs/{uuid.uuid4().hex[:6]}"
    logs.create_log_group(logGroupName=name)
    logs.create_log_stream(logGroupName=name, logStreamName="s")
    logs.put_metric_filter(logGroupName=name, filterName="errors", filterPattern='{ $.level = "ERROR" }',
                           metricTransformations=[{"metricName": "ErrorCount", "metricNamespace": ns,
                                                   "metricValue": "1", "defaultValue": 0}])
    logs.put_metric_filter(logGroupName=name, filterName="latency", filterPattern="{ $.ms > 0 }",
                           metricTransformations=[{"metricName": "Latency", "metricNamespace": ns,
                                                   "metricValue": "$.ms", "unit": "Milliseconds",
                                                   "dimensions": {"Device": "$.device_id"}}])
    now = int(unkai.advance(0)["epoch"] * 1000)
    logs.put_log_events(logGroupName=name, logStreamName="s", logEvents=[
        {"timestamp": now, "message": json.dumps({"level": "ERROR", "ms": 30, "device_id": "d1"})},
        {"timestamp": now + 1, "message": json.dumps({"level": "INFO", "ms": 10, "device_id": "d1"})},
    ])
    start, end = now // 1000 - 120, now // 1000 + 120
    errors = cw.get_metric_statistics(Namespace=ns, MetricName="ErrorCount", StartTime=start, EndTime=end,
                                      Period=240, Statistics=["Sum", "SampleCount"])["Datapoints"]
    assert [(p["Sum"], p["SampleCount"]) for p in errors] == [(1.0, 2.0)]  # the INFO line gave the default 0
    latency = cw.get_metric_statistics(Namespace=ns, MetricName="Latency", StartTime=start, EndTime=end,
                                       Dimensions=[{"Name": "Device", "Value": "d1"}], Period=240,
                                       Statistics=["Maximum"])["Datapoints"]
    assert latency[0]["Maximum"] == 30.0 and latency[0]["Unit"] == "Milliseconds"
    described = logs.describe_metric_filters(logGroupName=name)["metricFilters"]
    assert [f["filterName"] for f in described] == ["errors", "latency"]
    matches = logs.test_metric_filter(filterPattern='{ $.level = "ERROR" }', logEventMessages=[
        json.dumps({"level": "ERROR"}), json.dumps({"level": "INFO"})])["matches"]
    assert [m["eventNumber"] for m in matches] == [1]
    logs.delete_metric_filter(logGroupName=name, filterName="errors")
    assert len(logs.describe_metric_filters(logGroupName=name)["metricFilters"]) == 1


def test_dedup_regex_parse_log_fields_functions_and_more_aggregates(logs, group):
    name, now = group
    out = query(logs, name, "fields device_id, @logStream, @log | filter ispresent(device_id) "
                            "| sort @timestamp asc | dedup device_id", now)
    rows = table(out)
    assert [r["device_id"] for r in rows] == ["123456789", "555"]
    assert {r["@logStream"] for r in rows} == {"s1"} and all(r["@log"].endswith(name) for r in rows)
    out = query(logs, name, r"parse @message /\[(?<lvl>\w+)\] disk (?<used>\d+)% full/ "
                            "| filter ispresent(lvl) | fields lvl, used * 2 as doubled", now)
    assert table(out) == [{"lvl": "WARN", "doubled": "182"}]
    out = query(logs, name, "filter ispresent(log_event) and not level = 'ERROR' "
                            "| fields toupper(log_event) as up, strlen(device_id) as len, "
                            "concat(level, '/', detail.hub) as where, coalesce(missing, 'none') as fallback "
                            "| sort @timestamp asc", now)
    assert table(out) == [
        {"up": "NODEREGISTERSTARTED", "len": "9", "where": "INFO/h1", "fallback": "none"},
        {"up": "NODEREGISTERFINISHED", "len": "3", "where": "INFO/h2", "fallback": "none"}]
    out = query(logs, name, "filter ispresent(ms) | stats pct(ms, 50) as median, sum(ms) as total, "
                            "min(ms) as low, earliest(log_event) as first, latest(log_event) as last", now)
    assert table(out) == [{"median": "12", "total": "60", "low": "8", "first": "NodeRegisterStarted",
                           "last": "NodeRegisterFinished"}]
    finished = next(q["queryId"] for q in logs.describe_queries(logGroupName=name)["queries"]
                    if q["status"] == "Complete")
    with pytest.raises(ClientError) as exc:  # a finished query cannot be stopped
        logs.stop_query(queryId=finished)
    assert exc.value.response["Error"]["Code"] == "InvalidParameterException"
