"""SQS event source mappings with real workers: AWS's record shape, batches, partial
batch failures, redrive through the visibility timeout, FIFO order, filters."""

from __future__ import annotations

import json
import uuid

import pytest
from lambda_code import deploy, private_server

from unkai.testing import new_queue

RECORDER = """
import json, os
def handler(event, context):
    for record in event['Records']:
        print('RECORD ' + json.dumps(record))
    print('BATCH ' + str(len(event['Records'])))
    body = event['Records'][0]['body']
    if body.startswith('fail'):
        raise ValueError('failing on purpose')
    if os.environ.get('PARTIAL'):
        return {'batchItemFailures': [{'itemIdentifier': r['messageId']} for r in event['Records']
                                      if r['body'].startswith('bad')]}
    return None
"""


unkai = private_server("sqs-mappings")


@pytest.fixture(scope="module")
def lam(unkai):
    return unkai.client("lambda")


@pytest.fixture(scope="module")
def sqs(unkai):
    return unkai.client("sqs")


def make_queue(sqs, fifo: bool = False, **attrs: str) -> tuple[str, str]:
    return new_queue(sqs, f"esm-{uuid.uuid4().hex[:10]}" + (".fifo" if fifo else ""), **attrs)


def records(unkai, name: str) -> list[dict]:
    logs = unkai.client("logs")
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern="RECORD")
    except logs.exceptions.ResourceNotFoundException:  # never invoked: no log group yet, as on AWS
        return []
    return [json.loads(e["message"].split(" ", 1)[1]) for e in events["events"]]


def batches(unkai, name: str) -> list[int]:
    events = unkai.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern="BATCH")
    return [int(e["message"].split()[1]) for e in events["events"]]


def test_messages_reach_the_function_with_aws_record_shape(lam, sqs, unkai):
    url, arn = make_queue(sqs)
    name = deploy(lam, RECORDER)
    mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=10)
    assert mapping["State"] == "Creating" and mapping["BatchSize"] == 10
    sent = sqs.send_message(QueueUrl=url, MessageBody="hello",
                            MessageAttributes={"kind": {"DataType": "String", "StringValue": "greeting"}})
    unkai.drain()
    [record] = records(unkai, name)
    assert list(record) == ["messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
                            "md5OfMessageAttributes", "eventSource", "eventSourceARN", "awsRegion"]
    assert record["messageId"] == sent["MessageId"] and record["body"] == "hello"
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == arn and record["awsRegion"] == "us-east-1"
    assert record["md5OfBody"] == sent["MD5OfMessageBody"]
    assert set(record["attributes"]) >= {"ApproximateReceiveCount", "SentTimestamp", "SenderId",
                                         "ApproximateFirstReceiveTimestamp"}
    assert record["messageAttributes"] == {"kind": {"stringValue": "greeting", "stringListValues": [],
                                                    "binaryListValues": [], "dataType": "String"}}
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"][
        "ApproximateNumberOfMessages"] == "0"
    got = lam.get_event_source_mapping(UUID=mapping["UUID"])
    assert got["State"] == "Enabled" and "LastProcessingResult" not in got  # AWS reports it for streams only
    assert [m["UUID"] for m in lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]] == \
        [mapping["UUID"]]


def test_batching_window_collects_a_batch(lam, sqs, unkai):
    url, arn = make_queue(sqs, VisibilityTimeout="300")
    name = deploy(lam, RECORDER)
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=5,
                                    MaximumBatchingWindowInSeconds=30)
    unkai.drain()
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(3)])
    unkai.advance(31)
    unkai.drain()
    assert sum(batches(unkai, name)) == 3
    assert len(batches(unkai, name)) <= 2


def test_failed_batch_returns_through_visibility_timeout_to_the_dlq(lam, sqs, unkai):
    dlq_url, dlq_arn = make_queue(sqs)
    url, arn = make_queue(sqs, VisibilityTimeout="30",
                          RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}))
    name = deploy(lam, RECORDER)
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=1)
    sqs.send_message(QueueUrl=url, MessageBody="fail please")
    unkai.drain()
    assert batches(unkai, name) == [1]
    unkai.advance(31)
    unkai.drain()
    assert batches(unkai, name) == [1, 1]
    unkai.advance(31)
    unkai.drain()
    assert batches(unkai, name) == [1, 1]  # moved to the DLQ on the third receive, not delivered again
    moved = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages", [])
    assert [m["Body"] for m in moved] == ["fail please"]


def test_report_batch_item_failures_keeps_only_failed_messages(lam, sqs, unkai):
    url, arn = make_queue(sqs, VisibilityTimeout="30")
    name = deploy(lam, RECORDER, Environment={"Variables": {"PARTIAL": "1"}})
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=10,
                                    MaximumBatchingWindowInSeconds=1, FunctionResponseTypes=["ReportBatchItemFailures"])
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "1", "MessageBody": "good 1"},
                                                  {"Id": "2", "MessageBody": "bad 2"},
                                                  {"Id": "3", "MessageBody": "good 3"}])
    unkai.advance(2)
    unkai.drain()
    first = [r["body"] for r in records(unkai, name)]
    assert sorted(first) == ["bad 2", "good 1", "good 3"]
    unkai.advance(31)
    unkai.advance(2)
    unkai.drain()
    again = [r["body"] for r in records(unkai, name)][len(first):]
    assert again == ["bad 2"]


def test_fifo_order_per_group(lam, sqs, unkai):
    url, arn = make_queue(sqs, fifo=True, ContentBasedDeduplication="true")
    name = deploy(lam, RECORDER)
    for i in range(6):
        sqs.send_message(QueueUrl=url, MessageBody=f"{'ab'[i % 2]}-{i}", MessageGroupId="ab"[i % 2])
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=2)
    unkai.drain()
    seen = [r["body"] for r in records(unkai, name)]
    assert [b for b in seen if b.startswith("a")] == ["a-0", "a-2", "a-4"]
    assert [b for b in seen if b.startswith("b")] == ["b-1", "b-3", "b-5"]
    fifo_attrs = records(unkai, name)[0]["attributes"]
    assert {"MessageGroupId", "SequenceNumber", "MessageDeduplicationId"} <= set(fifo_attrs)


def test_filter_criteria_drop_non_matching_messages(lam, sqs, unkai):
    url, arn = make_queue(sqs)
    name = deploy(lam, RECORDER)
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=1, FilterCriteria={
        "Filters": [{"Pattern": json.dumps({"body": {"kind": ["order"], "total": [{"numeric": [">", 100]}]}})}]})
    for body in [{"kind": "order", "total": 150}, {"kind": "order", "total": 50}, {"kind": "refund", "total": 500},
                 "not json"]:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body) if isinstance(body, dict) else body)
    unkai.drain()
    assert [json.loads(r["body"]) for r in records(unkai, name)] == [{"kind": "order", "total": 150}]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_disable_update_delete_and_validation(lam, sqs, unkai):
    url, arn = make_queue(sqs)
    name = deploy(lam, RECORDER)
    mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, Enabled=False)
    assert lam.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Disabled"
    sqs.send_message(QueueUrl=url, MessageBody="waits")
    result = unkai.post("/_unkai/drain?timeout=0.3")
    assert result["drained"] and records(unkai, name) == []
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
    unkai.drain()
    assert [r["body"] for r in records(unkai, name)] == ["waits"]
    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name)
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.create_event_source_mapping(EventSourceArn=arn.replace("esm-", "missing-"), FunctionName=name)
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.update_event_source_mapping(UUID=mapping["UUID"], BatchSize=50)
    lam.delete_event_source_mapping(UUID=mapping["UUID"])
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_event_source_mapping(UUID=mapping["UUID"])
