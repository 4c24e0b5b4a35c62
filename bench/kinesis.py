"""Issue 15's benchmark: Kinesis PutRecord and GetRecords through boto3 against the floor
(the same answers replayed by a trivial server: what remains is boto3's own cost);
PutRecords of 500 records from one client; Kinesis -> Lambda at batch 100; GetRecords
on a shard holding 1,000,000 records against a shard holding 1,000 (TRIM_HORIZON) or
none (LATEST); Firehose: 100,000 records to S3 with GZIP, seconds until the last object
is written.

    python bench/kinesis.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402

DATA = b"x" * 100


def post(server: harness.Server, path: str) -> Any:
    req = urllib.request.Request(server.endpoint + path, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=600) as resp:
        return json.loads(resp.read() or b"null")


def drain(server: harness.Server) -> None:
    post(server, "/_unkai/drain?timeout=600")


class Scenario:
    def __init__(self, server: harness.Server, make: bool = True) -> None:
        self.server = server
        self.kin = server.client("kinesis")
        if make:
            self.kin.create_stream(StreamName="bench", ShardCount=4)
            for i in range(100):
                self.kin.put_record(StreamName="bench", Data=DATA, PartitionKey=str(i))
        self.it = ""
        self.i = 0

    def put(self) -> None:
        self.i += 1
        self.kin.put_record(StreamName="bench", Data=DATA, PartitionKey=str(self.i))

    def get(self) -> None:
        if not self.it:
            self.it = self.kin.get_shard_iterator(StreamName="bench", ShardId="shardId-000000000000",
                                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        self.kin.get_records(ShardIterator=self.it, Limit=10)


def floor_for(unkai: Scenario) -> Scenario:
    canned = {}
    unkai.get()
    for op in (unkai.put, unkai.get):
        rec = harness.record(unkai.kin, lambda c, op=op: op())
        canned[rec["key"]] = rec
    floor = Scenario(harness.start_floor(canned), make=False)
    floor.it = unkai.it
    return floor


def put_records_rate(server: harness.Server, seconds: float) -> float:
    kin = server.client("kinesis")
    kin.create_stream(StreamName="wide", ShardCount=64)
    batch = [{"Data": DATA, "PartitionKey": uuid.uuid4().hex} for _ in range(500)]
    done, failed = 0, 0
    stop = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < stop:
        out = kin.put_records(StreamName="wide", Records=batch)
        done += 500 - out["FailedRecordCount"]
        failed += out["FailedRecordCount"]
    if failed:
        print(f"  ({failed} records throttled)")
    return done / (time.perf_counter() - started)


def lambda_rate(server: harness.Server, records: int) -> float:
    kin, lam = server.client("kinesis"), server.client("lambda")
    kin.create_stream(StreamName="to-lambda", ShardCount=8)
    arn = kin.describe_stream_summary(StreamName="to-lambda")["StreamDescriptionSummary"]["StreamARN"]
    batch = [{"Data": DATA, "PartitionKey": uuid.uuid4().hex} for _ in range(500)]
    for i in range(records // 500):
        kin.put_records(StreamName="to-lambda", Records=batch)
        if i % 8 == 7:
            post(server, "/_unkai/clock/advance?seconds=1")  # stay under 1,000 records/s per shard
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", "def handler(event, context):\n    return len(event['Records'])\n")
    lam.create_function(FunctionName="sink", Runtime="python3.11", Role="arn:aws:iam::000000000000:role/r",
                        Handler="app.handler", Code={"ZipFile": buf.getvalue()})
    lam.invoke(FunctionName="sink", Payload=b'{"Records": []}')  # warm
    started = time.perf_counter()
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="sink", StartingPosition="TRIM_HORIZON",
                                    BatchSize=100)
    time.sleep(0.5)
    drain(server)
    return records / (time.perf_counter() - started)


def big_shard(server: harness.Server, records: int, n: int) -> dict[str, Any]:
    """GetRecords on a 1-shard stream of ``records`` records vs one of 1,000 and an empty one."""
    kin = server.client("kinesis")
    for name in ("big", "small", "empty"):
        kin.create_stream(StreamName=name, ShardCount=1)
    batch = [{"Data": DATA, "PartitionKey": "p"} for _ in range(500)]
    started = time.perf_counter()
    for i in range(records // 500):
        if i % 2 == 0:
            post(server, "/_unkai/clock/advance?seconds=1")  # a shard takes 1,000 records per clock second
        kin.put_records(StreamName="big", Records=batch)
    load = time.perf_counter() - started
    post(server, "/_unkai/clock/advance?seconds=1")
    kin.put_records(StreamName="small", Records=batch)
    kin.put_records(StreamName="small", Records=batch)

    def reader(stream: str, kind: str) -> Any:
        def call() -> None:
            it = kin.get_shard_iterator(StreamName=stream, ShardId="shardId-000000000000",
                                        ShardIteratorType=kind)["ShardIterator"]
            kin.get_records(ShardIterator=it, Limit=100)
        return call

    out: dict[str, Any] = {"load_seconds": round(load, 1)}
    for label, stream, kind in (("trim_horizon_big", "big", "TRIM_HORIZON"),
                                ("trim_horizon_1000", "small", "TRIM_HORIZON"),
                                ("latest_big", "big", "LATEST"), ("latest_empty", "empty", "LATEST")):
        out[label] = harness.stats(harness.timed(reader(stream, kind), n))
    return out


def firehose_seconds(server: harness.Server, records: int) -> float:
    s3, fh = server.client("s3"), server.client("firehose")
    s3.create_bucket(Bucket="archive")
    fh.create_delivery_stream(DeliveryStreamName="bench", ExtendedS3DestinationConfiguration={
        "RoleARN": "arn:aws:iam::000000000000:role/r", "BucketARN": "arn:aws:s3:::archive",
        "CompressionFormat": "GZIP", "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 60}})
    batch = [{"Data": b'{"level": "info", "message": "' + DATA + b'"}\n'} for _ in range(500)]
    started = time.perf_counter()
    for _ in range(records // 500):
        fh.put_record_batch(DeliveryStreamName="bench", Records=batch)
    post(server, "/_unkai/clock/advance?seconds=61")  # the last, partial buffer's interval
    drain(server)
    took = time.perf_counter() - started
    count = s3.list_objects_v2(Bucket="archive").get("KeyCount", 0)
    print(f"  {count} objects")
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 300 if args.quick else 2000
    big = 100_000 if args.quick else 1_000_000
    results: dict[str, Any] = {"samples": n}
    unkai = Scenario(harness.start_unkai())
    floor = floor_for(unkai)
    try:
        for op in ("put", "get"):
            for name, target in (("floor", floor), ("unkai", unkai)):
                results.setdefault(name, {})[f"{op}_record{'s' if op == 'get' else ''}"] = \
                    harness.stats(harness.timed(getattr(target, op), n))
        print("PutRecords of 500 ...", flush=True)
        results["put_records_500_per_s"] = round(put_records_rate(unkai.server, 5 if args.quick else 10))
        print("Kinesis -> Lambda ...", flush=True)
        results["lambda_batch_100_records_per_s"] = round(lambda_rate(unkai.server, 20_000 if args.quick else 100_000))
        print(f"loading {big:,} records into one shard ...", flush=True)
        results["big"] = big
        results["get_records_by_shard_size"] = big_shard(unkai.server, big, n // 2)
        print("Firehose ...", flush=True)
        results["firehose_100k_gzip_seconds"] = round(firehose_seconds(unkai.server, 100_000), 1)
        results["unkai_rss_mb"] = round(unkai.server.rss_mb(), 1)
    finally:
        unkai.server.stop()
        floor.server.stop()
    path = harness.write("kinesis", results)
    print(report(results))
    print(f"\nwritten to {path}")


def report(r: dict[str, Any]) -> str:
    rows = []
    for op in ("put_record", "get_records"):
        f, u = r["floor"][op], r["unkai"][op]
        rows.append([op, f"{f['median_ms']} / {f['p99_ms']}",
                     f"{u['median_ms']} / {u['p99_ms']} ({u['median_ms'] / f['median_ms']:.2f}x)"])
    g = r["get_records_by_shard_size"]
    rows.append([f"GetShardIterator+GetRecords TRIM_HORIZON, {r['big']:,} records", "",
                 f"{g['trim_horizon_big']['median_ms']} / {g['trim_horizon_big']['p99_ms']} "
                 f"({g['trim_horizon_big']['median_ms'] / g['trim_horizon_1000']['median_ms']:.2f}x 1,000 records)"])
    rows.append([f"GetShardIterator+GetRecords LATEST, {r['big']:,} records", "",
                 f"{g['latest_big']['median_ms']} / {g['latest_big']['p99_ms']} "
                 f"({g['latest_big']['median_ms'] / g['latest_empty']['median_ms']:.2f}x empty)"])
    rows.append(["PutRecords of 500, records/s, one client", "", str(r["put_records_500_per_s"])])
    rows.append(["Kinesis -> Lambda, batch 100, records/s", "", str(r["lambda_batch_100_records_per_s"])])
    rows.append(["Firehose 100,000 records, GZIP: s until the last object", "", str(r["firehose_100k_gzip_seconds"])])
    return harness.table(rows, ["measure (median / p99 ms)", "floor", "unkai"])


if __name__ == "__main__":
    main()
