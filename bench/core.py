"""Issue 2's benchmark: SQS send, receive+delete and SNS publish (to a topic with three
SQS subscribers) through boto3, against the floor, unkai, moto's server and ministack,
all in one run; plus unkai at a queue depth of 100,000 and sends/s from 4 threads.

    python bench/core.py [--quick]

Needs the bench extras: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402

BODY = "bench-message-0123456789"


class Scenario:
    """The queues and topic one target needs, made through its own API."""

    def __init__(self, server: harness.Server) -> None:
        self.server = server
        self.sqs = server.client("sqs")
        self.sns = server.client("sns")
        self.url = self.sqs.create_queue(QueueName="bench")["QueueUrl"]
        self.topic = None
        try:
            self.topic = self.sns.create_topic(Name="bench-topic")["TopicArn"]
            for i in range(3):
                url = self.sqs.create_queue(QueueName=f"fan-{i}")["QueueUrl"]
                arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
                self.sns.subscribe(TopicArn=self.topic, Protocol="sqs", Endpoint=arn)
        except Exception as exc:  # a target without SNS
            print(f"  {server.name}: no SNS ({type(exc).__name__})")
            self.topic = None

    def send(self) -> None:
        self.sqs.send_message(QueueUrl=self.url, MessageBody=BODY)

    def receive_delete(self) -> None:
        msgs = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=1).get("Messages")
        if msgs:
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=msgs[0]["ReceiptHandle"])
        else:
            raise RuntimeError(f"{self.server.name}: queue unexpectedly empty")

    def publish(self) -> None:
        self.sns.publish(TopicArn=self.topic, Message=BODY, Subject="bench")


def floor_for(unkai: Scenario) -> harness.Server:
    """Record unkai's answers to the exact calls the benchmark makes."""
    canned = {}
    unkai.sqs.send_message(QueueUrl=unkai.url, MessageBody=BODY)
    for call in (
        lambda c: c.send_message(QueueUrl=unkai.url, MessageBody=BODY),
        lambda c: c.receive_message(QueueUrl=unkai.url, MaxNumberOfMessages=1),
    ):
        rec = harness.record(unkai.sqs, call)
        canned[rec["key"]] = rec
    handle = unkai.sqs.receive_message(QueueUrl=unkai.url, MaxNumberOfMessages=1, VisibilityTimeout=0)
    rec = harness.record(unkai.sqs, lambda c: c.delete_message(
        QueueUrl=unkai.url, ReceiptHandle=handle["Messages"][0]["ReceiptHandle"]))
    canned[rec["key"]] = rec
    if unkai.topic:
        rec = harness.record(unkai.sns, lambda c: c.publish(TopicArn=unkai.topic, Message=BODY, Subject="bench"))
        canned[rec["key"]] = rec
    unkai.sqs.purge_queue(QueueUrl=unkai.url)
    return harness.start_floor(canned)


class FloorScenario(Scenario):
    def __init__(self, server: harness.Server, unkai: Scenario) -> None:
        self.server = server
        self.sqs = server.client("sqs")
        self.sns = server.client("sns")
        self.url = unkai.url.replace(unkai.server.endpoint, server.endpoint)
        self.topic = unkai.topic


def fill(s: Scenario, n: int) -> None:
    for start in range(0, n, 10):
        s.sqs.send_message_batch(QueueUrl=s.url, Entries=[
            {"Id": str(i), "MessageBody": BODY} for i in range(start, min(n, start + 10))])


def throughput(s: Scenario, seconds: float, threads: int = 4) -> float:
    counts = [0] * threads
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        client = s.server.client("sqs")
        while time.monotonic() < stop:
            client.send_message(QueueUrl=s.url, MessageBody=BODY)
            counts[i] += 1

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) / seconds


def measure(s: Scenario, n: int) -> dict[str, Any]:
    out = {"send": harness.stats(harness.timed(s.send, n))}
    if not isinstance(s, FloorScenario):
        fill(s, n + 60)
    out["receive_delete"] = harness.stats(harness.timed(s.receive_delete, n))
    if s.topic:
        out["publish_3_sqs"] = harness.stats(harness.timed(s.publish, n))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer samples, a smaller deep queue")
    args = parser.parse_args()
    n = 300 if args.quick else 2000
    n_slow = 100 if args.quick else 300
    depth = 10_000 if args.quick else 100_000
    results: dict[str, Any] = {"samples": n, "samples_slow_peers": n_slow}

    with harness.compared(Scenario, lambda u: FloorScenario(floor_for(u), u)) as scenarios:
        unkai = scenarios["unkai"].server
        for name, s in scenarios.items():
            print(f"measuring {name} ...", flush=True)
            results[name] = measure(s, n if name in ("floor", "unkai") else n_slow)
            if name != "floor":
                results[name]["sends_per_s_4_threads"] = round(throughput(s, 3 if args.quick else 5))
        print(f"filling unkai's queue to {depth:,} messages ...", flush=True)
        deep = Scenario(unkai)
        deep.url = deep.sqs.create_queue(QueueName="deep")["QueueUrl"]
        fill(deep, depth)
        results["unkai_deep"] = {
            "depth": depth,
            "send": harness.stats(harness.timed(deep.send, n)),
            "receive_delete": harness.stats(harness.timed(deep.receive_delete, n)),
        }
        results["unkai_rss_mb"] = round(unkai.rss_mb(), 1)
    path = harness.write("core", results)
    print(report(results))
    print(f"\nwritten to {path}")


def report(r: dict[str, Any]) -> str:
    rows = []
    floor = r["floor"]
    for op in ("send", "receive_delete", "publish_3_sqs"):
        if op not in floor:
            continue
        row = [op, f"{floor[op]['median_ms']} / {floor[op]['p99_ms']}"]
        for name in ("unkai", "moto", "ministack"):
            if name in r and op in r[name]:
                m = r[name][op]
                row.append(f"{m['median_ms']} / {m['p99_ms']} ({m['median_ms'] / floor[op]['median_ms']:.2f}x)")
            else:
                row.append("n/a")
        rows.append(row)
    rows.append(["sends/s, 4 threads", "", *[str(r.get(n, {}).get("sends_per_s_4_threads", "n/a"))
                                             for n in ("unkai", "moto", "ministack")]])
    deep = r["unkai_deep"]
    rows.append([f"send at depth {deep['depth']:,}", "", f"{deep['send']['median_ms']} / {deep['send']['p99_ms']} "
                 f"({deep['send']['median_ms'] / r['unkai']['send']['median_ms']:.2f}x depth 0)", "", ""])
    rows.append([f"receive+delete at depth {deep['depth']:,}", "",
                 f"{deep['receive_delete']['median_ms']} / {deep['receive_delete']['p99_ms']} "
                 f"({deep['receive_delete']['median_ms'] / r['unkai']['receive_delete']['median_ms']:.2f}x depth 0)",
                 "", ""])
    return harness.table(rows, ["operation (median / p99 ms)", "floor", "unkai", "moto", "ministack"])


if __name__ == "__main__":
    main()
