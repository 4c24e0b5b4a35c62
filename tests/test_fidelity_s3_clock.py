"""S3 behaviour on unkai's clock (issue 23, item 3: S3): lifecycle rules that actually expire
objects at the midnight UTC after their days, and presigned POST policies that expire. This
module moves its own server's clock by days."""

from __future__ import annotations

import json
import time

import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from lambda_code import private_server

unkai = private_server("s3-clock")

DAY = 86400


@pytest.fixture(scope="module")
def s3(unkai):
    return unkai.client("s3", config=Config(s3={"addressing_style": "path"}))


def exists(s3, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError:
        return False


def test_lifecycle_expiration_removes_matching_objects_after_their_days(unkai, s3):
    bucket = f"life-{time.time_ns()}"
    s3.create_bucket(Bucket=bucket)
    sqs = unkai.client("sqs")
    url = sqs.create_queue(QueueName=f"life-{time.time_ns()}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
        {"QueueArn": queue_arn, "Events": ["s3:LifecycleExpiration:*"]}]})
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}},
        {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": "keep/"}, "Expiration": {"Days": 1}}]})
    for key in ("tmp/a", "keep/b", "other/c"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    unkai.advance(DAY / 2)  # not yet: the object's day has not ended
    assert exists(s3, bucket, "tmp/a")
    unkai.advance(2 * DAY)
    assert not exists(s3, bucket, "tmp/a")
    assert exists(s3, bucket, "keep/b") and exists(s3, bucket, "other/c")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages") or []
    records = [r for m in messages for r in json.loads(m["Body"]).get("Records", [])]
    assert [(r["eventName"], r["s3"]["object"]["key"]) for r in records] == [("LifecycleExpiration:Delete", "tmp/a")]


def test_a_versioned_bucket_gets_a_delete_marker_and_old_versions_expire(unkai, s3):
    bucket = f"life-v-{time.time_ns()}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "all", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}]})
    s3.put_object(Bucket=bucket, Key="doc", Body=b"v1")
    unkai.advance(2 * DAY)
    versions = s3.list_object_versions(Bucket=bucket)
    assert [m["IsLatest"] for m in versions.get("DeleteMarkers", [])] == [True]
    unkai.advance(2 * DAY)
    assert not s3.list_object_versions(Bucket=bucket).get("Versions")


def test_a_presigned_post_policy_expires_on_unkais_clock(unkai, s3):
    bucket = f"post-{time.time_ns()}"
    s3.create_bucket(Bucket=bucket)
    post = s3.generate_presigned_post(bucket, "late", ExpiresIn=60)
    unkai.advance(120)
    answer = requests.post(post["url"], data=post["fields"], files={"file": ("a", b"x")}, timeout=30)
    assert answer.status_code == 403 and "Invalid according to Policy: Policy expired." in answer.text
