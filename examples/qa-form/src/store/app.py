"""Keeps every question, with when it was submitted and from where, in the qa table."""

import json
import logging
import os
import traceback
from datetime import datetime

import boto3

logger = logging.getLogger()
logger.setLevel(logging.INFO)

table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def lambda_handler(event, context):
    logger.info(event)
    try:
        with table.batch_writer() as batch:
            for record in event["Records"]:
                envelope = json.loads(record["body"])
                message = json.loads(envelope["Message"])
                message["submit_datetime"] = datetime.now().strftime("%Y%m%d%H%M%S%f")
                batch.put_item(Item=message)
    except Exception:
        logger.error(traceback.format_exc())
