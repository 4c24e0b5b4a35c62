"""Sending through SES v1 and v2 into the local mailbox: the sandbox and quotas, raw MIME
with attachments, the mailbox simulator's bounces and complaints as SNS notifications,
configuration-set events to SNS and EventBridge, and the account suppression list."""

from __future__ import annotations

import json
import re
import urllib.request
from email.message import EmailMessage

import pytest
from botocore.exceptions import ClientError

from tests.ses_support import code, fresh_region, message, verify
from unkai.testing import new_queue, receive_all

SIMPLE = {"Subject": {"Data": "Hello"}, "Body": {"Text": {"Data": "plain body"}, "Html": {"Data": "<p>html body</p>"}}}


@pytest.fixture(scope="module")
def sandbox(unkai):
    """A region in the sandbox with two verified addresses."""
    region = fresh_region()
    ses = unkai.client("ses", region)
    verify(unkai, ses, "shop@example.com")
    verify(unkai, ses, "buyer@example.com")
    return region


def test_the_sandbox_refuses_an_unverified_recipient_in_awss_words(unkai, sandbox):
    unkai.advance(1.1)  # the sandbox sends 1 message per second
    ses = unkai.client("ses", sandbox)
    with pytest.raises(ClientError) as exc:
        ses.send_email(Source="shop@example.com", Destination={"ToAddresses": ["stranger@example.net"]},
                       Message=SIMPLE)
    assert code(exc) == "MessageRejected"
    assert message(exc) == ("Email address is not verified. The following identities failed the check in region "
                            f"{sandbox.upper()}: stranger@example.net")
    with pytest.raises(ClientError) as exc:
        ses.send_email(Source="nobody@example.org", Destination={"ToAddresses": ["buyer@example.com"]},
                       Message=SIMPLE)
    assert message(exc).endswith(": nobody@example.org")


def test_send_email_lands_in_the_mailbox_with_its_parts_and_message_id(unkai, sandbox):
    unkai.advance(1.1)  # the sandbox sends 1 message per second
    ses = unkai.client("ses", sandbox)
    after = unkai.mail_seq()
    mid = ses.send_email(Source="Shop <shop@example.com>", ReplyToAddresses=["help@example.com"],
                         Destination={"ToAddresses": ["buyer@example.com"],
                                      "BccAddresses": ["success@simulator.amazonses.com"]},
                         Message=SIMPLE)["MessageId"]
    (mail,) = unkai.wait_for_mail(to="buyer@example.com", after=after)
    assert mail["message_id"] == mid and mail["origin"] == "ses"
    assert mail["from"] == "Shop <shop@example.com>" and mail["subject"] == "Hello"
    assert mail["text"].strip() == "plain body" and mail["html"].strip() == "<p>html body</p>"
    assert mail["to"] == ["buyer@example.com", "success@simulator.amazonses.com"]  # the envelope
    assert mail["header_to"] == ["buyer@example.com"] and mail["reply_to"] == ["help@example.com"]
    headers = dict((k.lower(), v) for k, v in mail["headers"])
    assert headers["message-id"] == f"<{mid}@email.amazonses.com>"
    assert "bcc" not in headers
    # the same mail by its SES message id, raw and as HTML
    assert unkai.mail_message(mid)["id"] == mail["id"]
    with urllib.request.urlopen(unkai.url(f"/_unkai/mail/{mid}.eml"), timeout=10) as resp:
        assert b"Subject: Hello" in resp.read()
    with urllib.request.urlopen(unkai.url(f"/_unkai/mail/{mail['id']}.html"), timeout=10) as resp:
        assert resp.read().strip() == b"<p>html body</p>"


def test_raw_mime_keeps_attachments_and_inline_parts(unkai, sandbox):
    unkai.advance(1.1)  # the sandbox sends 1 message per second
    ses = unkai.client("ses", sandbox)
    msg = EmailMessage()
    msg["From"] = "shop@example.com"
    msg["To"] = "buyer@example.com"
    msg["Subject"] = "領収書"
    msg.set_content("see attached")
    msg.add_alternative('<p>logo: <img src="cid:logo"></p>', subtype="html")
    msg.get_payload()[1].add_related(b"\x89PNG-logo", maintype="image", subtype="png", cid="<logo>")
    msg.add_attachment(b"%PDF-1.4 receipt", maintype="application", subtype="pdf", filename="receipt.pdf")
    after = unkai.mail_seq()
    mid = ses.send_raw_email(RawMessage={"Data": msg.as_bytes()})["MessageId"]
    (mail,) = unkai.wait_for_mail(to="buyer@example.com", after=after)
    assert mail["message_id"] == mid and mail["subject"] == "領収書"
    assert mail["text"].strip() == "see attached"
    files = {a["filename"]: a for a in mail["attachments"]}
    assert files["receipt.pdf"]["content_type"] == "application/pdf" and files["receipt.pdf"]["size"] == 16
    inline = [a for a in mail["attachments"] if a["content_id"] == "logo"]
    assert inline and inline[0]["content_type"] == "image/png"
    index = files["receipt.pdf"]["index"]
    with urllib.request.urlopen(unkai.url(f"/_unkai/mail/{mail['id']}/attachments/{index}"), timeout=10) as resp:
        assert resp.read() == b"%PDF-1.4 receipt"
        assert 'filename="receipt.pdf"' in resp.headers["content-disposition"]
    # v2's Raw content: the same message, byte for byte but for SES's Message-ID
    unkai.advance(1.1)
    v2 = unkai.client("sesv2", sandbox)
    after = unkai.mail_seq()
    mid = v2.send_email(Content={"Raw": {"Data": msg.as_bytes()}})["MessageId"]
    (mail,) = unkai.wait_for_mail(to="buyer@example.com", after=after)
    assert mail["message_id"] == mid and mail["subject"] == "領収書"
    assert "receipt.pdf" in {a["filename"] for a in mail["attachments"]}


@pytest.mark.parametrize("raw, words", [
    (b"", "Empty message"),
    (b"this is not a header\r\n\r\nbody", "Illegal header line"),
    (b"To: buyer@example.com\r\nSubject: x\r\n\r\nbody", "Missing required header 'From'."),
])
def test_malformed_raw_messages_are_refused_not_crashed_on(unkai, sandbox, raw, words):
    ses = unkai.client("ses", sandbox)
    with pytest.raises(ClientError) as exc:
        ses.send_raw_email(RawMessage={"Data": raw})
    assert code(exc) == "InvalidParameterValue" and words in message(exc)


def test_limits_on_recipients_and_size(unkai, sandbox):
    unkai.advance(1.1)  # the sandbox sends 1 message per second
    ses = unkai.client("ses", sandbox)
    many = [f"u{i}@simulator.amazonses.com" for i in range(51)]
    with pytest.raises(ClientError) as exc:
        ses.send_email(Source="shop@example.com", Destination={"ToAddresses": many}, Message=SIMPLE)
    assert code(exc) == "InvalidParameterValue" and message(exc) == "Recipient count exceeds 50."
    big = {"Subject": {"Data": "big"}, "Body": {"Text": {"Data": "x" * (10 * 1024 * 1024)}}}
    with pytest.raises(ClientError) as exc:
        ses.send_email(Source="shop@example.com", Destination={"ToAddresses": ["buyer@example.com"]}, Message=big)
    # AWS's words (a real SendRawEmail answer, aws/aws-sdk-go-v2 issue 1774): the limit, then the length
    assert code(exc) == "InvalidParameterValue"
    assert re.fullmatch(r"Message length is more than 10485760 bytes long: '1048\d{4}'\.", message(exc))


@pytest.mark.parametrize("header", [{"Name": "X\u00e9", "Value": "v"}, {"Name": "X:Y", "Value": "v"},
                                    {"Name": "X-Ok", "Value": "line\nbreak"}, {"Name": "X-Ok", "Value": "\u00e9"},
                                    {"Name": "X" * 127, "Value": "v"}])
def test_v2_refuses_a_header_ses_would_refuse_at_the_call(unkai, sandbox, header):
    """MessageHeader's constraints are checked before the call answers (the message is
    built after the answer): a header that could not be written is a 400, nothing is sent."""
    unkai.advance(1.1)
    v2 = unkai.client("sesv2", sandbox)
    before = unkai.mail_seq()
    with pytest.raises(ClientError) as exc:
        v2.send_email(FromEmailAddress="shop@example.com", Destination={"ToAddresses": ["buyer@example.com"]},
                      Content={"Simple": dict(SIMPLE, Headers=[header])})
    assert code(exc) == "BadRequestException" and "header" in message(exc)
    unkai.drain()
    assert unkai.get(f"/_unkai/mail?after={before}") == []


def test_v2_takes_a_raw_message_of_40_mb_and_refuses_one_byte_more(unkai, sandbox):
    """SES v2's limit is 40 MB (v1's 10 MB): a raw message of exactly 41,943,040 bytes is
    sent and stored; one byte more is refused in AWS's words, before it is parsed. The
    message is one attachment in long lines, so neither side spends long parsing it."""
    limit = 40 * 1024 * 1024
    head = (b"From: shop@example.com\r\nTo: buyer@example.com\r\nSubject: forty\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=big.bin\r\n\r\n")
    line = b"A" * 1048574 + b"\r\n"
    body = line * ((limit - len(head)) // len(line))
    raw = head + body + b"B" * (limit - len(head) - len(body))
    assert len(raw) == limit
    v2 = unkai.client("sesv2", sandbox)
    unkai.advance(1.1)
    mid = v2.send_email(Content={"Raw": {"Data": raw}})["MessageId"]
    mail = unkai.mail_message(mid)
    assert mail["subject"] == "forty"
    assert [(a["filename"], a["size"]) for a in mail["attachments"]] == [("big.bin", len(raw) - len(head))]
    unkai.advance(1.1)
    with pytest.raises(ClientError) as exc:
        v2.send_email(Content={"Raw": {"Data": raw + b"B"}})
    assert code(exc) == "BadRequestException"
    assert message(exc) == f"Message length is more than {limit} bytes long: '{limit + 1}'."


def test_the_daily_quota_counts_recipients_and_refuses_the_201st(unkai):
    region = fresh_region()
    ses = unkai.client("ses", region)
    ses.verify_domain_identity(Domain="quota.example")
    unkai.advance(61)
    to = [f"user{i}@quota.example" for i in range(50)]
    for _ in range(4):
        ses.send_email(Source="me@quota.example", Destination={"ToAddresses": to}, Message=SIMPLE)
        unkai.advance(2)  # past the sandbox's 1 message per second
    assert ses.get_send_quota()["SentLast24Hours"] == 200.0
    with pytest.raises(ClientError) as exc:
        ses.send_email(Source="me@quota.example", Destination={"ToAddresses": to[:1]}, Message=SIMPLE)
    assert code(exc) == "MessageRejected" and message(exc) == "Daily message quota exceeded."
    # the simulator does not count
    ses.send_email(Source="me@quota.example", Destination={"ToAddresses": ["success@simulator.amazonses.com"]},
                   Message=SIMPLE)


def test_simulator_bounces_and_complaints_are_published_to_the_identitys_topics(unkai, sandbox):
    ses, sns, sqs = unkai.client("ses", sandbox), unkai.client("sns", sandbox), unkai.client("sqs", sandbox)
    topic = sns.create_topic(Name="ses-feedback")["TopicArn"]
    url, arn = new_queue(sqs)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    for kind in ("Bounce", "Complaint", "Delivery"):
        ses.set_identity_notification_topic(Identity="shop@example.com", NotificationType=kind, SnsTopic=topic)
    ses.set_identity_headers_in_notifications_enabled(Identity="shop@example.com", NotificationType="Bounce",
                                                      Enabled=True)
    attrs = ses.get_identity_notification_attributes(Identities=["shop@example.com"])["NotificationAttributes"]
    assert attrs["shop@example.com"]["BounceTopic"] == topic
    assert attrs["shop@example.com"]["HeadersInBounceNotificationsEnabled"] is True
    sim = "@simulator.amazonses.com"
    sent = {}
    for local in ("bounce", "complaint", "suppressionlist", "success"):
        sent[local] = ses.send_email(Source="shop@example.com", Destination={"ToAddresses": [local + sim]},
                                     Message=SIMPLE)["MessageId"]
    unkai.drain()
    notes = [json.loads(b) for b in receive_all(sqs, url)]
    by = {(n["notificationType"], n["mail"]["destination"][0]): n for n in notes}
    bounce = by[("Bounce", "bounce" + sim)]
    assert bounce["bounce"]["bounceType"] == "Permanent" and bounce["bounce"]["bounceSubType"] == "General"
    assert bounce["bounce"]["bouncedRecipients"] == [{"emailAddress": "bounce" + sim, "action": "failed",
                                                      "status": "5.1.1",
                                                      "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]
    assert bounce["mail"]["messageId"] == sent["bounce"] and bounce["mail"]["source"] == "shop@example.com"
    assert any(h["name"] == "Subject" for h in bounce["mail"]["headers"])  # headers were asked for
    suppressed = by[("Bounce", "suppressionlist" + sim)]
    assert suppressed["bounce"]["bounceSubType"] == "Suppressed"
    complaint = by[("Complaint", "complaint" + sim)]
    assert complaint["complaint"]["complainedRecipients"] == [{"emailAddress": "complaint" + sim}]
    assert complaint["complaint"]["complaintFeedbackType"] == "abuse"
    assert "headers" not in complaint["mail"]
    delivered = {n["mail"]["destination"][0] for n in notes if n["notificationType"] == "Delivery"}
    assert delivered == {"success" + sim, "complaint" + sim}
    for kind in ("Bounce", "Complaint", "Delivery"):
        ses.set_identity_notification_topic(Identity="shop@example.com", NotificationType=kind)


def test_without_a_topic_bounces_are_mailed_back_and_ooto_replies(unkai, sandbox):
    ses = unkai.client("ses", sandbox)
    after = unkai.mail_seq()
    ses.send_email(Source="buyer@example.com", Destination={"ToAddresses": ["bounce@simulator.amazonses.com"]},
                   Message=SIMPLE)
    ses.send_email(Source="buyer@example.com", Destination={"ToAddresses": ["ooto@simulator.amazonses.com"]},
                   Message=SIMPLE)
    unkai.drain()
    back = {m["subject"]: m for m in unkai.mail("buyer@example.com") if m["seq"] > after}
    assert "bounce@simulator.amazonses.com" in back["Delivery Status Notification (Failure)"]["text"]
    assert back["Automatic reply: Hello"]["from"] == "ooto@simulator.amazonses.com"


def test_configuration_set_events_reach_sns_and_eventbridge(unkai, sandbox):
    unkai.advance(1.1)  # the sandbox sends 1 message per second
    ses, v2 = unkai.client("ses", sandbox), unkai.client("sesv2", sandbox)
    sns, sqs, events = unkai.client("sns", sandbox), unkai.client("sqs", sandbox), unkai.client("events", sandbox)
    topic = sns.create_topic(Name="ses-events")["TopicArn"]
    url, arn = new_queue(sqs)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    bridge_url, bridge_arn = new_queue(sqs)
    events.put_rule(Name="ses-bounces", EventPattern=json.dumps({"source": ["aws.ses"],
                                                                 "detail-type": ["Email Bounced"]}))
    events.put_targets(Rule="ses-bounces", Targets=[{"Id": "q", "Arn": bridge_arn}])
    v2.create_configuration_set(ConfigurationSetName="tracked")
    v2.create_configuration_set_event_destination(
        ConfigurationSetName="tracked", EventDestinationName="sns",
        EventDestination={"Enabled": True, "MatchingEventTypes": ["SEND", "DELIVERY", "BOUNCE"],
                          "SnsDestination": {"TopicArn": topic}})
    v2.create_configuration_set_event_destination(
        ConfigurationSetName="tracked", EventDestinationName="bus",
        EventDestination={"Enabled": True, "MatchingEventTypes": ["BOUNCE"],
                          "EventBridgeDestination": {"EventBusArn":
                                                     f"arn:aws:events:{sandbox}:000000000000:event-bus/default"}})
    mid = v2.send_email(FromEmailAddress="shop@example.com", ConfigurationSetName="tracked",
                        Destination={"ToAddresses": ["bounce@simulator.amazonses.com"]},
                        EmailTags=[{"Name": "campaign", "Value": "winter"}],
                        Content={"Simple": SIMPLE})["MessageId"]
    with pytest.raises(ClientError) as exc:
        ses.send_email(Source="shop@example.com", ConfigurationSetName="missing",
                       Destination={"ToAddresses": ["buyer@example.com"]}, Message=SIMPLE)
    assert code(exc) == "ConfigurationSetDoesNotExist"
    unkai.drain()
    got = [json.loads(b) for b in receive_all(sqs, url)]
    assert sorted(e["eventType"] for e in got) == ["Bounce", "Send"]
    for e in got:
        assert e["mail"]["messageId"] == mid
        assert e["mail"]["tags"]["campaign"] == ["winter"]
        assert e["mail"]["tags"]["ses:configuration-set"] == ["tracked"]
    (bridged,) = [json.loads(b) for b in receive_all(sqs, bridge_url)]
    assert bridged["source"] == "aws.ses" and bridged["detail-type"] == "Email Bounced"
    assert bridged["detail"]["bounce"]["bouncedRecipients"][0]["emailAddress"] == "bounce@simulator.amazonses.com"


def test_the_account_suppression_list_drops_and_reports_later_sends(unkai, sandbox):
    unkai.advance(1.1)  # the sandbox sends 1 message per second
    v2 = unkai.client("sesv2", sandbox)
    sns, sqs = unkai.client("sns", sandbox), unkai.client("sqs", sandbox)
    topic = sns.create_topic(Name="suppressed-events")["TopicArn"]
    url, arn = new_queue(sqs)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    v2.create_configuration_set(ConfigurationSetName="supp")
    v2.create_configuration_set_event_destination(
        ConfigurationSetName="supp", EventDestinationName="sns",
        EventDestination={"Enabled": True, "MatchingEventTypes": ["BOUNCE"], "SnsDestination": {"TopicArn": topic}})
    v2.put_suppressed_destination(EmailAddress="buyer@example.com", Reason="BOUNCE")
    got = v2.get_suppressed_destination(EmailAddress="buyer@example.com")["SuppressedDestination"]
    assert got["Reason"] == "BOUNCE"
    after = unkai.mail_seq()
    v2.send_email(FromEmailAddress="shop@example.com", ConfigurationSetName="supp",
                  Destination={"ToAddresses": ["buyer@example.com"]}, Content={"Simple": SIMPLE})
    unkai.drain()
    assert [m for m in unkai.mail("buyer@example.com") if m["seq"] > after] == []
    (event,) = [json.loads(b) for b in receive_all(sqs, url)]
    assert event["bounce"]["bounceSubType"] == "OnAccountSuppressionList"
    v2.delete_suppressed_destination(EmailAddress="buyer@example.com")
    assert v2.list_suppressed_destinations()["SuppressedDestinationSummaries"] == []


def test_the_sandbox_sends_one_message_per_second_and_throttles_the_next(unkai):
    region = fresh_region()
    ses, v2 = unkai.client("ses", region), unkai.client("sesv2", region)
    ses.verify_domain_identity(Domain="rate.example")
    unkai.advance(61)
    assert ses.get_send_quota()["MaxSendRate"] == 1.0

    def two_in_a_row(send_first, send_second):
        # unkai's clock runs with the wall clock: a machine that took over a second between
        # the two calls saw no burst, so it tries again (a few times at most)
        for _ in range(3):
            unkai.advance(1.1)
            send_first()
            try:
                send_second()
            except ClientError as exc:
                return exc.response["Error"]
        raise AssertionError("two sends in a row were never throttled")

    def v1(to):
        return lambda: ses.send_email(Source="me@rate.example", Destination={"ToAddresses": [to]}, Message=SIMPLE)

    error = two_in_a_row(v1("a@rate.example"), v1("b@rate.example"))
    assert (error["Code"], error["Message"]) == ("Throttling", "Maximum sending rate exceeded.")
    error = two_in_a_row(v1("a@rate.example"), lambda: v2.send_email(
        FromEmailAddress="me@rate.example", Destination={"ToAddresses": ["b@rate.example"]},
        Content={"Simple": SIMPLE}))
    assert (error["Code"], error["Message"]) == ("TooManyRequestsException", "Maximum sending rate exceeded.")
    # one bulk call of two messages: the second entry is throttled, in the bulk answer
    unkai.advance(1.1)
    v2.create_email_template(TemplateName="rate", TemplateContent={"Subject": "Hi {{n}}", "Text": "x"})
    out = v2.send_bulk_email(FromEmailAddress="me@rate.example", DefaultContent={"Template": {
        "TemplateName": "rate", "TemplateData": '{"n": "0"}'}}, BulkEmailEntries=[
        {"Destination": {"ToAddresses": ["a@rate.example"]}}, {"Destination": {"ToAddresses": ["b@rate.example"]}}])
    assert [r["Status"] for r in out["BulkEmailEntryResults"]] in (["SUCCESS", "ACCOUNT_THROTTLED"],
                                                                  ["SUCCESS", "SUCCESS"])  # a > 1 s stall
    # the simulator does not count against the rate either
    unkai.advance(1.1)
    for _ in range(3):
        ses.send_email(Source="me@rate.example", Destination={"ToAddresses": ["success@simulator.amazonses.com"]},
                       Message=SIMPLE)


def test_configuration_set_events_reach_firehose_and_cloudwatch(unkai, sandbox):
    unkai.advance(1.1)
    v2 = unkai.client("sesv2", sandbox)
    s3, fh, cw = unkai.client("s3", sandbox), unkai.client("firehose", sandbox), unkai.client("cloudwatch", sandbox)
    s3.create_bucket(Bucket=f"ses-events-{sandbox}", CreateBucketConfiguration={"LocationConstraint": sandbox})
    stream = fh.create_delivery_stream(DeliveryStreamName="ses-events", ExtendedS3DestinationConfiguration={
        "RoleARN": "arn:aws:iam::000000000000:role/firehose", "BucketARN": f"arn:aws:s3:::ses-events-{sandbox}",
        "BufferingHints": {"IntervalInSeconds": 60, "SizeInMBs": 5}})["DeliveryStreamARN"]
    v2.create_configuration_set(ConfigurationSetName="streamed")
    v2.create_configuration_set_event_destination(
        ConfigurationSetName="streamed", EventDestinationName="firehose",
        EventDestination={"Enabled": True, "MatchingEventTypes": ["SEND", "DELIVERY"],
                          "KinesisFirehoseDestination": {"IamRoleArn": "arn:aws:iam::000000000000:role/ses",
                                                         "DeliveryStreamArn": stream}})
    v2.create_configuration_set_event_destination(
        ConfigurationSetName="streamed", EventDestinationName="metrics",
        EventDestination={"Enabled": True, "MatchingEventTypes": ["SEND", "BOUNCE"], "CloudWatchDestination": {
            "DimensionConfigurations": [
                {"DimensionName": "campaign", "DimensionValueSource": "MESSAGE_TAG", "DefaultDimensionValue": "none"},
                {"DimensionName": "X-Team", "DimensionValueSource": "EMAIL_HEADER", "DefaultDimensionValue": "ops"}]}})
    mid = v2.send_email(FromEmailAddress="shop@example.com", ConfigurationSetName="streamed",
                        Destination={"ToAddresses": ["success@simulator.amazonses.com"]},
                        EmailTags=[{"Name": "campaign", "Value": "spring"}],
                        Content={"Simple": dict(SIMPLE, Headers=[{"Name": "X-Team", "Value": "growth"}])})["MessageId"]
    unkai.advance(1.1)
    v2.send_email(FromEmailAddress="shop@example.com", ConfigurationSetName="streamed",
                  Destination={"ToAddresses": ["bounce@simulator.amazonses.com"]}, Content={"Simple": SIMPLE})
    unkai.drain()
    unkai.advance(61)  # past the delivery stream's buffering interval
    unkai.drain()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=f"ses-events-{sandbox}")["Contents"]]
    body = b"".join(s3.get_object(Bucket=f"ses-events-{sandbox}", Key=k)["Body"].read() for k in keys).decode()
    assert body.endswith("\n")
    records = [json.loads(line) for line in body.splitlines()]
    assert sorted(r["eventType"] for r in records if r["mail"]["messageId"] == mid) == ["Delivery", "Send"]
    assert sorted(r["eventType"] for r in records) == ["Delivery", "Send", "Send"]  # a bounce has no delivery
    metrics = {(m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"])))
               for m in cw.list_metrics(Namespace="AWS/SES")["Metrics"]}
    assert ("Send", (("X-Team", "growth"), ("campaign", "spring"))) in metrics
    assert ("Send", (("X-Team", "ops"), ("campaign", "none"))) in metrics
    assert ("Bounce", (("X-Team", "ops"), ("campaign", "none"))) in metrics
    assert not any(name == "Delivery" and dims for name, dims in metrics)  # not matched (account-wide: yes)


EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def test_cc_return_path_mail_from_forwarding_and_a_rejected_virus(unkai):
    region = fresh_region()
    ses, v2 = unkai.client("ses", region), unkai.client("sesv2", region)
    sns, sqs = unkai.client("sns", region), unkai.client("sqs", region)
    ses.verify_domain_identity(Domain="corp.example")
    unkai.advance(61)
    # Cc is a header and an envelope recipient; bounces go back to the Return-Path
    after = unkai.mail_seq()
    ses.send_email(Source="sales@corp.example", ReturnPath="bounces@corp.example",
                   Destination={"ToAddresses": ["bounce@simulator.amazonses.com"], "CcAddresses": ["boss@corp.example"]},
                   Message=SIMPLE)
    unkai.drain()
    (copy,) = unkai.mail("boss@corp.example")
    full = unkai.mail_message(copy["id"])
    assert full["cc"] == ["boss@corp.example"] and full["header_to"] == ["bounce@simulator.amazonses.com"]
    back = [m for m in unkai.mail("bounces@corp.example") if m["seq"] > after]
    assert [m["subject"] for m in back] == ["Delivery Status Notification (Failure)"]
    assert unkai.mail("sales@corp.example") == []
    # forwarding can be turned off only once both feedback topics are set; then nothing is mailed back
    with pytest.raises(ClientError) as exc:
        ses.set_identity_feedback_forwarding_enabled(Identity="corp.example", ForwardingEnabled=False)
    assert code(exc) == "InvalidParameterValue"
    topic = sns.create_topic(Name="corp-feedback")["TopicArn"]
    for kind in ("Bounce", "Complaint"):
        ses.set_identity_notification_topic(Identity="corp.example", NotificationType=kind, SnsTopic=topic)
    ses.set_identity_feedback_forwarding_enabled(Identity="corp.example", ForwardingEnabled=False)
    assert ses.get_identity_notification_attributes(Identities=["corp.example"])["NotificationAttributes"][
        "corp.example"]["ForwardingEnabled"] is False
    unkai.advance(1.1)
    ses.send_email(Source="sales@corp.example", ReturnPath="bounces@corp.example",
                   Destination={"ToAddresses": ["bounce@simulator.amazonses.com"]}, Message=SIMPLE)
    unkai.drain()
    assert len([m for m in unkai.mail("bounces@corp.example") if m["seq"] > after]) == 1  # still only the first
    # a MAIL FROM domain still pending refuses to send when told to reject on MX failure
    v2.put_email_identity_mail_from_attributes(EmailIdentity="corp.example", MailFromDomain="mail.corp.example",
                                               BehaviorOnMxFailure="REJECT_MESSAGE")
    unkai.advance(1.1)
    with pytest.raises(ClientError) as exc:
        ses.send_email(Source="sales@corp.example", Destination={"ToAddresses": ["x@corp.example"]}, Message=SIMPLE)
    assert code(exc) == "MailFromDomainNotVerifiedException"
    assert message(exc) == "The MAIL FROM domain mail.corp.example is not verified."
    unkai.advance(61)
    ses.send_email(Source="sales@corp.example", Destination={"ToAddresses": ["x@corp.example"]}, Message=SIMPLE)
    # no Source at all
    with pytest.raises(ClientError) as exc:
        ses.send_email(Source="", Destination={"ToAddresses": ["x@corp.example"]}, Message=SIMPLE)
    assert code(exc) == "InvalidParameterValue"
    # a message carrying a virus (EICAR's test file) is accepted, then rejected: a Reject event, no mail
    url, arn = new_queue(sqs)
    events_topic = sns.create_topic(Name="corp-events")["TopicArn"]
    sns.subscribe(TopicArn=events_topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    v2.create_configuration_set(ConfigurationSetName="scanned")
    v2.create_configuration_set_event_destination(
        ConfigurationSetName="scanned", EventDestinationName="sns",
        EventDestination={"Enabled": True, "MatchingEventTypes": ["SEND", "REJECT", "DELIVERY"],
                          "SnsDestination": {"TopicArn": events_topic}})
    unkai.advance(1.1)
    mid = v2.send_email(FromEmailAddress="sales@corp.example", ConfigurationSetName="scanned",
                        Destination={"ToAddresses": ["victim@corp.example"]}, Content={"Simple": {
                            "Subject": {"Data": "invoice"}, "Body": {"Text": {"Data": "see attached"}},
                            "Attachments": [{"FileName": "eicar.com", "RawContent": EICAR.encode()}]}})["MessageId"]
    unkai.drain()
    assert unkai.mail("victim@corp.example") == []
    got = [json.loads(b) for b in receive_all(sqs, url)]
    assert sorted(e["eventType"] for e in got) == ["Reject", "Send"]
    (reject,) = [e for e in got if e["eventType"] == "Reject"]
    assert reject["reject"] == {"reason": "Bad content"} and reject["mail"]["messageId"] == mid
    assert sum(p["Rejects"] for p in ses.get_send_statistics()["SendDataPoints"]) == 1
