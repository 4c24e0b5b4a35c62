"""SES's SMTP interface and receiving: smtplib sends through unkai's SMTP listener with
STARTTLS and the SMTP password AWS derives from the secret key (and so does Django's SMTP
backend, unchanged), under the same sandbox
rules as the API; garbage gets SMTP errors while the listener keeps serving; mail for a
verified domain runs the active receipt rule set's S3 and SNS actions; with
``UNKAI_SMTP_RELAY`` every stored mail is also relayed to the SMTP server it names."""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
import threading
from email.message import EmailMessage

import pytest

from tests.ses_support import verify
from unkai.services.ses.smtp import smtp_password
from unkai.testing import UnkaiServer, new_queue, receive_all

KEY, SECRET = "testing", "testing"


class Catcher:
    """A second SMTP server standing in for the user's own (a Mailpit, say)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        with self.arrived:
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, subject: bytes, timeout: float = 20) -> tuple[str, list[str], bytes]:
        with self.arrived:
            found = self.arrived.wait_for(
                lambda: [m for m in self.received if b"Subject: " + subject + b"\r\n" in m[2]], timeout)
        assert found, f"nothing relayed with subject {subject!r}: {self.received}"
        return found[0]


@pytest.fixture(scope="module")
def relay():
    from aiosmtpd.controller import Controller

    with socket.socket() as s:  # a free port for the catcher
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    catcher = Catcher()
    controller = Controller(catcher, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield catcher, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, relay):
    server = UnkaiServer(tmp_path_factory.mktemp("smtp") / "state", "--access-key", KEY, "--secret-key", SECRET,
                         env={"UNKAI_SMTP_PORT": "0", "UNKAI_SMTP_RELAY": f"127.0.0.1:{relay[1]}"}).start()
    try:
        verify(server, server.client("ses"), "app@example.com")
        yield server
    finally:
        server.stop()


def smtp(server) -> smtplib.SMTP:
    where = server.get("/_unkai/ses/smtp")
    client = smtplib.SMTP(where["host"], where["port"], timeout=30)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    client.starttls(context=ctx)
    client.login(KEY, smtp_password(SECRET, "us-east-1"))
    return client


def message(to: str, subject: str = "via smtp") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "App <app@example.com>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("sent with smtplib")
    return msg


def test_smtplib_sends_with_starttls_and_the_derived_smtp_password(server):
    after = server.mail_seq()
    with smtp(server) as client:
        client.send_message(message("app@example.com"))
        code, reply = client.noop()
        assert code == 250
    (mail,) = server.wait_for_mail(to="app@example.com", subject="via smtp", after=after)
    assert mail["origin"] == "ses" and mail["message_id"].startswith("0100")
    assert mail["text"].strip() == "sent with smtplib"


def test_the_smtp_password_is_derived_as_awss_published_vector_says():
    """AWS's documented derivation (HMAC-SHA256 chain over "11111111", the region, "ses",
    "aws4_request", "SendRawEmail", version byte 0x04, base64), checked against a published
    vector: the AWS SDK for PHP's test (tests/Ses/SesClientTest.php), made with the sample
    code of AWS's "Obtaining Amazon SES SMTP credentials", for AWS's example secret key in
    us-east-2. The region is part of the key: another region gives another password."""
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert smtp_password(secret, "us-east-2") == "BMPPgbAHoFVbze1Ud0oA5uNdXRwUXUZ+qOwphGJbl/cS"
    assert smtp_password(secret, "us-east-1") != smtp_password(secret, "us-east-2")


def test_a_wrong_password_and_the_sandbox_are_refused_as_ses_refuses_them(server):
    where = server.get("/_unkai/ses/smtp")
    with smtplib.SMTP(where["host"], where["port"], timeout=30) as client:
        client.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.auth("PLAIN", lambda challenge=None: f"\0{KEY}\0not-the-password")
        with pytest.raises(smtplib.SMTPSenderRefused):  # AUTH is required when credentials are set
            client.send_message(message("app@example.com"))
    server.advance(1.1)
    with smtp(server) as client:
        with pytest.raises(smtplib.SMTPDataError) as exc:
            client.send_message(message("stranger@example.net"))
    assert exc.value.smtp_code == 554
    assert b"Email address is not verified" in exc.value.smtp_error


def test_garbage_gets_smtp_errors_and_the_listener_keeps_serving(server):
    where = server.get("/_unkai/ses/smtp")
    with socket.create_connection((where["host"], where["port"]), timeout=10) as sock:
        sock.recv(1024)  # the greeting
        sock.sendall(b"\x00\xff garbage that is no command\r\n")
        assert sock.recv(1024)[:1] == b"5"
    server.advance(1.1)
    with smtp(server) as client:
        client.send_message(message("success@simulator.amazonses.com", "after garbage"))


def test_mail_for_a_verified_domain_runs_the_active_receipt_rules(server):
    ses, s3 = server.client("ses"), server.client("s3")
    sns, sqs = server.client("sns"), server.client("sqs")
    ses.verify_domain_identity(Domain="inbound.example")
    server.advance(61)
    s3.create_bucket(Bucket="inbound-mail")
    topic = sns.create_topic(Name="inbound")["TopicArn"]
    url, arn = new_queue(sqs)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    ses.create_receipt_rule_set(RuleSetName="main")
    ses.create_receipt_rule(RuleSetName="main", Rule={
        "Name": "store", "Enabled": True, "Recipients": ["inbound.example"],
        "Actions": [{"S3Action": {"BucketName": "inbound-mail", "ObjectKeyPrefix": "in/"}},
                    {"SNSAction": {"TopicArn": topic, "Encoding": "UTF-8"}},
                    {"StopAction": {"Scope": "RuleSet"}}]})
    ses.create_receipt_rule(RuleSetName="main", After="store", Rule={
        "Name": "never", "Enabled": True, "Actions": [{"SNSAction": {"TopicArn": topic}}]})
    ses.set_active_receipt_rule_set(RuleSetName="main")
    assert [r["Name"] for r in ses.describe_active_receipt_rule_set()["Rules"]] == ["store", "never"]
    with smtp(server) as client:
        client.send_message(message("support@inbound.example", "help me"))
    server.drain()
    (note,) = [json.loads(b) for b in receive_all(sqs, url)]  # the Stop action kept "never" from running
    assert note["notificationType"] == "Received" and note["mail"]["commonHeaders"]["subject"] == "help me"
    assert note["receipt"]["recipients"] == ["support@inbound.example"]
    assert "sent with smtplib" in note["content"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="inbound-mail")["Contents"]]
    assert keys == [f"in/{note['mail']['messageId']}"]
    body = s3.get_object(Bucket="inbound-mail", Key=keys[0])["Body"].read()
    assert b"Subject: help me" in body
    with pytest.raises(Exception):
        ses.delete_receipt_rule_set(RuleSetName="main")  # the active one cannot be deleted


def test_every_stored_mail_is_relayed_to_the_smtp_server_the_user_names(server, relay):
    catcher, _ = relay
    server.advance(1.1)
    ses = server.client("ses")
    mid = ses.send_email(Source="App <app@example.com>", Destination={
        "ToAddresses": ["app@example.com"], "BccAddresses": ["success@simulator.amazonses.com"]},
        Message={"Subject": {"Data": "relayed"}, "Body": {"Text": {"Data": "also in Mailpit"}}})["MessageId"]
    mail_from, rcpts, raw = catcher.wait_for(b"relayed")
    assert mail_from == "app@example.com"
    assert sorted(rcpts) == ["app@example.com", "success@simulator.amazonses.com"]  # Bcc in the envelope only
    assert f"<{mid}@email.amazonses.com>".encode() in raw and b"Bcc" not in raw
    assert server.mail_message(mid)["subject"] == "relayed"  # and still kept locally


RECEIVER = """
import json


def handler(event, context):
    record = event["Records"][0]
    print("RECEIVED " + json.dumps(record))
    recipients = record["ses"]["receipt"]["recipients"]
    return {"disposition": "STOP_RULE_SET" if recipients[0].startswith("sync@") else "CONTINUE"}
"""


def test_received_mail_runs_lambda_and_bounce_actions(server):
    from lambda_code import deploy

    ses, lam, logs = server.client("ses"), server.client("lambda"), server.client("logs")
    sns, sqs = server.client("sns"), server.client("sqs")
    ses.verify_domain_identity(Domain="inbound2.example")
    server.advance(61)
    name = deploy(lam, RECEIVER)
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    topic = sns.create_topic(Name="inbound2")["TopicArn"]
    url, queue = new_queue(sqs)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue, Attributes={"RawMessageDelivery": "true"})
    ses.create_receipt_rule_set(RuleSetName="functions")
    rules = [
        {"Name": "sync", "Recipients": ["sync@inbound2.example"], "Actions": [
            {"LambdaAction": {"FunctionArn": arn, "InvocationType": "RequestResponse"}}]},
        {"Name": "async", "Recipients": ["async@inbound2.example"], "Actions": [
            {"LambdaAction": {"FunctionArn": arn, "InvocationType": "Event"}}]},
        {"Name": "bounce", "Recipients": ["nobody@inbound2.example"], "Actions": [
            {"BounceAction": {"Sender": "mailer-daemon@inbound2.example", "SmtpReplyCode": "550",
                              "StatusCode": "5.1.1", "Message": "No such user", "TopicArn": topic}},
            {"StopAction": {"Scope": "RuleSet"}}]},
        {"Name": "notify", "Recipients": ["inbound2.example"], "Actions": [{"SNSAction": {"TopicArn": topic}}]},
    ]
    after = None
    for rule in rules:
        ses.create_receipt_rule(RuleSetName="functions", Rule=dict(rule, Enabled=True),
                                **({"After": after} if after else {}))
        after = rule["Name"]
    ses.set_active_receipt_rule_set(RuleSetName="functions")
    mail_seq = server.mail_seq()
    with smtp(server) as client:
        for to in ("sync", "async", "nobody"):
            client.send_message(message(f"{to}@inbound2.example", f"for {to}"))
    server.drain()
    notes = [json.loads(b) for b in receive_all(sqs, url)]
    by_action = sorted((n["receipt"]["action"]["type"], n["receipt"]["recipients"][0]) for n in notes)
    # sync's function answered STOP_RULE_SET, nobody's rule stopped the set: only async reached "notify"
    assert by_action == [("Bounce", "nobody@inbound2.example"), ("SNS", "async@inbound2.example")]
    (bounced,) = server.wait_for_mail(to="app@example.com", subject="Delivery Status Notification (Failure)",
                                      after=mail_seq)
    assert "550 5.1.1 No such user" in bounced["text"] and bounced["from"] == "mailer-daemon@inbound2.example"
    seen = [json.loads(e["message"].split("RECEIVED ", 1)[1]) for e in logs.filter_log_events(
        logGroupName=f"/aws/lambda/{name}", filterPattern="RECEIVED")["events"]]
    kinds = sorted((r["ses"]["receipt"]["action"]["invocationType"], r["ses"]["mail"]["destination"][0])
                   for r in seen)
    assert kinds == [("Event", "async@inbound2.example"), ("RequestResponse", "sync@inbound2.example")]
    assert all(r["eventSource"] == "aws:ses" and r["ses"]["mail"]["commonHeaders"]["from"] == ["App <app@example.com>"]
               for r in seen)


DJANGO_APP = """
import sys

from django.conf import settings

host, port, user, password = sys.argv[1:5]
settings.configure(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST=host,
                   EMAIL_PORT=int(port), EMAIL_HOST_USER=user, EMAIL_HOST_PASSWORD=password, EMAIL_USE_TLS=False,
                   DEFAULT_FROM_EMAIL="App <app@example.com>")
import django

django.setup()
from django.core.mail import EmailMultiAlternatives

msg = EmailMultiAlternatives("from django", "plain part", to=["app@example.com"])
msg.attach_alternative("<p>html part</p>", "text/html")
msg.attach("report.csv", "a,b\\n1,2\\n", "text/csv")
print(msg.send())
"""


def test_djangos_smtp_backend_sends_unchanged(server):
    import subprocess
    import sys

    where = server.get("/_unkai/ses/smtp")
    server.advance(1.1)
    after = server.mail_seq()
    done = subprocess.run([sys.executable, "-c", DJANGO_APP, where["host"], str(where["port"]), KEY,
                           smtp_password(SECRET, "us-east-1")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "1", done.stderr
    (mail,) = server.wait_for_mail(to="app@example.com", subject="from django", after=after)
    assert mail["origin"] == "ses" and mail["message_id"].startswith("0100")
    full = server.mail_message(mail["id"])
    assert full["text"].strip() == "plain part" and full["html"].strip() == "<p>html part</p>"
    assert [a["filename"] for a in full["attachments"]] == ["report.csv"]
    # a wrong password is refused to Django as to smtplib
    server.advance(1.1)
    done = subprocess.run([sys.executable, "-c", DJANGO_APP, where["host"], str(where["port"]), KEY, "wrong"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "SMTPAuthenticationError" in done.stderr
