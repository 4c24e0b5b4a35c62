"""SNS through boto3 against a running unkai: topics, subscriptions, publishing and the
fan-out to SQS, filter policies, FIFO topics, and AWS's errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from botocore.exceptions import ClientError

from sns_support import sns, sqs, bodies, code, drain_queue, message, name, queue  # noqa: F401 (fixtures)


def topic(sns, topic_name: str | None = None, **attributes: str) -> str:
    return sns.create_topic(Name=topic_name or name(), Attributes=attributes)["TopicArn"]


def subscribe_queue(sns, sqs, topic_arn: str, **attributes: str) -> str:
    url, arn = queue(sqs, f"{name('q')}.fifo" if topic_arn.endswith(".fifo") else None,
                     **({"FifoQueue": "true"} if topic_arn.endswith(".fifo") else {}))
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    return url


# -- topics ------------------------------------------------------------------------

def test_create_topic_is_idempotent_and_conflicts_as_aws(sns):
    n = name()
    arn = sns.create_topic(Name=n, Attributes={"DisplayName": "Shop"}, Tags=[{"Key": "team", "Value": "a"}])["TopicArn"]
    assert arn == f"arn:aws:sns:us-east-1:000000000000:{n}"
    assert sns.create_topic(Name=n)["TopicArn"] == arn
    assert sns.create_topic(Name=n, Attributes={"DisplayName": "Shop"})["TopicArn"] == arn
    with pytest.raises(ClientError) as exc:
        sns.create_topic(Name=n, Attributes={"DisplayName": "Other"})
    assert code(exc) == "InvalidParameter"
    assert message(exc) == "Invalid parameter: Attributes Reason: Topic already exists with different attributes"
    with pytest.raises(ClientError) as exc:
        sns.create_topic(Name=n, Tags=[{"Key": "team", "Value": "b"}])
    assert message(exc) == "Invalid parameter: Tags Reason: Topic already exists with different tags"


def test_topic_attributes_defaults_and_updates(sns):
    arn = topic(sns)
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["TopicArn"] == arn and attrs["Owner"] == "000000000000"
    assert attrs["SubscriptionsConfirmed"] == attrs["SubscriptionsPending"] == attrs["SubscriptionsDeleted"] == "0"
    assert attrs["DisplayName"] == ""
    policy = json.loads(attrs["Policy"])
    assert policy["Statement"][0]["Resource"] == arn and "SNS:Publish" in policy["Statement"][0]["Action"]
    effective = json.loads(attrs["EffectiveDeliveryPolicy"])
    assert effective["http"]["defaultHealthyRetryPolicy"] == {
        "minDelayTarget": 20, "maxDelayTarget": 20, "numRetries": 3, "numMaxDelayRetries": 0,
        "numNoDelayRetries": 0, "numMinDelayRetries": 0, "backoffFunction": "linear"}
    assert "FifoTopic" not in attrs
    for key, value in {"DisplayName": "My Shop", "SignatureVersion": "2", "TracingConfig": "Active",
                       "KmsMasterKeyId": "alias/aws/sns",
                       "DeliveryPolicy": json.dumps({"http": {"defaultHealthyRetryPolicy": {"numRetries": 5}}})}.items():
        sns.set_topic_attributes(TopicArn=arn, AttributeName=key, AttributeValue=value)
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["DisplayName"] == "My Shop" and attrs["SignatureVersion"] == "2"
    assert attrs["TracingConfig"] == "Active" and attrs["KmsMasterKeyId"] == "alias/aws/sns"
    assert json.loads(attrs["EffectiveDeliveryPolicy"])["http"]["defaultHealthyRetryPolicy"]["numRetries"] == 5
    for key, value in (("SignatureVersion", "3"), ("TracingConfig", "On"), ("Nope", "1"), ("FifoTopic", "true"),
                       ("DeliveryPolicy", "{not json"), ("ContentBasedDeduplication", "true"),
                       ("DeliveryPolicy", json.dumps({"http": {"defaultHealthyRetryPolicy": {"numRetries": 101}}}))):
        with pytest.raises(ClientError) as exc:
            sns.set_topic_attributes(TopicArn=arn, AttributeName=key, AttributeValue=value)
        assert code(exc) == "InvalidParameter", key


def test_list_topics_pages_and_delete(sns):
    created = [topic(sns, f"page-{i:03d}-{name()}") for i in range(105)]
    seen, token = [], None
    while True:
        page = sns.list_topics(**({"NextToken": token} if token else {}))
        seen += [t["TopicArn"] for t in page["Topics"]]
        assert len(page["Topics"]) <= 100
        token = page.get("NextToken")
        if not token:
            break
    assert set(created) <= set(seen) and len(seen) == len(set(seen))
    for arn in created:
        sns.delete_topic(TopicArn=arn)
    sns.delete_topic(TopicArn=created[0])  # deleting again is not an error
    with pytest.raises(ClientError) as exc:
        sns.get_topic_attributes(TopicArn=created[0])
    assert code(exc) == "NotFound" and message(exc) == "Topic does not exist"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_topic_names_and_arns_are_validated(sns):
    for bad in ("has space", "x" * 257, "dot.name", "ünï"):
        with pytest.raises(ClientError) as exc:
            sns.create_topic(Name=bad)
        assert message(exc) == "Invalid parameter: Topic Name"
    with pytest.raises(ClientError) as exc:
        sns.create_topic(Name="plain", Attributes={"FifoTopic": "true"})
    assert "Fifo Topic names must end with .fifo" in message(exc)
    with pytest.raises(ClientError) as exc:
        sns.get_topic_attributes(TopicArn="not-an-arn")
    assert message(exc) == "Invalid parameter: TopicArn Reason: An ARN must have at least 6 elements, not 1"
    with pytest.raises(ClientError) as exc:
        sns.publish(TopicArn="arn:aws:sns:us-east-1:000000000000:missing", Message="x")
    assert code(exc) == "NotFound"


def test_tags_and_permissions(sns):
    arn = topic(sns)
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "a", "Value": "3"}])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "a", "Value": "3"},
                                                                   {"Key": "b", "Value": "2"}]
    sns.untag_resource(ResourceArn=arn, TagKeys=["a"])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(ClientError) as exc:
        sns.tag_resource(ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])
    assert code(exc) == "TagLimitExceeded"
    with pytest.raises(ClientError) as exc:
        sns.list_tags_for_resource(ResourceArn=arn + "-missing")
    assert code(exc) == "ResourceNotFound"
    sns.add_permission(TopicArn=arn, Label="pub", AWSAccountId=["111122223333"], ActionName=["Publish"])
    statement = json.loads(sns.get_topic_attributes(TopicArn=arn)["Attributes"]["Policy"])["Statement"][-1]
    assert statement == {"Sid": "pub", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                         "Action": "SNS:Publish", "Resource": arn}
    with pytest.raises(ClientError) as exc:
        sns.add_permission(TopicArn=arn, Label="pub", AWSAccountId=["111122223333"], ActionName=["Publish"])
    assert code(exc) == "InvalidParameter"
    sns.remove_permission(TopicArn=arn, Label="pub")
    sids = [s["Sid"] for s in json.loads(sns.get_topic_attributes(TopicArn=arn)["Attributes"]["Policy"])["Statement"]]
    assert sids == ["__default_statement_ID"]
    single = {"Version": "2012-10-17", "Statement": {"Sid": "one", "Effect": "Allow", "Principal": "*",
                                                     "Action": "sns:Publish", "Resource": arn}}
    sns.set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(single))
    sns.add_permission(TopicArn=arn, Label="two", AWSAccountId=["111122223333"], ActionName=["Subscribe"])
    sids = [s["Sid"] for s in json.loads(sns.get_topic_attributes(TopicArn=arn)["Attributes"]["Policy"])["Statement"]]
    assert sids == ["one", "two"]


# -- subscriptions -----------------------------------------------------------------

def test_subscriptions_lifecycle(sns, sqs):
    arn = topic(sns)
    _, queue_arn = queue(sqs)
    sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    assert sub.startswith(arn + ":")
    assert sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"] == sub
    with pytest.raises(ClientError) as exc:
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    assert message(exc) == ("Invalid parameter: Attributes Reason: Subscription already exists with different "
                            "attributes")
    pending = sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="someone@example.com")
    assert pending["SubscriptionArn"] == "pending confirmation"
    lam = sns.subscribe(TopicArn=arn, Protocol="lambda", ReturnSubscriptionArn=True,
                        Endpoint="arn:aws:lambda:us-east-1:000000000000:function:worker")["SubscriptionArn"]
    listed = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert [(s["Protocol"], s["SubscriptionArn"]) for s in listed] == [
        ("sqs", sub), ("email", "PendingConfirmation"), ("lambda", lam)]
    assert {s["SubscriptionArn"] for s in sns.list_subscriptions()["Subscriptions"]} >= {sub, lam}
    attrs = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert attrs["PendingConfirmation"] == "false" and attrs["ConfirmationWasAuthenticated"] == "true"
    assert attrs["RawMessageDelivery"] == "false" and attrs["Protocol"] == "sqs" and attrs["TopicArn"] == arn
    topic_attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert topic_attrs["SubscriptionsConfirmed"] == "2" and topic_attrs["SubscriptionsPending"] == "1"
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RawMessageDelivery", AttributeValue="True")
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicy",
                                    AttributeValue='{"kind": ["a"]}')
    attrs = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert attrs["RawMessageDelivery"] == "true" and attrs["FilterPolicyScope"] == "MessageAttributes"
    with pytest.raises(ClientError) as exc:
        sns.set_subscription_attributes(SubscriptionArn=lam, AttributeName="RawMessageDelivery",
                                        AttributeValue="true")
    assert message(exc) == "Invalid parameter: Delivery protocol [lambda] does not support raw message delivery."
    with pytest.raises(ClientError) as exc:
        sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicyScope",
                                        AttributeValue="Body")
    assert "Please use either MessageBody or MessageAttributes" in message(exc)
    sns.unsubscribe(SubscriptionArn=sub)
    sns.unsubscribe(SubscriptionArn=sub)  # twice is fine
    with pytest.raises(ClientError) as exc:
        sns.get_subscription_attributes(SubscriptionArn=sub)
    assert code(exc) == "NotFound" and message(exc) == "Subscription does not exist"
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SubscriptionsDeleted"] == "1"
    sns.delete_topic(TopicArn=arn)
    assert not any(s["TopicArn"] == arn for s in sns.list_subscriptions()["Subscriptions"])


def test_list_subscriptions_pages(sns):
    arn = topic(sns)
    created = [sns.subscribe(TopicArn=arn, Protocol="lambda", ReturnSubscriptionArn=True,
                             Endpoint=f"arn:aws:lambda:us-east-1:000000000000:function:f{i}")["SubscriptionArn"]
               for i in range(101)]
    first = sns.list_subscriptions_by_topic(TopicArn=arn)
    assert len(first["Subscriptions"]) == 100 and first["NextToken"]
    second = sns.list_subscriptions_by_topic(TopicArn=arn, NextToken=first["NextToken"])
    assert "NextToken" not in second
    assert [s["SubscriptionArn"] for s in first["Subscriptions"] + second["Subscriptions"]] == created
    with pytest.raises(ClientError) as exc:
        sns.list_subscriptions_by_topic(TopicArn=arn, NextToken="garbage")
    assert message(exc) == "Invalid parameter: NextToken"
    sns.delete_topic(TopicArn=arn)


def test_subscribe_rejects_bad_endpoints(sns, sqs):
    arn = topic(sns)
    fifo = topic(sns, name() + ".fifo", FifoTopic="true")
    _, fifo_queue = queue(sqs, name("q") + ".fifo", FifoQueue="true")
    cases = [
        (arn, "carrier-pigeon", "x", "Invalid parameter: Amazon SNS does not support this protocol string: "
                                     "carrier-pigeon"),
        (arn, "http", "https://example.com", "Invalid parameter: Endpoint must match the specified protocol"),
        (arn, "sqs", "not-an-arn", "Invalid parameter: SQS endpoint ARN"),
        (arn, "sqs", fifo_queue, "Invalid parameter: Invalid parameter: Endpoint Reason: FIFO SQS Queues can not be "
                                 "subscribed to standard SNS topics"),
        (fifo, "lambda", "arn:aws:lambda:us-east-1:000000000000:function:f", "Invalid parameter: Invalid protocol "
                                                                              "type: lambda"),
    ]
    for topic_arn, protocol, endpoint, text in cases:
        with pytest.raises(ClientError) as exc:
            sns.subscribe(TopicArn=topic_arn, Protocol=protocol, Endpoint=endpoint)
        assert code(exc) == "InvalidParameter" and message(exc) == text
    with pytest.raises(ClientError) as exc:
        sns.unsubscribe(SubscriptionArn="nope")
    assert message(exc) == "Invalid parameter: SubscriptionArn Reason: An ARN must have at least 6 elements, not 1"
    with pytest.raises(ClientError) as exc:
        sns.get_subscription_attributes(SubscriptionArn=arn + ":00000000-0000-4000-8000-000000000000")
    assert code(exc) == "NotFound"
    with pytest.raises(ClientError) as exc:
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=fifo_queue.replace(".fifo", ""),
                      Attributes={"RedrivePolicy": '{"deadLetterTargetArn": "nope"}'})
    assert message(exc) == "Invalid parameter: Attributes Reason: RedrivePolicy: deadLetterTargetArn is an invalid arn"


# -- publishing --------------------------------------------------------------------

def test_one_publish_reaches_three_queues(sns, sqs):
    """The Q&A form: the publisher finds the topic ending ':Qa' and each consumer unwraps the envelope."""
    qa = topic(sns, "Qa")
    urls = [subscribe_queue(sns, sqs, qa) for _ in range(3)]
    arn = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":Qa"))
    event = {"project_id": "P1", "contact_detail": "line1newlineline2", "source_ip": "203.0.113.9"}
    message_id = sns.publish(TopicArn=arn, Message=json.dumps(event), Subject="question")["MessageId"]
    for url in urls:
        (msg,) = drain_queue(sqs, url)
        envelope = json.loads(msg["Body"])
        assert json.loads(envelope["Message"]) == event
        assert list(envelope) == ["Type", "MessageId", "TopicArn", "Subject", "Message", "Timestamp",
                                  "SignatureVersion", "Signature", "SigningCertURL", "UnsubscribeURL"]
        assert envelope["Type"] == "Notification" and envelope["MessageId"] == message_id
        assert envelope["Subject"] == "question" and envelope["TopicArn"] == arn
        assert envelope["SignatureVersion"] == "1" and envelope["Signature"]
        assert len(envelope["Timestamp"]) == 24 and envelope["Timestamp"].endswith("Z")
        assert msg["Body"].startswith('{\n  "Type" : "Notification",\n')
        assert msg["Attributes"]["SenderId"] == "AIDAIT2UOQQY3AUEKVGXU"


def test_envelope_attributes_subject_and_raw_delivery(sns, sqs):
    arn = topic(sns)
    wrapped = subscribe_queue(sns, sqs, arn)
    raw = subscribe_queue(sns, sqs, arn, RawMessageDelivery="true")
    attrs = {"s": {"DataType": "String", "StringValue": "日本語"},
             "n": {"DataType": "Number", "StringValue": "12.5"},
             "b": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
             "a": {"DataType": "String.Array", "StringValue": '["x", 1, true, null]'}}
    sns.publish(TopicArn=arn, Message="hello <&> 世界", MessageAttributes=attrs)
    (envelope,) = bodies(sqs, wrapped)
    assert "Subject" not in envelope
    assert envelope["Message"] == "hello <&> 世界"
    assert envelope["MessageAttributes"] == {"s": {"Type": "String", "Value": "日本語"},
                                             "n": {"Type": "Number", "Value": "12.5"},
                                             "b": {"Type": "Binary", "Value": "AP8="},
                                             "a": {"Type": "String.Array", "Value": '["x", 1, true, null]'}}
    (msg,) = drain_queue(sqs, raw)
    assert msg["Body"] == "hello <&> 世界"
    assert msg["MessageAttributes"]["b"] == {"DataType": "Binary", "BinaryValue": b"\x00\xff"}
    assert msg["MessageAttributes"]["a"]["StringValue"] == '["x", 1, true, null]'
    assert msg["MessageAttributes"]["n"] == {"DataType": "Number", "StringValue": "12.5"}


def test_message_structure_json(sns, sqs):
    arn = topic(sns)
    url = subscribe_queue(sns, sqs, arn)
    sns.publish(TopicArn=arn, MessageStructure="json",
                Message=json.dumps({"default": "for everyone", "sqs": "for queues", "email": 1}))
    sns.publish(TopicArn=arn, MessageStructure="json", Message=json.dumps({"default": "only default"}))
    assert [b["Message"] for b in bodies(sqs, url)] == ["for queues", "only default"]
    for text, expected in (("{not json", "Invalid parameter: Message Structure - JSON message body failed to parse"),
                           ('{"sqs": "x"}', "Invalid parameter: Message Structure - No default entry in JSON "
                                            "message body")):
        with pytest.raises(ClientError) as exc:
            sns.publish(TopicArn=arn, MessageStructure="json", Message=text)
        assert message(exc) == expected


def test_publish_rejects_bad_messages(sns):
    arn = topic(sns)
    fifo = topic(sns, name() + ".fifo", FifoTopic="true")
    cases = [
        ({"Message": ""}, "InvalidParameter", "Invalid parameter: Empty message"),
        ({"Message": "x" * (256 * 1024 + 1)}, "InvalidParameter", "Invalid parameter: Message too long"),
        ({"Message": "x", "Subject": ""}, "InvalidParameter", "Invalid parameter: Subject"),
        ({"Message": "x", "Subject": "line\nbreak"}, "InvalidParameter", "Invalid parameter: Subject"),
        ({"Message": "x", "Subject": "s" * 101}, "InvalidParameter", "Invalid parameter: Subject"),
        ({"Message": "x", "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "ten"}}},
         "ParameterValueInvalid", "Could not cast message attribute 'n' value to number."),
        ({"Message": "x", "MessageAttributes": {"t": {"DataType": "Text", "StringValue": "v"}}},
         "ParameterValueInvalid", "The message attribute 't' has an invalid message attribute type, the set of "
                                  "supported type prefixes is Binary, Number, and String."),
        ({"Message": "x", "MessageAttributes": {"s": {"DataType": "String", "StringValue": ""}}},
         "ParameterValueInvalid", "The message attribute 's' must contain non-empty message attribute value for "
                                  "message attribute type 'String'."),
        ({"Message": "x", "MessageAttributes": {"s": {"DataType": "String", "BinaryValue": b"x"}}},
         "ParameterValueInvalid", "The message attribute 's' with type 'String' must use field 'String'."),
        ({"Message": "x", "MessageAttributes": {".dot": {"DataType": "String", "StringValue": "v"}}},
         "ParameterValueInvalid", "Invalid message attribute name starting with character '.' was found."),
        ({"Message": "x", "MessageAttributes": {"a..b": {"DataType": "String", "StringValue": "v"}}},
         "ParameterValueInvalid", "Message attribute name can not have successive '.' character."),
        ({"Message": "x", "MessageDeduplicationId": "d"}, "InvalidParameter",
         "Invalid parameter: MessageDeduplicationId Reason: The request includes MessageDeduplicationId parameter "
         "that is not valid for this topic type"),
    ]
    for params, error, text in cases:
        with pytest.raises(ClientError) as exc:
            sns.publish(TopicArn=arn, **params)
        assert (code(exc), message(exc)) == (error, text), params
    with pytest.raises(ClientError) as exc:
        sns.publish(TopicArn=fifo, Message="x")
    assert message(exc) == "Invalid parameter: The MessageGroupId parameter is required for FIFO topics"
    with pytest.raises(ClientError) as exc:
        sns.publish(TopicArn=fifo, Message="x", MessageGroupId="g")
    assert message(exc) == ("Invalid parameter: The topic should either have ContentBasedDeduplication enabled or "
                            "MessageDeduplicationId provided explicitly")
    with pytest.raises(ClientError) as exc:  # an SMS goes to the local outbox (sms.py), but not with a topic too
        sns.publish(PhoneNumber="+15555550100", TopicArn=fifo, Message="x")
    assert code(exc) == "InvalidParameter"


def test_maximum_message_size(sns, sqs):
    arn = topic(sns, MaximumMessageSize="1024")
    url = subscribe_queue(sns, sqs, arn)
    with pytest.raises(ClientError) as exc:
        sns.publish(TopicArn=arn, Message="x" * 1025)
    assert message(exc) == "Invalid parameter: Message too long"
    sns.set_topic_attributes(TopicArn=arn, AttributeName="MaximumMessageSize", AttributeValue="1048576")
    big = "y" * (512 * 1024)
    sns.publish(TopicArn=arn, Message=big, Subject="Größe 📦")  # subjects are UTF-8 text
    (doc,) = bodies(sqs, url)
    assert doc["Message"] == big and doc["Subject"] == "Größe 📦"
    with pytest.raises(ClientError) as exc:
        sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="big@example.com")
    assert code(exc) == "InvalidParameter"
    sns.set_topic_attributes(TopicArn=arn, AttributeName="MaximumMessageSize", AttributeValue="262144")
    sns.subscribe(TopicArn=arn, Protocol="email", Endpoint="big@example.com")
    for bad in ("1023", "1048577", "big"):
        with pytest.raises(ClientError) as exc:
            sns.set_topic_attributes(TopicArn=arn, AttributeName="MaximumMessageSize", AttributeValue=bad)
        assert code(exc) == "InvalidParameter"
    with pytest.raises(ClientError) as exc:
        sns.set_topic_attributes(TopicArn=arn, AttributeName="MaximumMessageSize", AttributeValue="300000")
    assert "at most 100 subscriptions" in message(exc)


def test_target_arn_and_region_from_the_arn(unkai, sns, sqs):
    eu_sns, eu_sqs = unkai.client("sns", "eu-west-1"), unkai.client("sqs", "eu-west-1")
    arn = eu_sns.create_topic(Name=name())["TopicArn"]
    assert arn.startswith("arn:aws:sns:eu-west-1:")
    url, queue_arn = queue(eu_sqs)
    eu_sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    assert arn not in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    sns.publish(TargetArn=arn, Message="via TargetArn")
    assert [b["Message"] for b in bodies(eu_sqs, url)] == ["via TargetArn"]


def test_publish_batch(sns, sqs):
    arn = topic(sns)
    url = subscribe_queue(sns, sqs, arn)
    result = sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
        {"Id": "one", "Message": "first", "Subject": "s1"},
        {"Id": "two", "Message": ""},
        {"Id": "three", "Message": "third", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}},
    ])
    assert [e["Id"] for e in result["Successful"]] == ["one", "three"]
    assert all(e["MessageId"] for e in result["Successful"])
    assert result["Failed"] == [{"Id": "two", "Code": "InvalidParameter", "Message": "Invalid parameter: Empty "
                                 "message", "SenderFault": True}]
    got = bodies(sqs, url)
    assert [(b["Message"], b.get("Subject")) for b in got] == [("first", "s1"), ("third", None)]
    assert {b["MessageId"] for b in got} == {e["MessageId"] for e in result["Successful"]}
    errors = [
        ([], "EmptyBatchRequest"),
        ([{"Id": str(i), "Message": "m"} for i in range(11)], "TooManyEntriesInBatchRequest"),
        ([{"Id": "a", "Message": "m"}, {"Id": "a", "Message": "n"}], "BatchEntryIdsNotDistinct"),
        ([{"Id": "bad id!", "Message": "m"}], "InvalidBatchEntryId"),
        ([{"Id": str(i), "Message": "x" * 30000} for i in range(10)], "BatchRequestTooLong"),
    ]
    for entries, expected in errors:
        with pytest.raises(ClientError) as exc:
            sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=entries)
        assert code(exc) == expected


def test_deleted_queue_goes_to_subscription_dlq(sns, sqs):
    arn = topic(sns)
    gone_url, gone_arn = queue(sqs)
    dlq_url, dlq_arn = queue(sqs)
    sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=gone_arn,
                        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn})})["SubscriptionArn"]
    assert json.loads(sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq_arn}
    sqs.delete_queue(QueueUrl=gone_url)
    message_id = sns.publish(TopicArn=arn, Message="lost?")["MessageId"]
    (envelope,) = bodies(sqs, dlq_url)
    assert envelope["MessageId"] == message_id and envelope["Message"] == "lost?"


# -- filter policies ---------------------------------------------------------------

def _delivered(sns, sqs, policies: dict[str, dict], scope: str, messages: list[dict]) -> dict[str, list[str]]:
    """Subscribe one queue per policy, publish each message (with an "id"), and return which ids each got."""
    arn = topic(sns)
    urls = {key: subscribe_queue(sns, sqs, arn, FilterPolicy=json.dumps(policy), FilterPolicyScope=scope)
            for key, policy in policies.items()}
    for m in messages:
        if scope == "MessageBody":
            sns.publish(TopicArn=arn, Message=json.dumps(m))
        else:
            sns.publish(TopicArn=arn, Message=m["id"], MessageAttributes=m["attrs"])
    out = {}
    for key, url in urls.items():
        got = [b["Message"] for b in bodies(sqs, url)]
        out[key] = sorted(json.loads(g)["id"] if scope == "MessageBody" else g for g in got)
    return out


def s(value: str) -> dict:
    return {"DataType": "String", "StringValue": value}


def n(value: str) -> dict:
    return {"DataType": "Number", "StringValue": value}


def test_filter_policy_on_message_attributes(sns, sqs):
    messages_ = [
        {"id": "m1", "attrs": {"store": s("example_corp"), "event": s("order_placed"), "price": n("210.75"),
                               "interests": {"DataType": "String.Array", "StringValue": '["rugby", "tennis"]'},
                               "ip": s("10.0.0.7")}},
        {"id": "m2", "attrs": {"store": s("Example_Corp"), "event": s("order_cancelled"), "price": n("50"),
                               "interests": {"DataType": "String.Array", "StringValue": '["baseball"]'},
                               "ip": s("192.168.1.1")}},
        {"id": "m3", "attrs": {"event": s("order_placed"), "price": n("300")}},
        {"id": "m4", "attrs": {}},
        {"id": "m5", "attrs": {"bin": {"DataType": "Binary", "BinaryValue": b"x"}, "event": s("x.png")}},
    ]
    policies = {
        "exact": {"store": ["example_corp"]},
        "and": {"store": ["example_corp", "Example_Corp"], "event": [{"prefix": "order_p"}]},
        "numeric": {"price": [{"numeric": [">", 100, "<=", 300]}]},
        "number-equals": {"price": [50]},
        "anything-but": {"event": [{"anything-but": ["order_placed"]}]},
        "anything-but-prefix": {"event": [{"anything-but": {"prefix": "order"}}]},
        "array": {"interests": ["tennis"]},
        "array-anything-but": {"interests": [{"anything-but": ["rugby"]}]},
        "exists": {"store": [{"exists": True}]},
        "not-exists": {"store": [{"exists": False}]},
        "ignore-case": {"store": [{"equals-ignore-case": "EXAMPLE_CORP"}]},
        "suffix": {"event": [{"suffix": "ed"}]},
        "wildcard": {"event": [{"wildcard": "*.png"}]},
        "cidr": {"ip": [{"cidr": "10.0.0.0/24"}]},
        "or": {"$or": [{"store": ["example_corp"]}, {"price": [{"numeric": ["=", 300]}]}]},
        "binary-is-ignored": {"bin": [{"exists": True}]},
    }
    got = _delivered(sns, sqs, policies, "MessageAttributes", messages_)
    assert got == {
        "exact": ["m1"], "and": ["m1"], "numeric": ["m1", "m3"], "number-equals": ["m2"],
        "anything-but": ["m2", "m5"], "anything-but-prefix": ["m5"], "array": ["m1"],
        "array-anything-but": ["m2"], "exists": ["m1", "m2"], "not-exists": ["m3", "m5"],
        "ignore-case": ["m1", "m2"], "suffix": ["m1", "m2", "m3"], "wildcard": ["m5"], "cidr": ["m1"],
        "or": ["m1", "m3"], "binary-is-ignored": [],
    }


def test_filter_policy_on_message_body(sns, sqs):
    messages_ = [
        {"id": "b1", "customer": {"name": "Ann", "vip": True, "address": {"city": "Tokyo"}}, "total": 120,
         "items": [{"sku": "A-1"}, {"sku": "B-2"}], "note": None},
        {"id": "b2", "customer": {"name": "Bob", "vip": False, "address": {"city": "Osaka"}}, "total": 20,
         "items": [{"sku": "C-3"}]},
        {"id": "b3", "total": "120"},
        {"id": "b4", "customer": {"name": None}, "total": "", "note": "x"},
    ]
    policies = {
        "nested": {"customer": {"address": {"city": ["Tokyo"]}}},
        "bool": {"customer": {"vip": [True]}},
        "numeric": {"total": [{"numeric": [">=", 100]}]},
        "string-is-not-number": {"total": ["120"]},
        "array-of-objects": {"items": {"sku": [{"prefix": "C-"}]}},
        "null": {"note": [None]},
        "exists-nested": {"customer": {"name": [{"exists": True}]}},
        "absent": {"customer": {"name": [{"exists": False}]}},
        "or-nested": {"$or": [{"customer": {"name": ["Bob"]}}, {"total": [{"numeric": ["<", 0]}]}]},
        "dotted-key": {"customer.address.city": ["Osaka"]},
        "total-exists": {"total": [{"exists": True}]},
    }
    got = _delivered(sns, sqs, policies, "MessageBody", messages_)
    assert got == {
        "nested": ["b1"], "bool": ["b1"], "numeric": ["b1"], "string-is-not-number": ["b3"],
        "array-of-objects": ["b2"], "null": ["b1"], "exists-nested": ["b1", "b2"], "absent": ["b3", "b4"],
        "or-nested": ["b2"], "dotted-key": ["b2"], "total-exists": ["b1", "b2", "b3"],
    }


def test_filter_policy_body_scope_skips_non_json_messages(sns, sqs):
    arn = topic(sns)
    url = subscribe_queue(sns, sqs, arn, FilterPolicy='{"a": [{"exists": true}]}', FilterPolicyScope="MessageBody")
    sns.publish(TopicArn=arn, Message="plain text")
    sns.publish(TopicArn=arn, Message='{"a": 1}')
    assert [b["Message"] for b in bodies(sqs, url)] == ['{"a": 1}']


@pytest.mark.parametrize("policy,scope,text", [
    ("{nope", "MessageAttributes", "FilterPolicy: failed to parse JSON."),
    (json.dumps({f"k{i}": ["v"] for i in range(6)}), "MessageAttributes",
     "FilterPolicy: Filter policy can not have more than 5 keys"),
    (json.dumps({"a": [str(i) for i in range(20)], "b": [str(i) for i in range(10)]}), "MessageAttributes",
     "FilterPolicy: Filter policy is too complex"),
    ('{"a": []}', "MessageAttributes", "FilterPolicy: Empty arrays are not allowed"),
    ('{"a": "x"}', "MessageAttributes", 'FilterPolicy: "a" must be an object or an array'),
    ('{"a": {"b": ["x"]}}', "MessageAttributes",
     "Filter policy scope MessageAttributes does not support nested filter policy"),
    ('{"a": [{"prefix": 1}]}', "MessageAttributes", "FilterPolicy: prefix match pattern must be a string"),
    ('{"a": [{"between": [1, 2]}]}', "MessageAttributes", "FilterPolicy: Unrecognized match type between"),
    ('{"a": [{"prefix": "x", "suffix": "y"}]}', "MessageAttributes",
     "FilterPolicy: Only one key allowed in match expression"),
    ('{"a": [["x"]]}', "MessageAttributes", "FilterPolicy: Match value must be String, number, true, false, or null"),
    ('{"a": [{"exists": "yes"}]}', "MessageAttributes",
     "FilterPolicy: exists match pattern must be either true or false."),
    ('{"a": [{"numeric": ["!", 1]}]}', "MessageAttributes", "FilterPolicy: Unrecognized numeric range operator: !"),
    ('{"a": [{"numeric": [">", "one"]}]}', "MessageAttributes", "FilterPolicy: Value of > must be numeric"),
    ('{"a": [{"numeric": [">", 5, "<", 1]}]}', "MessageAttributes", "FilterPolicy: Bottom must be less than top"),
    ('{"a": [{"numeric": ["<", 5, ">", 1]}]}', "MessageAttributes",
     "FilterPolicy: Too many elements in numeric expression"),
    ('{"a": [{"cidr": "10.0.0.1"}]}', "MessageAttributes", "FilterPolicy: Malformed CIDR, one '/' required"),
    ('{"a": [{"cidr": "10.0.0.300/8"}]}', "MessageAttributes", "FilterPolicy: Nonstandard IP address: 10.0.0.300"),
    ('{"a": [{"anything-but": {"exists": true}}]}', "MessageAttributes",
     "FilterPolicy: Unsupported anything-but pattern: exists"),
])
def test_filter_policy_validation(sns, sqs, policy, scope, text):
    arn = topic(sns)
    _, queue_arn = queue(sqs)
    with pytest.raises(ClientError) as exc:
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn,
                      Attributes={"FilterPolicy": policy, "FilterPolicyScope": scope})
    assert (code(exc), message(exc)) == ("InvalidParameter", f"Invalid parameter: Attributes Reason: {text}")
    sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    with pytest.raises(ClientError) as exc:
        sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicy", AttributeValue=policy)
    assert message(exc) == f"Invalid parameter: {text}"


# -- FIFO --------------------------------------------------------------------------

def test_fifo_topic_to_fifo_queue_keeps_order_groups_and_dedup(sns, sqs):
    arn = topic(sns, name() + ".fifo", FifoTopic="true", ContentBasedDeduplication="true")
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["FifoTopic"] == "true" and attrs["ContentBasedDeduplication"] == "true"
    assert attrs["FifoThroughputScope"] == "Topic"
    fifo_url = subscribe_queue(sns, sqs, arn)
    std_url, std_arn = queue(sqs)
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=std_arn)
    sent = []
    for i in range(6):
        r = sns.publish(TopicArn=arn, Message=f"m{i}", MessageGroupId="g1" if i % 2 else "g2")
        sent.append(r)
    duplicate = sns.publish(TopicArn=arn, Message="m0", MessageGroupId="g2")
    assert duplicate["MessageId"] == sent[0]["MessageId"]
    explicit = sns.publish(TopicArn=arn, Message="m0", MessageGroupId="g2", MessageDeduplicationId="other")
    assert explicit["MessageId"] != sent[0]["MessageId"]
    sequence = [int(r["SequenceNumber"]) for r in sent + [explicit]]
    assert sequence == sorted(sequence) and len(set(sequence)) == 7 and all(len(str(x)) == 20 for x in sequence)
    received = drain_queue(sqs, fifo_url)
    envelopes = [json.loads(m["Body"]) for m in received]
    by_group: dict[str, list[str]] = {}
    for m, e in zip(received, envelopes):
        by_group.setdefault(m["Attributes"]["MessageGroupId"], []).append(e["Message"])
        assert e["SequenceNumber"] == next(r["SequenceNumber"] for r in sent + [explicit]
                                           if r["MessageId"] == e["MessageId"])
        assert list(e)[:3] == ["Type", "MessageId", "SequenceNumber"]
    assert by_group == {"g2": ["m0", "m2", "m4", "m0"], "g1": ["m1", "m3", "m5"]}
    assert len(drain_queue(sqs, std_url)) == 7


def test_fifo_deduplication_per_message_group(sns, sqs):
    arn = topic(sns, name() + ".fifo", FifoTopic="true", FifoThroughputScope="MessageGroup")
    url, queue_arn = queue(sqs, name("q") + ".fifo", FifoQueue="true", DeduplicationScope="messageGroup",
                           FifoThroughputLimit="perMessageGroupId")
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    a = sns.publish(TopicArn=arn, Message="a", MessageGroupId="g1", MessageDeduplicationId="same")
    b = sns.publish(TopicArn=arn, Message="b", MessageGroupId="g2", MessageDeduplicationId="same")
    c = sns.publish(TopicArn=arn, Message="c", MessageGroupId="g1", MessageDeduplicationId="same")
    assert a["MessageId"] != b["MessageId"] and c["MessageId"] == a["MessageId"]
    assert sorted(d["Message"] for d in bodies(sqs, url)) == ["a", "b"]


# -- the AWS CLI -------------------------------------------------------------------

def test_aws_cli(unkai, sqs):
    def aws(*args: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "awscli", "--endpoint-url", unkai.endpoint, "--region",
                              "us-east-1", "--output", "json", "sns", *args], capture_output=True, text=True,
                             timeout=60, env={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                                              "PATH": ""})
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else {}

    arn = aws("create-topic", "--name", name("cli"))["TopicArn"]
    url, queue_arn = queue(sqs)
    unkai.client("sns").subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    sent = aws("publish", "--topic-arn", arn, "--message", "from the cli", "--message-attributes",
               '{"k": {"DataType": "String", "StringValue": "v"}}')
    (envelope,) = bodies(sqs, url)
    assert envelope["MessageId"] == sent["MessageId"] and envelope["Message"] == "from the cli"
