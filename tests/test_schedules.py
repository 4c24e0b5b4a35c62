"""EventBridge rules and EventBridge Scheduler schedules firing on unkai's clock
(advanced, never slept), with AWS's Scheduled Event payload, delivered to real
queues; durability across restarts; the template resources."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import textwrap
import uuid

import pytest
from botocore.exceptions import ClientError

from unkai.testing import UnkaiServer, receive_all


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def unkai(tmp_path_factory):
    """This module's own unkai: its clock moves by hours, which other tests must not see."""
    server = UnkaiServer(tmp_path_factory.mktemp("schedules") / "state").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def queue(unkai):
    sqs = unkai.client("sqs")
    url = sqs.create_queue(QueueName=uid("sched"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def drain_queue(server: UnkaiServer, url: str) -> list[str]:
    server.drain(120)  # a day of 5-minute ticks is 288 invocations: a loaded machine needs more than 10 s
    return receive_all(server.client("sqs"), url)


def test_cron_rule_fires_on_clock_advance_with_the_scheduled_event(unkai, queue):
    url, arn = queue
    events = unkai.client("events")
    name = uid("MyScheduleRule")
    rule_arn = events.put_rule(Name=name, ScheduleExpression="cron(0/5 * * * ? *)")["RuleArn"]
    assert rule_arn == f"arn:aws:events:us-east-1:000000000000:rule/{name}"
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
    unkai.advance(300)
    bodies = drain_queue(unkai, url)
    assert len(bodies) == 1
    event = json.loads(bodies[0])
    assert set(event) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    assert event["version"] == "0"
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["account"] == "000000000000"
    assert event["region"] == "us-east-1"
    assert event["resources"] == [rule_arn]
    assert event["detail"] == {}
    uuid.UUID(event["id"])
    when = dt.datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")
    assert when.minute % 5 == 0 and when.second == 0
    now = dt.datetime.fromisoformat(unkai.get("/_unkai/clock")["now"].replace("Z", "+00:00")).replace(tzinfo=None)
    assert dt.timedelta(0) <= now - when < dt.timedelta(minutes=5)
    events.remove_targets(Rule=name, Ids=["q"])
    events.delete_rule(Name=name)


def test_rate_rule_runs_once_per_period_and_targets_shape_the_input(unkai, queue):
    url, arn = queue
    events = unkai.client("events")
    name = uid("rate")
    events.put_rule(Name=name, ScheduleExpression="rate(1 minute)", Description="every minute")
    events.put_targets(Rule=name, Targets=[
        {"Id": "constant", "Arn": arn, "Input": '{"action":"0001","eventname":"foobar"}'},
        {"Id": "path", "Arn": arn, "InputPath": "$.detail-type"},
        {"Id": "shaped", "Arn": arn, "InputTransformer": {
            "InputPathsMap": {"type": "$.detail-type", "rule": "$.resources[0]"},
            "InputTemplate": '{"what": <type>, "rule": "<rule>", "name": "<aws.events.rule-name>"}'}},
    ])
    described = events.describe_rule(Name=name)
    assert (described["ScheduleExpression"], described["State"], described["Description"]) == \
        ("rate(1 minute)", "ENABLED", "every minute")
    assert [t["Id"] for t in events.list_targets_by_rule(Rule=name)["Targets"]] == ["constant", "path", "shaped"]
    unkai.advance(180)
    bodies = drain_queue(unkai, url)
    assert len(bodies) == 9  # three runs, three targets each
    assert bodies.count('{"action":"0001","eventname":"foobar"}') == 3
    assert bodies.count('"Scheduled Event"') == 3
    shaped = [json.loads(b) for b in bodies if b.startswith('{"what"')]
    assert shaped == [{"what": "Scheduled Event", "rule": f"arn:aws:events:us-east-1:000000000000:rule/{name}",
                       "name": name}] * 3
    events.delete_rule(Name=name, Force=True)


def test_disabled_rules_do_not_fire(unkai, queue):
    url, arn = queue
    events = unkai.client("events")
    name = uid("off")
    events.put_rule(Name=name, ScheduleExpression="rate(1 minute)", State="DISABLED")
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
    unkai.advance(120)
    assert drain_queue(unkai, url) == []
    events.enable_rule(Name=name)
    unkai.advance(60)
    assert len(drain_queue(unkai, url)) == 1
    events.disable_rule(Name=name)
    assert events.describe_rule(Name=name)["State"] == "DISABLED"
    unkai.advance(120)
    assert drain_queue(unkai, url) == []
    with pytest.raises(ClientError) as exc:
        events.delete_rule(Name=name)
    assert exc.value.response["Error"]["Message"] == "Rule can't be deleted since it has targets."
    events.delete_rule(Name=name, Force=True)
    with pytest.raises(ClientError) as exc:
        events.describe_rule(Name=name)
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_undeliverable_events_go_to_the_targets_dead_letter_queue(unkai, queue):
    dlq_url, dlq_arn = queue
    events = unkai.client("events")
    name = uid("lost")
    rule_arn = events.put_rule(Name=name, ScheduleExpression="rate(1 minute)")["RuleArn"]
    missing = "arn:aws:sqs:us-east-1:000000000000:no-such-queue"
    events.put_targets(Rule=name, Targets=[{"Id": "gone", "Arn": missing, "Input": '{"n": 1}',
                                            "DeadLetterConfig": {"Arn": dlq_arn}}])
    unkai.advance(60)
    unkai.drain()
    got = unkai.client("sqs").receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in got] == ['{"n": 1}']
    attrs = {k: v["StringValue"] for k, v in got[0]["MessageAttributes"].items()}
    assert attrs["RULE_ARN"] == rule_arn and attrs["TARGET_ARN"] == missing
    assert attrs["ERROR_CODE"] == "SQS.NonExistentQueue"
    events.delete_rule(Name=name, Force=True)


def test_rule_validation(unkai):
    events = unkai.client("events")
    for bad in ("rate(1 minutes)", "cron(0 12 * * * *)", "cron(0 12 ? * ? *)", "every hour"):
        with pytest.raises(ClientError) as exc:
            events.put_rule(Name=uid("bad"), ScheduleExpression=bad)
        assert exc.value.response["Error"]["Code"] == "ValidationException"
        assert exc.value.response["Error"]["Message"] == "Parameter ScheduleExpression is not valid."
    name = uid("limits")
    events.put_rule(Name=name, ScheduleExpression="rate(5 minutes)")
    with pytest.raises(ClientError) as exc:
        events.put_targets(Rule=name, Targets=[{"Id": str(i), "Arn": "arn:aws:sqs:us-east-1:000000000000:x"}
                                               for i in range(6)])
    assert exc.value.response["Error"]["Code"] == "LimitExceededException"
    with pytest.raises(ClientError) as exc:
        events.put_targets(Rule=name, Targets=[{"Id": "a", "Arn": "arn:aws:sqs:us-east-1:000000000000:x",
                                                "Input": "{}", "InputPath": "$"}])
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    listed = events.list_rules(NamePrefix=name)["Rules"]
    assert [r["Name"] for r in listed] == [name]
    events.delete_rule(Name=name)


def test_put_events_delivers_to_rules_whose_pattern_matches(unkai, queue):
    url, arn = queue
    events = unkai.client("events")
    name = uid("orders")
    pattern = {"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}], "kind": [{"prefix": "big"}]}}
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
    result = events.put_events(Entries=[
        {"Source": "shop", "DetailType": "order", "Detail": json.dumps({"total": 150, "kind": "bigbox"})},
        {"Source": "shop", "DetailType": "order", "Detail": json.dumps({"total": 50, "kind": "bigbox"})},
        {"Source": "other", "DetailType": "order", "Detail": json.dumps({"total": 150, "kind": "bigbox"})},
        {"Source": "shop", "DetailType": "order", "Detail": "not json"},
    ])
    assert result["FailedEntryCount"] == 1
    assert result["Entries"][3]["ErrorCode"] == "MalformedDetail"
    bodies = [json.loads(b) for b in drain_queue(unkai, url)]
    assert len(bodies) == 1
    assert bodies[0]["detail"] == {"total": 150, "kind": "bigbox"}
    assert bodies[0]["id"] == result["Entries"][0]["EventId"]
    assert bodies[0]["detail-type"] == "order" and bodies[0]["source"] == "shop"
    assert events.test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(bodies[0]))["Result"]
    assert not events.test_event_pattern(EventPattern='{"source": [{"anything-but": "shop"}]}',
                                         Event=json.dumps(bodies[0]))["Result"]
    events.delete_rule(Name=name, Force=True)


def test_scheduler_schedules_groups_and_one_time_runs(unkai, queue):
    url, arn = queue
    scheduler = unkai.client("scheduler")
    group = uid("grp")
    scheduler.create_schedule_group(Name=group)
    assert group in [g["Name"] for g in scheduler.list_schedule_groups()["ScheduleGroups"]]
    target = {"Arn": arn, "RoleArn": "arn:aws:iam::000000000000:role/scheduler",
              "Input": '{"at": "<aws.scheduler.scheduled-time>"}'}
    created = scheduler.create_schedule(Name="tick", GroupName=group, ScheduleExpression="rate(10 minutes)",
                                        FlexibleTimeWindow={"Mode": "OFF"}, Target=target)
    assert created["ScheduleArn"] == f"arn:aws:scheduler:us-east-1:000000000000:schedule/{group}/tick"
    with pytest.raises(ClientError) as exc:
        scheduler.create_schedule(Name="tick", GroupName=group, ScheduleExpression="rate(10 minutes)",
                                  FlexibleTimeWindow={"Mode": "OFF"}, Target=target)
    assert exc.value.response["Error"]["Code"] == "ConflictException"
    got = scheduler.get_schedule(Name="tick", GroupName=group)
    assert got["State"] == "ENABLED" and got["Target"]["Arn"] == arn
    unkai.advance(600)
    bodies = [json.loads(b) for b in drain_queue(unkai, url)]
    assert len(bodies) == 1 and bodies[0]["at"].endswith("Z")
    scheduler.update_schedule(Name="tick", GroupName=group, ScheduleExpression="rate(10 minutes)",
                              FlexibleTimeWindow={"Mode": "OFF"}, Target=target, State="DISABLED")
    unkai.advance(1200)
    assert drain_queue(unkai, url) == []
    # one-time: at() in unkai's time, deleted after it ran
    now = dt.datetime.fromisoformat(unkai.get("/_unkai/clock")["now"].replace("Z", "+00:00"))
    at = (now + dt.timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%S")
    scheduler.create_schedule(Name="once", GroupName=group, ScheduleExpression=f"at({at})",
                              FlexibleTimeWindow={"Mode": "OFF"}, ActionAfterCompletion="DELETE",
                              Target={"Arn": arn, "RoleArn": "arn:aws:iam::000000000000:role/s", "Input": '"once"'})
    unkai.advance(120)
    assert drain_queue(unkai, url) == []
    unkai.advance(61)
    assert drain_queue(unkai, url) == ['"once"']
    unkai.advance(3600)
    assert drain_queue(unkai, url) == []
    names = [s["Name"] for s in scheduler.list_schedules(GroupName=group)["Schedules"]]
    assert names == ["tick"]
    with pytest.raises(ClientError) as exc:
        scheduler.create_schedule(Name="bad", ScheduleExpression="rate(0 minutes)",
                                  FlexibleTimeWindow={"Mode": "OFF"}, Target=target)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    scheduler.delete_schedule_group(Name=group)
    with pytest.raises(ClientError) as exc:
        scheduler.get_schedule(Name="tick", GroupName=group)
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_scheduler_puts_events_on_a_bus_with_its_eventbridge_parameters(unkai, queue):
    url, arn = queue
    events, scheduler = unkai.client("events"), unkai.client("scheduler")
    bus = uid("sched-bus")
    bus_arn = events.create_event_bus(Name=bus)["EventBusArn"]
    events.put_rule(Name="from-scheduler", EventBusName=bus, EventPattern='{"source": ["billing.scheduler"]}')
    events.put_targets(Rule="from-scheduler", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    name = uid("invoice")
    schedule_arn = scheduler.create_schedule(
        Name=name, ScheduleExpression="rate(5 minutes)", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": bus_arn, "RoleArn": "arn:aws:iam::000000000000:role/s", "Input": '{"run": "monthly"}',
                "EventBridgeParameters": {"DetailType": "Invoice Due", "Source": "billing.scheduler"}})["ScheduleArn"]
    unkai.advance(300)
    bodies = [json.loads(b) for b in drain_queue(unkai, url)]
    assert len(bodies) == 1
    assert bodies[0]["detail-type"] == "Invoice Due" and bodies[0]["source"] == "billing.scheduler"
    assert bodies[0]["detail"] == {"run": "monthly"} and bodies[0]["resources"] == [schedule_arn]
    scheduler.delete_schedule(Name=name)


def _move_clock(state, seconds: float) -> None:
    """As if unkai had been stopped for ``seconds``: the clock it resumes with is later."""
    db = sqlite3.connect(state / "unkai.db")
    with db:
        (offset,) = db.execute("SELECT value FROM unkai_meta WHERE key='clock_offset'").fetchone() or ("0",)
        db.execute("INSERT OR REPLACE INTO unkai_meta(key, value) VALUES('clock_offset', ?)",
                   (repr(float(offset) + seconds),))
    db.close()


def test_runs_missed_while_stopped_are_not_made_up(tmp_path):
    state = tmp_path / "state"
    with UnkaiServer(state) as server:
        sqs = server.client("sqs")
        url = sqs.create_queue(QueueName="ticks")["QueueUrl"]
        arn = "arn:aws:sqs:us-east-1:000000000000:ticks"
        server.client("events").put_rule(Name="every-minute", ScheduleExpression="rate(1 minute)")
        server.client("events").put_targets(Rule="every-minute", Targets=[{"Id": "q", "Arn": arn}])
        now = dt.datetime.fromisoformat(server.get("/_unkai/clock")["now"].replace("Z", "+00:00"))
        at = (now + dt.timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S")
        server.client("scheduler").create_schedule(
            Name="later", ScheduleExpression=f"at({at})", FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": arn, "RoleArn": "arn:aws:iam::000000000000:role/s", "Input": '"one-off"'})
    _move_clock(state, 3600)  # an hour passes while unkai is stopped
    with UnkaiServer(state) as server:
        assert drain_queue(server, url) == ['"one-off"']  # the one-time run it missed, once
        server.advance(60)
        bodies = drain_queue(server, url)
        assert len(bodies) == 1 and json.loads(bodies[0])["detail-type"] == "Scheduled Event"


TEMPLATE = textwrap.dedent("""\
    Transform: AWS::Serverless-2016-10-31
    Resources:
      Inbox:
        Type: AWS::SQS::Queue
        Properties:
          QueueName: inbox
      Nightly:
        Type: AWS::Events::Rule
        Properties:
          ScheduleExpression: cron(0 3 * * ? *)
          Targets:
            - Id: inbox
              Arn: !GetAtt Inbox.Arn
              Input: '{"job": "nightly"}'
      Paused:
        Type: AWS::Events::Rule
        Properties:
          Name: paused
          State: DISABLED
          ScheduleExpression: rate(1 minute)
          Targets:
            - Id: inbox
              Arn: !GetAtt Inbox.Arn
      Group:
        Type: AWS::Scheduler::ScheduleGroup
        Properties:
          Name: jobs
      Hourly:
        Type: AWS::Scheduler::Schedule
        Properties:
          GroupName: !Ref Group
          ScheduleExpression: rate(1 hour)
          FlexibleTimeWindow: {Mode: "OFF"}
          Target:
            Arn: !GetAtt Inbox.Arn
            RoleArn: arn:aws:iam::000000000000:role/scheduler
            Input: '{"job": "hourly"}'
      Worker:
        Type: AWS::Serverless::Function
        Properties:
          InlineCode: "def handler(event, context): return event"
          Handler: index.handler
          Runtime: python3.12
          Events:
            Tick:
              Type: Schedule
              Properties:
                Schedule: rate(5 minutes)
                Input: '{"action": "0001"}'
    Outputs:
      NightlyArn:
        Value: !GetAtt Nightly.Arn
    """)


def test_template_rules_and_schedules(tmp_path):
    template = tmp_path / "app" / "template.yaml"
    template.parent.mkdir()
    template.write_text(TEMPLATE)
    with UnkaiServer(tmp_path / "state", str(template)) as server:
        events = server.client("events")
        cfn = server.client("cloudformation")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks()["Stacks"][0]["Outputs"]}
        nightly = outputs["NightlyArn"].rsplit("/", 1)[1]
        assert nightly.startswith("app-Nightly-")
        assert events.describe_rule(Name=nightly)["ScheduleExpression"] == "cron(0 3 * * ? *)"
        assert events.describe_rule(Name="paused")["State"] == "DISABLED"
        tick = cfn.describe_stack_resource(StackName="app", LogicalResourceId="WorkerTick")["StackResourceDetail"]
        worker_targets = events.list_targets_by_rule(Rule=tick["PhysicalResourceId"])["Targets"]
        assert worker_targets[0]["Input"] == '{"action": "0001"}'
        assert ":lambda:" in worker_targets[0]["Arn"] or ":function:" in worker_targets[0]["Arn"]
        schedule = server.client("scheduler").list_schedules(GroupName="jobs")["Schedules"]
        assert len(schedule) == 1 and schedule[0]["Name"].startswith("app-Hourly-")
        url = server.client("sqs").get_queue_url(QueueName="inbox")["QueueUrl"]
        server.advance(24 * 3600)
        bodies = drain_queue(server, url)
        assert bodies.count('{"job": "nightly"}') == 1
        assert bodies.count('{"job": "hourly"}') == 24
        assert len(bodies) == 25  # the paused rule sent nothing
