"""Posts each question to the course's Microsoft Teams channel. Errors are raised so
that SQS delivers the message again (and, after 3 receives, to the dead-letter queue)."""

import json
import logging
import traceback

from teams import Teams

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def lambda_handler(event, context):
    teams = Teams()
    try:
        for record in event["Records"]:
            envelope = json.loads(record["body"])
            message = json.loads(envelope["Message"])
            project_id = message["project_id"]
            description = message["contact_detail"].replace("newline", "\n")
            teams.send_message("受講者からの質問", f"{description}  {project_id}")
    except Exception:
        logger.error(traceback.format_exc())
        raise Exception(traceback.format_exc())
