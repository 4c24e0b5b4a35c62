"""Seed examples under ``unkai up --access-key/--secret-key``: every request's signature is
verified, so the stacks only work end to end if each function's handler signs its own boto3
calls with its execution role's session credentials (and presigned URLs it makes are
accepted), and unkai's own service-to-service work (SNS -> SQS, the queue and stream
pollers, SNS -> email, SES) keeps running without user credentials."""

from __future__ import annotations

import json
import re
import sys
import urllib.parse
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))

from examples_support import EXAMPLES, eventually, json_body, outputs, path_form, request  # noqa: E402
from ses_support import verify  # noqa: E402
from unkai.testing import UnkaiServer  # noqa: E402

ROOT = {"aws_access_key_id": "AKIDSIGNEDSTACKS", "aws_secret_access_key": "signed-stacks-secret"}
READER = "reader@example.com"
SENDER = "shop@example.com"


def start(state_dir: Path, name: str, region: str = "us-east-1", **parameters: str) -> UnkaiServer:
    args = [str(EXAMPLES / name), "--access-key", ROOT["aws_access_key_id"],
            "--secret-key", ROOT["aws_secret_access_key"]]
    for key, value in parameters.items():
        args += ["--parameter-overrides", f"{key}={value}"]
    return UnkaiServer(state_dir, *args, region=region, port=UnkaiServer.free_port()).start(timeout=120)


def client(server: UnkaiServer, service: str, region: str = "us-east-1", **creds: str):
    return boto3.client(service, endpoint_url=server.endpoint, region_name=region, **(creds or ROOT),
                        config=Config(retries={"max_attempts": 1, "mode": "standard"}))


def signed_outputs(server: UnkaiServer, stack: str) -> dict[str, str]:
    described = client(server, "cloudformation", server.region).describe_stacks(StackName=stack)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE", server.output()
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


@pytest.fixture(scope="module")
def pubsub(tmp_path_factory):
    server = start(tmp_path_factory.mktemp("signed-pubsub") / "state", "pubsub-stream-email",
                   NotificationEmail=READER)
    try:
        yield server, signed_outputs(server, "pubsub-stream-email")
    finally:
        server.stop()


@pytest.fixture(scope="module")
def signup(tmp_path_factory):
    server = start(tmp_path_factory.mktemp("signed-signup") / "state", "signup", region="ap-northeast-1",
                   MailFrom=SENDER)
    try:
        ses = client(server, "ses")
        verify(server, ses, SENDER)
        verify(server, ses, READER)
        yield server, signed_outputs(server, "signup")
    finally:
        server.stop()


@pytest.mark.parametrize("creds, code", [
    ({"aws_access_key_id": "AKIAUNKNOWN000000000", "aws_secret_access_key": "x"}, "UnrecognizedClientException"),
    ({"aws_access_key_id": ROOT["aws_access_key_id"], "aws_secret_access_key": "wrong"}, "InvalidSignatureException"),
])
def test_a_client_with_unknown_or_wrong_credentials_is_refused(pubsub, creds, code):
    server, out = pubsub
    with pytest.raises(ClientError) as exc:
        client(server, "dynamodb", **creds).scan(TableName=out["ItemsTableName"])
    assert exc.value.response["Error"]["Code"] == code
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403)


def test_an_unsigned_request_is_refused(pubsub):
    server, out = pubsub
    status, _, body = request(server.endpoint + "/", "POST",
                              json.dumps({"TableName": out["ItemsTableName"]}).encode(),
                              {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.Scan"})
    assert status == 400 and json_body(body)["__type"].endswith("MissingAuthenticationTokenException"), body


def test_pubsub_stream_email_runs_end_to_end_signed(pubsub):
    """API -> SNS -> SQS -> Lambda (puts the item with its role's credentials) -> stream ->
    Lambda (publishes with its role's credentials) -> SNS email."""
    server, out = pubsub
    (confirmation,) = eventually(lambda: server.mail(to=READER))
    link = re.search(r"http://\S+/_unkai/sns/confirmation\.html\?\S+", server.mail_message(confirmation["id"])["text"])
    status, _, page = request(link.group(0))
    assert status == 200 and b"Subscription confirmed!" in page

    status, _, body = request(path_form(out["PublishUrl"]), "POST",
                              json.dumps({"message": "Signed all the way"}).encode(),
                              {"Content-Type": "application/json"})
    assert status == 200 and json_body(body) == "A new message has been published", body

    items = eventually(lambda: client(server, "dynamodb").scan(TableName=out["ItemsTableName"])["Items"])
    assert [i["message"]["S"] for i in items] == ["Signed all the way"]
    (mail,) = server.wait_for_mail(to=READER, subject="Published From")
    assert mail["subject"] == "Published From: getDataFromDynamodbStream"
    assert mail["text"].startswith("Signed all the way\n")


def test_signup_runs_end_to_end_signed(signup):
    """The handler's DynamoDB counter, its presigned S3 URL (signed with a session token)
    and its SES mail all pass signature verification."""
    server, out = signup
    status, _, body = request(path_form(out["RegistUrl"]), "POST",
                              urllib.parse.urlencode({"username": "signed", "email": READER}).encode(),
                              {"content-type": "application/x-www-form-urlencoded"})
    assert status == 200 and "登録ありがとうございました。" in body.decode(), body.decode()
    (mail,) = server.wait_for_mail(to=READER, subject="登録ありがとうございました")
    url = re.search(r"(http://\S+special\.pdf\?\S+)", mail["text"]).group(1)
    status, _, pdf = request(url)
    assert status == 200 and pdf.startswith(b"%PDF"), (url, pdf)
    signature = re.search(r"(?:X-Amz-Signature|Signature)=([^&]+)", url).group(1)
    assert request(url.replace(signature, "0" + signature[1:] if signature[0] != "0" else "1" + signature[1:]))[0] == 403
    users = client(server, "dynamodb", "ap-northeast-1").scan(TableName="user")["Items"]
    assert [u["username"]["S"] for u in users] == ["signed"]
