"""Export tasks (CreateExportTask, DescribeExportTasks, CancelExportTask) and ListLogGroups.

An export task copies a log group's events between two times into an S3 bucket, laid out as
AWS lays it out: a ``<prefix>/aws-logs-write-test`` object written when the task is accepted
(AWS's check that it may write), then ``<prefix>/<task id>/<log stream>/000000.gz``, each a
gzip of ``<ISO-8601 time> <message>`` lines in time order. The call records the task
(PENDING) and a durable ``logs.export`` job in one transaction; the job writes the objects
through S3's in-process ``put_object_bytes`` and marks the task COMPLETED in one transaction.
As on AWS, one task at a time may be PENDING or RUNNING in an account and region."""

from __future__ import annotations

import gzip
import json
import re
import time
import uuid
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext

MIGRATION = """
CREATE TABLE logs_export_tasks (
    id TEXT PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL, created INTEGER NOT NULL,
    body TEXT NOT NULL
);
"""

_ACTIVE = ("PENDING", "RUNNING", "PENDING_CANCEL")
_CODES = ("CANCELLED", "COMPLETED", "FAILED", "PENDING", "PENDING_CANCEL", "RUNNING")
_PATTERN = re.compile(r"^(\^?[.\-_/#A-Za-z0-9]{3,24})(\|\^?[.\-_/#A-Za-z0-9]{3,24}){0,4}$")


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


class ExportTasks:
    """Mixed into the Logs service."""

    store: Any
    clock: Any
    cloud: Any

    def _group(self, ctx: RequestContext, params: dict, required: bool = True) -> tuple: ...
    def _arn(self, ctx: RequestContext, name: str) -> str: ...

    # -- ListLogGroups ------------------------------------------------------------------------

    def list_log_groups(self, ctx: RequestContext, params: dict) -> dict:
        """The newer listing: name, ARN and class, filtered by AWS's name pattern (``^`` for a
        prefix, else a substring, up to five alternatives joined by ``|``, case-sensitive)."""
        limit = params.get("limit") or 50
        if not 1 <= limit <= 1000:
            raise _invalid(f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: "
                           "Member must have value less than or equal to 1000")
        pattern = params.get("logGroupNamePattern")
        if pattern is not None and not _PATTERN.match(pattern):
            raise _invalid(f"1 validation error detected: Value '{pattern}' at 'logGroupNamePattern' failed to "
                           "satisfy constraint: Member must satisfy regular expression pattern: "
                           "(\\^?[\\.\\-_\\/#A-Za-z0-9]{3,24})(\\|\\^?[\\.\\-_\\/#A-Za-z0-9]{3,24}){0,4}")
        alternatives = pattern.split("|") if pattern else []
        rows = self.store.all("SELECT name, class FROM logs_groups WHERE account=? AND region=? AND name > ? "
                              "ORDER BY name", (ctx.account, ctx.region, params.get("nextToken") or ""))
        out: list[dict] = []
        for name, cls in rows:
            if alternatives and not any(name.startswith(a[1:]) if a.startswith("^") else a in name
                                        for a in alternatives):
                continue
            if params.get("logGroupClass") and cls != params["logGroupClass"]:
                continue
            if len(out) == limit:
                return {"logGroups": out, "nextToken": out[-1]["logGroupName"]}
            out.append({"logGroupName": name, "logGroupArn": self._arn(ctx, name), "logGroupClass": cls})
        return {"logGroups": out}

    # -- export tasks ---------------------------------------------------------------------------

    def create_export_task(self, ctx: RequestContext, params: dict) -> dict:
        group = self._group(ctx, params)  # ResourceNotFoundException "The specified log group does not exist."
        start, end = params["from"], params["to"]
        if end < start:
            raise _invalid("The 'to' parameter must be greater than or equal to the 'from' parameter.")
        bucket = params["destination"]
        active = [json.loads(body) for (body,) in self.store.all(
            "SELECT body FROM logs_export_tasks WHERE account=? AND region=?", (ctx.account, ctx.region))]
        if any(t["status"]["code"] in _ACTIVE for t in active):
            raise ServiceError("LimitExceededException", "Resource limit exceeded.")
        now = self.clock.now_ms()
        task_id = str(uuid.uuid4())
        prefix = params.get("destinationPrefix") or "exportedlogs"
        task: dict[str, Any] = {
            "taskId": task_id, "logGroupName": group[1], "from": start, "to": end, "destination": bucket,
            "destinationPrefix": prefix, "status": {"code": "PENDING", "message": "Pending"},
            "executionInfo": {"creationTime": now}}
        if params.get("taskName"):
            task["taskName"] = params["taskName"]
        if params.get("logStreamNamePrefix"):
            task["logStreamNamePrefix"] = params["logStreamNamePrefix"]
        try:  # AWS's own check that it may write there, left in the bucket as AWS leaves it
            self.cloud.service("s3").put_object_bytes(bucket, f"{prefix.rstrip('/')}/aws-logs-write-test",
                                                      b"Permission Check Successful", "text/plain", ctx.region,
                                                      principal="logs.amazonaws.com")
        except ServiceError:  # no such bucket: AWS's GetBucketAcl check fails first
            raise _invalid("GetBucketAcl call on the given bucket failed. Please check if CloudWatch Logs has been "
                           "granted permission to perform this operation.") from None
        self.store.execute("INSERT INTO logs_export_tasks(id, account, region, created, body) VALUES(?,?,?,?,?)",
                           (task_id, ctx.account, ctx.region, now, json.dumps(task)))
        self.cloud.jobs.enqueue("logs.export", {"task": task_id})
        return {"taskId": task_id}

    def describe_export_tasks(self, ctx: RequestContext, params: dict) -> dict:
        limit = params.get("limit") or 50
        if not 1 <= limit <= 50:
            raise _invalid(f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: "
                           "Member must have value less than or equal to 50")
        code = params.get("statusCode")
        if code is not None and code not in _CODES:
            raise _invalid(f"1 validation error detected: Value '{code}' at 'statusCode' failed to satisfy "
                           "constraint: Member must satisfy enum value set: [CANCELLED, COMPLETED, FAILED, PENDING, "
                           "PENDING_CANCEL, RUNNING]")
        tasks = [json.loads(body) for (body,) in self.store.all(
            "SELECT body FROM logs_export_tasks WHERE account=? AND region=? ORDER BY created DESC, id",
            (ctx.account, ctx.region))]
        tasks = [t for t in tasks if (not params.get("taskId") or t["taskId"] == params["taskId"]) and
                 (code is None or t["status"]["code"] == code)]
        start = int(params["nextToken"]) if str(params.get("nextToken") or "").isdigit() else 0
        out: dict[str, Any] = {"exportTasks": tasks[start:start + limit]}
        if start + limit < len(tasks):
            out["nextToken"] = str(start + limit)
        return out

    def cancel_export_task(self, ctx: RequestContext, params: dict) -> dict:
        row = self.store.one("SELECT body FROM logs_export_tasks WHERE id=? AND account=? AND region=?",
                             (params["taskId"], ctx.account, ctx.region))
        if row is None:
            raise ServiceError("ResourceNotFoundException", "The specified export task does not exist.")
        task = json.loads(row[0])
        if task["status"]["code"] not in _ACTIVE:
            raise ServiceError("InvalidOperationException", "The specified export task has already finished.")
        task["status"] = {"code": "CANCELLED", "message": "Cancelled by user"}
        task["executionInfo"]["completionTime"] = self.clock.now_ms()
        self.store.execute("UPDATE logs_export_tasks SET body=? WHERE id=?", (json.dumps(task), task["taskId"]))
        return {}

    async def _run_export_task(self, payload: dict, attempt: int) -> None:
        """The export job: each stream's events in [from, to] into S3, the task COMPLETED."""
        with self.store.transaction():
            row = self.store.one("SELECT account, region, body FROM logs_export_tasks WHERE id=?", (payload["task"],))
            if row is None:
                return
            account, region, task = row[0], row[1], json.loads(row[2])
            if task["status"]["code"] not in ("PENDING", "RUNNING"):
                return  # cancelled meanwhile
            group = self.store.one("SELECT id FROM logs_groups WHERE account=? AND region=? AND name=?",
                                   (account, region, task["logGroupName"]))
            streams: dict[str, list[str]] = {}
            if group is not None:
                for stream, ts, message in self.store.execute(
                        "SELECT s.name, e.ts, e.message FROM logs_events e JOIN logs_streams s ON s.id=e.stream_id "
                        "WHERE s.group_id=? AND e.ts>=? AND e.ts<=? ORDER BY s.name, e.ts, e.id",
                        (group[0], task["from"], task["to"])):
                    if stream.startswith(task.get("logStreamNamePrefix") or ""):
                        streams.setdefault(stream, []).append(f"{_iso(ts)} {message}\n")
            s3 = self.cloud.service("s3")
            base = f"{task['destinationPrefix'].rstrip('/')}/{task['taskId']}"
            try:
                for stream, lines in streams.items():
                    s3.put_object_bytes(task["destination"], f"{base}/{stream}/000000.gz",
                                        gzip.compress("".join(lines).encode(), mtime=0), "application/x-gzip",
                                        region, principal="logs.amazonaws.com")
            except ServiceError as e:
                task["status"] = {"code": "FAILED", "message": e.message}
            else:
                task["status"] = {"code": "COMPLETED", "message": "Completed successfully"}
            task["executionInfo"]["completionTime"] = self.clock.now_ms()
            self.store.execute("UPDATE logs_export_tasks SET body=? WHERE id=?", (json.dumps(task), task["taskId"]))
