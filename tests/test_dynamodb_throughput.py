"""Provisioned throughput: a PROVISIONED table (or global index) throttles once it has used
its capacity and the 300 seconds of unused capacity AWS keeps as burst, refills on unkai's
clock, and publishes AWS/DynamoDB's throttle metrics; PAY_PER_REQUEST tables never throttle.

boto3 retries ProvisionedThroughputExceededException (up to 10 attempts for DynamoDB,
sleeping in wall time while unkai's clock refills the bucket), so the throttled calls go
through a client with retries off: one request, one answer. The module has its own server,
since it moves the clock."""

from __future__ import annotations

import uuid

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from lambda_code import private_server

from tests.metrics_support import day_stats

unkai = private_server("dynamodb-throughput")

TABLE_MESSAGE = ("The level of configured provisioned throughput for the table was exceeded. Consider increasing "
                 "your provisioning level with the UpdateTable API.")


@pytest.fixture(scope="module")
def ddb(unkai):
    """A client that does not retry: a throttle comes back on the first answer."""
    return unkai.client("dynamodb", config=Config(retries={"total_max_attempts": 1}))


def blob(kb: int) -> dict:
    return {"S": "x" * (kb * 1024 - 40)}


def new_table(ddb, rcu: int | None, wcu: int | None, gsi_rcu: int | None = None) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    attrs = [{"AttributeName": "pk", "AttributeType": "S"}]
    extra: dict = ({"BillingMode": "PAY_PER_REQUEST"} if rcu is None else
                   {"ProvisionedThroughput": {"ReadCapacityUnits": rcu, "WriteCapacityUnits": wcu}})
    if gsi_rcu is not None:
        attrs.append({"AttributeName": "g", "AttributeType": "S"})
        extra["GlobalSecondaryIndexes"] = [{
            "IndexName": "by-g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "ALL"},
            "ProvisionedThroughput": {"ReadCapacityUnits": gsi_rcu, "WriteCapacityUnits": 1000}}]
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=attrs, **extra)
    return name


def throttled(call, *args, **kwargs) -> dict:
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return caught.value.response


def total(unkai, name: str, dims: dict[str, str]) -> float:
    """The Sum of an AWS/DynamoDB metric over the last day of unkai's clock (0 when none)."""
    return day_stats(unkai.client("cloudwatch"), "AWS/DynamoDB", name, dims, unkai.advance(0)["epoch"])["Sum"]


def test_a_provisioned_table_throttles_past_its_burst_and_refills_on_the_clock(unkai, ddb):
    table = new_table(ddb, rcu=1, wcu=1)
    arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    # 1 WCU a second keeps 300 s of burst: one 395 KB item (395 WCU) is admitted, and leaves
    # the table 95 units in debt (95 s of its clock; wall time between requests is far less)
    ddb.put_item(TableName=table, Item={"pk": {"S": "big"}, "v": blob(395)})
    refused = throttled(ddb.put_item, TableName=table, Item={"pk": {"S": "small"}})
    assert refused["Error"] == {"Code": "ProvisionedThroughputExceededException", "Message": TABLE_MESSAGE}
    assert refused["ThrottlingReasons"] == [{"reason": "TableWriteProvisionedThroughputExceeded", "resource": arn}]
    assert "Item" not in ddb.get_item(TableName=table, Key={"pk": {"S": "small"}})  # nothing was written
    throttled(ddb.update_item, TableName=table, Key={"pk": {"S": "small"}}, UpdateExpression="SET n = :one",
              ExpressionAttributeValues={":one": {"N": "1"}})

    unkai.advance(100)  # 100 s of 1 WCU pay the debt and earn 5 more
    ddb.put_item(TableName=table, Item={"pk": {"S": "small"}, "v": blob(20)})  # 20 WCU: 15 in debt again
    throttled(ddb.delete_item, TableName=table, Key={"pk": {"S": "small"}})

    # reads have their own bucket: a consistent read of the 395 KB item costs 99 RCU
    for _ in range(4):
        ddb.get_item(TableName=table, Key={"pk": {"S": "big"}}, ConsistentRead=True)
    refused = throttled(ddb.get_item, TableName=table, Key={"pk": {"S": "big"}})
    assert refused["ThrottlingReasons"][0]["reason"] == "TableReadProvisionedThroughputExceeded"
    throttled(ddb.scan, TableName=table)

    dims = {"TableName": table}
    assert total(unkai, "ThrottledRequests", {**dims, "Operation": "PutItem"}) == 1
    assert total(unkai, "ThrottledRequests", {**dims, "Operation": "UpdateItem"}) == 1
    assert total(unkai, "ThrottledRequests", {**dims, "Operation": "GetItem"}) == 1
    assert total(unkai, "WriteThrottleEvents", dims) == 3
    assert total(unkai, "ReadThrottleEvents", dims) == 2
    assert total(unkai, "ConsumedWriteCapacityUnits", dims) == 415  # throttled requests consume nothing

    # a table switched to on-demand stops throttling at once
    ddb.update_table(TableName=table, BillingMode="PAY_PER_REQUEST")
    ddb.delete_item(TableName=table, Key={"pk": {"S": "small"}})
    ddb.get_item(TableName=table, Key={"pk": {"S": "big"}}, ConsistentRead=True)


def test_on_demand_tables_never_throttle(unkai, ddb):
    table = new_table(ddb, rcu=None, wcu=None)
    for i in range(3):  # 1,185 WCU and 396 RCU at once: a table provisioned at 1 would have throttled
        ddb.put_item(TableName=table, Item={"pk": {"S": f"big{i}"}, "v": blob(395)})
    for _ in range(4):
        ddb.get_item(TableName=table, Key={"pk": {"S": "big0"}}, ConsistentRead=True)
    assert total(unkai, "ConsumedWriteCapacityUnits", {"TableName": table}) == 1185
    assert total(unkai, "WriteThrottleEvents", {"TableName": table}) == 0


def test_a_global_index_throttles_on_its_own_capacity(unkai, ddb):
    table = new_table(ddb, rcu=1000, wcu=1000, gsi_rcu=1)
    for pk in ("a", "b"):
        ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "g": {"S": "x"}, "v": blob(380)})
    query = dict(TableName=table, IndexName="by-g", KeyConditionExpression="g = :g",
                 ExpressionAttributeValues={":g": {"S": "x"}})
    for _ in range(4):  # 760 KB read eventually consistent: 95 RCU of the index's 300 (the 4th leaves it in debt)
        assert ddb.query(**query)["Count"] == 2
    refused = throttled(ddb.query, **query)
    assert refused["Error"]["Message"].startswith("The level of configured provisioned throughput for one or more "
                                                  "global secondary indexes of the table was exceeded.")
    assert refused["ThrottlingReasons"][0]["reason"] == "IndexReadProvisionedThroughputExceeded"
    assert refused["ThrottlingReasons"][0]["resource"].endswith(f":table/{table}/index/by-g")
    ddb.get_item(TableName=table, Key={"pk": {"S": "a"}})  # the table's own capacity is untouched
    assert total(unkai, "ReadThrottleEvents", {"TableName": table, "GlobalSecondaryIndexName": "by-g"}) == 1


def test_a_batch_hands_back_a_throttled_tables_items_and_is_refused_when_all_are(unkai, ddb):
    slow, free = new_table(ddb, rcu=1, wcu=1), new_table(ddb, rcu=None, wcu=None)
    ddb.put_item(TableName=slow, Item={"pk": {"S": "big"}, "v": blob(395)})  # the burst is spent, and more
    puts = [{"PutRequest": {"Item": {"pk": {"S": f"k{i}"}}}} for i in range(3)]
    out = ddb.batch_write_item(RequestItems={slow: puts, free: puts})
    assert out["UnprocessedItems"] == {slow: puts}
    assert ddb.scan(TableName=free)["Count"] == 3
    refused = throttled(ddb.batch_write_item, RequestItems={slow: puts})
    assert refused["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert total(unkai, "WriteThrottleEvents", {"TableName": slow}) == 6
    assert total(unkai, "ThrottledRequests", {"TableName": slow, "Operation": "BatchWriteItem"}) == 1
