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


# -- queue URLs (issue 23, item 3: "queue URLs per region and endpoint strategy as AWS forms them") ---


def raw_json_call(unkai, host: str, target: str, body: dict) -> tuple[int, dict, dict]:
    """An SQS JSON call sent to unkai's port with ``host`` as its Host header (what a client that
    reaches unkai through a regional host name sends)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", int(unkai.endpoint.rsplit(":", 1)[1]), timeout=30)
    try:
        conn.request("POST", "/", json.dumps(body), {"Host": host, "X-Amz-Target": f"AmazonSQS.{target}",
                                                     "Content-Type": "application/x-amz-json-1.0"})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read() or b"{}")
    finally:
        conn.close()


def test_every_aws_queue_url_form_reaches_the_queue_of_the_requests_region(sqs):
    url = new_queue(sqs)
    name = url.rsplit("/", 1)[1]
    forms = [f"https://sqs.us-east-1.amazonaws.com/000000000000/{name}",  # today's form
             f"https://us-east-1.queue.amazonaws.com/000000000000/{name}",  # the legacy regional form
             f"https://queue.amazonaws.com/000000000000/{name}",  # the legacy us-east-1 form
             f"https://sqs-fips.us-east-1.amazonaws.com/000000000000/{name}",
             f"http://sqs.us-east-1.localhost:4566/000000000000/{name}"]
    for form in forms:
        sqs.send_message(QueueUrl=form, MessageBody=form)
    assert sqs.get_queue_attributes(QueueUrl=forms[0], AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"] == str(len(forms))


def test_a_queue_url_of_another_region_finds_no_queue_as_on_aws(unkai):
    # AWS looks the queue up in the region the request went to: a client in us-east-2 given a
    # us-west-2 queue's URL gets AWS.SimpleQueueService.NonExistentQueue
    name = f"fid-{time.time_ns()}"
    west = unkai.client("sqs", region="us-west-2")
    west_url = west.create_queue(QueueName=name)["QueueUrl"]
    east = unkai.client("sqs", region="us-east-2")
    with pytest.raises(ClientError) as exc:
        east.send_message(QueueUrl=f"https://sqs.us-west-2.amazonaws.com/000000000000/{name}", MessageBody="x")
    assert error_of(exc) == ("AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
    west.send_message(QueueUrl=f"https://sqs.us-west-2.amazonaws.com/000000000000/{name}", MessageBody="x")
    assert west.receive_message(QueueUrl=west_url)["Messages"][0]["Body"] == "x"


def test_queue_urls_are_formed_on_the_host_the_client_called(unkai, sqs):
    # through a regional host name (sqs.REGION.amazonaws.com, as a proxy or a hosts entry sends it)
    # the URL has AWS's form for that region; through 127.0.0.1 it is the endpoint the SDK was
    # given, which every SDK (including those that send to the QueueUrl's own host) can reach
    name = f"fid-{time.time_ns()}"
    status, _, body = raw_json_call(unkai, "sqs.eu-west-1.amazonaws.com", "CreateQueue", {"QueueName": name})
    assert status == 200 and body["QueueUrl"] == f"http://sqs.eu-west-1.amazonaws.com/000000000000/{name}"
    status, _, body = raw_json_call(unkai, "sqs.eu-west-1.amazonaws.com", "GetQueueUrl", {"QueueName": name})
    assert body["QueueUrl"] == f"http://sqs.eu-west-1.amazonaws.com/000000000000/{name}"
    status, headers, body = raw_json_call(unkai, "sqs.us-east-1.amazonaws.com", "GetQueueUrl", {"QueueName": name})
    assert status == 400 and headers["x-amzn-query-error"] == "AWS.SimpleQueueService.NonExistentQueue;Sender"
    local = unkai.client("sqs", region="eu-west-1").get_queue_url(QueueName=name)["QueueUrl"]
    assert local == f"{unkai.endpoint}/000000000000/{name}"
    assert sqs.create_queue(QueueName=name)["QueueUrl"] == f"{unkai.endpoint}/000000000000/{name}"  # us-east-1's own
