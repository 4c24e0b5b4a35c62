"""Request signatures: presigned URLs (SigV4 and SigV2, as boto3 makes them) fetched with a
plain HTTP client, expiry against unkai's clock, and full verification when credentials
are configured."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from unkai.testing import UnkaiServer

V4 = Config(signature_version="s3v4", retries={"max_attempts": 1})
V2 = Config(signature_version="s3", retries={"max_attempts": 1})
KEY = "reports/2024 年/special+file.pdf"


def fetch(url: str, method: str = "GET", data: bytes | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method), timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def lenient(tmp_path_factory):
    """An unkai without credentials, of its own: these tests move its clock by days."""
    server = UnkaiServer(tmp_path_factory.mktemp("lenient") / "state").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    """An unkai that verifies every signature (credentials from the environment)."""
    server = UnkaiServer(tmp_path_factory.mktemp("strict") / "state",
                         env={"UNKAI_ACCESS_KEY": "testing", "UNKAI_SECRET_KEY": "testing"}).start()
    yield server
    server.stop()


def client(server: UnkaiServer, service: str, key: str = "testing", secret: str = "testing", **kw):
    return boto3.client(service, endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, config=kw.pop("config", Config(retries={"max_attempts": 1})),
                        **kw)


def make_bucket(s3) -> str:
    name = f"auth-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key=KEY, Body=b"%PDF secret")
    return name


# -- without credentials: lenient, but presigned URLs still expire --------------------------


@pytest.mark.parametrize("config", [V4, V2], ids=["sigv4", "sigv2"])
def test_presigned_url_expires_on_unkais_clock(lenient, config):
    bucket = make_bucket(lenient.client("s3"))
    s3 = lenient.client("s3", config=config)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": KEY}, ExpiresIn=10)
    assert fetch(url) == (200, b"%PDF secret")
    lenient.advance(11)
    status, body = fetch(url)
    assert status == 403
    assert b"<Code>AccessDenied</Code><Message>Request has expired</Message>" in body
    assert b"<ServerTime>" in body


def test_presigned_48_hours_like_the_signup_mail(lenient):
    bucket = make_bucket(lenient.client("s3"))
    url = lenient.client("s3", config=V4).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": KEY}, ExpiresIn=48 * 3600, HttpMethod="GET")
    assert fetch(url)[0] == 200  # X-Amz-Date has whole seconds: seen before an advance, the URL is known to
    lenient.advance(47 * 3600)     # predate an advance made within the second it was signed in
    assert fetch(url)[0] == 200
    lenient.advance(3600 + 1)
    assert fetch(url)[0] == 403


def test_malformed_presigned_parameters(lenient):
    bucket = make_bucket(lenient.client("s3"))
    url = lenient.client("s3", config=V4).generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": KEY})
    status, body = fetch(url.replace("X-Amz-Expires=3600", "X-Amz-Expires=999999"))
    assert status == 400 and b"AuthorizationQueryParametersError" in body
    status, body = fetch(url.replace("X-Amz-Expires=3600", "X-Amz-Expires=soon"))
    assert status == 400 and b"X-Amz-Expires should be a number" in body


def test_presigned_put(lenient):
    bucket = make_bucket(lenient.client("s3"))
    url = lenient.client("s3", config=V4).generate_presigned_url("put_object", Params={"Bucket": bucket,
                                                                                    "Key": "upload.txt"})
    assert fetch(url, "PUT", b"uploaded through a presigned URL")[0] == 200
    assert lenient.client("s3").get_object(Bucket=bucket, Key="upload.txt")["Body"].read() == \
        b"uploaded through a presigned URL"


def test_lenient_mode_accepts_any_key_and_unsigned_requests(lenient):
    bucket = make_bucket(lenient.client("s3"))
    other = client(lenient, "s3", key="anything", secret="whatever")
    assert other.get_object(Bucket=bucket, Key=KEY)["Body"].read() == b"%PDF secret"
    assert fetch(f"{lenient.endpoint}/{bucket}/reports/2024%20%E5%B9%B4/special%2Bfile.pdf") == (200, b"%PDF secret")


# -- with credentials: every request verified --------------------------------------------------


def test_correctly_signed_requests_pass(strict):
    s3 = client(strict, "s3")
    bucket = make_bucket(s3)
    assert s3.get_object(Bucket=bucket, Key=KEY)["Body"].read() == b"%PDF secret"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="reports/")["Contents"]] == [KEY]
    virtual = client(strict, "s3", config=Config(s3={"addressing_style": "virtual"}, retries={"max_attempts": 1}))
    virtual.meta.events.register("before-sign.s3", _localhost_virtual_host)
    assert virtual.get_object(Bucket=bucket, Key=KEY)["Body"].read() == b"%PDF secret"
    assert client(strict, "s3", config=V2).get_object(Bucket=bucket, Key=KEY)["Body"].read() == b"%PDF secret"
    sqs = client(strict, "sqs")
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="signed")
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "signed"


def _localhost_virtual_host(request, **kwargs):
    """Address the bucket as bucket.localhost:port (what browsers and SDKs resolve to loopback)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(request.url)
    if parts.hostname and parts.hostname.startswith("auth-"):
        bucket = parts.hostname.split(".")[0]
        request.headers["host"] = f"{bucket}.localhost:{parts.port}"
        request.url = urlunsplit((parts.scheme, f"127.0.0.1:{parts.port}", parts.path, parts.query, ""))


@pytest.mark.parametrize("service, operation, wrong_secret, unknown_key", [
    ("s3", "list_buckets", "SignatureDoesNotMatch", "InvalidAccessKeyId"),
    ("sqs", "list_queues", "InvalidSignatureException", "UnrecognizedClientException"),
])
def test_bad_signatures_are_rejected(strict, service, operation, wrong_secret, unknown_key):
    with pytest.raises(ClientError) as exc:
        getattr(client(strict, service, secret="wrong"), operation)()
    assert exc.value.response["Error"]["Code"] == wrong_secret
    with pytest.raises(ClientError) as exc:
        getattr(client(strict, service, key="AKIAUNKNOWN"), operation)()
    assert exc.value.response["Error"]["Code"] == unknown_key


def test_unsigned_requests_are_refused(strict):
    status, body = fetch(f"{strict.endpoint}/")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body


@pytest.mark.parametrize("config", [V4, V2], ids=["sigv4", "sigv2"])
def test_presigned_urls_are_verified(strict, config):
    bucket = make_bucket(client(strict, "s3"))
    s3 = client(strict, "s3", config=config)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": KEY}, ExpiresIn=60)
    assert fetch(url) == (200, b"%PDF secret")
    tampered_key = url.replace("special%2Bfile.pdf", "other.pdf")
    assert tampered_key != url
    status, body = fetch(tampered_key)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    sig = "X-Amz-Signature=" if config is V4 else "Signature="
    head, _, tail = url.partition(sig)
    tampered_sig = head + sig + ("0" if tail[0] != "0" else "1") + tail[1:]
    assert fetch(tampered_sig)[0] == 403
    wrong_secret = client(strict, "s3", secret="nope", config=config)
    assert fetch(wrong_secret.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": KEY}))[0] == 403
    strict.advance(61)
    status, body = fetch(url)
    assert status == 403 and b"Request has expired" in body


def _streaming_put(server: UnkaiServer, bucket: str, key: str, data: bytes, tamper: bool) -> int:
    """A SigV4 streaming upload (aws-chunked, a signature per chunk), as the Java and JS SDKs
    send them: headers signed by botocore's signer, chunks signed per the SigV4 spec."""
    import datetime as dt
    import hashlib
    import hmac

    import httpx
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"{server.endpoint}/{bucket}/{key}"
    headers = {"x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "content-encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(data))}
    request = AWSRequest("PUT", url, headers=headers)
    # (the generic signer keeps our x-amz-content-sha256; S3's would replace it with the body's hash)
    SigV4Auth(Credentials("testing", "testing"), "s3", "us-east-1").add_auth(request)
    amz_date = request.headers["X-Amz-Date"]
    seed = request.headers["Authorization"].rsplit("Signature=", 1)[1]
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    key_bytes = b"AWS4testing"
    for part in (amz_date[:8], "us-east-1", "s3", "aws4_request"):
        key_bytes = hmac.new(key_bytes, part.encode(), hashlib.sha256).digest()
    body, previous = b"", seed
    for chunk in (data[:8192], data[8192:], b""):
        to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, hashlib.sha256(b"").hexdigest(),
                             hashlib.sha256(chunk).hexdigest()])
        signature = hmac.new(key_bytes, to_sign.encode(), hashlib.sha256).hexdigest()
        if tamper and chunk == b"":
            signature = "0" * 64
        body += f"{len(chunk):x};chunk-signature={signature}\r\n".encode() + chunk + b"\r\n"
        previous = signature
    assert dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    response = httpx.put(url, content=body, headers=dict(request.headers.items()))
    return response.status_code


def test_streaming_chunk_signatures_are_verified(strict):
    s3 = client(strict, "s3")
    bucket = make_bucket(s3)
    data = b"chunk" * 3000
    assert _streaming_put(strict, bucket, "streamed", data, tamper=False) == 200
    assert s3.get_object(Bucket=bucket, Key="streamed")["Body"].read() == data
    assert _streaming_put(strict, bucket, "tampered", data, tamper=True) == 403
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="tampered")
