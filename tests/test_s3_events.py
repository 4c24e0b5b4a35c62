"""S3 event notifications: configuration rules, the s3:TestEvent, and records delivered
to SQS, SNS (fanned out to SQS) and Lambda (durable invocation jobs), shaped as AWS
shapes them."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from botocore.exceptions import ClientError

from unkai import testing
from unkai.testing import receive_all


@pytest.fixture(scope="module")
def s3(unkai):
    return unkai.client("s3")


@pytest.fixture(scope="module")
def sqs(unkai):
    return unkai.client("sqs")


def new_queue(sqs) -> tuple[str, str]:
    return testing.new_queue(sqs, f"events-{uuid.uuid4().hex[:10]}")


def new_bucket(s3) -> str:
    name = f"ev-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def drain(sqs, url: str) -> list[dict]:
    return [json.loads(body) for body in receive_all(sqs, url)]


def queue_config(arn: str, events: list[str], prefix: str = "", suffix: str = "", id: str | None = None) -> dict:
    rules = [r for r in ({"Name": "prefix", "Value": prefix} if prefix else None,
                         {"Name": "suffix", "Value": suffix} if suffix else None) if r]
    item: dict = {"QueueArn": arn, "Events": events}
    if rules:
        item["Filter"] = {"Key": {"FilterRules": rules}}
    if id:
        item["Id"] = id
    return item


def test_records_to_sqs_shaped_as_aws(s3, sqs, unkai):
    url, arn = new_queue(sqs)
    bucket = new_bucket(s3)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
        queue_config(arn, ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"], id="uploads")]})
    [test_event] = drain(sqs, url)
    assert test_event["Event"] == "s3:TestEvent" and test_event["Bucket"] == bucket
    assert test_event["Service"] == "Amazon S3"

    put = s3.put_object(Bucket=bucket, Key="photos/my face+1.png", Body=b"png bytes")
    s3.copy_object(Bucket=bucket, Key="copy.png", CopySource={"Bucket": bucket, "Key": "photos/my face+1.png"})
    s3.delete_object(Bucket=bucket, Key="copy.png")
    records = [r["Records"][0] for r in drain(sqs, url)]
    assert [r["eventName"] for r in records] == ["ObjectCreated:Put", "ObjectCreated:Copy", "ObjectRemoved:Delete"]
    record = records[0]
    assert record["eventVersion"] == "2.1" and record["eventSource"] == "aws:s3"
    assert record["awsRegion"] == "us-east-1"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", record["eventTime"])
    assert record["userIdentity"]["principalId"].startswith("AWS:")
    assert record["requestParameters"]["sourceIPAddress"] == "127.0.0.1"
    assert set(record["responseElements"]) == {"x-amz-request-id", "x-amz-id-2"}
    body = record["s3"]
    assert body["s3SchemaVersion"] == "1.0" and body["configurationId"] == "uploads"
    assert body["bucket"]["name"] == bucket and body["bucket"]["arn"] == f"arn:aws:s3:::{bucket}"
    assert body["bucket"]["ownerIdentity"]["principalId"]
    obj = body["object"]
    assert obj["key"] == "photos/my+face%2B1.png"  # URL-encoded as S3 does: handlers unquote_plus it
    assert obj["size"] == 9 and obj["eTag"] == put["ETag"].strip('"') and obj["sequencer"]
    assert "versionId" not in obj
    assert "size" not in records[2]["s3"]["object"]
    assert records[0]["s3"]["object"]["sequencer"] < records[2]["s3"]["object"]["sequencer"]


def test_filters_wildcards_and_multipart(s3, sqs):
    url_png, arn_png = new_queue(sqs)
    url_txt, arn_txt = new_queue(sqs)
    bucket = new_bucket(s3)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
        queue_config(arn_png, ["s3:ObjectCreated:CompleteMultipartUpload", "s3:ObjectCreated:Put"],
                     prefix="in/", suffix=".png"),
        queue_config(arn_txt, ["s3:ObjectCreated:*"], suffix=".txt")]})
    drain(sqs, url_png), drain(sqs, url_txt)
    s3.put_object(Bucket=bucket, Key="in/a.png", Body=b"1")
    s3.put_object(Bucket=bucket, Key="out/b.png", Body=b"2")
    s3.put_object(Bucket=bucket, Key="in/c.txt", Body=b"3")
    uid = s3.create_multipart_upload(Bucket=bucket, Key="in/big.png")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="in/big.png", UploadId=uid, PartNumber=1, Body=b"x")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="in/big.png", UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    s3.delete_object(Bucket=bucket, Key="in/a.png")  # no Removed events configured
    png = [(r["Records"][0]["eventName"], r["Records"][0]["s3"]["object"]["key"]) for r in drain(sqs, url_png)]
    assert png == [("ObjectCreated:Put", "in/a.png"), ("ObjectCreated:CompleteMultipartUpload", "in/big.png")]
    txt = [r["Records"][0]["s3"]["object"]["key"] for r in drain(sqs, url_txt)]
    assert txt == ["in/c.txt"]


def test_versioned_bucket_delete_marker_event(s3, sqs):
    url, arn = new_queue(sqs)
    bucket = new_bucket(s3)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
        queue_config(arn, ["s3:ObjectCreated:*", "s3:ObjectRemoved:DeleteMarkerCreated"])]})
    drain(sqs, url)
    version = s3.put_object(Bucket=bucket, Key="v.txt", Body=b"v")["VersionId"]
    marker = s3.delete_object(Bucket=bucket, Key="v.txt")["VersionId"]
    records = [r["Records"][0] for r in drain(sqs, url)]
    assert [(r["eventName"], r["s3"]["object"]["versionId"]) for r in records] == [
        ("ObjectCreated:Put", version), ("ObjectRemoved:DeleteMarkerCreated", marker)]


@pytest.mark.parametrize("configs", [
    [(["s3:ObjectCreated:*"], "img/", ""), (["s3:ObjectCreated:Put"], "img/2024/", "")],
    [(["s3:ObjectCreated:Put"], "", ".png"), (["s3:ObjectCreated:Put"], "", "face.png")],
    [(["s3:ObjectCreated:*"], "", ""), (["s3:ObjectCreated:Copy"], "x/", ".jpg")],
], ids=["prefix-inside-prefix", "suffix-inside-suffix", "no-filter-covers-all"])
def test_overlapping_configurations_are_refused(s3, sqs, configs):
    bucket = new_bucket(s3)
    _, arn = new_queue(sqs)
    items = [queue_config(arn, events, prefix, suffix) for events, prefix, suffix in configs]
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
            "QueueConfigurations": items})
    assert exc.value.response["Error"]["Code"] == "InvalidArgument"
    assert "overlap" in exc.value.response["Error"]["Message"]


def test_non_overlapping_and_bad_configurations(s3, sqs):
    bucket = new_bucket(s3)
    url, arn = new_queue(sqs)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
        queue_config(arn, ["s3:ObjectCreated:*"], prefix="a/"), queue_config(arn, ["s3:ObjectCreated:*"], prefix="b/"),
        queue_config(arn, ["s3:ObjectRemoved:*"], prefix="a/")]})
    stored = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    assert len(stored) == 3 and all(c["Id"] for c in stored)
    for bad in ([queue_config(arn, ["s3:ObjectMade:*"])],
                [{**queue_config(arn, ["s3:ObjectCreated:*"]), "Filter": {"Key": {"FilterRules": [
                    {"Name": "middle", "Value": "x"}]}}}],
                [queue_config(arn.replace("events-", "missing-"), ["s3:ObjectCreated:*"])]):
        with pytest.raises(ClientError) as exc:
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
                "QueueConfigurations": bad})
        assert exc.value.response["Error"]["Code"] == "InvalidArgument"
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    assert "QueueConfigurations" not in s3.get_bucket_notification_configuration(Bucket=bucket)


def test_records_through_sns_to_sqs(s3, sqs, unkai):
    sns = unkai.client("sns")
    topic = sns.create_topic(Name=f"uploads-{uuid.uuid4().hex[:8]}")["TopicArn"]
    url, arn = new_queue(sqs)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "false"})
    bucket = new_bucket(s3)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"TopicConfigurations": [
        {"TopicArn": topic, "Events": ["s3:ObjectCreated:Put"]}]})
    s3.put_object(Bucket=bucket, Key="mail/body.txt", Body="件名\n\n本文".encode())
    unkai.drain()
    envelopes = drain(sqs, url)
    assert [e["Subject"] for e in envelopes] == ["Amazon S3 Notification"] * 2
    assert json.loads(envelopes[0]["Message"])["Event"] == "s3:TestEvent"
    record = json.loads(envelopes[1]["Message"])["Records"][0]
    assert record["eventName"] == "ObjectCreated:Put" and record["s3"]["object"]["key"] == "mail/body.txt"


HANDLER = """
import urllib.parse
import boto3

def handler(event, context):
    record = event["Records"][0]
    key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
    out = record["s3"]["bucket"]["name"] + "-out"
    boto3.client("s3").put_object(Bucket=out, Key=key + ".seen", Body=record["eventName"].encode())
"""


def test_uploads_invoke_a_lambda_function(s3, unkai):
    """Like the book's ZIP example: an upload triggers a function that writes to another bucket."""
    from lambda_code import deploy

    lam = unkai.client("lambda")
    bucket = new_bucket(s3)
    s3.create_bucket(Bucket=bucket + "-out")
    missing = "arn:aws:lambda:us-east-1:000000000000:function:no-such-function"
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
            "LambdaFunctionConfigurations": [{"LambdaFunctionArn": missing, "Events": ["s3:ObjectCreated:*"]}]})
    assert exc.value.response["Error"]["Code"] == "InvalidArgument"
    name = deploy(lam, HANDLER)
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "LambdaFunctionConfigurations": [{"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    s3.put_object(Bucket=bucket, Key="my face.png", Body=b"png")
    unkai.drain(timeout=60)
    assert s3.get_object(Bucket=bucket + "-out", Key="my face.png.seen")["Body"].read() == b"ObjectCreated:Put"
