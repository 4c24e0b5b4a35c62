"""What a KMS key protects in other services. S3 SSE-KMS at rest: an object stored with ``aws:kms``
(from the request or the bucket's default, ``alias/aws/s3`` when no key is named) is kept on disk
encrypted with a data key KMS made under its key; GET decrypts it (whole, ranges, part numbers,
copies, multipart) while the key is usable, and fails as S3 fails once the key is disabled or
pending deletion. Lambda's environment variables under a KMSKeyArn likewise."""

from __future__ import annotations

import os
import uuid

import pytest
from botocore.exceptions import ClientError
from lambda_code import call, deploy


def _code(exc: pytest.ExceptionInfo) -> tuple[str, int]:
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def _state_holds(unkai, needle: bytes) -> list[str]:
    """The files under the server's state directory whose bytes contain ``needle``."""
    found = []
    for root, _, files in os.walk(unkai.state_dir):
        for name in files:
            path = os.path.join(root, name)
            try:
                with open(path, "rb") as f:
                    if needle in f.read():
                        found.append(path)
            except OSError:
                continue
    return found


def test_sse_kms_objects_are_encrypted_at_rest_and_need_a_usable_key(unkai):
    s3, kms = unkai.client("s3"), unkai.client("kms")
    bucket = f"sealed-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    key_arn = kms.create_key(Description="objects")["KeyMetadata"]["Arn"]
    marker = uuid.uuid4().hex.encode()  # a secret no other test writes
    small = b"small:" + marker * 4
    big = b"".join(b"%08d" % i + marker for i in range(20_000))  # 800 KB: a file, streamed
    part1 = os.urandom(16) + marker * (5 * 1024 * 1024 // len(marker))  # multipart parts of 5 MB and a tail
    part2 = b"tail:" + marker * 100

    s3.put_object(Bucket=bucket, Key="small", Body=small, ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn)
    s3.put_object(Bucket=bucket, Key="big", Body=big, ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="parts", ServerSideEncryption="aws:kms",
                                        SSEKMSKeyId=key_arn)
    uid = upload["UploadId"]
    p1 = s3.upload_part(Bucket=bucket, Key="parts", UploadId=uid, PartNumber=1, Body=part1)
    p2 = s3.upload_part_copy(Bucket=bucket, Key="parts", UploadId=uid, PartNumber=2,
                             CopySource={"Bucket": bucket, "Key": "small"})  # from a sealed source
    assert p2["SSEKMSKeyId"] == key_arn
    assert not _state_holds(unkai, marker), "an SSE-KMS upload's parts are stored encrypted"
    s3.complete_multipart_upload(Bucket=bucket, Key="parts", UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]}]})
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})  # alias/aws/s3
    default = s3.put_object(Bucket=bucket, Key="default", Body=part2)
    assert default["SSEKMSKeyId"] == kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]["Arn"]
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "big"},
                   ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn)

    # Nothing under the state directory (object files, database rows, parts) holds the plaintext.
    assert _state_holds(unkai, marker) == []

    assert s3.get_object(Bucket=bucket, Key="small")["Body"].read() == small
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == big
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == big
    assert s3.get_object(Bucket=bucket, Key="default")["Body"].read() == part2
    assert s3.get_object(Bucket=bucket, Key="parts")["Body"].read() == part1 + small
    ranged = s3.get_object(Bucket=bucket, Key="big", Range="bytes=1001-300077")
    assert ranged["ContentRange"] == f"bytes 1001-300077/{len(big)}" and ranged["Body"].read() == big[1001:300078]
    assert s3.get_object(Bucket=bucket, Key="small", Range="bytes=-7")["Body"].read() == small[-7:]
    second = s3.get_object(Bucket=bucket, Key="parts", PartNumber=2)
    assert second["Body"].read() == small and second["PartsCount"] == 2
    # A copy to SSE-S3 is the plaintext again, and an SSE-S3 object copied to SSE-KMS is sealed.
    plain = s3.copy_object(Bucket=bucket, Key="plain", CopySource={"Bucket": bucket, "Key": "small"},
                           ServerSideEncryption="AES256")
    assert plain["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="plain")["Body"].read() == small

    # A disabled key, or one pending deletion, makes the objects unreadable; metadata still reads.
    kms.disable_key(KeyId=key_arn)
    for name in ("small", "big", "parts", "copy"):
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket=bucket, Key=name)
        assert _code(exc) == ("KMS.DisabledException", 400)
        assert exc.value.response["Error"]["Message"] == f"{key_arn} is disabled."
    assert s3.head_object(Bucket=bucket, Key="big")["ContentLength"] == len(big)
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="more", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn)
    assert _code(exc) == ("KMS.DisabledException", 400)
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="copy2", CopySource={"Bucket": bucket, "Key": "small"},
                       ServerSideEncryption="AES256")
    assert _code(exc) == ("KMS.DisabledException", 400)
    kms.enable_key(KeyId=key_arn)
    kms.schedule_key_deletion(KeyId=key_arn, PendingWindowInDays=7)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="small")
    assert _code(exc) == ("KMS.KMSInvalidStateException", 400)
    assert exc.value.response["Error"]["Message"] == f"{key_arn} is pending deletion."
    kms.cancel_key_deletion(KeyId=key_arn)
    kms.enable_key(KeyId=key_arn)
    assert s3.get_object(Bucket=bucket, Key="small")["Body"].read() == small


def test_a_function_whose_environment_key_is_disabled_cannot_run(unkai):
    """Lambda decrypts a function's environment variables with its KMSKeyArn on every cold start
    on AWS: while that key is disabled or pending deletion, Invoke answers KMSDisabledException /
    KMSInvalidStateException (502) as Lambda does, and runs again once the key is enabled."""
    lam, kms = unkai.client("lambda"), unkai.client("kms")
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    name = deploy(lam, "import os\ndef handler(e, c):\n    return os.environ['GREETING']\n",
                  Environment={"Variables": {"GREETING": "hi"}}, KMSKeyArn=key_arn)
    assert lam.get_function_configuration(FunctionName=name)["KMSKeyArn"] == key_arn
    kms.disable_key(KeyId=key_arn)
    with pytest.raises(ClientError) as exc:
        call(lam, name)
    assert _code(exc) == ("KMSDisabledException", 502)
    kms.enable_key(KeyId=key_arn)
    assert call(lam, name)[1] == "hi"
    kms.schedule_key_deletion(KeyId=key_arn, PendingWindowInDays=7)
    with pytest.raises(ClientError) as exc:
        call(lam, name)
    assert _code(exc) == ("KMSInvalidStateException", 502)
