"""A CloudFormation custom resource that publishes the web pages to the site bucket,
with a config.js telling the pages where the APIs are."""

import json
import logging
import mimetypes
import os
import urllib.request

import boto3

logger = logging.getLogger()
logger.setLevel(logging.INFO)

s3 = boto3.client("s3")
PUBLIC = os.path.join(os.path.dirname(__file__), "public")


def respond(event, context, status, data=None, reason=""):
    body = json.dumps({
        "Status": status,
        "Reason": reason or f"See CloudWatch log stream {context.log_stream_name}",
        "PhysicalResourceId": event.get("PhysicalResourceId") or f"site-{event['ResourceProperties']['Bucket']}",
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": data or {},
    }).encode()
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT",
                                     headers={"Content-Type": "", "Content-Length": str(len(body))})
    with urllib.request.urlopen(request, timeout=30) as response:
        logger.info("CloudFormation answered %s", response.status)


def publish(bucket, config):
    for name in sorted(os.listdir(PUBLIC)):
        path = os.path.join(PUBLIC, name)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        with open(path, "rb") as f:
            s3.put_object(Bucket=bucket, Key=name, Body=f.read(), ContentType=content_type)
    script = "window.QA_CONFIG = " + json.dumps(config, indent=2) + ";\n"
    s3.put_object(Bucket=bucket, Key="config.js", Body=script.encode(),
                  ContentType="text/javascript; charset=utf-8")


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
            publish(props["Bucket"], {"questionUrl": props["QuestionUrl"], "liveUrl": props["LiveUrl"]})
        elif event["RequestType"] == "Delete":
            empty(props["Bucket"])
        respond(event, context, "SUCCESS")
    except Exception as exc:
        logger.exception("site deployment failed")
        respond(event, context, "FAILED", reason=str(exc))
