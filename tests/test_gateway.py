"""The gateway and protocol layer seen from the wire: routing, the query protocol
older SDKs speak, and AWS's error shapes for what we do not serve."""

from __future__ import annotations

import hashlib
import json
import uuid
import xml.etree.ElementTree as ET

import httpx
import pytest

NS = {"q": "http://queue.amazonaws.com/doc/2012-11-05/"}
SIGV4 = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/{svc}/aws4_request, "
         "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64)


def query(unkai, params: dict, path: str = "/", service: str = "sqs") -> httpx.Response:
    return httpx.post(unkai.url(path), data=params, headers={"authorization": SIGV4.format(svc=service)})


def test_health(unkai):
    health = httpx.get(unkai.url("/_unkai/health")).json()
    assert health["status"] == "ready"
    assert "sqs" in health["services"]
    assert health["version"]


def test_sqs_query_protocol_roundtrip(unkai):
    name = f"legacy-{uuid.uuid4().hex[:8]}"
    r = query(unkai, {"Action": "CreateQueue", "Version": "2012-11-05", "QueueName": name,
                      "Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "60"})
    assert r.status_code == 200, r.text
    root = ET.fromstring(r.content)
    url = root.find("q:CreateQueueResult/q:QueueUrl", NS).text
    assert url.endswith(f"/000000000000/{name}")
    assert root.find("q:ResponseMetadata/q:RequestId", NS).text
    r = query(unkai, {"Action": "SendMessage", "QueueUrl": url, "MessageBody": "hi <there>",
                      "MessageAttribute.1.Name": "k", "MessageAttribute.1.Value.DataType": "String",
                      "MessageAttribute.1.Value.StringValue": "v"})
    assert r.status_code == 200, r.text
    sent = ET.fromstring(r.content).find("q:SendMessageResult", NS)
    assert sent.find("q:MD5OfMessageBody", NS).text == hashlib.md5(b"hi <there>").hexdigest()
    # older SDKs post to the queue URL itself, without a QueueUrl parameter
    path = "/000000000000/" + name
    r = query(unkai, {"Action": "ReceiveMessage", "AttributeName.1": "All", "MessageAttributeName.1": "All"}, path)
    assert r.status_code == 200, r.text
    msg = ET.fromstring(r.content).find("q:ReceiveMessageResult/q:Message", NS)
    assert msg.find("q:Body", NS).text == "hi <there>"
    attrs = {a.find("q:Name", NS).text: a.find("q:Value", NS).text for a in msg.findall("q:Attribute", NS)}
    assert attrs["ApproximateReceiveCount"] == "1"
    mattr = msg.find("q:MessageAttribute", NS)
    assert mattr.find("q:Name", NS).text == "k"
    assert mattr.find("q:Value/q:StringValue", NS).text == "v"
    r = query(unkai, {"Action": "GetQueueAttributes", "QueueUrl": url, "AttributeName.1": "VisibilityTimeout"})
    attr = ET.fromstring(r.content).find("q:GetQueueAttributesResult/q:Attribute", NS)
    assert (attr.find("q:Name", NS).text, attr.find("q:Value", NS).text) == ("VisibilityTimeout", "60")


def test_query_protocol_errors(unkai):
    r = query(unkai, {"Action": "GetQueueUrl", "QueueName": "does-not-exist-" + uuid.uuid4().hex})
    assert r.status_code == 400
    err = ET.fromstring(r.content).find("q:Error", NS)
    assert err.find("q:Code", NS).text == "AWS.SimpleQueueService.NonExistentQueue"
    assert err.find("q:Type", NS).text == "Sender"
    r = query(unkai, {"Action": "CreateQueue"})
    assert r.status_code == 400
    assert ET.fromstring(r.content).find("q:Error/q:Code", NS).text == "MissingParameter"
    r = query(unkai, {"Action": "NoSuchAction"})
    assert r.status_code == 400
    assert ET.fromstring(r.content).find("q:Error/q:Code", NS).text == "InvalidAction"
    r = query(unkai, {"Action": "ReceiveMessage", "QueueUrl": "http://x/000000000000/q", "MaxNumberOfMessages": "ten"})
    assert r.status_code == 400


def test_json_protocol_errors(unkai):
    headers = {"authorization": SIGV4.format(svc="sqs"), "content-type": "application/x-amz-json-1.0"}
    r = httpx.post(unkai.url("/"), headers={**headers, "x-amz-target": "AmazonSQS.Nope"}, content=b"{}")
    assert r.status_code == 400
    assert r.json()["__type"].endswith("UnknownOperationException")
    r = httpx.post(unkai.url("/"), headers={**headers, "x-amz-target": "AmazonSQS.ListQueues"}, content=b"{not json")
    assert r.status_code == 400
    assert "SerializationException" in r.json()["__type"]
    r = httpx.post(unkai.url("/"), headers={**headers, "x-amz-target": "AmazonSQS.ListQueues"},
                   content=json.dumps({"MaxResults": "many"}).encode())
    assert r.status_code == 400
    r = httpx.post(unkai.url("/"), headers={**headers, "x-amz-target": "AmazonSQS.GetQueueUrl"}, content=b"{}")
    assert r.status_code == 400
    assert r.headers["x-amzn-query-error"] == "MissingParameter;Sender"
    r = httpx.post(unkai.url("/"), headers={**headers, "x-amz-target": "AmazonSQS.ListQueues"}, content=b"[1,2]")
    assert r.status_code == 400


def test_unknown_service_is_not_implemented(unkai):
    r = httpx.post(unkai.url("/"), data={"Action": "DescribeInstances"},
                   headers={"authorization": SIGV4.format(svc="ec2")})
    assert r.status_code == 501
    assert b"NotImplemented" in r.content


def test_unknown_internal_endpoint(unkai):
    r = httpx.get(unkai.url("/_unkai/nothing-here"))
    assert r.status_code == 404
    assert "message" in r.json()


def test_webhook_inbox(unkai):
    name = f"hook-{uuid.uuid4().hex[:6]}"
    r = httpx.post(unkai.url(f"/_unkai/inbox/{name}?apiKey=k"), json={"text": "こんにちは"})
    assert r.status_code == 200 and r.json()["ok"] is True
    httpx.put(unkai.url(f"/_unkai/inbox/{name}/sub/path"), content=b"\xff\xfe")
    entries = unkai.inbox(name)
    assert entries[0]["method"] == "POST"
    assert entries[0]["json"] == {"text": "こんにちは"}
    assert entries[0]["query"] == "apiKey=k"
    assert entries[1]["path"].endswith("/sub/path") and entries[1]["body_base64"] == "//4="
    assert {"name": name, "count": 2} in httpx.get(unkai.url("/_unkai/inbox")).json()
    assert httpx.delete(unkai.url(f"/_unkai/inbox/{name}")).json() == {"deleted": 2}
    assert unkai.inbox(name) == []


def test_clock_advance_validation(unkai):
    assert httpx.post(unkai.url("/_unkai/clock/advance?seconds=-1")).status_code == 400
    assert httpx.post(unkai.url("/_unkai/clock/advance?seconds=abc")).status_code == 400
    before = httpx.get(unkai.url("/_unkai/clock")).json()["offset"]
    after = unkai.advance(0.5)["offset"]
    assert after == pytest.approx(before + 0.5)


def test_aws_cli_talks_to_unkai(unkai, tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    name = f"cli-{uuid.uuid4().hex[:8]}"

    def aws(*args):
        out = subprocess.run([sys.executable, "-m", "awscli", "--endpoint-url", unkai.endpoint, *args,
                              "--output", "json"], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else None

    url = aws("sqs", "create-queue", "--queue-name", name)["QueueUrl"]
    aws("sqs", "send-message", "--queue-url", url, "--message-body", "from the cli")
    msgs = aws("sqs", "receive-message", "--queue-url", url)["Messages"]
    assert msgs[0]["Body"] == "from the cli"
