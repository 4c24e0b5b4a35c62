"""Using unkai from tests: start a real server in a subprocess, make boto3 clients for
it, advance its clock and wait for background work to finish.

In a ``conftest.py``::

    pytest_plugins = ["unkai.testing"]

    def test_queue(unkai):
        sqs = unkai.client("sqs")
        ...

The ``unkai`` fixture is one server per test session with throwaway state (under
pytest-xdist, one per worker process: parallel tests never share one); ``unkai_clean``
resets it before a test. Start more with ``UnkaiServer(tmp_path).start()`` (e.g. with a
template).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class UnkaiServer:
    """``unkai up`` in a subprocess, on a free port, with its own state directory."""

    def __init__(self, state_dir: Path | str, *args: str, region: str = "us-east-1",
                 env: dict[str, str] | None = None, port: int = 0) -> None:
        self.state_dir = Path(state_dir)
        self.args = list(args)
        self.region = region
        self.port = port
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.endpoint = ""
        self.token: str | None = None  # the control token, when the server verifies signatures
        self.log_path = self.state_dir.parent / f"{self.state_dir.name}.log"
        self.credentials = dict(CREDENTIALS)  # what client() signs with: the server's own when it verifies
        for flag, key in (("--access-key", "aws_access_key_id"), ("--secret-key", "aws_secret_access_key")):
            if flag in self.args[:-1] and not self.args[self.args.index(flag) + 1].startswith(("@", "-")):
                self.credentials[key] = self.args[self.args.index(flag) + 1]

    def start(self, timeout: float = 30.0) -> "UnkaiServer":
        self.state_dir.mkdir(parents=True, exist_ok=True)
        server_file = self.state_dir / "server.json"
        server_file.unlink(missing_ok=True)
        log = open(self.log_path, "ab")
        env = dict(os.environ, **self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "unkai", "up", *self.args, "--port", str(self.port), "--state-dir", str(self.state_dir),
             "--region", self.region],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"unkai exited with {self.proc.returncode}:\n{self.output()}")
            try:
                info = json.loads(server_file.read_text())
                if info.get("pid") == self.proc.pid:
                    self.endpoint = info["endpoint"]
                    self.token = info.get("token")
                    if self.get("/_unkai/health")["status"] == "ready":
                        return self
            except (OSError, ValueError, urllib.error.URLError):
                pass
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"unkai did not become ready in {timeout}s:\n{self.output()}")

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, as Ctrl-C would; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    @staticmethod
    def free_port() -> int:
        """A port nothing listens on now, for a test that must know its URL before start-up."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def kill(self) -> None:
        """SIGKILL: no chance to flush or clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def client(self, service: str, region: str | None = None, **kwargs: Any) -> Any:
        import boto3
        from botocore.config import Config

        config = kwargs.pop("config", None) or Config(retries={"max_attempts": 1, "mode": "standard"})
        endpoint = kwargs.pop("endpoint_url", None) or self.endpoint
        return boto3.client(service, endpoint_url=endpoint, region_name=region or self.region,
                            config=config, **{**self.credentials, **kwargs})

    def resource(self, service: str, region: str | None = None, **kwargs: Any) -> Any:
        import boto3

        return boto3.resource(service, endpoint_url=self.endpoint, region_name=region or self.region,
                              **{**self.credentials, **kwargs})

    def url(self, path: str) -> str:
        return self.endpoint + path

    def _headers(self) -> dict[str, str]:
        return {"x-unkai-token": self.token} if self.token else {}

    def get(self, path: str) -> Any:
        req = urllib.request.Request(self.url(path), headers=self._headers())
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def post(self, path: str, data: bytes = b"") -> Any:
        req = urllib.request.Request(self.url(path), data=data, method="POST", headers=self._headers())
        with urllib.request.urlopen(req, timeout=660) as resp:
            return json.loads(resp.read())

    def advance(self, seconds: float) -> dict:
        """Move unkai's clock forward; whatever falls due fires."""
        return self.post(f"/_unkai/clock/advance?seconds={seconds}")

    def drain(self, timeout: float = 10.0) -> dict:
        """Wait until no delivery, invocation or stream batch is pending; raise if some still are."""
        result = self.post(f"/_unkai/drain?timeout={timeout}")
        if not result["drained"]:
            raise AssertionError(f"unkai still has pending work after {timeout}s: {result['pending']}")
        return result

    def reset(self, empty: bool = False) -> dict:
        """Back to the state the server had once ready (its stack deployed, no data): what
        ``unkai_clean`` does before each test. ``empty``: no stack either."""
        return self.post("/_unkai/reset" + ("?empty=1" if empty else ""))

    def mail(self, to: str | None = None) -> list[dict]:
        """Every message in the local mailbox (those to ``to`` when given), oldest first."""
        from urllib.parse import quote

        return self.get("/_unkai/mail" + (f"?to={quote(to)}" if to else ""))

    def mail_message(self, mail_id: str) -> dict:
        """One mail in full (by mailbox id or SES message id): headers, cc, attachments..."""
        from urllib.parse import quote

        return self.get(f"/_unkai/mail/{quote(mail_id)}")

    def wait_for_mail(self, to: str | None = None, subject: str | None = None, *, after: int = 0,
                      count: int = 1, timeout: float = 10.0) -> list[dict]:
        """Wait until ``count`` mails (to an address containing ``to``, with ``subject`` in
        their subject) newer than mailbox seq ``after`` arrived, and return them in full.
        Raises AssertionError after ``timeout`` seconds with what the mailbox holds."""
        from urllib.parse import urlencode

        deadline = time.monotonic() + timeout
        found: list[dict] = []
        cursor = after
        while True:
            query = {"after": str(cursor), "wait": str(max(0.0, min(5.0, deadline - time.monotonic())))}
            if to:
                query["to"] = to
            for msg in self.get("/_unkai/mail?" + urlencode(query)):
                cursor = max(cursor, msg["seq"])
                if subject is None or subject in msg["subject"]:
                    found.append(msg)
            if len(found) >= count:
                return [self.mail_message(m["id"]) for m in found[:count]]
            if time.monotonic() >= deadline:
                seen = [(m["to"], m["subject"]) for m in self.mail()]
                raise AssertionError(f"{len(found)} of {count} mails to {to!r} with subject {subject!r} "
                                     f"after {timeout}s; the mailbox holds {seen}")

    def mail_seq(self) -> int:
        """The newest mail's seq: pass it as ``after`` to wait only for mail sent later."""
        mails = self.mail()
        return mails[-1]["seq"] if mails else 0

    def feed(self, after: int = 0, kind: str = "", wait: float = 0) -> list[dict]:
        """Events from unkai's event feed newer than id ``after`` (those whose kind starts with
        ``kind``), waiting up to ``wait`` seconds for the first one."""
        query = f"after={after}&wait={wait}" + (f"&kind={kind}" if kind else "")
        return self.get(f"/_unkai/feed?{query}")["events"]

    def inbox(self, name: str) -> list[dict]:
        return self.get(f"/_unkai/inbox/{name}")

    def __enter__(self) -> "UnkaiServer":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def new_queue(sqs: Any, name: str | None = None, **attributes: str) -> tuple[str, str]:
    """A new queue (a unique name unless given; a ``.fifo`` name makes it FIFO): its URL and ARN."""
    import uuid

    name = name or f"q-{uuid.uuid4().hex[:10]}"
    if name.endswith(".fifo"):
        attributes.setdefault("FifoQueue", "true")
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def receive_all(sqs: Any, queue_url: str) -> list[str]:
    """Every message now visible in a queue, received and deleted: what a test asserts a
    delivery put there."""
    bodies: list[str] = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return bodies
        for m in got:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture(scope="session")
def unkai(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UnkaiServer]:
    """One unkai for the whole test session, with throwaway state."""
    server = UnkaiServer(tmp_path_factory.mktemp("unkai") / "state").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def unkai_clean(unkai: UnkaiServer) -> UnkaiServer:
    """The session's unkai, reset before this test: nothing an earlier test made is left
    (a few ms; override ``unkai`` in a conftest.py to start yours with a template)."""
    unkai.reset()
    return unkai
