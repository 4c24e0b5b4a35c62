"""The talk's log records, one JSON object per line: which request (task_uuid,
lambda_request_id, device_id), which code (lambda_handler, lambda_commit_id), what
happened (log_event, level) and when (timestamp for sorting, timestamp_jst for people).
An ErrorLogger record adds the error and its traceback."""

import json
import time
from datetime import datetime, timedelta, timezone

from handlers import variables

JST = timezone(timedelta(hours=9))


def _when():
    now = time.time()
    return {"timestamp": int(now), "timestamp_jst": datetime.fromtimestamp(now, JST).strftime("%Y-%m-%d %H:%M:%S")}


class InfoLogger:
    """Logs what a finished piece of business did (``obj.log_fields()`` says what)."""

    def __init__(self, obj, lambda_event=None, lambda_context=None):
        self.obj = obj
        self.event = lambda_event or {}
        self.context = lambda_context

    def log(self):
        record = {
            "task_uuid": self.event.get("task_uuid"),
            "lambda_request_id": getattr(self.context, "aws_request_id", None),
            "device_id": self.event.get("device_id"),
            "lambda_handler": getattr(self.context, "function_name", None),
            "level": "INFO",
            "lambda_commit_id": variables.get_commit_id(),
            **_when(),
            **self.obj.log_fields(),
        }
        print(json.dumps(record, ensure_ascii=False, default=str))


class ErrorLogger:
    def __init__(self, lambda_event, lambda_context, commit_id, param_hub_uuid, error, traceback):
        self.event = lambda_event or {}
        self.context = lambda_context
        self.commit_id = commit_id
        self.param_hub_uuid = param_hub_uuid
        self.error = error
        self.traceback = traceback

    def log(self):
        record = {
            "task_uuid": self.event.get("task_uuid"),
            "lambda_request_id": getattr(self.context, "aws_request_id", None),
            "device_id": self.event.get("device_id"),
            "lambda_handler": getattr(self.context, "function_name", None),
            "log_event": type(self.error).__name__,
            "level": "ERROR",
            "lambda_commit_id": self.commit_id,
            "param_hub_uuid": self.param_hub_uuid,
            "error": str(self.error),
            "traceback": self.traceback,
            **_when(),
        }
        print(json.dumps(record, ensure_ascii=False, default=str))
