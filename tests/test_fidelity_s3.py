"""S3 answers as AWS does, in the details clients branch on (issue 23, item 3: S3), and browser
form uploads (POST Object with a presigned policy, as boto3's ``generate_presigned_post`` makes).

Expected codes and messages are S3's own (S3 API reference; "Invalid according to Policy: ..."
as S3 words a POST policy failure)."""

from __future__ import annotations

import time

import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def s3(unkai):
    return unkai.client("s3", config=Config(s3={"addressing_style": "path"}))


@pytest.fixture
def bucket(s3):
    name = f"fid-{time.time_ns()}"
    s3.create_bucket(Bucket=name)
    return name


# Other tests move the shared server's clock ahead; a policy valid for years stays valid on it.
LONG = 10 * 365 * 86400


def error_of(exc: pytest.ExceptionInfo) -> tuple[str, int]:
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_bucket_tagging_put_answers_204_and_a_missing_tag_set_is_no_such_tag_set(s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_tagging(Bucket=bucket)
    assert error_of(exc) == ("NoSuchTagSet", 404)
    assert exc.value.response["Error"]["Message"] == "The TagSet does not exist"
    put = s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "a"}]})
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "a"}]


def test_the_us_east_1_endpoint_creates_a_bucket_in_another_region(s3):
    name = f"fid-eu-{time.time_ns()}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] == "eu-west-1"


def test_complete_multipart_upload_is_idempotent_and_parts_are_readable_by_number(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    first = s3.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=1, Body=b"a" * 5 * 1024 * 1024)
    second = s3.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=2, Body=b"b" * 100)
    parts = {"Parts": [{"PartNumber": 1, "ETag": first["ETag"]}, {"PartNumber": 2, "ETag": second["ETag"]}]}
    done = s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload, MultipartUpload=parts)
    again = s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload, MultipartUpload=parts)
    assert again["ETag"] == done["ETag"] and done["ETag"].endswith('-2"')
    part = s3.get_object(Bucket=bucket, Key="big", PartNumber=2)
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206 and part["PartsCount"] == 2
    assert part["ContentRange"] == f"bytes {5 * 1024 * 1024}-{5 * 1024 * 1024 + 99}/{5 * 1024 * 1024 + 100}"
    assert s3.head_object(Bucket=bucket, Key="big", PartNumber=1)["ContentLength"] == 5 * 1024 * 1024
    other = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    s3.abort_multipart_upload(Bucket=bucket, Key="big", UploadId=other)
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=other, MultipartUpload=parts)
    assert error_of(exc) == ("NoSuchUpload", 404)


def test_delete_object_if_match_refuses_a_changed_object_and_keeps_it(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["ETag"]
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket=bucket, Key="k", IfMatch='"0123456789abcdef0123456789abcdef"')
    assert error_of(exc) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v1"
    s3.delete_object(Bucket=bucket, Key="k", IfMatch=etag)
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="k")
    assert error_of(exc) == ("404", 404)


def test_reading_a_delete_marker_version_is_405_with_allow_delete(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"v1")
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k", VersionId=marker)
    assert error_of(exc) == ("MethodNotAllowed", 405)
    assert exc.value.response["ResponseMetadata"]["HTTPHeaders"]["allow"] == "DELETE"
    assert exc.value.response["Error"]["Method"] == "GET"


def test_a_browser_form_upload_with_a_presigned_post_policy(s3, bucket):
    post = s3.generate_presigned_post(
        bucket, "uploads/${filename}", Fields={"acl": "private", "success_action_status": "201"},
        Conditions=[["starts-with", "$key", "uploads/"], {"acl": "private"}, {"success_action_status": "201"},
                    ["content-length-range", 1, 100]], ExpiresIn=LONG)
    body = b"line one\r\n\r\n--not a boundary\r\n"
    answer = requests.post(post["url"], data=post["fields"],
                           files={"file": ("note.txt", body, "text/plain")}, timeout=30)
    assert answer.status_code == 201 and "<Key>uploads/note.txt</Key>" in answer.text
    got = s3.get_object(Bucket=bucket, Key="uploads/note.txt")
    assert got["Body"].read() == body and got["ContentType"] == "text/plain"
    assert answer.headers["ETag"] == got["ETag"]


@pytest.mark.parametrize("change,status,code,message", [
    ({"acl": "public-read"}, 403, "AccessDenied",
     'Invalid according to Policy: Policy Condition failed: ["eq", "$acl", "private"]'),
    ({"x-amz-meta-extra": "1"}, 403, "AccessDenied", "Invalid according to Policy: Extra input fields: x-amz-meta-extra"),
    ({"key": "elsewhere/x"}, 403, "AccessDenied",
     'Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "uploads/"]'),
])
def test_a_form_that_breaks_its_policy_is_refused(s3, bucket, change, status, code, message):
    post = s3.generate_presigned_post(bucket, "uploads/${filename}", Fields={"acl": "private"},
                                      Conditions=[["starts-with", "$key", "uploads/"], {"acl": "private"}],
                                      ExpiresIn=LONG)
    answer = requests.post(post["url"], data={**post["fields"], **change}, files={"file": ("a.txt", b"x")},
                           timeout=30)
    assert answer.status_code == status
    assert f"<Code>{code}</Code>" in answer.text
    assert message.replace('"', "&quot;") in answer.text or message in answer.text


def test_a_form_past_its_size_range_is_refused(s3, bucket):
    post = s3.generate_presigned_post(bucket, "small", Conditions=[["content-length-range", 1, 10]],
                                      ExpiresIn=LONG)
    answer = requests.post(post["url"], data=post["fields"], files={"file": ("a", b"x" * 11)}, timeout=30)
    assert answer.status_code == 400 and "<Code>EntityTooLarge</Code>" in answer.text


def test_object_lock_retention_and_legal_holds_protect_versions(s3):
    bucket = f"fid-lock-{time.time_ns()}"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 3650}}})
    version = s3.put_object(Bucket=bucket, Key="ledger", Body=b"v1")["VersionId"]
    retention = s3.get_object_retention(Bucket=bucket, Key="ledger")["Retention"]
    assert retention["Mode"] == "GOVERNANCE"
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket=bucket, Key="ledger", VersionId=version)
    assert error_of(exc) == ("AccessDenied", 403)
    s3.put_object_legal_hold(Bucket=bucket, Key="ledger", LegalHold={"Status": "ON"})
    assert s3.get_object_legal_hold(Bucket=bucket, Key="ledger")["LegalHold"] == {"Status": "ON"}
    with pytest.raises(ClientError) as exc:  # a legal hold is not bypassed
        s3.delete_object(Bucket=bucket, Key="ledger", VersionId=version, BypassGovernanceRetention=True)
    assert error_of(exc) == ("AccessDenied", 403)
    s3.put_object_legal_hold(Bucket=bucket, Key="ledger", LegalHold={"Status": "OFF"})
    marker = s3.delete_object(Bucket=bucket, Key="ledger")  # a delete marker is always allowed
    assert marker["DeleteMarker"] is True
    s3.delete_object(Bucket=bucket, Key="ledger", VersionId=version, BypassGovernanceRetention=True)
    compliance = s3.put_object(Bucket=bucket, Key="audit", Body=b"x", ObjectLockMode="COMPLIANCE",
                               ObjectLockRetainUntilDate="2099-01-01T00:00:00Z")["VersionId"]
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket=bucket, Key="audit", VersionId=compliance, BypassGovernanceRetention=True)
    assert error_of(exc) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as exc:  # COMPLIANCE cannot be shortened
        s3.put_object_retention(Bucket=bucket, Key="audit", Retention={
            "Mode": "COMPLIANCE", "RetainUntilDate": "2030-01-01T00:00:00Z"})
    assert error_of(exc) == ("AccessDenied", 403)


def test_object_lock_calls_on_a_bucket_without_it(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.get_object_retention(Bucket=bucket, Key="k")
    assert error_of(exc) == ("InvalidRequest", 400)
    assert exc.value.response["Error"]["Message"] == "Bucket is missing Object Lock Configuration"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k2", Body=b"x", ObjectLockLegalHoldStatus="ON")
    assert error_of(exc) == ("InvalidRequest", 400)


def test_an_upload_without_a_checksum_gets_a_crc64nvme_as_on_aws(s3, bucket):
    import base64

    from awscrt import checksums

    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "plain"}, ExpiresIn=LONG)
    answer = requests.put(url, data=b"hello", timeout=30)  # no x-amz-checksum-* header at all
    expected = base64.b64encode(checksums.crc64nvme(b"hello").to_bytes(8, "big")).decode()
    assert answer.headers["x-amz-checksum-crc64nvme"] == expected
    assert answer.headers["x-amz-checksum-type"] == "FULL_OBJECT"
    head = s3.head_object(Bucket=bucket, Key="plain", ChecksumMode="ENABLED")
    assert (head["ChecksumCRC64NVME"], head["ChecksumType"]) == (expected, "FULL_OBJECT")


@pytest.mark.parametrize("kind,member,config", [
    ("inventory", "InventoryConfiguration", {"Id": "weekly", "IsEnabled": True, "IncludedObjectVersions": "Current",
                                             "Schedule": {"Frequency": "Weekly"}, "Destination": {
                                                 "S3BucketDestination": {"Bucket": "arn:aws:s3:::reports",
                                                                         "Format": "CSV"}}}),
    ("metrics", "MetricsConfiguration", {"Id": "weekly"}),
    ("intelligent_tiering", "IntelligentTieringConfiguration", {
        "Id": "weekly", "Status": "Enabled", "Tierings": [{"Days": 90, "AccessTier": "ARCHIVE_ACCESS"}]}),
])
def test_bucket_configurations_by_id_are_stored(s3, bucket, kind, member, config):
    getter = getattr(s3, f"get_bucket_{kind}_configuration")
    with pytest.raises(ClientError) as exc:
        getter(Bucket=bucket, Id="weekly")
    assert error_of(exc) == ("NoSuchConfiguration", 404)
    getattr(s3, f"put_bucket_{kind}_configuration")(Bucket=bucket, Id="weekly", **{member: config})
    assert getter(Bucket=bucket, Id="weekly")[member]["Id"] == "weekly"
    listed = getattr(s3, f"list_bucket_{kind}_configurations")(Bucket=bucket)
    assert [c["Id"] for c in listed[f"{member}List"]] == ["weekly"]
    getattr(s3, f"delete_bucket_{kind}_configuration")(Bucket=bucket, Id="weekly")
    assert f"{member}List" not in getattr(s3, f"list_bucket_{kind}_configurations")(Bucket=bucket)


def test_restore_object_and_the_lifecycle_minimum_size(s3, bucket):
    s3.put_object(Bucket=bucket, Key="hot", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.restore_object(Bucket=bucket, Key="hot", RestoreRequest={"Days": 1})
    assert error_of(exc) == ("InvalidObjectState", 403)
    s3.put_object(Bucket=bucket, Key="cold", Body=b"x", StorageClass="GLACIER")
    first = s3.restore_object(Bucket=bucket, Key="cold", RestoreRequest={"Days": 2})
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert s3.head_object(Bucket=bucket, Key="cold")["Restore"].startswith('ongoing-request="false", expiry-date=')
    again = s3.restore_object(Bucket=bucket, Key="cold", RestoreRequest={"Days": 2})
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 200
    put = s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "r", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 30}}]})
    assert put["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["TransitionDefaultMinimumObjectSize"] == \
        "all_storage_classes_128K"
