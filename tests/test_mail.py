"""The local mailbox from a user's seat: ``unkai mail`` lists, follows (-f) and shows
mail with its attachments; ``GET /_unkai/mail?after=&wait=`` long-polls for new mail."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

from tests.ses_support import fresh_region, verify


def _cli(unkai, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unkai", "mail", *args, "--endpoint-url", unkai.endpoint]
                          if args[:1] != ("show",) else
                          [sys.executable, "-m", "unkai", "mail", "--endpoint-url", unkai.endpoint, *args],
                          capture_output=True, text=True, timeout=60)


def _send_with_attachment(unkai, region: str, to: str) -> str:
    v2 = unkai.client("sesv2", region)
    return v2.send_email(FromEmailAddress=to, Destination={"ToAddresses": [to]}, Content={"Simple": {
        "Subject": {"Data": "Invoice"}, "Body": {"Html": {"Data": "<p>Pay <a href='https://pay.example/1'>here</a>"
                                                                  "</p>"}},
        "Attachments": [{"FileName": "invoice.csv", "ContentType": "text/csv", "RawContent": b"a,b\n1,2\n"}]}}
    )["MessageId"]


def test_unkai_mail_shows_a_mail_renders_its_html_and_saves_attachments(unkai, tmp_path):
    region = fresh_region()
    verify(unkai, unkai.client("ses", region), "bill@example.com")
    mid = _send_with_attachment(unkai, region, "bill@example.com")
    done = _cli(unkai, "show", mid, "--save-attachments", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "Subject: Invoice" in done.stdout
    assert "Pay here <https://pay.example/1>" in done.stdout  # HTML as text
    assert "invoice.csv (text/csv, 8 bytes)" in done.stdout
    assert (tmp_path / "invoice.csv").read_bytes() == b"a,b\n1,2\n"
    listed = json.loads(_cli(unkai, "--json", "--to", "bill@example.com").stdout)
    assert [m["message_id"] for m in listed if m["subject"] == "Invoice"] == [mid]
    missing = _cli(unkai, "show", "no-such-id")
    assert missing.returncode == 1 and "no such message" in missing.stderr


def test_unkai_mail_follow_prints_mail_as_it_arrives(unkai):
    region = fresh_region()
    verify(unkai, unkai.client("ses", region), "watch@example.com")
    proc = subprocess.Popen([sys.executable, "-m", "unkai", "mail", "-f", "--json", "--to", "watch@example.com",
                             "--endpoint-url", unkai.endpoint], stdout=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())  # the verification mail, already there
        assert "Verification" in first["subject"]
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()))
        reader.start()
        _send_with_attachment(unkai, region, "watch@example.com")
        reader.join(30)
        assert json.loads(lines[0])["subject"] == "Invoice"
    finally:
        proc.kill()
        proc.wait()


def test_the_mail_endpoint_long_polls_for_newer_mail(unkai):
    region = fresh_region()
    ses = unkai.client("ses", region)
    after = unkai.mail_seq()
    got: list = []
    poll = threading.Thread(target=lambda: got.append(unkai.get(f"/_unkai/mail?after={after}&wait=20")))
    poll.start()
    ses.verify_email_identity(EmailAddress="poll@example.com")
    poll.join(30)
    assert [m["to"] for m in got[0]] == [["poll@example.com"]]
    assert unkai.get(f"/_unkai/mail?after={got[0][0]['seq']}") == []


def test_a_mail_ses_answered_for_survives_kill_9(tmp_path):
    from unkai.testing import UnkaiServer

    server = UnkaiServer(tmp_path / "state").start()
    try:
        ses = server.client("ses")
        ses.verify_domain_identity(Domain="durable.example")
        server.advance(61)
        mid = ses.send_email(Source="a@durable.example", Destination={"ToAddresses": ["success@simulator.amazonses.com"]},
                             Message={"Subject": {"Data": "kept"}, "Body": {"Text": {"Data": "still here"}}})["MessageId"]
        server.kill()
        server.start()
        kept = server.mail_message(mid)
        assert kept["subject"] == "kept" and kept["text"].strip() == "still here"
    finally:
        server.stop()


def test_a_simple_message_is_written_and_read_as_the_email_package_would():
    """A send builds its common messages (text and/or HTML, no attachments) by hand, with
    their parse known without reading them back: the bytes must be the ``email`` package's
    and the parse what ``parse`` reads from them (Japanese, CR/LF mixes, long Message-IDs
    and links, encoded names, multipart/alternative, empty bodies)."""
    import random
    import re

    from unkai.mail import _build_mime, build_parsed, parse

    rng = random.Random(13)
    pieces = ["Hello", " ", "From me", "\n", "\r\n", "\r", "é", "登録ありがとうございました", "=?utf-8?q?x?=", "--",
              "x" * 90, ".", "<p>", "&amp;"]
    mid = "<0100018c12345678-0b2b0e2c-5f0e-4c59-9a3b-1a2b3c4d5e6f-000000@email.amazonses.com>"
    unsubscribe = [("List-Unsubscribe", "<http://127.0.0.1:4566/_unkai/ses/unsubscribe/0100018c1234-0b2b0e2c-"
                                        "5f0e-4c59-9a3b-1a2b3c4d5e6f-000000>"),
                   ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")]
    boundary = re.compile(r"={15}\d{19}==")
    for i in range(400):
        def text(k: int) -> str:
            return "".join(rng.choice(pieces) for _ in range(rng.randint(0, k)))

        kw = dict(cc=rng.choice([None, ["c@example.com"]]), reply_to=rng.choice([None, ["r@example.com"]]),
                  headers=rng.choice([None, unsubscribe]), date=1e9 + i, msg_id=rng.choice([mid, "<m@x>"]))
        args = (rng.choice(["b@example.com", "Bé <b@example.com>", "Shop <b@example.com>"]),
                rng.sample(["s@example.com", "t@example.com", "東京 <u@example.com>"], rng.randint(1, 2)),
                rng.choice(["bench", "登録ありがとうございました", "Your order", text(2)]),
                rng.choice([None, text(8)]), rng.choice([None, text(8)]))
        raw, parsed = build_parsed(*args, **kw)
        slow = _build_mime(*args, **kw)
        assert boundary.sub("B", raw.decode()) == boundary.sub("B", slow.decode())
        assert boundary.sub("B", json.dumps(parsed)) == boundary.sub("B", json.dumps(parse(slow)))
