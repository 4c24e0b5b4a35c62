"""Kinesis event source mappings with real workers: AWS's record shape, per-shard order,
a failing batch blocking its shard until it succeeds (retries on unkai's clock), retry
limits to an OnFailure destination, partial batches, filters, parallelization, tumbling
windows, child shards after a split, and SAM's Kinesis event."""

from __future__ import annotations

import base64
import json
import textwrap
import uuid

import pytest
from lambda_code import deploy, private_server

unkai = private_server("kinesis-mappings")

# Fails on a record whose data is "poison" until a marker file (outside the environment) exists.
HANDLER = """
import base64, json, os
def handler(event, context):
    datas = [base64.b64decode(r['kinesis']['data']).decode() for r in event['Records']]
    print('BATCH ' + json.dumps({'datas': datas, 'final': event.get('isFinalInvokeForWindow'),
                                 'state': event.get('state')}))
    for r in event['Records']:
        print('RECORD ' + json.dumps(r))
    poison = [i for i, d in enumerate(datas) if d.startswith('poison') and not os.path.exists(os.environ['CURE'])]
    if poison and os.environ.get('PARTIAL'):
        return {'batchItemFailures': [{'itemIdentifier': event['Records'][poison[0]]['kinesis']['sequenceNumber']}]}
    if poison:
        raise RuntimeError('poison record')
    if 'window' in event:
        return {'state': {'count': (event['state'] or {}).get('count', 0) + len(datas)}}
"""


@pytest.fixture(scope="module")
def lam(unkai):
    return unkai.client("lambda")


@pytest.fixture(scope="module")
def kin(unkai):
    return unkai.client("kinesis")


def make_stream(kin, shards: int = 1) -> tuple[str, str]:
    name = f"s-{uuid.uuid4().hex[:8]}"
    kin.create_stream(StreamName=name, ShardCount=shards)
    return name, kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]


def function(lam, tmp_path, **env: str) -> tuple[str, object]:
    cure = tmp_path / f"cure-{uuid.uuid4().hex[:6]}"
    return deploy(lam, HANDLER, Environment={"Variables": {"CURE": str(cure), **env}}), cure


def runs(unkai, name: str) -> list[dict]:
    logs = unkai.client("logs")
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern="BATCH")["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [json.loads(e["message"].split(" ", 1)[1]) for e in events]


def batches(unkai, name: str) -> list[list[str]]:
    return [r["datas"] for r in runs(unkai, name) if r["datas"]]


def put(kin, stream: str, *datas: str, key: str = "k") -> None:
    for data in datas:
        kin.put_record(StreamName=stream, Data=data.encode(), PartitionKey=key)


def test_records_arrive_with_kinesis_event_shape(lam, kin, unkai, tmp_path):
    stream, arn = make_stream(kin)
    name, _ = function(lam, tmp_path)
    put(kin, stream, "before")
    mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, StartingPosition="LATEST",
                                              BatchSize=10)
    assert mapping["EventSourceArn"] == arn and mapping["ParallelizationFactor"] == 1
    unkai.drain()
    put(kin, stream, "a", "b", "c")
    unkai.drain()
    assert [d for b in batches(unkai, name) for d in b] == ["a", "b", "c"]
    logs = unkai.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern="RECORD")
    record = json.loads(logs["events"][0]["message"].split(" ", 1)[1])
    assert record["eventSource"] == "aws:kinesis" and record["eventName"] == "aws:kinesis:record"
    assert record["eventSourceARN"] == arn and record["awsRegion"] == "us-east-1"
    assert record["eventID"] == f"shardId-000000000000:{record['kinesis']['sequenceNumber']}"
    assert base64.b64decode(record["kinesis"]["data"]) == b"a"
    assert record["kinesis"]["partitionKey"] == "k" and record["kinesis"]["kinesisSchemaVersion"] == "1.0"
    assert isinstance(record["kinesis"]["approximateArrivalTimestamp"], float)
    assert record["invokeIdentityArn"].startswith("arn:aws:iam::")


def test_failing_batch_blocks_its_shard_until_it_succeeds(lam, kin, unkai, tmp_path):
    """The book's stream semantics: the shard waits behind a failing batch, retried on the clock."""
    stream, arn = make_stream(kin)
    name, cure = function(lam, tmp_path)
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, StartingPosition="TRIM_HORIZON",
                                    BatchSize=1)
    put(kin, stream, "poison", "next")
    unkai.drain()
    assert batches(unkai, name) == [["poison"]]
    unkai.advance(1)
    unkai.drain()
    assert batches(unkai, name) == [["poison"], ["poison"]]  # retried; "next" waits behind it
    cure.write_text("fixed")
    unkai.advance(2)
    unkai.drain()
    assert batches(unkai, name) == [["poison"], ["poison"], ["poison"], ["next"]]


def test_retry_limit_sends_the_batch_to_on_failure(lam, kin, unkai, tmp_path):
    sqs = unkai.client("sqs")
    url = sqs.create_queue(QueueName=f"onfail-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    dest = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stream, arn = make_stream(kin)
    name, _ = function(lam, tmp_path)
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, StartingPosition="TRIM_HORIZON",
                                    BatchSize=1, MaximumRetryAttempts=1,
                                    DestinationConfig={"OnFailure": {"Destination": dest}})
    put(kin, stream, "poison", "after")
    unkai.drain()
    unkai.advance(1)
    unkai.drain()
    assert batches(unkai, name) == [["poison"], ["poison"], ["after"]]
    [message] = sqs.receive_message(QueueUrl=url).get("Messages", [])
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    info = record["KinesisBatchInfo"]
    assert info["streamArn"] == arn and info["batchSize"] == 1 and info["shardId"] == "shardId-000000000000"


def test_partial_batch_response_and_bisect(lam, kin, unkai, tmp_path):
    stream, arn = make_stream(kin)
    name, cure = function(lam, tmp_path, PARTIAL="1")
    put(kin, stream, "p1", "poison2", "p3")
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, StartingPosition="TRIM_HORIZON",
                                    BatchSize=3, FunctionResponseTypes=["ReportBatchItemFailures"])
    unkai.drain()
    cure.write_text("fixed")
    unkai.advance(1)
    unkai.drain()
    assert batches(unkai, name)[:2] == [["p1", "poison2", "p3"], ["poison2", "p3"]]

    stream, arn = make_stream(kin)
    name, _ = function(lam, tmp_path)
    put(kin, stream, "k1", "k2", "poison3", "k4")
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, StartingPosition="TRIM_HORIZON",
                                    BatchSize=4, BisectBatchOnFunctionError=True, MaximumRetryAttempts=0)
    unkai.drain()
    unkai.advance(5)
    unkai.drain()
    got = batches(unkai, name)
    assert got[0] == ["k1", "k2", "poison3", "k4"] and ["k1", "k2"] in got and ["k4"] in got


def test_filters_match_the_json_data(lam, kin, unkai, tmp_path):
    stream, arn = make_stream(kin)
    name, _ = function(lam, tmp_path)
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, StartingPosition="TRIM_HORIZON",
                                    FilterCriteria={"Filters": [{"Pattern": json.dumps({"data": {"level": ["ERROR"]}})}]})
    put(kin, stream, json.dumps({"level": "INFO"}), json.dumps({"level": "ERROR"}), "not json")
    unkai.drain()
    assert [d for b in batches(unkai, name) for d in b] == [json.dumps({"level": "ERROR"})]


def test_parallelization_keeps_each_keys_order(lam, kin, unkai, tmp_path):
    stream, arn = make_stream(kin)
    name, _ = function(lam, tmp_path)
    for i in range(6):
        put(kin, stream, f"{i % 3}-{i}", key=str(i % 3))
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, StartingPosition="TRIM_HORIZON",
                                    ParallelizationFactor=3)
    unkai.drain()
    seen = [d for b in batches(unkai, name) for d in b]
    assert sorted(seen) == sorted(f"{i % 3}-{i}" for i in range(6))
    for key in "012":
        mine = [d for d in seen if d.startswith(key)]
        assert mine == sorted(mine, key=lambda d: int(d.split("-")[1]))


def test_tumbling_window_passes_state_and_ends_with_a_final_invoke(lam, kin, unkai, tmp_path):
    stream, arn = make_stream(kin)
    name, _ = function(lam, tmp_path)
    put(kin, stream, "w1", "w2", "w3")
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, StartingPosition="TRIM_HORIZON",
                                    TumblingWindowInSeconds=120, BatchSize=2)
    unkai.drain()
    unkai.advance(240)
    unkai.drain()
    got = runs(unkai, name)
    assert [r["datas"] for r in got[:2]] == [["w1", "w2"], ["w3"]]
    assert got[1]["state"] == {"count": 2}
    final = [r for r in got if r["final"]]
    assert final and final[0]["state"] == {"count": 3} and final[0]["datas"] == []


def test_children_are_read_after_their_parent(lam, kin, unkai, tmp_path):
    stream, arn = make_stream(kin)
    name, _ = function(lam, tmp_path)
    put(kin, stream, "parent")
    kin.split_shard(StreamName=stream, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2 ** 127))
    put(kin, stream, "child")
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, StartingPosition="TRIM_HORIZON")
    unkai.drain()
    assert [d for b in batches(unkai, name) for d in b] == ["parent", "child"]


def test_kinesis_mapping_validation(lam, kin, tmp_path):
    _, arn = make_stream(kin)
    name, _ = function(lam, tmp_path)
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name)  # no StartingPosition
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.create_event_source_mapping(EventSourceArn=arn + "x", FunctionName=name, StartingPosition="LATEST")
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, StartingPosition="LATEST",
                                        ParallelizationFactor=11)


def test_sam_kinesis_event_and_stream_resource(unkai, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(textwrap.dedent("""
        import base64
        def handler(event, context):
            for r in event['Records']:
                print('GOT ' + base64.b64decode(r['kinesis']['data']).decode())
    """))
    (tmp_path / "template.yaml").write_text(textwrap.dedent("""
        AWSTemplateFormatVersion: '2010-09-09'
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Events:
            Type: AWS::Kinesis::Stream
            Properties:
              ShardCount: 2
              RetentionPeriodHours: 48
          Reader:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: python3.11
              Handler: app.handler
              CodeUri: src
              Events:
                Stream:
                  Type: Kinesis
                  Properties:
                    Stream: !GetAtt Events.Arn
                    StartingPosition: TRIM_HORIZON
                    BatchSize: 10
        Outputs:
          StreamName:
            Value: !Ref Events
    """))
    from unkai.testing import UnkaiServer

    with UnkaiServer(tmp_path / "state", str(tmp_path / "template.yaml")).start() as server:
        cfn = server.client("cloudformation")
        stack = cfn.list_stacks()["StackSummaries"][0]["StackName"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}
        kin = server.client("kinesis")
        desc = kin.describe_stream_summary(StreamName=outputs["StreamName"])["StreamDescriptionSummary"]
        assert desc["OpenShardCount"] == 2 and desc["RetentionPeriodHours"] == 48
        kin.put_record(StreamName=outputs["StreamName"], Data=b"from-template", PartitionKey="p")
        server.drain()
        logs = server.client("logs")
        group = next(g["logGroupName"] for g in logs.describe_log_groups()["logGroups"] if "Reader" in g["logGroupName"])
        assert any("GOT from-template" in e["message"] for e in logs.filter_log_events(logGroupName=group)["events"])


def test_a_record_older_than_the_maximum_age_goes_to_on_failure(lam, kin, unkai, tmp_path):
    sqs = unkai.client("sqs")
    url = sqs.create_queue(QueueName=f"aged-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    dest = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stream, arn = make_stream(kin)
    name, _ = function(lam, tmp_path)
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, StartingPosition="TRIM_HORIZON",
                                    BatchSize=1, MaximumRetryAttempts=-1, MaximumRecordAgeInSeconds=60,
                                    DestinationConfig={"OnFailure": {"Destination": dest}})
    put(kin, stream, "poison")
    unkai.drain()
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []   # still retried, still young
    unkai.advance(61)
    unkai.drain()
    [message] = sqs.receive_message(QueueUrl=url).get("Messages", [])
    assert json.loads(message["Body"])["requestContext"]["condition"] == "RecordAgeExceeded"
    put(kin, stream, "after")          # the shard is unblocked: a new record is handled
    unkai.drain()
    assert batches(unkai, name)[-1] == ["after"]
