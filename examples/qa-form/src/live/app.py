"""Shares questions live: the instructor page keeps a WebSocket open, and every new
row of the qa table (from its DynamoDB stream) is pushed to every open connection."""

import json
import logging
import os

import boto3
from boto3.dynamodb.types import TypeDeserializer

logger = logging.getLogger()
logger.setLevel(logging.INFO)

connections = boto3.resource("dynamodb").Table(os.environ["CONNECTIONS_TABLE"])
# Made once per execution environment: creating a client costs more than most calls.
management = boto3.client("apigatewaymanagementapi", endpoint_url=os.environ.get("WEBSOCKET_ENDPOINT")) \
    if os.environ.get("WEBSOCKET_ENDPOINT") else None
deserialize = TypeDeserializer().deserialize


def connect(event, context):
    connections.put_item(Item={"connection_id": event["requestContext"]["connectionId"]})
    return {"statusCode": 200}


def disconnect(event, context):
    connections.delete_item(Key={"connection_id": event["requestContext"]["connectionId"]})
    return {"statusCode": 200}


def broadcast(event, context):
    questions = []
    for record in event["Records"]:
        if record["eventName"] != "INSERT":
            continue
        image = record["dynamodb"]["NewImage"]
        questions.append({k: deserialize(v) for k, v in image.items()})
    if not questions:
        return
    api = management
    targets = [item["connection_id"] for item in connections.scan(ProjectionExpression="connection_id")["Items"]]
    for question in questions:
        data = json.dumps({"type": "question", "question": question}, ensure_ascii=False, default=str).encode()
        for connection_id in targets:
            try:
                api.post_to_connection(ConnectionId=connection_id, Data=data)
            except api.exceptions.GoneException:
                logger.info("connection %s is gone", connection_id)
                connections.delete_item(Key={"connection_id": connection_id})
