"""examples/signup end to end (the book's chapter 5): the form's POST stores the user
under the next id of the atomic counter and SES (us-east-1, in the sandbox) mails a
48-hour presigned link that downloads the private file until unkai's clock passes 48 h."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from examples_support import EXAMPLES, follow_verification, outputs, reader_steps, request, run_readme
from tests.ses_support import verify
from unkai.testing import UnkaiServer

REGION = "ap-northeast-1"
SENDER = "shop@example.com"
READER = "yamada@example.co.jp"
YOU = "you@example.com"  # the README's reader
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    port = UnkaiServer.free_port()
    server = UnkaiServer(tmp_path_factory.mktemp("signup") / "state", str(EXAMPLES / "signup"),
                         "--parameter-overrides", f"MailFrom={SENDER}", region=REGION, port=port).start(timeout=120)
    try:
        # the README's set-up (it verifies the sender and you@example.com), then the links followed
        first, _ = reader_steps("signup", "verify-email-identity", pause_after=("unkai mail ",))
        done = run_readme(first, server, EXAMPLES.parent, tmp_path_factory.mktemp("home"))
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.count("Email Address Verification Request") == 2, done.stdout
        follow_verification(server, SENDER)
        follow_verification(server, YOU)
        verify(server, server.client("ses", "us-east-1"), READER)
        yield server, outputs(server, "signup")
    finally:
        server.stop()


def post(url: str, **fields: str) -> tuple[int, dict, bytes]:
    return request(url, "POST", urllib.parse.urlencode(fields).encode(), FORM)


def test_a_signup_is_stored_and_mailed_a_link_that_works_for_48_hours(stack):
    server, out = stack
    after = server.mail_seq()
    status, headers, body = post(out["RegistUrl"], username="山田太郎", email=READER)
    assert status == 200, body
    assert "登録ありがとうございました。" in body.decode()
    dynamodb = server.resource("dynamodb", REGION)
    assert dynamodb.Table("sequence").get_item(Key={"tablename": "user"})["Item"]["seq"] >= 1
    (mail,) = server.wait_for_mail(to=READER, subject="登録ありがとうございました", after=after)
    assert mail["from"] == SENDER and mail["reply_to"] == [SENDER]
    url = re.search(r"(http://\S+special\.pdf\?\S+)", mail["text"]).group(1)
    assert mail["text"] == f"\n山田太郎様\n\nご登録ありがとうございました。\n下記のURLからダウンロードできます。\n\n{url}\n"
    users = dynamodb.Table("user").scan()["Items"]
    (user,) = [u for u in users if u["url"] == url]
    assert user["username"] == "山田太郎" and user["email"] == READER and user["host"] == "127.0.0.1"
    assert isinstance(user["accepted_at"], Decimal) and abs(float(user["accepted_at"]) - time.time()) < 600
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    if "X-Amz-Expires" in query:  # SigV4
        assert query["X-Amz-Expires"] == "172800"
    else:  # SigV2: an absolute time
        assert abs(int(query["Expires"]) - (float(user["accepted_at"]) + 172800)) < 5
    status, _, pdf = request(url)
    assert status == 200 and pdf.startswith(b"%PDF")
    server.advance(48 * 3600 + 1)
    status, _, _ = request(url)
    assert status == 403


def test_the_ajax_form_gets_json_with_the_websites_cors_header(stack):
    server, out = stack
    server.advance(1.1)  # the sandbox sends 1 message per second
    status, headers, body = post(out["RegistUrl"] + "-ajax", username="ajax", email=READER)
    assert status == 200 and json.loads(body) == {"result": 1}
    bucket = out["FormUrl"].rsplit("/", 1)[1]
    website = f"http://{bucket}.s3-website-{REGION}.amazonaws.com"
    assert {k.lower(): v for k, v in headers.items()}["access-control-allow-origin"] == website


def test_concurrent_signups_get_distinct_ids_and_the_list_shows_json_numbers(stack):
    server, out = stack
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda i: post(out["RegistUrl"], username=f"u{i}",
                                                email="success@simulator.amazonses.com"), range(6)))
    assert all(a[0] == 200 for a in answers), answers
    status, _, body = request(out["UsersUrl"])
    users = json.loads(body)
    ids = [u["id"] for u in users]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    assert {f"u{i}" for i in range(6)} <= {u["username"] for u in users}
    assert all(isinstance(u["accepted_at"], float) for u in users)


def test_an_unverified_recipient_in_the_sandbox_gets_the_error_page(stack):
    server, out = stack
    after = server.mail_seq()
    status, _, body = post(out["RegistUrl"], username="誰か", email="stranger@example.net")
    assert status == 500 and "内部エラーが発生しました。" in body.decode()
    assert [m for m in server.mail("stranger@example.net") if m["seq"] > after] == []


def test_a_database_failure_gets_the_error_page(stack):
    server, out = stack
    table = server.resource("dynamodb", REGION).Table("sequence")
    seed = table.get_item(Key={"tablename": "user"})["Item"]
    table.delete_item(Key={"tablename": "user"})  # "set seq = seq + :val" now fails
    try:
        status, _, body = post(out["RegistUrl"], username="x", email="success@simulator.amazonses.com")
        assert status == 500 and "内部エラーが発生しました。" in body.decode()
    finally:
        table.put_item(Item=seed)


def test_the_readmes_last_command_shows_the_signup_mail(stack, tmp_path):
    """After the README's set-up (in the fixture) and a signup as you@example.com, its last
    line lists that mail."""
    server, out = stack
    server.advance(1.1)  # the sandbox sends 1 message per second
    assert post(out["RegistUrl"], username="you", email=YOU)[0] == 200
    server.wait_for_mail(to=YOU, subject="登録ありがとうございました")
    _, last = reader_steps("signup", "verify-email-identity", pause_after=("unkai mail ",))
    assert last[-1] == "unkai mail --to you@example.com"
    done = run_readme(last, server, EXAMPLES.parent, tmp_path)
    assert done.returncode == 0 and "登録ありがとうございました" in done.stdout, done.stdout + done.stderr
