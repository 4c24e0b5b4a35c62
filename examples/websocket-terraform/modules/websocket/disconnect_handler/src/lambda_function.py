"""$disconnect: forget the connection (found through the ws_connection_id-index GSI)."""

import os

import boto3
from boto3.dynamodb.conditions import Key

table = boto3.resource("dynamodb").Table(os.environ.get("TABLE_NAME", "connection"))


def lambda_handler(event, context):
    connection_id = event["requestContext"]["connectionId"]
    found = table.query(IndexName="ws_connection_id-index",
                        KeyConditionExpression=Key("ws_connection_id").eq(connection_id))
    for item in found["Items"]:
        table.delete_item(Key={"id": item["id"]})
    return {"statusCode": 200}
