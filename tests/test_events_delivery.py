"""How PutEvents hands its events over (unkai/services/events/deferred.py, unkai.targets.deliver_all).

PutEvents answers once its events are durable (one outbox job) and routes them right
after the answer, as AWS delivers asynchronously. These check what a user sees of that:
each queue receives its events in entry order with exact bodies, MD5s, SenderId and
NumberOfMessagesSent counts, also when a call's deliveries mix batched SQS queues with a
FIFO queue, an input transformer, a missing queue (its dead-letter queue) and another bus;
a client that receives right after PutEvents finds the message; a long poll wakes for a
deferred delivery; each event of a call keeps its own bus, Time, Resources and Source
through the compact outbox job; and an acknowledged PutEvents is delivered exactly once
across kill -9, including accepted jobs (in both forms) that no callback claimed before
the crash."""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import sqlite3
import threading
import uuid

from botocore.config import Config

from tests.metrics_support import day_stats
from unkai.testing import UnkaiServer, new_queue, receive_all

ACCOUNT = "000000000000"


def queue_arn(sqs, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def queue(sqs, name: str) -> str:
    return new_queue(sqs, name)[0]


def receive_messages(sqs, url: str) -> list[dict]:
    """Every visible message with its attributes, received and deleted, in receive order."""
    out: list[dict] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
        if not got:
            return out
        for m in got:
            out.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_one_calls_deliveries_reach_every_kind_of_target_in_entry_order(unkai):
    events, sqs, cw = unkai.client("events"), unkai.client("sqs"), unkai.client("cloudwatch")
    tag = uuid.uuid4().hex[:8]
    bus = f"deliveries-{tag}"
    other = f"deliveries-other-{tag}"
    events.create_event_bus(Name=bus)
    events.create_event_bus(Name=other)
    plain_a, plain_b = queue(sqs, f"plain-a-{tag}"), queue(sqs, f"plain-b-{tag}")
    shaped, dlq, relayed = queue(sqs, f"shaped-{tag}"), queue(sqs, f"dlq-{tag}"), queue(sqs, f"relayed-{tag}")
    fifo = queue(sqs, f"ordered-{tag}.fifo")
    missing = f"arn:aws:sqs:us-east-1:{ACCOUNT}:never-created-{tag}"
    targets = [
        {"Id": "a", "Arn": queue_arn(sqs, plain_a)},
        {"Id": "b", "Arn": queue_arn(sqs, plain_b)},
        {"Id": "fifo", "Arn": queue_arn(sqs, fifo), "SqsParameters": {"MessageGroupId": "g"}},
        {"Id": "shaped", "Arn": queue_arn(sqs, shaped),
         "InputTransformer": {"InputPathsMap": {"n": "$.detail.n"}, "InputTemplate": '{"n": <n>, "rule": <aws.events.rule-name>}'}},
        {"Id": "gone", "Arn": missing, "DeadLetterConfig": {"Arn": queue_arn(sqs, dlq)}},
    ]
    events.put_rule(Name="all", EventBusName=bus, EventPattern=json.dumps({"source": ["app"]}))
    events.put_targets(Rule="all", EventBusName=bus, Targets=targets)  # five: AWS's most per rule
    events.put_rule(Name="onward", EventBusName=bus, EventPattern=json.dumps({"source": ["app"]}))
    events.put_targets(Rule="onward", EventBusName=bus,
                       Targets=[{"Id": "bus", "Arn": f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/{other}"}])
    # a second rule on plain-a, for odd numbers only: its deliveries interleave with the first rule's
    events.put_rule(Name="odd", EventBusName=bus,
                    EventPattern=json.dumps({"source": ["app"], "detail": {"odd": [True]}}))
    events.put_targets(Rule="odd", EventBusName=bus, Targets=[{"Id": "a", "Arn": queue_arn(sqs, plain_a),
                                                               "Input": '{"odd": true}'}])
    events.put_rule(Name="relay", EventBusName=other, EventPattern=json.dumps({"source": ["app"]}))
    events.put_targets(Rule="relay", EventBusName=other, Targets=[{"Id": "q", "Arn": queue_arn(sqs, relayed)}])

    entries = [{"Source": "app", "DetailType": "t", "Detail": json.dumps({"n": i, "odd": i % 2 == 1}),
                "EventBusName": bus} for i in range(8)]
    entries.insert(3, {"Source": "app", "DetailType": "t", "Detail": "[1]", "EventBusName": bus})  # refused
    sent = events.put_events(Entries=entries)
    assert sent["FailedEntryCount"] == 1
    assert sent["Entries"][3] == {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
    ids = [e["EventId"] for i, e in enumerate(sent["Entries"]) if i != 3]

    # received at once, without waiting: routed before unkai reads the next request
    got_a = receive_messages(sqs, plain_a)
    expected_a = []
    for i, event_id in enumerate(ids):
        expected_a.append(("event", event_id))
        if i % 2:
            expected_a.append(("odd", None))
    seen_a = [("odd", None) if json.loads(m["Body"]) == {"odd": True} else ("event", json.loads(m["Body"])["id"])
              for m in got_a]
    assert seen_a == expected_a  # both rules' deliveries, in entry order, each once
    for m in got_a:
        assert m["MD5OfBody"] == hashlib.md5(m["Body"].encode()).hexdigest()
        assert m["Attributes"]["SenderId"] == "events.amazonaws.com"
    first = json.loads(got_a[0]["Body"])
    assert first["source"] == "app" and first["detail"] == {"n": 0, "odd": False}
    assert first["account"] == ACCOUNT and first["region"] == "us-east-1" and first["resources"] == []
    assert [json.loads(m["Body"])["id"] for m in receive_messages(sqs, plain_b)] == ids
    assert [json.loads(m["Body"])["id"] for m in receive_messages(sqs, fifo)] == ids
    assert [json.loads(m["Body"]) for m in receive_messages(sqs, shaped)] == [{"n": i, "rule": "all"} for i in range(8)]
    dead = receive_messages(sqs, dlq)
    assert [json.loads(m["Body"])["id"] for m in dead] == ids
    assert sorted(json.loads(m["Body"])["id"] for m in receive_messages(sqs, relayed)) == sorted(ids)

    # NumberOfMessagesSent: one sample per message, as when each was sent on its own (read on the
    # server's clock: other tests move the shared server's clock days ahead)
    stats = day_stats(cw, "AWS/SQS", "NumberOfMessagesSent", {"QueueName": f"plain-a-{tag}"}, unkai.advance(0)["epoch"])
    assert stats["Sum"] == 12 and stats["SampleCount"] == 12


def test_a_failed_delivery_reaches_the_dead_letter_queue_with_eventbridges_attributes(unkai):
    events, sqs = unkai.client("events"), unkai.client("sqs")
    tag = uuid.uuid4().hex[:8]
    dlq, ok = queue(sqs, f"dead-{tag}"), queue(sqs, f"ok-{tag}")
    rule_arn = events.put_rule(Name=f"dl-{tag}", EventPattern=json.dumps({"source": [f"dl-{tag}"]}))["RuleArn"]
    missing = f"arn:aws:sqs:us-east-1:{ACCOUNT}:absent-{tag}"
    events.put_targets(Rule=f"dl-{tag}", Targets=[
        {"Id": "ok1", "Arn": queue_arn(sqs, ok)},
        {"Id": "gone", "Arn": missing, "DeadLetterConfig": {"Arn": queue_arn(sqs, dlq)},
         "RetryPolicy": {"MaximumRetryAttempts": 3}},
    ])
    sent = events.put_events(Entries=[{"Source": f"dl-{tag}", "DetailType": "t", "Detail": json.dumps({"i": i})}
                                      for i in range(3)])
    got = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"])["Messages"]
    assert [json.loads(m["Body"])["id"] for m in got] == [e["EventId"] for e in sent["Entries"]]
    attrs = {k: v["StringValue"] for k, v in got[0]["MessageAttributes"].items()}
    assert attrs == {"RULE_ARN": rule_arn, "TARGET_ARN": missing, "ERROR_CODE": "SQS.NonExistentQueue",
                     "ERROR_MESSAGE": f"The specified queue does not exist: {missing}",
                     "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts", "RETRY_ATTEMPTS": "3"}
    assert len(receive_all(sqs, ok)) == 3


def test_a_long_poll_wakes_when_a_deferred_delivery_lands(unkai):
    events, sqs = unkai.client("events"), unkai.client("sqs")
    tag = uuid.uuid4().hex[:8]
    url = queue(sqs, f"polled-{tag}")
    events.put_rule(Name=f"poll-{tag}", EventPattern=json.dumps({"source": [f"poll-{tag}"]}))
    events.put_targets(Rule=f"poll-{tag}", Targets=[{"Id": "q", "Arn": queue_arn(sqs, url)}])
    # a client that gives up after 10 s: a poll not woken by the delivery would wait its full 20 s
    poller = unkai.client("sqs", config=Config(read_timeout=10, retries={"max_attempts": 0}))
    result: dict = {}

    def poll() -> None:
        try:
            result["got"] = poller.receive_message(QueueUrl=url, WaitTimeSeconds=20).get("Messages", [])
        except Exception as exc:  # the read timeout
            result["error"] = exc

    thread = threading.Thread(target=poll)
    thread.start()
    threading.Event().wait(1.0)  # let the poll reach the server and wait there
    sent = events.put_events(Entries=[{"Source": f"poll-{tag}", "DetailType": "t", "Detail": "{}"}] * 3)
    thread.join(30)
    assert "error" not in result, result
    assert result["got"] and json.loads(result["got"][0]["Body"])["id"] in {e["EventId"] for e in sent["Entries"]}


def test_each_event_of_a_call_keeps_its_own_bus_time_resources_and_source(unkai):
    """The call's events share their bus and time in the outbox job; the ones that differ
    (another bus, a Time, Resources), a Source holding a NUL and a Detail's big integer must
    still arrive as sent."""
    events, sqs = unkai.client("events"), unkai.client("sqs")
    tag = uuid.uuid4().hex[:8]
    first, second = f"own-a-{tag}", f"own-b-{tag}"
    got: dict[str, str] = {}
    for bus in (first, second):
        events.create_event_bus(Name=bus)
        got[bus] = queue(sqs, f"{bus}-q")
        events.put_rule(Name="all", EventBusName=bus, EventPattern=json.dumps({"source": [{"prefix": "app"}]}))
        events.put_targets(Rule="all", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn(sqs, got[bus])}])
    when = datetime.datetime(2026, 5, 4, 3, 2, 1, tzinfo=datetime.timezone.utc)
    calls = [
        [{"Source": "app.one", "DetailType": "plain", "Detail": json.dumps({"n": 0}), "EventBusName": first},
         {"Source": "app.two", "DetailType": "timed", "Detail": json.dumps({"n": 1}), "EventBusName": first,
          "Time": when, "Resources": ["arn:aws:s3:::one", "arn:aws:s3:::two"]},
         {"Source": "app.three", "DetailType": "refused", "EventBusName": first},  # no Detail
         {"Source": "app.four", "DetailType": "elsewhere", "Detail": json.dumps({"n": 3}), "EventBusName": second},
         {"Source": "app.five", "DetailType": "plain", "Detail": json.dumps({"n": 4, "s": "\"q\" \u00e9"}),
          "EventBusName": first},
         # an integer past 64 bits stays an integer (not the float a faster parser would make of it)
         {"Source": "app.big", "DetailType": "big", "Detail": '{"n": 123456789012345678901234, "f": 0.5}',
          "EventBusName": first}],
        # a NUL in a Source: the job keeps this call's strings as a list
        [{"Source": "app\x00nul", "DetailType": "d\x00t", "Detail": json.dumps({"n": 5}), "EventBusName": first},
         {"Source": "app.six", "DetailType": "plain", "Detail": json.dumps({"n": 6}), "EventBusName": first}],
    ]
    expected: dict[str, list[dict]] = {first: [], second: []}
    for entries in calls:
        sent = events.put_events(Entries=entries)
        assert sent["FailedEntryCount"] == sum("Detail" not in e for e in entries)
        for entry, result in zip(entries, sent["Entries"]):
            if "Detail" not in entry:
                assert result == {"ErrorCode": "InvalidArgument",
                                  "ErrorMessage": "Parameter Detail is not valid. Reason: Detail is a required argument."}
                continue
            assert set(result) == {"EventId"}
            expected[entry["EventBusName"]].append(
                {"version": "0", "id": result["EventId"], "detail-type": entry["DetailType"], "source": entry["Source"],
                 "account": ACCOUNT, "time": "2026-05-04T03:02:01Z" if "Time" in entry else None,
                 "region": "us-east-1", "resources": entry.get("Resources", []), "detail": json.loads(entry["Detail"])})
    for bus, url in got.items():
        bodies = [json.loads(m["Body"]) for m in receive_messages(sqs, url)]
        untimed = {b["time"] for b, e in zip(bodies, expected[bus]) if e["time"] is None}
        for body, event in zip(bodies, expected[bus]):
            if event["time"] is None:  # the call's own time, on the server's clock
                event["time"] = body["time"]
        assert bodies == expected[bus]
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t) for t in untimed)


def test_an_acknowledged_put_events_is_delivered_exactly_once_across_kill_9(tmp_path):
    state = tmp_path / "state"
    server = UnkaiServer(state).start()
    try:
        events, sqs = server.client("events"), server.client("sqs")
        url = queue(sqs, "kept")
        events.put_rule(Name="kept", EventPattern=json.dumps({"source": ["kept"]}))
        events.put_targets(Rule="kept", Targets=[{"Id": "q", "Arn": queue_arn(sqs, url)}])
        acked = []
        for i in range(20):
            sent = events.put_events(Entries=[{"Source": "kept", "DetailType": "t", "Detail": json.dumps({"i": i})}
                                              for _ in range(5)])
            acked += [e["EventId"] for e in sent["Entries"]]
    finally:
        server.kill()
    # accepted PutEvents whose routing never ran (the process died between commit and
    # callback): their outbox jobs, as the handler writes them, are due. One in the form
    # written before the compact one (an event a row), two compact: the call's strings
    # joined by NUL, and kept as a list (a Source held a NUL), with an event of its own time
    stranded, joined, listed, timed = (str(uuid.uuid4()) for _ in range(4))
    flat = ["default", stranded, "kept", "t", "2026-01-01T00:00:00Z", ["arn:aws:s3:::r"], '{"i": "late"}']
    jobs = [{"t": stranded, "a": ACCOUNT, "r": "us-east-1", "e": [flat]},
            {"t": joined, "a": ACCOUNT, "r": "us-east-1", "b": "default", "w": "2026-01-02T00:00:00Z", "i": joined,
             "f": "\0".join(["kept", "t", '{"i": "joined"}']), "x": []},
            {"t": listed, "a": ACCOUNT, "r": "us-east-1", "b": "default", "w": "2026-01-03T00:00:00Z",
             "i": listed + timed, "f": ["kept", "t\0", '{"i": "listed"}', "kept", "t", '{"i": "timed"}'],
             "x": [[1, "default", "2026-01-04T00:00:00Z", ["arn:aws:s3:::x"]]]}]
    db = sqlite3.connect(state / "unkai.db")
    with db:  # the old form as a due job of the runner's; the compact ones where PutEvents writes them
        db.execute("INSERT INTO unkai_jobs(kind, due, payload) VALUES('events.put', 0, ?)", (json.dumps(jobs[0]),))
        db.executemany("INSERT INTO unkai_soon(kind, token, payload) VALUES('events.put', ?, ?)",
                       [(job["t"], json.dumps(job)) for job in jobs[1:]])
    db.close()

    server = UnkaiServer(state).start()
    try:
        sqs = server.client("sqs")
        server.drain(timeout=30)
        got = [json.loads(b) for b in receive_all(sqs, sqs.get_queue_url(QueueName="kept")["QueueUrl"])]
        late = [stranded, joined, listed, timed]
        assert sorted(e["id"] for e in got) == sorted(acked + late)  # every acknowledged event once
        base = {"version": "0", "source": "kept", "account": ACCOUNT, "region": "us-east-1", "resources": []}
        assert sorted((e for e in got if e["id"] in late), key=lambda e: late.index(e["id"])) == [
            {**base, "id": stranded, "detail-type": "t", "time": "2026-01-01T00:00:00Z",
             "resources": ["arn:aws:s3:::r"], "detail": {"i": "late"}},
            {**base, "id": joined, "detail-type": "t", "time": "2026-01-02T00:00:00Z", "detail": {"i": "joined"}},
            {**base, "id": listed, "detail-type": "t\0", "time": "2026-01-03T00:00:00Z", "detail": {"i": "listed"}},
            {**base, "id": timed, "detail-type": "t", "time": "2026-01-04T00:00:00Z",
             "resources": ["arn:aws:s3:::x"], "detail": {"i": "timed"}}]
        assert server.post("/_unkai/drain?timeout=0")["pending"] == {}
    finally:
        server.stop()
