"""Kinesis Data Streams through boto3 (JSON) and raw CBOR: streams, shards, records,
iterators, resharding, throttling, consumers and SubscribeToShard's event stream."""

from __future__ import annotations

import hashlib
import uuid

import botocore.exceptions
import pytest
from lambda_code import private_server

unkai = private_server("kinesis")


@pytest.fixture(scope="module")
def kin(unkai):
    return unkai.client("kinesis")


def new_stream(kin, shards: int = 1, **kwargs) -> str:
    name = f"s-{uuid.uuid4().hex[:8]}"
    kin.create_stream(StreamName=name, ShardCount=shards, **kwargs)
    return name


def code_of(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def read_all(kin, name: str, shard: str, kind: str = "TRIM_HORIZON", **kwargs) -> list[dict]:
    it = kin.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType=kind, **kwargs)["ShardIterator"]
    return kin.get_records(ShardIterator=it)["Records"]


def test_stream_lifecycle_and_description(kin):
    name = new_stream(kin, 3, Tags={"team": "a"})
    desc = kin.describe_stream(StreamName=name)["StreamDescription"]
    assert desc["StreamStatus"] == "ACTIVE" and desc["RetentionPeriodHours"] == 24
    assert [s["ShardId"] for s in desc["Shards"]] == ["shardId-000000000000", "shardId-000000000001",
                                                      "shardId-000000000002"]
    assert desc["Shards"][0]["HashKeyRange"]["StartingHashKey"] == "0"
    assert desc["Shards"][-1]["HashKeyRange"]["EndingHashKey"] == str(2 ** 128 - 1)
    kin.get_waiter("stream_exists").wait(StreamName=name)
    summary = kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 3 and summary["StreamARN"].endswith(f":stream/{name}")
    assert name in kin.list_streams()["StreamNames"]
    assert kin.list_tags_for_stream(StreamName=name)["Tags"] == [{"Key": "team", "Value": "a"}]
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        kin.create_stream(StreamName=name, ShardCount=1)
    assert code_of(exc) == "ResourceInUseException"
    kin.delete_stream(StreamName=name)
    with pytest.raises(kin.exceptions.ResourceNotFoundException) as exc:
        kin.describe_stream(StreamName=name)
    assert exc.value.response["Error"]["Message"] == f"Stream {name} under account 000000000000 not found."


def test_on_demand_streams_have_four_shards_and_list_shards_pages(kin):
    name = f"s-{uuid.uuid4().hex[:8]}"
    kin.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    first = kin.list_shards(StreamName=name, MaxResults=3)
    assert len(first["Shards"]) == 3
    rest = kin.list_shards(NextToken=first["NextToken"])
    assert [s["ShardId"] for s in rest["Shards"]] == ["shardId-000000000003"]
    with pytest.raises(kin.exceptions.InvalidArgumentException):
        kin.list_shards(StreamName=name, NextToken=first["NextToken"])


def test_records_are_hashed_to_shards_and_read_in_order(kin):
    name = new_stream(kin, 2)
    shards = kin.list_shards(StreamName=name)["Shards"]
    sent = {}
    for i in range(20):
        key = f"key-{i}"
        out = kin.put_record(StreamName=name, Data=f"r{i}".encode(), PartitionKey=key)
        hashed = int(hashlib.md5(key.encode()).hexdigest(), 16)
        owner = next(s for s in shards if int(s["HashKeyRange"]["StartingHashKey"]) <= hashed
                     <= int(s["HashKeyRange"]["EndingHashKey"]))
        assert out["ShardId"] == owner["ShardId"]
        sent.setdefault(out["ShardId"], []).append((out["SequenceNumber"], f"r{i}".encode()))
    for shard, expected in sent.items():
        got = read_all(kin, name, shard)
        assert [(r["SequenceNumber"], r["Data"]) for r in got] == expected
        assert all(len(r["SequenceNumber"]) == 56 for r in got)
    explicit = kin.put_record(StreamName=name, Data=b"x", PartitionKey="k", ExplicitHashKey=str(2 ** 128 - 1))
    assert explicit["ShardId"] == "shardId-000000000001"


def test_iterator_types_and_get_records_paging(kin, unkai):
    name = new_stream(kin)
    seqs = [r["SequenceNumber"] for r in kin.put_records(StreamName=name, Records=[
        {"Data": str(i).encode(), "PartitionKey": "p"} for i in range(5)])["Records"]]
    shard = "shardId-000000000000"
    assert [r["Data"] for r in read_all(kin, name, shard, "AT_SEQUENCE_NUMBER",
                                        StartingSequenceNumber=seqs[2])] == [b"2", b"3", b"4"]
    assert [r["Data"] for r in read_all(kin, name, shard, "AFTER_SEQUENCE_NUMBER",
                                        StartingSequenceNumber=seqs[2])] == [b"3", b"4"]
    latest = kin.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    assert kin.get_records(ShardIterator=latest)["Records"] == []
    kin.put_record(StreamName=name, Data=b"5", PartitionKey="p")
    got = kin.get_records(ShardIterator=latest)
    assert [r["Data"] for r in got["Records"]] == [b"5"] and got["MillisBehindLatest"] == 0
    it = kin.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    page = kin.get_records(ShardIterator=it, Limit=2)
    assert [r["Data"] for r in page["Records"]] == [b"0", b"1"]
    assert [r["Data"] for r in kin.get_records(ShardIterator=page["NextShardIterator"])["Records"]] == \
        [b"2", b"3", b"4", b"5"]
    stamp = got["Records"][0]["ApproximateArrivalTimestamp"]
    assert [r["Data"] for r in read_all(kin, name, shard, "AT_TIMESTAMP", Timestamp=stamp)][-1] == b"5"
    unkai.advance(301)
    with pytest.raises(kin.exceptions.ExpiredIteratorException):
        kin.get_records(ShardIterator=it)
    with pytest.raises(kin.exceptions.InvalidArgumentException):
        kin.get_records(ShardIterator="bm90IGFuIGl0ZXJhdG9y")


def test_records_expire_after_the_retention_period(kin, unkai):
    name = new_stream(kin)
    kin.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=48)
    kin.put_record(StreamName=name, Data=b"old", PartitionKey="p")
    unkai.advance(25 * 3600)
    assert [r["Data"] for r in read_all(kin, name, "shardId-000000000000")] == [b"old"]
    unkai.advance(24 * 3600)
    assert read_all(kin, name, "shardId-000000000000") == []
    with pytest.raises(kin.exceptions.InvalidArgumentException) as exc:
        kin.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=12)
    assert "Minimum allowed retention period is 24 hours" in exc.value.response["Error"]["Message"]


def test_bad_input_gets_kinesis_errors(kin):
    name = new_stream(kin)
    with pytest.raises(kin.exceptions.ResourceNotFoundException):
        kin.put_record(StreamName="nope", Data=b"x", PartitionKey="p")
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        kin.put_record(StreamName=name, Data=b"x" * (1024 * 1024 + 1), PartitionKey="p")
    assert code_of(exc) == "ValidationException"
    with pytest.raises(kin.exceptions.InvalidArgumentException):
        kin.put_record(StreamName=name, Data=b"x", PartitionKey="p", ExplicitHashKey="-1")
    with pytest.raises(kin.exceptions.ResourceNotFoundException):
        kin.get_shard_iterator(StreamName=name, ShardId="shardId-000000000009", ShardIteratorType="LATEST")
    with pytest.raises(kin.exceptions.InvalidArgumentException):
        kin.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                               ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber="12")
    with pytest.raises(kin.exceptions.InvalidArgumentException):
        kin.put_records(StreamName=name, Records=[{"Data": b"x" * 1_000_000, "PartitionKey": str(i)}
                                                  for i in range(6)])


def test_a_shard_over_its_write_limits_throttles(kin):
    name = new_stream(kin)
    big = b"x" * 600_000  # two of these exceed a shard's 1 MB per second within one request
    out = kin.put_records(StreamName=name, Records=[{"Data": big, "PartitionKey": "p"}] * 2)
    assert out["FailedRecordCount"] == 1
    assert out["Records"][1]["ErrorCode"] == "ProvisionedThroughputExceededException"
    assert out["Records"][1]["ErrorMessage"].startswith("Rate exceeded for shard shardId-000000000000")
    batch = [{"Data": b"x", "PartitionKey": "p"} for _ in range(500)]
    for _ in range(5):  # the limit is per clock second: retry until the calls land in one second
        try:
            kin.put_records(StreamName=name, Records=batch)
            kin.put_records(StreamName=name, Records=batch)
            kin.put_record(StreamName=name, Data=b"x", PartitionKey="p")
        except kin.exceptions.ProvisionedThroughputExceededException:
            break
    else:
        pytest.fail("1,001 records in a second were all accepted")


def test_split_and_merge_close_parents_and_open_children(kin):
    name = new_stream(kin)
    kin.put_record(StreamName=name, Data=b"before", PartitionKey="p")
    kin.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2 ** 127))
    shards = {s["ShardId"]: s for s in kin.list_shards(StreamName=name)["Shards"]}
    assert "EndingSequenceNumber" in shards["shardId-000000000000"]["SequenceNumberRange"]
    assert shards["shardId-000000000001"]["ParentShardId"] == "shardId-000000000000"
    assert shards["shardId-000000000002"]["HashKeyRange"]["StartingHashKey"] == str(2 ** 127)
    it = kin.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    out = kin.get_records(ShardIterator=it)
    assert [r["Data"] for r in out["Records"]] == [b"before"]
    assert "NextShardIterator" not in out
    assert [c["ShardId"] for c in out["ChildShards"]] == ["shardId-000000000001", "shardId-000000000002"]
    put = kin.put_record(StreamName=name, Data=b"after", PartitionKey="p")
    assert put["ShardId"] != "shardId-000000000000"
    kin.merge_shards(StreamName=name, ShardToMerge="shardId-000000000001",
                     AdjacentShardToMerge="shardId-000000000002")
    open_shards = kin.list_shards(StreamName=name, ShardFilter={"Type": "AT_LATEST"})["Shards"]
    assert [(s["ShardId"], s["ParentShardId"], s["AdjacentParentShardId"]) for s in open_shards] == \
        [("shardId-000000000003", "shardId-000000000001", "shardId-000000000002")]
    with pytest.raises(kin.exceptions.ResourceInUseException):
        kin.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey="5")
    out = kin.update_shard_count(StreamName=name, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    assert (out["CurrentShardCount"], out["TargetShardCount"]) == (1, 2)
    assert kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["OpenShardCount"] == 2


def test_subscribe_to_shard_pushes_records_over_the_event_stream(kin):
    name = new_stream(kin)
    arn = kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    consumer = kin.register_stream_consumer(StreamARN=arn, ConsumerName="fan")["Consumer"]
    assert kin.list_stream_consumers(StreamARN=arn)["Consumers"][0]["ConsumerName"] == "fan"
    kin.put_record(StreamName=name, Data=b"one", PartitionKey="p")
    resp = kin.subscribe_to_shard(ConsumerARN=consumer["ConsumerARN"], ShardId="shardId-000000000000",
                                  StartingPosition={"Type": "TRIM_HORIZON"})
    events = iter(resp["EventStream"])
    first = next(events)["SubscribeToShardEvent"]
    assert [r["Data"] for r in first["Records"]] == [b"one"]
    kin.put_record(StreamName=name, Data=b"two", PartitionKey="p")
    got = []
    while not got:
        got = next(events)["SubscribeToShardEvent"]["Records"]
    assert [r["Data"] for r in got] == [b"two"]
    resp["EventStream"].close()
    with pytest.raises(kin.exceptions.ResourceInUseException):
        kin.delete_stream(StreamName=name)
    kin.delete_stream(StreamName=name, EnforceConsumerDeletion=True)


def test_cbor_requests_get_cbor_answers(unkai, kin):
    import cbor2
    import httpx

    name = new_stream(kin)

    def call(op: str, body: dict) -> tuple[int, dict]:
        resp = httpx.post(unkai.url("/"), content=cbor2.dumps(body), headers={
            "x-amz-target": f"Kinesis_20131202.{op}", "content-type": "application/x-amz-cbor-1.1",
            "authorization": "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/kinesis/aws4_request, "
                             "SignedHeaders=host, Signature=00"})
        assert resp.headers["content-type"] == "application/x-amz-cbor-1.1"
        return resp.status_code, cbor2.loads(resp.content)

    status, out = call("PutRecord", {"StreamName": name, "Data": b"\x00\xffbinary", "PartitionKey": "p"})
    assert status == 200 and out["ShardId"] == "shardId-000000000000"
    _, it = call("GetShardIterator", {"StreamName": name, "ShardId": "shardId-000000000000",
                                      "ShardIteratorType": "TRIM_HORIZON"})
    _, records = call("GetRecords", {"ShardIterator": it["ShardIterator"]})
    assert records["Records"][0]["Data"] == b"\x00\xffbinary"
    assert isinstance(records["Records"][0]["ApproximateArrivalTimestamp"], int)  # epoch milliseconds
    status, err = call("DescribeStream", {"StreamName": "missing"})
    assert status == 400 and err["__type"] == "ResourceNotFoundException"


def test_acknowledged_records_survive_kill_9(tmp_path):
    from unkai.testing import UnkaiServer

    server = UnkaiServer(tmp_path / "state").start()
    try:
        kin = server.client("kinesis")
        kin.create_stream(StreamName="durable", ShardCount=1)
        kin.put_records(StreamName="durable", Records=[{"Data": b"kept", "PartitionKey": "p"}])
        server.kill()
        server = UnkaiServer(tmp_path / "state").start()
        assert [r["Data"] for r in read_all(server.client("kinesis"), "durable", "shardId-000000000000")] == [b"kept"]
    finally:
        server.stop()


def test_the_aws_cli_puts_and_reads_records(unkai):
    import base64
    import json
    import subprocess
    import sys

    def aws(*args: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "awscli", "--endpoint-url", unkai.endpoint, "--region",
                              "us-east-1", "--output", "json", "kinesis", *args], capture_output=True, text=True,
                             timeout=60, env={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "PATH": ""})
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else {}

    name = f"cli-{uuid.uuid4().hex[:8]}"
    aws("create-stream", "--stream-name", name, "--shard-count", "1")
    put = aws("put-record", "--stream-name", name, "--partition-key", "p", "--data", "from the cli")
    assert put["ShardId"] == "shardId-000000000000"
    it = aws("get-shard-iterator", "--stream-name", name, "--shard-id", put["ShardId"],
             "--shard-iterator-type", "AT_SEQUENCE_NUMBER", "--starting-sequence-number", put["SequenceNumber"])
    records = aws("get-records", "--shard-iterator", it["ShardIterator"])["Records"]
    assert base64.b64decode(records[0]["Data"]) == b"from the cli"


def test_sequence_number_for_ordering_and_stream_encryption(kin):
    name = new_stream(kin)
    first = kin.put_record(StreamName=name, Data=b"a", PartitionKey="k")
    second = kin.put_record(StreamName=name, Data=b"b", PartitionKey="k",
                            SequenceNumberForOrdering=first["SequenceNumber"])
    assert int(second["SequenceNumber"]) > int(first["SequenceNumber"])
    with pytest.raises(kin.exceptions.InvalidArgumentException):
        kin.put_record(StreamName=name, Data=b"c", PartitionKey="k", SequenceNumberForOrdering="not-a-number")
    kin.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId="alias/aws/kinesis")
    desc = kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert desc["EncryptionType"] == "KMS" and desc["KeyId"] == "alias/aws/kinesis"
    kin.stop_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId="alias/aws/kinesis")
    assert kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["EncryptionType"] == "NONE"
