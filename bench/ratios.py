"""The issue-20 operations side by side, in one run: SQS send, receive+delete, SNS
publish to 3 queues, DynamoDB put/get/query, S3 put/get 1 KiB, through boto3, against
the floor (unkai's own answers replayed by a trivial keep-alive server), unkai, moto's
server and ministack; optionally an older unkai too (``--before DIR``, a tree unpacked
with ``git archive``). Targets take turns: each round runs a few calls of every operation
on every target, so a burst of load from elsewhere on a shared machine falls on all of
them alike. Medians and ratios to the floor are printed and written to
bench/results/ratios.json with the load average.

    python bench/ratios.py [--rounds 20] [--calls 10] [--before DIR]

``--all`` measures instead every operation of bench/callgrind.py's ``Ops`` (the issue-20
eight, plus STS GetCallerIdentity, Secrets Manager GetSecretValue, KMS DescribeKey /
Encrypt / Decrypt, EventBridge PutEvents, CloudWatch PutMetricData / GetMetricData and SES
SendEmail) against the floor, unkai and the floor in turns, with unkai's server CPU per
call from the same calls (bench/results/ratios-all.json):

    python bench/ratios.py --all [--rounds 10] [--calls 20] [--before DIR]

(with ``--before``, the older unkai takes its turn in the same rounds, with its own resources).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402

BODY = "bench-message-0123456789"
KIB = b"x" * 1024
OPS = ("sqs send", "sqs receive+delete", "sns publish (3 SQS)", "dynamodb put_item", "dynamodb get_item",
       "dynamodb query (10 items)", "s3 put_object 1 KiB", "s3 get_object 1 KiB")


class Target:
    """One server's clients, resources and the calls measured."""

    def __init__(self, server: harness.Server, make: bool = True, names: "Target | None" = None) -> None:
        self.server = server
        self.c = {s: server.client(s) for s in ("sqs", "sns", "dynamodb", "s3")}
        if make:
            self._make()
        else:  # the floor: the same names as unkai's, on the floor's address
            self.url = names.url.replace(names.server.endpoint, server.endpoint)  # type: ignore[union-attr]
            self.topic = names.topic  # type: ignore[union-attr]

    def _make(self) -> None:
        sqs, sns, ddb, s3 = self.c["sqs"], self.c["sns"], self.c["dynamodb"], self.c["s3"]
        self.url = sqs.create_queue(QueueName="ratios")["QueueUrl"]
        self.topic = sns.create_topic(Name="ratios-topic")["TopicArn"]
        for i in range(3):
            url = sqs.create_queue(QueueName=f"ratios-fan-{i}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sns.subscribe(TopicArn=self.topic, Protocol="sqs", Endpoint=arn)
        ddb.create_table(TableName="ratios", BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                               {"AttributeName": "sk", "AttributeType": "N"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                    {"AttributeName": "sk", "KeyType": "RANGE"}])
        for i in range(10):
            ddb.put_item(TableName="ratios", Item={"pk": {"S": "q"}, "sk": {"N": str(i)}, "v": {"S": BODY}})
        s3.create_bucket(Bucket="ratios-bucket")
        s3.put_object(Bucket="ratios-bucket", Key="k", Body=KIB)

    def calls(self) -> dict[str, Callable[[], Any]]:
        sqs, sns, ddb, s3 = self.c["sqs"], self.c["sns"], self.c["dynamodb"], self.c["s3"]

        def receive_delete() -> None:
            msgs = sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=1).get("Messages")
            if not msgs:
                raise RuntimeError(f"{self.server.name}: queue unexpectedly empty")
            sqs.delete_message(QueueUrl=self.url, ReceiptHandle=msgs[0]["ReceiptHandle"])

        return {
            "sqs send": lambda: sqs.send_message(QueueUrl=self.url, MessageBody=BODY),
            "sqs receive+delete": receive_delete,
            "sns publish (3 SQS)": lambda: sns.publish(TopicArn=self.topic, Message=BODY, Subject="ratios"),
            "dynamodb put_item": lambda: ddb.put_item(
                TableName="ratios", Item={"pk": {"S": "p"}, "sk": {"N": "1"}, "v": {"S": BODY}, "n": {"N": "42"}}),
            "dynamodb get_item": lambda: ddb.get_item(TableName="ratios", Key={"pk": {"S": "p"}, "sk": {"N": "1"}}),
            "dynamodb query (10 items)": lambda: ddb.query(
                TableName="ratios", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "q"}}),
            "s3 put_object 1 KiB": lambda: s3.put_object(Bucket="ratios-bucket", Key="k", Body=KIB),
            "s3 get_object 1 KiB": lambda: s3.get_object(Bucket="ratios-bucket", Key="k")["Body"].read(),
        }

    def refill(self, n: int) -> None:
        """Messages for the next receive+deletes (not timed); the floor needs none."""
        if self.server.name == "floor":
            return
        for start in range(0, n, 10):
            self.c["sqs"].send_message_batch(QueueUrl=self.url, Entries=[
                {"Id": str(i), "MessageBody": BODY} for i in range(start, min(n, start + 10))])


def floor_for(unkai: Target) -> harness.Server:
    """Record unkai's answer to each call the benchmark makes; the floor replays them."""
    unkai.refill(1)
    canned: dict[str, Any] = {}
    calls = unkai.calls()
    for op in OPS:
        if op == "sqs receive+delete":
            msg = unkai.c["sqs"].receive_message(QueueUrl=unkai.url, MaxNumberOfMessages=1, VisibilityTimeout=0)
            for call in (lambda c: c.receive_message(QueueUrl=unkai.url, MaxNumberOfMessages=1),
                         lambda c: c.delete_message(QueueUrl=unkai.url,
                                                    ReceiptHandle=msg["Messages"][0]["ReceiptHandle"])):
                rec = harness.record(unkai.c["sqs"], call)
                canned[rec["key"]] = rec
            continue
        service = op.split(" ", 1)[0]
        if op == "s3 get_object 1 KiB":  # the recorder reads the streamed body itself
            rec = harness.record(unkai.c["s3"], lambda c: c.get_object(Bucket="ratios-bucket", Key="k"))
        else:
            rec = harness.record(unkai.c[service], lambda c, op=op: calls[op]())
        canned[rec["key"]] = rec
    unkai.c["sqs"].purge_queue(QueueUrl=unkai.url)
    return harness.start_floor(canned)


def _record_all(clients: list[Any], call: Callable[[], Any]) -> dict[str, Any]:
    """Run ``call`` once and capture every request it makes through ``clients`` with its raw
    answer, as ``harness.record`` does for one client (canned data for the floor)."""
    canned: dict[str, Any] = {}
    pending: list[dict[str, Any]] = []
    hooks = []
    for client in clients:
        def on_request(request: Any, **kwargs: Any) -> None:
            from urllib.parse import parse_qs, urlsplit

            captured: dict[str, Any] = {}

            body = request.body or b""
            body = body.encode() if isinstance(body, str) else body
            if not isinstance(body, (bytes, bytearray)):
                body = b""
            action = parse_qs(body.decode()).get("Action", [None])[0] if b"Action=" in body else None
            target = request.headers.get("X-Amz-Target")
            target = target.decode() if isinstance(target, bytes) else target
            captured["key"] = harness.request_key(request.method, urlsplit(request.url).path, target, action)
            pending.append(captured)

        def on_response(response_dict: Any = None, **kwargs: Any) -> None:
            import base64

            captured = pending.pop()
            captured["status"] = response_dict["status_code"]
            captured["headers"] = {k: v for k, v in response_dict["headers"].items()
                                   if k.lower() not in ("date", "content-length", "connection", "server")}
            body = response_dict["body"]
            if not isinstance(body, (bytes, bytearray)):
                body = body.read()
            captured["body"] = base64.b64encode(body).decode()
            canned[captured["key"]] = captured

        client.meta.events.register("before-send", on_request)
        client.meta.events.register("response-received", on_response)
        hooks.append((client, on_request, on_response))
    from botocore.exceptions import IncompleteReadError

    try:
        call()
    except IncompleteReadError:  # a streamed body (S3 GetObject) was read here, not by the call
        pass
    finally:
        for client, on_request, on_response in hooks:
            client.meta.events.unregister("before-send", on_request)
            client.meta.events.unregister("response-received", on_response)
    return canned


def main_all(args: argparse.Namespace) -> None:
    """``--all``: every operation of callgrind.Ops, the floor and unkai in turns."""
    import callgrind

    unkai = harness.start_unkai()
    floor = before = None
    try:
        ops = callgrind.Ops(unkai.endpoint, callgrind.ALL)
        targets = [("floor", ops, None), ("unkai", ops, unkai)]
        if args.before:  # an older unkai with its own resources (its own key ids, ARNs), in the same turns
            os.environ["UNKAI_BENCH_SRC"] = args.before
            try:
                before = harness.start_unkai()
            finally:
                del os.environ["UNKAI_BENCH_SRC"]
            targets.append(("unkai before", callgrind.Ops(before.endpoint, callgrind.ALL), before))
        names = {op: ("sqs send+receive+delete" if op == "sqs receive+delete" else op) for op in ops.calls}
        canned: dict[str, Any] = {}
        for op, call in ops.calls.items():
            for _ in range(3):
                call()
            canned.update(_record_all(ops.clients(), call))
        floor = harness.start_floor(canned)
        targets[0] = ("floor", ops, floor)
        samples: dict[str, dict[str, list[float]]] = {label: {} for label, _, _ in targets}
        cpu: dict[str, dict[str, list[float]]] = {label: {} for label, _, _ in targets if label != "floor"}
        for _, target_ops, target in targets:  # warm each
            target_ops.point(target.endpoint)
            for call in target_ops.calls.values():
                for _ in range(3):
                    call()
        load = [os.getloadavg()]
        for _ in range(args.rounds):
            for label, target_ops, target in targets:
                target_ops.point(target.endpoint)
                for op, call in target_ops.calls.items():
                    started_cpu = callgrind._cpu_ns(target.proc.pid)
                    for _ in range(args.calls):
                        started = time.perf_counter()
                        call()
                        samples[label].setdefault(names[op], []).append(time.perf_counter() - started)
                    if label != "floor":
                        cpu[label].setdefault(names[op], []).append(
                            (callgrind._cpu_ns(target.proc.pid) - started_cpu) / args.calls / 1000)
            load.append(os.getloadavg())
    finally:
        for server in (unkai, before, floor):
            if server is not None:
                server.stop()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    results: dict[str, Any] = {"rounds": args.rounds, "calls_per_round": args.calls, "commit": commit,
                               "before": args.before or "", "load_average": load, "median_ms": {}, "ratio": {},
                               "unkai_server_cpu_us": {}}
    for label in samples:
        results["median_ms"][label] = {op: round(statistics.median(v) * 1000, 3) for op, v in samples[label].items()}
    servers = [label for label in samples if label != "floor"]
    for op in samples["unkai"]:
        floor_median = statistics.median(samples["floor"][op])
        results["ratio"][op] = round(statistics.median(samples["unkai"][op]) / floor_median, 2)
        results["unkai_server_cpu_us"][op] = round(statistics.median(cpu["unkai"][op]), 1)
        if before is not None:
            results.setdefault("ratio_before", {})[op] = round(
                statistics.median(samples["unkai before"][op]) / floor_median, 2)
            results.setdefault("before_server_cpu_us", {})[op] = round(statistics.median(cpu["unkai before"][op]), 1)
    path = harness.write(args.out if args.out != "ratios" else "ratios-all", results)
    rows = [[op, f"{results['median_ms']['floor'][op]:.3f}",
             *(f"{results['median_ms'][label][op]:.3f} ({results['median_ms'][label][op] / results['median_ms']['floor'][op]:.2f}x)"
               for label in servers),
             *(f"{statistics.median(cpu[label][op]):.0f}" for label in servers)] for op in samples["unkai"]]
    print(harness.table(rows, ["operation", "floor ms", *(f"{label} ms (ratio)" for label in servers),
                               *(f"{label} server CPU us/call" for label in servers)]))
    print(f"load average during the run: {load[0]} .. {load[-1]}")
    print(f"\nwritten to {path}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=10, help="calls of each operation per target per round")
    parser.add_argument("--before", help="also measure the unkai in this source tree (an older commit)")
    parser.add_argument("--out", default="ratios")
    parser.add_argument("--all", action="store_true",
                        help="every operation of bench/callgrind.py (issues 12, 13, 16, 20, 23) against the floor")
    args = parser.parse_args()
    if args.all:
        main_all(args)
        return
    targets: dict[str, Target] = {}
    try:
        unkai = targets["unkai"] = Target(harness.start_unkai())
        targets = {"floor": Target(floor_for(unkai), make=False, names=unkai), **targets}
        if args.before:
            os.environ["UNKAI_BENCH_SRC"] = args.before
            try:
                server = harness.start_unkai()
                server.name = "unkai before"
                targets["unkai before"] = Target(server)
            finally:
                del os.environ["UNKAI_BENCH_SRC"]
        for start in (harness.start_moto, harness.start_ministack):
            try:
                targets[start.__name__[6:]] = Target(start())
            except Exception as exc:  # not installed, or it would not start: measure the rest
                print(f"could not use {start.__name__[6:]}: {exc}")
        calls = {name: t.calls() for name, t in targets.items()}
        samples: dict[str, dict[str, list[float]]] = {name: {op: [] for op in OPS} for name in targets}
        for name, t in targets.items():  # warm every path once
            t.refill(5)
            for op in OPS:
                for _ in range(3):
                    calls[name][op]()
        load = [os.getloadavg()]
        for _ in range(args.rounds):
            for name, t in targets.items():
                t.refill(args.calls)
                for op in OPS:
                    call = calls[name][op]
                    for _ in range(args.calls):
                        started = time.perf_counter()
                        call()
                        samples[name][op].append(time.perf_counter() - started)
            load.append(os.getloadavg())
    finally:
        for t in targets.values():
            t.server.stop()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    results: dict[str, Any] = {"rounds": args.rounds, "calls_per_round": args.calls, "commit": commit,
                               "before": args.before or "", "load_average": load, "median_ms": {}, "ratio": {}}
    floor = {op: statistics.median(samples["floor"][op]) for op in OPS}
    for name in targets:
        results["median_ms"][name] = {op: round(statistics.median(samples[name][op]) * 1000, 3) for op in OPS}
        results["ratio"][name] = {op: round(statistics.median(samples[name][op]) / floor[op], 2) for op in OPS}
    path = harness.write(args.out, results)
    names = [n for n in targets if n != "floor"]
    rows = [[op, f"{results['median_ms']['floor'][op]:.2f}",
             *(f"{results['median_ms'][n][op]:.2f} ({results['ratio'][n][op]:.2f}x)" for n in names)] for op in OPS]
    print(harness.table(rows, ["median ms (ratio to the floor)", "floor", *names]))
    print(f"load average during the run: {load[0]} .. {load[-1]}")
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
