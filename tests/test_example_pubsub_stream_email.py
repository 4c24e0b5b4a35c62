"""examples/pubsub-stream-email end to end: POST /publishtopic -> SNS -> SQS -> DynamoDB
-> stream (INSERT only) -> topic newItemOnDynamodb -> a confirmed email, read back with
``unkai mail`` as a user would."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from examples_support import (  # noqa: E402
    eventually, json_body, outputs, readme_commands, request, run_readme, start_example,
)

READER = "reader@example.com"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    server = start_example(tmp_path_factory.mktemp("pubsub") / "state", "pubsub-stream-email",
                           NotificationEmail=READER)
    try:
        yield server, outputs(server, "pubsub-stream-email")
    finally:
        server.stop()


def unkai_mail(server) -> list[dict]:
    """The mailbox through the CLI, the way the example's README shows it."""
    done = subprocess.run([sys.executable, "-m", "unkai", "mail", "--json", "--to", READER,
                           "--state-dir", str(server.state_dir)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_published_message_is_stored_and_mailed_once_confirmed(stack):
    server, out = stack
    # The email subscription waits for its confirmation, as on AWS.
    (confirmation,) = eventually(lambda: unkai_mail(server))
    assert confirmation["subject"] == "AWS Notification - Subscription Confirmation"
    link = re.search(r"http://\S+/_unkai/sns/confirmation\.html\?\S+", confirmation["text"]).group(0)
    status, _, page = request(link)
    assert status == 200 and b"Subscription confirmed!" in page

    status, headers, body = request(out["PublishUrl"], "POST",
                                    json.dumps({"message": "Hello from the pipeline"}).encode(),
                                    {"Content-Type": "application/json"})
    assert status == 200 and json_body(body) == "A new message has been published"

    table = server.resource("dynamodb").Table(out["ItemsTableName"])
    items = eventually(lambda: table.scan()["Items"])
    assert [i["message"] for i in items] == ["Hello from the pipeline"]

    mails = eventually(lambda: [m for m in unkai_mail(server) if m["subject"].startswith("Published From")])
    assert len(mails) == 1
    assert mails[0]["subject"] == "Published From: getDataFromDynamodbStream"
    assert mails[0]["text"].startswith("Hello from the pipeline\n")


def test_modifying_an_item_sends_no_mail(stack):
    """The stream mapping filters to INSERT: an update or a delete reaches no function."""
    server, out = stack
    table = server.resource("dynamodb").Table(out["ItemsTableName"])
    before = len(unkai_mail(server))
    (item,) = table.scan()["Items"]
    table.update_item(Key={"id": item["id"]}, UpdateExpression="SET message = :m",
                      ExpressionAttributeValues={":m": "edited"})
    table.delete_item(Key={"id": item["id"]})
    server.drain()
    assert len(unkai_mail(server)) == before


def test_a_browser_get_fails_as_on_aws(stack):
    server, out = stack
    status, _, body = request(out["PublishUrl"])
    assert status == 403 and json_body(body) == {"message": "Missing Authentication Token"}


def test_the_readme_curl_command_works_as_written(stack, tmp_path):
    """The README's command posts to the PublishUrl output as it is."""
    import shutil

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    server, out = stack
    line = next(x for x in readme_commands("pubsub-stream-email", "curl -X POST") if x.startswith("curl"))
    done = run_readme([line.replace("<PublishUrl from the outputs>", out["PublishUrl"])], server, tmp_path, tmp_path)
    assert done.returncode == 0 and "A new message has been published" in done.stdout, done.stdout + done.stderr
