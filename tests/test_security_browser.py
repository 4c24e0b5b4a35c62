"""A page on another site tries issue 11's browser attacks in headless Chromium, and
fails: a simple form POST deleting a queue, an ``<img>`` doing the same by GET, a
clock advance and a mail read through unkai's own endpoints, and DNS rebinding
(``evil.test`` resolving to 127.0.0.1) to read mail and a bucket's objects."""

from __future__ import annotations

import http.server
import json
import sys
import threading
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser import chromium  # noqa: E402

from unkai.testing import new_queue  # noqa: E402


def _serve(page: bytes) -> tuple[http.server.ThreadingHTTPServer, int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def test_a_page_on_another_site_cannot_damage_or_read_the_cloud(unkai):
    sqs = unkai.client("sqs")
    url, _ = new_queue(sqs)
    s3 = unkai.client("s3")
    bucket = f"private-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="secret.txt", Body=b"the secret")
    clock = unkai.get("/_unkai/clock")["offset"]
    port = urlsplit(unkai.endpoint).port
    base = f"http://127.0.0.1:{port}"
    delete = f"{base}/?Action=DeleteQueue&QueueUrl={quote(url, safe='')}"
    script = f"""
    const results = {{}};
    const note = (name, value) => {{ results[name] = value; }};
    const form = new URLSearchParams({{Action: "DeleteQueue", QueueUrl: {json.dumps(url)}}});
    const tries = [
      fetch({json.dumps(base + "/")}, {{method: "POST", mode: "no-cors", body: form}}).then(() => note("form", "sent")),
      fetch({json.dumps(base + "/_unkai/clock/advance?seconds=3456000")}, {{method: "POST", mode: "no-cors"}})
        .then(() => note("clock", "sent")),
      fetch({json.dumps(base + "/_unkai/mail")}).then(r => r.text()).then(t => note("mail", t), () => note("mail", "blocked")),
      fetch({json.dumps(base + "/" + bucket + "/secret.txt")}).then(r => r.text())
        .then(t => note("object", t), () => note("object", "blocked")),
      new Promise(done => {{ const img = new Image(); img.onload = img.onerror = () => {{ note("img", "sent"); done(); }};
                            img.src = {json.dumps(delete)}; }}),
    ];
    Promise.all(tries).then(() => {{ window.results = results; document.title = "done"; }});
    """
    attack, attack_port = _serve(f"<!doctype html><script>{script}</script>".encode())
    try:
        with chromium(args=[f"--host-resolver-rules=MAP evil.test 127.0.0.1"]) as browser:
            page = browser.new_page()
            page.goto(f"http://evil.test:{attack_port}/")
            page.wait_for_function("document.title === 'done'", timeout=15000)
            results = page.evaluate("window.results")
            assert results["mail"] == "blocked" and results["object"] == "blocked", results
            # DNS rebinding: the attacker's name now resolves to unkai; the answers are refused
            for path in ("/_unkai/mail", f"/{bucket}/secret.txt", "/?Action=ListQueues"):
                response = page.goto(f"http://evil.test:{port}{path}")
                assert response.status == 421, path
                assert "the secret" not in page.content()
    finally:
        attack.shutdown()
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert unkai.get("/_unkai/clock")["offset"] == clock
    assert s3.get_object(Bucket=bucket, Key="secret.txt")["Body"].read() == b"the secret"
