"""DynamoDB answers as AWS does, in the details clients branch on (issue 23, item 3: DynamoDB).

Expected codes and messages are AWS's, as botocore's model names them and as public suites
verified against AWS record them (the hash key message really has no space in "of2048")."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def ddb(unkai):
    return unkai.client("dynamodb")


def error_of(exc: pytest.ExceptionInfo) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def make_table(ddb, range_key: bool = False, **extra) -> str:
    name = f"fid-{time.time_ns()}"
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}] + ([{"AttributeName": "sk", "KeyType": "RANGE"}]
                                                           if range_key else [])
    defs = [{"AttributeName": k["AttributeName"], "AttributeType": "S"} for k in keys]
    defs += extra.pop("extra_defs", [])
    ddb.create_table(TableName=name, KeySchema=keys, AttributeDefinitions=defs, BillingMode="PAY_PER_REQUEST",
                     **extra)
    return name


def test_select_outside_the_enum_is_refused_with_the_constraint_message(ddb):
    name = make_table(ddb)
    expected = ("ValidationException", "1 validation error detected: Value 'NOPE' at 'select' failed to satisfy "
                "constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, "
                "ALL_PROJECTED_ATTRIBUTES]")
    with pytest.raises(ClientError) as exc:
        ddb.scan(TableName=name, Select="NOPE")
    assert error_of(exc) == expected
    with pytest.raises(ClientError) as exc:
        ddb.query(TableName=name, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "a"}},
                  Select="NOPE")
    assert error_of(exc) == expected


def test_key_values_past_aws_size_limits_are_refused(ddb):
    name = make_table(ddb, range_key=True)
    ddb.put_item(TableName=name, Item={"pk": {"S": "x" * 2048}, "sk": {"S": "y" * 1024}})  # at the limits
    with pytest.raises(ClientError) as exc:
        ddb.put_item(TableName=name, Item={"pk": {"S": "x" * 2049}, "sk": {"S": "a"}})
    assert error_of(exc) == ("ValidationException", "One or more parameter values were invalid: Size of hashkey has "
                             "exceeded the maximum size limit of2048 bytes")
    with pytest.raises(ClientError) as exc:
        ddb.get_item(TableName=name, Key={"pk": {"S": "a"}, "sk": {"S": "é" * 513}})  # 1,026 bytes in UTF-8
    assert error_of(exc) == ("ValidationException", "One or more parameter values were invalid: Aggregated size of "
                             "all range keys has exceeded the size limit of 1024 bytes")


def test_an_empty_key_value_in_a_query_is_refused(ddb):
    name = make_table(ddb)
    with pytest.raises(ClientError) as exc:
        ddb.query(TableName=name, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": ""}})
    assert error_of(exc) == ("ValidationException", "One or more parameter values are not valid. The AttributeValue "
                             "for a key attribute cannot contain an empty string value. Key: pk")


def test_table_descriptions_carry_warm_throughput_and_deletion_protection(ddb):
    name = make_table(ddb, extra_defs=[{"AttributeName": "g", "AttributeType": "S"}],
                      GlobalSecondaryIndexes=[{"IndexName": "by-g", "KeySchema": [{"AttributeName": "g",
                                                                                    "KeyType": "HASH"}],
                                               "Projection": {"ProjectionType": "ALL"}}])
    table = ddb.describe_table(TableName=name)["Table"]
    warm = {"ReadUnitsPerSecond": 12000, "WriteUnitsPerSecond": 4000, "Status": "ACTIVE"}
    assert table["WarmThroughput"] == warm and table["GlobalSecondaryIndexes"][0]["WarmThroughput"] == warm
    assert table["DeletionProtectionEnabled"] is False
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_backups_are_created_described_listed_restored_and_deleted(ddb):
    name = make_table(ddb)
    ddb.put_item(TableName=name, Item={"pk": {"S": "kept"}})
    details = ddb.create_backup(TableName=name, BackupName="nightly")["BackupDetails"]
    assert (details["BackupName"], details["BackupType"], details["BackupStatus"]) == ("nightly", "USER", "CREATING")
    assert details["BackupArn"].startswith(f"arn:aws:dynamodb:us-east-1:000000000000:table/{name}/backup/")
    ddb.put_item(TableName=name, Item={"pk": {"S": "after-the-backup"}})
    described = ddb.describe_backup(BackupArn=details["BackupArn"])["BackupDescription"]
    assert described["BackupDetails"]["BackupStatus"] == "AVAILABLE"
    assert (described["SourceTableDetails"]["TableName"], described["SourceTableDetails"]["ItemCount"],
            described["SourceTableDetails"]["BillingMode"]) == (name, 1, "PAY_PER_REQUEST")
    listed = ddb.list_backups(TableName=name)["BackupSummaries"]
    assert [b["BackupArn"] for b in listed] == [details["BackupArn"]]
    restored = ddb.restore_table_from_backup(TargetTableName=f"{name}-r", BackupArn=details["BackupArn"])
    summary = restored["TableDescription"]["RestoreSummary"]
    assert (summary["SourceBackupArn"], summary["RestoreInProgress"]) == (details["BackupArn"], True)
    ddb.get_waiter("table_exists").wait(TableName=f"{name}-r", WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    assert ddb.scan(TableName=f"{name}-r")["Items"] == [{"pk": {"S": "kept"}}]
    with pytest.raises(ClientError) as exc:
        ddb.restore_table_from_backup(TargetTableName=f"{name}-r", BackupArn=details["BackupArn"])
    assert error_of(exc) == ("TableAlreadyExistsException", f"Table already exists: {name}-r")
    assert ddb.delete_backup(BackupArn=details["BackupArn"])["BackupDescription"]["BackupDetails"][
        "BackupStatus"] == "DELETED"
    with pytest.raises(ClientError) as exc:
        ddb.describe_backup(BackupArn=details["BackupArn"])
    assert error_of(exc) == ("BackupNotFoundException", f"Backup not found: {details['BackupArn']}")
    with pytest.raises(ClientError) as exc:
        ddb.create_backup(TableName="no-such-table", BackupName="x-backup")
    assert error_of(exc) == ("TableNotFoundException", "Table not found: no-such-table")


def test_restore_to_a_point_in_time_undoes_the_writes_made_after_it_on_unkais_clock(unkai, ddb):
    name = make_table(ddb)
    with pytest.raises(ClientError) as exc:
        ddb.restore_table_to_point_in_time(SourceTableName=name, TargetTableName=f"{name}-p",
                                           UseLatestRestorableTime=True)
    assert error_of(exc) == ("PointInTimeRecoveryUnavailableException",
                             f"Point in time recovery is not enabled for table '{name}'")
    ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
        "PointInTimeRecoveryEnabled": True})
    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "v": {"N": "1"}})
    ddb.put_item(TableName=name, Item={"pk": {"S": "b"}, "v": {"N": "2"}})
    unkai.advance(1)
    moment = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"][
        "PointInTimeRecoveryDescription"]["LatestRestorableDateTime"]
    unkai.advance(1)
    ddb.delete_item(TableName=name, Key={"pk": {"S": "a"}})
    ddb.put_item(TableName=name, Item={"pk": {"S": "b"}, "v": {"N": "20"}})
    ddb.put_item(TableName=name, Item={"pk": {"S": "c"}, "v": {"N": "3"}})
    restored = ddb.restore_table_to_point_in_time(SourceTableName=name, TargetTableName=f"{name}-p",
                                                  RestoreDateTime=moment)["TableDescription"]
    assert restored["RestoreSummary"]["SourceTableArn"].endswith(f":table/{name}")
    as_of = {i["pk"]["S"]: i["v"]["N"] for i in ddb.scan(TableName=f"{name}-p")["Items"]}
    assert as_of == {"a": "1", "b": "2"}
    ddb.restore_table_to_point_in_time(SourceTableName=name, TargetTableName=f"{name}-l",
                                       UseLatestRestorableTime=True)
    assert {i["pk"]["S"]: i["v"]["N"] for i in ddb.scan(TableName=f"{name}-l")["Items"]} == {"b": "20", "c": "3"}
    with pytest.raises(ClientError) as exc:
        ddb.restore_table_to_point_in_time(SourceTableName="no-such-table", TargetTableName="x-target",
                                           UseLatestRestorableTime=True)
    assert error_of(exc) == ("SourceTableNotFoundException", "Source table not found: no-such-table")


def test_batch_get_item_answers_at_most_16_mb_and_returns_the_rest_unprocessed(ddb):
    name = make_table(ddb)
    blob = "x" * 390_000
    keys = [{"pk": {"S": f"item-{n:02d}"}} for n in range(45)]
    for key in keys:
        ddb.put_item(TableName=name, Item={**key, "body": {"S": blob}})
    got = ddb.batch_get_item(RequestItems={name: {"Keys": keys, "ProjectionExpression": "pk, body"}})
    returned = got["Responses"][name]
    left = got["UnprocessedKeys"][name]
    assert 0 < len(returned) < 45 and len(returned) + len(left["Keys"]) == 45
    assert sum(len(i["body"]["S"]) for i in returned) <= 16 * 1024 * 1024
    assert left["ProjectionExpression"] == "pk, body"  # the request's other members come back with the keys
    rest = ddb.batch_get_item(RequestItems=got["UnprocessedKeys"])
    assert len(rest["Responses"][name]) == len(left["Keys"]) and rest["UnprocessedKeys"] == {}


def test_a_stream_iterator_at_the_shards_starting_sequence_number_reads_from_the_start(unkai, ddb):
    streams = unkai.client("dynamodbstreams")
    name = make_table(ddb, StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
    arn = ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    start = shard["SequenceNumberRange"]["StartingSequenceNumber"]
    early = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                       ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=start)["ShardIterator"]
    ddb.put_item(TableName=name, Item={"pk": {"S": "one"}})
    ddb.put_item(TableName=name, Item={"pk": {"S": "two"}})
    for kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType=kind,
                                              SequenceNumber=start)["ShardIterator"]
        records = streams.get_records(ShardIterator=iterator)["Records"]
        assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in records] == ["one", "two"]
    assert len(streams.get_records(ShardIterator=early)["Records"]) == 2


def test_resource_policies_are_stored_with_revision_ids(ddb):
    import json as _json

    name = make_table(ddb)
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    with pytest.raises(ClientError) as exc:
        ddb.get_resource_policy(ResourceArn=arn)
    assert error_of(exc) == ("PolicyNotFoundException", f"Resource-based policy not found for the provided "
                             f"ResourceArn: {arn}")
    policy = _json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "dynamodb:GetItem",
        "Resource": arn}]})
    revision = ddb.put_resource_policy(ResourceArn=arn, Policy=policy)["RevisionId"]
    got = ddb.get_resource_policy(ResourceArn=arn)
    assert (got["Policy"], got["RevisionId"]) == (policy, revision)
    ddb.delete_resource_policy(ResourceArn=arn)
    with pytest.raises(ClientError) as exc:
        ddb.delete_resource_policy(ResourceArn=arn)
    assert error_of(exc)[0] == "PolicyNotFoundException"
