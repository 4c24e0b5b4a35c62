"""bounce (chapter 6): SES's Bounce notification, delivered by SNS, marks each bounced
address haserror = 1 in the mailaddress table, so the next mailing skips it."""

import json
import os

import boto3

dynamodb = boto3.resource("dynamodb", region_name=os.environ.get("TABLE_REGION"))


def lambda_handler(event, context):
    table = dynamodb.Table(os.environ["TABLE_NAME"])
    for rec in event["Records"]:
        message = json.loads(rec["Sns"]["Message"])
        if message.get("notificationType") != "Bounce":
            continue
        for r in message["bounce"]["bouncedRecipients"]:
            table.update_item(Key={"email": r["emailAddress"]}, UpdateExpression="set haserror = :val",
                              ExpressionAttributeValues={":val": 1})
            print(f"bounced: {r['emailAddress']}")
