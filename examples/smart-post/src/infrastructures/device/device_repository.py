"""The HUB-Device table (DEVICE_TABLE_NAME): the only code that reads or writes it."""

import os
import time

import boto3

TABLE = boto3.resource("dynamodb").Table(os.environ["DEVICE_TABLE_NAME"])


def get(device_id):
    return TABLE.get_item(Key={"device_id": device_id}).get("Item")


def register_hub(device_id, hub_uuid, certificate_id):
    TABLE.update_item(
        Key={"device_id": device_id},
        UpdateExpression="SET hub_uuid = :h, certificate_id = :c, #s = :s, updated_at = :t",
        ConditionExpression="attribute_exists(device_id) AND attribute_not_exists(hub_uuid)",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":h": hub_uuid, ":c": certificate_id, ":s": "REGISTERED", ":t": int(time.time())},
    )
