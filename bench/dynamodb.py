"""Issue 3's benchmark: put_item, get_item, a conditional update_item and a Query
returning 10 items through boto3, against the floor, unkai, moto's server and
ministack, all in one run; plus unkai's Query at 1,000,000 items against the same
Query at 1,000 items, and put_item/s from 4 client threads into a table with a
stream.

    python bench/dynamodb.py [--quick]

Needs the bench extras: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402

TABLE = "bench"
PAYLOAD = "x" * 100


def create(ddb: Any, name: str, stream: bool = True) -> None:
    extra = {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}} if stream else {}
    ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "N"}], **extra)


def load(server: harness.Server, name: str, partitions: int, per_partition: int, threads: int = 4) -> None:
    """partitions x per_partition items, 25 to a BatchWriteItem, from a few client threads."""
    keys = ((f"p{p}", s) for p in range(partitions) for s in range(per_partition))
    lock = threading.Lock()

    def run() -> None:
        ddb = server.client("dynamodb")
        while True:
            with lock:
                chunk = list(itertools.islice(keys, 25))
            if not chunk:
                return
            ddb.batch_write_item(RequestItems={name: [
                {"PutRequest": {"Item": {"pk": {"S": pk}, "sk": {"N": str(sk)}, "data": {"S": PAYLOAD}}}}
                for pk, sk in chunk]})

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


class Scenario:
    """The calls measured, against one target's table."""

    def __init__(self, server: harness.Server, table: str = TABLE, make: bool = True) -> None:
        self.server = server
        self.table = table
        self.ddb = server.client("dynamodb")
        if make:
            create(self.ddb, table)
            load(server, table, 1, 10, threads=1)  # partition p0 holds the 10 items the Query returns
            self.ddb.put_item(TableName=table, Item={"pk": {"S": "counter"}, "sk": {"N": "0"}, "n": {"N": "0"}})
        self.i = 0

    def put(self) -> None:
        self.i += 1
        self.ddb.put_item(TableName=self.table, Item={"pk": {"S": f"w{self.i % 1000}"}, "sk": {"N": str(self.i)},
                                                      "data": {"S": PAYLOAD}})

    def get(self) -> None:
        self.ddb.get_item(TableName=self.table, Key={"pk": {"S": "p0"}, "sk": {"N": "5"}})

    def update(self) -> None:
        self.ddb.update_item(TableName=self.table, Key={"pk": {"S": "counter"}, "sk": {"N": "0"}},
                             UpdateExpression="SET n = n + :one", ConditionExpression="attribute_exists(pk)",
                             ExpressionAttributeValues={":one": {"N": "1"}})

    def query(self, pk: str = "p0") -> None:
        r = self.ddb.query(TableName=self.table, KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
                           ExpressionAttributeValues={":p": {"S": pk}, ":a": {"N": "0"}, ":b": {"N": "9"}})
        if r["Count"] != 10:
            raise RuntimeError(f"{self.server.name}: query returned {r['Count']} items")


def floor_for(unkai: Scenario) -> harness.Server:
    """Record unkai's answers to the exact calls measured."""
    canned = {}
    for op in (unkai.put, unkai.get, unkai.update, unkai.query):
        rec = harness.record(unkai.ddb, lambda c, op=op: op())
        canned[rec["key"]] = rec
    return harness.start_floor(canned)


def throughput(server: harness.Server, table: str, seconds: float, threads: int = 4) -> float:
    counts = [0] * threads
    stop = time.monotonic() + seconds

    def run(t: int) -> None:
        client = server.client("dynamodb")
        i = 0
        while time.monotonic() < stop:
            i += 1
            client.put_item(TableName=table, Item={"pk": {"S": f"t{t}-{i % 500}"}, "sk": {"N": str(i)},
                                                   "data": {"S": PAYLOAD}})
            counts[t] += 1

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) / seconds


OPERATIONS = {"put_item": "put", "get_item": "get", "update_item_conditional": "update", "query_10_items": "query"}


def interleaved(calls: dict[str, Any], rounds: int, warmup: int = 30) -> dict[str, list[float]]:
    """Time each call once per round, in a shuffled order, so every target sees the same
    machine (a busy neighbour slows all of them alike, not whichever ran at the time)."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls)
    for i in range(warmup + rounds):
        random.shuffle(order)
        for name in order:
            t = time.perf_counter()
            calls[name]()
            if i >= warmup:
                samples[name].append(time.perf_counter() - t)
    return samples


def measure(scenarios: dict[str, Scenario], n: int, n_slow: int) -> dict[str, dict[str, Any]]:
    """Every operation on every target, interleaved: all targets for n_slow rounds, then
    the floor and unkai alone for the rest."""
    results: dict[str, dict[str, Any]] = {name: {} for name in scenarios}
    fast = {k: v for k, v in scenarios.items() if k in ("floor", "unkai")}
    for op, method in OPERATIONS.items():
        print(f"  {op} ...", flush=True)
        samples = interleaved({k: getattr(v, method) for k, v in scenarios.items()}, n_slow)
        more = interleaved({k: getattr(v, method) for k, v in fast.items()}, max(0, n - n_slow), warmup=0)
        for name in scenarios:
            results[name][op] = harness.stats(samples[name] + more.get(name, []))
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer samples, 100,000 items instead of 1,000,000")
    args = parser.parse_args()
    n = 300 if args.quick else 2000
    n_slow = 100 if args.quick else 300
    big = 100_000 if args.quick else 1_000_000
    results: dict[str, Any] = {"samples": n, "samples_slow_peers": n_slow}

    with harness.compared(Scenario, lambda u: Scenario(floor_for(u), make=False)) as scenarios:
        unkai = scenarios["unkai"].server
        print("measuring every target, interleaved ...", flush=True)
        results.update(measure(scenarios, n, n_slow))
        for name, s in scenarios.items():
            if name != "floor":
                print(f"put_item/s from 4 threads: {name} ...", flush=True)
                results[name]["puts_per_s_4_threads_stream"] = round(throughput(s.server, s.table,
                                                                                3 if args.quick else 5))
        # Query cost against table size: the same 10-item Query on 1,000 and on `big` items.
        small = Scenario(unkai, "small", make=False)
        create(small.ddb, "small", stream=False)
        load(unkai, "small", 100, 10)
        print(f"loading {big:,} items into unkai ...", flush=True)
        started = time.perf_counter()
        large = Scenario(unkai, "large", make=False)
        create(large.ddb, "large", stream=False)
        load(unkai, "large", big // 10, 10)
        results["load_seconds"] = round(time.perf_counter() - started, 1)
        sizes = interleaved({"small": lambda: small.query("p50"), "large": lambda: large.query(f"p{big // 20}")}, n)
        results["query_1k_items"] = harness.stats(sizes["small"])
        results[f"query_{big // 1000}k_items"] = harness.stats(sizes["large"])
        results["big"] = big
        results["unkai_rss_mb"] = round(unkai.rss_mb(), 1)
    path = harness.write("dynamodb", results)
    print(report(results))
    print(f"\nwritten to {path}")


def report(r: dict[str, Any]) -> str:
    rows = []
    floor = r["floor"]
    for op in ("put_item", "get_item", "update_item_conditional", "query_10_items"):
        row = [op, f"{floor[op]['median_ms']} / {floor[op]['p99_ms']}"]
        for name in ("unkai", "moto", "ministack"):
            if name in r and op in r[name]:
                m = r[name][op]
                row.append(f"{m['median_ms']} / {m['p99_ms']} ({m['median_ms'] / floor[op]['median_ms']:.2f}x)")
            else:
                row.append("n/a")
        rows.append(row)
    rows.append(["put_item/s, 4 threads, stream on", "",
                 *[str(r.get(n, {}).get("puts_per_s_4_threads_stream", "n/a")) for n in ("unkai", "moto", "ministack")]])
    big = r["big"]
    small, large = r["query_1k_items"], r[f"query_{big // 1000}k_items"]
    rows.append(["query_10_items at 1,000 items", "", f"{small['median_ms']} / {small['p99_ms']}", "", ""])
    rows.append([f"query_10_items at {big:,} items", "", f"{large['median_ms']} / {large['p99_ms']} "
                 f"({large['median_ms'] / small['median_ms']:.2f}x 1,000 items)", "", ""])
    return harness.table(rows, ["operation (median / p99 ms)", "floor", "unkai", "moto", "ministack"])


if __name__ == "__main__":
    main()
