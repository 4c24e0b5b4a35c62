"""The task table (TASK_TABLE_NAME): started and finished rows."""

import os
import time

import boto3

TABLE = boto3.resource("dynamodb").Table(os.environ["TASK_TABLE_NAME"])


def started(task_uuid, hub_uuid):
    TABLE.put_item(Item={"task_uuid": task_uuid, "hub_uuid": hub_uuid or "-", "status": "started",
                         "started_at": int(time.time())})


def finished(task_uuid, reason):
    TABLE.update_item(Key={"task_uuid": task_uuid},
                      UpdateExpression="SET #s = :s, reason = :r, finished_at = :t",
                      ExpressionAttributeNames={"#s": "status"},
                      ExpressionAttributeValues={":s": "finished", ":r": reason, ":t": int(time.time())})
