"""examples/mailing-list end to end (the book's chapter 6): an upload queues one message
per address, the 5-minute schedule (on unkai's clock) fans the queue out to the sender,
each address gets exactly one mail through SES (us-east-1, in the sandbox, to the mailbox
simulator), duplicates are skipped, and the simulator's bounces come back through SNS
to mark addresses so the next mailing skips them."""

from __future__ import annotations

import pytest

from examples_support import EXAMPLES, follow_verification, outputs, reader_steps, run_readme
from unkai.testing import UnkaiServer

REGION = "ap-northeast-1"
SENDER = "list@example.com"
SIM = "@simulator.amazonses.com"
GOOD = [f"success+{i}{SIM}" for i in range(21)] + [f"ooto{SIM}", f"complaint{SIM}"]
BOUNCING = [f"bounce{SIM}", f"suppressionlist{SIM}"]
BROKEN = [f"success+old{i}{SIM}" for i in range(2)]  # haserror = 1 before the first mailing
BODY = "週刊ニュース\n\n{username}様\n\n今週のお知らせです。\n以上です。\n"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("mailing") / "state"
    # What the book does by hand before deploying, as the README's commands do it: verify the
    # sender (its reader follows the link) and create the topic SES publishes bounces to.
    home = tmp_path_factory.mktemp("home")
    with UnkaiServer(state, region=REGION) as setup:
        verifying, rest = reader_steps("mailing-list", "verify-email-identity", pause_after=("unkai mail ",))
        done = run_readme(verifying, setup, EXAMPLES.parent, home)
        assert done.returncode == 0 and "Email Address Verification Request" in done.stdout, done.stdout + done.stderr
        follow_verification(setup, SENDER)
        done = run_readme(rest, setup, EXAMPLES.parent, home)
        assert done.returncode == 0, done.stdout + done.stderr
        topic = "arn:aws:sns:us-east-1:000000000000:bounce-notifications"
        attributes = setup.client("ses", "us-east-1").get_identity_notification_attributes(Identities=[SENDER])
        assert attributes["NotificationAttributes"][SENDER]["BounceTopic"] == topic
    server = UnkaiServer(state, str(EXAMPLES / "mailing-list"), "--parameter-overrides", f"MailFrom={SENDER}",
                         "--parameter-overrides", f"BounceTopicArn={topic}", region=REGION).start(timeout=120)
    try:
        table = server.resource("dynamodb", REGION).Table("mailaddress")
        for i, email in enumerate(GOOD + BOUNCING + BROKEN):
            table.put_item(Item={"email": email, "username": f"user{i}", "haserror": int(email in BROKEN)})
        yield server, outputs(server, "mailing-list")
    finally:
        server.stop()


def mailing(server, out, key: str) -> None:
    """Upload a body, then let the schedule run until the queue is empty."""
    server.client("s3", REGION).put_object(Bucket=out["MailBodyBucketName"], Key=key, Body=BODY.encode())
    server.drain(60)
    mailing_rest(server, out)


def sent_to(server, after: int) -> list[str]:
    return [to for m in server.mail() if m["seq"] > after and m["from"] == SENDER for to in m["to"]]


def test_each_address_gets_one_mail_and_bounces_mark_errors(stack):
    server, out = stack
    sqs = server.client("sqs", REGION)
    table = server.resource("dynamodb", REGION).Table("mailaddress")
    server.client("s3", REGION).put_object(Bucket=out["MailBodyBucketName"], Key="example.txt",
                                           Body=BODY.encode())
    server.drain(60)
    attrs = sqs.get_queue_attributes(QueueUrl=out["QueueUrl"], AttributeNames=["ApproximateNumberOfMessages"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == str(len(GOOD + BOUNCING))
    peek = sqs.receive_message(QueueUrl=out["QueueUrl"], MessageAttributeNames=["All"], VisibilityTimeout=0)
    assert set(peek["Messages"][0]["MessageAttributes"]) == {"username", "bucketname", "filename"}
    assert all(table.get_item(Key={"email": e})["Item"]["issend"] == 0 for e in GOOD + BOUNCING)
    after = server.mail_seq()
    mailing_rest(server, out)
    sent = sent_to(server, after)
    assert sorted(sent) == sorted(GOOD + BOUNCING)  # exactly one each, none to haserror = 1
    assert all(table.get_item(Key={"email": e})["Item"]["issend"] == 1 for e in GOOD + BOUNCING)
    one = next(m for m in server.mail(f"success+0{SIM}") if m["seq"] > after)
    assert one["subject"] == "週刊ニュース" and "今週のお知らせです。" in one["text"]
    # the bounce round trip: SES -> SNS (us-east-1) -> bounce -> the ap-northeast-1 table
    for email in BOUNCING:
        assert table.get_item(Key={"email": email})["Item"]["haserror"] == 1
    assert table.get_item(Key={"email": GOOD[0]})["Item"]["haserror"] == 0

    # a duplicated message is skipped, not mailed twice
    sqs.send_message(QueueUrl=out["QueueUrl"], MessageBody=GOOD[0], MessageAttributes={
        "username": {"DataType": "String", "StringValue": "dup"},
        "bucketname": {"DataType": "String", "StringValue": out["MailBodyBucketName"]},
        "filename": {"DataType": "String", "StringValue": "example.txt"}})
    before = server.mail_seq()
    mailing_rest(server, out)
    assert sent_to(server, before) == []
    logs = server.client("logs", REGION).filter_log_events(logGroupName="/aws/lambda/sendmail",
                                                            filterPattern='"Resend Skip"')
    assert logs["events"]

    # the next mailing skips the addresses that bounced
    before = server.mail_seq()
    mailing(server, out, "next.txt")
    assert sorted(sent_to(server, before)) == sorted(GOOD)


def mailing_rest(server, out) -> None:
    """Advance the clock past the 5-minute schedule until the queue is empty."""
    sqs = server.client("sqs", REGION)
    for _ in range(6):
        server.advance(300)
        server.drain(60)
        attrs = sqs.get_queue_attributes(QueueUrl=out["QueueUrl"], AttributeNames=["All"])["Attributes"]
        if attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0":
            return
    raise AssertionError(f"the queue did not drain: {attrs}")
