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
import os
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


def start_unkai(src: str | None = None) -> Any:
    """unkai, installed or (``src``) from an older tree unpacked with ``git archive``."""
    if not src:
        return harness.start_unkai()
    os.environ["UNKAI_BENCH_SRC"] = src
    try:
        return harness.start_unkai()
    finally:
        del os.environ["UNKAI_BENCH_SRC"]


SQS_BODY = "bench-message-0123456789"


def metrics(n: int, calls_per_round: int = 10, before: str | None = None) -> dict[str, Any]:
    """PutMetricData, GetMetricData and, as the reference on the same path, SQS SendMessage,
    against the floor (and ``before``, an older unkai). Targets take turns in rounds
    (``calls_per_round`` calls of each operation on each), as bench/ratios.py does, so a
    burst of load from elsewhere falls on all alike; each unkai's server CPU is summed over
    its own turns only."""
    servers: dict[str, Any] = {}
    try:
        servers["unkai"] = start_unkai()
        if before:
            servers["unkai before"] = start_unkai(before)
        now = time.time()
        ops: dict[str, dict[str, Any]] = {"put": {}, "get": {}, "sqs send": {}}
        canned = {}
        for name, server in servers.items():
            cw, sqs = server.client("cloudwatch"), server.client("sqs")
            url = sqs.create_queue(QueueName="bench")["QueueUrl"]
            put, get = metric_calls(cw, now)
            for _ in range(200):
                put()
            ops["put"][name], ops["get"][name] = put, get
            ops["sqs send"][name] = lambda sqs=sqs, url=url: sqs.send_message(QueueUrl=url, MessageBody=SQS_BODY)
            if name == "unkai":
                for client, call in ((cw, lambda c: metric_calls(c, now)[0]()),
                                     (cw, lambda c: metric_calls(c, now)[1]()),
                                     (sqs, lambda c, url=url: c.send_message(QueueUrl=url, MessageBody=SQS_BODY))):
                    rec = harness.record(client, call)
                    canned[rec["key"]] = rec
                floor_url = url
        floor = servers["floor"] = harness.start_floor(canned)
        fsqs = floor.client("sqs")
        ops["put"]["floor"], ops["get"]["floor"] = metric_calls(floor.client("cloudwatch"), now)
        furl = floor_url.replace(servers["unkai"].endpoint, floor.endpoint)
        ops["sqs send"]["floor"] = lambda: fsqs.send_message(QueueUrl=furl, MessageBody=SQS_BODY)
        names = ["floor", *(k for k in servers if k != "floor")]
        samples = {name: {op: [] for op in ops} for name in names}
        cpu = {name: {op: 0.0 for op in ops} for name in names}
        for calls in ops.values():  # warm every path
            for fn in calls.values():
                for _ in range(50):
                    fn()
        for _ in range(max(1, n // calls_per_round)):
            for op, calls in ops.items():
                for name in names:
                    fn, was = calls[name], server_cpu(servers[name])
                    for _ in range(calls_per_round):
                        t = time.perf_counter()
                        fn()
                        samples[name][op].append(time.perf_counter() - t)
                    cpu[name][op] += server_cpu(servers[name]) - was
        out: dict[str, Any] = {"calls_per_round": calls_per_round, "before": before or ""}
        for name in names:
            key = name.replace(" ", "_")
            out[key] = {op: harness.stats(samples[name][op]) for op in ops}
            out[f"{key}_server_cpu_ms"] = {op: round(cpu[name][op] / len(samples[name][op]) * 1000, 3) for op in ops}
            if name != "floor":
                out[f"{key}_ratio"] = {op: round(out[key][op]["median_ms"] / out["floor"][op]["median_ms"], 2)
                                       for op in ops}
        out["alarms"] = alarms(servers["unkai"])
        return out
    finally:
        for server in servers.values():
            server.stop()


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


def athena_parts(megabytes: int, cache: str | None = None) -> tuple[list[bytes], int]:
    """``megabytes`` of JSON lines in 8 gzip objects, and the number of lines. The lines are
    generated and compressed part by part, so 1 GB needs no gigabyte of memory; with
    ``cache`` (a directory) they are kept there and reused by the next run of the same size."""
    folder = Path(cache) / f"athena-{megabytes}mb" if cache else None
    if folder is not None and (folder / "lines").exists():
        return [(folder / f"part-{i}.gz").read_bytes() for i in range(8)], int((folder / "lines").read_text())
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
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        for i, part in enumerate(parts):
            (folder / f"part-{i}.gz").write_bytes(part)
        (folder / "lines").write_text(str(n))
    return parts, n


ATHENA_QUERY = ("SELECT level, count(*) AS n FROM application WHERE device_id='100000007' AND "
                "timestamp>=1527744698 GROUP BY level ORDER BY level")


def athena_runs(unkai: Any, parts: list[bytes], runs: int) -> tuple[list[tuple[float, float]], str, list]:
    """The query ``runs`` times on ``unkai`` over ``parts``: (wall, server CPU) per run, the
    last state and its rows."""
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
    out = []
    for _ in range(runs):
        cpu, t = server_cpu(unkai), time.perf_counter()
        qid = ath.start_query_execution(QueryString=ATHENA_QUERY, QueryExecutionContext={"Database": "logs"},
                                        ResultConfiguration={"OutputLocation": "s3://lake/results/"})[
            "QueryExecutionId"]
        while ath.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] in (
                "QUEUED", "RUNNING"):
            time.sleep(0.01)
        out.append((time.perf_counter() - t, server_cpu(unkai) - cpu))
    state = ath.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"]
    rows = []
    if state == "SUCCEEDED":
        rows = [[c.get("VarCharValue") for c in r["Data"]]
                for r in ath.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"][1:]]
    return out, state, rows


def athena(megabytes: int, before: str | None = None, runs: int = 3, cache: str | None = None) -> dict[str, Any]:
    """The talk's query over ``megabytes`` of JSON lines in 8 gzip objects, through Athena (and
    through ``before``, an older unkai, on the same data) and through a plain Python scan
    (json.loads per line); the best of ``runs`` for each unkai, whose rows must equal the scan's."""
    parts, n = athena_parts(megabytes, cache)
    measured: dict[str, Any] = {}
    for name, src in (("unkai before", before), ("unkai", None)) if before else (("unkai", None),):
        server = start_unkai(src)
        try:
            measured[name] = athena_runs(server, parts, runs)
        finally:
            server.stop()
    t, cpu = time.perf_counter(), time.process_time()
    counts: dict[str, int] = {}
    for part in parts:
        for raw in gzip.GzipFile(fileobj=io.BytesIO(part)):
            row = json.loads(raw)
            if row["device_id"] == "100000007" and row["timestamp"] >= 1527744698:
                counts[row["level"]] = counts.get(row["level"], 0) + 1
    python, python_cpu = time.perf_counter() - t, time.process_time() - cpu
    expected = [[level, str(count)] for level, count in sorted(counts.items())]
    out: dict[str, Any] = {"megabytes": megabytes, "gzip_mb": round(sum(map(len, parts)) / 1e6, 1), "lines": n,
                           "python_scan_seconds": round(python, 3), "python_scan_cpu_seconds": round(python_cpu, 3)}
    for name, (timings, state, rows) in measured.items():
        took, athena_cpu = min(timings)
        prefix = "" if name == "unkai" else "before_"
        out.update({f"{prefix}state": state, f"{prefix}rows_match_scan": rows == expected,
                    f"{prefix}athena_seconds": round(took, 3), f"{prefix}athena_cpu_seconds": round(athena_cpu, 3),
                    f"{prefix}speedup": round(python / took, 2), f"{prefix}cpu_speedup": round(python_cpu / athena_cpu, 2),
                    f"{prefix}runs": [[round(w, 3), round(c, 3)] for w, c in timings]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--athena-mb", type=int, default=None)
    parser.add_argument("--athena-cache", default=None,
                        help="a directory to keep the generated Athena data in and reuse it from")
    parser.add_argument("--before", default=None,
                        help="also measure the unkai in this source tree (git archive of an older commit) "
                             "for metrics and Athena, in the same run")
    parser.add_argument("--out", default=None, help="results file name (bench/results/NAME.json)")
    parser.add_argument("--only", choices=("metrics", "insights", "athena"), default=None,
                        help="run one part (its results are written alone)")
    args = parser.parse_args()
    n = 200 if args.quick else 1000
    events = args.events or (100_000 if args.quick else 1_000_000)
    mb = args.athena_mb or (50 if args.quick else 1000)
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    results: dict[str, Any] = {"samples": n, "commit": commit, "time_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                               "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    if args.only in (None, "metrics"):
        print("metrics and alarms ...", flush=True)
        results["metrics"] = metrics(n, before=args.before)
    if args.only in (None, "insights"):
        print(f"insights over {events:,} events ...", flush=True)
        results["insights"] = insights(events)
    if args.only in (None, "athena"):
        print(f"athena over {mb} MB of JSON lines ...", flush=True)
        results["athena"] = athena(mb, before=args.before, cache=args.athena_cache)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    path = harness.write(args.out or ("observability" if args.only is None else f"observability-{args.only}"),
                         results)
    if "metrics" in results:
        m = results["metrics"]
        names = [k for k in ("unkai", "unkai_before") if k in m]
        rows = [[op, f"{m['floor'][op]['median_ms']}",
                 *(f"{m[k][op]['median_ms']} ({m[k + '_ratio'][op]:.2f}x), CPU {m[k + '_server_cpu_ms'][op]}"
                   for k in names)] for op in m["floor"]]
        print(harness.table(rows, ["median ms (ratio to floor), server CPU ms per call", "floor", *names]))
        print(f"alarm evaluation, {m['alarms']['alarms']} alarms: advance(60) median "
              f"{m['alarms']['advance_60s']['median_ms']} ms")
    if "insights" in results:
        i = results["insights"]
        print(f"insights stats count(*) by bin(5m) over {events:,} events: {i['seconds']} s "
              f"(server CPU {i['server_cpu_seconds']} s)")
    if "athena" in results:
        a = results["athena"]
        for prefix, label in (("before_", "before"), ("", "unkai")):
            if f"{prefix}athena_seconds" in a:
                print(f"{label}: athena over {a['megabytes']} MB ({a['gzip_mb']} MB gzip): {a[prefix + 'athena_seconds']}"
                      f" s, python scan {a['python_scan_seconds']} s ({a[prefix + 'speedup']}x); CPU "
                      f"{a[prefix + 'athena_cpu_seconds']} s vs {a['python_scan_cpu_seconds']} s "
                      f"({a[prefix + 'cpu_speedup']}x); {a[prefix + 'state']}, rows match the scan: "
                      f"{a[prefix + 'rows_match_scan']}")
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
