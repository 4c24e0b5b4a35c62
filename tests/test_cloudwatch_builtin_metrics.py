"""The metrics unkai's own services emit as AWS does, read back through CloudWatch:
AWS/SQS, AWS/SNS (published, delivered, failed), AWS/ApiGateway (REST and HTTP APIs,
IntegrationLatency), AWS/DynamoDB (latency, consumed capacity) and Lambda's Throttles,
AsyncEventsDropped, DeadLetterErrors and ConcurrentExecutions. The module has its own server, whose
clock stays on wall time (the session's server is moved forward by other tests)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.lambda_code import deploy
from unkai.testing import UnkaiServer, new_queue


@pytest.fixture(scope="module")
def unkai(tmp_path_factory):
    server = UnkaiServer(tmp_path_factory.mktemp("metrics") / "state").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cw(unkai):
    return unkai.client("cloudwatch")


def stat(unkai, cw, namespace: str, name: str, dims: dict[str, str], statistic: str = "Sum") -> tuple[float, str]:
    """The statistic over the last and next hour, and the unit it came with."""
    now = time.time()  # this module's server never moves its clock
    out = cw.get_metric_statistics(
        Namespace=namespace, MetricName=name, Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        StartTime=now - 3600, EndTime=now + 3600, Period=7200, Statistics=[statistic])
    points = out["Datapoints"]
    return (points[0][statistic], points[0]["Unit"]) if points else (0.0, "")


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_sqs_and_sns_count_messages_per_queue_and_topic(unkai, cw):
    sqs, sns = unkai.client("sqs"), unkai.client("sns")
    url, arn = new_queue(sqs)
    name = arn.rsplit(":", 1)[1]
    sqs.send_message(QueueUrl=url, MessageBody="one")
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "two"}, {"Id": "b", "MessageBody": "3"}])
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    for m in got[:2]:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    topic = sns.create_topic(Name=f"t-{uuid.uuid4().hex[:8]}")["TopicArn"]
    sns.publish(TopicArn=topic, Message="hello")
    sns.publish(TopicArn=topic, Message="again")

    q = {"QueueName": name}
    assert stat(unkai, cw, "AWS/SQS", "NumberOfMessagesSent", q) == (3.0, "Count")
    assert stat(unkai, cw, "AWS/SQS", "NumberOfMessagesReceived", q)[0] == float(len(got))
    assert stat(unkai, cw, "AWS/SQS", "NumberOfMessagesDeleted", q) == (2.0, "Count")
    t = {"TopicName": topic.rsplit(":", 1)[1]}
    assert stat(unkai, cw, "AWS/SNS", "NumberOfMessagesPublished", t) == (2.0, "Count")
    assert stat(unkai, cw, "AWS/SNS", "PublishSize", t, "Maximum") == (5.0, "Bytes")
    listed = cw.list_metrics(Namespace="AWS/SQS", Dimensions=[{"Name": "QueueName", "Value": name}])["Metrics"]
    assert {m["MetricName"] for m in listed} == {"NumberOfMessagesSent", "NumberOfMessagesReceived",
                                                 "NumberOfMessagesDeleted"}


def test_dynamodb_successful_request_latency_per_table_and_operation(unkai, cw):
    ddb = unkai.client("dynamodb")
    table = f"t-{uuid.uuid4().hex[:8]}"
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    ddb.put_item(TableName=table, Item={"pk": {"S": "a"}})
    ddb.get_item(TableName=table, Key={"pk": {"S": "a"}})
    ddb.get_item(TableName=table, Key={"pk": {"S": "b"}})
    with pytest.raises(ClientError):  # a failed request is not a successful one
        ddb.get_item(TableName=table, Key={"nope": {"S": "a"}})
    gets = stat(unkai, cw, "AWS/DynamoDB", "SuccessfulRequestLatency", {"TableName": table, "Operation": "GetItem"},
                "SampleCount")
    assert gets == (2.0, "Milliseconds")
    puts = stat(unkai, cw, "AWS/DynamoDB", "SuccessfulRequestLatency", {"TableName": table, "Operation": "PutItem"},
                "SampleCount")
    assert puts[0] == 1.0


def test_api_gateway_counts_requests_errors_and_latency(unkai, cw):
    ag, v2 = unkai.client("apigateway"), unkai.client("apigatewayv2")
    name = f"rest-{uuid.uuid4().hex[:8]}"
    rest = ag.create_rest_api(name=name)
    root = rest["rootResourceId"]
    ag.put_method(restApiId=rest["id"], resourceId=root, httpMethod="GET", authorizationType="NONE")
    ag.put_integration(restApiId=rest["id"], resourceId=root, httpMethod="GET", type="MOCK",
                       requestTemplates={"application/json": '{"statusCode": 200}'})
    ag.put_method_response(restApiId=rest["id"], resourceId=root, httpMethod="GET", statusCode="200")
    ag.put_integration_response(restApiId=rest["id"], resourceId=root, httpMethod="GET", statusCode="200",
                                responseTemplates={"application/json": "{}"})
    ag.create_deployment(restApiId=rest["id"], stageName="prod")
    base = unkai.url(f"/_unkai/execute-api/{rest['id']}/prod")
    assert get(base + "/") == 200
    assert get(base + "/") == 200
    assert get(base + "/missing") == 403  # no such resource: API Gateway's Missing Authentication Token
    dims = {"ApiName": name, "Stage": "prod"}
    assert stat(unkai, cw, "AWS/ApiGateway", "Count", dims) == (3.0, "Count")
    assert stat(unkai, cw, "AWS/ApiGateway", "4XXError", dims) == (1.0, "Count")
    assert stat(unkai, cw, "AWS/ApiGateway", "5XXError", dims) == (0.0, "Count")
    assert stat(unkai, cw, "AWS/ApiGateway", "Latency", {"ApiName": name}, "SampleCount") == (3.0, "Milliseconds")
    # only the two requests that reached the (MOCK) integration have an integration latency
    assert stat(unkai, cw, "AWS/ApiGateway", "IntegrationLatency", dims, "SampleCount") == (2.0, "Milliseconds")

    http = v2.create_api(Name=f"http-{uuid.uuid4().hex[:8]}", ProtocolType="HTTP")
    v2.create_stage(ApiId=http["ApiId"], StageName="$default", AutoDeploy=True)
    assert get(unkai.url(f"/_unkai/execute-api/{http['ApiId']}/$default/nothing")) == 404
    hdims = {"ApiId": http["ApiId"], "Stage": "$default"}
    assert stat(unkai, cw, "AWS/ApiGateway", "Count", hdims) == (1.0, "Count")
    assert stat(unkai, cw, "AWS/ApiGateway", "4xx", hdims) == (1.0, "Count")
    assert stat(unkai, cw, "AWS/ApiGateway", "5xx", hdims) == (0.0, "Count")


def test_lambda_throttles_and_dropped_async_events(unkai, cw):
    lam, sqs = unkai.client("lambda"), unkai.client("sqs")
    _, dlq = new_queue(sqs)
    name = deploy(lam, """
        def handler(event, context):
            raise ValueError("always")
    """, DeadLetterConfig={"TargetArn": dlq})
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    deadline = time.monotonic() + 30
    fn = {"FunctionName": name}
    while stat(unkai, cw, "AWS/Lambda", "AsyncEventsDropped", fn)[0] < 1 and time.monotonic() < deadline:
        unkai.drain()
    assert stat(unkai, cw, "AWS/Lambda", "AsyncEventsDropped", fn) == (1.0, "Count")
    assert stat(unkai, cw, "AWS/Lambda", "DeadLetterErrors", fn) == (0.0, "Count")

    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    once = unkai.client("lambda", config=Config(retries={"total_max_attempts": 1}))  # boto3 retries throttles
    with pytest.raises(ClientError) as exc:
        once.invoke(FunctionName=name, Payload=b"{}")
    assert exc.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert stat(unkai, cw, "AWS/Lambda", "Throttles", fn) == (1.0, "Count")


def test_sns_counts_notifications_delivered_and_failed_per_topic(unkai, cw):
    sqs, sns = unkai.client("sqs"), unkai.client("sns")
    topic = sns.create_topic(Name=f"t-{uuid.uuid4().hex[:8]}")["TopicArn"]
    url, kept = new_queue(sqs)
    gone_url, gone = new_queue(sqs)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=kept)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=gone)
    lam = unkai.client("lambda")
    fn = deploy(lam, "def handler(event, context):\n    return None\n")
    sns.subscribe(TopicArn=topic, Protocol="lambda",
                  Endpoint=lam.get_function(FunctionName=fn)["Configuration"]["FunctionArn"])
    sqs.delete_queue(QueueUrl=gone_url)  # its subscription can no longer be delivered to
    sns.publish(TopicArn=topic, Message="one")
    sns.publish(TopicArn=topic, Message="two")
    unkai.drain(timeout=60)
    t = {"TopicName": topic.rsplit(":", 1)[1]}
    # the queue and the function got both messages; the deleted queue got neither
    assert stat(unkai, cw, "AWS/SNS", "NumberOfNotificationsDelivered", t) == (4.0, "Count")
    assert stat(unkai, cw, "AWS/SNS", "NumberOfNotificationsFailed", t) == (2.0, "Count")
    assert len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]) == 2


def test_dynamodb_consumed_capacity_per_table_and_global_index(unkai, cw):
    ddb = unkai.client("dynamodb")
    table = f"t-{uuid.uuid4().hex[:8]}"
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "g", "AttributeType": "S"}],
                     GlobalSecondaryIndexes=[{"IndexName": "by-g", "KeySchema": [{"AttributeName": "g",
                                                                                   "KeyType": "HASH"}],
                                              "Projection": {"ProjectionType": "ALL"}}],
                     BillingMode="PAY_PER_REQUEST")
    put = ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "g": {"S": "x"}, "blob": {"S": "z" * 1500}})
    assert "ConsumedCapacity" not in put  # not asked for: not answered, though counted
    ddb.put_item(TableName=table, Item={"pk": {"S": "b"}, "g": {"S": "x"}})
    got = ddb.get_item(TableName=table, Key={"pk": {"S": "b"}}, ReturnConsumedCapacity="TOTAL")
    assert got["ConsumedCapacity"] == {"TableName": table, "CapacityUnits": 0.5}
    ddb.get_item(TableName=table, Key={"pk": {"S": "a"}}, ConsistentRead=True)
    ddb.query(TableName=table, IndexName="by-g", KeyConditionExpression="g = :g",
              ExpressionAttributeValues={":g": {"S": "x"}})
    tdims = {"TableName": table}
    assert stat(unkai, cw, "AWS/DynamoDB", "ConsumedWriteCapacityUnits", tdims) == (3.0, "Count")  # 2 KB + 1 KB
    assert stat(unkai, cw, "AWS/DynamoDB", "ConsumedReadCapacityUnits", tdims)[0] == 1.5  # 0.5 + 1 (consistent)
    index = stat(unkai, cw, "AWS/DynamoDB", "ConsumedReadCapacityUnits", {**tdims, "GlobalSecondaryIndexName": "by-g"})
    assert index == (0.5, "Count")


def test_lambda_concurrent_executions_is_the_peak_of_invocations_in_flight(unkai, cw):
    lam, sqs = unkai.client("lambda"), unkai.client("sqs")
    url, _ = new_queue(sqs)
    # Each invocation announces itself on the queue and waits until it sees the other one: both run at once.
    name = deploy(lam, f"""
        import boto3
        def handler(event, context):
            sqs = boto3.client("sqs")
            sqs.send_message(QueueUrl={url!r}, MessageBody=context.aws_request_id)
            seen = set()
            for _ in range(120):
                for m in sqs.receive_message(QueueUrl={url!r}, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                             WaitTimeSeconds=1).get("Messages", []):
                    seen.add(m["Body"])
                if len(seen) >= 2:
                    return len(seen)
            return len(seen)
    """, Timeout=150)
    answers: list[int] = []
    # one attempt each, however long the other one's cold start takes on a loaded machine
    once = unkai.client("lambda", config=Config(read_timeout=180, retries={"total_max_attempts": 1}))

    def invoke() -> None:
        answers.append(json.loads(once.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()))

    threads = [threading.Thread(target=invoke) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(200)
    assert answers == [2, 2]
    assert stat(unkai, cw, "AWS/Lambda", "ConcurrentExecutions", {"FunctionName": name}, "Maximum") == (2.0, "Count")
    assert stat(unkai, cw, "AWS/Lambda", "ConcurrentExecutions", {}, "Maximum")[0] >= 2.0
    # the function has no reserved concurrency: both count in the account's unreserved pool
    assert stat(unkai, cw, "AWS/Lambda", "UnreservedConcurrentExecutions", {}, "Maximum")[0] >= 2.0
