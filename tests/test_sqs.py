"""SQS through boto3 against a running unkai (boto3 itself checks every MD5 we return)."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def sqs(unkai):
    return unkai.client("sqs")


def name(prefix: str = "q") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def test_create_get_list_delete(sqs, unkai):
    n = name()
    url = sqs.create_queue(QueueName=n)["QueueUrl"]
    assert url == f"{unkai.endpoint}/000000000000/{n}"
    assert sqs.get_queue_url(QueueName=n)["QueueUrl"] == url
    assert sqs.create_queue(QueueName=n)["QueueUrl"] == url  # idempotent with the same attributes
    assert url in sqs.list_queues(QueueNamePrefix=n)["QueueUrls"]
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(ClientError) as exc:
        sqs.get_queue_url(QueueName=n)
    assert code(exc) == "AWS.SimpleQueueService.NonExistentQueue"
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=url, MessageBody="x")


def test_create_with_different_attributes_conflicts(sqs):
    n = name()
    sqs.create_queue(QueueName=n, Attributes={"VisibilityTimeout": "10"})
    with pytest.raises(ClientError) as exc:
        sqs.create_queue(QueueName=n, Attributes={"VisibilityTimeout": "20"})
    assert code(exc) == "QueueAlreadyExists"


@pytest.mark.parametrize("bad", ["", "has space", "x" * 81, "dot.name", "ünï"])
def test_bad_queue_names(sqs, bad):
    with pytest.raises(ClientError) as exc:
        sqs.create_queue(QueueName=bad)
    assert code(exc) in ("InvalidParameterValue", "MissingParameter")


def test_list_queues_pagination(sqs):
    prefix = name("page")
    urls = [sqs.create_queue(QueueName=f"{prefix}-{i}")["QueueUrl"] for i in range(5)]
    first = sqs.list_queues(QueueNamePrefix=prefix, MaxResults=2)
    assert first["QueueUrls"] == urls[:2] and first["NextToken"]
    seen = list(first["QueueUrls"])
    token = first["NextToken"]
    while token:
        page = sqs.list_queues(QueueNamePrefix=prefix, MaxResults=2, NextToken=token)
        seen += page.get("QueueUrls", [])
        token = page.get("NextToken")
    assert seen == urls


def test_attributes_roundtrip_and_validation(sqs):
    url = sqs.create_queue(QueueName=name(), Attributes={"DelaySeconds": "5", "MessageRetentionPeriod": "120"})["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["DelaySeconds"] == "5"
    assert attrs["MessageRetentionPeriod"] == "120"
    assert attrs["VisibilityTimeout"] == "30"
    assert attrs["MaximumMessageSize"] == "1048576"
    assert attrs["QueueArn"].startswith("arn:aws:sqs:us-east-1:000000000000:")
    assert attrs["ApproximateNumberOfMessages"] == "0"
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "45"})
    only = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    assert only == {"VisibilityTimeout": "45"}
    for bad in ({"VisibilityTimeout": "43201"}, {"DelaySeconds": "-1"}, {"MaximumMessageSize": "100"},
                {"ReceiveMessageWaitTimeSeconds": "x"}):
        with pytest.raises(ClientError) as exc:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=bad)
        assert code(exc) == "InvalidAttributeValue"
    with pytest.raises(ClientError) as exc:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Nope": "1"})
    assert code(exc) == "InvalidAttributeName"


def test_tags(sqs):
    url = sqs.create_queue(QueueName=name(), tags={"team": "a"})["QueueUrl"]
    sqs.tag_queue(QueueUrl=url, Tags={"env": "dev"})
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "a", "env": "dev"}
    sqs.untag_queue(QueueUrl=url, TagKeys=["team"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "dev"}


def test_send_receive_delete_with_attributes(sqs):
    url = sqs.create_queue(QueueName=name())["QueueUrl"]
    attrs = {
        "s": {"DataType": "String", "StringValue": "日本語"},
        "n": {"DataType": "Number", "StringValue": "12.5"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
        "c": {"DataType": "String.custom", "StringValue": "x"},
    }
    sent = sqs.send_message(QueueUrl=url, MessageBody="hello <&> 世界", MessageAttributes=attrs,
                            MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-a"}})
    assert sent["MD5OfMessageBody"] and sent["MD5OfMessageAttributes"] and sent["MD5OfMessageSystemAttributes"]
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"])
    (msg,) = got["Messages"]
    assert msg["Body"] == "hello <&> 世界"
    assert msg["MessageId"] == sent["MessageId"]
    assert msg["MessageAttributes"]["b"]["BinaryValue"] == b"\x00\xff"
    assert msg["Attributes"]["ApproximateReceiveCount"] == "1"
    assert msg["Attributes"]["AWSTraceHeader"] == "Root=1-a"
    # on unkai's clock, which other tests sharing this server may have moved ahead (never back)
    assert int(msg["Attributes"]["SentTimestamp"]) / 1000 > time.time() - 60
    # prefix selection of message attributes
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"], VisibilityTimeout=0)
    again = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["s", "n"])["Messages"][0]
    assert set(again["MessageAttributes"]) == {"s", "n"}
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url)


def test_message_validation(sqs):
    url = sqs.create_queue(QueueName=name(), Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=url, MessageBody="x" * 1025)
    assert code(exc) == "InvalidParameterValue"
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=url, MessageBody="bad \x01 char")
    assert code(exc) == "InvalidMessageContents"
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={"a": {"DataType": "Number", "StringValue": "abc"}})
    assert code(exc) == "InvalidParameterValue"
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=901)
    assert code(exc) == "InvalidParameterValue"


def test_batches_with_per_entry_failures(sqs):
    url = sqs.create_queue(QueueName=name(), Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    res = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "ok1", "MessageBody": "one"},
        {"Id": "bad", "MessageBody": "\x00"},
        {"Id": "ok2", "MessageBody": "two", "DelaySeconds": 0},
    ])
    assert sorted(e["Id"] for e in res["Successful"]) == ["ok1", "ok2"]
    assert res["Failed"][0]["Id"] == "bad" and res["Failed"][0]["SenderFault"] is True
    with pytest.raises(ClientError) as exc:
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "1"}, {"Id": "a", "MessageBody": "2"}])
    assert code(exc) == "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
    with pytest.raises(ClientError) as exc:
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(11)])
    assert code(exc) == "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
    with pytest.raises(ClientError) as exc:
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a b", "MessageBody": "1"}])
    assert code(exc) == "AWS.SimpleQueueService.InvalidBatchEntryId"
    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in msgs) == ["one", "two"]
    res = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "a", "ReceiptHandle": msgs[0]["ReceiptHandle"]},
        {"Id": "b", "ReceiptHandle": "garbage"},
    ])
    assert [e["Id"] for e in res["Successful"]] == ["a"]
    assert res["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"
    res = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": "a", "ReceiptHandle": msgs[1]["ReceiptHandle"], "VisibilityTimeout": 0},
        {"Id": "b", "ReceiptHandle": msgs[0]["ReceiptHandle"], "VisibilityTimeout": 0},  # deleted already
    ])
    assert [e["Id"] for e in res["Successful"]] == ["a"] and res["Failed"][0]["Id"] == "b"


def test_invalid_receipt_handles(sqs):
    url = sqs.create_queue(QueueName=name())["QueueUrl"]
    with pytest.raises(ClientError) as exc:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    assert code(exc) == "ReceiptHandleIsInvalid"
    other = sqs.create_queue(QueueName=name())["QueueUrl"]
    sqs.send_message(QueueUrl=other, MessageBody="x")
    handle = sqs.receive_message(QueueUrl=other)["Messages"][0]["ReceiptHandle"]
    with pytest.raises(ClientError) as exc:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)  # a handle from another queue
    assert code(exc) == "ReceiptHandleIsInvalid"


def test_stale_receipt_handle_does_not_delete(sqs, unkai):
    url = sqs.create_queue(QueueName=name(), Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    old = sqs.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]
    unkai.advance(6)
    new = sqs.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=old)  # succeeds, as on AWS, but deletes nothing
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])[
        "Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=new)
    with pytest.raises(ClientError) as exc:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=new, VisibilityTimeout=10)
    assert code(exc) == "InvalidParameterValue"


def test_visibility_timeout_and_counts(sqs, unkai):
    url = sqs.create_queue(QueueName=name(), Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="a")
    sqs.send_message(QueueUrl=url, MessageBody="b", DelaySeconds=60)
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesDelayed"]) == ("1", "1")
    first = sqs.receive_message(QueueUrl=url)["Messages"][0]
    assert first["Body"] == "a"
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessagesNotVisible"] == "1"
    unkai.advance(31)
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["ApproximateReceiveCount"])["Messages"]
    assert {m["Body"]: m["Attributes"]["ApproximateReceiveCount"] for m in again} == {"a": "2"}
    unkai.advance(30)
    bodies = {m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]}
    assert bodies == {"a", "b"}


def test_delay_queue(sqs, unkai):
    url = sqs.create_queue(QueueName=name(), Attributes={"DelaySeconds": "120"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="later")
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    unkai.advance(121)
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "later"


def test_long_poll_returns_as_soon_as_a_message_arrives(sqs, unkai):
    url = sqs.create_queue(QueueName=name())["QueueUrl"]
    result = {}

    def poll():
        start = time.monotonic()
        result["msgs"] = unkai.client("sqs").receive_message(QueueUrl=url, WaitTimeSeconds=20).get("Messages")
        result["took"] = time.monotonic() - start

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.3)
    sqs.send_message(QueueUrl=url, MessageBody="wake")
    t.join(10)
    assert result["msgs"][0]["Body"] == "wake"
    assert result["took"] < 5


def test_long_poll_times_out_empty(sqs):
    url = sqs.create_queue(QueueName=name(), Attributes={"ReceiveMessageWaitTimeSeconds": "1"})["QueueUrl"]
    start = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    assert 0.9 <= time.monotonic() - start < 5


def test_dead_letter_queue_after_max_receives(sqs, unkai):
    dlq = sqs.create_queue(QueueName=name("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    src = sqs.create_queue(QueueName=name("src"), Attributes={
        "VisibilityTimeout": "10",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
    })["QueueUrl"]
    src_arn = sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sent = sqs.send_message(QueueUrl=src, MessageBody="poison")
    for _ in range(2):
        assert sqs.receive_message(QueueUrl=src)["Messages"][0]["Body"] == "poison"
        unkai.advance(11)
    assert "Messages" not in sqs.receive_message(QueueUrl=src)
    moved = sqs.receive_message(QueueUrl=dlq, MessageSystemAttributeNames=["All"])["Messages"][0]
    assert moved["MessageId"] == sent["MessageId"]
    assert moved["Attributes"]["DeadLetterQueueSourceArn"] == src_arn
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [src]
    # redrive it back with a message move task
    sqs.change_message_visibility(QueueUrl=dlq, ReceiptHandle=moved["ReceiptHandle"], VisibilityTimeout=0)
    task = sqs.start_message_move_task(SourceArn=dlq_arn)
    assert task["TaskHandle"]
    unkai.drain()
    tasks = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
    assert tasks[0]["Status"] == "COMPLETED" and tasks[0]["ApproximateNumberOfMessagesMoved"] == 1
    back = sqs.receive_message(QueueUrl=src)["Messages"][0]
    assert back["Body"] == "poison"


def test_redrive_policy_validation(sqs):
    with pytest.raises(ClientError) as exc:
        sqs.create_queue(QueueName=name(), Attributes={"RedrivePolicy": json.dumps({"maxReceiveCount": 2})})
    assert code(exc) == "InvalidAttributeValue"
    with pytest.raises(ClientError) as exc:
        sqs.start_message_move_task(SourceArn=f"arn:aws:sqs:us-east-1:000000000000:{name()}")
    assert code(exc) == "ResourceNotFoundException"


def test_retention_expiry(sqs, unkai):
    url = sqs.create_queue(QueueName=name(), Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="short-lived")
    unkai.advance(61)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_purge(sqs):
    url = sqs.create_queue(QueueName=name())["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    sqs.purge_queue(QueueUrl=url)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    with pytest.raises(ClientError) as exc:
        sqs.purge_queue(QueueUrl=url)
    assert code(exc) == "AWS.SimpleQueueService.PurgeQueueInProgress"


def test_fifo_dedup_groups_and_sequence(sqs, unkai):
    url = sqs.create_queue(QueueName=name() + ".fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageDeduplicationId="d")
    assert code(exc) == "MissingParameter"
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g")
    assert code(exc) == "InvalidParameterValue"
    a1 = sqs.send_message(QueueUrl=url, MessageBody="a1", MessageGroupId="A", MessageDeduplicationId="1")
    dup = sqs.send_message(QueueUrl=url, MessageBody="a1", MessageGroupId="A", MessageDeduplicationId="1")
    assert dup["MessageId"] == a1["MessageId"] and dup["SequenceNumber"] == a1["SequenceNumber"]
    a2 = sqs.send_message(QueueUrl=url, MessageBody="a2", MessageGroupId="A", MessageDeduplicationId="2")
    assert int(a2["SequenceNumber"]) > int(a1["SequenceNumber"])
    sqs.send_message(QueueUrl=url, MessageBody="b1", MessageGroupId="B", MessageDeduplicationId="3")
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in first] == ["a1"]
    assert first[0]["Attributes"]["MessageGroupId"] == "A"
    assert first[0]["Attributes"]["SequenceNumber"] == a1["SequenceNumber"]
    # group A is blocked while a1 is in flight; only B is available
    nxt = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in nxt] == ["b1"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]] == ["a2"]
    unkai.advance(301)  # past the deduplication window the same id is accepted again
    again = sqs.send_message(QueueUrl=url, MessageBody="a1", MessageGroupId="A", MessageDeduplicationId="1")
    assert again["MessageId"] != a1["MessageId"]


def test_fifo_content_based_deduplication(sqs):
    url = sqs.create_queue(QueueName=name() + ".fifo",
                           Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    first = sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
    second = sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
    assert first["MessageId"] == second["MessageId"]
    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(msgs) == 1


def test_fifo_order_within_group(sqs):
    url = sqs.create_queue(QueueName=name() + ".fifo",
                           Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    for i in range(25):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}", MessageGroupId="g")
    got = []
    while len(got) < 25:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        got += [m["Body"] for m in msgs]
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                        for i, m in enumerate(msgs)])
    assert got == [f"m{i}" for i in range(25)]


def test_fifo_requires_fifo_suffix(sqs):
    with pytest.raises(ClientError) as exc:
        sqs.create_queue(QueueName=name(), Attributes={"FifoQueue": "true"})
    assert code(exc) == "InvalidAttributeValue"


def test_queue_url_forms(sqs, unkai):
    n = name()
    sqs.create_queue(QueueName=n)
    forms = [
        f"https://sqs.us-east-1.amazonaws.com/000000000000/{n}",
        f"https://queue.amazonaws.com/000000000000/{n}",
        f"http://localhost:4566/000000000000/{n}",
        f"{unkai.endpoint}/000000000000/{n}",
    ]
    for url in forms:
        sqs.send_message(QueueUrl=url, MessageBody=url)
    bodies = set()
    for _ in range(4):
        for m in sqs.receive_message(QueueUrl=forms[0], MaxNumberOfMessages=10).get("Messages", []):
            bodies.add(m["Body"])
    assert bodies == set(forms)


def test_regions_are_separate(unkai):
    n = name()
    east = unkai.client("sqs", region="us-east-1")
    west = unkai.client("sqs", region="eu-west-1")
    east.create_queue(QueueName=n)
    with pytest.raises(ClientError):
        west.get_queue_url(QueueName=n)
    url = west.create_queue(QueueName=n)["QueueUrl"]
    arn = west.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert arn.startswith("arn:aws:sqs:eu-west-1:")
    west.send_message(QueueUrl=f"https://sqs.eu-west-1.amazonaws.com/000000000000/{n}", MessageBody="w")
    assert west.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "w"


def test_concurrent_receivers_never_share_a_message(unkai):
    sqs = unkai.client("sqs")
    url = sqs.create_queue(QueueName=name(), Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    total = 400
    for start in range(0, total, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": str(i)}
                                                      for i in range(start, start + 10)])
    seen: list[str] = []
    lock = threading.Lock()

    def worker():
        client = unkai.client("sqs")
        empty = 0
        while empty < 2:
            msgs = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                empty += 1
                continue
            with lock:
                seen.extend(m["Body"] for m in msgs)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(seen) == total
    assert sorted(seen, key=int) == [str(i) for i in range(total)]


def test_redrive_allow_policy_is_enforced(sqs):
    dlq = sqs.create_queue(QueueName=name("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    allowed = f"arn:aws:sqs:us-east-1:000000000000:{name('ok')}"
    sqs.set_queue_attributes(QueueUrl=dlq, Attributes={"RedriveAllowPolicy": json.dumps(
        {"redrivePermission": "byQueue", "sourceQueueArns": [allowed]})})
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    sqs.create_queue(QueueName=allowed.rsplit(":", 1)[1], Attributes={"RedrivePolicy": policy})
    with pytest.raises(ClientError) as exc:
        sqs.create_queue(QueueName=name("other"), Attributes={"RedrivePolicy": policy})
    assert code(exc) == "InvalidAttributeValue"
    sqs.set_queue_attributes(QueueUrl=dlq, Attributes={"RedriveAllowPolicy": json.dumps({"redrivePermission": "denyAll"})})
    with pytest.raises(ClientError):
        sqs.create_queue(QueueName=name("third"), Attributes={"RedrivePolicy": policy})
    with pytest.raises(ClientError) as exc:
        sqs.set_queue_attributes(QueueUrl=dlq, Attributes={"RedriveAllowPolicy": json.dumps({"redrivePermission": "maybe"})})
    assert code(exc) == "InvalidAttributeValue"
