"""Test isolation: `POST /_unkai/reset` (``unkai.reset()``, the ``unkai_clean`` fixture)
puts a deployed stack back to just after its deploy, with nothing an earlier test made
left over (items, messages, objects and their files, logs, mail), and the stack works
as before; ``empty`` removes the stack too; moto's reset endpoint answers as moto's."""

from __future__ import annotations

import json
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))

from examples_support import eventually, outputs, request, start_example  # noqa: E402

READER = "reader@example.com"
STACK = "pubsub-stream-email"


@pytest.fixture(scope="module")
def unkai(tmp_path_factory):
    """This module's own server with a stack (``unkai_clean`` resets this one)."""
    server = start_example(tmp_path_factory.mktemp("reset") / "state", STACK, NotificationEmail=READER)
    try:
        yield server
    finally:
        server.stop()


def confirm_and_publish(server, out: dict, text: str) -> None:
    mail = eventually(lambda: [m for m in server.mail() if "Confirmation" in m["subject"]])
    link = re.search(r"http://\S+/_unkai/sns/confirmation\.html\?\S+", mail[0]["text"]).group(0)
    assert request(link)[0] == 200
    status, _, _ = request(out["PublishUrl"], "POST", json.dumps({"message": text}).encode(),
                           {"Content-Type": "application/json"})
    assert status == 200


def state_of(server, out: dict) -> dict:
    """Everything a test could leave behind, as a comparable value."""
    logs = server.client("logs")
    groups = sorted(g["logGroupName"] for g in logs.describe_log_groups()["logGroups"])
    return {
        "items": server.resource("dynamodb").Table(out["ItemsTableName"]).scan()["Items"],
        "tables": server.client("dynamodb").list_tables()["TableNames"],
        "queues": sorted(server.client("sqs").list_queues().get("QueueUrls", [])),
        "buckets": [b["Name"] for b in server.client("s3").list_buckets()["Buckets"]],
        "mail": [m["subject"] for m in server.mail()],
        "log events": {g: len(logs.filter_log_events(logGroupName=g)["events"]) for g in groups},
        "inbox": server.get("/_unkai/inbox"),
        "files": sorted(str(p.relative_to(server.state_dir)) for p in (server.state_dir / "s3").rglob("*")
                        if p.is_file()) if (server.state_dir / "s3").exists() else [],
    }


def test_a_reset_leaves_nothing_of_what_a_test_made_and_the_stack_works_again(unkai):
    out = outputs(unkai, STACK)
    before = state_of(unkai, out)
    assert before["items"] == [] and before["mail"] == ["AWS Notification - Subscription Confirmation"]

    # a test's worth of everything: items, mail, logs, a queue with a message, objects (one in a file)
    confirm_and_publish(unkai, out, "first")
    eventually(lambda: [m for m in unkai.mail() if m["subject"].startswith("Published From")])
    sqs, s3 = unkai.client("sqs"), unkai.client("s3")
    url = sqs.create_queue(QueueName="left-over")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="stale")
    s3.create_bucket(Bucket="left-over")
    s3.put_object(Bucket="left-over", Key="big", Body=b"x" * 300_000)
    s3.put_object(Bucket="left-over", Key="small", Body=b"y")
    urllib.request.urlopen(urllib.request.Request(unkai.url("/_unkai/inbox/hook"), data=b"{}", method="POST"))
    dirty = state_of(unkai, out)
    assert dirty != before and dirty["files"] and dirty["items"]

    answer = unkai.reset()
    assert answer["reset"] is True and answer["ms"] > 0
    assert state_of(unkai, out) == before
    with pytest.raises(ClientError, match="NonExistentQueue"):
        sqs.get_queue_url(QueueName="left-over")

    # the stack's resources are the deployed ones and work as after a fresh start
    confirm_and_publish(unkai, out, "second")
    items = eventually(lambda: unkai.resource("dynamodb").Table(out["ItemsTableName"]).scan()["Items"])
    assert [i["message"] for i in items] == ["second"]
    eventually(lambda: [m for m in unkai.mail() if m["subject"].startswith("Published From")])


def test_unkai_clean_starts_each_test_from_the_deployed_stack(unkai_clean):
    out = outputs(unkai_clean, STACK)
    assert unkai_clean.resource("dynamodb").Table(out["ItemsTableName"]).scan()["Items"] == []
    assert [m["subject"] for m in unkai_clean.mail()] == ["AWS Notification - Subscription Confirmation"]


def test_moto_api_reset_is_answered_as_moto_answers_it(unkai):
    unkai.client("sqs").create_queue(QueueName="moto-style")
    assert unkai.post("/moto-api/reset") == {"status": "ok"}
    assert "moto-style" not in str(unkai.client("sqs").list_queues().get("QueueUrls", []))
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(unkai.url("/moto-api/reset"), timeout=10)
    assert err.value.code == 400 and json.loads(err.value.read()) == {"Error": "Need to POST to reset Moto"}


def test_an_empty_reset_removes_the_stack_too(unkai):
    assert unkai.reset(empty=True)["empty"] is True
    with pytest.raises(ClientError, match="does not exist"):
        unkai.client("cloudformation").describe_stacks(StackName=STACK)
    assert unkai.client("dynamodb").list_tables()["TableNames"] == []
    assert unkai.mail() == [] and unkai.client("lambda").list_functions()["Functions"] == []
    unkai.client("sqs").create_queue(QueueName="after-empty")  # and it serves as a new cloud
    unkai.reset()  # the starting point is empty now
    assert unkai.client("sqs").list_queues().get("QueueUrls", []) == []
