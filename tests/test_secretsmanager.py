"""Secrets Manager through boto3: values and versions with staging labels, deletion with a
recovery window on unkai's clock, rotation by a Lambda function (the four steps, then
again on schedule), resource policies, filters, random passwords; values sealed at rest."""

from __future__ import annotations

import io
import json
import sqlite3
import uuid
import zipfile

import pytest
from botocore.exceptions import ClientError
from lambda_code import private_server

# key deletion and rotation move the clock by days: a server of the module's own
unkai = private_server("secretsmanager")

ROTATOR = '''
import boto3

sm = boto3.client("secretsmanager")

def handler(event, context):
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    if step == "createSecret":
        current = sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]
        sm.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=current + "+",
                            VersionStages=["AWSPENDING"])
    elif step == "finishSecret":
        described = sm.describe_secret(SecretId=arn)
        current = next(v for v, s in described["VersionIdsToStages"].items() if "AWSCURRENT" in s)
        sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token,
                                       RemoveFromVersionId=current)
'''


@pytest.fixture
def sm(unkai):
    return unkai.client("secretsmanager")


@pytest.fixture
def name() -> str:
    return f"app/{uuid.uuid4().hex[:8]}/db"


def _code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def test_versions_and_staging_labels(sm, name):
    created = sm.create_secret(Name=name, SecretString='{"password": "one"}', Description="db",
                               Tags=[{"Key": "env", "Value": "dev"}])
    assert created["ARN"].startswith(f"arn:aws:secretsmanager:us-east-1:000000000000:secret:{name}-")
    got = sm.get_secret_value(SecretId=name)
    assert (got["SecretString"], got["VersionStages"], got["VersionId"]) == \
        ('{"password": "one"}', ["AWSCURRENT"], created["VersionId"])
    put = sm.put_secret_value(SecretId=created["ARN"], SecretString="two")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "two"
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == '{"password": "one"}'
    assert sm.get_secret_value(SecretId=name, VersionId=created["VersionId"])["VersionStages"] == ["AWSPREVIOUS"]
    partial = created["ARN"].rsplit("-", 1)[0]
    assert sm.get_secret_value(SecretId=partial)["VersionId"] == put["VersionId"]
    binary = sm.put_secret_value(SecretId=name, SecretBinary=b"\x00\x01", VersionStages=["LABEL"])
    assert sm.get_secret_value(SecretId=name, VersionStage="LABEL")["SecretBinary"] == b"\x00\x01"
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages == {created["VersionId"]: ["AWSPREVIOUS"], put["VersionId"]: ["AWSCURRENT"],
                      binary["VersionId"]: ["LABEL"]}
    with pytest.raises(ClientError) as exc:
        sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=binary["VersionId"])
    assert _code(exc) == "InvalidParameterException"
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=binary["VersionId"],
                                   RemoveFromVersionId=put["VersionId"])
    assert sm.get_secret_value(SecretId=name)["SecretBinary"] == b"\x00\x01"
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=name, SecretString="x")
    assert _code(exc) == "ResourceExistsException"
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId="no/such/secret")
    assert exc.value.response["Error"] == {"Code": "ResourceNotFoundException",
                                           "Message": "Secrets Manager can't find the specified secret."}


def test_a_label_that_holds_another_label_does_not_stand_for_it(sm, name):
    current = sm.create_secret(Name=name, SecretString="current")["VersionId"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "current"  # read (and kept) once
    # newer versions labelled with names that hold "AWSCURRENT" (a label is any 1-256 characters)
    for label in ('"AWSCURRENT', 'AWSCURRENT"', "AWSCURRENT2"):
        sm.put_secret_value(SecretId=name, SecretString=label, VersionStages=[label])
    got = sm.get_secret_value(SecretId=name)
    assert (got["SecretString"], got["VersionId"], got["VersionStages"]) == ("current", current, ["AWSCURRENT"])
    assert sm.get_secret_value(SecretId=name, VersionStage='"AWSCURRENT')["SecretString"] == '"AWSCURRENT'
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT2")["SecretString"] == "AWSCURRENT2"
    newest = sm.put_secret_value(SecretId=name, SecretString="newest")["VersionId"]
    got = sm.get_secret_value(SecretId=name)
    assert (got["SecretString"], got["VersionId"]) == ("newest", newest)
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "current"
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT3")
    assert _code(exc) == "ResourceNotFoundException"


def test_deletion_waits_for_the_recovery_window_on_the_clock(unkai, sm, name):
    sm.create_secret(Name=name, SecretString="v")
    deleted = sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=name)
    assert _code(exc) == "InvalidRequestException"
    assert sm.describe_secret(SecretId=name)["DeletedDate"] == deleted["DeletionDate"]
    assert name not in [s["Name"] for s in sm.list_secrets(MaxResults=100)["SecretList"]]
    sm.restore_secret(SecretId=name)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v"
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    unkai.advance(7 * 86400 + 1)
    with pytest.raises(ClientError) as exc:
        sm.describe_secret(SecretId=name)
    assert _code(exc) == "ResourceNotFoundException"
    sm.create_secret(Name=name, SecretString="again")  # the name is free again
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    with pytest.raises(ClientError) as exc:
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=3)
    assert _code(exc) in ("InvalidParameterException", "ResourceNotFoundException")


def test_last_accessed_date_is_the_day_of_the_last_read(unkai, sm, name):
    sm.create_secret(Name=name, SecretString="v")
    assert "LastAccessedDate" not in sm.describe_secret(SecretId=name)
    sm.get_secret_value(SecretId=name)
    first = sm.describe_secret(SecretId=name)["LastAccessedDate"]
    assert first.timestamp() % 86400 == 0  # AWS keeps the day only
    sm.get_secret_value(SecretId=name)  # the same day: the same date
    assert sm.describe_secret(SecretId=name)["LastAccessedDate"] == first
    unkai.advance(2 * 86400)
    sm.describe_secret(SecretId=name)  # describing is no access
    assert sm.describe_secret(SecretId=name)["LastAccessedDate"] == first
    sm.get_secret_value(SecretId=name)
    assert (sm.describe_secret(SecretId=name)["LastAccessedDate"] - first).days == 2


def test_rotation_runs_the_four_steps_now_and_on_schedule(unkai, sm, name):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", ROTATOR)
    fn = unkai.client("lambda").create_function(
        FunctionName=f"rotator-{uuid.uuid4().hex[:6]}", Runtime="python3.12",
        Role="arn:aws:iam::000000000000:role/rotator", Handler="index.handler", Code={"ZipFile": buf.getvalue()},
        Timeout=30)
    sm.create_secret(Name=name, SecretString="pw")
    rotated = sm.rotate_secret(SecretId=name, RotationLambdaARN=fn["FunctionArn"],
                               RotationRules={"AutomaticallyAfterDays": 10})
    unkai.drain(60)
    got = sm.get_secret_value(SecretId=name)
    assert (got["SecretString"], got["VersionId"]) == ("pw+", rotated["VersionId"])
    described = sm.describe_secret(SecretId=name)
    assert described["RotationEnabled"] and described["RotationRules"]["AutomaticallyAfterDays"] == 10
    assert "LastRotatedDate" in described
    unkai.advance(10 * 86400 + 1)
    unkai.drain(60)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "pw++"
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "pw+"
    sm.cancel_rotate_secret(SecretId=name)
    assert not sm.describe_secret(SecretId=name)["RotationEnabled"]


def test_list_filters_batch_get_policies_and_passwords(sm, name):
    sm.create_secret(Name=name, SecretString="a", Tags=[{"Key": "team", "Value": "payments"}])
    sm.create_secret(Name=name + "2", SecretString="b")
    listed = sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}, {"Key": "tag-value", "Values": ["pay"]}])
    assert [s["Name"] for s in listed["SecretList"]] == [name]
    batch = sm.batch_get_secret_value(SecretIdList=[name, name + "2", "missing"])
    assert sorted(v["SecretString"] for v in batch["SecretValues"]) == ["a", "b"]
    assert batch["Errors"][0]["ErrorCode"] == "ResourceNotFoundException"
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
        "AWS": "arn:aws:iam::000000000000:role/reader"}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]})
    sm.put_resource_policy(SecretId=name, ResourcePolicy=policy)
    assert json.loads(sm.get_resource_policy(SecretId=name)["ResourcePolicy"]) == json.loads(policy)
    with pytest.raises(ClientError) as exc:
        sm.put_resource_policy(SecretId=name, ResourcePolicy='{"Statement": [{"Effect": "Allow"}]}')
    assert _code(exc) == "MalformedPolicyDocumentException"
    password = sm.get_random_password(PasswordLength=20, ExcludePunctuation=True)["RandomPassword"]
    assert len(password) == 20 and password.isalnum()
    assert any(c.isdigit() for c in password) and any(c.isupper() for c in password)


def test_secret_values_are_not_stored_in_the_clear(unkai, sm, name):
    sm.create_secret(Name=name, SecretString="hunter2-very-secret")
    db = sqlite3.connect(unkai.state_dir / "unkai.db")
    try:
        blobs = b"".join(bytes(r[0]) for r in db.execute("SELECT value FROM secretsmanager_versions"))
    finally:
        db.close()
    assert b"hunter2-very-secret" not in blobs


def test_a_secret_under_a_disabled_kms_key_cannot_be_read_or_written(unkai, sm, name):
    """A secret encrypted with a customer managed key answers DecryptionFailure while the key is
    disabled or pending deletion (EncryptionFailure for new values), and reads again once the
    key is enabled; secrets under the AWS managed key are not affected."""
    kms = unkai.client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    sm.create_secret(Name=name, SecretString="s3cr3t", KmsKeyId=key)
    kms.disable_key(KeyId=key)
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=name)
    assert exc.value.response["Error"] == {
        "Code": "DecryptionFailure", "Message": "Secrets Manager can't decrypt the protected secret text using the "
        "provided KMS key."}
    with pytest.raises(ClientError) as exc:
        sm.put_secret_value(SecretId=name, SecretString="next")
    assert exc.value.response["Error"]["Code"] == "EncryptionFailure"
    with pytest.raises(ClientError) as exc:
        sm.create_secret(Name=name + "-2", SecretString="x", KmsKeyId=key)
    assert exc.value.response["Error"]["Code"] == "EncryptionFailure"
    assert sm.describe_secret(SecretId=name)["KmsKeyId"] == key  # metadata still reads
    kms.enable_key(KeyId=key)
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=name)
    assert exc.value.response["Error"]["Code"] == "DecryptionFailure"
    kms.cancel_key_deletion(KeyId=key)
    kms.enable_key(KeyId=key)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "s3cr3t"
