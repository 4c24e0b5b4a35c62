"""sendqueue (chapter 6): an uploaded mail body queues one message per address whose
haserror is 0, with the file's location in three String message attributes, and marks
each address not yet sent (issend = 0)."""

import os

import boto3
from boto3.dynamodb.conditions import Key

sqs = boto3.resource("sqs")
dynamodb = boto3.resource("dynamodb")


def lambda_handler(event, context):
    queue = sqs.get_queue_by_name(QueueName=os.environ["QUEUE_NAME"])
    table = dynamodb.Table(os.environ["TABLE_NAME"])
    for rec in event["Records"]:
        bucketname = rec["s3"]["bucket"]["name"]
        filename = rec["s3"]["object"]["key"]

        response = table.query(IndexName="haserror-index", KeyConditionExpression=Key("haserror").eq(0))
        items = response["Items"]
        while "LastEvaluatedKey" in response:
            response = table.query(IndexName="haserror-index", KeyConditionExpression=Key("haserror").eq(0),
                                   ExclusiveStartKey=response["LastEvaluatedKey"])
            items += response["Items"]

        for item in items:
            table.update_item(Key={"email": item["email"]}, UpdateExpression="set issend = :val",
                              ExpressionAttributeValues={":val": 0})
            queue.send_message(
                MessageBody=item["email"],
                MessageAttributes={
                    "username": {"DataType": "String", "StringValue": item["username"]},
                    "bucketname": {"DataType": "String", "StringValue": bucketname},
                    "filename": {"DataType": "String", "StringValue": filename},
                },
            )
