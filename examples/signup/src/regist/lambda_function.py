"""The book's regist function (chapter 5, listings 5-6 and 5-9): the form's POST through a
Lambda proxy integration. It takes the next id from the `sequence` counter, stores the
user, mails a presigned link to the private file through SES, and answers HTML (or JSON
with the CORS header for the AJAX form)."""

import decimal
import json
import os
import time
import traceback
import urllib.parse

import boto3

dynamodb = boto3.resource("dynamodb")

MAILFROM = os.environ["MAILFROM"]
SES_REGION = os.environ.get("SES_REGION", "us-east-1")
SECRET_BUCKET = os.environ["SECRET_BUCKET"]
ALLOW_ORIGIN = os.environ.get("ALLOW_ORIGIN", "")

PAGE = '<!DOCTYPE html><html><head><meta charset="UTF-8"></head><body>{0}</body></html>'


def sendmail(to, subject, body):
    client = boto3.client("ses", region_name=SES_REGION)
    client.send_email(
        Source=MAILFROM,
        ReplyToAddresses=[MAILFROM],
        Destination={"ToAddresses": [to]},
        Message={
            "Subject": {"Data": subject, "Charset": "UTF-8"},
            "Body": {"Text": {"Data": body, "Charset": "UTF-8"}},
        },
    )


def next_seq(table, tablename):
    """The atomic counter: gaps are fine, duplicates impossible."""
    response = table.update_item(
        Key={"tablename": tablename},
        UpdateExpression="set seq = seq + :val",
        ExpressionAttributeValues={":val": 1},
        ReturnValues="UPDATED_NEW",
    )
    return response["Attributes"]["seq"]


def regist(event):
    param = urllib.parse.parse_qs(event["body"] or "")
    username = param["username"][0]
    email = param["email"][0]
    host = event["requestContext"]["identity"]["sourceIp"]

    nextseq = next_seq(dynamodb.Table("sequence"), "user")
    now = time.time()

    s3 = boto3.client("s3")
    url = s3.generate_presigned_url(
        ClientMethod="get_object",
        Params={"Bucket": SECRET_BUCKET, "Key": "special.pdf"},
        ExpiresIn=48 * 60 * 60,
        HttpMethod="GET",
    )

    dynamodb.Table("user").put_item(
        Item={
            "id": nextseq,
            "username": username,
            "email": email,
            "accepted_at": decimal.Decimal(str(now)),
            "host": host,
            "url": url,
        }
    )

    mailbody = """
{0}様

ご登録ありがとうございました。
下記のURLからダウンロードできます。

{1}
""".format(username, url)
    sendmail(email, "登録ありがとうございました", mailbody)


def lambda_handler(event, context):
    ajax = event.get("resource", "").endswith("-ajax")
    try:
        regist(event)
    except Exception:
        traceback.print_exc()
        if ajax:
            return _json({"result": 0, "message": "内部エラーが発生しました。"}, 500)
        return {"statusCode": 500, "headers": {"content-type": "text/html"},
                "body": PAGE.format("内部エラーが発生しました。")}
    if ajax:
        return _json({"result": 1})
    return {"statusCode": 200, "headers": {"content-type": "text/html"},
            "body": PAGE.format("登録ありがとうございました。")}


def _json(body, status=200):
    return {
        "statusCode": status,
        "headers": {"access-control-allow-origin": ALLOW_ORIGIN, "content-type": "application/json"},
        "body": json.dumps(body),
    }
