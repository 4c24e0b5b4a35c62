"""The security model of docs/security.md, tried as an attacker would: each test is one
of issue 11's findings, with real requests over real sockets to a running unkai (a
browser page on a foreign origin is in test_security_browser.py)."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import stat
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest

from unkai.store import Store
from unkai.testing import UnkaiServer, new_queue


def raw(server: UnkaiServer, method: str, path: str, body: bytes = b"", **headers: str) -> tuple[int, bytes]:
    """One request with exactly these headers (Host too), as a browser or a stray client sends it."""
    parts = urlsplit(server.endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        names = {k.lower() for k in headers}
        conn.putrequest(method, path, skip_host="host" in names, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name.replace("_", "-"), value)
        if body or method in ("POST", "PUT"):
            conn.putheader("content-length", str(len(body)))
        conn.endheaders(body or None)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    """unkai with credentials, the secret given as a file (never on the command line)."""
    base = tmp_path_factory.mktemp("strict")
    secret = base / "secret"
    secret.write_text("s3cr3t-for-tests\n")
    server = UnkaiServer(base / "state", "--access-key", "AKIDSECURITY", "--secret-key", f"@{secret}").start()
    yield server
    server.stop()


def signed_client(server: UnkaiServer, service: str, secret: str = "s3cr3t-for-tests"):
    import boto3
    from botocore.config import Config

    return boto3.client(service, endpoint_url=server.endpoint, region_name="us-east-1",
                        aws_access_key_id="AKIDSECURITY", aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}))


def sigv4(server: UnkaiServer, method: str, path: str, secret: str = "s3cr3t-for-tests") -> dict[str, str]:
    request = botocore.awsrequest.AWSRequest(method=method, url=server.url(path), data=b"")
    creds = botocore.credentials.Credentials("AKIDSECURITY", secret)
    botocore.auth.SigV4Auth(creds, "unkai", "us-east-1").add_auth(request)
    return dict(request.headers.items())


# -- 1. the clock ---------------------------------------------------------------------------


def test_unsigned_clock_advance_is_refused_when_signatures_are_verified(strict):
    sqs = signed_client(strict, "sqs")
    url, _ = new_queue(sqs, MessageRetentionPeriod="60")
    sqs.send_message(QueueUrl=url, MessageBody="keep me")
    status, body = raw(strict, "POST", "/_unkai/clock/advance?seconds=3456000")
    assert status == 403 and b"X-Unkai-Token" in body
    status, _ = raw(strict, "POST", "/_unkai/clock/advance?seconds=1", **{"x-unkai-token": "wrong"})
    assert status == 403
    status, _ = raw(strict, "POST", "/_unkai/clock/advance?seconds=1",
                    **sigv4(strict, "POST", "/_unkai/clock/advance?seconds=1", secret="wrong"))
    assert status == 403
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == ["keep me"]
    # the token unkai printed (and wrote to its owner-only server.json), or a signed request, is let in
    assert strict.get("/_unkai/clock")["offset"] == 0
    status, _ = raw(strict, "POST", "/_unkai/clock/advance?seconds=1",
                    **sigv4(strict, "POST", "/_unkai/clock/advance?seconds=1"))
    assert status == 200
    assert strict.advance(2)["offset"] == 3
    assert "X-Unkai-Token" in strict.output()


@pytest.mark.parametrize("seconds", ["inf", "-inf", "nan", "1e18", "1e308", "-1", "abc", ""])
def test_clock_advance_takes_only_finite_bounded_seconds(unkai, seconds):
    before = unkai.get("/_unkai/clock")["offset"]
    status, body = raw(unkai, "POST", f"/_unkai/clock/advance?seconds={seconds}", host="127.0.0.1")
    assert status == 400, body
    assert unkai.get("/_unkai/clock")["offset"] == before


@pytest.mark.parametrize("query", ["timeout=nan", "timeout=inf", "timeout=-1", "timeout=x"])
def test_drain_takes_only_finite_bounded_timeouts(unkai, query):
    assert raw(unkai, "POST", f"/_unkai/drain?{query}")[0] == 400


def test_a_state_dir_with_an_infinite_clock_offset_starts_and_serves(tmp_path):
    (tmp_path / "state").mkdir()
    store = Store(tmp_path / "state" / "unkai.db")  # what an older unkai saved after ?seconds=inf
    with store.transaction():
        store.set_meta("clock_offset", "inf")
    store.close()
    with UnkaiServer(tmp_path / "state") as server:
        assert server.get("/_unkai/clock")["offset"] == 0
        sqs = server.client("sqs")
        url, _ = new_queue(sqs)
        sqs.send_message(QueueUrl=url, MessageBody="after")
        assert [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == ["after"]


# -- 2. Host and Origin -----------------------------------------------------------------------


def test_a_dns_rebinding_host_is_refused(unkai):
    sqs = unkai.client("sqs")
    url, _ = new_queue(sqs)
    port = urlsplit(unkai.endpoint).port
    for path in ("/?Action=ListQueues", "/_unkai/health", "/_unkai/mail", f"/?Action=ReceiveMessage&QueueUrl={url}"):
        status, body = raw(unkai, "GET", path, host=f"evil.example:{port}")
        assert status == 421, (path, body)
        assert b"--allow-host" in body


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "localhost",
                                  "sqs.us-east-1.amazonaws.com", "queue.amazonaws.com:{port}",
                                  "sqs.us-east-1.localhost.localstack.cloud:{port}", "tools.localhost:{port}"])
def test_hosts_that_name_unkai_are_served(unkai, host):
    host = host.format(port=urlsplit(unkai.endpoint).port)
    status, body = raw(unkai, "GET", "/?Action=ListQueues&Version=2012-11-05", host=host)
    assert status == 200, body


def test_allow_host_adds_a_name(tmp_path):
    with UnkaiServer(tmp_path / "state", "--allow-host", "*.corp.example", "--allow-host", "box.lan") as server:
        for host, want in (("dev.corp.example", 200), ("box.lan:1", 200), ("corp.example.evil", 421)):
            assert raw(server, "GET", "/_unkai/health", host=host)[0] == want, host
        # an allowed host name is a local origin too
        assert raw(server, "GET", "/?Action=ListQueues", origin="http://box.lan:8080")[0] == 200


def test_a_foreign_page_cannot_delete_a_queue_with_a_simple_form_post(unkai):
    sqs = unkai.client("sqs")
    url, _ = new_queue(sqs)
    form = urlencode({"Action": "DeleteQueue", "QueueUrl": url}).encode()
    status, body = raw(unkai, "POST", "/", form, origin="https://evil.example",
                       content_type="application/x-www-form-urlencoded")
    assert status == 403 and b"AccessDenied" in body and b"--allow-origin https://evil.example" in body
    # an <img src> on that page: no Origin, but the browser says cross-site
    status, _ = raw(unkai, "GET", "/?" + urlencode({"Action": "DeleteQueue", "QueueUrl": url}),
                    sec_fetch_site="cross-site")
    assert status == 403
    status, _ = raw(unkai, "POST", "/", form, origin="null", content_type="application/x-www-form-urlencoded")
    assert status == 403
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    # a JSON-protocol call from a foreign page is refused in its own error shape
    status, body = raw(unkai, "POST", "/", b"{}", origin="https://evil.example", x_amz_target="DynamoDB_20120810.ListTables",
                       content_type="application/x-amz-json-1.0")
    assert status == 403 and b"AccessDeniedException" in body
    # pages on this machine (the examples' S3 websites, a dev server on localhost) go through
    port = urlsplit(unkai.endpoint).port
    for origin in (f"http://site.s3-website-us-east-1.localhost:{port}", "http://localhost:3000",
                   "http://127.0.0.1:5173", "http://[::1]:8000"):
        status, body = raw(unkai, "GET", "/?Action=ListQueues&Version=2012-11-05", origin=origin)
        assert status == 200, (origin, body)
    form = urlencode({"Action": "DeleteQueue", "QueueUrl": url}).encode()
    assert raw(unkai, "POST", "/", form, origin="http://localhost:3000",
               content_type="application/x-www-form-urlencoded")[0] == 200


def test_a_foreign_page_reaches_s3_only_where_the_bucket_cors_allows_it(unkai):
    s3 = unkai.client("s3")
    bucket = f"cors-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    assert raw(unkai, "PUT", f"/{bucket}/a.txt", b"x", origin="https://app.example")[0] == 403
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["https://app.example"], "AllowedMethods": ["PUT", "GET"]}]})
    assert raw(unkai, "PUT", f"/{bucket}/a.txt", b"x", origin="https://app.example")[0] == 200
    assert raw(unkai, "DELETE", f"/{bucket}/a.txt", origin="https://app.example")[0] == 403
    assert raw(unkai, "PUT", f"/{bucket}/b.txt", b"x", origin="https://other.example")[0] == 403
    assert s3.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"x"


def test_unkai_endpoints_refuse_every_cross_origin_request(unkai):
    before = unkai.get("/_unkai/clock")["offset"]
    port = urlsplit(unkai.endpoint).port
    for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}, {"origin": "null"}):
        for method, path in (("POST", "/_unkai/clock/advance?seconds=1000"), ("GET", "/_unkai/mail"),
                             ("GET", "/_unkai/inbox/x"), ("DELETE", "/_unkai/inbox/x"), ("GET", "/_unkai/feed")):
            status, body = raw(unkai, method, path, **headers)
            assert status == 403, (headers, path, body)
            assert b"access-control-allow-origin" not in body.lower()
    assert unkai.get("/_unkai/clock")["offset"] == before
    # the same requests from unkai's own origin, or with no browser at all, are served
    assert raw(unkai, "GET", "/_unkai/mail", origin=f"http://127.0.0.1:{port}")[0] == 200
    assert raw(unkai, "GET", "/_unkai/mail", sec_fetch_site="same-origin")[0] == 200


# -- 3. AWS_IAM is verified on function URLs and API routes -----------------------------------


def _sign_for(server: UnkaiServer, service: str, method: str, url: str, body: bytes = b"",
              secret: str = "s3cr3t-for-tests") -> dict[str, str]:
    request = botocore.awsrequest.AWSRequest(method=method, url=url, data=body)
    botocore.auth.SigV4Auth(botocore.credentials.Credentials("AKIDSECURITY", secret), service,
                            "us-east-1").add_auth(request)
    return {**dict(request.headers.items()), "host": urlsplit(url).netloc}  # signed, sent as is


def _iam_http_api(server: UnkaiServer, v2) -> tuple[str, str]:
    box = f"iam-{uuid.uuid4().hex[:6]}"
    api = v2.create_api(Name="iam", ProtocolType="HTTP")
    integ = v2.create_integration(ApiId=api["ApiId"], IntegrationType="HTTP_PROXY", IntegrationMethod="POST",
                                  IntegrationUri=f"{server.endpoint}/_unkai/inbox/{box}",
                                  PayloadFormatVersion="1.0")
    v2.create_route(ApiId=api["ApiId"], RouteKey="POST /items", AuthorizationType="AWS_IAM",
                    Target=f"integrations/{integ['IntegrationId']}")
    v2.create_stage(ApiId=api["ApiId"], StageName="$default", AutoDeploy=True)
    port = urlsplit(server.endpoint).port
    return f"{api['ApiId']}.execute-api.localhost:{port}", box


def test_aws_iam_routes_need_a_valid_signature(strict):
    host, box = _iam_http_api(strict, signed_client(strict, "apigatewayv2"))
    url = f"http://{host}/items"
    assert raw(strict, "POST", "/items", b"{}", host=host)[0] == 403
    assert raw(strict, "POST", "/items", b"{}", host=host, authorization="garbage")[0] == 403
    wrong = _sign_for(strict, "execute-api", "POST", url, b"{}", secret="wrong")
    assert raw(strict, "POST", "/items", b"{}", **wrong)[0] == 403
    signed = _sign_for(strict, "execute-api", "POST", url, b"{}")
    status, body = raw(strict, "POST", "/items", b"{}", **signed)
    assert status == 200, body
    assert len(strict.inbox(box)) == 1
    # a REST API method with AWS_IAM, MOCK behind it
    ag = signed_client(strict, "apigateway")
    rest = ag.create_rest_api(name="iam-rest")
    ag.put_method(restApiId=rest["id"], resourceId=rest["rootResourceId"], httpMethod="GET",
                  authorizationType="AWS_IAM")
    ag.put_integration(restApiId=rest["id"], resourceId=rest["rootResourceId"], httpMethod="GET", type="MOCK",
                       requestTemplates={"application/json": '{"statusCode": 200}'})
    ag.put_method_response(restApiId=rest["id"], resourceId=rest["rootResourceId"], httpMethod="GET",
                           statusCode="200")
    ag.put_integration_response(restApiId=rest["id"], resourceId=rest["rootResourceId"], httpMethod="GET",
                                statusCode="200", responseTemplates={"application/json": '{"ok": true}'})
    ag.create_deployment(restApiId=rest["id"], stageName="prod")
    rest_host = f"{rest['id']}.execute-api.localhost:{urlsplit(strict.endpoint).port}"
    assert raw(strict, "GET", "/prod/", host=rest_host, authorization="garbage")[0] == 403
    signed = _sign_for(strict, "execute-api", "GET", f"http://{rest_host}/prod/")
    status, body = raw(strict, "GET", "/prod/", **signed)
    assert status == 200 and json.loads(body) == {"ok": True}


def test_aws_iam_routes_want_a_well_formed_signature_in_the_default_mode(unkai):
    host, box = _iam_http_api(unkai, unkai.client("apigatewayv2"))
    assert raw(unkai, "POST", "/items", b"{}", host=host, authorization="garbage")[0] == 403
    signed = _sign_for(unkai, "execute-api", "POST", f"http://{host}/items", b"{}", secret="any")
    assert raw(unkai, "POST", "/items", b"{}", **signed)[0] == 200


def test_an_aws_iam_function_url_needs_a_valid_signature(strict):
    import io
    import zipfile

    lam = signed_client(strict, "lambda")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("app.py", "def handler(event, context):\n    return {'statusCode': 200, 'body': 'hello'}\n")
    name = f"iam-{uuid.uuid4().hex[:8]}"
    lam.create_function(FunctionName=name, Runtime="python3.11", Role="arn:aws:iam::000000000000:role/r",
                        Handler="app.handler", Code={"ZipFile": code.getvalue()})
    url = lam.create_function_url_config(FunctionName=name, AuthType="AWS_IAM")["FunctionUrl"]
    path = urlsplit(url).path  # the URL as returned: unkai's address, any client calls it
    status, body = raw(strict, "GET", path)
    assert status == 403 and json.loads(body) == {"Message": "Forbidden"}
    assert raw(strict, "GET", path, authorization="garbage")[0] == 403
    assert raw(strict, "GET", path, **_sign_for(strict, "lambda", "GET", url, secret="wrong"))[0] == 403
    status, body = raw(strict, "GET", path, **_sign_for(strict, "lambda", "GET", url))
    assert status == 200 and body == b"hello"
    # and its browser form, by Host
    host = f"{path.split('/')[3]}.lambda-url.us-east-1.localhost:{urlsplit(url).port}"
    assert raw(strict, "GET", "/", host=host)[0] == 403
    assert raw(strict, "GET", "/", **_sign_for(strict, "lambda", "GET", f"http://{host}/", secret="wrong"))[0] == 403
    status, body = raw(strict, "GET", "/", **_sign_for(strict, "lambda", "GET", f"http://{host}/"))
    assert status == 200 and body == b"hello"


# -- 5. signatures are fresh and cover the body ------------------------------------------------


def _signed_dynamodb(server: UnkaiServer, body: bytes, when: str | None = None) -> botocore.awsrequest.AWSRequest:
    request = botocore.awsrequest.AWSRequest(method="POST", url=server.url("/"), data=body, headers={
        "x-amz-target": "DynamoDB_20120810.ListTables", "content-type": "application/x-amz-json-1.0",
        "x-amz-content-sha256": hashlib.sha256(body).hexdigest()})
    signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials("AKIDSECURITY", "s3cr3t-for-tests"),
                                     "dynamodb", "us-east-1")
    if when is None:
        signer.add_auth(request)
    else:  # botocore's add_auth, at another time than now
        request.context["timestamp"] = when
        signer._modify_request_before_signing(request)
        signer._inject_signature_to_request(
            request, signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request))
    return request


def _send(server: UnkaiServer, request: botocore.awsrequest.AWSRequest, body: bytes | None = None):
    headers = {k: v for k, v in request.headers.items()}
    return raw(server, "POST", "/", request.body if body is None else body, **headers)


def test_a_signature_dated_days_ago_is_refused(strict):
    days_ago = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 3 * 86400))
    status, body = _send(strict, _signed_dynamodb(strict, b"{}", days_ago))
    assert status == 400 and b"InvalidSignatureException" in body and b"Signature expired: " + days_ago.encode() in body
    ahead = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() + 3600))
    status, body = _send(strict, _signed_dynamodb(strict, b"{}", ahead))
    assert status == 400 and b"Signature not yet current" in body
    assert _send(strict, _signed_dynamodb(strict, b"{}"))[0] == 200
    # S3 says it its own way
    s3 = signed_client(strict, "s3")
    request = botocore.awsrequest.AWSRequest(method="GET", url=strict.url("/"))
    signer = botocore.auth.S3SigV4Auth(botocore.credentials.Credentials("AKIDSECURITY", "s3cr3t-for-tests"),
                                       "s3", "us-east-1")
    request.context["timestamp"] = days_ago
    signer._modify_request_before_signing(request)
    signer._inject_signature_to_request(
        request, signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request))
    status, body = raw(strict, "GET", "/", **dict(request.headers.items()))
    assert status == 403 and b"RequestTimeTooSkewed" in body
    assert s3.list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_fresh_signatures_pass_after_the_clock_moves_on(strict):
    strict.advance(3600)  # unkai's clock is an hour ahead; the SDK signs with the wall clock
    assert signed_client(strict, "dynamodb").list_tables()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_a_body_that_is_not_the_signed_one_is_refused(strict):
    request = _signed_dynamodb(strict, b"{}")
    status, body = _send(strict, request, b'{"Limit": 1}')
    assert status == 400 and b"InvalidSignatureException" in body
    s3 = signed_client(strict, "s3")
    bucket = f"sha-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    policy = (b'{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", '
              b'"Action": "s3:GetObject", "Resource": "arn:aws:s3:::' + bucket.encode() + b'/*"}]}')
    request = botocore.awsrequest.AWSRequest(method="PUT", url=strict.url(f"/{bucket}?policy"), data=policy)
    botocore.auth.S3SigV4Auth(botocore.credentials.Credentials("AKIDSECURITY", "s3cr3t-for-tests"), "s3",
                              "us-east-1").add_auth(request)
    headers = dict(request.headers.items())
    status, body = raw(strict, "PUT", f"/{bucket}?policy", policy.replace(b"Allow", b"Deny!"), **headers)
    assert status == 400 and b"XAmzContentSHA256Mismatch" in body
    assert raw(strict, "PUT", f"/{bucket}?policy", policy, **headers)[0] in (200, 204)


# -- 6. credentials cover unkai's own reads and websites --------------------------------------


def test_unkai_endpoints_need_the_token_when_signatures_are_verified(strict):
    logs = signed_client(strict, "logs")
    logs.create_log_group(logGroupName="/sec/group")
    for path in ("/_unkai/mail", "/_unkai/inbox", "/_unkai/inbox/hooks", "/_unkai/feed",
                 "/_unkai/logs?group=/sec/group", "/_unkai/clock"):
        assert raw(strict, "GET", path)[0] == 403, path
        assert raw(strict, "GET", path, **{"x-unkai-token": strict.token})[0] == 200, path
        assert raw(strict, "GET", path, authorization=f"Bearer {strict.token}")[0] == 200, path
    assert raw(strict, "DELETE", "/_unkai/mail")[0] == 403
    # what handlers and people reach without credentials on AWS stays open: webhooks, health
    assert raw(strict, "POST", "/_unkai/inbox/hooks", b'{"a": 1}', content_type="application/json")[0] == 200
    assert raw(strict, "GET", "/_unkai/health")[0] == 200
    assert [e["json"] for e in strict.inbox("hooks")] == [{"a": 1}]


def test_a_website_needs_a_public_policy_when_signatures_are_verified(strict):
    s3 = signed_client(strict, "s3")
    bucket = f"site-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="index.html", Body=b"<p>private</p>", ContentType="text/html")
    s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
    port = urlsplit(strict.endpoint).port
    host = f"{bucket}.s3-website-us-east-1.localhost:{port}"
    status, body = raw(strict, "GET", "/", host=host)
    assert status == 403 and b"private" not in body
    assert raw(strict, "GET", f"/_unkai/website/{bucket}/")[0] == 403
    s3.put_bucket_policy(Bucket=bucket, Policy='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
                         f'"Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::{bucket}/*"}}]}}')
    status, body = raw(strict, "GET", "/", host=host)
    assert status == 200 and b"private" in body


# -- 10. the state dir and the secret ---------------------------------------------------------


def test_state_dir_and_database_are_owner_only(strict):
    assert stat.S_IMODE(strict.state_dir.stat().st_mode) == 0o700
    for name in ("unkai.db", "server.json"):
        assert stat.S_IMODE((strict.state_dir / name).stat().st_mode) == 0o600, name
    s3 = signed_client(strict, "s3")
    bucket = f"perm-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"object data")
    for root, dirs, files in os.walk(strict.state_dir):
        if "runtime" in Path(root).parts:  # copies of installed packages (the SDK): modes copied, no data
            continue
        for name in files:
            mode = stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode)
            assert mode & 0o077 == 0, (root, name, oct(mode))


def test_the_secret_key_is_not_on_the_command_line(strict):
    cmdline = open(f"/proc/{strict.proc.pid}/cmdline", "rb").read()
    assert b"s3cr3t-for-tests" not in cmdline
    assert signed_client(strict, "sqs").list_queues()  # and it is the key unkai verifies with
    with pytest.raises(Exception, match="SignatureDoesNotMatch|InvalidClientTokenId|signature"):
        signed_client(strict, "sqs", secret="nope").list_queues()


def test_an_existing_state_dir_is_closed_to_other_users(tmp_path):
    state = tmp_path / "old"
    state.mkdir(mode=0o755)
    Store(state / "unkai.db").close()
    os.chmod(state / "unkai.db", 0o644)
    os.chmod(state, 0o755)
    with UnkaiServer(state):
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        assert stat.S_IMODE((state / "unkai.db").stat().st_mode) == 0o600
