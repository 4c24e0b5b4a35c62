"""An oracle: the same scripts run against unkai and against moto's server, and the
responses' shapes (keys, value types, error codes) compared, for the behaviour where
moto follows AWS. Values that legitimately differ (ids, timestamps, ARNs' account)
are not compared; shapes are."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

MOTO = Path(sys.executable).with_name("moto_server")
pytestmark = pytest.mark.skipif(not MOTO.exists() and not shutil.which("moto_server"),
                                reason="moto[server] is not installed")


@pytest.fixture(scope="module")
def moto():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(MOTO if MOTO.exists() else shutil.which("moto_server")), "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).read()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.skip("moto_server did not start")
            time.sleep(0.1)
    yield endpoint
    proc.terminate()
    proc.wait(10)


def client(endpoint: str, service: str = "dynamodb") -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=Config(retries={"max_attempts": 1}))


def shape(value: Any) -> Any:
    """The structure of a response: keys and value types, list elements merged."""
    if isinstance(value, dict):
        # moto adds these to answers that did not ask for them (ReturnConsumedCapacity,
        # ReturnItemCollectionMetrics); AWS does not
        return {k: shape(v) for k, v in value.items()
                if k not in ("ResponseMetadata", "ConsumedCapacity", "ItemCollectionMetrics")}
    if isinstance(value, list):
        shapes = [shape(v) for v in value]
        return [shapes[0]] if shapes and all(s == shapes[0] for s in shapes) else shapes
    return type(value).__name__


def run(endpoint: str, script: Callable[[Any], list]) -> list:
    out = []
    for step in script(client(endpoint)):
        try:
            out.append(("ok", shape(step())))
        except ClientError as exc:
            out.append(("error", exc.response["Error"]["Code"]))
    return out


KEYS = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
DEFS = [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}]


def items_script(ddb: Any) -> list:
    t = "oracle-items"
    key = {"pk": {"S": "a"}, "sk": {"N": "1"}}
    return [
        lambda: ddb.create_table(TableName=t, KeySchema=KEYS, AttributeDefinitions=DEFS,
                                 BillingMode="PAY_PER_REQUEST") and None,
        lambda: ddb.put_item(TableName=t, Item={**key, "n": {"N": "1"}, "s": {"SS": ["x"]}, "m": {"M": {"k": {"S": "v"}}}}),
        lambda: ddb.put_item(TableName=t, Item={**key, "n": {"N": "2"}}, ReturnValues="ALL_OLD"),
        lambda: ddb.get_item(TableName=t, Key=key),
        lambda: ddb.get_item(TableName=t, Key={"pk": {"S": "none"}, "sk": {"N": "1"}}),
        lambda: ddb.get_item(TableName=t, Key=key, ProjectionExpression="n"),
        lambda: ddb.update_item(TableName=t, Key=key, UpdateExpression="SET n = n + :one",
                                ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="ALL_NEW"),
        lambda: ddb.update_item(TableName=t, Key=key, UpdateExpression="SET n = n + :one",
                                ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="UPDATED_OLD"),
        lambda: ddb.update_item(TableName=t, Key=key, UpdateExpression="SET x = :v",
                                ConditionExpression="attribute_not_exists(pk)",
                                ExpressionAttributeValues={":v": {"S": "v"}}),
        lambda: ddb.put_item(TableName=t, Item={"pk": {"S": "a"}}),
        lambda: ddb.get_item(TableName="oracle-missing", Key=key),
        lambda: ddb.batch_write_item(RequestItems={t: [{"PutRequest": {"Item": {"pk": {"S": "b"}, "sk": {"N": str(i)}}}}
                                                       for i in range(5)]}),
        lambda: ddb.batch_get_item(RequestItems={t: {"Keys": [{"pk": {"S": "b"}, "sk": {"N": "1"}}]}}),
        lambda: ddb.delete_item(TableName=t, Key=key, ReturnValues="ALL_OLD"),
        lambda: ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": t, "Item": {"pk": {"S": "c"}, "sk": {"N": "1"}}}},
            {"ConditionCheck": {"TableName": t, "Key": {"pk": {"S": "b"}, "sk": {"N": "1"}},
                                "ConditionExpression": "attribute_exists(pk)"}}]),
        lambda: ddb.transact_get_items(TransactItems=[{"Get": {"TableName": t, "Key": {"pk": {"S": "c"},
                                                                                       "sk": {"N": "1"}}}}]),
    ]


def query_script(ddb: Any) -> list:
    t = "oracle-query"
    steps = [lambda: ddb.create_table(TableName=t, KeySchema=KEYS, AttributeDefinitions=DEFS,
                                      BillingMode="PAY_PER_REQUEST") and None]
    steps += [lambda i=i: ddb.put_item(TableName=t, Item={"pk": {"S": "q"}, "sk": {"N": str(i)}, "v": {"N": str(i % 3)}})
              for i in range(12)]
    values = {":p": {"S": "q"}}
    return steps + [
        lambda: ddb.query(TableName=t, KeyConditionExpression="pk = :p", ExpressionAttributeValues=values),
        lambda: ddb.query(TableName=t, KeyConditionExpression="pk = :p", ExpressionAttributeValues=values, Limit=5),
        lambda: ddb.query(TableName=t, KeyConditionExpression="pk = :p", ExpressionAttributeValues=values,
                          Select="COUNT"),
        lambda: ddb.query(TableName=t, KeyConditionExpression="pk = :p AND sk > :s", FilterExpression="v = :v",
                          ExpressionAttributeValues={**values, ":s": {"N": "3"}, ":v": {"N": "1"}}),
        lambda: ddb.query(TableName=t, KeyConditionExpression="pk = :p", ExpressionAttributeValues=values,
                          ProjectionExpression="sk", ScanIndexForward=False),
        lambda: ddb.scan(TableName=t),
        lambda: ddb.scan(TableName=t, Limit=4),
        lambda: ddb.scan(TableName=t, FilterExpression="v = :v", ExpressionAttributeValues={":v": {"N": "2"}}),
        lambda: ddb.query(TableName=t, KeyConditionExpression="sk = :s", ExpressionAttributeValues={":s": {"N": "1"}}),
    ]


def tables_script(ddb: Any) -> list:
    t = "oracle-tables"
    return [
        lambda: ddb.create_table(TableName=t, KeySchema=KEYS, AttributeDefinitions=DEFS, BillingMode="PAY_PER_REQUEST",
                                 StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}),
        lambda: ddb.create_table(TableName=t, KeySchema=KEYS, AttributeDefinitions=DEFS, BillingMode="PAY_PER_REQUEST"),
        lambda: ddb.describe_time_to_live(TableName=t),
        lambda: ddb.update_time_to_live(TableName=t, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}),
        lambda: ddb.describe_time_to_live(TableName=t),
        lambda: ddb.list_tags_of_resource(ResourceArn=ddb.describe_table(TableName=t)["Table"]["TableArn"]),
        lambda: ddb.describe_table(TableName="oracle-none"),
        lambda: ddb.delete_table(TableName="oracle-none"),
    ]


COMPARED_TABLE_KEYS = ("AttributeDefinitions", "TableName", "KeySchema", "TableStatus", "CreationDateTime",
                       "ItemCount", "TableSizeBytes", "TableArn", "StreamSpecification", "LatestStreamArn",
                       "LatestStreamLabel")


def _tables_view(results: list) -> list:
    """For table descriptions, the members both must have (moto adds its own extras)."""
    out = []
    for kind, value in results:
        if kind == "ok" and isinstance(value, dict) and "TableDescription" in value:
            value = {"TableDescription": {k: v for k, v in value["TableDescription"].items() if k in COMPARED_TABLE_KEYS}}
        out.append((kind, value))
    return out


@pytest.mark.parametrize("script", [items_script, query_script])
def test_item_and_query_responses_match_moto(unkai, moto, script):
    ours = run(unkai.endpoint, script)
    theirs = run(moto, script)
    assert ours == theirs


def test_table_responses_match_moto(unkai, moto):
    assert _tables_view(run(unkai.endpoint, tables_script)) == _tables_view(run(moto, tables_script))


def test_stream_record_shapes_match_moto(unkai, moto):
    def script(endpoint: str) -> list:
        ddb, streams = client(endpoint), client(endpoint, "dynamodbstreams")
        t = "oracle-stream"
        ddb.create_table(TableName=t, KeySchema=KEYS, AttributeDefinitions=DEFS, BillingMode="PAY_PER_REQUEST",
                         StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        arn = ddb.describe_table(TableName=t)["Table"]["LatestStreamArn"]
        ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "sk": {"N": "1"}, "v": {"S": "x"}})
        ddb.put_item(TableName=t, Item={"pk": {"S": "a"}, "sk": {"N": "1"}, "v": {"S": "y"}})
        ddb.delete_item(TableName=t, Key={"pk": {"S": "a"}, "sk": {"N": "1"}})
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = streams.get_records(ShardIterator=it)["Records"]
        return [(r["eventName"], sorted(r), sorted(r["dynamodb"])) for r in records]

    ours, theirs = script(unkai.endpoint), script(moto)
    assert [r[0] for r in ours] == [r[0] for r in theirs] == ["INSERT", "MODIFY", "REMOVE"]
    for (_, top, dyn), (_, top_m, dyn_m) in zip(ours, theirs):
        assert set(top) <= set(top_m) | {"eventVersion"}
        assert set(dyn) - {"ApproximateCreationDateTime"} <= set(dyn_m)
