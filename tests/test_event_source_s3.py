"""S3 -> Lambda through the `lambda.invoke` job kind, and function code from S3."""

from __future__ import annotations

import json
import uuid

import pytest
from lambda_code import ROLE, deploy, zip_of


@pytest.fixture(scope="module")
def clients(unkai):
    return unkai.client("lambda"), unkai.client("s3")


def test_object_created_invokes_the_function(clients, unkai):
    lam, s3 = clients
    name = deploy(lam, "import json\ndef handler(e, c):\n    print('EVENT ' + json.dumps(e))\n")
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    lam.add_permission(FunctionName=name, StatementId="s3", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")
    bucket = f"b-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "LambdaFunctionConfigurations": [{"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    s3.put_object(Bucket=bucket, Key="myface.png", Body=b"png-bytes")
    unkai.drain()
    found = unkai.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}", filterPattern="EVENT")["events"]
    events = [json.loads(e["message"].split(" ", 1)[1]) for e in found]
    records = [r for e in events for r in e.get("Records", [])]
    assert len(records) == 1
    record = records[0]
    assert record["eventSource"] == "aws:s3" and record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == bucket and record["s3"]["object"]["key"] == "myface.png"
    assert record["s3"]["object"]["size"] == 9


def test_function_code_from_s3(clients):
    lam, s3 = clients
    bucket = f"code-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="fn.zip", Body=zip_of({"app.py": "def handler(e, c):\n    return 'from s3'\n"}))
    name = f"s3code-{uuid.uuid4().hex[:8]}"
    lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                        Code={"S3Bucket": bucket, "S3Key": "fn.zip"})
    assert json.loads(lam.invoke(FunctionName=name)["Payload"].read()) == "from s3"
    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.create_function(FunctionName=name + "x", Runtime="python3.11", Role=ROLE, Handler="app.handler",
                            Code={"S3Bucket": bucket, "S3Key": "missing.zip"})
