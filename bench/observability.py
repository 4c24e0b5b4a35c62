"""Issue 16's benchmark: CloudWatch PutMetricData and GetMetricData against the boto3 floor,
alarm evaluation of 1,000 alarms in one clock minute, a Logs Insights
``stats count(*) by bin(5m)`` over many events, and an Athena query over GZIP JSON lines in
S3 against the same query as a plain Python JSON scan.

    python bench/observability.py [--quick] [--events N] [--athena-mb N]
"""

from __future__ import annotations

import argparse
import gzip
import io
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


def server_cpu(server: Any) -> float:
    """CPU seconds (user + system, all threads) the server process has used: steadier than
    wall time on a shared, loaded machine."""
    return harness.cpu_seconds(server.proc.pid)


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


def metrics(n: int, calls_per_round: int = 10) -> dict[str, Any]:
    """PutMetricData, GetMetricData and, as the reference on the same path, SQS SendMessage,
    against the floor. Targets take turns in rounds (``calls_per_round`` calls of each
    operation on the floor, then on unkai), as bench/ratios.py does, so a burst of load from
    elsewhere falls on both alike; unkai's server CPU is summed over its own turns only."""
    unkai = harness.start_unkai()
    floor = None
    try:
        cw, sqs = unkai.client("cloudwatch"), unkai.client("sqs")
        url = sqs.create_queue(QueueName="bench")["QueueUrl"]
        now = time.time()
        put, get = metric_calls(cw, now)
        for _ in range(200):
            put()
        canned = {}
        for client, call in ((cw, lambda c: metric_calls(c, now)[0]()), (cw, lambda c: metric_calls(c, now)[1]()),
                             (sqs, lambda c: c.send_message(QueueUrl=url, MessageBody="bench-message-0123456789"))):
            rec = harness.record(client, call)
            canned[rec["key"]] = rec
        floor = harness.start_floor(canned)
        fsqs = floor.client("sqs")
        fput, fget = metric_calls(floor.client("cloudwatch"), now)
        furl = url.replace(unkai.endpoint, floor.endpoint)
        ops = {"put": (fput, put), "get": (fget, get),
               "sqs send": (lambda: fsqs.send_message(QueueUrl=furl, MessageBody="bench-message-0123456789"),
                            lambda: sqs.send_message(QueueUrl=url, MessageBody="bench-message-0123456789"))}
        samples: dict[str, dict[str, list[float]]] = {"floor": {op: [] for op in ops}, "unkai": {op: [] for op in ops}}
        cpu = {op: 0.0 for op in ops}
        for fcall, call in ops.values():  # warm both
            for _ in range(50):
                fcall()
                call()
        for _ in range(max(1, n // calls_per_round)):
            for op, (fcall, call) in ops.items():
                for name, fn in (("floor", fcall), ("unkai", call)):
                    before = server_cpu(unkai)
                    for _ in range(calls_per_round):
                        t = time.perf_counter()
                        fn()
                        samples[name][op].append(time.perf_counter() - t)
                    if name == "unkai":
                        cpu[op] += server_cpu(unkai) - before
        out: dict[str, Any] = {"calls_per_round": calls_per_round, "floor": {}, "unkai": {},
                               "unkai_server_cpu_ms": {}, "ratio": {}}
        for op in ops:
            out["floor"][op] = harness.stats(samples["floor"][op])
            out["unkai"][op] = harness.stats(samples["unkai"][op])
            out["ratio"][op] = round(out["unkai"][op]["median_ms"] / out["floor"][op]["median_ms"], 2)
            out["unkai_server_cpu_ms"][op] = round(cpu[op] / len(samples["unkai"][op]) * 1000, 3)
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
        runs = []
        for _ in range(3):
            cpu, t = server_cpu(unkai), time.perf_counter()
            qid = logs.start_query(logGroupName="/bench", startTime=start // 1000 - 1,
                                   endTime=start // 1000 + events, queryString="stats count(*) by bin(5m)")["queryId"]
            while (out := logs.get_query_results(queryId=qid))["status"] == "Running":
                time.sleep(0.05)
            runs.append((time.perf_counter() - t, server_cpu(unkai) - cpu))
            assert out["status"] == "Complete" and out["statistics"]["recordsScanned"] == events, out
        took, cpu = min(runs)
        return {"events": events, "seconds": round(took, 3), "server_cpu_seconds": round(cpu, 3),
                "runs": [[round(w, 3), round(c, 3)] for w, c in runs], "rss_mb": round(unkai.rss_mb(), 1)}
    finally:
        unkai.stop()


def athena(megabytes: int) -> dict[str, Any]:
    """The talk's query over ``megabytes`` of JSON lines in 8 gzip objects, through Athena and
    through a plain Python scan (json.loads per line). The lines are generated and compressed
    part by part, so 1 GB needs no gigabyte of memory."""
    rng = random.Random(7)
    devices = [str(100000000 + i) for i in range(1000)]
    per_part = megabytes * 1_000_000 // 8
    parts, n = [], 0
    for _ in range(8):
        packer = gzip.GzipFile(fileobj=(buf := io.BytesIO()), mode="wb", compresslevel=1)
        size, chunk = 0, []
        while size < per_part:
            line = json.dumps({"device_id": rng.choice(devices), "level": rng.choice(["INFO", "INFO", "ERROR"]),
                               "log_event": "NodeRegisterFinished", "timestamp": 1527744698 + n,
                               "message": "x" * 80})
            n += 1
            chunk.append(line)
            size += len(line) + 1
            if len(chunk) >= 10000:
                packer.write(("\n".join(chunk) + "\n").encode())
                chunk = []
        if chunk:
            packer.write(("\n".join(chunk) + "\n").encode())
        packer.close()
        parts.append(buf.getvalue())
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
        runs = []
        for _ in range(2):
            cpu, t = server_cpu(unkai), time.perf_counter()
            qid = ath.start_query_execution(QueryString=query, QueryExecutionContext={"Database": "logs"},
                                            ResultConfiguration={"OutputLocation": "s3://lake/results/"})[
                "QueryExecutionId"]
            while ath.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] in (
                    "QUEUED", "RUNNING"):
                time.sleep(0.01)
            runs.append((time.perf_counter() - t, server_cpu(unkai) - cpu))
        took, athena_cpu = min(runs)
        state = ath.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"]
    finally:
        unkai.stop()
    t, cpu = time.perf_counter(), time.process_time()
    counts: dict[str, int] = {}
    for part in parts:
        for raw in gzip.GzipFile(fileobj=io.BytesIO(part)):
            row = json.loads(raw)
            if row["device_id"] == "100000007" and row["timestamp"] >= 1527744698:
                counts[row["level"]] = counts.get(row["level"], 0) + 1
    python, python_cpu = time.perf_counter() - t, time.process_time() - cpu
    return {"megabytes": megabytes, "gzip_mb": round(sum(map(len, parts)) / 1e6, 1), "state": state,
            "athena_seconds": round(took, 3), "python_scan_seconds": round(python, 3),
            "athena_cpu_seconds": round(athena_cpu, 3), "python_scan_cpu_seconds": round(python_cpu, 3),
            "lines": n, "speedup": round(python / took, 2), "cpu_speedup": round(python_cpu / athena_cpu, 2),
            "runs": [[round(w, 3), round(c, 3)] for w, c in runs]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--athena-mb", type=int, default=None)
    parser.add_argument("--only", choices=("metrics", "insights", "athena"), default=None,
                        help="run one part (its results are written alone)")
    args = parser.parse_args()
    n = 200 if args.quick else 1000
    events = args.events or (100_000 if args.quick else 1_000_000)
    mb = args.athena_mb or (50 if args.quick else 1000)
    import os
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    results: dict[str, Any] = {"samples": n, "commit": commit, "time_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                               "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    if args.only in (None, "metrics"):
        print("metrics and alarms ...", flush=True)
        results["metrics"] = metrics(n)
    if args.only in (None, "insights"):
        print(f"insights over {events:,} events ...", flush=True)
        results["insights"] = insights(events)
    if args.only in (None, "athena"):
        print(f"athena over {mb} MB of JSON lines ...", flush=True)
        results["athena"] = athena(mb)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    path = harness.write("observability" if args.only is None else f"observability-{args.only}", results)
    if "metrics" in results:
        m = results["metrics"]
        rows = [[op, f"{m['floor'][op]['median_ms']}", f"{m['unkai'][op]['median_ms']}",
                 f"{m['unkai'][op]['median_ms'] / m['floor'][op]['median_ms']:.2f}x"] for op in m["floor"]]
        print(harness.table(rows, ["operation (median ms)", "floor", "unkai", "ratio"]))
        print(f"unkai server CPU per request: {m['unkai_server_cpu_ms']} ms")
        print(f"alarm evaluation, {m['alarms']['alarms']} alarms: advance(60) median "
              f"{m['alarms']['advance_60s']['median_ms']} ms")
    if "insights" in results:
        i = results["insights"]
        print(f"insights stats count(*) by bin(5m) over {events:,} events: {i['seconds']} s "
              f"(server CPU {i['server_cpu_seconds']} s)")
    if "athena" in results:
        a = results["athena"]
        print(f"athena over {a['megabytes']} MB ({a['gzip_mb']} MB gzip): {a['athena_seconds']} s, python scan "
              f"{a['python_scan_seconds']} s ({a['speedup']}x); CPU {a['athena_cpu_seconds']} s vs "
              f"{a['python_scan_cpu_seconds']} s ({a['cpu_speedup']}x)")
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
