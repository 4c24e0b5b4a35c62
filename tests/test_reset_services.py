"""A reset (``POST /_unkai/reset``) leaves nothing behind in the services added after it
was built either: SES identities and mail, Cognito pools and users, Kinesis streams and
records, Firehose streams and delivered objects, CloudWatch metrics and alarms, Logs
events and Insights queries, Glue databases, Athena workgroups, IAM roles, secrets and
KMS keys. A Kinesis-fed Firehose delivery stream of the stack still delivers afterwards
(its reader restarted over the restored state)."""

from __future__ import annotations

import gzip
import json
import time

import pytest
from botocore.exceptions import ClientError

from unkai.testing import UnkaiServer

TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Resources:
  Records:
    Type: AWS::Kinesis::Stream
    Properties:
      ShardCount: 1
  Bucket:
    Type: AWS::S3::Bucket
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: '2012-10-17'
        Statement:
          - Effect: Allow
            Principal: {Service: firehose.amazonaws.com}
            Action: sts:AssumeRole
  Delivery:
    Type: AWS::KinesisFirehose::DeliveryStream
    Properties:
      DeliveryStreamType: KinesisStreamAsSource
      KinesisStreamSourceConfiguration:
        KinesisStreamARN: !GetAtt Records.Arn
        RoleARN: !GetAtt Role.Arn
      ExtendedS3DestinationConfiguration:
        BucketARN: !GetAtt Bucket.Arn
        RoleARN: !GetAtt Role.Arn
        Prefix: out/
        BufferingHints: {IntervalInSeconds: 60, SizeInMBs: 1}
Outputs:
  StreamName:
    Value: !Ref Records
  BucketName:
    Value: !Ref Bucket
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("reset-services")
    (root / "template.yaml").write_text(TEMPLATE)
    srv = UnkaiServer(root / "state", str(root / "template.yaml"), "--quiet").start(timeout=120)
    try:
        yield srv
    finally:
        srv.stop()


def outputs(server) -> dict:
    stack = server.client("cloudformation").describe_stacks()["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def objects(server, bucket: str) -> list[str]:
    return [o["Key"] for o in server.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]


def state_of(server, out: dict) -> dict:
    """What each service holds, as a comparable value."""
    kinesis, logs = server.client("kinesis"), server.client("logs")
    shard = kinesis.list_shards(StreamName=out["StreamName"])["Shards"][0]["ShardId"]
    it = kinesis.get_shard_iterator(StreamName=out["StreamName"], ShardId=shard,
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    groups = [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]
    return {
        "ses identities": server.client("ses").list_identities()["Identities"],
        "mail": [m["subject"] for m in server.mail()],
        "cognito pools": [p["Name"] for p in server.client("cognito-idp").list_user_pools(MaxResults=60)["UserPools"]],
        "kinesis streams": server.client("kinesis").list_streams()["StreamNames"],
        "kinesis records": len(kinesis.get_records(ShardIterator=it)["Records"]),
        "firehose streams": server.client("firehose").list_delivery_streams()["DeliveryStreamNames"],
        "delivered objects": objects(server, out["BucketName"]),
        "metrics": [m["MetricName"] for m in server.client("cloudwatch").list_metrics(Namespace="Shop")["Metrics"]],
        "alarms": [a["AlarmName"] for a in server.client("cloudwatch").describe_alarms()["MetricAlarms"]],
        "log groups": groups,
        "log events": {g: len(logs.filter_log_events(logGroupName=g)["events"]) for g in groups},
        "glue databases": [d["Name"] for d in server.client("glue").get_databases()["DatabaseList"]],
        "athena workgroups": sorted(w["Name"] for w in server.client("athena").list_work_groups()["WorkGroups"]),
        "iam roles": sorted(r["RoleName"] for r in server.client("iam").list_roles()["Roles"]),
        "secrets": [s["Name"] for s in server.client("secretsmanager").list_secrets()["SecretList"]],
        "kms keys": sorted(k["KeyId"] for k in server.client("kms").list_keys()["Keys"]),
    }


def test_a_reset_removes_the_data_of_every_newer_service_and_the_stack_delivers_again(server):
    out = outputs(server)
    before = state_of(server, out)

    ses = server.client("ses")
    ses.verify_email_identity(EmailAddress="shop@example.com")
    cognito = server.client("cognito-idp")
    pool = cognito.create_user_pool(PoolName="customers")["UserPool"]["Id"]
    cognito.admin_create_user(UserPoolId=pool, Username="alice")
    kinesis = server.client("kinesis")
    kinesis.create_stream(StreamName="extra", ShardCount=1)
    kinesis.put_record(StreamName=out["StreamName"], Data=b'{"n": 1}', PartitionKey="a")
    server.client("firehose").create_delivery_stream(
        DeliveryStreamName="direct", ExtendedS3DestinationConfiguration={
            "BucketARN": f"arn:aws:s3:::{out['BucketName']}", "RoleARN": "arn:aws:iam::000000000000:role/x"})
    cw = server.client("cloudwatch")
    cw.put_metric_data(Namespace="Shop", MetricData=[{"MetricName": "Orders", "Value": 3}])
    cw.put_metric_alarm(AlarmName="orders-high", Namespace="Shop", MetricName="Orders", Statistic="Sum",
                        Period=60, EvaluationPeriods=1, Threshold=10, ComparisonOperator="GreaterThanThreshold")
    logs = server.client("logs")
    logs.create_log_group(logGroupName="/shop")
    logs.create_log_stream(logGroupName="/shop", logStreamName="s")
    logs.put_log_events(logGroupName="/shop", logStreamName="s",  # the clock is not advanced yet
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": "hello"}])
    query = logs.start_query(logGroupName="/shop", startTime=0, endTime=4_000_000_000,
                             queryString="fields @message")["queryId"]
    server.client("glue").create_database(DatabaseInput={"Name": "shop"})
    server.client("athena").create_work_group(Name="analysts")
    server.client("iam").create_role(RoleName="extra", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                  "Action": "sts:AssumeRole"}]}))
    server.client("secretsmanager").create_secret(Name="db", SecretString="hunter2")
    server.client("kms").create_key()
    # resharded after the snapshot: a reset must not route records to shards it removed
    kinesis.update_shard_count(StreamName=out["StreamName"], TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    kinesis.put_record(StreamName=out["StreamName"], Data=b'{"n": 1.5}', PartitionKey="b")
    server.advance(61)  # the stack's Firehose delivers the Kinesis records
    server.drain()
    during = state_of(server, out)
    assert during["delivered objects"] and during["kinesis records"] >= 1 and during["mail"]
    changed = [k for k in before if before[k] == during[k]]
    assert changed == [], f"the test made nothing in {changed}"

    server.reset()
    assert state_of(server, out) == before
    with pytest.raises(ClientError):
        logs.get_query_results(queryId=query)

    # the stack's delivery stream reads its Kinesis stream again, over the restored state
    kinesis.put_record(StreamName=out["StreamName"], Data=b'{"n": 2}', PartitionKey="a")
    server.advance(61)
    server.drain()
    keys = objects(server, out["BucketName"])
    assert len(keys) == 1
    body = server.client("s3").get_object(Bucket=out["BucketName"], Key=keys[0])["Body"].read()
    assert (gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body) == b'{"n": 2}'
