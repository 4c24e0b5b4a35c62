"""The server's HTTP/1.1 framing on a real socket: responses are written whole in one go
and small bodies taken whole (unkai/server.py), so keep-alive, pipelining, HEAD, a
client's ``Connection: close``, ``Expect: 100-continue`` and a body that arrives in
pieces must still frame exactly as uvicorn's own path does."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import pytest

SIGV4 = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/sqs/aws4_request, "
         "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64)


@pytest.fixture(scope="module")
def queue(unkai) -> str:
    return unkai.client("sqs").create_queue(QueueName="wire-q")["QueueUrl"]


def _connect(unkai) -> socket.socket:
    where = urlsplit(unkai.endpoint)
    sock = socket.create_connection((where.hostname, where.port), timeout=30)
    return sock


def _sqs(unkai, action: str, payload: dict, extra: str = "") -> bytes:
    body = json.dumps(payload).encode()
    host = urlsplit(unkai.endpoint).netloc
    head = (f"POST / HTTP/1.1\r\nHost: {host}\r\nX-Amz-Target: AmazonSQS.{action}\r\n"
            f"Content-Type: application/x-amz-json-1.0\r\nAuthorization: {SIGV4}\r\n"
            f"X-Amz-Date: 20260101T000000Z\r\n{extra}Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


class _Reader:
    """Reads HTTP/1.1 responses off one socket, framed by their Content-Length."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            assert self._fill(), f"connection closed mid-head: {self.buf!r}"
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            assert name.lower() not in headers, f"header {name} sent twice: {head!r}"
            headers[name.lower()] = value.strip()
        if status == 100:
            return status, headers, b""
        length = 0 if head_only else int(headers["content-length"])
        while len(self.buf) < length:
            assert self._fill(), "connection closed mid-body"
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def closed(self) -> bool:
        """Whether the server closed the connection with nothing more sent."""
        return not self.buf and not self._fill()


def test_pipelined_requests_each_framed_by_their_length(unkai, queue):
    with _connect(unkai) as sock:
        sock.sendall(_sqs(unkai, "SendMessage", {"QueueUrl": queue, "MessageBody": "one"})
                     + _sqs(unkai, "SendMessage", {"QueueUrl": queue, "MessageBody": "two"})
                     + _sqs(unkai, "GetQueueUrl", {"QueueName": "no-such-queue"}))
        reader = _Reader(sock)
        answers = [reader.response() for _ in range(3)]
    assert [a[0] for a in answers] == [200, 200, 400]
    for status, headers, body in answers:
        assert headers["content-length"] == str(len(body))
        assert headers["content-type"] == "application/x-amz-json-1.0"
        assert headers["x-amzn-requestid"]
        assert "date" in headers and "connection" not in headers
    assert json.loads(answers[0][2])["MessageId"] != json.loads(answers[1][2])["MessageId"]
    assert json.loads(answers[2][2])["__type"].endswith("QueueDoesNotExist")


def test_client_connection_close_is_honoured(unkai, queue):
    with _connect(unkai) as sock:
        sock.sendall(_sqs(unkai, "GetQueueUrl", {"QueueName": "wire-q"}, extra="Connection: close\r\n"))
        reader = _Reader(sock)
        status, headers, body = reader.response()
        assert status == 200 and json.loads(body)["QueueUrl"] == queue
        assert headers["connection"] == "close"
        assert reader.closed()


def test_head_answers_the_length_without_a_body(unkai):
    s3 = unkai.client("s3")
    s3.create_bucket(Bucket="wire-bucket")
    s3.put_object(Bucket="wire-bucket", Key="k", Body=b"x" * 1500)
    host = urlsplit(unkai.endpoint).netloc
    with _connect(unkai) as sock:
        sock.sendall(f"HEAD /wire-bucket/k HTTP/1.1\r\nHost: {host}\r\n\r\n"
                     f"GET /wire-bucket/k HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        reader = _Reader(sock)
        status, headers, _ = reader.response(head_only=True)
        assert status == 200 and headers["content-length"] == "1500"
        status, headers, body = reader.response()  # framed right after the HEAD's head: no body came between
    assert status == 200 and body == b"x" * 1500


def test_large_response_body_arrives_whole(unkai):
    s3 = unkai.client("s3")
    s3.create_bucket(Bucket="wire-big")
    data = bytes(range(256)) * 1024  # 256 KiB: written apart from its head
    s3.put_object(Bucket="wire-big", Key="big", Body=data)
    host = urlsplit(unkai.endpoint).netloc
    with _connect(unkai) as sock:
        sock.sendall(f"GET /wire-big/big HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() * 2)
        reader = _Reader(sock)
        first, second = reader.response(), reader.response()
    assert first[0] == second[0] == 200
    assert first[2] == data and second[2] == data


def test_body_arriving_in_pieces(unkai, queue):
    request = _sqs(unkai, "SendMessage", {"QueueUrl": queue, "MessageBody": "pieces-" + "p" * 3000})
    head, body = request.split(b"\r\n\r\n", 1)
    with _connect(unkai) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(head + b"\r\n\r\n" + body[:10])
        time.sleep(0.3)  # the server has the head and part of the body: it must wait for the rest
        sock.sendall(body[10:2000])
        time.sleep(0.1)
        sock.sendall(body[2000:])
        status, _, answer = _Reader(sock).response()
    assert status == 200, answer
    got = unkai.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    assert "pieces-" + "p" * 3000 in [m["Body"] for m in got.get("Messages", [])]


def test_expect_100_continue(unkai, queue):
    request = _sqs(unkai, "GetQueueUrl", {"QueueName": "wire-q"}, extra="Expect: 100-continue\r\n")
    head, body = request.split(b"\r\n\r\n", 1)
    with _connect(unkai) as sock:
        sock.sendall(head + b"\r\n\r\n")
        reader = _Reader(sock)
        status, _, _ = reader.response()
        assert status == 100  # sent once the app reads the body
        sock.sendall(body)
        status, headers, answer = reader.response()
        assert status == 200 and json.loads(answer)["QueueUrl"] == queue
        # the connection stays usable
        sock.sendall(_sqs(unkai, "GetQueueUrl", {"QueueName": "wire-q"}))
        assert reader.response()[0] == 200
