"""Receives a question from the form (already turned into JSON by the API's mapping
template) and publishes it to the SNS topic named Qa."""

import json
import logging
import traceback

import boto3

logger = logging.getLogger()
logger.setLevel(logging.INFO)

sns = boto3.client("sns")
TOPIC_NAME = "Qa"


def find_topic_arn(name):
    paginator = sns.get_paginator("list_topics")
    for page in paginator.paginate():
        for topic in page["Topics"]:
            if topic["TopicArn"].endswith(":" + name):
                return topic["TopicArn"]
    raise LookupError(f"no SNS topic named {name}")


def lambda_handler(event, context):
    logger.info(event)
    try:
        sns.publish(TopicArn=find_topic_arn(TOPIC_NAME), Message=json.dumps(event, ensure_ascii=False),
                    Subject="question")
    except Exception:
        logger.error(traceback.format_exc())
        return {"result": "error"}
    return {"result": "ok"}
