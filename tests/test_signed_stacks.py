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

from examples_support import EXAMPLES, eventually, json_body, outputs, request  # noqa: E402
from ses_support import verify  # noqa: E402
from unkai.testing import UnkaiServer  # noqa: E402

ROOT = {"aws_access_key_id": "AKIDSIGNEDSTACKS", "aws_secret_access_key": "signed-stacks-secret"}
READER = "reader@example.com"
SENDER = "shop@example.com"


SIGNED = ["--access-key", ROOT["aws_access_key_id"], "--secret-key", ROOT["aws_secret_access_key"]]


def start(state_dir: Path, name: str, region: str = "us-east-1", **parameters: str) -> UnkaiServer:
    """``unkai up examples/NAME`` verifying signatures; ``{endpoint}`` in a parameter is the
    server's own address."""
    port = UnkaiServer.free_port()
    args = [str(EXAMPLES / name), *SIGNED]
    for key, value in parameters.items():
        args += ["--parameter-overrides", f"{key}={value.format(endpoint=f'http://127.0.0.1:{port}')}"]
    return UnkaiServer(state_dir, *args, region=region, port=port).start(timeout=120)


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

    status, _, body = request(out["PublishUrl"], "POST",
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
    status, _, body = request(out["RegistUrl"], "POST",
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


def test_the_flagship_runs_end_to_end_signed(tmp_path):
    """The Q&A form: API -> SNS -> three queues -> Teams, Backlog and the table -> stream ->
    the instructor's WebSocket, every handler signing with its role."""
    from websockets.sync.client import connect

    server = start(tmp_path / "state", "qa-form", TeamsWebhookUrl="{endpoint}/_unkai/inbox/teams",
                   BacklogUrl="{endpoint}/_unkai/inbox/backlog?apiKey=")
    try:
        out = signed_outputs(server, "qa-form")
        with connect(out["LiveUrl"], open_timeout=60) as instructor:
            query = urllib.parse.urlencode({"project_id": "P-7", "contact_detail": "signed question"})
            status, _, body = request(f"{out['QuestionApiUrl']}?{query}", "POST")
            assert status == 200 and json_body(body) == {"result": "ok"}, body
            pushed = json.loads(instructor.recv(timeout=30))
        assert pushed["question"]["contact_detail"] == "signed question"
        assert eventually(lambda: server.inbox("teams"))[0]["json"]["text"] == "signed question  P-7"
        assert eventually(lambda: server.inbox("backlog"))[0]["json"]["description"] == "signed question"
        items = client(server, "dynamodb").scan(TableName="qa-questions")["Items"]
        assert [i["contact_detail"]["S"] for i in items] == ["signed question"]
    finally:
        server.stop()


def test_websocket_notices_run_signed(tmp_path):
    """$connect/$disconnect handlers write the connection table and sendmessage posts to
    @connections, all with the function's role credentials."""
    from websockets.sync.client import connect

    server = start(tmp_path / "state", "websocket-notify")
    try:
        out = signed_outputs(server, "websocket-notify")
        url = out["WebSocketUrl"]
        with connect(url, open_timeout=60) as alice, connect(url, open_timeout=60) as bob:
            alice.send(json.dumps({"action": "sendmessage", "message": "signed notice"}))
            assert {json.loads(ws.recv(timeout=30))["message"] for ws in (alice, bob)} == {"signed notice"}
            rows = client(server, "dynamodb").scan(TableName="connection")["Items"]
            assert len(rows) == 2
        eventually(lambda: client(server, "dynamodb").scan(TableName="connection")["Items"] == [])
    finally:
        server.stop()


def test_the_user_apis_itest_passes_signed(tmp_path):
    """The talk's layered user API (Cognito admin_create_user, then DynamoDB) with its own
    E2E suite signing with the server's credentials."""
    import os
    import subprocess

    state = tmp_path / "state"
    with UnkaiServer(state, *SIGNED).start() as setup:
        setup.client("ssm").put_parameter(Name="/dev/lambda/Env", Value="dev", Type="String")
    server = start(state, "user-api")
    try:
        env = dict(os.environ, AWS_ENDPOINT_URL=server.endpoint, AWS_ACCESS_KEY_ID=ROOT["aws_access_key_id"],
                   AWS_SECRET_ACCESS_KEY=ROOT["aws_secret_access_key"], AWS_DEFAULT_REGION=server.region)
        env.pop("AWS_PROFILE", None)
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(EXAMPLES / "user-api" / "itest"), "--env", "dev"],
                              capture_output=True, text=True, timeout=300, env=env, cwd=EXAMPLES / "user-api")
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:] + server.output()[-3000:]
        assert "7 passed" in done.stdout
    finally:
        server.stop()


def test_the_mailing_list_runs_signed(tmp_path):
    """Upload -> S3 notification -> queue per address -> scheduled sender -> SES -> bounce
    through SNS -> the table marked, every call signed."""
    region, sender, sim = "ap-northeast-1", "list@example.com", "@simulator.amazonses.com"
    state = tmp_path / "state"
    with UnkaiServer(state, *SIGNED, region=region).start() as setup:
        ses = setup.client("ses", "us-east-1")
        verify(setup, ses, sender)
        topic = setup.client("sns", "us-east-1").create_topic(Name="bounce-notifications")["TopicArn"]
        ses.set_identity_notification_topic(Identity=sender, NotificationType="Bounce", SnsTopic=topic)
    server = start(state, "mailing-list", region=region, MailFrom=sender, BounceTopicArn=topic)
    try:
        out = signed_outputs(server, "mailing-list")
        table = server.resource("dynamodb", region).Table("mailaddress")
        for i, email in enumerate((f"success{sim}", f"bounce{sim}")):
            table.put_item(Item={"email": email, "username": f"user{i}", "haserror": 0})
        after = server.mail_seq()
        server.client("s3", region).put_object(Bucket=out["MailBodyBucketName"], Key="news.txt",
                                               Body="News\n\n{username}様\n".encode())
        server.drain(60)
        sqs = server.client("sqs", region)
        for _ in range(6):
            server.advance(300)
            server.drain(60)
            attrs = sqs.get_queue_attributes(QueueUrl=out["QueueUrl"], AttributeNames=["All"])["Attributes"]
            if attrs["ApproximateNumberOfMessages"] == attrs["ApproximateNumberOfMessagesNotVisible"] == "0":
                break
        sent = sorted(to for m in server.mail() if m["seq"] > after and m["from"] == sender for to in m["to"])
        assert sent == [f"bounce{sim}", f"success{sim}"], server.output()[-3000:]
        assert eventually(lambda: table.get_item(Key={"email": f"bounce{sim}"})["Item"]["haserror"] == 1)
    finally:
        server.stop()


def test_structured_logs_reach_s3_and_athena_signed(tmp_path):
    """Function -> Kinesis -> Firehose -> S3 and Athena over Glue, signed."""
    import time

    server = start(tmp_path / "state", "structured-logs", OperatorEmail="operator@example.com")
    try:
        out = signed_outputs(server, "structured-logs")
        lam = client(server, "lambda")
        resp = lam.invoke(FunctionName=out["FunctionName"],
                          Payload=json.dumps({"device_id": "123456789", "hub_uuid": "hub-1", "nodes": ["node-1"]}))
        assert "FunctionError" not in resp, resp["Payload"].read()
        server.drain()
        server.advance(61)
        server.drain()
        athena = client(server, "athena")

        def rows() -> list | None:
            qid = athena.start_query_execution(
                QueryString="SELECT log_event FROM application WHERE device_id='123456789' ORDER BY timestamp",
                WorkGroup=out["WorkGroupName"],
                QueryExecutionContext={"Database": out["DatabaseName"]})["QueryExecutionId"]
            deadline = time.monotonic() + 60
            while athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] in (
                    "QUEUED", "RUNNING") and time.monotonic() < deadline:
                time.sleep(0.1)
            result = athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"][1:]
            return [r["Data"][0]["VarCharValue"] for r in result] or None

        assert eventually(rows) == ["NodeRegisterStarted", "NodeRegisterFinished"]
    finally:
        server.stop()
