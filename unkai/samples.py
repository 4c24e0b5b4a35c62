"""Sample events, as ``sam local generate-event`` prints them: the shape AWS hands a
handler for each trigger, with values a test can change (``unkai events generate``).

Each generator takes the common options (``region``, ``account``, ``body``) and its
own (``bucket``/``key``, ``queue``, ``topic``, ``table``, ``method``/``path``) and
returns the event as a dict, field for field as AWS documents it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

from unkai.config import ACCOUNT_ID

Options = dict[str, Any]


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def sqs_receive_message(o: Options) -> dict:
    body = o.get("body") or "Hello from SQS!"
    return {"Records": [{
        "messageId": str(uuid.uuid4()), "receiptHandle": "MessageReceiptHandle", "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1523232000000",
                       "SenderId": "123456789012", "ApproximateFirstReceiveTimestamp": "1523232000001"},
        "messageAttributes": {}, "md5OfBody": _md5(body), "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{o['region']}:{o['account']}:{o.get('queue') or 'MyQueue'}",
        "awsRegion": o["region"]}]}


def sns_notification(o: Options) -> dict:
    topic = f"arn:aws:sns:{o['region']}:{o['account']}:{o.get('topic') or 'ExampleTopic'}"
    return {"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": f"{topic}:{uuid.uuid4()}",
        "Sns": {"Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": topic,
                "Subject": "example subject", "Message": o.get("body") or "example message",
                "Timestamp": "1970-01-01T00:00:00.000Z", "SignatureVersion": "1", "Signature": "EXAMPLE",
                "SigningCertUrl": "EXAMPLE", "UnsubscribeUrl": "EXAMPLE",
                "MessageAttributes": {}}}]}


def _s3(o: Options, name: str) -> dict:
    bucket, key = o.get("bucket") or "example-bucket", o.get("key") or "test/key"
    obj: dict[str, Any] = {"key": key, "sequencer": "0A1B2C3D4E5F678901"}
    if name.startswith("ObjectCreated"):
        obj.update(size=1024, eTag="0123456789abcdef0123456789abcdef")
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": o["region"],
        "eventTime": "1970-01-01T00:00:00.000Z", "eventName": name,
        "userIdentity": {"principalId": "EXAMPLE"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "EXAMPLE123456789",
                             "x-amz-id-2": "EXAMPLE123/5678abcdefghijklambdaisawesome/mnopqrstuvwxyzABCDEFGH"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "testConfigRule",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": f"arn:aws:s3:::{bucket}"},
               "object": obj}}]}


def s3_put(o: Options) -> dict:
    return _s3(o, "ObjectCreated:Put")


def s3_delete(o: Options) -> dict:
    return _s3(o, "ObjectRemoved:Delete")


def dynamodb_update(o: Options) -> dict:
    table = o.get("table") or "ExampleTableWithStream"
    arn = f"arn:aws:dynamodb:{o['region']}:{o['account']}:table/{table}/stream/2015-06-27T00:48:05.899"

    def record(name: str, seq: str, keys: dict, new: dict | None, old: dict | None) -> dict:
        ddb: dict[str, Any] = {"Keys": keys, "SequenceNumber": seq, "SizeBytes": 26,
                               "StreamViewType": "NEW_AND_OLD_IMAGES", "ApproximateCreationDateTime": 1428537600}
        if new is not None:
            ddb["NewImage"] = new
        if old is not None:
            ddb["OldImage"] = old
        return {"eventID": str(uuid.uuid4().int)[:32], "eventName": name, "eventVersion": "1.1",
                "eventSource": "aws:dynamodb", "awsRegion": o["region"], "dynamodb": ddb, "eventSourceARN": arn}

    key = {"Id": {"N": "101"}}
    return {"Records": [
        record("INSERT", "111", key, {"Message": {"S": "New item!"}, "Id": {"N": "101"}}, None),
        record("MODIFY", "222", key, {"Message": {"S": "This item has changed"}, "Id": {"N": "101"}},
               {"Message": {"S": "New item!"}, "Id": {"N": "101"}}),
        record("REMOVE", "333", key, None, {"Message": {"S": "This item has changed"}, "Id": {"N": "101"}}),
    ]}


def apigateway_aws_proxy(o: Options) -> dict:
    method, path = (o.get("method") or "POST").upper(), o.get("path") or "/path/to/resource"
    body = o.get("body") or '{"test":"body"}'
    headers = {"Accept": "*/*", "Content-Type": "application/json", "Host": "1234567890.execute-api.localhost",
               "User-Agent": "Custom User Agent String", "X-Forwarded-Proto": "http"}
    return {
        "body": body, "resource": "/{proxy+}", "path": path, "httpMethod": method, "isBase64Encoded": False,
        "queryStringParameters": {"foo": "bar"}, "multiValueQueryStringParameters": {"foo": ["bar"]},
        "pathParameters": {"proxy": path.lstrip("/")}, "stageVariables": None,
        "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "requestContext": {
            "accountId": o["account"], "resourceId": "123456", "stage": "prod", "requestId": str(uuid.uuid4()),
            "requestTime": "09/Apr/2015:12:34:56 +0000", "requestTimeEpoch": 1428582896000,
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "Custom User Agent String", "accountId": None,
                         "apiKey": None, "caller": None, "user": None, "userArn": None},
            "path": f"/prod{path}", "resourcePath": "/{proxy+}", "httpMethod": method, "apiId": "1234567890",
            "protocol": "HTTP/1.1"},
    }


def apigateway_http_api_proxy(o: Options) -> dict:
    method, path = (o.get("method") or "POST").upper(), o.get("path") or "/path/to/resource"
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "parameter1=value1",
        "cookies": ["cookie1", "cookie2"], "headers": {"header1": "value1", "content-type": "application/json"},
        "queryStringParameters": {"parameter1": "value1"},
        "requestContext": {
            "accountId": o["account"], "apiId": "api-id", "domainName": "api-id.execute-api.localhost",
            "domainPrefix": "api-id", "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                               "sourceIp": "127.0.0.1", "userAgent": "agent"},
            "requestId": "id", "routeKey": "$default", "stage": "$default", "time": "12/Mar/2020:19:03:58 +0000",
            "timeEpoch": 1583348638390},
        "body": o.get("body") or '{"test":"body"}', "pathParameters": {}, "isBase64Encoded": False,
        "stageVariables": {},
    }


def cloudwatch_scheduled_event(o: Options) -> dict:
    return {"id": "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": o["account"], "time": "1970-01-01T00:00:00Z", "region": o["region"],
            "resources": [f"arn:aws:events:{o['region']}:{o['account']}:rule/ExampleRule"], "detail": {},
            "version": "0"}


def eventbridge_event(o: Options) -> dict:
    detail = json.loads(o["body"]) if o.get("body") else {"key": "value"}
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Example", "source": "com.example",
            "account": o["account"], "time": "1970-01-01T00:00:00Z", "region": o["region"], "resources": [],
            "detail": detail}


def kinesis_get_records(o: Options) -> dict:
    data = base64.b64encode((o.get("body") or "Hello, this is a test.").encode()).decode()
    return {"Records": [{"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "1",
                                     "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
                                     "data": data, "approximateArrivalTimestamp": 1545084650.987},
                         "eventSource": "aws:kinesis", "eventVersion": "1.0",
                         "eventID": "shardId-000000000006:49590338271490256608559692538361571095921575989136588898",
                         "eventName": "aws:kinesis:record", "invokeIdentityArn": "arn:aws:iam::123456789012:role/role",
                         "awsRegion": o["region"],
                         "eventSourceARN": f"arn:aws:kinesis:{o['region']}:{o['account']}:stream/example"}]}


# (service, event) -> generator, named as `sam local generate-event` names them
SAMPLES: dict[str, dict[str, Callable[[Options], dict]]] = {
    "apigateway": {"aws-proxy": apigateway_aws_proxy, "http-api-proxy": apigateway_http_api_proxy},
    "cloudwatch": {"scheduled-event": cloudwatch_scheduled_event},
    "dynamodb": {"update": dynamodb_update},
    "eventbridge": {"event": eventbridge_event},
    "kinesis": {"get-records": kinesis_get_records},
    "s3": {"put": s3_put, "delete": s3_delete},
    "sns": {"notification": sns_notification},
    "sqs": {"receive-message": sqs_receive_message},
}


def generate(service: str, event: str | None = None, **options: Any) -> dict:
    """The sample event; KeyError naming what exists when there is no such sample."""
    events = SAMPLES.get(service)
    if events is None:
        raise KeyError(f"no sample events for {service!r}; there are: {', '.join(SAMPLES)}")
    if event is None:
        if len(events) > 1:
            raise KeyError(f"{service} has several sample events; name one: {', '.join(events)}")
        event = next(iter(events))
    if event not in events:
        raise KeyError(f"{service} has no sample event {event!r}; there are: {', '.join(events)}")
    options.setdefault("account", ACCOUNT_ID)
    return events[event](options)
