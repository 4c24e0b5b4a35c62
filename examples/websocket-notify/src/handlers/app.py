"""Real-time notices over an API Gateway WebSocket API.

$connect stores the connection, $disconnect forgets it, and the `sendmessage` route
broadcasts a notice to every open connection, dropping the ones that are gone."""

import json
import os
import uuid

import boto3
from boto3.dynamodb.conditions import Key

table = boto3.resource("dynamodb").Table(os.environ.get("TABLE_NAME", "connection"))


def connect_handler(event, context):
    connection_id = event["requestContext"]["connectionId"]
    table.put_item(Item={"id": str(uuid.uuid4()), "ws_connection_id": connection_id})
    return {"statusCode": 200}


def disconnect_handler(event, context):
    connection_id = event["requestContext"]["connectionId"]
    found = table.query(IndexName="ws_connection_id-index",
                        KeyConditionExpression=Key("ws_connection_id").eq(connection_id))
    for item in found["Items"]:
        table.delete_item(Key={"id": item["id"]})
    return {"statusCode": 200}


def send_message_handler(event, context):
    ctx = event["requestContext"]
    body = json.loads(event.get("body") or "{}")
    notice = json.dumps({"from": ctx["connectionId"], "message": body.get("message", "")}, ensure_ascii=False)
    api = boto3.client("apigatewaymanagementapi", endpoint_url=f"https://{ctx['domainName']}/{ctx['stage']}")
    delivered = 0
    for item in table.scan()["Items"]:
        try:
            api.post_to_connection(ConnectionId=item["ws_connection_id"], Data=notice.encode())
            delivered += 1
        except api.exceptions.GoneException:
            table.delete_item(Key={"id": item["id"]})
    return {"statusCode": 200, "body": json.dumps({"delivered": delivered})}
