"""``unkai up --debug FUNCTION``: the function's worker runs under debugpy on the printed
port and waits for a debugger. A DAP client (what VS Code speaks) attaches over a
socket, sets a breakpoint in the handler, the handler is triggered through SQS, the
client sees the stop with the event in scope, stays paused past the function's timeout,
continues, and the invocation completes."""

from __future__ import annotations

import json
import re
import socket
import textwrap
import time
from pathlib import Path

import pytest

from unkai.testing import UnkaiServer

pytest.importorskip("debugpy")  # the test extras install it (`pip install -e '.[test]'`)

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Done:
    Type: AWS::SQS::Queue
  Jobs:
    Type: AWS::SQS::Queue
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: src/
      Timeout: 1
      Environment:
        Variables:
          DONE_URL: !Ref Done
      Events:
        Jobs:
          Type: SQS
          Properties: {Queue: !GetAtt Jobs.Arn}
"""

HANDLER = """\
import os

import boto3


def handler(event, context):
    body = event["Records"][0]["body"]
    boto3.client("sqs").send_message(QueueUrl=os.environ["DONE_URL"], MessageBody="done: " + body)
    return {"ok": True}
"""
BREAK_LINE = 7  # body = event["Records"][0]["body"]


class Dap:
    """A minimal Debug Adapter Protocol client: framed JSON over a socket."""

    def __init__(self, port: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
                break
            except OSError:
                assert time.monotonic() < deadline, f"nothing listens on {port}"
                time.sleep(0.1)
        self.seq = 0
        self.buffer = b""
        self.seen: list[dict] = []

    def send(self, command: str, **arguments) -> int:
        self.seq += 1
        body = json.dumps({"seq": self.seq, "type": "request", "command": command, "arguments": arguments}).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return self.seq

    def _read(self) -> dict:
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        while len(rest) < length:
            rest += self._recv()
        self.buffer = rest[length:]
        return json.loads(rest[:length])

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        assert chunk, "the debug adapter closed the connection"
        return chunk

    def wait(self, kind: str, name: str, request_seq: int | None = None) -> dict:
        """The next event or response called ``name`` (earlier ones already read count too)."""
        def matches(msg: dict) -> bool:
            return msg["type"] == kind and msg.get("event" if kind == "event" else "command") == name and (
                request_seq is None or msg.get("request_seq") == request_seq)

        for msg in self.seen:
            if matches(msg):
                self.seen.remove(msg)
                return msg
        while True:
            msg = self._read()
            if matches(msg):
                return msg
            self.seen.append(msg)

    def request(self, command: str, **arguments) -> dict:
        response = self.wait("response", command, self.send(command, **arguments))
        assert response["success"], response
        return response.get("body") or {}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("debug")
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text(HANDLER)
    (root / "template.yaml").write_text(TEMPLATE)
    port = UnkaiServer.free_port()
    server = UnkaiServer(root / "state", str(root / "template.yaml"), "--debug", "Worker,Typo",
                         "--debug-port", str(port)).start(timeout=120)
    try:
        yield server, root, port
    finally:
        server.stop()


def test_a_debugger_stops_in_a_handler_triggered_through_sqs_and_the_invocation_completes(project):
    server, root, port = project
    assert re.search(rf"debug\s+Worker: debugpy on 127\.0\.0\.1:{port} \(waits for your IDE", server.output())
    assert f"Typo: debugpy on 127.0.0.1:{port + 1} (no function has this name or logical id yet)" in server.output()
    sqs = server.client("sqs")
    queues = {url.rsplit("/", 1)[1]: url for url in sqs.list_queues()["QueueUrls"]}
    jobs = next(u for n, u in queues.items() if "Jobs" in n)
    done = next(u for n, u in queues.items() if "Done" in n)
    sqs.send_message(QueueUrl=jobs, MessageBody="hello debugger")

    # the worker starts at this first invocation, listens, and waits for us
    dap = Dap(port)
    dap.request("initialize", clientID="unkai-test", adapterID="debugpy", linesStartAt1=True,
                columnsStartAt1=True, pathFormat="path")
    attach = dap.send("attach", justMyCode=False)
    dap.wait("event", "initialized")
    source = str((root / "src" / "app.py").resolve())
    verified = dap.request("setBreakpoints", source={"path": source}, breakpoints=[{"line": BREAK_LINE}])
    assert verified["breakpoints"][0]["verified"], verified
    dap.request("configurationDone")
    dap.wait("response", "attach", attach)

    stopped = dap.wait("event", "stopped")["body"]
    assert stopped["reason"] == "breakpoint"
    frame = dap.request("stackTrace", threadId=stopped["threadId"])["stackFrames"][0]
    assert (frame["source"]["path"], frame["line"], frame["name"]) == (source, BREAK_LINE, "handler")
    scope = dap.request("scopes", frameId=frame["id"])["scopes"][0]
    local = {v["name"]: v for v in dap.request("variables", variablesReference=scope["variablesReference"])["variables"]}
    assert {"event", "context"} <= set(local)
    body = dap.request("evaluate", expression="event['Records'][0]['body']", frameId=frame["id"], context="repl")
    assert body["result"] == "'hello debugger'"
    assert sqs.receive_message(QueueUrl=done, WaitTimeSeconds=0).get("Messages") is None  # still paused

    time.sleep(1.5)  # paused past the function's 1 s timeout: not timed out while a debugger holds it
    dap.request("continue", threadId=stopped["threadId"])
    got = sqs.receive_message(QueueUrl=done, WaitTimeSeconds=20).get("Messages") or []
    assert [m["Body"] for m in got] == ["done: hello debugger"]
    server.drain()
    attrs = sqs.get_queue_attributes(QueueUrl=jobs, AttributeNames=["All"])["Attributes"]
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")
    dap.send("disconnect")
