"""Helpers for the SNS tests: a real HTTP endpoint on loopback that records what SNS
posts and answers with the statuses a test lines up, and small SNS/SQS shortcuts."""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from unkai.testing import new_queue


class Endpoint:
    """An HTTP server on 127.0.0.1 that records every request (bounded: at most 500)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: deque[int] = deque()
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode()
                with owner.lock:
                    if len(owner.requests) < 500:
                        owner.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in
                                                                              self.headers.items()},
                                               "body": body})
                    status = owner.statuses.popleft() if owner.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["headers"].get("x-amz-sns-message-type") == kind]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sns(unkai: Any) -> Any:
    return unkai.client("sns")


@pytest.fixture
def sqs(unkai: Any) -> Any:
    return unkai.client("sqs")


def name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def queue(sqs: Any, queue_name: str | None = None, **attributes: str) -> tuple[str, str]:
    """A new queue: (url, arn)."""
    return new_queue(sqs, queue_name or name("q"), **attributes)


def drain_queue(sqs: Any, url: str, limit: int = 1000) -> list[dict]:
    """Every message now in a queue (received once, left in flight)."""
    out: list[dict] = []
    while len(out) < limit:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600,
                                  MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"])
        if not got.get("Messages"):
            return out
        out += got["Messages"]
    return out


def bodies(sqs: Any, url: str) -> list[Any]:
    """The parsed JSON bodies of every message in a queue."""
    return [json.loads(m["Body"]) for m in drain_queue(sqs, url)]


def code(exc: Any) -> str:
    return exc.value.response["Error"]["Code"]


def message(exc: Any) -> str:
    return exc.value.response["Error"]["Message"]
