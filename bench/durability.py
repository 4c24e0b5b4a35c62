"""Acknowledged writes under `kill -9`: clients write to SQS, DynamoDB, S3 and SNS (fanned
out to a queue) as fast as they can; unkai is killed with SIGKILL at a random moment;
after a restart every write that was acknowledged must be there. Repeated ``--rounds``
times on one state directory (each round's writes must survive every later kill too).

    python bench/durability.py [--rounds 10] [--threads 2]

Reports, per service, writes acknowledged and writes lost (the promise: 0).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import harness  # noqa: E402

from unkai.testing import UnkaiServer  # noqa: E402

KINDS = ("sqs", "dynamodb", "s3", "sns")


def setup(server: UnkaiServer) -> dict[str, str]:
    sqs, sns = server.client("sqs"), server.client("sns")
    queue = sqs.create_queue(QueueName="durable")["QueueUrl"]
    fan = sqs.create_queue(QueueName="fanned")["QueueUrl"]
    fan_arn = sqs.get_queue_attributes(QueueUrl=fan, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = sns.create_topic(Name="durable")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=fan_arn, Attributes={"RawMessageDelivery": "true"})
    server.client("dynamodb").create_table(
        TableName="durable", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    server.client("s3").create_bucket(Bucket="durable")
    return {"queue": queue, "fan": fan, "topic": topic}


def writer(server: UnkaiServer, names: dict[str, str], kind: str, tag: str, acked: list[str],
           stop: threading.Event) -> None:
    client = server.client("sqs" if kind == "sqs" else kind)
    i = 0
    while not stop.is_set():
        key = f"{tag}-{i}"
        try:
            if kind == "sqs":
                client.send_message(QueueUrl=names["queue"], MessageBody=key)
            elif kind == "dynamodb":
                client.put_item(TableName="durable", Item={"id": {"S": key}})
            elif kind == "s3":
                client.put_object(Bucket="durable", Key=key, Body=key.encode())
            else:
                client.publish(TopicArn=names["topic"], Message=key)
        except Exception:
            return  # unkai died mid-request: never acknowledged
        acked.append(key)
        i += 1


def present(server: UnkaiServer, names: dict[str, str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {k: set() for k in KINDS}
    sqs = server.client("sqs")
    for kind, url in (("sqs", names["queue"]), ("sns", names["fan"])):
        while True:
            msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=5).get("Messages")
            if not msgs:
                break
            found[kind].update(m["Body"] for m in msgs)
    pages = server.client("dynamodb").get_paginator("scan").paginate(TableName="durable")
    found["dynamodb"] = {item["id"]["S"] for page in pages for item in page["Items"]}
    pages = server.client("s3").get_paginator("list_objects_v2").paginate(Bucket="durable")
    found["s3"] = {obj["Key"] for page in pages for obj in page.get("Contents", [])}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2, help="writers per service")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="unkai-durability-")) / "state"
    server = UnkaiServer(state).start()
    names = setup(server)
    acked: dict[str, list[str]] = {k: [] for k in KINDS}
    rng = random.Random(7)
    lost_rounds: list[dict[str, int]] = []
    for round_ in range(args.rounds):
        stop = threading.Event()
        threads = [threading.Thread(target=writer, args=(server, names, kind, f"r{round_}t{n}", acked[kind], stop))
                   for kind in KINDS for n in range(args.threads)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.3, 1.5))
        server.kill()
        stop.set()
        for t in threads:
            t.join(10)
        server = UnkaiServer(state).start()
        server.drain(60)  # SNS deliveries acknowledged before the kill finish after the restart
        found = present(server, names)
        lost_rounds.append({k: len(set(acked[k]) - found[k]) for k in KINDS})
        server.advance(10)  # what the check received is visible again for the next round's check
    server.stop()
    totals = {k: len(acked[k]) for k in KINDS}
    lost = {k: max(r[k] for r in lost_rounds) for k in KINDS}
    rows = [[k, totals[k], lost[k]] for k in KINDS]
    print(harness.table(rows, ["service", "writes acknowledged", "lost after kill -9"]))
    harness.write("durability", {"rounds": args.rounds, "threads": args.threads, "acknowledged": totals,
                                 "lost": lost, "machine": harness.machine()})


if __name__ == "__main__":
    main()
