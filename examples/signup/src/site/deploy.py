"""A CloudFormation custom resource that sets the signup site up: the pages (with the
API's URL written into the form), the private special.pdf in the secret bucket, and the
`sequence` table's seed row {tablename: user, seq: 0} (kept when it already exists)."""

import json
import logging
import mimetypes
import os
import urllib.request

import boto3

logger = logging.getLogger()
logger.setLevel(logging.INFO)

s3 = boto3.client("s3")
dynamodb = boto3.client("dynamodb")
PUBLIC = os.path.join(os.path.dirname(__file__), "public")
SPECIAL_PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\n"
               b"trailer<</Root 1 0 R>>\n%%EOF\n")


def respond(event, context, status, reason=""):
    body = json.dumps({
        "Status": status,
        "Reason": reason or f"See CloudWatch log stream {context.log_stream_name}",
        "PhysicalResourceId": event.get("PhysicalResourceId") or f"site-{event['ResourceProperties']['Bucket']}",
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": {},
    }).encode()
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT",
                                     headers={"Content-Type": "", "Content-Length": str(len(body))})
    with urllib.request.urlopen(request, timeout=30) as response:
        logger.info("CloudFormation answered %s", response.status)


def publish(props):
    for name in sorted(os.listdir(PUBLIC)):
        with open(os.path.join(PUBLIC, name), "rb") as f:
            body = f.read().replace(b"{{REGIST_URL}}", props["RegistUrl"].encode())
        content_type = (mimetypes.guess_type(name)[0] or "application/octet-stream") + "; charset=utf-8"
        s3.put_object(Bucket=props["Bucket"], Key=name, Body=body, ContentType=content_type)
    s3.put_object(Bucket=props["SecretBucket"], Key="special.pdf", Body=SPECIAL_PDF, ContentType="application/pdf")
    try:
        dynamodb.put_item(TableName=props["SequenceTable"], Item={"tablename": {"S": "user"}, "seq": {"N": "0"}},
                          ConditionExpression="attribute_not_exists(tablename)")
    except dynamodb.exceptions.ConditionalCheckFailedException:
        pass


def empty(bucket):
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})


def handler(event, context):
    logger.info(json.dumps(event))
    props = event["ResourceProperties"]
    try:
        if event["RequestType"] in ("Create", "Update"):
            publish(props)
        elif event["RequestType"] == "Delete":
            empty(props["Bucket"])
            empty(props["SecretBucket"])
        respond(event, context, "SUCCESS")
    except Exception as exc:
        logger.exception("site deployment failed")
        respond(event, context, "FAILED", reason=str(exc))
