"""EventBridge Pipes through boto3 against real sources and targets: SQS, DynamoDB and
Kinesis sources read by the same pollers as Lambda's mappings, filters, a Lambda
enrichment, input templates, Lambda/SQS/event-bus targets, stop and start, and the API's
answers and errors."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError
from lambda_code import deploy

from unkai.testing import new_queue, receive_all

ACCOUNT = "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/pipe-role"

ENRICH = """
import json
def handler(event, context):
    out = []
    for record in event:
        body = json.loads(record['body'])
        out.append({'order': body['id'], 'enriched': True, 'count': len(event)})
    return out
"""

RECORDER = """
import json
def handler(event, context):
    print('PIPE ' + json.dumps(event))
    return {}
"""


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error(exc: pytest.ExceptionInfo) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def test_sqs_to_sqs_with_a_filter_and_an_input_template(unkai):
    pipes, sqs = unkai.client("pipes"), unkai.client("sqs")
    src_url, src_arn = new_queue(sqs)
    dst_url, dst_arn = new_queue(sqs)
    name = uid("orders")
    created = pipes.create_pipe(
        Name=name, RoleArn=ROLE, Source=src_arn, Target=dst_arn, Description="big orders only",
        SourceParameters={"SqsQueueParameters": {"BatchSize": 5},
                          "FilterCriteria": {"Filters": [{"Pattern": json.dumps({"body": {"total": [{"numeric": [
                              ">", 100]}]}})}]}},
        TargetParameters={"InputTemplate": '{"id": <$.body.id>, "pipe": "<aws.pipes.pipe-name>", '
                                           '"message": "<$.messageId>"}'},
        Tags={"team": "shop"})
    assert created["Arn"] == f"arn:aws:pipes:us-east-1:{ACCOUNT}:pipe/{name}"
    assert created["CurrentState"] == "CREATING" and created["DesiredState"] == "RUNNING"
    described = pipes.describe_pipe(Name=name)
    assert described["CurrentState"] == "RUNNING" and described["Source"] == src_arn
    assert described["Target"] == dst_arn and described["Description"] == "big orders only"
    assert described["SourceParameters"]["SqsQueueParameters"]["BatchSize"] == 5
    assert described["Tags"] == {"team": "shop"}
    sent = [sqs.send_message(QueueUrl=src_url, MessageBody=json.dumps({"id": i, "total": t}))["MessageId"]
            for i, t in ((1, 500), (2, 50), (3, 101))]
    unkai.drain()
    bodies = sorted((json.loads(b) for b in receive_all(sqs, dst_url)), key=lambda b: b["id"])
    assert bodies == [{"id": 1, "pipe": name, "message": sent[0]}, {"id": 3, "pipe": name, "message": sent[2]}]
    assert receive_all(sqs, src_url) == []  # filtered messages are deleted, as AWS does

    listed = pipes.list_pipes(NamePrefix=name)["Pipes"]
    assert [(p["Name"], p["Source"], p["Target"], p["CurrentState"]) for p in listed] == [
        (name, src_arn, dst_arn, "RUNNING")]
    assert pipes.list_tags_for_resource(resourceArn=created["Arn"])["tags"] == {"team": "shop"}
    pipes.tag_resource(resourceArn=created["Arn"], tags={"env": "dev"})
    pipes.untag_resource(resourceArn=created["Arn"], tagKeys=["team"])
    assert pipes.list_tags_for_resource(resourceArn=created["Arn"])["tags"] == {"env": "dev"}

    stopped = pipes.stop_pipe(Name=name)
    assert stopped["CurrentState"] == "STOPPING" and stopped["DesiredState"] == "STOPPED"
    assert pipes.describe_pipe(Name=name)["CurrentState"] == "STOPPED"
    unkai.drain()
    sqs.send_message(QueueUrl=src_url, MessageBody=json.dumps({"id": 4, "total": 400}))
    unkai.drain()
    assert receive_all(sqs, dst_url) == []  # a stopped pipe reads nothing
    assert pipes.start_pipe(Name=name)["CurrentState"] == "STARTING"
    unkai.drain()
    assert [json.loads(b)["id"] for b in receive_all(sqs, dst_url)] == [4]

    deleted = pipes.delete_pipe(Name=name)
    assert deleted["CurrentState"] == "DELETING" and deleted["DesiredState"] == "DELETED"
    with pytest.raises(ClientError) as exc:
        pipes.describe_pipe(Name=name)
    assert error(exc) == ("NotFoundException", f"Pipe {name} not found")


def test_lambda_enrichment_then_an_event_bus_target(unkai):
    pipes, sqs, events, lam = (unkai.client(s) for s in ("pipes", "sqs", "events", "lambda"))
    enrich = deploy(lam, ENRICH)
    src_url, src_arn = new_queue(sqs)
    out_url, out_arn = new_queue(sqs)
    bus = uid("pipes-bus")
    bus_arn = events.create_event_bus(Name=bus)["EventBusArn"]
    events.put_rule(Name="from-pipe", EventBusName=bus, EventPattern='{"detail": {"enriched": [true]}}')
    events.put_targets(Rule="from-pipe", EventBusName=bus, Targets=[{"Id": "q", "Arn": out_arn}])
    name = uid("enriched")
    pipes.create_pipe(Name=name, RoleArn=ROLE, Source=src_arn, Target=bus_arn,
                      Enrichment=f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{enrich}",
                      SourceParameters={"SqsQueueParameters": {"BatchSize": 10,
                                                               "MaximumBatchingWindowInSeconds": 1}})
    sqs.send_message_batch(QueueUrl=src_url, Entries=[{"Id": str(i), "MessageBody": json.dumps({"id": i})}
                                                      for i in range(3)])
    unkai.drain()
    delivered = [json.loads(b) for b in receive_all(sqs, out_url)]
    assert sorted(e["detail"]["order"] for e in delivered) == [0, 1, 2]
    assert {e["source"] for e in delivered} == {f"Pipe {name}"}
    assert {e["detail-type"] for e in delivered} == {"Event from aws:sqs"}
    assert all(e["detail"]["enriched"] for e in delivered)
    pipes.delete_pipe(Name=name)


def test_stream_sources_to_lambda_and_sqs_targets(unkai):
    pipes, sqs, lam, ddb, kinesis, logs = (unkai.client(s) for s in ("pipes", "sqs", "lambda", "dynamodb", "kinesis",
                                                                     "logs"))
    recorder = deploy(lam, RECORDER)
    stream = uid("pipe-stream")
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    stream_arn = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["StreamARN"]
    kname = uid("from-kinesis")
    pipes.create_pipe(Name=kname, RoleArn=ROLE, Source=stream_arn,
                      Target=f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{recorder}",
                      SourceParameters={"KinesisStreamParameters": {"StartingPosition": "TRIM_HORIZON",
                                                                    "BatchSize": 10}})
    for i in range(2):
        kinesis.put_record(StreamName=stream, Data=json.dumps({"k": i}).encode(), PartitionKey="p")
    unkai.drain()
    events = logs.filter_log_events(logGroupName=f"/aws/lambda/{recorder}", filterPattern="PIPE")["events"]
    batches = [json.loads(e["message"].split(" ", 1)[1]) for e in events]
    records = [r for batch in batches for r in batch]  # the target gets a JSON array, not {"Records": [...]}
    assert [r["eventSource"] for r in records] == ["aws:kinesis", "aws:kinesis"]
    assert records[0]["eventSourceARN"] == stream_arn
    pipes.delete_pipe(Name=kname)

    table = uid("pipe-table")
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST",
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    table_stream = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    out_url, out_arn = new_queue(sqs)
    dname = uid("from-ddb")
    pipes.create_pipe(Name=dname, RoleArn=ROLE, Source=table_stream, Target=out_arn,
                      SourceParameters={"DynamoDBStreamParameters": {"StartingPosition": "LATEST"},
                                        "FilterCriteria": {"Filters": [{"Pattern": '{"eventName": ["INSERT"]}'}]}},
                      TargetParameters={"InputTemplate": '{"new": <$.dynamodb.NewImage.id.S>}'})
    ddb.put_item(TableName=table, Item={"id": {"S": "a"}})
    ddb.put_item(TableName=table, Item={"id": {"S": "a"}, "v": {"N": "1"}})  # MODIFY: filtered out
    unkai.drain()
    assert [json.loads(b) for b in receive_all(sqs, out_url)] == [{"new": "a"}]
    pipes.delete_pipe(Name=dname)


def test_pipe_errors_as_the_api_answers_them(unkai):
    pipes, sqs = unkai.client("pipes"), unkai.client("sqs")
    _, src_arn = new_queue(sqs)
    _, dst_arn = new_queue(sqs)
    name = uid("dup")
    pipes.create_pipe(Name=name, RoleArn=ROLE, Source=src_arn, Target=dst_arn, DesiredState="STOPPED")
    assert pipes.describe_pipe(Name=name)["CurrentState"] == "STOPPED"
    with pytest.raises(ClientError) as exc:
        pipes.create_pipe(Name=name, RoleArn=ROLE, Source=src_arn, Target=dst_arn)
    assert error(exc) == ("ConflictException", f"Pipe {name} already exists.")
    with pytest.raises(ClientError) as exc:
        pipes.create_pipe(Name=uid("bad"), RoleArn=ROLE, Source=src_arn, Target=dst_arn,
                          SourceParameters={"FilterCriteria": {"Filters": [{"Pattern": "not json"}]}})
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    updated = pipes.update_pipe(Name=name, RoleArn=ROLE, Description="now described")
    assert updated["CurrentState"] == "UPDATING"
    assert pipes.describe_pipe(Name=name)["Description"] == "now described"
    for call in (lambda: pipes.stop_pipe(Name="nope"), lambda: pipes.delete_pipe(Name="nope")):
        with pytest.raises(ClientError) as exc:
            call()
        assert error(exc) == ("NotFoundException", "Pipe nope not found")
    pipes.delete_pipe(Name=name)
