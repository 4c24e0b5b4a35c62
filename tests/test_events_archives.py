"""EventBridge archives and replays through boto3, on this module's own unkai (its clock
moves by days): events archived by pattern as AWS's managed rule does it, retention on
the clock, replays delivering with ``replay-name`` to all or only some rules, replays
cancelled, and AWS's error texts."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from unkai.testing import UnkaiServer, new_queue, receive_all

ACCOUNT = "000000000000"
DEFAULT_BUS = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"


@pytest.fixture(scope="module")
def unkai(tmp_path_factory):
    server = UnkaiServer(tmp_path_factory.mktemp("archives") / "state").start()
    try:
        yield server
    finally:
        server.stop()


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error(exc: pytest.ExceptionInfo) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def now(server: UnkaiServer) -> float:
    import datetime as dt

    text = server.get("/_unkai/clock")["now"].replace("Z", "+00:00")
    return dt.datetime.fromisoformat(text).timestamp()


def test_an_archive_is_a_managed_rule_and_keeps_matching_events(unkai):
    events = unkai.client("events")
    bus = uid("arch")
    bus_arn = events.create_event_bus(Name=bus)["EventBusArn"]
    everything, picky = uid("all"), uid("picky")
    created = events.create_archive(ArchiveName=everything, EventSourceArn=bus_arn, Description="all of it")
    assert created["ArchiveArn"] == f"arn:aws:events:us-east-1:{ACCOUNT}:archive/{everything}"
    assert created["State"] == "ENABLED"
    events.create_archive(ArchiveName=picky, EventSourceArn=bus_arn,
                          EventPattern=json.dumps({"source": ["orders"]}), RetentionDays=1)
    rules = {r["Name"]: r for r in events.list_rules(EventBusName=bus)["Rules"]}
    assert rules[f"Events-Archive-{everything}"]["ManagedBy"] == "prod.vhs.events.aws.internal"
    assert json.loads(rules[f"Events-Archive-{everything}"]["EventPattern"]) == {"replay-name": [{"exists": False}]}
    assert json.loads(rules[f"Events-Archive-{picky}"]["EventPattern"]) == {
        "source": ["orders"], "replay-name": [{"exists": False}]}
    target = events.list_targets_by_rule(Rule=f"Events-Archive-{picky}", EventBusName=bus)["Targets"][0]
    assert target["Arn"] == "arn:aws:events:us-east-1:::"
    assert '"event": <aws.events.event.json>' in target["InputTransformer"]["InputTemplate"]

    events.put_events(Entries=[{"Source": "orders", "DetailType": "t", "Detail": "{}", "EventBusName": bus},
                               {"Source": "other", "DetailType": "t", "Detail": "{}", "EventBusName": bus}])
    described = events.describe_archive(ArchiveName=everything)
    assert described["EventCount"] == 2 and described["SizeBytes"] > 0
    assert described["Description"] == "all of it" and described["EventSourceArn"] == bus_arn
    assert described["RetentionDays"] == 0
    assert events.describe_archive(ArchiveName=picky)["EventCount"] == 1
    listed = events.list_archives(EventSourceArn=bus_arn)["Archives"]
    assert sorted(a["ArchiveName"] for a in listed) == sorted([everything, picky])
    assert "ArchiveArn" not in listed[0]

    unkai.advance(86400 + 60)  # past the picky archive's one-day retention
    assert events.describe_archive(ArchiveName=picky)["EventCount"] == 0
    assert events.describe_archive(ArchiveName=everything)["EventCount"] == 2

    with pytest.raises(ClientError) as exc:
        events.create_archive(ArchiveName=picky, EventSourceArn=bus_arn)
    assert error(exc) == ("ResourceAlreadyExistsException", f"Archive {picky} already exists.")
    with pytest.raises(ClientError) as exc:
        events.list_archives(NamePrefix="a", State="ENABLED")
    assert error(exc) == ("ValidationException", "At most one filter is allowed for ListArchives. Use either : "
                                                 "State, EventSourceArn, or NamePrefix.")
    events.update_archive(ArchiveName=picky, EventPattern=json.dumps({"source": ["other"]}))
    assert json.loads(events.describe_archive(ArchiveName=picky)["EventPattern"]) == {"source": ["other"]}
    events.delete_archive(ArchiveName=picky)
    with pytest.raises(ClientError) as exc:
        events.describe_archive(ArchiveName=picky)
    assert error(exc) == ("ResourceNotFoundException", f"Archive {picky} does not exist.")
    assert f"Events-Archive-{picky}" not in [r["Name"] for r in events.list_rules(EventBusName=bus)["Rules"]]


def test_replay_sends_archived_events_again_with_replay_name(unkai):
    events, sqs = unkai.client("events"), unkai.client("sqs")
    bus = uid("replay")
    bus_arn = events.create_event_bus(Name=bus)["EventBusArn"]
    archive = uid("keep")
    archive_arn = events.create_archive(ArchiveName=archive, EventSourceArn=bus_arn)["ArchiveArn"]
    url_a, arn_a = new_queue(sqs)
    url_b, arn_b = new_queue(sqs)
    rule_a = events.put_rule(Name="a", EventBusName=bus, EventPattern='{"source": ["app"]}')["RuleArn"]
    events.put_targets(Rule="a", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn_a}])
    events.put_rule(Name="b", EventBusName=bus, EventPattern='{"source": ["app"]}')
    events.put_targets(Rule="b", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn_b}])
    start = now(unkai)
    sent = events.put_events(Entries=[{"Source": "app", "DetailType": "n", "Detail": json.dumps({"n": i}),
                                       "EventBusName": bus} for i in range(3)])
    unkai.drain()
    assert len(receive_all(sqs, url_a)) == 3 and len(receive_all(sqs, url_b)) == 3
    unkai.advance(60)
    later = events.put_events(Entries=[{"Source": "app", "DetailType": "n", "Detail": '{"n": 9}',
                                        "EventBusName": bus}])
    unkai.drain()
    receive_all(sqs, url_a), receive_all(sqs, url_b)

    name = uid("again")
    started = events.start_replay(ReplayName=name, EventSourceArn=archive_arn, EventStartTime=start - 1,
                                  EventEndTime=start + 30, Destination={"Arn": bus_arn, "FilterArns": [rule_a]})
    assert started["State"] == "STARTING"
    assert started["ReplayArn"] == f"arn:aws:events:us-east-1:{ACCOUNT}:replay/{name}"
    unkai.drain()
    replayed = [json.loads(b) for b in receive_all(sqs, url_a)]
    assert sorted(e["id"] for e in replayed) == sorted(e["EventId"] for e in sent["Entries"])
    assert {e["replay-name"] for e in replayed} == {name}
    assert later["Entries"][0]["EventId"] not in {e["id"] for e in replayed}  # outside the time window
    assert receive_all(sqs, url_b) == []  # not in FilterArns
    described = events.describe_replay(ReplayName=name)
    assert described["State"] == "COMPLETED"
    assert described["EventSourceArn"] == archive_arn and described["Destination"]["FilterArns"] == [rule_a]
    assert "ReplayEndTime" in described and "EventLastReplayedTime" in described
    assert events.describe_archive(ArchiveName=archive)["EventCount"] == 4  # replayed events are not archived again
    assert [r["ReplayName"] for r in events.list_replays(NamePrefix=name)["Replays"]] == [name]

    with pytest.raises(ClientError) as exc:
        events.cancel_replay(ReplayName=name)
    assert error(exc) == ("IllegalStatusException", f"Replay {name} is not in a valid state for this operation.")
    with pytest.raises(ClientError) as exc:
        events.start_replay(ReplayName=name, EventSourceArn=archive_arn, EventStartTime=start,
                            EventEndTime=start + 1, Destination={"Arn": bus_arn})
    assert error(exc) == ("ResourceAlreadyExistsException", f"Replay {name} already exists.")
    with pytest.raises(ClientError) as exc:
        events.start_replay(ReplayName=uid("x"), EventSourceArn=archive_arn, EventStartTime=start,
                            EventEndTime=start + 1, Destination={"Arn": DEFAULT_BUS})
    assert error(exc) == ("ValidationException", "Parameter Destination.Arn is not valid. Reason: Cross event bus "
                                                 "replay is not permitted.")
    with pytest.raises(ClientError) as exc:
        events.start_replay(ReplayName=uid("x"), EventSourceArn=archive_arn, EventStartTime=start + 5,
                            EventEndTime=start, Destination={"Arn": bus_arn})
    assert error(exc) == ("ValidationException", "Parameter EventEndTime is not valid. Reason: EventStartTime must "
                                                 "be before EventEndTime.")
    with pytest.raises(ClientError) as exc:
        events.start_replay(ReplayName=uid("x"), EventSourceArn=archive_arn + "nope", EventStartTime=start,
                            EventEndTime=start + 1, Destination={"Arn": bus_arn})
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        events.describe_replay(ReplayName="nope")
    assert error(exc) == ("ResourceNotFoundException", "Replay nope does not exist.")
