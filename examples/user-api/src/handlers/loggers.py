"""Structured JSON logs, one object per line, with the talk's fields: which request
(lambda_request_id, task_uuid), which code (lambda_handler, lambda_commit_id), what
happened (log_event, level) and when (timestamp for sorting, timestamp_jst for people)."""

import json
import os
import time
import traceback
import uuid
from datetime import datetime, timedelta, timezone

JST = timezone(timedelta(hours=9))


class InfoLogger:
    level = "INFO"

    def __init__(self, event, context, log_event, **fields):
        self.context = context
        self.log_event = log_event
        self.fields = fields

    def record(self):
        now = time.time()
        return {
            "task_uuid": str(uuid.uuid4()),
            "lambda_request_id": getattr(self.context, "aws_request_id", None),
            "lambda_handler": getattr(self.context, "function_name", None),
            "log_event": self.log_event,
            "timestamp": int(now),
            "timestamp_jst": datetime.fromtimestamp(now, JST).strftime("%Y-%m-%d %H:%M:%S"),
            "level": self.level,
            "lambda_commit_id": os.environ.get("COMMIT_ID", "000000000"),
            **self.fields,
        }

    def log(self):
        print(json.dumps(self.record(), ensure_ascii=False, default=str))


class ErrorLogger(InfoLogger):
    level = "ERROR"

    def __init__(self, event, context, log_event, error, **fields):
        super().__init__(event, context, log_event, error=f"{type(error).__name__}: {error}",
                         traceback=traceback.format_exc(), **fields)
