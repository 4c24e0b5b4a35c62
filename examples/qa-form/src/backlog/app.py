"""Creates a Backlog issue for each question. Errors are raised so that SQS retries."""

import json
import logging
import os
import traceback

import requests

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def lambda_handler(event, context):
    try:
        backlog_key = os.environ.get("BACKLOG_KEY", "")
        backlog_url = os.environ.get("BACKLOG_URL", "")
        for record in event["Records"]:
            envelope = json.loads(record["body"])
            message = json.loads(envelope["Message"])
            payload = {
                "projectId": os.environ.get("PROJECT_ID", ""),
                "issueTypeId": os.environ.get("ISSUE_TYPE_ID", ""),
                "priorityId": os.environ.get("PRIORITY_ID", ""),
                "assigneeId": os.environ.get("ASSIGNEE_ID", ""),
                "milestoneId": [os.environ.get("MILE_STONE_ID", "")],
                "summary": message["contact_detail"].replace("newline", "")[:50],
                "description": message["contact_detail"].replace("newline", "\n"),
            }
            response = requests.post(backlog_url + backlog_key, data=json.dumps(payload, ensure_ascii=False).encode(),
                                     headers={"Content-Type": "application/json"}, timeout=10)
            response.raise_for_status()
            logger.info(response.text or response)
    except Exception:
        logger.error(traceback.format_exc())
        raise Exception(traceback.format_exc())
