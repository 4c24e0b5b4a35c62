"""SQS answers as AWS does, in the details clients branch on (issue 23, item 3: SQS).

Codes and messages as AWS sends them (the JSON protocol's error type plus the
``x-amzn-query-error`` header, which botocore turns into the query-era code clients test)."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def sqs(unkai):
    return unkai.client("sqs")


def error_of(exc: pytest.ExceptionInfo) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def new_queue(sqs, suffix: str = "", **attributes: str) -> str:
    return sqs.create_queue(QueueName=f"fid-{time.time_ns()}{suffix}", Attributes=attributes)["QueueUrl"]


def test_create_queue_with_different_attributes_is_queue_already_exists(sqs):
    name = f"fid-{time.time_ns()}"
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    assert sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"] == url
    with pytest.raises(ClientError) as exc:
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "31"})
    assert error_of(exc) == ("QueueAlreadyExists", "A queue already exists with the same name and a different value "
                             "for attribute VisibilityTimeout")
    headers = exc.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-query-error"] == "QueueAlreadyExists;Sender"


@pytest.mark.parametrize("operation,entry", [("send_message_batch", "SendMessageBatchRequestEntry"),
                                             ("delete_message_batch", "DeleteMessageBatchRequestEntry"),
                                             ("change_message_visibility_batch",
                                              "ChangeMessageVisibilityBatchRequestEntry")])
def test_an_empty_batch_names_the_operations_entry_type(sqs, operation, entry):
    url = new_queue(sqs)
    with pytest.raises(ClientError) as exc:
        getattr(sqs, operation)(QueueUrl=url, Entries=[])
    assert error_of(exc) == ("AWS.SimpleQueueService.EmptyBatchRequest",
                             f"There should be at least one {entry} in the request.")


def test_a_batch_past_the_size_limit_is_refused_with_the_bytes_sent(sqs):
    url = new_queue(sqs)
    entries = [{"Id": str(n), "MessageBody": "x" * 200_000} for n in range(6)]
    with pytest.raises(ClientError) as exc:
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert error_of(exc) == ("AWS.SimpleQueueService.BatchRequestTooLong",
                             "Batch requests cannot be longer than 1048576 bytes. You have sent 1200000 bytes.")


def test_fifo_queues_accept_delay_seconds_zero_and_refuse_any_other(sqs):
    url = new_queue(sqs, ".fifo", FifoQueue="true", ContentBasedDeduplication="true")
    assert sqs.send_message(QueueUrl=url, MessageBody="a", MessageGroupId="g", DelaySeconds=0)["MessageId"]
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=url, MessageBody="b", MessageGroupId="g", DelaySeconds=5)
    assert error_of(exc) == ("InvalidParameterValue", "Value 5 for parameter DelaySeconds is invalid. Reason: The "
                             "request include parameter that is not valid for this queue type.")


def test_message_attribute_names_with_a_prefix_wildcard(sqs):
    url = new_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="m", MessageAttributes={
        name: {"DataType": "String", "StringValue": "v"} for name in ("name.first", "name.last", "other")})
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["name.*"])["Messages"][0]
    assert sorted(got["MessageAttributes"]) == ["name.first", "name.last"]


def test_tag_validation_messages(sqs):
    url = new_queue(sqs)
    with pytest.raises(ClientError) as exc:
        sqs.tag_queue(QueueUrl=url, Tags={})
    assert error_of(exc) == ("MissingParameter", "The request must contain the parameter Tags.")
    with pytest.raises(ClientError) as exc:
        sqs.tag_queue(QueueUrl=url, Tags={f"k{n}": "v" for n in range(51)})
    assert error_of(exc) == ("InvalidParameterValue", f"Too many tags added for queue {url.rsplit('/', 1)[1]}.")


def test_add_permission_generates_the_policy_aws_generates(sqs):
    url = new_queue(sqs)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.add_permission(QueueUrl=url, Label="one", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert policy == {"Version": "2012-10-17", "Id": f"{arn}/SQSDefaultPolicy", "Statement": [{
        "Sid": "one", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": "SQS:SendMessage", "Resource": arn}]}
