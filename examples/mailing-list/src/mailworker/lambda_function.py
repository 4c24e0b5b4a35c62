"""mailworker (chapter 6, `mailcron`): every 5 minutes, one SNS message per 10 queued
addresses (rounded up), each naming the queue for the sendmail function."""

import math
import os

import boto3

sqs = boto3.resource("sqs")
sns = boto3.client("sns")


def lambda_handler(event, context):
    queue = sqs.get_queue_by_name(QueueName=os.environ["QUEUE_NAME"])
    n = int(queue.attributes.get("ApproximateNumberOfMessages"))
    for _ in range(math.ceil(n / 10)):
        sns.publish(TopicArn=os.environ["TOPIC_ARN"], Message=os.environ["QUEUE_NAME"])
    print(f"{n} queued, {math.ceil(n / 10)} published")
