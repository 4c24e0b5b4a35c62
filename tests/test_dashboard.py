"""The web dashboard over plain HTTP (the browser tests are in test_dashboard_browser.py):
every view renders from what the services answer, live events arrive over Server-Sent
Events from the one feed, a peek changes nothing, a DLQ is redriven, an item is saved, and
the control plane's rules hold (foreign origins refused, the token needed with credentials)."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from unkai.testing import UnkaiServer, new_queue

VIEWS = ["/_unkai/", "/_unkai/ui/flow", "/_unkai/ui/functions", "/_unkai/ui/queues", "/_unkai/ui/tables",
         "/_unkai/ui/buckets", "/_unkai/ui/mail", "/_unkai/ui/apis", "/_unkai/ui/metrics"]


def fetch(server, path, method="GET", body=None, headers=None):
    req = urllib.request.Request(server.url(path), data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


def test_every_view_renders_a_whole_page_with_a_strict_content_policy(unkai):
    for path in VIEWS:
        status, headers, body = fetch(unkai, path)
        assert status == 200, (path, body[:500])
        assert headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in headers["content-security-policy"]
        page = body.decode()
        assert page.startswith("<!doctype html>") and "</html>" in page
        assert 'aria-current="page"' in page and "<h1>" in page
    status, headers, js = fetch(unkai, "/_unkai/ui/static/dashboard.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript") and b"EventSource" in js
    assert fetch(unkai, "/_unkai/ui/static/../server.json")[0] == 404


def test_a_page_on_another_site_cannot_read_or_drive_the_dashboard(unkai):
    evil = {"origin": "http://evil.example"}
    for path in ("/_unkai/", "/_unkai/ui/events", "/_unkai/ui/queues"):
        status, headers, body = fetch(unkai, path, headers=evil)
        assert status == 403 and "access-control-allow-origin" not in {k.lower() for k in headers}, path
    status, _, _ = fetch(unkai, "/_unkai/ui/tables/x/item", "POST", b"{}", evil)
    assert status == 403
    assert fetch(unkai, "/_unkai/", headers={"sec-fetch-site": "cross-site"})[0] == 403


def _sse_messages(server, after: int, want: int, timeout: float = 20) -> list[dict]:
    """Read Server-Sent Events until ``want`` feed events arrived."""
    parts = urlsplit(server.endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    conn.request("GET", f"/_unkai/ui/events?after={after}")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("content-type").startswith("text/event-stream")
    events: list[dict] = []
    data = ""
    try:
        while len(events) < want:
            line = resp.fp.readline().decode()
            if not line:
                break
            if line.startswith("data: "):
                data += line[6:]
            elif line == "\n" and data:
                message = json.loads(data)
                events.extend(message.get("events", []))
                data = ""
    finally:
        conn.close()
    return events


def test_queues_view_peeks_without_receiving_and_a_dlq_is_redriven(unkai):
    sqs = unkai.client("sqs")
    dlq_url, dlq_arn = new_queue(sqs)
    url, _ = new_queue(sqs, RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"}),
                       VisibilityTimeout="0")
    name, dlq_name = url.rsplit("/", 1)[-1], dlq_url.rsplit("/", 1)[-1]
    last = unkai.feed()[-1]["id"] if unkai.feed() else 0
    sqs.send_message(QueueUrl=url, MessageBody="poison")

    # a peek shows the message and leaves it as it was
    for _ in range(2):
        status, _, body = fetch(unkai, f"/_unkai/ui/queues/{name}")
        assert status == 200 and b"poison" in body
    assert sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"][0]["Attributes"][
        "ApproximateReceiveCount"] == "1"
    assert sqs.receive_message(QueueUrl=url).get("Messages") is None  # past maxReceiveCount: moved

    # the move reaches a browser over Server-Sent Events, from the feed
    events = _sse_messages(unkai, last, 1)
    assert any(ev["kind"] == "sqs.dlq" and ev["queue"] == name and ev["dlq"] == dlq_name for ev in events), events

    status, _, body = fetch(unkai, f"/_unkai/ui/queues/{dlq_name}")
    assert b"poison" in body and f"Redrive the messages to {name}".encode() in body
    status, _, body = fetch(unkai, f"/_unkai/ui/queues/{dlq_name}/redrive", "POST", b"{}")
    assert status == 200, body
    unkai.drain()
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"]
    assert [m["Body"] for m in got] == ["poison"]

    status, _, body = fetch(unkai, f"/_unkai/ui/queues/{name}/send", "POST", json.dumps({"body": "hi"}).encode())
    assert status == 200, body
    assert fetch(unkai, "/_unkai/ui/queues/no-such-queue/redrive", "POST", b"{}")[0] == 404


def test_an_item_is_saved_and_deleted_from_the_table_view(unkai):
    ddb = unkai.client("dynamodb")
    table = f"dash-{uuid.uuid4().hex[:8]}"
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    item = {"pk": {"S": "a"}, "n": {"N": "3"}}
    status, _, body = fetch(unkai, f"/_unkai/ui/tables/{table}/item", "POST",
                            json.dumps({"item": json.dumps(item)}).encode())
    assert status == 200, body
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "a"}})["Item"] == item
    status, _, page = fetch(unkai, f"/_unkai/ui/tables/{table}?key=a")
    assert status == 200 and b"&quot;N&quot;: &quot;3&quot;" in page
    # a bad item is the service's own error, not a 500
    status, _, body = fetch(unkai, f"/_unkai/ui/tables/{table}/item", "POST",
                            json.dumps({"item": json.dumps({"other": {"S": "x"}})}).encode())
    assert status == 400 and b"ValidationException" in body
    status, _, body = fetch(unkai, f"/_unkai/ui/tables/{table}/item", "POST", b"not json")
    assert status == 400
    fetch(unkai, f"/_unkai/ui/tables/{table}/delete", "POST", json.dumps({"key": {"pk": {"S": "a"}}}).encode())
    assert "Item" not in ddb.get_item(TableName=table, Key={"pk": {"S": "a"}})


def test_buckets_view_uploads_lists_and_downloads(unkai):
    s3 = unkai.client("s3")
    bucket = f"dash-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    status, _, body = fetch(unkai, f"/_unkai/ui/buckets/{bucket}/object?key=docs/a%20b.txt", "POST", b"hello",
                            {"content-type": "text/plain"})
    assert status == 200, body
    assert s3.get_object(Bucket=bucket, Key="docs/a b.txt")["Body"].read() == b"hello"
    _, _, page = fetch(unkai, f"/_unkai/ui/buckets/{bucket}")
    assert b"docs/" in page
    _, _, page = fetch(unkai, f"/_unkai/ui/buckets/{bucket}?prefix=docs/")
    assert b"a b.txt" in page
    status, headers, data = fetch(unkai, f"/_unkai/ui/buckets/{bucket}/object?key=docs/a%20b.txt")
    assert status == 200 and data == b"hello" and "attachment" in headers["content-disposition"]


def test_the_banner_names_the_dashboard_and_unkai_open_prints_its_url(unkai):
    assert f"dashboard  {unkai.endpoint}/_unkai/" in unkai.output()
    out = subprocess.run([sys.executable, "-m", "unkai", "open", "--print", "--endpoint-url", unkai.endpoint],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == unkai.endpoint + "/_unkai/"


def test_with_credentials_the_dashboard_needs_the_token_then_keeps_it_in_a_same_site_cookie(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t-for-dashboard\n")
    with UnkaiServer(tmp_path / "state", "--access-key", "AKIDDASH", "--secret-key", f"@{secret}") as server:
        assert fetch(server, "/_unkai/")[0] == 403
        assert fetch(server, "/_unkai/ui/login?token=wrong")[0] == 403
        out = subprocess.run([sys.executable, "-m", "unkai", "open", "--print", "--state-dir", str(server.state_dir)],
                             capture_output=True, text=True, timeout=60)
        login = out.stdout.strip()
        assert login.startswith(server.endpoint + "/_unkai/ui/login?token="), out
        parts = urlsplit(server.endpoint)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.request("GET", login[len(server.endpoint):])
        resp = conn.getresponse()
        resp.read()
        cookie = resp.getheader("set-cookie")
        assert resp.status == 303 and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        conn.close()
        jar = {"cookie": cookie.split(";", 1)[0]}
        assert fetch(server, "/_unkai/", headers=jar)[0] == 200
        assert fetch(server, "/_unkai/ui/queues", headers=jar)[0] == 200
        assert fetch(server, "/_unkai/", headers={**jar, "origin": "http://evil.example"})[0] == 403


def test_a_function_s_sdk_calls_carry_its_trace_into_the_messages_it_sends(unkai):
    """X-Ray's path, as AWS runs it: the invocation gets _X_AMZN_TRACE_ID, boto3 sends it as
    X-Amzn-Trace-Id, SQS keeps it as AWSTraceHeader, and the feed stamps the same root."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from lambda_code import call, deploy

    sqs, lam = unkai.client("sqs"), unkai.client("lambda")
    url, _ = new_queue(sqs)
    name = deploy(lam, """
        import os, boto3
        def handler(event, context):
            boto3.client("sqs").send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody="traced")
            return os.environ.get("_X_AMZN_TRACE_ID", "")
        """, Environment={"Variables": {"QUEUE_URL": url}})
    _, header = call(lam, name)
    root = header.split(";")[0].removeprefix("Root=")
    assert root.startswith("1-") and len(root) == 35, header
    got = sqs.receive_message(QueueUrl=url, AttributeNames=["AWSTraceHeader"])["Messages"][0]
    assert got["Attributes"]["AWSTraceHeader"].startswith(f"Root={root};")
    invoked = [ev for ev in unkai.feed(kind="lambda.invoke") if ev.get("function") == name]
    assert [ev["trace"] for ev in invoked] == [root]
    status, _, page = fetch(unkai, f"/_unkai/ui/trace/{root}")
    assert status == 200 and name.encode() in page


def test_functions_overview_metrics_and_apis_views_show_what_the_services_hold(unkai):
    """View 3 (configuration, secret-looking variables masked, invoke with an event, the
    invocation listed), view 1 (the clock and its advance), view 9 (an alarm and its state)
    and view 8 (an HTTP API's routes), each from what the services answer."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from lambda_code import deploy

    lam = unkai.client("lambda")
    name = deploy(lam, "def handler(event, context):\n    return {'echo': event}\n",
                  Environment={"Variables": {"DB_PASSWORD": "hunter2-secret", "STAGE": "dev-stage"}})
    status, _, page = fetch(unkai, f"/_unkai/ui/functions/{name}")
    assert status == 200 and b"dev-stage" in page and b"hunter2-secret" not in page and b"STAGE" in page
    status, _, body = fetch(unkai, f"/_unkai/ui/functions/{name}/invoke", "POST", b'{"n": 7}',
                            {"Content-Type": "application/json"})
    out = json.loads(body)
    assert status == 200 and out["status"] == 200 and json.loads(out["payload"]) == {"echo": {"n": 7}}
    assert "REPORT RequestId: " + out["request_id"] in out["log"]
    assert fetch(unkai, f"/_unkai/ui/functions/{name}/invoke", "POST", b"{not json")[0] == 400
    assert out["request_id"].encode() in fetch(unkai, f"/_unkai/ui/functions/{name}")[2]

    assert fetch(unkai, "/_unkai/", headers={"Host": "evil.example:4566"})[0] == 421  # DNS rebinding
    before = fetch(unkai, "/_unkai/")[2]
    assert b'data-action="advance"' in before and b'id="clock-now"' in before

    unkai.client("cloudwatch").put_metric_alarm(
        AlarmName=f"errors-{name}", Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
        Dimensions=[{"Name": "FunctionName", "Value": name}])
    metrics = fetch(unkai, "/_unkai/ui/metrics")[2]
    assert f"errors-{name}".encode() in metrics and b"INSUFFICIENT_DATA" in metrics

    api = unkai.client("apigatewayv2").create_api(Name=f"api-{name}", ProtocolType="HTTP")["ApiId"]
    unkai.client("apigatewayv2").create_route(ApiId=api, RouteKey="GET /orders/{id}")
    apis = fetch(unkai, "/_unkai/ui/apis")[2]
    assert f"api-{name}".encode() in apis and b"GET /orders/{id}" in apis
