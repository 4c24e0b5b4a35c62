"""SendEmail answers once its message is accepted (one durable ``ses.send`` job) and
delivers it right after the answer (unkai/services/ses/sending.py, ``unkai.jobs.Jobs.soon``).

What a user sees of that: a request the same client sends right behind SendEmail on the
same connection (pipelined, read by the server after the answer) finds the mail; and no
answered send is lost or delivered twice across kill -9, whether the server dies with
deliveries not yet done (a stream of pipelined sends killed mid-way) or restarts with a
job no callback claimed."""

from __future__ import annotations

import json
import re
import signal
import socket
import sqlite3
import threading
import time
from collections import Counter
from urllib.parse import quote

from unkai.testing import UnkaiServer

SENDER = "news@deferred.example"


def _send_request(host: str, i: int) -> bytes:
    body = (f"Action=SendEmail&Version=2010-12-01&Source={quote(SENDER)}"
            f"&Destination.ToAddresses.member.1=success%40simulator.amazonses.com"
            f"&Message.Subject.Data=piped+{i}&Message.Body.Text.Data=body+{i}").encode()
    head = (f"POST / HTTP/1.1\r\nhost: {host}\r\n"
            "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n"
            "Authorization: AWS4-HMAC-SHA256 Credential=test/20261203/us-east-1/ses/aws4_request, "
            "SignedHeaders=host, Signature=00\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body


def _connect(server: UnkaiServer) -> tuple[socket.socket, str]:
    host = server.endpoint.split("//", 1)[1]
    name, port = host.rsplit(":", 1)
    return socket.create_connection((name, int(port)), timeout=30), host


def _ready(server: UnkaiServer) -> None:
    server.client("ses").verify_domain_identity(Domain="deferred.example")
    server.advance(61)


def test_a_request_pipelined_behind_send_email_finds_its_mail(tmp_path):
    server = UnkaiServer(tmp_path / "state").start()
    try:
        _ready(server)
        sock, host = _connect(server)
        with sock:
            # one write: the server reads the GET only after answering the send
            sock.sendall(_send_request(host, 1) + f"GET /_unkai/mail HTTP/1.1\r\nhost: {host}\r\n\r\n".encode())
            got = b""
            while got.count(b"HTTP/1.1 ") < 2 or not got.rstrip().endswith(b"]"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
        mid = re.search(rb"<MessageId>([^<]+)</MessageId>", got)[1].decode()
        listed = json.loads(got[got.rindex(b"\r\n\r\n") + 4:])
        assert [(m["message_id"], m["subject"], m["text"]) for m in listed] == [(mid, "piped 1", "body 1")]
    finally:
        server.stop()


def test_every_answered_send_is_delivered_once_across_kill_9(tmp_path):
    """Pipelined sends, and kill -9 while the server works through them (right after an
    answer, so a delivery is often still to do): each answered MessageId is in the mailbox
    exactly once after a restart, the ones the kill caught delivered by the jobs runner;
    and a job no callback ever claimed, written as the send writes it, is delivered once."""
    from unkai.services.ses.sending import SEND_JOB, Outgoing, _job, message_id

    state = tmp_path / "state"
    answered: list[str] = []
    caught: set[str] = set()
    for attempt in range(3):  # the kill lands between an answer and its delivery nearly every time
        server = UnkaiServer(state).start()
        try:
            if attempt == 0:
                _ready(server)
            answered += _stream_and_kill(server)
        finally:
            server.kill()
        db = sqlite3.connect(state / "unkai.db")
        caught |= {t for (t,) in db.execute("SELECT token FROM unkai_soon WHERE kind=?", (SEND_JOB,))} & set(answered)
        db.close()
        if caught:  # a kill fell between an answer and its delivery (nearly always the first)
            break
    # one the process accepted but never delivered, as the send writes it
    now = time.time()
    stranded = message_id(now)
    out = Outgoing("000000000000", "us-east-1", False, source=f"Desk <{SENDER}>",
                   to=["success@simulator.amazonses.com"], cc=["success+cc@simulator.amazonses.com"],
                   reply_to=["desk@deferred.example"], headers=[("X-Kept", "yes")], subject="stranded",
                   text="never claimed")
    db = sqlite3.connect(state / "unkai.db")
    with db:
        db.execute("INSERT INTO unkai_soon(kind, token, payload) VALUES(?, ?, ?)",
                   (SEND_JOB, stranded, json.dumps(_job(out, stranded, now, set(), [], set()))))
    db.close()

    server = UnkaiServer(state).start()
    try:
        server.drain(timeout=30)
        counts = Counter(m["message_id"] for m in server.mail())
        assert all(counts[mid] == 1 for mid in answered), [mid for mid in answered if counts[mid] != 1]
        assert counts[stranded] == 1
        late = server.mail_message(stranded)
        assert (late["from"], late["to"], late["cc"], late["reply_to"], late["subject"], late["text"]) == (
            f"Desk <{SENDER}>", ["success@simulator.amazonses.com", "success+cc@simulator.amazonses.com"],
            ["success+cc@simulator.amazonses.com"], ["desk@deferred.example"], "stranded", "never claimed")
        assert ["X-Kept", "yes"] in late["headers"]
        assert server.post("/_unkai/drain?timeout=0")["pending"] == {}
    finally:
        server.stop()


def _stream_and_kill(server: UnkaiServer) -> list[str]:
    """400 SendEmail requests in one pipelined stream; SIGKILL once 40 answers arrived.
    The MessageIds answered (the server commits each send before writing its answer)."""
    sock, host = _connect(server)
    stream = b"".join(_send_request(host, i) for i in range(400))
    threading.Thread(target=_send_quietly, args=(sock, stream), daemon=True).start()
    got = b""
    killed = False
    with sock:
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            got += chunk
            if not killed and got.count(b"</MessageId>") >= 40:
                server.proc.send_signal(signal.SIGKILL)  # answers, deliveries and reads interleave
                killed = True
    answered = [m.decode() for m in re.findall(rb"<MessageId>([^<]+)</MessageId>", got)]
    assert killed and 40 <= len(answered) < 400
    return answered


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:  # the server was killed mid-stream
        pass


def test_a_send_job_carries_every_field_a_deferred_delivery_uses():
    """Every ``Outgoing`` field survives the ``ses.send`` job (written as the jobs outbox
    writes it, read back as the runner reads it), except those a deferred send never has:
    a raw message, attachments, and the template parts already rendered before the answer.
    A field added to ``Outgoing`` fails here until the job carries it or it is listed."""
    import dataclasses

    from unkai.jobs import _ENCODE
    from unkai.services.ses.sending import Outgoing, _job, outgoing_of

    out = Outgoing("123456789012", "eu-west-1", True, source="Desk <desk@deferred.example>",
                   to=["a@example.com"], cc=["b@example.com"], bcc=["c@example.com"],
                   reply_to=["r@example.com"], subject="件名", text="text \u00e9", html="<p>html</p>",
                   headers=[("X-One", "1"), ("X-Two", "2")], tags={"campaign": "spring"},
                   config_set="streamed", return_path="bounces@deferred.example",
                   feedback_to="feedback@deferred.example", template="welcome", source_ip="10.0.0.7",
                   caller="arn:aws:iam::123456789012:user/me", via="smtp",
                   list_management={"ContactListName": "news", "TopicName": "weekly"})
    never_deferred = {"raw", "attachments", "template_parts", "template_data"}
    back = outgoing_of(json.loads(_ENCODE(_job(out, "mid", 1.0, set(), [], set()))))
    for f in dataclasses.fields(Outgoing):
        if f.name not in never_deferred:
            assert getattr(back, f.name) == getattr(out, f.name), f.name
