"""DynamoDB tables: the lifecycle, descriptions, validation, tags, TTL settings, GSI
backfill, and the state surviving kill -9."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from dynamodb_helpers import error, make_table, table_name
from unkai.testing import UnkaiServer


@pytest.fixture(scope="module")
def ddb(unkai):
    return unkai.client("dynamodb")


def test_create_describe_list_delete(ddb):
    name = table_name("life")
    created = ddb.create_table(
        TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 3},
        Tags=[{"Key": "team", "Value": "qa"}])["TableDescription"]
    assert created["TableStatus"] == "ACTIVE" and created["TableName"] == name
    assert created["TableArn"] == f"arn:aws:dynamodb:us-east-1:000000000000:table/{name}"
    assert created["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1})
    ddb.put_item(TableName=name, Item={"id": {"N": "1"}, "x": {"S": "abc"}})
    table = ddb.describe_table(TableName=name)["Table"]
    assert table["ItemCount"] == 1 and table["TableSizeBytes"] == len("id") + 2 + len("x") + 3
    assert name in ddb.list_tables()["TableNames"]
    arn = table["TableArn"]
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "qa"}]
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "dev"}])
    ddb.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "dev"}]
    with pytest.raises(ClientError) as exc:
        ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
                         BillingMode="PAY_PER_REQUEST")
    assert error(exc) == ("ResourceInUseException", f"Table already exists: {name}")
    deleted = ddb.delete_table(TableName=name)["TableDescription"]
    assert deleted["TableStatus"] == "DELETING"
    ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1})
    with pytest.raises(ddb.exceptions.ResourceNotFoundException):
        ddb.describe_table(TableName=name)


def test_list_tables_pages(ddb):
    prefix = table_name("page")
    names = [f"{prefix}-{i}" for i in range(5)]
    for n in names:
        make_table(ddb, name=n)
    seen, start = [], {"ExclusiveStartTableName": prefix}
    while True:
        page = ddb.list_tables(Limit=2, **start)
        seen += [n for n in page["TableNames"] if n.startswith(prefix)]
        if "LastEvaluatedTableName" not in page or not page["LastEvaluatedTableName"].startswith(prefix):
            break
        start = {"ExclusiveStartTableName": page["LastEvaluatedTableName"]}
    assert seen == names


@pytest.mark.parametrize("kwargs,message", [
    ({"KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}],
      "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": "S"}]},
     "No provisioned throughput specified for the table"),
    ({"KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST",
      "AttributeDefinitions": [{"AttributeName": "b", "AttributeType": "S"}]},
     "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. "
     "Keys: [a], AttributeDefinitions: [b]"),
    ({"KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST",
      "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": "S"},
                               {"AttributeName": "b", "AttributeType": "S"}]},
     "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of "
     "attributes defined in AttributeDefinitions"),
    ({"KeySchema": [{"AttributeName": "a", "KeyType": "RANGE"}], "BillingMode": "PAY_PER_REQUEST",
      "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": "S"}]},
     "Invalid KeySchema: The first KeySchemaElement is not a HASH key type"),
    ({"KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST",
      "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
      "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": "S"}]},
     "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified "
     "when BillingMode is PAY_PER_REQUEST"),
])
def test_create_table_validation(ddb, kwargs, message):
    with pytest.raises(ClientError) as exc:
        ddb.create_table(TableName=table_name("bad"), **kwargs)
    assert error(exc) == ("ValidationException", message)


def test_update_table_billing_and_limits(ddb):
    name = make_table(ddb)
    table = ddb.update_table(TableName=name, BillingMode="PROVISIONED",
                             ProvisionedThroughput={"ReadCapacityUnits": 2, "WriteCapacityUnits": 2})["TableDescription"]
    assert table["ProvisionedThroughput"]["WriteCapacityUnits"] == 2 and "BillingModeSummary" not in table
    with pytest.raises(ClientError) as exc:
        ddb.update_table(TableName=name)
    assert error(exc)[0] == "ValidationException"
    assert ddb.describe_limits()["TableMaxReadCapacityUnits"] == 40000
    ddb.update_table(TableName=name, DeletionProtectionEnabled=True)
    with pytest.raises(ClientError) as exc:
        ddb.delete_table(TableName=name)
    assert "protected against deletion" in error(exc)[1]


def test_adding_a_gsi_to_a_populated_table_backfills(unkai, ddb):
    name = make_table(ddb, range_key=("sk", "N"))
    res = unkai.resource("dynamodb").Table(name)
    with res.batch_writer() as writer:
        for i in range(4500):  # more than one backfill chunk
            writer.put_item(Item={"pk": f"p{i % 50}", "sk": i, "color": ["red", "green", "blue"][i % 3]})
    table = ddb.update_table(
        TableName=name, AttributeDefinitions=[{"AttributeName": "color", "AttributeType": "S"}],
        GlobalSecondaryIndexUpdates=[{"Create": {"IndexName": "by-color", "Projection": {"ProjectionType": "KEYS_ONLY"},
                                                 "KeySchema": [{"AttributeName": "color", "KeyType": "HASH"},
                                                               {"AttributeName": "sk", "KeyType": "RANGE"}]}}]
    )["TableDescription"]
    gsi = table["GlobalSecondaryIndexes"][0]
    assert gsi["IndexStatus"] == "CREATING" and gsi["Backfilling"] is True
    res.put_item(Item={"pk": "late", "sk": 99999, "color": "red"})  # written during the backfill
    unkai.drain()
    gsi = ddb.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"][0]
    assert gsi["IndexStatus"] == "ACTIVE" and gsi["ItemCount"] == 4501
    from boto3.dynamodb.conditions import Key
    count, kwargs = 0, {}
    while True:
        page = res.query(IndexName="by-color", KeyConditionExpression=Key("color").eq("red"), Select="COUNT", **kwargs)
        count += page["Count"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    assert count == 1501
    ddb.update_table(TableName=name, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by-color"}}])
    assert "GlobalSecondaryIndexes" not in ddb.describe_table(TableName=name)["Table"]


def test_state_survives_kill_9(tmp_path):
    server = UnkaiServer(tmp_path / "state").start()
    try:
        ddb = server.client("dynamodb")
        name = make_table(ddb, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
        for i in range(50):
            ddb.put_item(TableName=name, Item={"pk": {"S": f"k{i}"}, "n": {"N": str(i)}})
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
        server.kill()
        server.start()
        ddb = server.client("dynamodb")
        assert ddb.scan(TableName=name, Select="COUNT")["Count"] == 50
        assert ddb.get_item(TableName=name, Key={"pk": {"S": "k49"}})["Item"]["n"] == {"N": "49"}
        arn = ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
        streams = server.client("dynamodbstreams")
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = streams.get_records(ShardIterator=it)["Records"]
        assert len(records) == 50
        ddb.put_item(TableName=name, Item={"pk": {"S": "after"}})
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                        SequenceNumber=records[-1]["dynamodb"]["SequenceNumber"])["ShardIterator"]
        after = streams.get_records(ShardIterator=it)["Records"]
        assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in after] == ["after"]
        assert int(after[0]["dynamodb"]["SequenceNumber"]) > int(records[-1]["dynamodb"]["SequenceNumber"])
        assert ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"
    finally:
        server.stop()
