"""EventBridge answers checked against AWS's: PutTargets and event-pattern validation
messages (as AWS-verified public suites record them), and targets AWS supports that
unkai delivers to (CloudWatch Logs, FIFO queues with their group)."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from unkai.testing import new_queue, receive_all

ACCOUNT = "000000000000"


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error(exc: pytest.ExceptionInfo) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def test_put_targets_rejects_a_malformed_arn_for_the_whole_call(unkai):
    events = unkai.client("events")
    name = uid("arns")
    events.put_rule(Name=name, EventPattern=json.dumps({"account": [ACCOUNT]}))
    with pytest.raises(ClientError) as exc:
        events.put_targets(Rule=name, Targets=[{"Id": "s3", "Arn": "arn:aws:s3:::test-bucket"},
                                               {"Id": "s3", "Arn": "test-bucket"}])
    assert error(exc) == ("ValidationException",
                          "Parameter test-bucket is not valid. Reason: Provided Arn is not in correct format.")
    assert events.list_targets_by_rule(Rule=name)["Targets"] == []


def test_a_fifo_queue_target_needs_sqs_parameters(unkai):
    events = unkai.client("events")
    with pytest.raises(ClientError) as exc:
        events.put_targets(Rule="unknown", Targets=[
            {"Id": "sqs-fifo", "Arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:test-queue.fifo"}])
    assert error(exc) == ("ValidationException", "Parameter(s) SqsParameters must be specified for target: sqs-fifo.")
    with pytest.raises(ClientError) as exc:
        events.put_targets(Rule="unknown", Targets=[{"Id": "s3", "Arn": "arn:aws:s3:::test-bucket"}])
    assert error(exc) == ("ResourceNotFoundException", "Rule unknown does not exist on EventBus default.")


@pytest.mark.parametrize("pattern,reason", [
    ("invalid", "Invalid JSON"),
    (json.dumps({"key_1": {"key_2": {"key_3": ["value_1"]}, "key_4": {"key_5": ["value_2"], "key_6": "value_3"}}}),
     "'key_6' must be an object or an array"),
    (json.dumps({"source": []}), "Empty arrays are not allowed"),
])
def test_invalid_patterns_are_answered_with_aws_reasons(unkai, pattern, reason):
    events = unkai.client("events")
    message = f"Event pattern is not valid. Reason: {reason}"
    with pytest.raises(ClientError) as exc:
        events.put_rule(Name=uid("bad"), EventPattern=pattern)
    assert error(exc) == ("InvalidEventPatternException", message)
    with pytest.raises(ClientError) as exc:
        events.create_archive(ArchiveName=uid("bad"), EventPattern=pattern,
                              EventSourceArn=f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default")
    assert error(exc) == ("InvalidEventPatternException", message)
    with pytest.raises(ClientError) as exc:
        events.test_event_pattern(EventPattern=pattern, Event=json.dumps({"source": "x"}))
    assert error(exc) == ("InvalidEventPatternException", message)


def test_fifo_queue_and_cloudwatch_logs_targets_receive_events(unkai):
    events, sqs, logs = unkai.client("events"), unkai.client("sqs"), unkai.client("logs")
    fifo_url, fifo_arn = new_queue(sqs, f"{uid('eb')}.fifo", FifoQueue="true")
    group = f"/aws/events/{uid('audit')}"
    logs.create_log_group(logGroupName=group)
    name, source = uid("fan"), uid("src")
    events.put_rule(Name=name, EventPattern=json.dumps({"source": [source]}))
    events.put_targets(Rule=name, Targets=[
        {"Id": "fifo", "Arn": fifo_arn, "SqsParameters": {"MessageGroupId": "g1"}},
        {"Id": "logs", "Arn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{group}:*"}])
    sent = events.put_events(Entries=[{"Source": source, "DetailType": "t", "Detail": json.dumps({"n": i})}
                                      for i in range(2)])
    unkai.drain()
    messages = sqs.receive_message(QueueUrl=fifo_url, MaxNumberOfMessages=10, AttributeNames=["MessageGroupId"],
                                   WaitTimeSeconds=1)["Messages"]
    assert [json.loads(m["Body"])["detail"]["n"] for m in messages] == [0, 1]
    assert {m["Attributes"]["MessageGroupId"] for m in messages} == {"g1"}
    streams = {s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]}
    assert streams == {e["EventId"] for e in sent["Entries"]}  # one stream per event, named by its id
    logged = [json.loads(e["message"]) for e in logs.filter_log_events(logGroupName=group)["events"]]
    assert sorted(e["detail"]["n"] for e in logged) == [0, 1]
    events.delete_rule(Name=name, Force=True)


def test_rule_names_and_target_ids_are_checked_with_aws_constraint_messages(unkai):
    events = unkai.client("events")
    with pytest.raises(ClientError) as exc:
        events.put_rule(Name="bad name!", EventPattern='{"source": ["x"]}')
    assert error(exc) == ("ValidationException", "1 validation error detected: Value 'bad name!' at 'name' failed to "
                          "satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+")
    with pytest.raises(ClientError) as exc:
        events.put_rule(Name="x" * 65, EventPattern='{"source": ["x"]}')
    assert error(exc) == ("ValidationException", f"1 validation error detected: Value '{'x' * 65}' at 'name' failed "
                          "to satisfy constraint: Member must have length less than or equal to 64")
    name = uid("ids")
    events.put_rule(Name=name, EventPattern='{"source": ["x"]}')
    with pytest.raises(ClientError) as exc:
        events.put_targets(Rule=name, Targets=[{"Id": "ok", "Arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:q"},
                                               {"Id": "bad id!", "Arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:q"}])
    assert error(exc) == ("ValidationException", "1 validation error detected: Value 'bad id!' at "
                          "'targets.2.member.id' failed to satisfy constraint: Member must satisfy regular "
                          "expression pattern: [\\.\\-_A-Za-z0-9]+")
