"""Issue 16's benchmark: CloudWatch PutMetricData and GetMetricData against the boto3 floor,
alarm evaluation of 1,000 alarms in one clock minute, a Logs Insights
``stats count(*) by bin(5m)`` over many events, and an Athena query over GZIP JSON lines in
S3 against the same query as a plain Python JSON scan.

    python bench/observability.py [--quick] [--events N] [--athena-mb N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402

NS = "Bench/App"


def metric_calls(cw: Any, now: float) -> tuple[Any, Any]:
    def put() -> None:
        cw.put_metric_data(Namespace=NS, MetricData=[
            {"MetricName": "Latency", "Dimensions": [{"Name": "Api", "Value": "orders"}], "Value": 12.5,
             "Unit": "Milliseconds"}])

    def get() -> None:
        cw.get_metric_data(StartTime=now - 3600, EndTime=now + 60, MetricDataQueries=[
            {"Id": "m", "MetricStat": {"Metric": {"Namespace": NS, "MetricName": "Latency",
                                                  "Dimensions": [{"Name": "Api", "Value": "orders"}]},
                                       "Period": 60, "Stat": "Average"}}])
    return put, get


def metrics(n: int) -> dict[str, Any]:
    unkai = harness.start_unkai()
    floor = None
    try:
        cw = unkai.client("cloudwatch")
        now = time.time()
        put, get = metric_calls(cw, now)
        for _ in range(200):
            put()
        canned = {}
        for call in (lambda c: metric_calls(c, now)[0](), lambda c: metric_calls(c, now)[1]()):
            rec = harness.record(cw, call)
            canned[rec["key"]] = rec
        floor = harness.start_floor(canned)
        fput, fget = metric_calls(floor.client("cloudwatch"), now)
        out = {"floor": {"put": harness.stats(harness.timed(fput, n)), "get": harness.stats(harness.timed(fget, n))},
               "unkai": {"put": harness.stats(harness.timed(put, n)), "get": harness.stats(harness.timed(get, n))}}
        out["alarms"] = alarms(unkai)
        return out
    finally:
        unkai.stop()
        if floor is not None:
            floor.stop()


def alarms(unkai: Any, count: int = 1000) -> dict[str, Any]:
    """1,000 alarms on 1,000 metrics with data: the time one clock minute's evaluation takes
    (the advance request returns once the timers it fired are done)."""
    cw = unkai.client("cloudwatch")
    for start in range(0, count, 1000):
        cw.put_metric_data(Namespace=NS, MetricData=[
            {"MetricName": f"m{i}", "Value": float(i % 7)} for i in range(start, min(count, start + 1000))])
    for i in range(count):
        cw.put_metric_alarm(AlarmName=f"a{i}", Namespace=NS, MetricName=f"m{i}", Statistic="Maximum", Period=60,
                            EvaluationPeriods=1, Threshold=3, ComparisonOperator="GreaterThanThreshold")
    samples = []
    for _ in range(5):
        t = time.perf_counter()
        urllib.request.urlopen(urllib.request.Request(unkai.endpoint + "/_unkai/clock/advance?seconds=60",
                                                      data=b"", method="POST"), timeout=600).read()
        samples.append(time.perf_counter() - t)
    return {"alarms": count, "advance_60s": harness.stats(samples)}


def insights(events: int) -> dict[str, Any]:
    unkai = harness.start_unkai()
    try:
        logs = unkai.client("logs")
        logs.create_log_group(logGroupName="/bench")
        logs.create_log_stream(logGroupName="/bench", logStreamName="s")
        start = int(time.time() * 1000) - events  # one event per ms
        for base in range(0, events, 10000):
            logs.put_log_events(logGroupName="/bench", logStreamName="s", logEvents=[
                {"timestamp": start + i, "message": json.dumps({"level": "INFO", "n": i})}
                for i in range(base, min(events, base + 10000))])
        t = time.perf_counter()
        qid = logs.start_query(logGroupName="/bench", startTime=start // 1000 - 1, endTime=start // 1000 + events,
                               queryString="stats count(*) by bin(5m)")["queryId"]
        while logs.get_query_results(queryId=qid)["status"] == "Running":
            time.sleep(0.01)
        took = time.perf_counter() - t
        return {"events": events, "seconds": round(took, 3), "rss_mb": round(unkai.rss_mb(), 1)}
    finally:
        unkai.stop()


def athena(megabytes: int) -> dict[str, Any]:
    rng = random.Random(7)
    lines, size = [], 0
    devices = [str(100000000 + i) for i in range(1000)]
    while size < megabytes * 1_000_000:
        line = json.dumps({"device_id": rng.choice(devices), "level": rng.choice(["INFO", "INFO", "ERROR"]),
                           "log_event": "NodeRegisterFinished", "timestamp": 1527744698 + len(lines),
                           "message": "x" * 80})
        lines.append(line)
        size += len(line) + 1
    parts = [gzip.compress(("\n".join(lines[i::8]) + "\n").encode(), 1) for i in range(8)]
    unkai = harness.start_unkai()
    try:
        s3, glue, ath = unkai.client("s3"), unkai.client("glue"), unkai.client("athena")
        s3.create_bucket(Bucket="lake")
        for i, part in enumerate(parts):
            s3.put_object(Bucket="lake", Key=f"app/part-{i}.gz", Body=part)
        glue.create_database(DatabaseInput={"Name": "logs"})
        glue.create_table(DatabaseName="logs", TableInput={"Name": "application", "StorageDescriptor": {
            "Columns": [{"Name": "device_id", "Type": "string"}, {"Name": "level", "Type": "string"},
                        {"Name": "log_event", "Type": "string"}, {"Name": "timestamp", "Type": "bigint"},
                        {"Name": "message", "Type": "string"}],
            "Location": "s3://lake/app/", "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe"}}})
        query = ("SELECT level, count(*) AS n FROM application WHERE device_id='100000007' AND "
                 "timestamp>=1527744698 GROUP BY level ORDER BY level")
        t = time.perf_counter()
        qid = ath.start_query_execution(QueryString=query, QueryExecutionContext={"Database": "logs"},
                                        ResultConfiguration={"OutputLocation": "s3://lake/results/"})[
            "QueryExecutionId"]
        while ath.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] in (
                "QUEUED", "RUNNING"):
            time.sleep(0.01)
        took = time.perf_counter() - t
        state = ath.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"]
    finally:
        unkai.stop()
    t = time.perf_counter()
    counts: dict[str, int] = {}
    for part in parts:
        for raw in gzip.decompress(part).splitlines():
            row = json.loads(raw)
            if row["device_id"] == "100000007" and row["timestamp"] >= 1527744698:
                counts[row["level"]] = counts.get(row["level"], 0) + 1
    python = time.perf_counter() - t
    return {"megabytes": megabytes, "gzip_mb": round(sum(map(len, parts)) / 1e6, 1), "state": state,
            "athena_seconds": round(took, 3), "python_scan_seconds": round(python, 3),
            "speedup": round(python / took, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--athena-mb", type=int, default=None)
    args = parser.parse_args()
    n = 200 if args.quick else 1000
    events = args.events or (100_000 if args.quick else 1_000_000)
    mb = args.athena_mb or (50 if args.quick else 1000)
    results: dict[str, Any] = {"samples": n}
    print("metrics and alarms ...", flush=True)
    results["metrics"] = metrics(n)
    print(f"insights over {events:,} events ...", flush=True)
    results["insights"] = insights(events)
    print(f"athena over {mb} MB of JSON lines ...", flush=True)
    results["athena"] = athena(mb)
    path = harness.write("observability", results)
    m = results["metrics"]
    rows = [[op, f"{m['floor'][op]['median_ms']}", f"{m['unkai'][op]['median_ms']}",
             f"{m['unkai'][op]['median_ms'] / m['floor'][op]['median_ms']:.2f}x"] for op in ("put", "get")]
    print(harness.table(rows, ["operation (median ms)", "floor", "unkai", "ratio"]))
    print(f"alarm evaluation, {m['alarms']['alarms']} alarms: advance(60) median "
          f"{m['alarms']['advance_60s']['median_ms']} ms")
    print(f"insights stats count(*) by bin(5m) over {events:,} events: {results['insights']['seconds']} s")
    a = results["athena"]
    print(f"athena over {a['megabytes']} MB ({a['gzip_mb']} MB gzip): {a['athena_seconds']} s, python scan "
          f"{a['python_scan_seconds']} s ({a['speedup']}x)")
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
