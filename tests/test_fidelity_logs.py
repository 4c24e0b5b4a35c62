"""CloudWatch Logs answers as AWS does, in the details clients branch on (issue 23, item 3: Logs):
limits and orderBy validation, log group classes, resource policies and data protection
policies stored and read back."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def logs(unkai):
    return unkai.client("logs")


@pytest.fixture
def group(logs):
    name = f"/fid/{time.time_ns()}"
    logs.create_log_group(logGroupName=name, logGroupClass="INFREQUENT_ACCESS")
    return name


def error_of(exc: pytest.ExceptionInfo) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def test_limits_and_order_by_are_validated(logs, group):
    with pytest.raises(ClientError) as exc:
        logs.describe_log_streams(logGroupName=group, limit=51)
    assert error_of(exc)[0] == "InvalidParameterException"
    assert "Member must have value less than or equal to 50" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", logStreamNamePrefix="a")
    assert error_of(exc) == ("InvalidParameterException", "Cannot order by LastEventTime with a logStreamNamePrefix.")
    with pytest.raises(ClientError) as exc:
        logs.filter_log_events(logGroupName=group, limit=10001)
    assert error_of(exc) == ("InvalidParameterException", "1 validation error detected: Value '10001' at 'limit' "
                             "failed to satisfy constraint: Member must have value less than or equal to 10000")


def test_a_log_group_keeps_its_class(logs, group):
    described = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    assert described["logGroupClass"] == "INFREQUENT_ACCESS"


def test_resource_policies_are_stored_listed_and_deleted(logs):
    name = f"fid-{time.time_ns()}"
    document = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "logs:PutLogEvents",
        "Resource": "*"}]})
    put = logs.put_resource_policy(policyName=name, policyDocument=document)["resourcePolicy"]
    assert (put["policyName"], put["policyDocument"]) == (name, document) and put["lastUpdatedTime"] > 0
    assert name in [p["policyName"] for p in logs.describe_resource_policies()["resourcePolicies"]]
    logs.delete_resource_policy(policyName=name)
    with pytest.raises(ClientError) as exc:
        logs.delete_resource_policy(policyName=name)
    assert error_of(exc) == ("ResourceNotFoundException", f"Policy with name [{name}] does not exist")


def test_data_protection_policies_are_stored_per_log_group(logs, group):
    document = json.dumps({"Name": "data-protection", "Version": "2021-06-01", "Statement": []})
    assert logs.get_data_protection_policy(logGroupIdentifier=group).get("policyDocument") is None
    logs.put_data_protection_policy(logGroupIdentifier=group, policyDocument=document)
    got = logs.get_data_protection_policy(logGroupIdentifier=group)
    assert (got["logGroupIdentifier"], got["policyDocument"]) == (group, document)
    logs.delete_data_protection_policy(logGroupIdentifier=group)
    assert logs.get_data_protection_policy(logGroupIdentifier=group).get("policyDocument") is None
    with pytest.raises(ClientError) as exc:
        logs.put_data_protection_policy(logGroupIdentifier="/no/such/group", policyDocument=document)
    assert error_of(exc) == ("ResourceNotFoundException", "The specified log group does not exist.")


def test_a_log_groups_kms_key_must_exist_and_be_enabled(unkai, logs):
    kms = unkai.client("kms")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    name = f"/fid/kms/{time.time_ns()}"
    logs.create_log_group(logGroupName=name, kmsKeyId=key)
    assert logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]["kmsKeyId"] == key
    arn = f"arn:aws:logs:us-east-1:000000000000:log-group:{name}"
    missing = key.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    with pytest.raises(ClientError) as exc:
        logs.associate_kms_key(logGroupName=name, kmsKeyId=missing)
    assert error_of(exc) == ("AccessDeniedException", "The specified KMS key does not exist or is not allowed to be "
                             f"used with Arn '{arn}'")
    kms.disable_key(KeyId=key)
    with pytest.raises(ClientError) as exc:
        logs.create_log_group(logGroupName=f"{name}-2", kmsKeyId=key)
    assert error_of(exc)[0] == "AccessDeniedException"
    assert logs.describe_log_groups(logGroupNamePrefix=f"{name}-2")["logGroups"] == []


def test_a_protected_log_group_cannot_be_deleted_until_protection_is_off(logs):
    name = f"/fid/protected/{time.time_ns()}"
    logs.create_log_group(logGroupName=name, deletionProtectionEnabled=True)
    assert logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]["deletionProtectionEnabled"] is True
    with pytest.raises(ClientError) as exc:
        logs.delete_log_group(logGroupName=name)
    assert error_of(exc) == ("ValidationException", "Cannot delete log group with deletion protection enabled. "
                             "Disable deletion protection first.")
    logs.put_log_group_deletion_protection(logGroupIdentifier=name, deletionProtectionEnabled=False)
    assert logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]["deletionProtectionEnabled"] is False
    logs.delete_log_group(logGroupName=name)
    assert logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] == []
