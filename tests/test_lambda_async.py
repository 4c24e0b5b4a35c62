"""Asynchronous invocation with real workers: retries on unkai's clock, dead-letter
queues, destinations, event age and concurrency."""

from __future__ import annotations

import json

import pytest
from lambda_code import deploy, private_server

from unkai.testing import new_queue

ALWAYS_FAILS = """
import os
def handler(event, context):
    print('attempt for', event['id'])
    raise RuntimeError('nope ' + str(event['id']))
"""
SUCCEEDS = "def handler(event, context):\n    return {'doubled': event['n'] * 2}\n"


unkai = private_server("async")


@pytest.fixture(scope="module")
def lam(unkai):
    return unkai.client("lambda")


@pytest.fixture(scope="module")
def sqs(unkai):
    return unkai.client("sqs")


def queue(sqs) -> tuple[str, str]:
    return new_queue(sqs)


def attempts(unkai, name: str) -> int:
    events = unkai.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}",
                                                    filterPattern='"attempt for"')["events"]
    return len(events)


def receive_all(sqs, url: str) -> list[dict]:
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get("Messages", [])


def test_failing_async_event_runs_three_times_then_lands_in_the_dlq(lam, sqs, unkai):
    dlq_url, dlq_arn = queue(sqs)
    name = deploy(lam, ALWAYS_FAILS, DeadLetterConfig={"TargetArn": dlq_arn})
    assert lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"id": 1}))["StatusCode"] == 202
    unkai.drain()
    assert attempts(unkai, name) == 1 and receive_all(sqs, dlq_url) == []
    unkai.advance(61)
    unkai.drain()
    assert attempts(unkai, name) == 2
    unkai.advance(121)
    unkai.drain()
    assert attempts(unkai, name) == 3
    messages = receive_all(sqs, dlq_url)
    assert len(messages) == 1
    assert json.loads(messages[0]["Body"]) == {"id": 1}
    attrs = messages[0]["MessageAttributes"]
    assert attrs["ErrorCode"] == {"StringValue": "200", "DataType": "Number"}
    assert attrs["ErrorMessage"]["StringValue"] == "nope 1"
    assert len(attrs["RequestID"]["StringValue"]) == 36
    unkai.advance(600)
    unkai.drain()
    assert attempts(unkai, name) == 3  # no fourth run


def test_synchronous_failure_is_not_retried(lam, unkai):
    name = deploy(lam, ALWAYS_FAILS)
    resp = lam.invoke(FunctionName=name, Payload=json.dumps({"id": 2}))
    assert resp["FunctionError"] == "Unhandled"
    unkai.advance(200)
    unkai.drain()
    assert attempts(unkai, name) == 1


def test_destinations_get_aws_records(lam, sqs, unkai):
    ok_url, ok_arn = queue(sqs)
    fail_url, fail_arn = queue(sqs)
    good = deploy(lam, SUCCEEDS)
    lam.put_function_event_invoke_config(FunctionName=good, DestinationConfig={"OnSuccess": {"Destination": ok_arn}})
    bad = deploy(lam, ALWAYS_FAILS)
    lam.put_function_event_invoke_config(FunctionName=bad, MaximumRetryAttempts=0,
                                         DestinationConfig={"OnFailure": {"Destination": fail_arn}})
    lam.invoke(FunctionName=good, InvocationType="Event", Payload=json.dumps({"n": 21}))
    lam.invoke(FunctionName=bad, InvocationType="Event", Payload=json.dumps({"id": 3}))
    unkai.drain()
    success = json.loads(receive_all(sqs, ok_url)[0]["Body"])
    assert success["version"] == "1.0" and success["timestamp"].endswith("Z")
    assert success["requestContext"]["condition"] == "Success"
    assert success["requestContext"]["functionArn"].endswith(f":function:{good}:$LATEST")
    assert success["requestContext"]["approximateInvokeCount"] == 1
    assert success["requestPayload"] == {"n": 21}
    assert success["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert success["responsePayload"] == {"doubled": 42}
    failure = json.loads(receive_all(sqs, fail_url)[0]["Body"])
    assert failure["requestContext"]["condition"] == "RetriesExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 1
    assert failure["responseContext"]["functionError"] == "Unhandled"
    assert failure["responsePayload"]["errorMessage"] == "nope 3"
    assert attempts(unkai, bad) == 1


def test_an_event_bus_destination_gets_the_invocation_result_event(lam, sqs, unkai):
    """An async invocation's destination may be an EventBridge bus: AWS puts the record on
    it as an event of source ``lambda``, detail-type "Lambda Function Invocation Result -
    Success" (or "- Failure"), resources the function's ARN, the record as its detail."""
    events = unkai.client("events")
    bus_arn = events.create_event_bus(Name="lambda-results")["EventBusArn"]
    url, arn = queue(sqs)
    events.put_rule(Name="results", EventBusName="lambda-results", EventPattern=json.dumps({"source": ["lambda"]}))
    events.put_targets(Rule="results", EventBusName="lambda-results", Targets=[{"Id": "q", "Arn": arn}])
    good = deploy(lam, SUCCEEDS)
    lam.put_function_event_invoke_config(FunctionName=good, DestinationConfig={"OnSuccess": {"Destination": bus_arn}})
    lam.invoke(FunctionName=good, InvocationType="Event", Payload=json.dumps({"n": 4}))
    unkai.drain()
    [message] = receive_all(sqs, url)
    event = json.loads(message["Body"])
    assert (event["source"], event["detail-type"]) == ("lambda", "Lambda Function Invocation Result - Success")
    assert event["resources"] == [f"{lam.get_function(FunctionName=good)['Configuration']['FunctionArn']}:$LATEST"]
    assert event["detail"]["requestContext"]["condition"] == "Success"
    assert (event["detail"]["requestPayload"], event["detail"]["responsePayload"]) == ({"n": 4}, {"doubled": 8})


def test_maximum_event_age_discards_to_on_failure(lam, sqs, unkai):
    fail_url, fail_arn = queue(sqs)
    name = deploy(lam, ALWAYS_FAILS)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumEventAgeInSeconds=90,
                                         DestinationConfig={"OnFailure": {"Destination": fail_arn}})
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"id": 4}))
    unkai.drain()
    unkai.advance(61)  # the retry at +60 s runs; the next (at +180 s) would exceed the 90 s age
    unkai.drain()
    record = json.loads(receive_all(sqs, fail_url)[0]["Body"])
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert attempts(unkai, name) == 2


def test_throttled_async_events_wait_for_concurrency(lam, unkai):
    name = deploy(lam, "def handler(e, c):\n    print('ran', e['i'])\n")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    for i in range(3):
        lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"i": i}))
    result = unkai.post("/_unkai/drain?timeout=0.5")
    assert not result["drained"]
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    unkai.drain()
    events = unkai.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern="ran")["events"]
    assert sorted(e["message"] for e in events) == ["ran 0\n", "ran 1\n", "ran 2\n"]


def test_event_invocations_survive_a_kill(tmp_path):
    from unkai.testing import UnkaiServer

    server = UnkaiServer(tmp_path / "state").start()
    try:
        lam = server.client("lambda")
        name = deploy(lam, "def handler(e, c):\n    print('handled', e['n'])\n")
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
        lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"n": 7}))
        server.kill()
        server.start()
        lam = server.client("lambda")
        lam.delete_function_concurrency(FunctionName=name)
        server.drain()
        events = server.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        assert "handled 7\n" in [e["message"] for e in events]
    finally:
        server.stop()
