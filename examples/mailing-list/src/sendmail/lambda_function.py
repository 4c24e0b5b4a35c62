"""sendmail (chapter 6): receives up to 10 queued addresses and mails each the uploaded
body through SES. SQS delivers at least once, so an `issend` flag set with
ReturnValues=UPDATED_OLD makes a duplicate log "Resend Skip" instead of mailing twice.
(The book splits the file with split("\\n", 3) and keeps only the first body line; here
the whole body after the blank line is sent.)"""

import os

import boto3

sqs = boto3.resource("sqs")
s3 = boto3.resource("s3")
dynamodb = boto3.resource("dynamodb")
ses = boto3.client("ses", region_name=os.environ.get("SES_REGION", "us-east-1"))

MAILFROM = os.environ["MAILFROM"]


def lambda_handler(event, context):
    for rec in event["Records"]:
        queue = sqs.get_queue_by_name(QueueName=rec["Sns"]["Message"])
        table = dynamodb.Table(os.environ["TABLE_NAME"])
        messages = queue.receive_messages(MessageAttributeNames=["All"], MaxNumberOfMessages=10)
        for m in messages:
            email = m.body
            attrs = m.message_attributes
            bucketname = attrs["bucketname"]["StringValue"]
            filename = attrs["filename"]["StringValue"]
            username = attrs["username"]["StringValue"]

            text = s3.Object(bucketname, filename).get()["Body"].read().decode("utf-8")
            subject, _, body = text.partition("\n")
            body = body.lstrip("\n")

            response = table.update_item(Key={"email": email}, UpdateExpression="set issend = :val",
                                         ExpressionAttributeValues={":val": 1}, ReturnValues="UPDATED_OLD")
            if response.get("Attributes", {}).get("issend") == 0:
                ses.send_email(
                    Source=MAILFROM,
                    ReplyToAddresses=[MAILFROM],
                    Destination={"ToAddresses": [email]},
                    Message={
                        "Subject": {"Data": subject, "Charset": "UTF-8"},
                        "Body": {"Text": {"Data": body.replace("{username}", username), "Charset": "UTF-8"}},
                    },
                )
            else:
                print("Resend Skip")
            m.delete()
