"""An order workflow as a durable function: each step runs once, the wait and the approval
suspend the function (no compute while waiting), and a replay picks up where it stopped."""

import json
import os

import boto3
from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, WaitForCallbackConfig

sqs = boto3.client("sqs")
orders = boto3.resource("dynamodb").Table(os.environ["ORDERS_TABLE"])


def reserve(order: str, amount: int) -> int:
    orders.put_item(Item={"id": order, "status": "reserved", "amount": amount})
    return amount


def ask_for_approval(order: str, callback_id: str) -> None:
    sqs.send_message(QueueUrl=os.environ["APPROVAL_QUEUE_URL"],
                     MessageBody=json.dumps({"order": order, "callbackId": callback_id}))


@durable_execution
def handler(event, context: DurableContext):
    order = event["order"]
    reserved = context.step(lambda _: reserve(order, event["amount"]), name="reserve")
    context.wait(Duration.from_seconds(300), name="cool-off")
    answer = context.wait_for_callback(lambda callback_id, _: ask_for_approval(order, callback_id), name="approval",
                                       config=WaitForCallbackConfig(timeout=Duration.from_hours(24)))
    status = "shipped" if json.loads(answer).get("approved") else "rejected"
    context.step(lambda _: orders.update_item(Key={"id": order}, UpdateExpression="SET #s = :s",
                                              ExpressionAttributeNames={"#s": "status"},
                                              ExpressionAttributeValues={":s": status}) and None, name="record")
    return {"order": order, "status": status, "reserved": reserved}
