"""SNS -> Lambda through the `lambda.invoke` job kind: AWS's event, one record per
invoke, asynchronous semantics (retries to a DLQ), and SNS as a destination."""

from __future__ import annotations

import json
import uuid

import pytest
from lambda_code import deploy, private_server

unkai = private_server("sns-lambda")

PRINTER = """
import json
def handler(event, context):
    print('EVENT ' + json.dumps(event))
    if event['Records'][0]['Sns']['Message'] == 'explode':
        raise RuntimeError('exploded')
"""


@pytest.fixture(scope="module")
def clients(unkai):
    return unkai.client("lambda"), unkai.client("sns"), unkai.client("sqs")


def events(unkai, name: str) -> list[dict]:
    logs = unkai.client("logs")
    try:
        found = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern="EVENT")["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [json.loads(e["message"].split(" ", 1)[1]) for e in found]


def test_publish_invokes_the_subscribed_function_with_aws_event(clients, unkai):
    lam, sns, _ = clients
    name = deploy(lam, PRINTER)
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    topic = sns.create_topic(Name=f"t-{uuid.uuid4().hex[:8]}")["TopicArn"]
    sub = sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=arn, ReturnSubscriptionArn=True)["SubscriptionArn"]
    sent = sns.publish(TopicArn=topic, Message="hello", Subject="greeting",
                       MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}})
    sns.publish(TopicArn=topic, Message="again")
    unkai.drain()
    got = events(unkai, name)
    assert len(got) == 2 and all(len(e["Records"]) == 1 for e in got)
    first = next(e["Records"][0] for e in got if e["Records"][0]["Sns"]["Message"] == "hello")
    assert first["EventSource"] == "aws:sns" and first["EventVersion"] == "1.0"
    assert first["EventSubscriptionArn"] == sub
    assert first["Sns"]["MessageId"] == sent["MessageId"] and first["Sns"]["TopicArn"] == topic
    assert first["Sns"]["Subject"] == "greeting" and first["Sns"]["Type"] == "Notification"
    assert first["Sns"]["MessageAttributes"] == {"kind": {"Type": "String", "Value": "test"}}


def test_sns_events_get_async_retries_and_dlq(clients, unkai):
    lam, sns, sqs = clients
    dlq = sqs.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    name = deploy(lam, PRINTER, DeadLetterConfig={"TargetArn": dlq_arn})
    topic = sns.create_topic(Name=f"t-{uuid.uuid4().hex[:8]}")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=lam.get_function(FunctionName=name)["Configuration"]
                  ["FunctionArn"])
    sns.publish(TopicArn=topic, Message="explode")
    unkai.drain()
    unkai.advance(61)
    unkai.drain()
    unkai.advance(121)
    unkai.drain()
    assert len(events(unkai, name)) == 3
    [message] = sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"])["Messages"]
    assert json.loads(message["Body"])["Records"][0]["Sns"]["Message"] == "explode"
    assert message["MessageAttributes"]["ErrorMessage"]["StringValue"] == "exploded"


def test_sns_topic_as_on_failure_destination(clients, unkai):
    lam, sns, sqs = clients
    topic = sns.create_topic(Name=f"fail-{uuid.uuid4().hex[:8]}")["TopicArn"]
    inbox = sqs.create_queue(QueueName=f"in-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn, Attributes={"RawMessageDelivery": "true"})
    name = deploy(lam, "def handler(e, c):\n    raise ValueError('bad input')\n")
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0,
                                         DestinationConfig={"OnFailure": {"Destination": topic}})
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"order": 9}')
    unkai.drain()
    [message] = sqs.receive_message(QueueUrl=inbox)["Messages"]
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestPayload"] == {"order": 9}
    assert record["responsePayload"]["errorType"] == "ValueError"
