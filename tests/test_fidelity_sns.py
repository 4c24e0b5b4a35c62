"""SNS answers as AWS does, in the details clients branch on (issue 23, item 3: SNS)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError


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


# -- mobile push: platform applications and endpoints (expected values: AWS-verified SNS tests) --------


def error_of(exc: pytest.ExceptionInfo) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def pushes(unkai, endpoint: str) -> list[dict]:
    import json
    import urllib.parse

    with urllib.request.urlopen(f"{unkai.endpoint}/_unkai/sns/push?endpoint={urllib.parse.quote(endpoint)}") as r:
        return json.loads(r.read())["pushes"]


@pytest.fixture
def app(sns):
    name = f"app-{time.time_ns()}"
    arn = sns.create_platform_application(Name=name, Platform="GCM",
                                          Attributes={"PlatformCredential": "server-key"})["PlatformApplicationArn"]
    assert arn == f"arn:aws:sns:us-east-1:000000000000:app/GCM/{name}"
    yield arn
    sns.delete_platform_application(PlatformApplicationArn=arn)


def test_platform_applications_are_stored_listed_updated_and_never_show_their_credential(sns, app):
    assert sns.get_platform_application_attributes(PlatformApplicationArn=app)["Attributes"] == {"Enabled": "true"}
    sns.set_platform_application_attributes(PlatformApplicationArn=app, Attributes={
        "EventEndpointCreated": "arn:aws:sns:us-east-1:000000000000:push-events", "PlatformCredential": "new"})
    assert sns.get_platform_application_attributes(PlatformApplicationArn=app)["Attributes"] == {
        "Enabled": "true", "EventEndpointCreated": "arn:aws:sns:us-east-1:000000000000:push-events"}
    listed = {a["PlatformApplicationArn"]: a["Attributes"] for a in sns.list_platform_applications()[
        "PlatformApplications"]}
    assert "PlatformCredential" not in listed[app]
    with pytest.raises(ClientError) as exc:
        sns.get_platform_application_attributes(PlatformApplicationArn=app + "2")
    assert error_of(exc) == ("NotFound", "PlatformApplication does not exist")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as exc:
        sns.set_platform_application_attributes(PlatformApplicationArn=app, Attributes={})
    assert error_of(exc) == ("ValidationError", "1 validation error detected: Value null at 'attributes' failed to "
                                                "satisfy constraint: Member must not be null")
    with pytest.raises(ClientError) as exc:
        sns.create_platform_application(Name="no spaces", Platform="GCM", Attributes={"PlatformCredential": "k"})
    assert error_of(exc) == ("InvalidParameter", "Invalid parameter: no spaces Reason: must contain only characters "
                                                 "'a'-'z', 'A'-'Z', '0'-'9', '_', '-', and '.'")


def test_platform_endpoints_are_idempotent_per_token_and_refuse_other_attributes(sns, app):
    first = sns.create_platform_endpoint(PlatformApplicationArn=app, Token="token")["EndpointArn"]
    assert first.startswith(app.replace(":app/", ":endpoint/") + "/")
    assert sns.create_platform_endpoint(PlatformApplicationArn=app, Token="token")["EndpointArn"] == first
    assert sns.create_platform_endpoint(PlatformApplicationArn=app, Token="token",
                                        Attributes={"Enabled": "true"})["EndpointArn"] == first
    with pytest.raises(ClientError) as exc:
        sns.create_platform_endpoint(PlatformApplicationArn=app, Token="token", CustomUserData="user 7")
    assert error_of(exc) == ("InvalidParameter", f"Invalid parameter: Token Reason: Endpoint {first} already exists "
                                                 f"with the same Token, but different attributes.")
    with pytest.raises(ClientError) as exc:
        sns.create_platform_endpoint(PlatformApplicationArn=app + "2", Token="unknown_arn")
    assert error_of(exc) == ("NotFound", "PlatformApplication does not exist")
    with pytest.raises(ClientError) as exc:
        sns.create_platform_endpoint(PlatformApplicationArn=app, Token="t2", Attributes={"Colour": "red"})
    assert error_of(exc) == ("InvalidParameter", "Invalid parameter: Attributes Reason: Invalid attribute name: Colour")
    second = sns.create_platform_endpoint(PlatformApplicationArn=app, Token="t2",
                                          Attributes={"CustomUserData": "some data"})["EndpointArn"]
    listed = sns.list_endpoints_by_platform_application(PlatformApplicationArn=app)["Endpoints"]
    assert [(e["EndpointArn"], e["Attributes"]) for e in listed] == [
        (first, {"Enabled": "true", "Token": "token"}),
        (second, {"Enabled": "true", "Token": "t2", "CustomUserData": "some data"})]
    sns.set_endpoint_attributes(EndpointArn=second, Attributes={"CustomUserData": "other data", "Enabled": "false"})
    assert sns.get_endpoint_attributes(EndpointArn=second)["Attributes"] == {
        "Enabled": "false", "Token": "t2", "CustomUserData": "other data"}
    sns.delete_endpoint(EndpointArn=second)
    sns.delete_endpoint(EndpointArn=second)  # idempotent
    with pytest.raises(ClientError) as exc:
        sns.get_endpoint_attributes(EndpointArn=second)
    assert error_of(exc) == ("NotFound", "Endpoint does not exist")
    assert exc.value.response["Error"]["Type"] == "Sender"


def test_publish_to_an_endpoint_or_through_a_topic_lands_in_the_push_outbox(unkai, sns, app):
    import json

    device = sns.create_platform_endpoint(PlatformApplicationArn=app, Token="device-1")["EndpointArn"]
    sent = sns.publish(TargetArn=device, Message="plain hello")["MessageId"]
    assert [(p["messageId"], p["message"], p["platform"], p["token"]) for p in pushes(unkai, device)] == [
        (sent, "plain hello", "GCM", "device-1")]
    topic = sns.create_topic(Name=f"push-{time.time_ns()}")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="application", Endpoint=device)
    gcm = json.dumps({"notification": {"title": "Hi"}})
    sns.publish(TopicArn=topic, MessageStructure="json", Message=json.dumps({"default": "fallback", "GCM": gcm}))
    assert [(p["message"], p["topic"]) for p in pushes(unkai, device)][1:] == [(gcm, topic)]


def test_a_disabled_endpoint_refuses_publishes_and_a_deleted_one_cannot_be_subscribed(unkai, sns, app):
    device = sns.create_platform_endpoint(PlatformApplicationArn=app, Token="off",
                                          Attributes={"Enabled": "false"})["EndpointArn"]
    with pytest.raises(ClientError) as exc:  # AWS answers this before looking at the (invalid) JSON message
        sns.publish(TargetArn=device, Message="msg", MessageStructure="json")
    assert error_of(exc) == ("EndpointDisabled", "Endpoint is disabled")
    topic = sns.create_topic(Name=f"push-{time.time_ns()}")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="application", Endpoint=device)
    sns.publish(TopicArn=topic, Message="not for a disabled device")
    assert pushes(unkai, device) == []
    sns.delete_platform_application(PlatformApplicationArn=app)  # its endpoints go with it
    with pytest.raises(ClientError) as exc:
        sns.get_endpoint_attributes(EndpointArn=device)
    assert error_of(exc) == ("NotFound", "Endpoint does not exist")
    with pytest.raises(ClientError) as exc:
        sns.subscribe(TopicArn=topic, Protocol="application", Endpoint=device)
    assert error_of(exc) == ("InvalidParameter",
                             f"Invalid parameter: Endpoint Reason: Endpoint does not exist for endpoint arn{device}")
    with pytest.raises(ClientError) as exc:
        sns.publish(TargetArn=device, Message="gone")
    assert error_of(exc) == ("InvalidParameter",
                             "Invalid parameter: TargetArn Reason: No endpoint found for the target arn specified")


def test_another_regions_applications_and_endpoints_are_not_found(unkai, sns, app):
    device = sns.create_platform_endpoint(PlatformApplicationArn=app, Token="elsewhere")["EndpointArn"]
    west = unkai.client("sns", "us-west-2")
    for call, kwargs, code in (
            (west.get_platform_application_attributes, {"PlatformApplicationArn": app}, "NotFound"),
            (west.create_platform_endpoint, {"PlatformApplicationArn": app, "Token": "t"}, "NotFound"),
            (west.get_endpoint_attributes, {"EndpointArn": device}, "NotFound"),
            (west.publish, {"TargetArn": device, "Message": "hi"}, "InvalidParameter")):
        with pytest.raises(ClientError) as exc:
            call(**kwargs)
        assert exc.value.response["Error"]["Code"] == code
    west.delete_endpoint(EndpointArn=device)  # idempotent there, and it leaves this region's endpoint be
    west.delete_platform_application(PlatformApplicationArn=app)
    assert sns.get_endpoint_attributes(EndpointArn=device)["Attributes"]["Token"] == "elsewhere"
