"""STS and credentials unkai recognises: with ``--access-key`` the server verifies every
signature against the configured pair, IAM users' access keys and STS sessions, whose
expiry runs on unkai's clock; a function's handler runs as its execution role."""

from __future__ import annotations

import io
import json
import zipfile

import boto3
import pytest
from botocore.exceptions import ClientError

from unkai.testing import UnkaiServer

ROOT = {"aws_access_key_id": "AKIDUNKAIROOT", "aws_secret_access_key": "root-secret"}
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"},
    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"}, "Action": "sts:AssumeRole"}]})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with UnkaiServer(tmp_path_factory.mktemp("sts"), "--access-key", ROOT["aws_access_key_id"],
                     "--secret-key", ROOT["aws_secret_access_key"]) as srv:
        yield srv


def client(server, service, **creds):
    return boto3.client(service, endpoint_url=server.endpoint, region_name="us-east-1", **(creds or ROOT))


def _code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def test_configured_credentials_are_the_accounts_root(server):
    who = client(server, "sts").get_caller_identity()
    assert (who["Account"], who["Arn"]) == ("000000000000", "arn:aws:iam::000000000000:root")
    with pytest.raises(ClientError) as exc:
        client(server, "sts", aws_access_key_id="AKIAUNKNOWN000000000", aws_secret_access_key="x").get_caller_identity()
    assert _code(exc) == "InvalidClientTokenId"


def test_iam_access_keys_sign_requests_until_deactivated(server):
    iam = client(server, "iam")
    user = iam.create_user(UserName="alice")["User"]
    key = iam.create_access_key(UserName="alice")["AccessKey"]
    alice = client(server, "sts", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    who = alice.get_caller_identity()
    assert (who["Arn"], who["UserId"]) == (user["Arn"], user["UserId"])
    assert client(server, "sts").get_access_key_info(AccessKeyId=key["AccessKeyId"])["Account"] == "000000000000"
    wrong = client(server, "sts", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key="not-the-secret")
    with pytest.raises(ClientError) as exc:
        wrong.get_caller_identity()
    assert _code(exc) == "SignatureDoesNotMatch"
    iam.update_access_key(UserName="alice", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    with pytest.raises(ClientError) as exc:
        alice.get_caller_identity()
    assert _code(exc) == "InvalidClientTokenId"


def test_assumed_role_credentials_work_until_they_expire_on_the_clock(server):
    iam = client(server, "iam")
    role = iam.create_role(RoleName="worker", AssumeRolePolicyDocument=TRUST, MaxSessionDuration=7200)["Role"]
    out = client(server, "sts").assume_role(RoleArn=role["Arn"], RoleSessionName="job-1", DurationSeconds=900)
    assert out["AssumedRoleUser"]["Arn"] == "arn:aws:sts::000000000000:assumed-role/worker/job-1"
    assert out["AssumedRoleUser"]["AssumedRoleId"] == f"{role['RoleId']}:job-1"
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    session = dict(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                   aws_session_token=creds["SessionToken"])
    assert client(server, "sts", **session).get_caller_identity()["Arn"] == out["AssumedRoleUser"]["Arn"]
    client(server, "sqs", **session).list_queues()  # any service accepts them
    without_token = {k: v for k, v in session.items() if k != "aws_session_token"}
    with pytest.raises(ClientError) as exc:
        client(server, "sts", **without_token).get_caller_identity()
    assert _code(exc) == "InvalidClientTokenId"
    with pytest.raises(ClientError) as exc:
        client(server, "sts").assume_role(RoleArn=role["Arn"], RoleSessionName="long", DurationSeconds=10800)
    assert _code(exc) == "ValidationError"
    server.advance(901)
    with pytest.raises(ClientError) as exc:
        client(server, "sts", **session).get_caller_identity()
    assert _code(exc) == "ExpiredToken"
    with pytest.raises(ClientError) as exc:
        client(server, "sqs", **session).list_queues()
    assert exc.value.response["Error"]["Code"] in ("ExpiredToken", "AWS.SimpleQueueService.ExpiredToken",
                                                   "ExpiredTokenException")


def test_session_tokens_and_federation_tokens(server):
    creds = client(server, "sts").get_session_token(DurationSeconds=900)["Credentials"]
    session = client(server, "sts", aws_access_key_id=creds["AccessKeyId"],
                     aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
    assert session.get_caller_identity()["Arn"] == "arn:aws:iam::000000000000:root"
    fed = client(server, "sts").get_federation_token(Name="bob")
    assert fed["FederatedUser"]["Arn"] == "arn:aws:sts::000000000000:federated-user/bob"


def test_a_handler_runs_as_its_execution_role(server):
    iam = client(server, "iam")
    role = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument=TRUST)["Role"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", "import boto3\n\ndef handler(event, context):\n"
                               "    return boto3.client('sts').get_caller_identity()['Arn']\n")
    lam = client(server, "lambda")
    lam.create_function(FunctionName="whoami", Runtime="python3.12", Role=role["Arn"], Handler="index.handler",
                        Code={"ZipFile": buf.getvalue()})
    result = lam.invoke(FunctionName="whoami")
    assert json.loads(result["Payload"].read()) == "arn:aws:sts::000000000000:assumed-role/fn-role/whoami"
