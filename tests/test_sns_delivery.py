"""SNS deliveries that leave unkai: real HTTP POSTs to a loopback server (the
confirmation handshake, notifications, retries by the delivery policy on unkai's
clock, dead-letter queues), email to the local mailbox with working links, and
message signatures verified the way AWS documents. These tests move the clock, so
they share a server of their own."""

from __future__ import annotations

import base64
import json
import re
import urllib.request
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from unkai.testing import UnkaiServer

from tests.metrics_support import day_stats

from sns_support import sns, sqs, Endpoint, bodies, code, drain_queue, message, name, queue  # noqa: F401 (fixtures)


@pytest.fixture(scope="module")
def unkai(tmp_path_factory):
    """A server of their own that also verifies every signature, as --access-key/--secret-key do:
    the links SNS hands out (SubscribeURL, UnsubscribeURL, email links) still work unsigned."""
    server = UnkaiServer(tmp_path_factory.mktemp("sns-clock") / "state",
                         env={"UNKAI_ACCESS_KEY": "testing", "UNKAI_SECRET_KEY": "testing"}).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def endpoint():
    server = Endpoint()
    try:
        yield server
    finally:
        server.close()


def verify_signature(doc: dict) -> None:
    """AWS's documented procedure: rebuild the string to sign from the message's own fields,
    fetch the certificate from SigningCertURL, and check SHA1withRSA (v1) or SHA256withRSA (v2)."""
    if doc["Type"] == "Notification":
        names = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
    else:
        names = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
    string_to_sign = "".join(f"{k}\n{doc[k]}\n" for k in names if k in doc)
    cert_url = doc.get("SigningCertURL") or doc["SigningCertUrl"]
    with urllib.request.urlopen(cert_url, timeout=10) as response:
        certificate = x509.load_pem_x509_certificate(response.read())
    digest = {"1": hashes.SHA1(), "2": hashes.SHA256()}[doc["SignatureVersion"]]
    certificate.public_key().verify(base64.b64decode(doc["Signature"]), string_to_sign.encode(),
                                    padding.PKCS1v15(), digest)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def confirmed_http(unkai, sns, endpoint: Endpoint, topic_arn: str, **attributes: str) -> str:
    """Subscribe the endpoint and confirm with the Token of the confirmation it received."""
    sub = sns.subscribe(TopicArn=topic_arn, Protocol="http", Endpoint=endpoint.url + "/hook",
                        ReturnSubscriptionArn=True, Attributes=attributes)["SubscriptionArn"]
    unkai.drain()
    token = json.loads(endpoint.of_type("SubscriptionConfirmation")[-1]["body"])["Token"]
    assert sns.confirm_subscription(TopicArn=topic_arn, Token=token)["SubscriptionArn"] == sub
    return sub


def notifications(unkai, topic_arn: str) -> tuple[float, float]:
    """AWS/SNS NumberOfNotificationsDelivered and NumberOfNotificationsFailed (Sums) for the topic
    over the last day of unkai's clock."""
    now = unkai.advance(0)["epoch"]
    cw = unkai.client("cloudwatch")
    dims = {"TopicName": topic_arn.rsplit(":", 1)[1]}
    sums = [day_stats(cw, "AWS/SNS", metric, dims, now)["Sum"]
            for metric in ("NumberOfNotificationsDelivered", "NumberOfNotificationsFailed")]
    return sums[0], sums[1]


# -- signatures --------------------------------------------------------------------

def test_signatures_verify_with_the_served_certificate(sns, sqs, unkai):
    arn = sns.create_topic(Name=name())["TopicArn"]
    url, queue_arn = queue(sqs)
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    sns.publish(TopicArn=arn, Message="signed\nwith a newline", Subject="v1")
    sns.set_topic_attributes(TopicArn=arn, AttributeName="SignatureVersion", AttributeValue="2")
    sns.publish(TopicArn=arn, Message='{"no": "subject"}')
    first, second = bodies(sqs, url)
    assert (first["SignatureVersion"], second["SignatureVersion"]) == ("1", "2")
    for doc in (first, second):
        verify_signature(doc)
    forged = dict(first, Message="tampered")
    with pytest.raises(InvalidSignature):
        verify_signature(forged)
    # the signing key is sealed at rest: no private key in the database's files (WAL included)
    for path in unkai.state_dir.glob("unkai.db*"):
        assert b"PRIVATE KEY" not in path.read_bytes(), path.name


# -- HTTP/S ------------------------------------------------------------------------

def test_http_handshake_notifications_and_unsubscribe(unkai, sns, endpoint):
    arn = sns.create_topic(Name=name())["TopicArn"]
    assert sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=endpoint.url + "/hook")["SubscriptionArn"] == \
        "pending confirmation"
    unkai.drain()
    (request,) = endpoint.of_type("SubscriptionConfirmation")
    headers, doc = request["headers"], json.loads(request["body"])
    assert request["path"] == "/hook"
    assert headers["x-amz-sns-topic-arn"] == arn and headers["x-amz-sns-message-id"] == doc["MessageId"]
    assert headers["content-type"] == "text/plain; charset=UTF-8"
    assert headers["user-agent"] == "Amazon Simple Notification Service Agent"
    assert list(doc) == ["Type", "MessageId", "Token", "TopicArn", "Message", "SubscribeURL", "Timestamp",
                         "SignatureVersion", "Signature", "SigningCertURL"]
    assert doc["Message"] == (f"You have chosen to subscribe to the topic {arn}.\nTo confirm the subscription, "
                              "visit the SubscribeURL included in this message.")
    verify_signature(doc)
    sns.publish(TopicArn=arn, Message="before confirmation")
    unkai.drain()
    assert endpoint.of_type("Notification") == []
    status, xml = get(doc["SubscribeURL"])  # what an endpoint does to confirm
    assert status == 200
    sub = ET.fromstring(xml).find(".//{http://sns.amazonaws.com/doc/2010-03-31/}SubscriptionArn").text
    attrs = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert attrs["PendingConfirmation"] == "false" and attrs["ConfirmationWasAuthenticated"] == "false"
    assert json.loads(attrs["EffectiveDeliveryPolicy"])["healthyRetryPolicy"]["numRetries"] == 3

    message_id = sns.publish(TopicArn=arn, Message="hello http", Subject="greeting",
                             MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})["MessageId"]
    unkai.drain()
    (request,) = endpoint.of_type("Notification")
    doc = json.loads(request["body"])
    assert request["headers"]["x-amz-sns-subscription-arn"] == sub
    assert request["headers"]["x-amz-sns-message-id"] == message_id == doc["MessageId"]
    assert "x-amz-sns-rawdelivery" not in request["headers"]
    assert doc["Message"] == "hello http" and doc["Subject"] == "greeting"
    assert doc["UnsubscribeURL"].endswith(f"?Action=Unsubscribe&SubscriptionArn={sub}")
    assert doc["MessageAttributes"] == {"k": {"Type": "String", "Value": "v"}}
    verify_signature(doc)

    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RawMessageDelivery", AttributeValue="true")
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="DeliveryPolicy", AttributeValue=json.dumps(
        {"requestPolicy": {"headerContentType": "application/json"}}))
    sns.publish(TopicArn=arn, Message='{"raw": true}')
    unkai.drain()
    raw = endpoint.of_type("Notification")[-1]
    assert raw["body"] == '{"raw": true}' and raw["headers"]["x-amz-sns-rawdelivery"] == "true"
    assert raw["headers"]["content-type"] == "application/json"
    # two notifications delivered; the one published while pending confirmation went to no one
    assert notifications(unkai, arn) == (2.0, 0.0)

    sns.unsubscribe(SubscriptionArn=sub)
    unkai.drain()
    (bye,) = endpoint.of_type("UnsubscribeConfirmation")
    doc = json.loads(bye["body"])
    assert doc["Message"].startswith(f"You have chosen to deactivate subscription {sub}.")
    verify_signature(doc)
    assert get(doc["SubscribeURL"])[0] == 200  # visiting it restores the subscription
    (restored,) = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert restored["Endpoint"] == endpoint.url + "/hook" and restored["SubscriptionArn"] != "PendingConfirmation"


def test_confirm_subscription_api_and_bad_tokens(unkai, sns, endpoint):
    arn = sns.create_topic(Name=name())["TopicArn"]
    sub = confirmed_http(unkai, sns, endpoint, arn)
    assert sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["ConfirmationWasAuthenticated"] == "true"
    with pytest.raises(ClientError) as exc:
        sns.confirm_subscription(TopicArn=arn, Token="0" * 128)
    assert (code(exc), message(exc)) == ("InvalidParameter", "Invalid parameter: Token")
    with pytest.raises(ClientError) as exc:
        sns.confirm_subscription(TopicArn="nope", Token="0" * 128)
    assert message(exc) == "Invalid parameter: Topic"


def test_http_retries_follow_the_delivery_policy_on_the_clock(unkai, sns, sqs, endpoint):
    arn = sns.create_topic(Name=name())["TopicArn"]
    dlq_url, dlq_arn = queue(sqs)
    confirmed_http(unkai, sns, endpoint, arn, RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn}))

    endpoint.statuses.extend([500, 503])  # the default policy: 3 retries, 20 seconds apart
    sns.publish(TopicArn=arn, Message="eventually")
    unkai.drain()
    assert len(endpoint.of_type("Notification")) == 1
    unkai.advance(15)
    unkai.drain()
    assert len(endpoint.of_type("Notification")) == 1
    unkai.advance(6)
    unkai.drain()
    assert len(endpoint.of_type("Notification")) == 2
    unkai.advance(21)
    unkai.drain()
    attempts = endpoint.of_type("Notification")
    assert len(attempts) == 3 and len({a["headers"]["x-amz-sns-message-id"] for a in attempts}) == 1
    assert drain_queue(sqs, dlq_url) == []

    endpoint.statuses.extend([500] * 4)  # never succeeds: 1 attempt + 3 retries, then the DLQ
    failing = sns.publish(TopicArn=arn, Message="never")["MessageId"]
    unkai.drain()
    for _ in range(3):
        unkai.advance(21)
        unkai.drain()
    assert sum(1 for a in endpoint.of_type("Notification") if a["headers"]["x-amz-sns-message-id"] == failing) == 4
    (dead,) = bodies(sqs, dlq_url)
    assert dead["MessageId"] == failing and dead["Message"] == "never"

    endpoint.statuses.append(404)  # a client error is permanent: no retry, straight to the DLQ
    gone = sns.publish(TopicArn=arn, Message="not found")["MessageId"]
    unkai.drain()
    unkai.advance(21)
    unkai.drain()
    assert sum(1 for a in endpoint.of_type("Notification") if a["headers"]["x-amz-sns-message-id"] == gone) == 1
    assert [b["MessageId"] for b in bodies(sqs, dlq_url)] == [gone]
    # AWS counts every failed HTTP/S attempt, retries included: 2 + 4 + 1; the handshake is not counted
    assert notifications(unkai, arn) == (1.0, 7.0)


def test_custom_delivery_policy_phases(unkai, sns, endpoint):
    arn = sns.create_topic(Name=name())["TopicArn"]
    policy = {"healthyRetryPolicy": {"numRetries": 5, "numNoDelayRetries": 2, "minDelayTarget": 10,
                                     "maxDelayTarget": 30, "backoffFunction": "linear"}}
    sub = confirmed_http(unkai, sns, endpoint, arn)
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="DeliveryPolicy",
                                    AttributeValue=json.dumps(policy))
    effective = json.loads(sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
                           ["EffectiveDeliveryPolicy"])
    assert effective["healthyRetryPolicy"]["numNoDelayRetries"] == 2
    endpoint.statuses.extend([500] * 5)
    sns.publish(TopicArn=arn, Message="phases")
    unkai.drain()
    assert len(endpoint.of_type("Notification")) == 3  # the first attempt and two immediate retries
    for wait, expected in ((8, 3), (3, 4), (17, 4), (3, 5), (27, 5), (3, 6)):  # backoff: 10, 20, 30 seconds
        unkai.advance(wait)
        unkai.drain()
        assert len(endpoint.of_type("Notification")) == expected, (wait, expected)
    bad = {"healthyRetryPolicy": {"numRetries": 100, "minDelayTarget": 3600, "maxDelayTarget": 3600}}
    with pytest.raises(ClientError) as exc:
        sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="DeliveryPolicy",
                                        AttributeValue=json.dumps(bad))
    assert code(exc) == "InvalidParameter" and "3600" in message(exc)


# -- email -------------------------------------------------------------------------

def mails_to(unkai, address: str) -> list[dict]:
    unkai.drain()
    return [m for m in unkai.mail() if address in m["to"]]


def test_email_confirm_link_notifications_and_unsubscribe_link(unkai, sns):
    address = f"{name('reader')}@example.com"
    arn = sns.create_topic(Name=name(), Attributes={"DisplayName": "Shop News"})["TopicArn"]
    assert sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=address)["SubscriptionArn"] == \
        "pending confirmation"
    (confirm,) = mails_to(unkai, address)
    assert confirm["subject"] == "AWS Notification - Subscription Confirmation"
    assert confirm["from"] == '"AWS Notifications" <no-reply@sns.amazonaws.com>'  # never the DisplayName
    assert f"You have chosen to subscribe to the topic: \n{arn}" in confirm["text"]
    link = re.search(r"http://\S+/_unkai/sns/confirmation\.html\?\S+", confirm["text"]).group(0)
    assert link in confirm["html"].replace("&amp;", "&")
    status, page = get(link)
    assert status == 200 and "Subscription confirmed!" in page
    (sub,) = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert sub["SubscriptionArn"] != "PendingConfirmation"

    sns.publish(TopicArn=arn, Message="Sale starts today", Subject="Sale")
    sns.publish(TopicArn=arn, Message="No subject here")
    _, sale, plain = mails_to(unkai, address)
    assert sale["subject"] == "Sale" and plain["subject"] == "AWS Notification Message"
    assert sale["from"] == '"Shop News" <no-reply@sns.amazonaws.com>'
    assert sale["text"].startswith("Sale starts today\n\n--\nIf you wish to stop receiving notifications from this "
                                   "topic, please click or visit the link below to unsubscribe:\n")
    unsubscribe = re.search(r"http://\S+/_unkai/sns/unsubscribe\.html\?\S+", sale["text"]).group(0)
    assert notifications(unkai, arn) == (2.0, 0.0)  # the confirmation mail is not a notification
    status, page = get(unsubscribe)
    assert status == 200 and "Subscription removed!" in page
    assert sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] == []
    assert get(link.replace("Token=", "Token=0"))[0] == 400


def test_email_json(unkai, sns):
    address = f"{name('robot')}@example.com"
    arn = sns.create_topic(Name=name())["TopicArn"]
    sns.subscribe(TopicArn=arn, Protocol="email-json", Endpoint=address)
    (confirm,) = mails_to(unkai, address)
    doc = json.loads(confirm["text"])
    assert doc["Type"] == "SubscriptionConfirmation" and confirm["from"] == '"AWS Notifications" ' \
                                                                            '<no-reply@sns.amazonaws.com>'
    verify_signature(doc)
    assert get(doc["SubscribeURL"])[0] == 200
    message_id = sns.publish(TopicArn=arn, Message="json mail", Subject="hi")["MessageId"]
    _, note = mails_to(unkai, address)
    doc = json.loads(note["text"])
    assert (doc["Type"], doc["MessageId"], doc["Message"], note["subject"]) == ("Notification", message_id,
                                                                              "json mail", "hi")
    assert notifications(unkai, arn) == (1.0, 0.0)
    verify_signature(doc)


def test_unsubscribe_url_from_an_envelope(sns, sqs):
    arn = sns.create_topic(Name=name())["TopicArn"]
    url, queue_arn = queue(sqs)
    sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    sns.publish(TopicArn=arn, Message="last one")
    (doc,) = bodies(sqs, url)
    assert get(doc["UnsubscribeURL"].replace("Action=Unsubscribe", "Action=Publish&Message=x&TopicArn=" + arn))[0] \
        == 403  # only the links are served unsigned
    status, xml = get(doc["UnsubscribeURL"])
    assert status == 200 and "<UnsubscribeResponse" in xml
    with pytest.raises(ClientError) as exc:
        sns.get_subscription_attributes(SubscriptionArn=sub)
    assert code(exc) == "NotFound"


# -- FIFO deduplication window ---------------------------------------------------

def test_fifo_topic_subscribe_and_dedup_window(unkai, sns, sqs):
    arn = sns.create_topic(Name=name() + ".fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    url, queue_arn = queue(sqs, name("q") + ".fifo", FifoQueue="true")
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    first = sns.publish(TopicArn=arn, Message="a", MessageGroupId="g", MessageDeduplicationId="d1")
    assert sns.publish(TopicArn=arn, Message="b", MessageGroupId="g",
                       MessageDeduplicationId="d1")["MessageId"] == first["MessageId"]
    unkai.advance(301)  # past the five-minute deduplication window
    again = sns.publish(TopicArn=arn, Message="c", MessageGroupId="g", MessageDeduplicationId="d1")
    assert again["MessageId"] != first["MessageId"]
    assert [b["Message"] for b in bodies(sqs, url)] == ["a", "c"]
