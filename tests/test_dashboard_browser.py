"""The dashboard in headless Chromium against the flagship (examples/qa-form), one server
and one browser for the module: a question is POSTed and the flow view lights the chain up
and shows its trace; the mailbox renders a mail whose link works; a DLQ is redriven; an
item is edited; keyboard navigation and labels. Screenshots of each view are saved in the
test's temporary directory (its path is printed)."""

from __future__ import annotations

import json
import sys
import urllib.parse
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser import chromium  # noqa: E402
from examples_support import eventually, outputs, request, start_example  # noqa: E402

from unkai.testing import new_queue  # noqa: E402


@pytest.fixture(scope="module")
def qa(tmp_path_factory):
    server = start_example(tmp_path_factory.mktemp("dash") / "state", "qa-form",
                           TeamsWebhookUrl="{endpoint}/_unkai/inbox/teams",
                           BacklogUrl="{endpoint}/_unkai/inbox/backlog?apiKey=")
    try:
        yield server, outputs(server, "qa-form")
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dashboard-screenshots")
    print(f"dashboard screenshots in {folder}")
    return folder


@pytest.fixture()
def page(browser, qa):
    # bypass_csp: Playwright evaluates wait_for_function strings, which the pages' CSP forbids
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, bypass_csp=True)
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    yield p
    context.close()
    assert not errors, errors  # no script error on any page


def snap(page, path: Path) -> None:
    """A screenshot for people to look at; a slow machine that cannot take one in time fails nothing."""
    try:
        page.screenshot(path=str(path), full_page=True, timeout=15000)
    except Exception as exc:  # playwright's TimeoutError: waiting for fonts under load
        print(f"screenshot {path.name} not taken: {exc}")


def ask(out: dict, project: str, text: str) -> None:
    query = urllib.parse.urlencode({"project_id": project, "contact_detail": text})
    status, _, body = request(f"{out['QuestionApiUrl']}?{query}", "POST")
    assert status == 200, body


def lit(edge_from: str, edge_to: str) -> str:
    return (f"(() => {{ const p = document.querySelector('#flow .edge[data-from=\"{edge_from}\"]"
            f"[data-to=\"{edge_to}\"]'); return p && Number(p.dataset.lit || 0) > 0; }})()")


def test_a_question_lights_up_the_flow_and_its_trace_follows_it_across_services(qa, page, shots):
    server, out = qa
    page.goto(server.url("/_unkai/ui/flow"))
    page.wait_for_function("document.getElementById('live-status').textContent.startsWith('live')")
    # the chain, from the template and the services' configuration
    for a, b in [("QaApi", "PublisherFunction"), ("PublisherFunction", "QaTopic"), ("QaTopic", "TeamsQueue"),
                 ("QaTopic", "BacklogQueue"), ("QaTopic", "StoreQueue"), ("TeamsQueue", "TeamsFunction"),
                 ("StoreQueue", "StoreFunction"), ("StoreFunction", "QaTable"), ("QaTable", "BroadcastFunction"),
                 ("TeamsQueue", "TeamsDeadLetterQueue")]:
        assert page.locator(f'#flow .edge[data-from="{a}"][data-to="{b}"]').count() == 1, (a, b)

    ask(out, "P-7", "How do reserved concurrency and the account limit interact?")
    for a, b in [("QaApi", "PublisherFunction"), ("TeamsQueue", "TeamsFunction"), ("BacklogQueue", "BacklogFunction"),
                 ("StoreQueue", "StoreFunction"), ("QaTable", "BroadcastFunction")]:
        page.wait_for_function(lit(a, b), timeout=30000)
    snap(page, shots / "flow.png")

    page.reload()
    row = page.locator("#traces tr", has_text="POST /Prod/question").first
    row.get_by_role("link").click()
    page.wait_for_url("**/_unkai/ui/trace/**")
    text = page.locator("main").inner_text()
    for name in ("PublisherFunction", "TeamsFunction", "BacklogFunction", "StoreFunction"):
        assert name in text, (name, text)
    assert "apigateway.request" in text and "POST /Prod/question" in text
    for node in ("QaApi", "PublisherFunction", "TeamsFunction", "BacklogFunction", "StoreFunction", "TeamsQueue"):
        assert page.locator(f'#flow .node.traced[data-id="{node}"]').count() == 1, node
    snap(page, shots / "trace.png")

    page.goto(server.url("/_unkai/"))
    body = page.locator("main").inner_text()
    assert "qa-form" in body and "CREATE_COMPLETE" in body and "QuestionApiUrl" in body
    snap(page, shots / "overview.png")
    page.get_by_role("link", name="Functions").click()
    page.get_by_role("link", name="qa-form-PublisherFunction", exact=False).first.click()
    assert "Recent invocations" in page.content()
    snap(page, shots / "function.png")


def test_the_mailbox_renders_a_mail_whose_link_confirms_a_subscription(qa, page, shots):
    server, _ = qa
    sns = server.client("sns")
    topic = sns.create_topic(Name="dash-mail")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="student@example.com")
    server.wait_for_mail(to="student@example.com")
    page.goto(server.url("/_unkai/ui/mail"))
    page.get_by_role("link", name="Subscription Confirmation", exact=False).first.click()
    frame = page.frame_locator("iframe.mail")
    frame.get_by_role("link", name="Confirm subscription").click()

    def confirmed():
        subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        return subs and subs[0]["SubscriptionArn"] != "PendingConfirmation"
    eventually(confirmed)
    snap(page, shots / "mail.png")


def test_a_dead_letter_queue_is_redriven_with_one_click(qa, page, shots):
    server, _ = qa
    sqs = server.client("sqs")
    dlq_url, dlq_arn = new_queue(sqs, "dash-dlq")
    url, _ = new_queue(sqs, "dash-orders", VisibilityTimeout="0",
                       RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"}))
    sqs.send_message(QueueUrl=url, MessageBody="order 17")
    sqs.receive_message(QueueUrl=url)
    assert sqs.receive_message(QueueUrl=url).get("Messages") is None
    page.goto(server.url("/_unkai/ui/queues/dash-dlq"))
    assert "order 17" in page.content()
    page.get_by_role("button", name="Redrive the messages to dash-orders").click()
    page.wait_for_function("document.getElementById('action-result').textContent.includes('Redrive started')")
    snap(page, shots / "queue.png")
    got = eventually(lambda: sqs.receive_message(QueueUrl=url).get("Messages"))
    assert [m["Body"] for m in got] == ["order 17"]


def test_an_item_is_edited_in_the_table_view(qa, page, shots):
    server, out = qa
    ask(out, "P-9", "original question")
    table = server.resource("dynamodb").Table("qa-questions")
    eventually(lambda: [i for i in table.scan()["Items"] if i["project_id"] == "P-9"])
    page.goto(server.url("/_unkai/ui/tables/qa-questions"))
    row = page.locator("tr", has_text="original question").first
    row.get_by_role("button", name="Edit").click()
    editor = page.get_by_label("Item (DynamoDB JSON", exact=False)
    item = json.loads(editor.input_value())
    item["contact_detail"] = {"S": "edited in the dashboard"}
    editor.fill(json.dumps(item))
    page.get_by_role("button", name="Save item").click()
    page.wait_for_function("document.getElementById('action-result').textContent === 'Saved.'")
    items = [i for i in table.scan()["Items"] if i["project_id"] == "P-9"]
    assert [i["contact_detail"] for i in items] == ["edited in the dashboard"]
    snap(page, shots / "table.png")


def test_keyboard_reaches_everything_and_every_control_has_a_label(qa, page):
    server, _ = qa
    for path in ("/_unkai/", "/_unkai/ui/functions", "/_unkai/ui/queues", "/_unkai/ui/tables/qa-questions",
                 "/_unkai/ui/buckets", "/_unkai/ui/mail", "/_unkai/ui/flow"):
        page.goto(server.url(path))
        missing = page.evaluate("""() => Array.from(document.querySelectorAll('input, select, textarea, button'))
            .filter(el => el.type !== 'hidden' && !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                    && !(el.textContent || '').trim())
            .map(el => el.outerHTML.slice(0, 80))""")
        assert missing == [], (path, missing)
        assert page.evaluate("document.documentElement.lang") == "en"
        assert page.locator("h1").count() == 1 and page.locator("main").count() == 1
    # the first Tab stop skips to the content; the clock advances from the keyboard alone
    page.goto(server.url("/_unkai/"))
    before = server.get("/_unkai/clock")["offset"]
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "advance-seconds":
            break
    else:
        pytest.fail("Tab never reached the clock's field")
    page.keyboard.press("End")  # Tab selected the value; keep it
    page.keyboard.type("0")  # 60 -> 600
    page.keyboard.press("Enter")
    eventually(lambda: server.get("/_unkai/clock")["offset"] >= before + 600)



def test_a_message_is_sent_to_an_open_websocket_connection_from_the_apis_view(qa, page):
    from websockets.sync.client import connect

    server, out = qa
    with connect(out["LiveUrl"]) as instructor:
        page.goto(server.url("/_unkai/ui/apis"))
        form = page.locator("form", has=page.get_by_role("button", name="Send to connection")).first
        form.get_by_label("Message").fill("from the dashboard")
        form.get_by_role("button", name="Send to connection").click()
        assert instructor.recv(timeout=20) == "from the dashboard"
