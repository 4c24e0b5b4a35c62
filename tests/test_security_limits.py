"""Request bodies and connections are bounded (issue 11, findings 4 and 9): a huge or
chunked body is refused while it is read, the webhook inbox keeps a capped prefix, and
slow or idle clients cannot hold the server. One server with short timeouts."""

from __future__ import annotations

import http.client
import json
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from unkai.testing import UnkaiServer

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lambda_code import deploy  # noqa: E402

CAP = 40


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = UnkaiServer(tmp_path_factory.mktemp("limits") / "state", env={
        "UNKAI_HEAD_TIMEOUT": "1", "UNKAI_BODY_IDLE_TIMEOUT": "1", "UNKAI_MAX_CONNECTIONS_PER_CLIENT": str(CAP)})
    s.start()
    yield s
    s.stop()


def peak_rss_kb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def chunked(server: UnkaiServer, path: str, total: int, headers: dict[str, str]) -> tuple[int, bytes]:
    """POST ``total`` bytes of a JSON-ish body in 1 MB chunks, without a Content-Length."""
    piece = b"[" * (1 << 20)

    def body():
        for _ in range(total // len(piece)):
            yield piece

    parts = urlsplit(server.endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        try:
            conn.request("POST", path, body=body(), headers=headers, encode_chunked=True)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered before the whole body went: what counts is the answer
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_a_huge_chunked_body_is_refused_while_it_is_read(server):
    # Models and their libraries load at a service's first request: load them first, so that
    # what is measured is only what the bodies cost.
    server.client("dynamodb").list_tables()
    server.client("sqs").list_queues()
    before = peak_rss_kb(server.proc.pid)
    status, body = chunked(server, "/", 48 << 20, {
        "x-amz-target": "DynamoDB_20120810.PutItem", "content-type": "application/x-amz-json-1.0",
        "authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, "
                         "SignedHeaders=host, Signature=00"})
    assert status == 413 and b"RequestEntityTooLarge" in body
    status, body = chunked(server, "/", 24 << 20, {"x-amz-target": "AmazonSQS.SendMessage",
                                                   "content-type": "application/x-amz-json-1.0"})
    assert status == 413 and b"RequestEntityTooLarge" in body
    grown_mb = (peak_rss_kb(server.proc.pid) - before) / 1024
    assert grown_mb < 24, f"peak RSS grew {grown_mb:.0f} MB for 72 MB of refused bodies"
    # a form body (read before the service is known) is capped too, then held to SQS's own limit
    status, body = chunked(server, "/", 12 << 20, {"content-type": "application/x-www-form-urlencoded",
                                                   "authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/"
                                                   "us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=00"})
    assert status == 413
    assert server.get("/_unkai/health")["status"] == "ready"


def test_the_inbox_keeps_a_capped_prefix_with_a_note(server):
    status, _ = chunked(server, "/_unkai/inbox/big", 3 << 20, {"content-type": "text/plain"})
    assert status == 200
    [entry] = server.inbox("big")
    assert len(entry["body"]) == 1 << 20
    assert entry["headers"]["x-unkai-truncated"] == f"{3 << 20} bytes received, the first {1 << 20} kept"


def test_a_function_url_refuses_more_than_six_megabytes_with_413(server):
    lam = server.client("lambda")
    name = deploy(lam, "def handler(event, context):\n    return {'statusCode': 200}\n")
    url = lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    status, body = chunked(server, urlsplit(url).path, 7 << 20, {"content-type": "text/plain"})
    assert status == 413, body
    assert json.loads(body) == {"Message": "Request must be smaller than 6291456 bytes for the InvokeFunction "
                                           "operation"}


def _closed(sock: socket.socket, within: float = 10.0) -> bool:
    """Whether the server closes this connection (reads until EOF, or gives up)."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
        return True
    except (socket.timeout, TimeoutError):
        return False
    except ConnectionResetError:
        return True


def test_slow_clients_cannot_hold_the_server(server):
    port = urlsplit(server.endpoint).port
    loris = []
    for _ in range(CAP + 20):  # every one sends half a request head and stops
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /_unkai/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        loris.append(s)
    # past the cap the oldest half-sent ones make room: a real client is still served
    assert server.get("/_unkai/health")["status"] == "ready"
    # the head timeout closes every one of them
    assert all(_closed(s) for s in loris)
    for s in loris:
        s.close()
    # a body that stops half-way is dropped after the idle timeout
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST /_unkai/inbox/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nonly ten b")
        assert _closed(s)
    # and a connection that never sends anything
    with socket.create_connection(("127.0.0.1", port)) as s:
        assert _closed(s)
    assert server.inbox("slow") == []
