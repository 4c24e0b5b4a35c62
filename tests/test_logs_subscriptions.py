"""CloudWatch Logs subscription filters through boto3: matching events reach Lambda
(``awslogs.data``), Kinesis and Firehose as AWS's gzip-compressed JSON; a function's own
output flows through them; destinations; AWS's errors."""

from __future__ import annotations

import base64
import gzip
import json
import time
import uuid

import pytest
from lambda_code import call, deploy, private_server

unkai = private_server("log-subscriptions")
ROLE = "arn:aws:iam::000000000000:role/logs"

RECEIVER = """
import base64, gzip, json
def handler(event, context):
    doc = json.loads(gzip.decompress(base64.b64decode(event['awslogs']['data'])))
    print('GOT ' + json.dumps(doc))
"""


@pytest.fixture(scope="module")
def logs(unkai):
    return unkai.client("logs")


@pytest.fixture(scope="module")
def kin(unkai):
    return unkai.client("kinesis")


def group(logs) -> str:
    name = f"/app/{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=name)
    logs.create_log_stream(logGroupName=name, logStreamName="s1")
    return name


def put(logs, name: str, *messages: str) -> None:
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=name, logStreamName="s1",
                        logEvents=[{"timestamp": now, "message": m} for m in messages])


def new_stream(kin) -> tuple[str, str]:
    name = f"k-{uuid.uuid4().hex[:8]}"
    kin.create_stream(StreamName=name, ShardCount=1)
    return name, kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]


def documents(kin, stream: str) -> list[dict]:
    it = kin.get_shard_iterator(StreamName=stream, ShardId="shardId-000000000000",
                                ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return [json.loads(gzip.decompress(r["Data"])) for r in kin.get_records(ShardIterator=it)["Records"]]


def test_matching_events_reach_lambda_as_awslogs_data(logs, unkai):
    lam = unkai.client("lambda")
    fn = deploy(lam, RECEIVER)
    arn = lam.get_function(FunctionName=fn)["Configuration"]["FunctionArn"]
    name = group(logs)
    logs.put_subscription_filter(logGroupName=name, filterName="errors", filterPattern="ERROR", destinationArn=arn)
    put(logs, name, "INFO all good", "ERROR disk full", "ERROR again")
    unkai.drain()
    got = logs.filter_log_events(logGroupName=f"/aws/lambda/{fn}", filterPattern="GOT")["events"]
    [doc] = [json.loads(e["message"].split(" ", 1)[1]) for e in got]
    assert doc["messageType"] == "DATA_MESSAGE" and doc["owner"] == "000000000000"
    assert doc["logGroup"] == name and doc["logStream"] == "s1" and doc["subscriptionFilters"] == ["errors"]
    assert [e["message"] for e in doc["logEvents"]] == ["ERROR disk full", "ERROR again"]
    assert all(len(e["id"]) == 56 for e in doc["logEvents"])
    [described] = logs.describe_subscription_filters(logGroupName=name)["subscriptionFilters"]
    assert described["filterName"] == "errors" and described["destinationArn"] == arn
    assert described["distribution"] == "ByLogStream"


def test_a_functions_own_output_flows_to_kinesis(logs, kin, unkai):
    lam = unkai.client("lambda")
    fn = deploy(lam, "def handler(event, context):\n    print('hello from the handler')\n")
    call(lam, fn)  # creates the function's log group
    stream, arn = new_stream(kin)
    logs.put_subscription_filter(logGroupName=f"/aws/lambda/{fn}", filterName="all", filterPattern="",
                                 destinationArn=arn, roleArn=ROLE)
    call(lam, fn)
    unkai.drain()
    docs = documents(kin, stream)
    assert docs[0]["messageType"] == "CONTROL_MESSAGE"
    messages = [e["message"] for d in docs[1:] for e in d["logEvents"]]
    assert any(m.startswith("START RequestId:") for m in messages)
    assert any("hello from the handler" in m for m in messages)
    assert any(m.startswith("REPORT RequestId:") for m in messages)


def test_firehose_extracts_log_messages_into_s3(logs, unkai):
    s3, fh = unkai.client("s3"), unkai.client("firehose")
    bucket = f"b-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    delivery = f"d-{uuid.uuid4().hex[:8]}"
    farn = fh.create_delivery_stream(DeliveryStreamName=delivery, ExtendedS3DestinationConfiguration={
        "RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}", "BufferingHints": {"IntervalInSeconds": 60},
        "ProcessingConfiguration": {"Enabled": True, "Processors": [
            {"Type": "Decompression", "Parameters": [{"ParameterName": "CompressionFormat", "ParameterValue": "GZIP"}]},
            {"Type": "CloudWatchLogProcessing", "Parameters": [
                {"ParameterName": "DataMessageExtraction", "ParameterValue": "true"}]},
            {"Type": "AppendDelimiterToRecord", "Parameters": []}]}})["DeliveryStreamARN"]
    name = group(logs)
    logs.put_subscription_filter(logGroupName=name, filterName="json", filterPattern="{ $.level = \"error\" }",
                                 destinationArn=farn, roleArn=ROLE)
    put(logs, name, json.dumps({"level": "error", "n": 1}), json.dumps({"level": "info", "n": 2}))
    unkai.advance(61)
    unkai.drain()
    [item] = s3.list_objects_v2(Bucket=bucket)["Contents"]
    body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    assert body == json.dumps({"level": "error", "n": 1}).encode() + b"\n"


def test_cross_account_destinations_forward_to_their_target(logs, kin):
    stream, arn = new_stream(kin)
    dest = logs.put_destination(destinationName="central", targetArn=arn, roleArn=ROLE)["destination"]
    assert dest["arn"] == "arn:aws:logs:us-east-1:000000000000:destination:central"
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "111111111111"},
                                                                  "Action": "logs:PutSubscriptionFilter",
                                                                  "Resource": dest["arn"]}]})
    logs.put_destination_policy(destinationName="central", accessPolicy=policy)
    [described] = logs.describe_destinations(DestinationNamePrefix="cent")["destinations"]
    assert described["accessPolicy"] == policy and described["targetArn"] == arn
    name = group(logs)
    logs.put_subscription_filter(logGroupName=name, filterName="fwd", filterPattern="", destinationArn=dest["arn"])
    put(logs, name, "forwarded")
    assert [e["message"] for d in documents(kin, stream)[1:] for e in d["logEvents"]] == ["forwarded"]
    logs.delete_destination(destinationName="central")
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.delete_destination(destinationName="central")


def test_bad_subscriptions_get_logs_errors(logs, kin):
    _, arn = new_stream(kin)
    name = group(logs)
    with pytest.raises(logs.exceptions.InvalidParameterException) as exc:
        logs.put_subscription_filter(logGroupName=name, filterName="x", filterPattern="",
                                     destinationArn=arn + "-missing")
    assert "Could not deliver test message" in exc.value.response["Error"]["Message"]
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.put_subscription_filter(logGroupName="/no/such/group", filterName="x", filterPattern="",
                                     destinationArn=arn)
    logs.put_subscription_filter(logGroupName=name, filterName="a", filterPattern="", destinationArn=arn)
    logs.put_subscription_filter(logGroupName=name, filterName="b", filterPattern="", destinationArn=arn)
    logs.put_subscription_filter(logGroupName=name, filterName="b", filterPattern="x", destinationArn=arn)  # update
    with pytest.raises(logs.exceptions.LimitExceededException):
        logs.put_subscription_filter(logGroupName=name, filterName="c", filterPattern="", destinationArn=arn)
    logs.delete_subscription_filter(logGroupName=name, filterName="a")
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.delete_subscription_filter(logGroupName=name, filterName="a")
    assert [f["filterName"] for f in logs.describe_subscription_filters(logGroupName=name)["subscriptionFilters"]] == ["b"]


def test_subscription_filter_template_resource(tmp_path):
    import textwrap

    from unkai.testing import UnkaiServer

    (tmp_path / "template.yaml").write_text(textwrap.dedent("""
        AWSTemplateFormatVersion: '2010-09-09'
        Resources:
          Logs:
            Type: AWS::Logs::LogGroup
            Properties:
              LogGroupName: /app/templated
          Stream:
            Type: AWS::Kinesis::Stream
            Properties:
              ShardCount: 1
          Subscription:
            Type: AWS::Logs::SubscriptionFilter
            Properties:
              LogGroupName: !Ref Logs
              FilterPattern: "WARN"
              DestinationArn: !GetAtt Stream.Arn
              RoleArn: arn:aws:iam::000000000000:role/logs
        Outputs:
          StreamName:
            Value: !Ref Stream
    """))
    with UnkaiServer(tmp_path / "state", str(tmp_path / "template.yaml")).start() as server:
        logs, kin = server.client("logs"), server.client("kinesis")
        [described] = logs.describe_subscription_filters(logGroupName="/app/templated")["subscriptionFilters"]
        assert described["filterPattern"] == "WARN"
        logs.create_log_stream(logGroupName="/app/templated", logStreamName="s1")
        put(logs, "/app/templated", "WARN low disk", "INFO fine")
        stream = kin.list_streams()["StreamNames"][0]
        assert [e["message"] for d in documents(kin, stream)[1:] for e in d["logEvents"]] == ["WARN low disk"]
