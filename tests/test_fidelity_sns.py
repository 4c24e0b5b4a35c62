"""SNS answers as AWS does, in the details clients branch on (issue 23, item 3: SNS)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest


@pytest.fixture(scope="module")
def sns(unkai):
    return unkai.client("sns")


def query_error_body(unkai, service: str, form: str) -> str:
    """The raw XML of a query-protocol error (botocore hides which elements it had)."""
    request = urllib.request.Request(
        f"{unkai.endpoint}/", data=form.encode(), method="POST",
        headers={"content-type": "application/x-www-form-urlencoded",
                 "authorization": f"AWS4-HMAC-SHA256 Credential=testing/20261203/us-east-1/{service}/aws4_request, "
                                  "SignedHeaders=host, Signature=0"})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request)
    return exc.value.read().decode()


def test_sns_errors_have_no_detail_element_while_sqs_query_errors_keep_theirs(unkai):
    body = query_error_body(unkai, "sns", "Action=GetTopicAttributes&Version=2010-03-31&"
                                          "TopicArn=arn:aws:sns:us-east-1:000000000000:no-such-topic")
    assert "<Code>NotFound</Code><Message>Topic does not exist</Message></Error>" in body
    assert "Detail" not in body
    body = query_error_body(unkai, "sqs", "Action=GetQueueUrl&Version=2012-11-05&QueueName=no-such-queue")
    assert "<Detail/>" in body


def test_subscription_attributes_name_the_subscription_principal(unkai, sns):
    sqs = unkai.client("sqs")
    topic = sns.create_topic(Name=f"fid-{time.time_ns()}")["TopicArn"]
    url = sqs.create_queue(QueueName=f"fid-{time.time_ns()}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    arn = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    caller = unkai.client("sts").get_caller_identity()["Arn"]
    assert attributes["SubscriptionPrincipal"] == caller
    assert (attributes["Protocol"], attributes["PendingConfirmation"], attributes["ConfirmationWasAuthenticated"]) == \
        ("sqs", "false", "true")


def test_fifo_throughput_scope_only_on_fifo_topics(sns):
    standard = sns.create_topic(Name=f"fid-{time.time_ns()}")["TopicArn"]
    fifo = sns.create_topic(Name=f"fid-{time.time_ns()}.fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    assert "FifoThroughputScope" not in sns.get_topic_attributes(TopicArn=standard)["Attributes"]
    assert sns.get_topic_attributes(TopicArn=fifo)["Attributes"]["FifoThroughputScope"] == "Topic"


def test_an_sms_publish_lands_in_the_local_outbox_unless_the_number_opted_out(unkai, sns):
    phone = f"+1555{time.time_ns() % 10_000_000:07d}"
    assert sns.publish(PhoneNumber=phone, Message="your code is 1234")["MessageId"]
    texts = unkai.mail(to=phone)
    assert [(m["subject"], m.get("text", "").strip()) for m in texts] == [("SMS message", "your code is 1234")]
    assert sns.check_if_phone_number_is_opted_out(phoneNumber=phone)["isOptedOut"] is False
    unkai.post(f"/_unkai/sns/sms/opt-out?phoneNumber=%2B{phone[1:]}")  # the recipient replies STOP
    assert sns.check_if_phone_number_is_opted_out(phoneNumber=phone)["isOptedOut"] is True
    assert phone in sns.list_phone_numbers_opted_out()["phoneNumbers"]
    sns.publish(PhoneNumber=phone, Message="not delivered")
    assert len(unkai.mail(to=phone)) == 1
    sns.opt_in_phone_number(phoneNumber=phone)
    assert sns.check_if_phone_number_is_opted_out(phoneNumber=phone)["isOptedOut"] is False


def test_sms_topic_subscriptions_and_attributes(unkai, sns):
    phone = f"+1555{time.time_ns() % 10_000_000:07d}"
    topic = sns.create_topic(Name=f"fid-{time.time_ns()}")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sms", Endpoint=phone)
    sns.publish(TopicArn=topic, Message="to every subscriber")
    assert [m.get("text", "").strip() for m in unkai.mail(to=phone)] == ["to every subscriber"]
    sns.set_sms_attributes(attributes={"DefaultSMSType": "Transactional", "DefaultSenderID": "MyShop"})
    assert sns.get_sms_attributes(attributes=["DefaultSMSType"])["attributes"] == {"DefaultSMSType": "Transactional"}
    with pytest.raises(Exception) as exc:
        sns.publish(PhoneNumber="12ab", Message="x")
    assert exc.value.response["Error"]["Code"] == "InvalidParameter"
    with pytest.raises(Exception) as exc:
        sns.check_if_phone_number_is_opted_out(phoneNumber="not-a-number")
    assert exc.value.response["Error"]["Message"] == "Invalid parameter: PhoneNumber Reason: input incorrectly formatted"
