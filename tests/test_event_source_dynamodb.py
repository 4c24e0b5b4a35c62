"""DynamoDB stream event source mappings with real workers: record shape, order,
blocked shards, retries on unkai's clock, bisection, partial batches, OnFailure."""

from __future__ import annotations

import json
import uuid

import pytest
from lambda_code import deploy, private_server

unkai = private_server("stream-mappings")

# Fails while the item's "fail" attribute is set and a marker file (outside the
# environment, so it survives a new one) has not been created yet.
HANDLER = """
import json, os
def handler(event, context):
    ids = [r['dynamodb']['Keys']['id']['S'] for r in event['Records']]
    print('BATCH ' + json.dumps({'ids': ids, 'names': [r['eventName'] for r in event['Records']]}))
    for r in event['Records']:
        print('RECORD ' + json.dumps(r))
    poison = [i for i, r in enumerate(event['Records'])
              if r['dynamodb'].get('NewImage', {}).get('poison') and not os.path.exists(os.environ['CURE'])]
    if poison and os.environ.get('PARTIAL'):
        seq = event['Records'][poison[0]]['dynamodb']['SequenceNumber']
        return {'batchItemFailures': [{'itemIdentifier': seq}]}
    if poison:
        raise RuntimeError('poison record')
"""


@pytest.fixture(scope="module")
def lam(unkai):
    return unkai.client("lambda")


@pytest.fixture(scope="module")
def ddb(unkai):
    return unkai.client("dynamodb")


def make_table(ddb) -> tuple[str, str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    desc = ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST",
                            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    return name, desc["TableDescription"]["LatestStreamArn"]


def batches(unkai, name: str) -> list[list[str]]:
    logs = unkai.client("logs")
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern="BATCH")["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [json.loads(e["message"].split(" ", 1)[1])["ids"] for e in events]


def put(ddb, table: str, key: str, **attrs: dict) -> None:
    ddb.put_item(TableName=table, Item={"id": {"S": key}, **attrs})


def function(lam, tmp_path, **env: str) -> tuple[str, object]:
    cure = tmp_path / f"cure-{uuid.uuid4().hex[:6]}"
    name = deploy(lam, HANDLER, Environment={"Variables": {"CURE": str(cure), **env}})
    return name, cure


def test_records_arrive_in_order_with_lambdas_shape(lam, ddb, unkai, tmp_path):
    table, stream = make_table(ddb)
    name, _ = function(lam, tmp_path)
    put(ddb, table, "before")
    mapping = lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=name, StartingPosition="LATEST",
                                              BatchSize=10)
    assert mapping["StartingPosition"] == "LATEST" and mapping["MaximumRetryAttempts"] == -1
    unkai.drain()
    for key in ("a", "b", "c"):
        put(ddb, table, key, n={"N": "1"})
    ddb.delete_item(TableName=table, Key={"id": {"S": "a"}})
    unkai.drain()
    seen = [k for batch in batches(unkai, name) for k in batch]
    assert seen == ["a", "b", "c", "a"]
    logs = unkai.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern="RECORD")
    record = json.loads(logs["events"][0]["message"].split(" ", 1)[1])
    assert record["eventSource"] == "aws:dynamodb" and record["eventName"] == "INSERT"
    assert record["eventSourceARN"] == stream and record["awsRegion"] == "us-east-1"
    assert record["dynamodb"]["Keys"] == {"id": {"S": "a"}}
    assert record["dynamodb"]["NewImage"] == {"id": {"S": "a"}, "n": {"N": "1"}}
    assert record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], (int, float))


def test_trim_horizon_reads_what_was_there(lam, ddb, unkai, tmp_path):
    table, stream = make_table(ddb)
    name, _ = function(lam, tmp_path)
    put(ddb, table, "old")
    lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=name, StartingPosition="TRIM_HORIZON")
    unkai.drain()
    assert batches(unkai, name) == [["old"]]


def test_failing_batch_blocks_the_shard_until_it_succeeds(lam, ddb, unkai, tmp_path):
    table, stream = make_table(ddb)
    name, cure = function(lam, tmp_path)
    lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=name, StartingPosition="LATEST", BatchSize=1)
    unkai.drain()
    put(ddb, table, "bad", poison={"BOOL": True})
    put(ddb, table, "next")
    unkai.drain()
    first = batches(unkai, name)  # (a loaded machine may pass the 1 s backoff in wall time: retried already)
    assert first and all(b == ["bad"] for b in first)  # "next" waits behind it
    unkai.advance(1)
    unkai.drain()
    retried = batches(unkai, name)
    assert len(retried) > len(first) and all(b == ["bad"] for b in retried)  # retried; "next" still waits
    cure.write_text("fixed")
    unkai.advance(2)
    unkai.drain()
    done = batches(unkai, name)
    assert done[-1] == ["next"] and len(done) >= 4 and all(b == ["bad"] for b in done[:-1])


def test_retry_limit_sends_the_batch_to_on_failure(lam, ddb, unkai, tmp_path):
    sqs = unkai.client("sqs")
    url = sqs.create_queue(QueueName=f"onfail-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    dest = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    table, stream = make_table(ddb)
    name, _ = function(lam, tmp_path)
    lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=name, StartingPosition="LATEST", BatchSize=1,
                                    MaximumRetryAttempts=1, DestinationConfig={"OnFailure": {"Destination": dest}})
    unkai.drain()
    put(ddb, table, "bad", poison={"BOOL": True})
    put(ddb, table, "after")
    unkai.drain()
    unkai.advance(1)
    unkai.drain()
    assert batches(unkai, name) == [["bad"], ["bad"], ["after"]]
    [message] = sqs.receive_message(QueueUrl=url).get("Messages", [])
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responseContext"]["functionError"] == "Unhandled"
    info = record["DDBStreamBatchInfo"]
    assert info["streamArn"] == stream and info["batchSize"] == 1
    assert info["startSequenceNumber"] == info["endSequenceNumber"]
    assert info["shardId"].startswith("shardId-")


def test_bisect_isolates_the_poison_record(lam, ddb, unkai, tmp_path):
    table, stream = make_table(ddb)
    name, _ = function(lam, tmp_path)
    lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=name, StartingPosition="LATEST",
                                    BatchSize=4, MaximumBatchingWindowInSeconds=5, BisectBatchOnFunctionError=True,
                                    MaximumRetryAttempts=0)
    unkai.drain()
    put(ddb, table, "k1")
    put(ddb, table, "k2")
    put(ddb, table, "k3", poison={"BOOL": True})
    put(ddb, table, "k4")
    unkai.advance(6)
    unkai.drain()
    got = batches(unkai, name)
    assert got[0] == ["k1", "k2", "k3", "k4"]
    assert ["k1", "k2"] in got and ["k4"] in got and ["k3"] in got
    assert got.index(["k1", "k2"]) < got.index(["k4"])


def test_partial_batch_response_checkpoints(lam, ddb, unkai, tmp_path):
    table, stream = make_table(ddb)
    name, cure = function(lam, tmp_path, PARTIAL="1")
    lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=name, StartingPosition="LATEST",
                                    BatchSize=3, MaximumBatchingWindowInSeconds=5,
                                    FunctionResponseTypes=["ReportBatchItemFailures"])
    unkai.drain()
    put(ddb, table, "p1")
    put(ddb, table, "p2", poison={"BOOL": True})
    put(ddb, table, "p3")
    unkai.advance(6)
    unkai.drain()
    cure.write_text("fixed")
    unkai.advance(1)
    unkai.drain()
    got = batches(unkai, name)
    assert got[0] == ["p1", "p2", "p3"]
    assert got[1] == ["p2", "p3"]  # retried from the failed record on


def test_filter_criteria_skip_records(lam, ddb, unkai, tmp_path):
    table, stream = make_table(ddb)
    name, _ = function(lam, tmp_path)
    lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=name, StartingPosition="LATEST",
                                    FilterCriteria={"Filters": [{"Pattern": json.dumps({"eventName": ["INSERT"]})}]})
    unkai.drain()
    put(ddb, table, "x")
    put(ddb, table, "x", changed={"S": "yes"})
    unkai.drain()
    assert [k for b in batches(unkai, name) for k in b] == ["x"]


def test_stream_mapping_validation(lam, ddb, tmp_path):
    table, stream = make_table(ddb)
    name, _ = function(lam, tmp_path)
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.create_event_source_mapping(EventSourceArn=stream, FunctionName=name)  # no StartingPosition
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.create_event_source_mapping(EventSourceArn=stream + "x", FunctionName=name, StartingPosition="LATEST")
