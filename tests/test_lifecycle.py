"""The `unkai` process: start, refuse a second instance, stop cleanly, keep state
across restarts and across kill -9."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from unkai.testing import UnkaiServer


def test_second_instance_on_same_state_dir_is_refused(tmp_path):
    with UnkaiServer(tmp_path / "state") as server:
        out = subprocess.run([sys.executable, "-m", "unkai", "up", "--port", "0", "--state-dir",
                              str(tmp_path / "state")], capture_output=True, text=True, timeout=30)
        assert out.returncode == 1
        assert "already running" in out.stderr
        assert str(server.proc.pid) in out.stderr


def test_sigterm_shuts_down_cleanly_and_state_survives(tmp_path):
    server = UnkaiServer(tmp_path / "state").start()
    sqs = server.client("sqs")
    url = sqs.create_queue(QueueName="kept")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="still here")
    assert server.stop() == 0
    assert not (tmp_path / "state" / "server.json").exists()
    assert "Traceback" not in server.output()
    server = UnkaiServer(tmp_path / "state").start()
    try:
        sqs = server.client("sqs")
        url = sqs.get_queue_url(QueueName="kept")["QueueUrl"]
        assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "still here"
    finally:
        server.stop()


def test_ephemeral_state_is_removed(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "unkai", "up", "--ephemeral", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        lines = []
        state = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and state is None:
            line = proc.stdout.readline()
            lines.append(line)
            if line.strip().startswith("state"):
                state = line.split()[1]
        assert state and os.path.isdir(state), lines
    finally:
        proc.terminate()
        proc.wait(15)
    assert not os.path.exists(state)
    assert not (tmp_path / ".unkai").exists()


def test_acknowledged_sends_survive_kill_9(tmp_path):
    server = UnkaiServer(tmp_path / "state").start()
    sqs = server.client("sqs")
    url = sqs.create_queue(QueueName="durable")["QueueUrl"]
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def sender(n: int) -> None:
        client = server.client("sqs")
        i = 0
        while not stop.is_set():
            try:
                client.send_message(QueueUrl=url, MessageBody=f"{n}-{i}")
            except Exception:
                return  # the server died mid-request: this one was never acknowledged
            with lock:
                acked.append(f"{n}-{i}")
            i += 1

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    server.kill()
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acked) > 50
    server = UnkaiServer(tmp_path / "state").start()
    try:
        sqs = server.client("sqs")
        bodies = set()
        while True:
            msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300).get("Messages")
            if not msgs:
                break
            bodies.update(m["Body"] for m in msgs)
        missing = set(acked) - bodies
        assert not missing, f"{len(missing)} acknowledged messages lost"
    finally:
        server.stop()


def test_mail_and_inbox_commands(unkai, tmp_path):
    import httpx

    httpx.post(unkai.url("/_unkai/inbox/teams"), json={"title": "受講者からの質問"})
    out = subprocess.run([sys.executable, "-m", "unkai", "inbox", "teams", "--endpoint-url", unkai.endpoint],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "受講者からの質問" in out.stdout
    out = subprocess.run([sys.executable, "-m", "unkai", "mail", "--endpoint-url", unkai.endpoint, "--json"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip().startswith("[")
    out = subprocess.run([sys.executable, "-m", "unkai", "mail", "--endpoint-url", "http://127.0.0.1:9"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "Is `unkai up` running?" in out.stderr
    assert "Traceback" not in out.stderr


def test_port_in_use_is_a_clear_error(tmp_path):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    try:
        out = subprocess.run([sys.executable, "-m", "unkai", "up", "--port", str(port), "--state-dir",
                              str(tmp_path / "s")], capture_output=True, text=True, timeout=30)
    finally:
        sock.close()
    assert out.returncode != 0
    assert "Traceback" not in out.stderr + out.stdout
    assert str(port) in out.stderr + out.stdout
