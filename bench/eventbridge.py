"""Issue 23's benchmark: EventBridge and Pipes on unkai.

- PutEvents of 10 entries to a custom bus with 100 rules (each entry matching one rule
  whose target is an SQS queue), through boto3: median and p99 against the floor (a
  server answering the recorded response; goal: <= 1.3x the floor);
- a pipe from an SQS queue to a Lambda function at batch size 10: messages/s from
  StartPipe until the queue is empty and every batch was handled (goal: >= 5,000/s);
- a replay of N archived events (default 100,000) to a rule with an SQS target: seconds
  from StartReplay to COMPLETED.

    python bench/eventbridge.py [--quick] [--messages N] [--events N] [--only put]

PutEvents and the floor are timed in turn, one call each, and the server's CPU per
PutEvents (user + system over the timed calls) is reported beside the ratio.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402

ACCOUNT = "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/bench"
NOOP = "def handler(event, context):\n    return None\n"


def drain(server: harness.Server, timeout: float = 600) -> None:
    req = urllib.request.Request(f"{server.endpoint}/_unkai/drain?timeout={timeout}", method="POST")
    with urllib.request.urlopen(req, timeout=timeout + 30) as resp:
        resp.read()


def put_events_bench(server: harness.Server, n: int) -> dict:
    events, sqs = server.client("events"), server.client("sqs")
    events.create_event_bus(Name="bench")
    url = sqs.create_queue(QueueName="bench-target")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for i in range(100):
        events.put_rule(Name=f"r{i}", EventBusName="bench",
                        EventPattern=json.dumps({"source": [f"src{i}"], "detail": {"n": [{"numeric": [">=", 0]}]}}))
        events.put_targets(Rule=f"r{i}", EventBusName="bench", Targets=[{"Id": "q", "Arn": arn}])
    entries = [{"Source": f"src{i * 7}", "DetailType": "t", "Detail": json.dumps({"n": i}), "EventBusName": "bench"}
               for i in range(10)]

    canned = harness.record(events, lambda c: c.put_events(Entries=entries))
    floor = harness.start_floor({canned["key"]: canned})
    try:
        floor_client = floor.client("events")
        # interleaved, one call each in turn, so the shared machine's load swings hit both alike;
        # the server's CPU over the loop is unkai's alone (the floor is another process)
        samples: dict[str, list[float]] = {"floor": [], "unkai": []}
        calls = (("floor", lambda: floor_client.put_events(Entries=entries)),
                 ("unkai", lambda: events.put_events(Entries=entries)))
        for _ in range(50):
            for _, call in calls:
                call()
        cpu = harness.cpu_seconds(server.proc.pid)
        for _ in range(n):
            for label, call in calls:
                t = time.perf_counter()
                call()
                samples[label].append(time.perf_counter() - t)
        cpu = harness.cpu_seconds(server.proc.pid) - cpu
    finally:
        floor.stop()
    sqs.purge_queue(QueueUrl=url)
    unkai, floor_stats = harness.stats(samples["unkai"]), harness.stats(samples["floor"])
    return {"unkai": unkai, "floor": floor_stats, "ratio": round(unkai["median_ms"] / floor_stats["median_ms"], 2),
            "ratio_p99": round(unkai["p99_ms"] / floor_stats["p99_ms"], 2),
            "server_cpu_ms_per_call": round(cpu * 1000 / n, 3), "interleaved": True}


def pipe_bench(server: harness.Server, messages: int) -> dict:
    sqs, lam, pipes = server.client("sqs"), server.client("lambda"), server.client("pipes")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("app.py", NOOP)
    lam.create_function(FunctionName="bench-noop", Runtime="python3.11", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": buf.getvalue()})
    url = sqs.create_queue(QueueName="bench-pipe-source")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pipes.create_pipe(Name="bench", RoleArn=ROLE, Source=arn, DesiredState="STOPPED",
                      Target=f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:bench-noop",
                      SourceParameters={"SqsQueueParameters": {"BatchSize": 10}})
    for start in range(0, messages, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": json.dumps({"i": start + i})}
                                                      for i in range(min(10, messages - start))])
    t0 = time.perf_counter()
    pipes.start_pipe(Name="bench")
    while True:
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        if attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0":
            break
        time.sleep(0.01)
    elapsed = time.perf_counter() - t0
    return {"messages": messages, "seconds": round(elapsed, 2), "messages_per_s": round(messages / elapsed)}


def replay_bench(server: harness.Server, count: int) -> dict:
    events, sqs = server.client("events"), server.client("sqs")
    bus_arn = events.create_event_bus(Name="replayed")["EventBusArn"]
    archive_arn = events.create_archive(ArchiveName="all", EventSourceArn=bus_arn)["ArchiveArn"]
    url = sqs.create_queue(QueueName="bench-replay")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule_arn = events.put_rule(Name="replayed", EventBusName="replayed",
                               EventPattern=json.dumps({"replay-name": [{"exists": True}]}))["RuleArn"]
    events.put_targets(Rule="replayed", EventBusName="replayed", Targets=[{"Id": "q", "Arn": arn}])
    start = time.time() - 60
    t_fill = time.perf_counter()
    for i in range(0, count, 10):
        events.put_events(Entries=[{"Source": "bench", "DetailType": "t", "Detail": json.dumps({"i": i + j}),
                                    "EventBusName": "replayed"} for j in range(min(10, count - i))])
    fill = time.perf_counter() - t_fill
    assert events.describe_archive(ArchiveName="all")["EventCount"] == count
    t0 = time.perf_counter()
    events.start_replay(ReplayName="bench", EventSourceArn=archive_arn, EventStartTime=start,
                        EventEndTime=time.time() + 3600, Destination={"Arn": bus_arn, "FilterArns": [rule_arn]})
    while events.describe_replay(ReplayName="bench")["State"] != "COMPLETED":
        time.sleep(0.05)
    elapsed = time.perf_counter() - t0
    sent = int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
               ["Attributes"]["ApproximateNumberOfMessages"])
    return {"events": count, "archive_fill_seconds": round(fill, 1), "replay_seconds": round(elapsed, 2),
            "events_per_s": round(count / elapsed), "delivered": sent}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--events", type=int, default=100000)
    parser.add_argument("--only", choices=("put",), help="PutEvents only (merged into the results file)")
    args = parser.parse_args()
    n = 200 if args.quick else 1000
    messages = min(args.messages, 5000) if args.quick else args.messages
    count = min(args.events, 10000) if args.quick else args.events
    server = harness.start_unkai()
    if args.only:
        try:
            found = {"put_events_10_entries_100_rules": put_events_bench(server, n)}
        finally:
            server.stop()
        print(json.dumps(found, indent=1))
        print(harness.merge("eventbridge", found))
        return
    try:
        put = put_events_bench(server, n)
        pipe = pipe_bench(server, messages)
        replay = replay_bench(server, count)
    finally:
        server.stop()
    results = {"put_events_10_entries_100_rules": put, "pipe_sqs_to_lambda_batch_10": pipe, "replay": replay}
    path = harness.write("eventbridge", results)
    print(harness.table([
        ["PutEvents, 10 entries, bus with 100 rules (median / p99 ms)",
         f"{put['unkai']['median_ms']} / {put['unkai']['p99_ms']}",
         f"floor {put['floor']['median_ms']} / {put['floor']['p99_ms']} ({put['ratio']}x; goal <= 1.3x)"],
        ["pipe SQS -> Lambda, batch 10", f"{pipe['messages_per_s']} messages/s",
         f"{pipe['messages']} messages in {pipe['seconds']} s (goal >= 5,000/s)"],
        ["replay of archived events", f"{replay['replay_seconds']} s",
         f"{replay['events']} events, {replay['events_per_s']}/s, {replay['delivered']} delivered"],
    ], ["measure", "unkai", "detail"]))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
