"""Issue 5's Lambda benchmark, unkai and ministack in one run:

- cold start of a handler that imports boto3 (first invoke of a new function);
- warm synchronous Invoke round trip through boto3, beside the floor (a keep-alive
  server answering with unkai's recorded Invoke response);
- SQS send -> handler start (an event source mapping);
- SNS publish -> 3 SQS queues -> 3 handlers done (when the target has SNS);
- SQS -> Lambda throughput at batch size 10.

    python bench/lambda.py [--quick]

Needs the bench extras: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402

ROLE = "arn:aws:iam::000000000000:role/bench"
COLD = "import boto3\n\ndef handler(event, context):\n    return {'ok': True}\n"
# Handler start times go to a file outside the environment, named by the STAMPS variable.
STAMPED = """
import json, os, time
def handler(event, context):
    now = time.time()
    with open(os.environ['STAMPS'], 'a') as f:
        for record in event['Records']:
            body = record['body']
            if record.get('eventSource') != 'aws:sqs':
                body = record['Sns']['Message']
            elif body.startswith('{') and '"Message"' in body:
                body = json.loads(body)['Message']
            f.write('%s %.6f\\n' % (body, now))
"""


def package(code: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", code)
    return buf.getvalue()


def create(lam: Any, code: str, env: dict | None = None, timeout: int = 30) -> str:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": package(code)}, Timeout=timeout, MemorySize=256,
                        Environment={"Variables": env or {}})
    wait_active(lam, name)
    return name


def wait_active(lam: Any, name: str) -> None:
    for _ in range(600):
        state = lam.get_function_configuration(FunctionName=name).get("State", "Active")
        if state == "Active":
            return
        time.sleep(0.1)


def queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def read_stamps(path: Path) -> dict[str, float]:
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, _, stamp = line.rpartition(" ")
            if key:
                out[key] = float(stamp)
    return out


def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.0005)
    return False


def cold_starts(server: harness.Server, n: int) -> list[float]:
    lam = server.client("lambda")
    samples = []
    for _ in range(n):
        name = create(lam, COLD)
        t = time.perf_counter()
        lam.invoke(FunctionName=name, Payload=b"{}")
        samples.append(time.perf_counter() - t)
    return samples


def warm(server: harness.Server, n: int) -> tuple[list[float], Any, str]:
    lam = server.client("lambda")
    name = create(lam, COLD)
    call = lambda: lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()  # noqa: E731
    return harness.timed(call, n, warmup=20), lam, name


def sqs_to_handler(server: harness.Server, n: int, stamps: Path) -> list[float]:
    sqs, lam = server.client("sqs"), server.client("lambda")
    url, arn = queue(sqs, f"latency-{uuid.uuid4().hex[:6]}")
    name = create(lam, STAMPED, {"STAMPS": str(stamps)})
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=1)
    key = "warmup"
    sqs.send_message(QueueUrl=url, MessageBody=key)
    wait_for(lambda: key in read_stamps(stamps), 120)
    samples = []
    for i in range(n):
        key = f"m{i}"
        sent = time.time()
        sqs.send_message(QueueUrl=url, MessageBody=key)
        if not wait_for(lambda: key in read_stamps(stamps), 30):
            raise RuntimeError(f"{server.name}: message {key} never reached the handler")
        samples.append(read_stamps(stamps)[key] - sent)
    return samples


def sns_fanout(server: harness.Server, n: int, stamps: Path) -> list[float] | None:
    sqs, lam, sns = server.client("sqs"), server.client("lambda"), server.client("sns")
    try:
        topic = sns.create_topic(Name=f"fan-{uuid.uuid4().hex[:6]}")["TopicArn"]
    except Exception as exc:
        print(f"  {server.name}: no SNS ({type(exc).__name__}); skipping the fan-out")
        return None
    files = []
    for i in range(3):
        url, arn = queue(sqs, f"fan-{uuid.uuid4().hex[:6]}")
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        path = stamps.with_name(f"{stamps.name}-{i}")
        files.append(path)
        name = create(lam, STAMPED, {"STAMPS": str(path)})
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=1)
    sns.publish(TopicArn=topic, Message="warmup")
    wait_for(lambda: all("warmup" in read_stamps(f) for f in files), 120)
    samples = []
    for i in range(n):
        key = f"p{i}"
        sent = time.time()
        sns.publish(TopicArn=topic, Message=key)
        if not wait_for(lambda: all(key in read_stamps(f) for f in files), 30):
            raise RuntimeError(f"{server.name}: publish {key} did not reach all three handlers")
        samples.append(max(read_stamps(f)[key] for f in files) - sent)
    return samples


def throughput(server: harness.Server, total: int, stamps: Path) -> float:
    sqs, lam = server.client("sqs"), server.client("lambda")
    url, arn = queue(sqs, f"thru-{uuid.uuid4().hex[:6]}")
    counter = """
import os
def handler(event, context):
    with open(os.environ['STAMPS'], 'a') as f:
        f.write('%d\\n' % len(event['Records']))
"""
    name = create(lam, counter, {"STAMPS": str(stamps)})

    def sender(start: int, count: int) -> None:
        client = server.client("sqs")
        for i in range(start, start + count, 10):
            client.send_message_batch(QueueUrl=url, Entries=[{"Id": str(j), "MessageBody": f"t{i + j}"}
                                                            for j in range(min(10, start + count - i))])
    threads = [threading.Thread(target=sender, args=(k * total // 4, total // 4)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    def done() -> int:
        try:
            return sum(int(x) for x in stamps.read_text().split())
        except OSError:
            return 0
    t = time.perf_counter()
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=10)
    if not wait_for(lambda: done() >= total, 600):
        raise RuntimeError(f"{server.name}: only {done()} of {total} messages were handled")
    return total / (time.perf_counter() - t)


def floor_for(lam: Any, name: str) -> harness.Server:
    canned = harness.record(lam, lambda c: c.invoke(FunctionName=name, Payload=b"{}"))
    return harness.start_floor({canned["key"]: canned})


def run_target(server: harness.Server, quick: bool, out: dict, workdir: Path) -> None:
    label = server.name
    print(f"{label}: cold starts")
    out["cold"][label] = harness.stats(cold_starts(server, 3 if quick else (20 if label == "unkai" else 8)))
    print(f"{label}: warm invokes")
    samples, lam, name = warm(server, 100 if quick else 500)
    out["warm"][label] = harness.stats(samples)
    if label == "unkai":
        floor = floor_for(lam, name)
        try:
            client = floor.client("lambda")
            out["warm"]["floor"] = harness.stats(harness.timed(
                lambda: client.invoke(FunctionName=name, Payload=b"{}")["Payload"].read(), 100 if quick else 500))
        finally:
            floor.stop()
    print(f"{label}: SQS send -> handler start")
    out["sqs_latency"][label] = harness.stats(sqs_to_handler(server, 20 if quick else 100, workdir / f"{label}-sqs"))
    print(f"{label}: SNS -> 3 SQS -> 3 handlers")
    fan = sns_fanout(server, 10 if quick else 50, workdir / f"{label}-sns")
    if fan is not None:
        out["sns_fanout"][label] = harness.stats(fan)
    print(f"{label}: SQS -> Lambda throughput")
    out["throughput"][label] = round(throughput(server, 1000 if quick else 5000, workdir / f"{label}-thru"), 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["unkai", "ministack"])
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-lambda-"))
    out: dict[str, Any] = {"cold": {}, "warm": {}, "sqs_latency": {}, "sns_fanout": {}, "throughput": {}}
    starters = [("unkai", harness.start_unkai), ("ministack", harness.start_ministack)]
    for label, start in starters:
        if args.only and label != args.only:
            continue
        server = start()
        try:
            run_target(server, args.quick, out, workdir)
        except Exception as exc:  # report what a target cannot do, measure the rest
            print(f"  {label} failed: {type(exc).__name__}: {exc}")
            out.setdefault("errors", {})[label] = f"{type(exc).__name__}: {exc}"
        finally:
            server.stop()
    path = harness.write("lambda", out)
    rows = []
    names = ["unkai", "ministack"]
    fmt = lambda d, k: f"{d[k]['median_ms']:.1f} ms" if k in d else "n/a"  # noqa: E731
    rows.append(["cold start, handler imports boto3 (median)"] + [fmt(out["cold"], n) for n in names])
    rows.append(["warm Invoke via boto3 (median)"] + [fmt(out["warm"], n) for n in names])
    if "floor" in out["warm"]:
        rows.append(["floor: same Invoke answered by a canned server (median)",
                     f"{out['warm']['floor']['median_ms']:.1f} ms", ""])
    rows.append(["SQS send -> handler start (median)"] + [fmt(out["sqs_latency"], n) for n in names])
    rows.append(["SNS -> 3 SQS -> 3 handlers done (median)"] + [fmt(out["sns_fanout"], n) for n in names])
    rows.append(["SQS -> Lambda, batch 10 (messages/s)"] + [str(out["throughput"].get(n, "n/a")) for n in names])
    print(harness.table(rows, ["", "unkai", "ministack"]))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
