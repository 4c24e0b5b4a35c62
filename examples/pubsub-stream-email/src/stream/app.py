"""Triggered by the table's stream (INSERT only): mails the new item's message through
the newItemOnDynamodb topic."""

import json
import os

import boto3

client = boto3.client("sns")


def lambda_handler(event, context):
    print("Lambda triggered by DynamoDB Stream.")
    item_data = event["Records"][0]["dynamodb"]["NewImage"]
    message = item_data["message"]["S"]
    print(item_data)
    try:
        response = client.publish(
            TopicArn=os.environ["NOTIFY_TOPIC_ARN"],
            Subject="Published From: getDataFromDynamodbStream",
            Message=message,
        )
        print(response)
        return {"statusCode": 200, "body": json.dumps(item_data)}
    except Exception as e:
        print(e)
        raise e
