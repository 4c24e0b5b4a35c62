"""POST /publishtopic: publishes the request's message to the pub/sub topic."""

import json
import os

import boto3

sns = boto3.client("sns")


def lambda_handler(event, context):
    body = event.get("body") or ""
    try:
        message = json.loads(body).get("message", body)
    except (ValueError, AttributeError):
        message = body
    sns.publish(TopicArn=os.environ["TOPIC_ARN"], Message=str(message))
    return {"statusCode": 200, "body": json.dumps("A new message has been published")}
