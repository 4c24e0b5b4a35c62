"""DynamoDB Streams: records shaped as AWS shapes them, written in the same
transaction as their change (so none is lost, even right after CreateTable), the
rules on which writes produce one, iterators, retention, TTL deletes, and the
in-process reader event source mappings use."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from dynamodb_helpers import error, make_table
from unkai.testing import UnkaiServer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Its own server: these tests move the clock by a day."""
    with UnkaiServer(tmp_path_factory.mktemp("streams") / "state") as s:
        yield s


@pytest.fixture(scope="module")
def ddb(server):
    return server.client("dynamodb")


@pytest.fixture(scope="module")
def streams(server):
    return server.client("dynamodbstreams")


def stream_table(ddb, view="NEW_AND_OLD_IMAGES", **kw):
    name = make_table(ddb, StreamSpecification={"StreamEnabled": True, "StreamViewType": view}, **kw)
    return name, ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]


def read_all(streams, arn, kind="TRIM_HORIZON", **kw):
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType=kind, **kw)["ShardIterator"]
    records = []
    while it:
        page = streams.get_records(ShardIterator=it, Limit=100)
        records += page["Records"]
        if not page["Records"]:
            break
        it = page.get("NextShardIterator")
    return records


def test_records_right_after_create_table_with_exact_shape(ddb, streams):
    name, arn = stream_table(ddb, range_key=("sk", "N"))
    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "sk": {"N": "1"}, "message": {"S": "hello"}, "b": {"B": b"\x01"}})
    ddb.update_item(TableName=name, Key={"pk": {"S": "a"}, "sk": {"N": "1"}}, UpdateExpression="SET message = :m",
                    ExpressionAttributeValues={":m": {"S": "bye"}})
    ddb.delete_item(TableName=name, Key={"pk": {"S": "a"}, "sk": {"N": "1"}})
    records = read_all(streams, arn)
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    first = records[0]
    assert set(first) == {"eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb"}
    assert first["eventSource"] == "aws:dynamodb" and first["eventVersion"] == "1.1" and first["awsRegion"] == "us-east-1"
    dyn = first["dynamodb"]
    assert set(dyn) == {"ApproximateCreationDateTime", "Keys", "NewImage", "SequenceNumber", "SizeBytes", "StreamViewType"}
    assert dyn["Keys"] == {"pk": {"S": "a"}, "sk": {"N": "1"}} and dyn["NewImage"]["b"] == {"B": b"\x01"}
    assert dyn["StreamViewType"] == "NEW_AND_OLD_IMAGES" and dyn["SizeBytes"] > 0
    assert records[1]["dynamodb"]["OldImage"]["message"] == {"S": "hello"}
    assert records[1]["dynamodb"]["NewImage"]["message"] == {"S": "bye"}
    assert "NewImage" not in records[2]["dynamodb"] and records[2]["dynamodb"]["OldImage"]["message"] == {"S": "bye"}
    seqs = [r["dynamodb"]["SequenceNumber"] for r in records]
    assert all(s.isdigit() and len(s) >= 21 for s in seqs)
    assert [int(s) for s in seqs] == sorted(int(s) for s in seqs) and len(set(seqs)) == 3


@pytest.mark.parametrize("view,keys", [
    ("KEYS_ONLY", {"Keys"}), ("NEW_IMAGE", {"Keys", "NewImage"}), ("OLD_IMAGE", {"Keys", "OldImage"}),
    ("NEW_AND_OLD_IMAGES", {"Keys", "NewImage", "OldImage"}),
])
def test_stream_view_types(ddb, streams, view, keys):
    name, arn = stream_table(ddb, view=view)
    ddb.put_item(TableName=name, Item={"pk": {"S": "k"}, "v": {"N": "1"}})
    ddb.put_item(TableName=name, Item={"pk": {"S": "k"}, "v": {"N": "2"}})
    modify = read_all(streams, arn)[1]["dynamodb"]
    assert {k for k in modify if k in ("Keys", "NewImage", "OldImage")} == keys
    assert modify["StreamViewType"] == view


def test_which_writes_produce_records(ddb, streams):
    name, arn = stream_table(ddb)
    item = {"pk": {"S": "k"}, "v": {"N": "1"}, "s": {"SS": ["a", "b"]}}
    ddb.put_item(TableName=name, Item=item)
    ddb.put_item(TableName=name, Item={**item, "s": {"SS": ["b", "a"]}, "v": {"N": "1.0"}})  # identical: no record
    ddb.update_item(TableName=name, Key={"pk": {"S": "k"}}, UpdateExpression="SET v = :v",
                    ExpressionAttributeValues={":v": {"N": "1"}})  # no change: no record
    ddb.delete_item(TableName=name, Key={"pk": {"S": "absent"}})  # nothing deleted: no record
    with pytest.raises(ClientError):  # failed condition: no record
        ddb.put_item(TableName=name, Item={"pk": {"S": "k"}}, ConditionExpression="attribute_not_exists(pk)")
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": name, "Item": {"pk": {"S": "t1"}}}},
        {"Update": {"TableName": name, "Key": {"pk": {"S": "k"}}, "UpdateExpression": "SET v = :v",
                    "ExpressionAttributeValues": {":v": {"N": "2"}}}}])
    with ddb_batch(ddb, name) as add:
        add({"pk": {"S": "b1"}})
        add({"pk": {"S": "b2"}})
    assert [r["eventName"] for r in read_all(streams, arn)] == ["INSERT", "INSERT", "MODIFY", "INSERT", "INSERT"]


class ddb_batch:
    def __init__(self, ddb, name):
        self.ddb, self.name, self.items = ddb, name, []

    def __enter__(self):
        return self.items.append

    def __exit__(self, *exc):
        self.ddb.batch_write_item(RequestItems={self.name: [{"PutRequest": {"Item": i}} for i in self.items]})


def test_iterator_types_and_paging(ddb, streams):
    name, arn = stream_table(ddb, view="KEYS_ONLY")
    for i in range(5):
        ddb.put_item(TableName=name, Item={"pk": {"S": f"k{i}"}})
    records = read_all(streams, arn)
    seqs = [r["dynamodb"]["SequenceNumber"] for r in records]
    at = read_all(streams, arn, "AT_SEQUENCE_NUMBER", SequenceNumber=seqs[2])
    assert [r["dynamodb"]["SequenceNumber"] for r in at] == seqs[2:]
    after = read_all(streams, arn, "AFTER_SEQUENCE_NUMBER", SequenceNumber=seqs[2])
    assert [r["dynamodb"]["SequenceNumber"] for r in after] == seqs[3:]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    latest = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    assert streams.get_records(ShardIterator=latest)["Records"] == []
    ddb.put_item(TableName=name, Item={"pk": {"S": "new"}})
    page = streams.get_records(ShardIterator=latest, Limit=2)
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in page["Records"]] == ["new"] and page["NextShardIterator"]
    listed = streams.list_streams(TableName=name)["Streams"]
    assert listed == [{"StreamArn": arn, "TableName": name, "StreamLabel": arn.rsplit("/", 1)[1]}]
    with pytest.raises(ClientError) as exc:
        streams.describe_stream(StreamArn=arn + "x")
    assert error(exc)[0] == "ResourceNotFoundException"


def test_disable_and_reenable_gives_a_new_stream(ddb, streams):
    name, arn = stream_table(ddb)
    ddb.put_item(TableName=name, Item={"pk": {"S": "before"}})
    ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": False})
    ddb.put_item(TableName=name, Item={"pk": {"S": "while-off"}})
    described = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert described["StreamStatus"] == "DISABLED"
    assert "EndingSequenceNumber" in described["Shards"][0]["SequenceNumberRange"]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in read_all(streams, arn)] == ["before"]
    table = ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": True,
                                                                  "StreamViewType": "KEYS_ONLY"})["TableDescription"]
    new_arn = table["LatestStreamArn"]
    assert new_arn != arn
    ddb.put_item(TableName=name, Item={"pk": {"S": "after"}})
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in read_all(streams, new_arn)] == ["after"]
    with pytest.raises(ClientError) as exc:
        ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
    assert error(exc)[1] == f"Table already has an enabled stream: TableName: {name}"


def test_ttl_deletes_with_service_identity_then_retention(server, ddb, streams):
    name, arn = stream_table(ddb)
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"})
    assert ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}
    base = int(server.get("/_unkai/clock")["epoch"])
    ddb.put_item(TableName=name, Item={"pk": {"S": "soon"}, "expires": {"N": str(base + 100)}})
    ddb.put_item(TableName=name, Item={"pk": {"S": "later"}, "expires": {"N": str(base + 10000)}})
    ddb.put_item(TableName=name, Item={"pk": {"S": "never"}, "expires": {"S": "not a number"}})
    server.advance(200)
    assert "Item" not in ddb.get_item(TableName=name, Key={"pk": {"S": "soon"}})
    assert "Item" in ddb.get_item(TableName=name, Key={"pk": {"S": "later"}})
    removal = read_all(streams, arn)[-1]
    assert removal["eventName"] == "REMOVE" and removal["dynamodb"]["Keys"] == {"pk": {"S": "soon"}}
    assert removal["userIdentity"] == {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
    user_delete = ddb.delete_item(TableName=name, Key={"pk": {"S": "never"}}, ReturnValues="ALL_OLD")
    assert user_delete["Attributes"]
    assert "userIdentity" not in read_all(streams, arn)[-1]
    # 24-hour retention: a day later those records are gone, the stream remains
    server.advance(24 * 3600 + 10)
    remaining = read_all(streams, arn)
    assert [r["eventName"] for r in remaining] == ["REMOVE"]  # "later" expired just now, by TTL
    assert remaining[0]["userIdentity"]["Type"] == "Service"


def test_stream_reader_contract_in_process(tmp_path):
    """What event source mappings call: stream_records / latest_sequence / the signal."""
    from unkai.cloud import Cloud
    from unkai.config import Config
    from unkai.store import Store

    store = Store(tmp_path / "unkai.db")
    try:
        cloud = Cloud(Config(state_dir=tmp_path), store)
        cloud.call("dynamodb", "CreateTable", {
            "TableName": "contract", "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}})
        arn = cloud.call("dynamodb", "DescribeTable", {"TableName": "contract"})["Table"]["LatestStreamArn"]
        reader = cloud.service("dynamodbstreams")
        assert reader.latest_sequence(arn) is None and reader.stream_records(arn, None, 10) == []
        for i in range(3):
            cloud.call("dynamodb", "PutItem", {"TableName": "contract",
                                               "Item": {"pk": {"S": f"k{i}"}, "b": {"B": b"\x00"}}})
        records = reader.stream_records(arn, None, 10)
        assert [r["dynamodb"]["NewImage"]["pk"]["S"] for r in records] == ["k0", "k1", "k2"]
        assert records[0]["dynamodb"]["NewImage"]["b"] == {"B": "AA=="}  # JSON-ready
        assert isinstance(records[0]["dynamodb"]["ApproximateCreationDateTime"], int)
        assert reader.latest_sequence(arn) == records[-1]["dynamodb"]["SequenceNumber"]
        after_first = reader.stream_records(arn, records[0]["dynamodb"]["SequenceNumber"], 1)
        assert after_first == [records[1]]
    finally:
        store.close()
