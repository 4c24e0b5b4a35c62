"""Drains the subscriber queue: each SNS message becomes an item in the table."""

import json
import os
import uuid

import boto3

table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def lambda_handler(event, context):
    for record in event["Records"]:
        envelope = json.loads(record["body"])
        table.put_item(Item={"id": str(uuid.uuid4()), "message": envelope["Message"]})
