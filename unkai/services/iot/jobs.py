"""Jobs in their simple form: a JSON document sent to things (directly or through thing
groups, as a snapshot taken at creation), one execution per thing that the device moves
QUEUED -> IN_PROGRESS -> SUCCEEDED / FAILED / REJECTED through the ``iot-jobs-data`` API
(``JobsData``), and the ``$aws/things/{thing}/jobs/notify`` and ``notify-next`` messages
a device subscribes to. A job is COMPLETED once every execution has ended.
"""

from __future__ import annotations

import json
import re
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext, Service
from unkai.services.iot import errors
from unkai.services.iot.model import arn, dumps, loads, page

_JOB_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
TERMINAL = ("SUCCEEDED", "FAILED", "REJECTED", "REMOVED", "CANCELED", "TIMED_OUT")
PENDING = ("QUEUED", "IN_PROGRESS")
_COUNTS = {"QUEUED": "numberOfQueuedThings", "IN_PROGRESS": "numberOfInProgressThings",
           "SUCCEEDED": "numberOfSucceededThings", "FAILED": "numberOfFailedThings",
           "CANCELED": "numberOfCanceledThings", "REJECTED": "numberOfRejectedThings",
           "REMOVED": "numberOfRemovedThings", "TIMED_OUT": "numberOfTimedOutThings"}


def invalid_transition(message: str) -> ServiceError:
    return ServiceError("InvalidStateTransitionException", message, status=409)


class Executions:
    """Job executions, shared by the control plane and the jobs data plane."""

    def __init__(self, cloud: Any) -> None:
        self.cloud = cloud
        self.store = cloud.store

    def row(self, account: str, region: str, job_id: str, thing: str) -> tuple | None:
        return self.store.one("SELECT job_id, thing, status, execution_number, version, details, queued, started, "
                              "updated FROM iot_job_executions WHERE account=? AND region=? AND job_id=? AND thing=?",
                              (account, region, job_id, thing))

    def pending(self, account: str, region: str, thing: str) -> list[tuple]:
        return self.store.all("SELECT e.job_id, e.thing, e.status, e.execution_number, e.version, e.details, "
                              "e.queued, e.started, e.updated FROM iot_job_executions e JOIN iot_jobs j ON "
                              "j.account=e.account AND j.region=e.region AND j.job_id=e.job_id WHERE e.account=? "
                              "AND e.region=? AND e.thing=? AND e.status IN ('QUEUED','IN_PROGRESS') "
                              "ORDER BY e.queued, e.job_id", (account, region, thing))

    @staticmethod
    def summary(row: tuple) -> dict:
        job_id, thing, status, number, version, details, queued, started, updated = row
        out = {"jobId": job_id, "queuedAt": queued, "lastUpdatedAt": updated, "versionNumber": version,
               "executionNumber": number}
        if started:
            out["startedAt"] = started
        return out

    def document(self, account: str, region: str, job_id: str) -> str:
        return self.store.one("SELECT document FROM iot_jobs WHERE account=? AND region=? AND job_id=?",
                              (account, region, job_id))[0]

    def execution(self, account: str, region: str, row: tuple, with_document: bool = True) -> dict:
        job_id, thing, status, number, version, details, queued, started, updated = row
        out = {"jobId": job_id, "thingName": thing, "status": status, "statusDetails": loads(details),
               "queuedAt": queued, "lastUpdatedAt": updated, "versionNumber": version, "executionNumber": number}
        if started:
            out["startedAt"] = started
        if with_document:
            out["jobDocument"] = self.document(account, region, job_id)
        return out

    def notify(self, account: str, region: str, thing: str) -> None:
        """The ``notify`` and ``notify-next`` messages of a thing whose pending jobs changed."""
        data = self.cloud.services.get("iot-data")
        if data is None:
            return
        now = int(self.cloud.clock.now())
        rows = self.pending(account, region, thing)
        jobs: dict[str, list] = {}
        for r in rows:
            jobs.setdefault(r[2], []).append(self.summary(r))
        data.publish_message(account, region, f"$aws/things/{thing}/jobs/notify",
                             json.dumps({"timestamp": now, "jobs": jobs}).encode(), depth=1)
        following = next((r for r in rows if r[2] == "IN_PROGRESS"), rows[0] if rows else None)
        body: dict[str, Any] = {"timestamp": now}
        if following is not None:
            body["execution"] = self.execution(account, region, following)
        data.publish_message(account, region, f"$aws/things/{thing}/jobs/notify-next", json.dumps(body).encode(),
                             depth=1)

    def settle(self, account: str, region: str, job_id: str) -> None:
        """A SNAPSHOT job whose executions have all ended is COMPLETED."""
        open_count = self.store.one("SELECT COUNT(*) FROM iot_job_executions WHERE account=? AND region=? AND "
                                    "job_id=? AND status IN ('QUEUED','IN_PROGRESS')", (account, region, job_id))[0]
        if open_count == 0:
            now = self.cloud.clock.now()
            self.store.execute("UPDATE iot_jobs SET status='COMPLETED', completed=?, updated=? WHERE account=? AND "
                               "region=? AND job_id=? AND status='IN_PROGRESS'", (now, now, account, region, job_id))


class JobOps:
    store: Any
    clock: Any
    cloud: Any

    @property
    def executions(self) -> Executions:
        return Executions(self.cloud)

    def _job(self, ctx: RequestContext, job_id: str) -> tuple:
        row = self.store.one("SELECT job_id, arn, document, description, targets, selection, status, comment, "
                             "reason_code, created, updated, completed FROM iot_jobs WHERE account=? AND region=? "
                             "AND job_id=?", (ctx.account, ctx.region, job_id))
        if row is None:
            raise errors.not_found(f"Job {job_id} does not exist")
        return row

    def create_job(self, ctx: RequestContext, params: dict) -> dict:
        job_id = params["jobId"]
        if not _JOB_ID.match(job_id):
            raise errors.invalid(f"1 validation error detected: Value '{job_id}' at 'jobId' failed to satisfy "
                                 "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+")
        document = params.get("document")
        if document is None:
            raise errors.invalid("A job document is required (documentSource is not served by unkai)")
        try:
            json.loads(document)
        except ValueError:
            raise errors.invalid("The job document is not valid JSON") from None
        job_arn = arn(ctx.region, ctx.account, "job", job_id)
        if self.store.one("SELECT 1 FROM iot_jobs WHERE account=? AND region=? AND job_id=?",
                          (ctx.account, ctx.region, job_id)):
            raise errors.exists(f"Job {job_id} already exists", job_id, job_arn)
        things: list[str] = []
        for target in params["targets"]:
            kind, _, name = target.rpartition(":")[2].partition("/")
            if kind == "thing":
                self._thing(ctx, name)
                things.append(name)
            elif kind == "thinggroup":
                self._group(ctx, name)
                things += self.list_things_in_thing_group(ctx, {"thingGroupName": name, "recursive": True,
                                                                "maxResults": 10000})["things"]
            else:
                raise errors.invalid(f"Invalid target: {target}")
        now = self.clock.now()
        self.store.execute("INSERT INTO iot_jobs (account, region, job_id, arn, document, description, targets, "
                           "selection, status, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                           (ctx.account, ctx.region, job_id, job_arn, document, params.get("description") or "",
                            dumps(params["targets"]), params.get("targetSelection") or "SNAPSHOT", "IN_PROGRESS",
                            now, now))
        for number, thing in enumerate(dict.fromkeys(things), 1):
            self.store.execute("INSERT INTO iot_job_executions (account, region, job_id, thing, status, "
                               "execution_number, queued, updated) VALUES (?,?,?,?,?,?,?,?)",
                               (ctx.account, ctx.region, job_id, thing, "QUEUED", number, now, now))
            self.executions.notify(ctx.account, ctx.region, thing)
        self.executions.settle(ctx.account, ctx.region, job_id)
        out = {"jobArn": job_arn, "jobId": job_id}
        if params.get("description"):
            out["description"] = params["description"]
        return out

    def _job_view(self, ctx: RequestContext, row: tuple) -> dict:
        job_id, job_arn, _, description, targets, selection, status, comment, reason, created, updated, done = row
        counts = {v: 0 for v in _COUNTS.values()}
        for st, n in self.store.all("SELECT status, COUNT(*) FROM iot_job_executions WHERE account=? AND region=? "
                                    "AND job_id=? GROUP BY status", (ctx.account, ctx.region, job_id)):
            counts[_COUNTS[st]] = n
        out = {"jobArn": job_arn, "jobId": job_id, "targetSelection": selection, "status": status,
               "targets": loads(targets), "description": description, "createdAt": created, "lastUpdatedAt": updated,
               "jobProcessDetails": counts}
        if done:
            out["completedAt"] = done
        if comment:
            out["comment"] = comment
        if reason:
            out["reasonCode"] = reason
        return out

    def describe_job(self, ctx: RequestContext, params: dict) -> dict:
        return {"job": self._job_view(ctx, self._job(ctx, params["jobId"]))}

    def get_job_document(self, ctx: RequestContext, params: dict) -> dict:
        return {"document": self._job(ctx, params["jobId"])[2]}

    def list_jobs(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT job_id, arn, selection, status, created, updated, completed FROM iot_jobs "
                              "WHERE account=? AND region=? ORDER BY created", (ctx.account, ctx.region))
        jobs = []
        for job_id, job_arn, selection, status, created, updated, done in rows:
            if params.get("status") and status != params["status"]:
                continue
            item = {"jobArn": job_arn, "jobId": job_id, "targetSelection": selection, "status": status,
                    "createdAt": created, "lastUpdatedAt": updated}
            if done:
                item["completedAt"] = done
            jobs.append(item)
        return page("jobs", jobs, params)

    def cancel_job(self, ctx: RequestContext, params: dict) -> dict:
        job_id, job_arn, _, description, *_rest = self._job(ctx, params["jobId"])
        status = _rest[2]
        if status != "IN_PROGRESS":
            raise invalid_transition(f"Job {job_id} is {status} and cannot be canceled")
        cancel = ("QUEUED", "IN_PROGRESS") if params.get("force") else ("QUEUED",)
        now = self.clock.now()
        things = [r[0] for r in self.store.all(
            f"SELECT thing FROM iot_job_executions WHERE account=? AND region=? AND job_id=? AND status IN "
            f"({','.join('?' * len(cancel))})", (ctx.account, ctx.region, job_id, *cancel))]
        self.store.execute(f"UPDATE iot_job_executions SET status='CANCELED', updated=?, version=version+1 WHERE "
                           f"account=? AND region=? AND job_id=? AND status IN ({','.join('?' * len(cancel))})",
                           (now, ctx.account, ctx.region, job_id, *cancel))
        self.store.execute("UPDATE iot_jobs SET status='CANCELED', comment=?, reason_code=?, updated=? WHERE "
                           "account=? AND region=? AND job_id=?", (params.get("comment"), params.get("reasonCode"),
                                                                  now, ctx.account, ctx.region, job_id))
        for thing in things:
            self.executions.notify(ctx.account, ctx.region, thing)
        out = {"jobArn": job_arn, "jobId": job_id}
        if description:
            out["description"] = description
        return out

    def delete_job(self, ctx: RequestContext, params: dict) -> dict:
        job_id, *_rest = self._job(ctx, params["jobId"])
        if _rest[5] == "IN_PROGRESS" and not params.get("force"):
            raise invalid_transition(f"Job {job_id} is IN_PROGRESS; delete it with force")
        things = [r[0] for r in self.store.all("SELECT thing FROM iot_job_executions WHERE account=? AND region=? "
                                               "AND job_id=? AND status IN ('QUEUED','IN_PROGRESS')",
                                               (ctx.account, ctx.region, job_id))]
        for table in ("iot_jobs", "iot_job_executions"):
            self.store.execute(f"DELETE FROM {table} WHERE account=? AND region=? AND job_id=?",
                               (ctx.account, ctx.region, job_id))
        for thing in things:
            self.executions.notify(ctx.account, ctx.region, thing)
        return {}

    def describe_job_execution(self, ctx: RequestContext, params: dict) -> dict:
        row = self.executions.row(ctx.account, ctx.region, params["jobId"], params["thingName"])
        if row is None:
            raise errors.not_found(f"Job execution for {params['jobId']} on {params['thingName']} does not exist")
        out = self.executions.execution(ctx.account, ctx.region, row, with_document=False)
        out.pop("jobDocument", None)
        out["thingArn"] = arn(ctx.region, ctx.account, "thing", out["thingName"])
        details = out.pop("statusDetails")
        out["statusDetails"] = {"detailsMap": details}
        return {"execution": out}

    def _execution_summaries(self, ctx: RequestContext, where: str, args: tuple, params: dict, key: str) -> dict:
        rows = self.store.all(f"SELECT job_id, thing, status, execution_number, queued, started, updated FROM "
                              f"iot_job_executions WHERE account=? AND region=? AND {where} ORDER BY queued, thing",
                              (ctx.account, ctx.region, *args))
        out = []
        for job_id, thing, status, number, queued, started, updated in rows:
            if params.get("status") and status != params["status"]:
                continue
            summary = {"status": status, "queuedAt": queued, "lastUpdatedAt": updated, "executionNumber": number}
            if started:
                summary["startedAt"] = started
            item = {"jobExecutionSummary": summary}
            item.update({"thingArn": arn(ctx.region, ctx.account, "thing", thing)} if key == "job" else
                        {"jobId": job_id})
            out.append(item)
        return page("executionSummaries", out, params)

    def list_job_executions_for_job(self, ctx: RequestContext, params: dict) -> dict:
        self._job(ctx, params["jobId"])
        return self._execution_summaries(ctx, "job_id=?", (params["jobId"],), params, "job")

    def list_job_executions_for_thing(self, ctx: RequestContext, params: dict) -> dict:
        return self._execution_summaries(ctx, "thing=?", (params["thingName"],), params, "thing")


class JobsData(Service):
    """``iot-jobs-data``: what a device asks about its own job executions."""

    name = "iot-jobs-data"

    @property
    def executions(self) -> Executions:
        return Executions(self.cloud)

    def get_pending_job_executions(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.executions.pending(ctx.account, ctx.region, params["thingName"])
        return {"inProgressJobs": [Executions.summary(r) for r in rows if r[2] == "IN_PROGRESS"],
                "queuedJobs": [Executions.summary(r) for r in rows if r[2] == "QUEUED"]}

    def _row(self, ctx: RequestContext, job_id: str, thing: str) -> tuple:
        if job_id == "$next":
            rows = self.executions.pending(ctx.account, ctx.region, thing)
            row = next((r for r in rows if r[2] == "IN_PROGRESS"), rows[0] if rows else None)
        else:
            row = self.executions.row(ctx.account, ctx.region, job_id, thing)
        if row is None:
            raise errors.not_found(f"Job execution for {job_id} on {thing} does not exist")
        return row

    def describe_job_execution(self, ctx: RequestContext, params: dict) -> dict:
        row = self._row(ctx, params["jobId"], params["thingName"])
        return {"execution": self.executions.execution(ctx.account, ctx.region, row,
                                                       params.get("includeJobDocument", True) is not False)}

    def start_next_pending_job_execution(self, ctx: RequestContext, params: dict) -> dict:
        thing = params["thingName"]
        rows = self.executions.pending(ctx.account, ctx.region, thing)
        row = next((r for r in rows if r[2] == "IN_PROGRESS"), rows[0] if rows else None)
        if row is None:
            return {}
        if row[2] == "QUEUED":
            now = self.clock.now()
            self.store.execute("UPDATE iot_job_executions SET status='IN_PROGRESS', started=?, updated=?, "
                               "version=version+1, details=? WHERE account=? AND region=? AND job_id=? AND thing=?",
                               (now, now, dumps(params.get("statusDetails") or {}), ctx.account, ctx.region, row[0],
                                thing))
            self.executions.notify(ctx.account, ctx.region, thing)
            row = self.executions.row(ctx.account, ctx.region, row[0], thing)
        return {"execution": self.executions.execution(ctx.account, ctx.region, row)}

    def update_job_execution(self, ctx: RequestContext, params: dict) -> dict:
        thing, job_id, status = params["thingName"], params["jobId"], params["status"]
        row = self._row(ctx, job_id, thing)
        if row[2] in TERMINAL:
            raise invalid_transition(f"Job execution {job_id} on {thing} is {row[2]} and cannot be updated")
        if status not in ("IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED", "QUEUED", "TIMED_OUT", "REMOVED",
                          "CANCELED") or status in ("QUEUED", "TIMED_OUT", "REMOVED", "CANCELED"):
            raise errors.invalid(f"Invalid status for UpdateJobExecution: {status}")
        if params.get("expectedVersion") is not None and int(params["expectedVersion"]) != row[4]:
            raise errors.version_conflict("Job execution version conflict")
        now = self.clock.now()
        details = params.get("statusDetails")
        self.store.execute("UPDATE iot_job_executions SET status=?, started=COALESCE(started, ?), updated=?, "
                           "version=version+1, details=COALESCE(?, details) WHERE account=? AND region=? AND "
                           "job_id=? AND thing=?", (status, now, now, dumps(details) if details is not None else None,
                                                    ctx.account, ctx.region, job_id, thing))
        self.executions.settle(ctx.account, ctx.region, job_id)
        self.executions.notify(ctx.account, ctx.region, thing)
        row = self.executions.row(ctx.account, ctx.region, job_id, thing)
        out: dict[str, Any] = {}
        if params.get("includeJobExecutionState"):
            out["executionState"] = {"status": row[2], "statusDetails": loads(row[5]), "versionNumber": row[4]}
        if params.get("includeJobDocument"):
            out["jobDocument"] = self.executions.document(ctx.account, ctx.region, job_id)
        return out

    # -- the jobs MQTT API: $aws/things/{thing}/jobs/... requests answered on .../accepted|rejected --

    _REJECTED = {"InvalidRequestException": "InvalidRequest", "ResourceNotFoundException": "ResourceNotFound",
                 "InvalidStateTransitionException": "InvalidStateTransition",
                 "VersionConflictException": "VersionMismatch"}

    def mqtt_request(self, account: str, region: str, thing: str, job_id: str | None, verb: str,
                     payload: bytes) -> None:
        """A device's request on ``jobs/get``, ``jobs/start-next``, ``jobs/{jobId}/get`` or
        ``jobs/{jobId}/update`` (inside the message's transaction), answered as AWS does."""
        data = self.cloud.service("iot-data")
        topic = f"$aws/things/{thing}/jobs/" + (f"{job_id}/{verb}" if job_id else verb)
        now = int(self.cloud.clock.now())
        token: Any = None
        try:
            request = json.loads(payload) if payload.strip() else {}
            if not isinstance(request, dict):
                raise ValueError
            token = request.get("clientToken")
        except (ValueError, UnicodeDecodeError):
            request = None
        ctx = RequestContext(service=self.name, operation=verb, region=region, account=account, request_id="",
                             request=None, protocol="rest-json")  # type: ignore[arg-type]
        try:
            if request is None:
                raise ServiceError("InvalidJson", "Request payload is not valid JSON")
            with self.store.transaction():  # a savepoint: a rejected request changes nothing
                if verb == "get" and job_id is None:
                    body = self.get_pending_job_executions(ctx, {"thingName": thing})
                elif verb == "start-next":
                    body = self.start_next_pending_job_execution(ctx, {
                        "thingName": thing, "statusDetails": request.get("statusDetails")})
                elif verb == "get":
                    body = self.describe_job_execution(ctx, {
                        "thingName": thing, "jobId": job_id,
                        "includeJobDocument": request.get("includeJobDocument", True)})
                else:
                    if "status" not in request:
                        raise errors.invalid("status is required")
                    body = self.update_job_execution(ctx, {**{k: request[k] for k in (
                        "status", "statusDetails", "expectedVersion", "includeJobExecutionState",
                        "includeJobDocument") if k in request}, "thingName": thing, "jobId": job_id})
        except ServiceError as exc:
            rejected: dict[str, Any] = {"code": self._REJECTED.get(exc.code, exc.code), "message": exc.message,
                                        "timestamp": now}
            if token is not None:
                rejected["clientToken"] = token
            if exc.code == "VersionConflictException" and job_id:
                row = self.executions.row(account, region, job_id, thing)
                if row is not None:
                    rejected["executionState"] = {"status": row[2], "statusDetails": loads(row[5]),
                                                  "versionNumber": row[4]}
            data.publish_message(account, region, f"{topic}/rejected", json.dumps(rejected).encode(), depth=1)
            return
        body = {**body, "timestamp": now}
        if token is not None:
            body["clientToken"] = token
        data.publish_message(account, region, f"{topic}/accepted", json.dumps(body).encode(), depth=1)
