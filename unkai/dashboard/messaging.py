"""View 4, queues and topics: each queue's depth (visible, in flight, delayed), its
dead-letter queue, one-click redrive of a DLQ back to its sources (SQS's own
StartMessageMoveTask), a peek at messages that changes nothing (SQS's ``peek`` contract),
a test message; each topic's subscriptions and their states."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from unkai.dashboard import reads
from unkai.dashboard.html import e, link, page, table, when
from unkai.http import BodyTooLarge, Request, Response
from unkai.protocol import ServiceError

if TYPE_CHECKING:
    from unkai.dashboard.routes import Dashboard


def _dlq_of(attrs: dict) -> str:
    try:
        return json.loads(attrs.get("RedrivePolicy") or "{}").get("deadLetterTargetArn", "")
    except ValueError:
        return ""


def _sources(queues: list[dict]) -> dict[str, list[str]]:
    """DLQ ARN -> the names of the queues that send it their dead letters."""
    found: dict[str, list[str]] = {}
    for q in queues:
        dlq = _dlq_of(q["attributes"])
        if dlq:
            found.setdefault(dlq, []).append(q["name"])
    return found


async def index(dash: "Dashboard", request: Request, m: object) -> Response:
    queues = reads.queues(dash.cloud, dash.region)
    sources = _sources(queues)
    rows = []
    for q in queues:
        a = q["attributes"]
        dlq = _dlq_of(a)
        role = f"dead-letter queue of {', '.join(sources[a.get('QueueArn')])}" if a.get("QueueArn") in sources else \
            (f"dead letters to {link('/_unkai/ui/queues/' + dlq.rsplit(':', 1)[-1], dlq.rsplit(':', 1)[-1])}"
             if dlq else "")
        rows.append([link(f"/_unkai/ui/queues/{q['name']}", q["name"]), e(a.get("ApproximateNumberOfMessages")),
                     e(a.get("ApproximateNumberOfMessagesNotVisible")), e(a.get("ApproximateNumberOfMessagesDelayed")),
                     role])
    body = table(["Queue", "Visible", "In flight", "Delayed", "Dead letters"], rows, caption="Queues",
                 empty="No queues in this region.")
    for topic in reads.topics(dash.cloud, dash.region):
        subs = [[e(s.get("Protocol")), f"<code>{e(s.get('Endpoint'))}</code>",
                 '<span class="badge warn">pending confirmation</span>' if s.get("SubscriptionArn") ==
                 "PendingConfirmation" else '<span class="badge">confirmed</span>'] for s in topic["subscriptions"]]
        body += (f'<section id="topic-{e(topic["name"])}"><h2>Topic {e(topic["name"])}</h2>'
                 f'<p><code>{e(topic["arn"])}</code></p>'
                 + table(["Protocol", "Endpoint", "State"], subs, caption="Subscriptions", empty="No subscriptions.")
                 + "</section>")
    return page("Queues and topics", "ui/queues", body, dash.live(view="queues"))


def _queue(dash: "Dashboard", name: str):  # -> the SQS service's Queue, or None
    sqs = dash.cloud.service("sqs")
    return sqs.find(dash.cloud.config.account_id, dash.region, name)


async def detail(dash: "Dashboard", request: Request, m: object) -> Response:
    name = m["name"]  # type: ignore[index]
    queue = _queue(dash, name)
    if queue is None:
        return page("No such queue", "ui/queues", f"<p>There is no queue {e(name)} in {e(dash.region)}.</p>")
    queues = reads.queues(dash.cloud, dash.region)
    this = next((q for q in queues if q["name"] == name), {"attributes": {}, "url": ""})
    a = this["attributes"]
    sources = _sources(queues).get(a.get("QueueArn"), [])
    with dash.cloud.store.transaction():
        peeked = dash.cloud.service("sqs").peek(queue, 20)
    rows = [[f"<code>{e(p['MessageId'])}</code>", e(when(p["SentTimestamp"])), e(p["ApproximateReceiveCount"]),
             "visible" if p["Visible"] else "in flight", f"<pre>{e(p['Body'][:2000])}</pre>"] for p in peeked]
    redrive = ""
    if sources:
        redrive = (f'<form data-action="post" data-url="/_unkai/ui/queues/{e(name)}/redrive" class="inline">'
                   f'<button type="submit">Redrive the messages to {e(", ".join(sources))}</button></form>')
    dlq = _dlq_of(a)
    body = f"""
<dl class="facts">
<dt>URL</dt><dd><code>{e(this["url"])}</code></dd>
<dt>ARN</dt><dd><code>{e(a.get("QueueArn"))}</code></dd>
<dt>Visible</dt><dd id="depth-visible">{e(a.get("ApproximateNumberOfMessages"))}</dd>
<dt>In flight</dt><dd>{e(a.get("ApproximateNumberOfMessagesNotVisible"))}</dd>
<dt>Delayed</dt><dd>{e(a.get("ApproximateNumberOfMessagesDelayed"))}</dd>
{f'<dt>Dead-letter queue</dt><dd>{link("/_unkai/ui/queues/" + dlq.rsplit(":", 1)[-1], dlq.rsplit(":", 1)[-1])}</dd>'
 if dlq else ""}
{f'<dt>Dead-letter queue of</dt><dd>{e(", ".join(sources))}</dd>' if sources else ""}
</dl>
{redrive}
<p id="action-result" role="status" aria-live="polite"></p>
<h2 id="send-title">Send a test message</h2>
<form data-action="post" data-url="/_unkai/ui/queues/{e(name)}/send" aria-labelledby="send-title">
<label for="body">Message body</label>
<textarea id="body" name="body" rows="3">{{"test": true}}</textarea>
{'<label for="group">Message group id</label><input id="group" name="group" value="dashboard" required>'
 if queue.fifo else ""}
<button type="submit">Send</button></form>
<h2>Messages <small>(a peek: nothing is received or changed)</small></h2>
{table(["Message id", "Sent", "Receives", "State", "Body"], rows, empty="The queue is empty.")}
"""
    return page(f"Queue {name}", "ui/queues", body, dash.live(view="queue", queue=name))


async def send(dash: "Dashboard", request: Request, m: object) -> Response:
    name = m["name"]  # type: ignore[index]
    queue = _queue(dash, name)
    if queue is None:
        return Response.json({"message": f"no queue {name}"}, 404)
    try:
        form = json.loads(await request.body(262_144) or b"{}")
    except (ValueError, BodyTooLarge):
        return Response.json({"message": "send a JSON object {\"body\": ...} of 256 KB at most"}, 400)
    url = call_url(dash, name)
    params = {"QueueUrl": url, "MessageBody": str(form.get("body") or "")}
    if queue.fifo:
        params["MessageGroupId"] = str(form.get("group") or "dashboard")
        params["MessageDeduplicationId"] = str(dash.cloud.feed.last_id) + str(dash.cloud.clock.now())
    try:
        sent = dash.cloud.call("sqs", "SendMessage", params, dash.region)
    except ServiceError as exc:
        return Response.json({"message": f"{exc.code}: {exc.message}"}, 400)
    return Response.json({"message": f"Sent message {sent['MessageId']}."})


def call_url(dash: "Dashboard", name: str) -> str:
    return dash.cloud.call("sqs", "GetQueueUrl", {"QueueName": name}, dash.region)["QueueUrl"]


async def redrive(dash: "Dashboard", request: Request, m: object) -> Response:
    """Move a DLQ's messages back to the queues they came from (SQS StartMessageMoveTask)."""
    name = m["name"]  # type: ignore[index]
    queue = _queue(dash, name)
    if queue is None:
        return Response.json({"message": f"no queue {name}"}, 404)
    try:
        task = dash.cloud.call("sqs", "StartMessageMoveTask", {"SourceArn": queue.arn}, dash.region)
    except ServiceError as exc:
        return Response.json({"message": f"{exc.code}: {exc.message}"}, 400)
    return Response.json({"message": "Redrive started: the messages go back to the queues they came from.",
                          "task": task.get("TaskHandle")})
