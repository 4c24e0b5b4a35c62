"""examples/qa-form end to end: the REST API's mapping template, the publisher, SNS
fan-out to three queues, the Teams, Backlog and DynamoDB consumers, the table's stream
pushed to the instructor's WebSocket, and a webhook outage ending in the DLQs."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser import chromium  # noqa: E402
from examples_support import (  # noqa: E402
    EXAMPLES, browser_url, eventually, json_body, outputs, readme_commands, request, run_readme, start_example,
)

QUESTION = "ラムダの同時実行数はnewline何で決まりますか？newlineアカウント全体の上限との関係も知りたいです。" * 2


@pytest.fixture(scope="module")
def qa(tmp_path_factory):
    # no parameter overrides, on a port other than 4566: the webhook defaults
    # (http://localhost:4566/_unkai/inbox/...) still reach this unkai's inbox
    server = start_example(tmp_path_factory.mktemp("qa") / "state", "qa-form")
    assert server.port != 4566
    try:
        yield server, outputs(server, "qa-form")
    finally:
        server.stop()


def ask(question_url: str, project_id: str, text: str) -> tuple[int, bytes]:
    query = urllib.parse.urlencode({"project_id": project_id, "contact_detail": text})
    status, _, body = request(f"{question_url}?{query}", "POST")
    return status, body


def function_log(server, logical_id: str) -> str:
    physical = server.client("cloudformation").describe_stack_resource(
        StackName="qa-form", LogicalResourceId=logical_id)["StackResourceDetail"]["PhysicalResourceId"]
    events = server.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{physical}")["events"]
    return "".join(e["message"] for e in events)


def test_a_question_reaches_teams_backlog_the_table_and_the_instructor(qa):
    server, out = qa
    with connect(out["LiveUrl"]) as instructor:
        status, body = ask(out["QuestionApiUrl"], "P-42", QUESTION)
        assert status == 200, body
        assert json_body(body) == {"result": "ok"}
        pushed = json.loads(instructor.recv(timeout=20))

    # The instructor's page got the new row from the table's stream.
    assert pushed["type"] == "question"
    row = pushed["question"]
    assert row["project_id"] == "P-42" and row["contact_detail"] == QUESTION
    assert row["source_ip"] == "127.0.0.1" and len(row["submit_datetime"]) == 20

    # (a) the Teams card: line breaks restored, then the project id.
    teams = eventually(lambda: server.inbox("teams"))
    assert len(teams) == 1 and teams[0]["method"] == "POST"
    card = teams[0]["json"]
    assert card["title"] == "受講者からの質問"
    assert card["text"] == QUESTION.replace("newline", "\n") + "  P-42"

    # (b) the Backlog issue, with the API key in the query and the ids from the environment.
    backlog = eventually(lambda: server.inbox("backlog"))
    assert len(backlog) == 1 and backlog[0]["query"] == "apiKey=local-demo-key"
    issue = backlog[0]["json"]
    assert issue["summary"] == QUESTION.replace("newline", "")[:50]
    assert issue["description"] == QUESTION.replace("newline", "\n")
    assert (issue["projectId"], issue["issueTypeId"], issue["priorityId"], issue["assigneeId"],
            issue["milestoneId"]) == ("1000", "2000", "3", "4000", ["5000"])

    # (c) the row in DynamoDB, with when and from where.
    items = server.resource("dynamodb").Table("qa-questions").scan()["Items"]
    assert [(i["project_id"], i["contact_detail"], i["source_ip"]) for i in items] == [
        ("P-42", QUESTION, "127.0.0.1")]
    assert items[0]["submit_datetime"] == row["submit_datetime"]

    # Nothing failed, so nothing is waiting in the dead-letter queues.
    sqs = server.client("sqs")
    for key in ("TeamsDeadLetterQueueUrl", "BacklogDeadLetterQueueUrl"):
        attrs = sqs.get_queue_attributes(QueueUrl=out[key], AttributeNames=["ApproximateNumberOfMessages"])
        assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_unkai_logs_takes_a_functions_logical_id(qa):
    server, _ = qa
    done = subprocess.run([sys.executable, "-m", "unkai", "logs", "PublisherFunction", "--state-dir",
                           str(server.state_dir)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "REPORT RequestId:" in done.stdout and "'project_id': 'P-42'" in done.stdout


def test_the_form_and_its_config_are_served_from_the_bucket_website_in_japanese_and_english(qa):
    server, out = qa
    site = out["FormUrl"]
    status, headers, page = request(site + "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "質問" in page.decode() and "Your question" in page.decode()  # English beside the Japanese
    assert "Questions from students" in request(site + "/instructor.html")[2].decode()
    status, _, script = request(site + "/config.js")
    config = json.loads(script.decode().split("=", 1)[1].rstrip().rstrip(";"))
    assert config == {"questionUrl": out["QuestionApiUrl"], "liveUrl": out["LiveUrl"]}


def test_a_get_is_refused_as_on_aws(qa):
    server, out = qa
    status, _, body = request(out["QuestionApiUrl"])
    assert status == 403 and json_body(body) == {"message": "Missing Authentication Token"}


def test_a_student_asks_in_the_browser_and_the_instructor_page_shows_it(qa):
    """Headless Chromium: the form at its website's browser URL (``*.localhost``) posts
    across origins to the API; the instructor page, open in another tab at its output URL
    as it is, shows the question pushed over its WebSocket."""
    server, out = qa
    with chromium() as browser:
        instructor = browser.new_page()
        instructor.goto(out["InstructorUrl"])
        instructor.wait_for_function("document.getElementById('connection').textContent.startsWith('接続しました')",
                                     timeout=15000)
        student = browser.new_page()
        student.goto(browser_url(server, "FormUrl"))
        student.fill("#project_id", "BROWSER-1")
        student.fill("#contact_detail", "S3 のバージョニングは\nいつ有効にすべきですか？")
        student.click("#ask")
        student.wait_for_function("document.getElementById('status').textContent.startsWith('質問を送信しました')",
                                  timeout=15000)
        shown = instructor.locator("li.question", has_text="BROWSER-1")
        shown.wait_for(timeout=15000)
        assert shown.locator("pre").inner_text() == "S3 のバージョニングは\nいつ有効にすべきですか？"
    card = eventually(lambda: [e for e in server.inbox("teams") if e["json"]["text"].endswith("BROWSER-1")])
    assert card[0]["json"]["text"] == "S3 のバージョニングは\nいつ有効にすべきですか？  BROWSER-1"


def test_the_readme_commands_work_as_written(qa, tmp_path):
    """After a question, the README's commands (inbox, `eval "$(unkai env)"`, the AWS CLI,
    logs) run in a clean shell as written and show what they say they show."""
    server, out = qa
    assert ask(out["QuestionApiUrl"], "README-1", "README の手順は動きますか？")[0] == 200
    eventually(lambda: server.resource("dynamodb").Table("qa-questions").scan()["Items"])
    eventually(lambda: server.inbox("backlog") and server.inbox("teams"))
    lines = readme_commands("qa-form", "unkai inbox teams")
    assert any(line.startswith("aws dynamodb scan") for line in lines)
    done = run_readme(lines, server, EXAMPLES.parent, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "受講者からの質問" in done.stdout and "projectId" in done.stdout  # the Teams card, the Backlog issue
    assert "README-1" in done.stdout and '"Count"' in done.stdout  # the table's scan
    assert "START RequestId" in done.stdout  # PublisherFunction's log


def test_a_webhook_outage_ends_in_the_dead_letter_queues(tmp_path_factory):
    """Teams and Backlog unreachable: each message is received three times, then moved to
    its DLQ; the question is still stored."""
    closed = "http://127.0.0.1:9/"  # the discard port: nothing listens on loopback
    server = start_example(tmp_path_factory.mktemp("qa-outage") / "state", "qa-form",
                           TeamsWebhookUrl=closed + "teams", BacklogUrl=closed + "backlog?apiKey=")
    try:
        out = outputs(server, "qa-form")
        status, _ = ask(out["QuestionApiUrl"], "P-7", "届きますか？")
        assert status == 200
        sqs = server.client("sqs")

        def dead_letters(key: str) -> list[dict]:
            return sqs.receive_message(QueueUrl=out[key], AttributeNames=["All"], VisibilityTimeout=0,
                                       WaitTimeSeconds=0).get("Messages", [])

        for _ in range(8):  # each round: the visibility timeout (30 s) passes, the consumer fails again
            server.drain(timeout=30)
            if dead_letters("TeamsDeadLetterQueueUrl") and dead_letters("BacklogDeadLetterQueueUrl"):
                break
            server.advance(31)
        for key in ("TeamsDeadLetterQueueUrl", "BacklogDeadLetterQueueUrl"):
            [message] = dead_letters(key)
            envelope = json.loads(message["Body"])
            assert envelope["Type"] == "Notification" and envelope["Subject"] == "question"
            assert json.loads(envelope["Message"])["contact_detail"] == "届きますか？"
        assert function_log(server, "TeamsFunction").count("Status: error") == 3
        assert function_log(server, "BacklogFunction").count("Status: error") == 3
        stored = server.resource("dynamodb").Table("qa-questions").scan()["Items"]
        assert [i["contact_detail"] for i in stored] == ["届きますか？"]
        assert server.inbox("teams") == [] and server.inbox("backlog") == []
    finally:
        server.stop()
