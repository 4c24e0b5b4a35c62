"""Structured logs, as the talk's team writes them: one JSON object per line with the
fields that answer "which request, what processing, when, why, and did it succeed".

``InfoLogger(obj).log()`` records a business event; ``ErrorLogger(event, context,
commit_id, param_hub_uuid, error, traceback).log()`` records a failure before the
handler re-raises it. Every record is printed (so it reaches CloudWatch Logs, where a
subscription filter ships it to Firehose) and put into a Kinesis stream (which Firehose
delivers to S3 for Athena)."""

import datetime
import json
import time

import boto3

import variables

JST = datetime.timezone(datetime.timedelta(hours=9))
_context = {"lambda_request_id": None, "lambda_handler": None}
_kinesis = None


def bind(context) -> None:
    """Remember the invocation's context: every record names the request and the function."""
    _context["lambda_request_id"] = context.aws_request_id
    _context["lambda_handler"] = context.function_name


def _fields(obj) -> dict:
    if isinstance(obj, dict):
        return dict(obj)
    return {k: v for k, v in vars(obj).items() if not k.startswith("_")}


def _emit(record: dict) -> None:
    global _kinesis
    now = time.time()
    record.setdefault("timestamp", now)
    record.setdefault("timestamp_jst", datetime.datetime.fromtimestamp(now, JST).strftime("%Y-%m-%d %H:%M:%S"))
    line = json.dumps(record, ensure_ascii=False, default=str)
    print(line)
    stream = variables.get_log_stream_name()
    if stream:
        if _kinesis is None:
            _kinesis = boto3.client("kinesis")
        _kinesis.put_record(StreamName=stream, Data=(line + "\n").encode(),
                            PartitionKey=str(record.get("device_id") or record.get("task_uuid") or "none"))


class InfoLogger:
    def __init__(self, obj) -> None:
        self.obj = obj

    def log(self) -> None:
        record = {"level": "INFO", **_context, "lambda_commit_id": variables.get_commit_id()}
        record.update(_fields(self.obj))
        _emit(record)


class ErrorLogger:
    def __init__(self, lambda_event, lambda_context, commit_id, param_hub_uuid, error, traceback) -> None:
        self.event = lambda_event or {}
        self.context = lambda_context
        self.commit_id = commit_id
        self.param_hub_uuid = param_hub_uuid
        self.error = error
        self.traceback = traceback

    def log(self) -> None:
        _emit({
            "level": "ERROR",
            "task_uuid": self.event.get("task_uuid"),
            "device_id": self.event.get("device_id"),
            "lambda_request_id": self.context.aws_request_id,
            "lambda_handler": self.context.function_name,
            "lambda_commit_id": self.commit_id,
            "log_event": type(self.error).__name__,
            "param_hub_uuid": self.param_hub_uuid,
            "error": str(self.error),
            "traceback": self.traceback,
        })
