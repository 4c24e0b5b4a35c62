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


class _Issuer:
    """An OpenID Connect issuer on loopback: its configuration and JWKS, and tokens it signs."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import jwt
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                doc = {"/.well-known/openid-configuration": {"issuer": issuer.url,
                                                            "jwks_uri": issuer.url + "/keys"},
                       "/keys": {"keys": [{**public, "kid": "k1", "alg": "RS256", "use": "sig"}]}}.get(self.path)
                body = json.dumps(doc).encode()
                self.send_response(200 if doc else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def token(self, key=None, **claims) -> str:
        import time

        import jwt

        body = {"iss": self.url, "sub": "device-7", "aud": "my-app", "exp": int(time.time()) + 365 * 86400, **claims}  # unkai's clock may be ahead
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": "k1"})


def test_web_identity_tokens_are_verified_against_the_issuers_keys(server):
    """AssumeRoleWithWebIdentity checks the token's signature with the keys its issuer
    publishes (an OIDC provider's JWKS, or a Cognito pool's), as AWS does."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    sts = client(server, "sts")
    role = "arn:aws:iam::000000000000:role/web-role"
    issuer = _Issuer()
    try:
        out = sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="web",
                                                WebIdentityToken=issuer.token())
        assert out["SubjectFromWebIdentityToken"] == "device-7" and out["Provider"] == issuer.url
        forged = issuer.token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
        with pytest.raises(ClientError) as exc:
            sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="web", WebIdentityToken=forged)
        assert _code(exc) == "InvalidIdentityToken" and "could not be validated" in str(exc.value)
    finally:
        issuer.http.shutdown()
    with pytest.raises(ClientError) as exc:  # the issuer is gone
        sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="web",
                                          WebIdentityToken=_Issuer.token(issuer, iss="http://127.0.0.1:9"))
    assert _code(exc) == "IDPCommunicationError"

    # a Cognito user pool's ID token, checked with the pool's own keys
    idp = client(server, "cognito-idp")
    pool = idp.create_user_pool(PoolName="web")["UserPool"]["Id"]
    app = idp.create_user_pool_client(UserPoolId=pool, ClientName="app",
                                      ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH",
                                                         "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool, Username="ann", TemporaryPassword="Passw0rd!x", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool, Username="ann", Password="Passw0rd!x", Permanent=True)
    tokens = idp.admin_initiate_auth(UserPoolId=pool, ClientId=app, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                                     AuthParameters={"USERNAME": "ann", "PASSWORD": "Passw0rd!x"})
    id_token = tokens["AuthenticationResult"]["IdToken"]
    out = sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="ann", WebIdentityToken=id_token)
    assert out["Provider"].endswith(pool)
    head, body, signature = id_token.split(".")
    tampered = f"{head}.{body}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    with pytest.raises(ClientError) as exc:
        sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="ann", WebIdentityToken=tampered)
    assert _code(exc) == "InvalidIdentityToken"


def test_decode_authorization_message_refuses_a_message_it_did_not_issue(server):
    sts = client(server, "sts")
    for message in ("not-a-message", "eyJhIjogMX0"):  # garbage, and JSON without unkai's MAC
        with pytest.raises(ClientError) as exc:
            sts.decode_authorization_message(EncodedMessage=message)
        assert exc.value.response["Error"]["Code"] == "InvalidAuthorizationMessageException"
        assert exc.value.response["Error"]["Message"] == "The encoded message is invalid."


def test_regional_and_global_endpoints_answer_alike(server):
    """A client of the global endpoint signs for us-east-1, a regional one for its own region
    (botocore's sts_regional_endpoints); unkai answers both as the same account."""
    for region in ("us-east-1", "eu-west-1", "ap-northeast-1"):
        sts = boto3.client("sts", endpoint_url=server.endpoint, region_name=region, **ROOT)
        assert sts.get_caller_identity()["Account"] == "000000000000"
