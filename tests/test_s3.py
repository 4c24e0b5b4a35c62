"""S3 buckets and objects through boto3 (client and resource) and the AWS CLI against a
running unkai; boto3 itself verifies the checksums and ETags we return."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from unkai.testing import CREDENTIALS


@pytest.fixture(scope="module")
def s3(unkai):
    return unkai.client("s3")


@pytest.fixture
def bucket(s3):
    name = f"bkt-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def status(exc: pytest.ExceptionInfo) -> int:
    return exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


# -- buckets ---------------------------------------------------------------------------------


def test_bucket_lifecycle(s3, unkai):
    name = f"life-{uuid.uuid4().hex[:10]}"
    assert s3.create_bucket(Bucket=name)["Location"] == f"/{name}"
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=name)
    assert code(exc) == "BucketNotEmpty" and status(exc) == 409
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=name)
    assert status(exc) == 404
    with pytest.raises(s3.exceptions.NoSuchBucket):
        s3.list_objects_v2(Bucket=name)


def test_bucket_in_another_region(unkai):
    s3 = unkai.client("s3", region="eu-west-1")
    name = f"eu-{uuid.uuid4().hex[:10]}"
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=name)
    assert code(exc) == "IllegalLocationConstraintException"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] == "eu-west-1"
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert code(exc) == "BucketAlreadyOwnedByYou"


@pytest.mark.parametrize("bad", ["ab", "UPPER", "has_underscore", "-start", "end-", "a..b", "192.168.1.1",
                                 "x" * 64, "xn--punycode"])
def test_invalid_bucket_names(s3, bad):
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=bad)
    assert code(exc) == "InvalidBucketName"


def test_bucket_configurations(s3, bucket):
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "qa"}]})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "qa"}]
    s3.delete_bucket_tagging(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_tagging(Bucket=bucket)
    assert code(exc) == "NoSuchTagSet"

    policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject",' \
             f'"Resource":"arn:aws:s3:::{bucket}/*"}}]}}'
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_policy(Bucket=bucket)
    assert code(exc) == "NoSuchBucketPolicy"
    s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    assert s3.get_bucket_policy(Bucket=bucket)["Policy"] == policy
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_policy(Bucket=bucket, Policy="not json")
    assert code(exc) == "MalformedPolicy"

    rules = [{"ID": "expire", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 7}}]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == rules
    s3.delete_bucket_lifecycle(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert code(exc) == "NoSuchLifecycleConfiguration"
    enc = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_acl(Bucket=bucket)["Grants"][0]["Permission"] == "FULL_CONTROL"


def test_malformed_xml_body(s3, bucket, unkai):
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"{unkai.endpoint}/{bucket}?tagging", data=b"<Tagging><TagSet>", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req)
    assert exc.value.code == 400 and b"<Code>MalformedXML</Code>" in exc.value.read()


# -- objects ---------------------------------------------------------------------------------

KEYS = ["plain.txt", "with space.txt", "plus+sign", "percent%20not-space", "ユニコード/файл ü.txt",
        "double//slash", "../../../../etc/passwd", "a/./b/../c", "?query&amp=1#frag", "trailing/"]


@pytest.mark.parametrize("key", KEYS)
def test_keys_round_trip_and_stay_inside_the_state_dir(s3, bucket, unkai, key):
    body = f"body of {key}".encode() * 5000  # over 64 KiB: kept in a file, not in the database
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
    assert [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]] == [key]
    state = unkai.state_dir.resolve()
    holders = [p for p in state.parent.rglob("*") if p.is_file() and p.read_bytes() == body]
    assert holders and all(state / "s3" / "blobs" in p.resolve().parents for p in holders)
    assert not Path("/etc/passwd").read_bytes().startswith(b"body of")


def test_put_get_head_with_metadata_and_checksums(s3, bucket):
    body = os.urandom(1000)
    put = s3.put_object(Bucket=bucket, Key="doc", Body=body, ContentType="application/pdf",
                        Metadata={"Owner": "yamada"}, CacheControl="max-age=60", ContentDisposition="inline",
                        ChecksumAlgorithm="SHA256")
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert put["ChecksumSHA256"]
    got = s3.get_object(Bucket=bucket, Key="doc", ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got["ContentType"] == "application/pdf" and got["Metadata"] == {"owner": "yamada"}
    assert got["CacheControl"] == "max-age=60" and got["ContentDisposition"] == "inline"
    assert got["ChecksumSHA256"] == put["ChecksumSHA256"]
    head = s3.head_object(Bucket=bucket, Key="doc")
    assert head["ContentLength"] == 1000 and head["ETag"] == put["ETag"]
    assert s3.get_object(Bucket=bucket, Key="doc", ResponseContentType="text/plain")["ContentType"] == "text/plain"
    for algorithm in ("CRC32", "CRC32C", "SHA1", "CRC64NVME"):
        r = s3.put_object(Bucket=bucket, Key=f"sum-{algorithm}", Body=body, ChecksumAlgorithm=algorithm)
        assert r[f"Checksum{algorithm}"]
        got = s3.get_object(Bucket=bucket, Key=f"sum-{algorithm}", ChecksumMode="ENABLED")
        assert got["Body"].read() == body and got[f"Checksum{algorithm}"] == r[f"Checksum{algorithm}"]


def test_wrong_checksums_are_rejected(s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"hello", ChecksumCRC32="AAAAAA==")
    assert code(exc) == "BadDigest"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"hello", ContentMD5="XrY7u+Ae7tCTyyK7j1rNww==")
    assert code(exc) == "BadDigest"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"hello", ContentMD5="short")
    assert code(exc) == "InvalidDigest"
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="bad")


def test_missing_keys_and_ranges(s3, bucket):
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="nope")
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="nope")
    assert status(exc) == 404
    s3.put_object(Bucket=bucket, Key="digits", Body=b"0123456789")
    for header, want in (("bytes=2-5", b"2345"), ("bytes=7-", b"789"), ("bytes=-3", b"789"), ("bytes=5-100", b"56789")):
        got = s3.get_object(Bucket=bucket, Key="digits", Range=header)
        assert got["Body"].read() == want and got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["ContentRange"].endswith("/10")
    assert s3.get_object(Bucket=bucket, Key="digits", Range="bytes=5-2")["Body"].read() == b"0123456789"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="digits", Range="bytes=10-")
    assert code(exc) == "InvalidRange" and status(exc) == 416


def test_conditional_requests(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"v1")["ETag"]
    modified = s3.head_object(Bucket=bucket, Key="c")["LastModified"]
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"v1"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"other"')
    assert code(exc) == "PreconditionFailed" and status(exc) == 412
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert status(exc) == 304
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=modified)
    assert status(exc) == 304
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=modified.replace(year=2000))
    assert code(exc) == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=modified.replace(year=2000))["Body"].read() == b"v1"
    with pytest.raises(ClientError) as exc:  # conditional write: only if absent
        s3.put_object(Bucket=bucket, Key="c", Body=b"v2", IfNoneMatch="*")
    assert code(exc) == "PreconditionFailed"
    s3.put_object(Bucket=bucket, Key="c", Body=b"v2", IfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"v2"


def test_copy_delete_and_delete_objects(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src key", Body=b"payload", Metadata={"a": "1"}, Tagging="t=1")
    r = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src key"})
    assert r["CopyObjectResult"]["ETag"] == s3.head_object(Bucket=bucket, Key="src key")["ETag"]
    dst = s3.get_object(Bucket=bucket, Key="dst")
    assert dst["Body"].read() == b"payload" and dst["Metadata"] == {"a": "1"} and dst["TagCount"] == 1
    s3.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/src key", MetadataDirective="REPLACE",
                   Metadata={"b": "2"}, ContentType="text/plain")
    assert s3.head_object(Bucket=bucket, Key="dst")["Metadata"] == {"b": "2"}
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "dst"})
    assert code(exc) == "InvalidRequest"
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "dst"}, CopySourceIfMatch='"no"')
    assert code(exc) == "PreconditionFailed"
    s3.delete_object(Bucket=bucket, Key="src key")
    s3.delete_object(Bucket=bucket, Key="never existed")  # 204 all the same
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"many/{i}", Body=b"x")
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"many/{i}"} for i in range(3)]})
    assert sorted(d["Key"] for d in out["Deleted"]) == ["many/0", "many/1", "many/2"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["dst"]


def test_object_tagging(s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="a=1&b=two%20words")
    assert sorted((t["Key"], t["Value"]) for t in s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]) == \
        [("a", "1"), ("b", "two words")]
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "c", "Value": "3"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "c", "Value": "3"}]
    s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    with pytest.raises(ClientError) as exc:
        s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": str(i), "Value": ""}
                                                                          for i in range(11)]})
    assert code(exc) == "BadRequest"


# -- listing ---------------------------------------------------------------------------------


def test_list_prefix_delimiter_pagination(s3, bucket):
    keys = ["a/1", "a/2", "a/b/3", "b/1", "c", "d/1", "d/2", "e"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"")
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/", "b/", "d/"]
    assert [o["Key"] for o in top["Contents"]] == ["c", "e"] and top["KeyCount"] == 5
    sub = s3.list_objects_v2(Bucket=bucket, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in sub["Contents"]] == ["a/1", "a/2"] and sub["CommonPrefixes"] == [{"Prefix": "a/b/"}]
    seen, token = [], None
    while True:
        page = s3.list_objects_v2(Bucket=bucket, Delimiter="/", MaxKeys=2,
                                  **({"ContinuationToken": token} if token else {}))
        seen += [p["Prefix"] for p in page.get("CommonPrefixes", [])] + [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert sorted(seen) == ["a/", "b/", "c", "d/", "e"]
    pages = s3.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 3})
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == keys
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, StartAfter="d/1")["Contents"]] == ["d/2", "e"]
    raw = s3.list_objects_v2(Bucket=bucket, Prefix="z")
    assert raw["KeyCount"] == 0 and "Contents" not in raw


def test_list_encoding_type_url(unkai, bucket):
    import urllib.request
    s3 = unkai.client("s3")
    s3.put_object(Bucket=bucket, Key="sp ace+plus/ü", Body=b"")
    assert s3.list_objects_v2(Bucket=bucket)["Contents"][0]["Key"] == "sp ace+plus/ü"  # boto3 decodes for us
    url = s3.generate_presigned_url("list_objects_v2", Params={"Bucket": bucket, "EncodingType": "url"})
    body = urllib.request.urlopen(url).read().decode()
    assert "<Key>sp%20ace%2Bplus/%C3%BC</Key>" in body and "<EncodingType>url</EncodingType>" in body
    assert "<ListBucketResult" in body


# -- versioning ------------------------------------------------------------------------------


def test_versioning(s3, bucket):
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"before")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    assert v1 != v2 and s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=v1)["Body"].read() == b"one"
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"before"
    marker = s3.delete_object(Bucket=bucket, Key="k")
    assert marker["DeleteMarker"] is True
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k")
    assert code(exc) == "NoSuchKey"
    assert exc.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k", VersionId=marker["VersionId"])
    assert status(exc) == 405
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    listing = s3.list_object_versions(Bucket=bucket)
    assert [v["VersionId"] for v in listing["Versions"]] == [v2, v1, "null"]
    assert [(m["VersionId"], m["IsLatest"]) for m in listing["DeleteMarkers"]] == [(marker["VersionId"], True)]
    page = s3.list_object_versions(Bucket=bucket, MaxKeys=2)
    assert page["IsTruncated"] and page["NextKeyMarker"] == "k"
    rest = s3.list_object_versions(Bucket=bucket, KeyMarker=page["NextKeyMarker"],
                                   VersionIdMarker=page["NextVersionIdMarker"])
    assert len(rest.get("Versions", [])) + len(rest.get("DeleteMarkers", [])) == 2
    s3.delete_object(Bucket=bucket, Key="k", VersionId=marker["VersionId"])  # undelete
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k", VersionId="x" * 32)
    assert code(exc) == "NoSuchVersion"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.put_object(Bucket=bucket, Key="k", Body=b"suspended").get("VersionId") == "null"
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert [v["VersionId"] for v in versions] == ["null", v2, v1]  # the old null version was replaced


# -- multipart -------------------------------------------------------------------------------

MiB = 1024 * 1024


def test_multipart_upload_api(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ContentType="video/mp4", Metadata={"m": "1"})
    uid = up["UploadId"]
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"tail"]
    etags = [s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=i + 1, Body=p)["ETag"]
             for i, p in enumerate(parts)]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [uid]
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid, MaxParts=2)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2] and listed["IsTruncated"]
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 2, "ETag": etags[1]}, {"PartNumber": 1, "ETag": etags[0]}]})
    assert code(exc) == "InvalidPartOrder"
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": '"0000"'}]})
    assert code(exc) == "InvalidPart"
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 3, "ETag": etags[2]}, {"PartNumber": 4, "ETag": etags[2]}]})
    assert code(exc) == "InvalidPart"
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=10001, Body=b"x")
    assert code(exc) == "InvalidArgument"
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]})
    expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"
    assert done["ETag"] == f'"{expected}"'
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == b"".join(parts) and got["ContentType"] == "video/mp4" and got["Metadata"] == {"m": "1"}
    part2 = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert part2["PartsCount"] == 3 and part2["Body"].read() == parts[1]
    with pytest.raises(s3.exceptions.NoSuchUpload):
        s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)


def test_multipart_small_parts_abort_and_copy(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="small", UploadId=uid, PartNumber=1, Body=b"a" * 100)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="small", UploadId=uid, PartNumber=2, Body=b"b")["ETag"]
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert code(exc) == "EntityTooSmall"
    s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=uid)
    with pytest.raises(s3.exceptions.NoSuchUpload):
        s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=uid)
    source = os.urandom(6 * MiB)
    s3.put_object(Bucket=bucket, Key="source", Body=source)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="copied")["UploadId"]
    c1 = s3.upload_part_copy(Bucket=bucket, Key="copied", UploadId=uid, PartNumber=1,
                             CopySource={"Bucket": bucket, "Key": "source"}, CopySourceRange=f"bytes=0-{5 * MiB - 1}")
    c2 = s3.upload_part_copy(Bucket=bucket, Key="copied", UploadId=uid, PartNumber=2,
                             CopySource={"Bucket": bucket, "Key": "source"},
                             CopySourceRange=f"bytes={5 * MiB}-")
    s3.complete_multipart_upload(Bucket=bucket, Key="copied", UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": c1["CopyPartResult"]["ETag"]},
        {"PartNumber": 2, "ETag": c2["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="copied")["Body"].read() == source


def test_upload_and_download_file_with_resource(unkai, bucket, tmp_path):
    from boto3.s3.transfer import TransferConfig

    data = os.urandom(17 * MiB + 123)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    res = unkai.resource("s3")
    cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB)
    res.Bucket(bucket).upload_file(str(src), "big/file.bin", Config=cfg)
    obj = res.Object(bucket, "big/file.bin")
    assert obj.content_length == len(data) and obj.e_tag.endswith('-3"')
    dst = tmp_path / "dst.bin"
    res.Bucket(bucket).download_file("big/file.bin", str(dst), Config=cfg)
    assert dst.read_bytes() == data
    assert [o.key for o in res.Bucket(bucket).objects.filter(Prefix="big/")] == ["big/file.bin"]


def test_single_put_over_5_gib_is_refused(unkai, bucket):
    import http.client

    host = unkai.endpoint.split("://")[1]
    conn = http.client.HTTPConnection(host, timeout=10)
    conn.putrequest("PUT", f"/{bucket}/huge")
    conn.putheader("Content-Length", str(5 * 1024 ** 3 + 1))
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 400 and b"<Code>EntityTooLarge</Code>" in response.read()
    conn.close()


def test_aws_chunked_upload_with_trailing_checksum(unkai, bucket):
    """The body format SDKs send over TLS by default: aws-chunked with a CRC32 trailer."""
    import base64
    import http.client
    import zlib

    data = b"chunked " * 3000
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()

    def send(checksum: str) -> tuple[int, bytes]:
        chunks = [data[:10000], data[10000:]]
        body = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks)
        body += b"0\r\n" + f"x-amz-checksum-crc32:{checksum}\r\n\r\n".encode()
        conn = http.client.HTTPConnection(unkai.endpoint.split("://")[1], timeout=10)
        conn.request("PUT", f"/{bucket}/chunked", body=body, headers={
            "Content-Encoding": "aws-chunked", "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            "x-amz-decoded-content-length": str(len(data)), "x-amz-trailer": "x-amz-checksum-crc32"})
        response = conn.getresponse()
        return response.status, response.read()

    assert send("AAAAAA==")[0] == 400
    status_code, _ = send(crc)
    assert status_code == 200
    s3 = unkai.client("s3")
    got = s3.get_object(Bucket=bucket, Key="chunked", ChecksumMode="ENABLED")
    assert got["Body"].read() == data and got["ChecksumCRC32"] == crc
    assert "ContentEncoding" not in got


def test_virtual_host_addressing(unkai, bucket):
    import http.client

    s3 = unkai.client("s3")
    s3.put_object(Bucket=bucket, Key="dir/v.txt", Body=b"virtual")
    port = unkai.endpoint.rsplit(":", 1)[1]
    for host in (f"{bucket}.s3.amazonaws.com", f"{bucket}.s3.us-east-1.amazonaws.com",
                 f"{bucket}.s3.localhost.localstack.cloud:{port}", f"{bucket}.localhost:{port}"):
        conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
        conn.request("GET", "/dir/v.txt", headers={"Host": host})
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"virtual"), host
        conn.request("GET", "/?list-type=2", headers={"Host": host})
        listing = conn.getresponse().read()
        assert b"<Key>dir/v.txt</Key>" in listing and b"<ListBucketResult" in listing, host
        conn.close()
    virtual = unkai.client("s3", config=Config(s3={"addressing_style": "virtual"}, retries={"max_attempts": 1}))
    assert virtual.meta.endpoint_url == unkai.endpoint


# -- the AWS CLI -----------------------------------------------------------------------------


def test_aws_cli_cp_sync_ls(unkai, bucket, tmp_path):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=CREDENTIALS["aws_access_key_id"],
               AWS_SECRET_ACCESS_KEY=CREDENTIALS["aws_secret_access_key"], AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))

    def aws(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "awscli", "--endpoint-url", unkai.endpoint, "s3", *args],
                             capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout

    site = tmp_path / "site"
    (site / "css").mkdir(parents=True)
    (site / "index.html").write_text("<h1>hi</h1>")
    (site / "css" / "style.css").write_text("h1{}")
    (site / "big.bin").write_bytes(os.urandom(9 * MiB))
    aws("sync", str(site), f"s3://{bucket}/site")
    listing = aws("ls", "--recursive", f"s3://{bucket}/site/")
    assert "site/index.html" in listing and "site/css/style.css" in listing and "site/big.bin" in listing
    s3 = unkai.client("s3")
    assert s3.head_object(Bucket=bucket, Key="site/index.html")["ContentType"] == "text/html"
    aws("cp", f"s3://{bucket}/site/big.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == (site / "big.bin").read_bytes()
    assert "upload" not in aws("sync", str(site), f"s3://{bucket}/site")  # nothing changed
    assert f"{bucket}" in aws("ls")


def test_state_survives_kill_9(tmp_path):
    from unkai.testing import UnkaiServer

    server = UnkaiServer(tmp_path / "state").start()
    try:
        s3 = server.client("s3")
        s3.create_bucket(Bucket="durable-bucket")
        s3.put_object(Bucket="durable-bucket", Key="acked", Body=b"kept" * 1000)
        s3.put_object(Bucket="durable-bucket", Key="acked-file", Body=b"file" * 100_000)
        server.kill()
        server.start()
        s3 = server.client("s3")
        assert s3.get_object(Bucket="durable-bucket", Key="acked")["Body"].read() == b"kept" * 1000
        assert s3.get_object(Bucket="durable-bucket", Key="acked-file")["Body"].read() == b"file" * 100_000
    finally:
        server.stop()


def test_form_encoded_put_stores_its_body(unkai, bucket):
    """A PUT whose Content-Type says form-encoded is still an object body (moto stores it empty)."""
    import httpx

    body = b"username=%E5%B1%B1%E7%94%B0&email=yamada%40example.co.jp"
    r = httpx.put(unkai.url(f"/{bucket}/form.txt"), content=body,
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200
    got = unkai.client("s3").get_object(Bucket=bucket, Key="form.txt")
    assert got["Body"].read() == body and got["ContentType"] == "application/x-www-form-urlencoded"


def test_server_side_encryption_is_recorded_and_reported(s3, bucket, unkai):
    """SSE-S3 by default; SSE-KMS with the named key (or ``aws/s3``) resolved to its ARN, from
    the request or the bucket's default encryption, on put, head, get, copy and multipart."""
    kms = unkai.client("kms")
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName=f"alias/{bucket}", TargetKeyId=key_arn)

    def sse(resp: dict) -> tuple:
        return resp.get("ServerSideEncryption"), resp.get("SSEKMSKeyId"), resp.get("BucketKeyEnabled")

    assert sse(s3.put_object(Bucket=bucket, Key="plain", Body=b"x")) == ("AES256", None, None)
    put = s3.put_object(Bucket=bucket, Key="kms", Body=b"x", ServerSideEncryption="aws:kms",
                        SSEKMSKeyId=f"alias/{bucket}")
    assert sse(put) == ("aws:kms", key_arn, None)
    assert sse(s3.head_object(Bucket=bucket, Key="kms")) == ("aws:kms", key_arn, None)
    assert sse(s3.get_object(Bucket=bucket, Key="kms")) == ("aws:kms", key_arn, None)
    managed = s3.put_object(Bucket=bucket, Key="managed", Body=b"x", ServerSideEncryption="aws:kms")
    assert managed["SSEKMSKeyId"] == kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]["Arn"]
    copied = s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "kms"})
    assert sse(copied) == ("AES256", None, None)  # a copy is encrypted as its own request says

    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
        "BucketKeyEnabled": True}]})
    assert sse(s3.put_object(Bucket=bucket, Key="default", Body=b"x")) == ("aws:kms", key_arn, True)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="parts")
    assert sse(upload) == ("aws:kms", key_arn, True)
    part = s3.upload_part(Bucket=bucket, Key="parts", UploadId=upload["UploadId"], PartNumber=1, Body=b"y")
    assert sse(part) == ("aws:kms", key_arn, True)
    done = s3.complete_multipart_upload(Bucket=bucket, Key="parts", UploadId=upload["UploadId"],
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert sse(done) == ("aws:kms", key_arn, True)
    assert sse(s3.head_object(Bucket=bucket, Key="parts")) == ("aws:kms", key_arn, True)

    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/none")
    assert (code(exc), status(exc)) == ("KMS.NotFoundException", 400)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"x", SSEKMSKeyId=key_arn)
    assert code(exc) == "InvalidArgument"
