"""What `unkai up` prints while it runs: one line per thing that happened, read here from
a pseudo-terminal as a user's terminal would show it."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
import urllib.request

import boto3
import pytest
from botocore.config import Config

from tests.lambda_code import deploy
from unkai.testing import CREDENTIALS, new_queue

FAILING = """\
import json

def handler(event, context):
    body = json.loads(event["Records"][0]["body"])
    raise KeyError(body["missing"])  # line 5
"""


class Pty:
    """A process whose stdout and stderr are a pseudo-terminal we read."""

    def __init__(self, *args: str) -> None:
        self.master, slave = pty.openpty()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("NO_COLOR", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "unkai", *args], stdout=slave, stderr=slave,
                                     stdin=subprocess.DEVNULL, env=env)
        os.close(slave)
        self.text = ""

    def read_until(self, pattern: str, timeout: float = 30) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.text)
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not printed; got:\n{self.text}")
            ready, _, _ = select.select([self.master], [], [], 0.5)
            if ready:
                try:
                    self.text += os.read(self.master, 65536).decode(errors="replace")
                except OSError:
                    pass

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


@pytest.fixture(scope="module")
def terminal(tmp_path_factory):
    term = Pty("up", "--state-dir", str(tmp_path_factory.mktemp("term") / "state"), "--port", "0")
    try:
        endpoint = term.read_until(r"AWS APIs\s+(http://\S+)")[1]
        yield term, endpoint
    finally:
        term.stop()


def client(endpoint: str, service: str):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}), **CREDENTIALS)


def test_a_failing_handler_is_one_red_line_with_where_it_raised_and_the_log_command(terminal):
    term, endpoint = terminal
    lam, sqs = client(endpoint, "lambda"), client(endpoint, "sqs")
    name = deploy(lam, FAILING)
    dlq_url, dlq_arn = new_queue(sqs)
    url, arn = new_queue(sqs, VisibilityTimeout="5",
                         RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1}))
    lam.create_event_source_mapping(FunctionName=name, EventSourceArn=arn, BatchSize=1)
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"missing": "question"}))
    queue = arn.rsplit(":", 1)[1]
    line = term.read_until(rf"\x1b\[31m✗ λ {name} ← sqs {queue} .*\n")[0]
    assert "KeyError: 'question' at app.py:5" in line and "cold" in line
    term.read_until(rf"whole log: unkai logs {name}")
    # past the visibility timeout the message is received a second time and moves to the DLQ
    urllib.request.urlopen(urllib.request.Request(endpoint + "/_unkai/clock/advance?seconds=6", method="POST"))
    dead = term.read_until(rf"✗ sqs {queue}: a message moved to dead-letter queue (\S+)")
    assert dead[1] == dlq_arn.rsplit(":", 1)[1]


def test_a_successful_invocation_is_one_line_with_its_trigger_and_duration(terminal):
    term, endpoint = terminal
    lam = client(endpoint, "lambda")
    name = deploy(lam, "def handler(event, context):\n    return 1\n")
    lam.invoke(FunctionName=name, Payload=b"{}")
    lam.invoke(FunctionName=name, Payload=b"{}")
    term.read_until(rf"λ {name} ← Invoke API  \d+(\.\d)? ms cold  \x1b\[32mok")
    term.read_until(rf"λ {name} ← Invoke API  \d+(\.\d)? ms warm  \x1b\[32mok")


def test_an_api_request_is_one_line_and_the_invocation_it_caused_names_it(terminal):
    term, endpoint = terminal
    lam = client(endpoint, "lambda")
    name = deploy(lam, "def handler(event, context):\n    return {'statusCode': 201, 'body': 'made'}\n")
    fn_arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    api = client(endpoint, "apigatewayv2").create_api(Name="t", ProtocolType="HTTP", Target=fn_arn)["ApiId"]
    port = endpoint.rsplit(":", 1)[1]
    request = urllib.request.Request(endpoint + "/orders?x=1", data=b"{}", method="POST",
                                     headers={"Host": f"{api}.execute-api.localhost:{port}"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status == 201
    term.read_until(rf"λ {name} ← POST /orders  .*ok")
    term.read_until(rf"→ POST /orders  \x1b\[32m201\x1b\[0m  \d+(\.\d)? ms  \(API {api}\)")


def test_without_a_tty_lines_have_no_colours_and_quiet_prints_only_failures(unkai):
    from tests.lambda_code import call

    name = deploy(unkai.client("lambda"), "def handler(event, context):\n    return 1\n")
    call(unkai.client("lambda"), name)
    deadline = time.monotonic() + 10
    while f"λ {name} ← Invoke API" not in unkai.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    line = next(line for line in unkai.output().splitlines() if f"λ {name}" in line)
    assert "\x1b" not in line and line.endswith("ok")

    from unkai.terminal import Terminal

    quiet = Terminal(io.StringIO(), "quiet")
    quiet({"kind": "lambda.invoke", "function": "f", "status": "ok", "duration_ms": 3, "time": 0})
    quiet({"kind": "apigateway.request", "method": "GET", "path": "/prod/x", "status": 502, "latency_ms": 9,
           "api_id": "a1", "time": 0})
    assert quiet.out.getvalue().count("\n") == 1 and "GET /prod/x  502" in quiet.out.getvalue()
