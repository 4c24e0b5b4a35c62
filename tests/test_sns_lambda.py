"""SNS -> Lambda from SNS's side: the event a handler gets is signed like AWS's (verified
with the certificate at SigningCertUrl), its UnsubscribeUrl works, Subject is null when
the publish has none, and filter policies decide which publishes invoke the function.
(Asynchronous retries and DLQs are Lambda's: tests/test_event_source_sns.py.)"""

from __future__ import annotations

import json

from lambda_code import deploy

from sns_support import name, sns  # noqa: F401 (fixture)
from test_sns_delivery import get, verify_signature

PRINTER = """
import json
def handler(event, context):
    print('EVENT ' + json.dumps(event))
"""


def events(unkai, function: str) -> list[dict]:
    logs = unkai.client("logs")
    found = logs.filter_log_events(logGroupName=f"/aws/lambda/{function}", filterPattern="EVENT")["events"]
    return [json.loads(e["message"].split(" ", 1)[1]) for e in found]


def test_lambda_event_is_signed_and_filtered(unkai, sns):
    lam = unkai.client("lambda")
    function = deploy(lam, PRINTER)
    function_arn = lam.get_function_configuration(FunctionName=function)["FunctionArn"]
    topic = sns.create_topic(Name=name())["TopicArn"]
    sub = sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=function_arn, ReturnSubscriptionArn=True,
                        Attributes={"FilterPolicy": json.dumps({"kind": [{"anything-but": "noise"}]})}
                        )["SubscriptionArn"]
    sent = sns.publish(TopicArn=topic, Message="no subject", MessageAttributes={
        "kind": {"DataType": "String", "StringValue": "signal"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x01\x02"}})
    sns.publish(TopicArn=topic, Message="filtered out",
                MessageAttributes={"kind": {"DataType": "String", "StringValue": "noise"}})
    unkai.drain()
    (event,) = events(unkai, function)
    (record,) = event["Records"]
    assert record["EventSubscriptionArn"] == sub
    got = record["Sns"]
    assert got["MessageId"] == sent["MessageId"] and got["Message"] == "no subject" and got["Subject"] is None
    assert got["MessageAttributes"] == {"kind": {"Type": "String", "Value": "signal"},
                                        "blob": {"Type": "Binary", "Value": "AQI="}}
    assert "SigningCertURL" not in got and "UnsubscribeURL" not in got  # the Lambda event's own casing
    verify_signature({k: v for k, v in got.items() if v is not None})
    assert get(got["UnsubscribeUrl"])[0] == 200
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
