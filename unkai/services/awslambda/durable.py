"""Lambda durable functions: the service side of AWS's durable execution SDK.

A function with ``DurableConfig`` is not handed its event. Each Invoke starts a durable
*execution* (a row here) and Lambda runs the function with an envelope instead:
``{"DurableExecutionArn", "CheckpointToken", "InitialExecutionState": {"Operations"}}``,
the operations as ``to_json_dict`` spells them (timestamps in epoch milliseconds), the
first one the ``EXECUTION`` operation whose id is the ARN's last segment and whose
``ExecutionDetails.InputPayload`` is the event. The SDK in the function
(``aws_durable_execution_sdk_python``) replays the handler against those operations,
records new ones with CheckpointDurableExecution and answers ``{"Status": "SUCCEEDED" |
"FAILED" | "PENDING", "Result", "Error"}``.

``PENDING`` means the handler suspended: a wait, a callback, a step retry or a chained
invoke must finish first. Each of those is a job in the outbox (``lambda.durable.timer``
due on unkai's clock, ``lambda.durable.chained``), written in the checkpoint's own
transaction, so they survive a restart and ``unkai.advance(s)`` fires them. When one
finishes it sets the execution's ``wake`` flag and enqueues ``lambda.durable.resume``,
which runs the function again (a replay) unless an invocation is already running; that
one looks at ``wake`` when it ends. An invocation interrupted by a crash is found by its
``invoking`` flag and run again after the restart, as Lambda re-drives it.

Checkpoint tokens are the execution's id and a counter: each checkpoint consumes the
current one and returns the next, and starting an invocation issues a fresh one, so a
stale invocation's checkpoints are refused as AWS refuses them.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unkai.feed import triggered_by
from unkai.protocol import ServiceError
from unkai.services import RequestContext
from unkai.services.awslambda import functions as fn
from unkai.services.awslambda.errors import (already_started, callback_closed, callback_not_found, conflict,
                                             execution_not_found, invalid, validation)

if TYPE_CHECKING:
    from unkai.services.awslambda.service import InvokeResult, Lambda, Target

log = logging.getLogger(__name__)

MIGRATION = """
    CREATE TABLE lambda_durable_executions (
        id INTEGER PRIMARY KEY,
        arn TEXT NOT NULL UNIQUE,
        account TEXT NOT NULL, region TEXT NOT NULL, function TEXT NOT NULL, version TEXT NOT NULL,
        name TEXT NOT NULL, invocation TEXT NOT NULL, status TEXT NOT NULL,
        input TEXT, result TEXT, error TEXT, config TEXT NOT NULL,
        started REAL NOT NULL, ended REAL,
        token INTEGER NOT NULL DEFAULT 0, seen INTEGER NOT NULL DEFAULT 0, changes INTEGER NOT NULL DEFAULT 0,
        wake INTEGER NOT NULL DEFAULT 1, invoking INTEGER NOT NULL DEFAULT 0,
        events INTEGER NOT NULL DEFAULT 0,
        UNIQUE(account, region, function, name)
    );
    CREATE INDEX lambda_durable_by_function ON lambda_durable_executions(account, region, function, started);
    CREATE TABLE lambda_durable_operations (
        execution_id INTEGER NOT NULL REFERENCES lambda_durable_executions(id) ON DELETE CASCADE,
        op_id TEXT NOT NULL, seq INTEGER NOT NULL, changed INTEGER NOT NULL,
        body TEXT NOT NULL, meta TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY(execution_id, op_id)
    );
    CREATE TABLE lambda_durable_events (
        execution_id INTEGER NOT NULL REFERENCES lambda_durable_executions(id) ON DELETE CASCADE,
        event_id INTEGER NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY(execution_id, event_id)
    );
"""

# PauseDurableExecution's details, and when ExecutionTimeout strikes (it moves while a pause stops the clock)
MIGRATION_PAUSE = """
    ALTER TABLE lambda_durable_executions ADD COLUMN pause TEXT;
    ALTER TABLE lambda_durable_executions ADD COLUMN deadline REAL;
"""

# executions started by an asynchronous invocation: their event goes to the function's DLQ when they fail
MIGRATION_ASYNC = """
    ALTER TABLE lambda_durable_executions ADD COLUMN asynchronous INTEGER NOT NULL DEFAULT 0;
"""

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED")
LIVE = ("RUNNING", "PAUSING", "PAUSED")  # not ended: operations (waits, callbacks) still complete
ARN_RE = re.compile(r"^arn:([a-zA-Z0-9-]+):lambda:([a-zA-Z0-9-]+):(\d{12}):function:([a-zA-Z0-9_-]+):"
                    r"(\$LATEST(?:\.PUBLISHED)?|[0-9]+)/durable-execution/([a-zA-Z0-9_-]+)/([a-zA-Z0-9_-]+)$")
NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
B64_RE = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
PREFIX = {"EXECUTION": "Execution", "CONTEXT": "Context", "STEP": "Step", "WAIT": "Wait", "CALLBACK": "Callback",
          "CHAINED_INVOKE": "ChainedInvoke"}
ENVELOPE_LIMIT = 5 * 1024 * 1024  # operations beyond this are read with GetDurableExecutionState
SYNC_LIMIT = 900.0
# An invocation that fails outside the handler's reach (a crash, a timeout, a retryable checkpoint error the SDK
# re-raises "to trigger Lambda retry") is run again from the last checkpoint after 1, 2, 4 s on the clock; AWS
# documents such backend retries but not their count.
REDRIVES = 3  # a synchronous Invoke waits at most 15 minutes for the execution, as on AWS


@dataclass
class Execution:
    id: int
    arn: str
    account: str
    region: str
    function: str
    version: str
    name: str
    invocation: str
    status: str
    input: str | None
    result: str | None
    error: dict | None
    config: dict
    started: float
    ended: float | None
    token: int
    seen: int
    changes: int
    wake: int
    invoking: int
    pause: dict | None
    deadline: float | None
    asynchronous: int

    @property
    def function_arn(self) -> str:
        return fn.function_arn(self.region, self.account, self.function, self.version)


COLUMNS = ("id, arn, account, region, function, version, name, invocation, status, input, result, error, config, "
           "started, ended, token, seen, changes, wake, invoking, pause, deadline, asynchronous")


def _execution(row: tuple | None) -> Execution | None:
    if row is None:
        return None
    values = list(row)
    values[11] = json.loads(values[11]) if values[11] else None
    values[12] = json.loads(values[12])
    values[20] = json.loads(values[20]) if values[20] else None
    return Execution(*values)


def _ms(value: float | None) -> int | None:
    return None if value is None else int(round(value * 1000))


def envelope_operation(op: dict) -> dict:
    """An operation as the SDK's ``Operation.from_json_dict`` reads it: timestamps in epoch ms."""
    out = json.loads(json.dumps(op))
    for key in ("StartTimestamp", "EndTimestamp"):
        if out.get(key) is not None:
            out[key] = _ms(out[key])
    if (out.get("StepDetails") or {}).get("NextAttemptTimestamp") is not None:
        out["StepDetails"]["NextAttemptTimestamp"] = _ms(out["StepDetails"]["NextAttemptTimestamp"])
    if (out.get("WaitDetails") or {}).get("ScheduledEndTimestamp") is not None:
        out["WaitDetails"]["ScheduledEndTimestamp"] = _ms(out["WaitDetails"]["ScheduledEndTimestamp"])
    return out


class DurableExecutions:
    """Durable executions of every function: the API operations and the replay loop."""

    def __init__(self, service: "Lambda") -> None:
        self.service = service
        self.store = service.store
        self.clock = service.clock
        self.cloud = service.cloud
        self.running: set[str] = set()  # executions with an invocation in flight in this process

    def start(self) -> None:
        jobs = self.cloud.jobs
        jobs.register("lambda.durable.resume", self._resume_job)
        jobs.register("lambda.durable.timer", self._timer_job)
        jobs.register("lambda.durable.chained", self._chained_job)

    # -- lookups ------------------------------------------------------------------------

    def _by_arn(self, arn: str) -> Execution | None:
        return _execution(self.store.one(f"SELECT {COLUMNS} FROM lambda_durable_executions WHERE arn=?", (arn,)))

    def _by_id(self, eid: int) -> Execution | None:
        return _execution(self.store.one(f"SELECT {COLUMNS} FROM lambda_durable_executions WHERE id=?", (eid,)))

    def _lookup(self, ctx: RequestContext | None, arn: str, missing: str = "ResourceNotFoundException") -> Execution:
        if not ARN_RE.match(arn or ""):
            raise validation(arn, "durableExecutionArn", ARN_RE.pattern[1:-1])
        ex = self._by_arn(arn)
        if ex is None or (ctx is not None and ex.account != ctx.account):
            if missing == "ResourceNotFoundException":
                raise execution_not_found(arn)
            raise invalid(f"Durable execution not found: {arn}")
        return ex

    def _ops(self, eid: int, since: int | None = None) -> list[dict]:
        sql = "SELECT body FROM lambda_durable_operations WHERE execution_id=?"
        args: tuple = (eid,)
        if since is not None:
            sql += " AND changed > ?"
            args = (eid, since)
        return [json.loads(b) for (b,) in self.store.all(sql + " ORDER BY seq", args)]

    def _count(self, eid: int) -> int:
        return self.store.one("SELECT COUNT(*) FROM lambda_durable_operations WHERE execution_id=?", (eid,))[0]

    def _op(self, eid: int, op_id: str) -> tuple[dict, dict] | None:
        row = self.store.one("SELECT body, meta FROM lambda_durable_operations WHERE execution_id=? AND op_id=?",
                             (eid, op_id))
        return (json.loads(row[0]), json.loads(row[1])) if row else None

    def _save_op(self, ex: Execution, op: dict, meta: dict | None = None) -> None:
        """Insert or replace an operation, marking it changed (checkpoint responses return changed ones)."""
        ex.changes += 1
        self.store.execute("UPDATE lambda_durable_executions SET changes=? WHERE id=?", (ex.changes, ex.id))
        found = self.store.one("SELECT seq, meta FROM lambda_durable_operations WHERE execution_id=? AND op_id=?",
                               (ex.id, op["Id"]))
        if found is None:
            self.store.execute("INSERT INTO lambda_durable_operations(execution_id, op_id, seq, changed, body, meta) "
                               "VALUES(?,?,?,?,?,?)", (ex.id, op["Id"], ex.changes, ex.changes, json.dumps(op),
                                                       json.dumps(meta or {})))
        else:
            self.store.execute("UPDATE lambda_durable_operations SET changed=?, body=?, meta=? WHERE execution_id=? "
                               "AND op_id=?", (ex.changes, json.dumps(op), json.dumps(meta if meta is not None else
                                                                                       json.loads(found[1])),
                                              ex.id, op["Id"]))

    def _event(self, ex: Execution, event_type: str, op: dict, details: dict | None = None) -> None:
        n = self.store.one("SELECT events FROM lambda_durable_executions WHERE id=?", (ex.id,))[0] + 1
        self.store.execute("UPDATE lambda_durable_executions SET events=? WHERE id=?", (n, ex.id))
        event: dict[str, Any] = {"EventType": event_type, "EventId": n, "Id": op["Id"],
                                 "EventTimestamp": self.clock.now()}
        for key in ("Name", "ParentId", "SubType"):
            if op.get(key):
                event[key] = op[key]
        event[f"{event_type}Details"] = details or {}
        self.store.execute("INSERT INTO lambda_durable_events(execution_id, event_id, body) VALUES(?,?,?)",
                           (ex.id, n, json.dumps(event)))

    # -- starting ---------------------------------------------------------------------------

    async def invoke(self, target: "Target", payload: bytes, invocation_type: str, name: str | None,
                     request_id: str) -> "InvokeResult":
        """Invoke of a durable function: start (or, by name, find) its execution; a synchronous
        invoke then waits for the execution's end and answers with its result."""
        from unkai.services.awslambda.service import InvokeResult

        if name is not None and not NAME_RE.match(name):
            raise validation(name, "durableExecutionName", "[a-zA-Z0-9-_]+")
        text = payload.decode("utf-8") if payload.strip() else "{}"
        with self.store.transaction():
            arn = self.begin(target, text, name, asynchronous=invocation_type == "Event")
        if invocation_type == "Event":
            return InvokeResult(202, b"", request_id=request_id, durable_execution_arn=arn)
        ex = await self.wait_for_end(arn)
        result = InvokeResult(200, b"", executed_version=target.version, request_id=request_id,
                              durable_execution_arn=arn)
        if ex is None or ex.status not in TERMINAL:
            result.payload = json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": "The durable execution did "
                                         "not finish within the 15 minutes a synchronous invocation waits."}).encode()
            result.function_error, result.error_type = "Unhandled", "Sandbox.Timedout"
        elif ex.status == "SUCCEEDED":
            result.payload = (ex.result or "null").encode()
        else:
            error = ex.error or {}
            result.error_type = error.get("ErrorType") or f"Execution{ex.status.title().replace('_', '')}"
            result.function_error = "Unhandled"
            body: dict[str, Any] = {"errorType": result.error_type, "errorMessage": error.get("ErrorMessage") or
                                    f"The durable execution ended {ex.status}."}
            if error.get("StackTrace"):
                body["stackTrace"] = error["StackTrace"]
            result.payload = json.dumps(body).encode()
        return result

    def begin(self, target: "Target", text: str, name: str | None, asynchronous: bool = False) -> str:
        """Create the execution (in the caller's transaction) and queue its first invocation;
        an existing execution of the same name and input is returned as it is, as on AWS."""
        version = target.version
        if name is not None:
            found = self.store.one("SELECT arn, input FROM lambda_durable_executions WHERE account=? AND region=? "
                                   "AND function=? AND name=?", (target.account, target.region, target.name, name))
            if found is not None:
                if found[1] != text:
                    raise already_started(name)
                return found[0]
        name = name or str(uuid.uuid4())
        invocation = str(uuid.uuid4())
        arn = f"{fn.function_arn(target.region, target.account, target.name, version)}/durable-execution/{name}/" \
              f"{invocation}"
        config = dict(target.config.get("DurableConfig") or {})
        now = self.clock.now()
        eid = self.store.execute(
            "INSERT INTO lambda_durable_executions(arn, account, region, function, version, name, invocation, status, "
            "input, config, started, asynchronous) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
            (arn, target.account, target.region, target.name, version, name, invocation, "RUNNING", text,
             json.dumps(config), now, int(asynchronous))).lastrowid
        ex = self._by_id(eid)
        assert ex is not None
        op = {"Id": invocation, "Type": "EXECUTION", "Status": "STARTED", "StartTimestamp": now,
              "ExecutionDetails": {"InputPayload": text}}
        self._save_op(ex, op)
        self._event(ex, "ExecutionStarted", op, {"Input": {"Payload": text, "Truncated": False},
                                                 "ExecutionTimeout": int(config.get("ExecutionTimeout") or 0)})
        self.cloud.jobs.enqueue("lambda.durable.resume", {"arn": arn})
        if config.get("ExecutionTimeout"):
            self.store.execute("UPDATE lambda_durable_executions SET deadline=? WHERE id=?",
                               (now + float(config["ExecutionTimeout"]), eid))
            self.cloud.jobs.enqueue("lambda.durable.timer", {"arn": arn, "what": "timeout"},
                                    delay=float(config["ExecutionTimeout"]))
        self.cloud.feed.publish("lambda.durable", function=target.name, execution=arn, name=name, status="RUNNING")
        return arn

    async def wait_for_end(self, arn: str) -> Execution | None:
        deadline = self.clock.now() + SYNC_LIMIT
        while True:
            ex = self._by_arn(arn)
            if ex is None or ex.status in TERMINAL or self.clock.now() >= deadline:
                return ex
            await self.cloud.signals.wait(("lambda.durable", arn), until=min(deadline, self.clock.now() + 5))

    # -- the replay loop ----------------------------------------------------------------------

    async def _resume_job(self, job: dict, attempt: int) -> None:
        arn = job["arn"]
        if arn in self.running:
            return  # the invocation in flight looks at ``wake`` when it ends
        ex = self._by_arn(arn)
        if ex is None or ex.status != "RUNNING" or not (ex.wake or ex.invoking):
            return
        try:
            target = self.service.resolve(ex.account, ex.region, ex.function,
                                          None if ex.version == "$LATEST" else ex.version)
        except ServiceError as exc:
            with self.store.transaction():
                self._finish(self._by_arn(arn), "FAILED", error={"ErrorType": "ResourceNotFoundException",
                                                                 "ErrorMessage": exc.message})
            return
        self.running.add(arn)
        try:
            await self._invoke_once(arn, target, int(job.get("redrive") or 0))
        finally:
            self.running.discard(arn)

    async def _invoke_once(self, arn: str, target: "Target", redrive: int = 0) -> None:
        with self.store.transaction():
            ex = self._by_arn(arn)
            if ex is None or ex.status != "RUNNING":
                return
            ex.token += 1
            self.store.execute("UPDATE lambda_durable_executions SET token=?, seen=?, wake=0, invoking=1 WHERE id=?",
                               (ex.token, ex.changes, ex.id))
            operations, size = [], 0
            for op in self._ops(ex.id):  # what fits in the invoke payload; the SDK pages in the rest
                operation = envelope_operation(op)
                size += len(json.dumps(operation))
                if size > ENVELOPE_LIMIT and operations:
                    break
                operations.append(operation)
            more = str(len(operations)) if len(operations) < self._count(ex.id) else ""
        envelope = {"DurableExecutionArn": arn, "CheckpointToken": self._token(ex.id, ex.token),
                    "InitialExecutionState": {"Operations": operations, "NextMarker": more}}
        request_id = str(uuid.uuid4())
        started = self.clock.now()
        await self.service.wait_for_slot(target)
        triggered_by(f"durable execution {ex.name}")
        try:
            result = await self.service.run(target, json.dumps(envelope).encode(), request_id=request_id,
                                            durable=True)
            payload, failed = result.payload, result.function_error is not None
        except ServiceError as exc:
            payload, failed = json.dumps({"errorType": exc.code, "errorMessage": exc.message}).encode(), True
        with self.store.transaction():
            ex = self._by_arn(arn)
            if ex is None:
                return
            self.store.execute("UPDATE lambda_durable_executions SET invoking=0 WHERE id=?", (ex.id,))
            done: dict[str, Any] = {"StartTimestamp": started, "EndTimestamp": self.clock.now(),
                                    "RequestId": request_id}
            output: dict = {}
            if not failed:
                try:
                    output = json.loads(payload)
                except ValueError:
                    output = {}
                if not isinstance(output, dict):
                    output = {}
            error = _error_object(payload) if failed else None
            if error:
                done["Error"] = {"Payload": error, "Truncated": False}
            self._event(ex, "InvocationCompleted", {"Id": ex.invocation}, done)
            if ex.status not in ("RUNNING", "PAUSING"):
                return
            status = output.get("Status")
            if failed and redrive < REDRIVES and ex.status == "RUNNING":
                self.store.execute("UPDATE lambda_durable_executions SET wake=1 WHERE id=?", (ex.id,))
                self.cloud.jobs.enqueue("lambda.durable.resume", {"arn": arn, "redrive": redrive + 1},
                                        delay=float(2 ** redrive))
            elif failed:
                self._finish(ex, "FAILED", error=error)
            elif status == "SUCCEEDED":
                result_text = output.get("Result")
                if not result_text:  # a large result was checkpointed on the EXECUTION operation instead
                    result_text = ex.result
                self._finish(ex, "SUCCEEDED", result=result_text)
            elif status == "FAILED":
                self._finish(ex, "FAILED", error=output.get("Error") or {"ErrorMessage": "The execution failed."})
            elif status == "PENDING":
                fresh = self._by_id(ex.id)
                if fresh is not None and fresh.status == "PAUSING":
                    self._paused(fresh)
                elif fresh is not None and fresh.wake:
                    self.cloud.jobs.enqueue("lambda.durable.resume", {"arn": arn})
            else:
                self._finish(ex, "FAILED", error={
                    "ErrorType": "Runtime.InvalidDurableOutput",
                    "ErrorMessage": "The function did not answer as a durable function does (Status SUCCEEDED, "
                    "FAILED or PENDING); is its handler decorated with @durable_execution?"})

    def _finish(self, ex: Execution | None, status: str, result: str | None = None, error: dict | None = None) -> None:
        """End the execution (in the caller's transaction): its EXECUTION operation, history, waiters."""
        if ex is None or ex.status in TERMINAL:
            return
        now = self.clock.now()
        self.store.execute("UPDATE lambda_durable_executions SET status=?, result=?, error=?, ended=?, wake=0 "
                           "WHERE id=?", (status, result, json.dumps(error) if error else None, now, ex.id))
        found = self._op(ex.id, ex.invocation)
        if found is not None:
            op = found[0]
            op.update(Status=status, EndTimestamp=now)
            self._save_op(ex, op)
        op = {"Id": ex.invocation}
        if status == "SUCCEEDED":
            self._event(ex, "ExecutionSucceeded", op, {"Result": {"Payload": result or "", "Truncated": False}})
        elif status == "STOPPED":
            self._event(ex, "ExecutionStopped", op, {"Error": {"Payload": error or {}, "Truncated": False}})
        elif status == "TIMED_OUT":
            self._event(ex, "ExecutionTimedOut", op, {"Error": {"Payload": error or {}, "Truncated": False}})
        else:
            self._event(ex, "ExecutionFailed", op, {"Error": {"Payload": error or {}, "Truncated": False}})
        fields: dict[str, Any] = {"function": ex.function, "execution": ex.arn, "name": ex.name, "status": status}
        if error:
            fields["error_type"] = error.get("ErrorType")
            fields["error_message"] = str(error.get("ErrorMessage") or "")[:2000]
        self.cloud.feed.publish("lambda.durable", **fields)
        if ex.asynchronous and status != "SUCCEEDED":
            self._dead_letter(ex, error)
        days = int(ex.config.get("RetentionPeriodInDays") or 14)
        self.cloud.jobs.enqueue("lambda.durable.timer", {"arn": ex.arn, "what": "expire"}, delay=days * 86400.0)
        key = ("lambda.durable", ex.arn)
        self.store.after_commit(lambda: self.cloud.signals.notify(key))

    def _dead_letter(self, ex: Execution, error: dict | None) -> None:
        """A durable execution started asynchronously that ends FAILED, STOPPED or TIMED_OUT: its event
        goes to the function's dead-letter queue, as AWS's durable functions guide describes."""
        try:
            target = self.service.resolve(ex.account, ex.region, ex.function,
                                          None if ex.version == "$LATEST" else ex.version)
        except ServiceError:
            return
        dlq = (target.config.get("DeadLetterConfig") or {}).get("TargetArn")
        if not dlq:
            return
        message = str((error or {}).get("ErrorMessage") or f"The durable execution ended {ex.status}.")
        attributes = {"RequestID": {"DataType": "String", "StringValue": ex.invocation},
                      "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                      "ErrorMessage": {"DataType": "String", "StringValue": message[:1024]}}
        self.service.asynchronous._send(target, dlq, ex.input or "{}", attributes)

    def _wake(self, ex: Execution) -> None:
        """Something the execution waits for happened: replay it (now, or when its invocation ends)."""
        self.store.execute("UPDATE lambda_durable_executions SET wake=1 WHERE id=?", (ex.id,))
        self.cloud.jobs.enqueue("lambda.durable.resume", {"arn": ex.arn})

    # -- timers and chained invokes ---------------------------------------------------------------

    async def _timer_job(self, job: dict, attempt: int) -> None:
        with self.store.transaction():
            ex = self._by_arn(job["arn"])
            what = job["what"]
            if ex is not None and what == "expire" and ex.status in TERMINAL:
                # the execution's history is kept for RetentionPeriodInDays after it ends, as on AWS
                self.store.execute("DELETE FROM lambda_durable_executions WHERE id=?", (ex.id,))
                return
            if ex is None or ex.status not in LIVE:
                return
            if what == "timeout":
                if ex.deadline is not None and (ex.deadline > self.clock.now() + 1e-6 or (
                        ex.status == "PAUSED" and (ex.pause or {}).get("ExecutionTimeoutPaused"))):
                    return  # a pause moved the deadline: the timer set at resume decides
                self._finish(ex, "TIMED_OUT", error={"ErrorType": "Lambda.ExecutionTimedOut", "ErrorMessage":
                                                     "The durable execution exceeded its ExecutionTimeout."})
                return
            found = self._op(ex.id, job["op"])
            if found is None:
                return
            op, meta = found
            now = self.clock.now()
            if what == "wait" and op["Status"] == "STARTED":
                op.update(Status="SUCCEEDED", EndTimestamp=now)
                self._save_op(ex, op)
                self._event(ex, "WaitSucceeded", op, {"Duration": int(meta.get("seconds") or 0)})
                self._wake(ex)
            elif what == "retry" and op["Status"] == "PENDING":
                op["Status"] = "READY"
                self._save_op(ex, op)
                self._wake(ex)
            elif what in ("callback", "heartbeat") and op["Status"] == "STARTED":
                if what == "heartbeat" and meta.get("heartbeat_due", 0) > now + 1e-6:
                    self.cloud.jobs.enqueue("lambda.durable.timer", job, delay=meta["heartbeat_due"] - now)
                    return
                error = {"ErrorType": "Callback.Timeout" if what == "callback" else "Callback.HeartbeatTimeout",
                         "ErrorMessage": "Callback timed out" if what == "callback" else "Callback heartbeat timed out"}
                op.update(Status="TIMED_OUT", EndTimestamp=now)
                op["CallbackDetails"]["Error"] = error
                self._save_op(ex, op)
                self._event(ex, "CallbackTimedOut", op, {"Error": {"Payload": error, "Truncated": False}})
                self._wake(ex)

    async def _chained_job(self, job: dict, attempt: int) -> None:
        ex = self._by_arn(job["arn"])
        if ex is None or ex.status not in LIVE:
            return
        triggered_by(f"durable execution {ex.name}")
        try:
            result = await self.service.invoke(job["function"], (job.get("payload") or "").encode(), region=ex.region,
                                               account=ex.account, wait_for_slot=True)
            failed = result.function_error is not None
            text = result.payload.decode("utf-8", "replace")
            error = _error_object(result.payload) if failed else None
        except ServiceError as exc:
            failed, text, error = True, "", {"ErrorType": exc.code, "ErrorMessage": exc.message}
        with self.store.transaction():
            ex = self._by_arn(job["arn"])
            if ex is None or ex.status not in LIVE:
                return
            found = self._op(ex.id, job["op"])
            if found is None or found[0]["Status"] != "STARTED":
                return
            op = found[0]
            op.update(Status="FAILED" if failed else "SUCCEEDED", EndTimestamp=self.clock.now())
            op["ChainedInvokeDetails"] = {"Error": error} if failed else {"Result": text}
            self._save_op(ex, op)
            if failed:
                self._event(ex, "ChainedInvokeFailed", op, {"Error": {"Payload": error, "Truncated": False}})
            else:
                self._event(ex, "ChainedInvokeSucceeded", op, {"Result": {"Payload": text, "Truncated": False}})
            self._wake(ex)

    # -- tokens ----------------------------------------------------------------------------

    @staticmethod
    def _token(eid: int, n: int) -> str:
        return base64.b64encode(f"unkai:{eid}:{n}".encode()).decode()

    def _check_token(self, ex: Execution, token: str) -> None:
        if token != self._token(ex.id, ex.token):
            raise invalid("Invalid Checkpoint Token: the token was already used or belongs to another invocation.")

    # -- the data plane the SDK calls ---------------------------------------------------------

    def checkpoint_durable_execution(self, ctx: RequestContext, params: dict) -> dict:
        ex = self._lookup(ctx, params["DurableExecutionArn"], missing="InvalidParameterValueException")
        if ex.status not in ("RUNNING", "PAUSING"):
            # no token: the SDK reads this as "the execution is over" (or paused), and ends the invocation
            return {"NewExecutionState": {"Operations": []}}
        self._check_token(ex, params["CheckpointToken"])
        seen = ex.seen
        for update in params.get("Updates") or []:
            self._apply(ex, update)
            if ex.status in TERMINAL:
                break
        ex_now = self._by_id(ex.id)
        assert ex_now is not None
        changed = self._ops(ex.id, since=seen)
        if ex_now.status == "PAUSING":  # the pause takes effect at this checkpoint: replay after the resume
            self._paused(ex_now)
            self.store.execute("UPDATE lambda_durable_executions SET wake=1 WHERE id=?", (ex.id,))
        if ex_now.status != "RUNNING":
            return {"NewExecutionState": {"Operations": changed}}
        ex_now.token += 1
        self.store.execute("UPDATE lambda_durable_executions SET token=?, seen=? WHERE id=?",
                           (ex_now.token, ex_now.changes, ex.id))
        return {"CheckpointToken": self._token(ex.id, ex_now.token), "NewExecutionState": {"Operations": changed}}

    def get_durable_execution_state(self, ctx: RequestContext, params: dict) -> dict:
        ex = self._lookup(ctx, params["DurableExecutionArn"], missing="InvalidParameterValueException")
        if ex.status in ("RUNNING", "PAUSING"):
            self._check_token(ex, params["CheckpointToken"])
        ops = self._ops(ex.id)
        start = _offset(params.get("Marker"))
        limit = params.get("MaxItems") or 1000
        page = ops[start:start + limit]
        out: dict[str, Any] = {"Operations": page}
        if start + limit < len(ops):
            out["NextMarker"] = str(start + limit)
        return out

    def _apply(self, ex: Execution, update: dict) -> None:
        """One OperationUpdate of a checkpoint, as the Lambda service records it."""
        oid, kind, action = update.get("Id"), update.get("Type"), update.get("Action")
        now = self.clock.now()
        if kind == "EXECUTION":
            if oid != ex.invocation:
                raise invalid(f"Operation {oid} is not this execution's EXECUTION operation.")
            if action == "SUCCEED":
                self._finish(ex, "SUCCEEDED", result=update.get("Payload"))
            elif action == "FAIL":
                self._finish(ex, "FAILED", error=update.get("Error") or {})
            else:
                raise invalid(f"Invalid action {action} for an EXECUTION operation.")
            ex.status = "SUCCEEDED" if action == "SUCCEED" else "FAILED"
            return
        found = self._op(ex.id, oid)
        op, meta = found if found else ({"Id": oid, "Type": kind, "StartTimestamp": now}, {})
        if found and op["Type"] != kind:
            raise invalid(f"Operation {oid} is a {op['Type']} operation, not {kind}.")
        for key in ("ParentId", "Name", "SubType"):
            if update.get(key) and not op.get(key):
                op[key] = update[key]
        prefix = PREFIX.get(kind)
        if prefix is None:
            raise invalid(f"Invalid operation type {kind}.")
        error = update.get("Error")
        payload = update.get("Payload")
        if action == "START":
            if found and op.get("Status") not in ("READY", "PENDING", "STARTED"):
                raise invalid(f"Operation {oid} has already been started.")
            op["Status"] = "STARTED"
            details: dict[str, Any] = {}
            if kind == "STEP":
                op["StepDetails"] = {"Attempt": (op.get("StepDetails") or {}).get("Attempt", 0)}
                details = {}
            elif kind == "WAIT":
                seconds = int((update.get("WaitOptions") or {}).get("WaitSeconds") or 1)
                end = now + seconds
                op["WaitDetails"] = {"ScheduledEndTimestamp": end}
                meta["seconds"] = seconds
                details = {"Duration": seconds, "ScheduledEndTimestamp": end}
                self.cloud.jobs.enqueue("lambda.durable.timer", {"arn": ex.arn, "op": oid, "what": "wait"},
                                        delay=seconds)
            elif kind == "CALLBACK":
                options = update.get("CallbackOptions") or {}
                callback_id = base64.b64encode(f"{ex.id}:{oid}:{secrets.token_hex(8)}".encode()).decode()
                op["CallbackDetails"] = {"CallbackId": callback_id}
                details = {"CallbackId": callback_id}
                if options.get("TimeoutSeconds"):
                    details["Timeout"] = options["TimeoutSeconds"]
                    self.cloud.jobs.enqueue("lambda.durable.timer", {"arn": ex.arn, "op": oid, "what": "callback"},
                                            delay=float(options["TimeoutSeconds"]))
                if options.get("HeartbeatTimeoutSeconds"):
                    details["HeartbeatTimeout"] = options["HeartbeatTimeoutSeconds"]
                    meta["heartbeat"] = options["HeartbeatTimeoutSeconds"]
                    meta["heartbeat_due"] = now + options["HeartbeatTimeoutSeconds"]
                    self.cloud.jobs.enqueue("lambda.durable.timer", {"arn": ex.arn, "op": oid, "what": "heartbeat"},
                                            delay=float(options["HeartbeatTimeoutSeconds"]))
            elif kind == "CHAINED_INVOKE":
                options = update.get("ChainedInvokeOptions") or {}
                if not options.get("FunctionName"):
                    raise invalid("ChainedInvokeOptions.FunctionName is required to start a chained invoke.")
                op["ChainedInvokeDetails"] = {}
                details = {"FunctionName": options["FunctionName"], "Input": {"Payload": payload or "",
                                                                               "Truncated": False}}
                self.cloud.jobs.enqueue("lambda.durable.chained", {"arn": ex.arn, "op": oid, "function":
                                                                   options["FunctionName"], "payload": payload})
            self._save_op(ex, op, meta)
            if kind != "STEP" or not found:
                self._event(ex, f"{prefix}Started", op, details)
            return
        if action == "SUCCEED":
            op.update(Status="SUCCEEDED", EndTimestamp=now)
            if kind == "STEP":
                step = op.setdefault("StepDetails", {"Attempt": 0})
                step["Attempt"] = step.get("Attempt", 0) + 1
                step.pop("NextAttemptTimestamp", None)
                step.pop("Error", None)
                if payload is not None:
                    step["Result"] = payload
            elif kind == "CONTEXT":
                op["ContextDetails"] = {"Result": payload or ""}
                if (update.get("ContextOptions") or {}).get("ReplayChildren"):
                    op["ContextDetails"]["ReplayChildren"] = True
            elif kind in ("CALLBACK", "CHAINED_INVOKE"):
                key = "CallbackDetails" if kind == "CALLBACK" else "ChainedInvokeDetails"
                op.setdefault(key, {})["Result"] = payload or ""
            elif kind == "WAIT":
                pass
            self._save_op(ex, op, meta)
            details = {"Result": {"Payload": payload or "", "Truncated": False}} if kind != "WAIT" else {}
            if kind == "STEP":
                details["RetryDetails"] = {"CurrentAttempt": op["StepDetails"]["Attempt"]}
            self._event(ex, f"{prefix}Succeeded", op, details)
            return
        if action == "FAIL":
            op.update(Status="FAILED", EndTimestamp=now)
            error = error or {}
            if kind == "STEP":
                step = op.setdefault("StepDetails", {"Attempt": 0})
                step["Attempt"] = step.get("Attempt", 0) + 1
                step.pop("NextAttemptTimestamp", None)
                step["Error"] = error
            elif kind == "CONTEXT":
                op["ContextDetails"] = {"Error": error}
            elif kind in ("CALLBACK", "CHAINED_INVOKE"):
                key = "CallbackDetails" if kind == "CALLBACK" else "ChainedInvokeDetails"
                op.setdefault(key, {})["Error"] = error
            self._save_op(ex, op, meta)
            details = {"Error": {"Payload": error, "Truncated": False}}
            if kind == "STEP":
                details["RetryDetails"] = {"CurrentAttempt": op["StepDetails"]["Attempt"]}
            self._event(ex, f"{prefix}Failed", op, details)
            return
        if action == "RETRY":
            if kind != "STEP":
                raise invalid(f"Invalid action RETRY for a {kind} operation.")
            delay = int((update.get("StepOptions") or {}).get("NextAttemptDelaySeconds") or 1)
            step = op.setdefault("StepDetails", {"Attempt": 0})
            step["Attempt"] = step.get("Attempt", 0) + 1
            step["NextAttemptTimestamp"] = now + delay
            if error:
                step["Error"] = error
            if payload is not None:
                step["Result"] = payload
            op["Status"] = "PENDING"
            self._save_op(ex, op, meta)
            self._event(ex, "StepFailed" if error else "StepSucceeded", op, {
                **({"Error": {"Payload": error, "Truncated": False}} if error else
                   {"Result": {"Payload": payload or "", "Truncated": False}}),
                "RetryDetails": {"CurrentAttempt": step["Attempt"], "NextAttemptDelaySeconds": delay}})
            self.cloud.jobs.enqueue("lambda.durable.timer", {"arn": ex.arn, "op": oid, "what": "retry"}, delay=delay)
            return
        if action == "CANCEL":
            op.update(Status="CANCELLED", EndTimestamp=now)
            self._save_op(ex, op, meta)
            if kind == "WAIT":
                self._event(ex, "WaitCancelled", op, {})
            elif kind == "CHAINED_INVOKE":
                self._event(ex, "ChainedInvokeStopped", op, {"Error": {"Payload": {}, "Truncated": False}})
            return
        raise invalid(f"Invalid action {action} for a {kind} operation.")

    # -- callbacks -------------------------------------------------------------------------------

    def _callback(self, callback_id: str) -> tuple[Execution, dict, dict]:
        if not B64_RE.match(callback_id or "") or len(callback_id) > 1024:
            raise validation(callback_id, "callbackId", "[A-Za-z0-9+/]+={0,2}")
        try:
            eid, oid, _ = base64.b64decode(callback_id, validate=True).decode().split(":")
            ex = self._by_id(int(eid))
        except (ValueError, UnicodeDecodeError):
            ex = None
        found = self._op(ex.id, oid) if ex is not None else None
        if ex is None or found is None or (found[0].get("CallbackDetails") or {}).get("CallbackId") != callback_id:
            raise callback_not_found(callback_id)
        op, meta = found
        if op["Status"] != "STARTED" or ex.status not in LIVE:
            raise callback_closed()
        return ex, op, meta

    def send_durable_execution_callback_success(self, ctx: RequestContext, params: dict) -> dict:
        ex, op, meta = self._callback(params["CallbackId"])
        raw = params.get("Result") or b""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        op.update(Status="SUCCEEDED", EndTimestamp=self.clock.now())
        op["CallbackDetails"]["Result"] = text
        self._save_op(ex, op, meta)
        self._event(ex, "CallbackSucceeded", op, {"Result": {"Payload": text, "Truncated": False}})
        self._wake(ex)
        return {}

    def send_durable_execution_callback_failure(self, ctx: RequestContext, params: dict) -> dict:
        ex, op, meta = self._callback(params["CallbackId"])
        error = params.get("Error") or {}
        op.update(Status="FAILED", EndTimestamp=self.clock.now())
        op["CallbackDetails"]["Error"] = error
        self._save_op(ex, op, meta)
        self._event(ex, "CallbackFailed", op, {"Error": {"Payload": error, "Truncated": False}})
        self._wake(ex)
        return {}

    def send_durable_execution_callback_heartbeat(self, ctx: RequestContext, params: dict) -> dict:
        ex, op, meta = self._callback(params["CallbackId"])
        if meta.get("heartbeat"):
            meta["heartbeat_due"] = self.clock.now() + meta["heartbeat"]
            self.store.execute("UPDATE lambda_durable_operations SET meta=? WHERE execution_id=? AND op_id=?",
                               (json.dumps(meta), ex.id, op["Id"]))
        return {}

    # -- the control plane ----------------------------------------------------------------------

    def get_durable_execution(self, ctx: RequestContext, params: dict) -> dict:
        ex = self._lookup(ctx, params["DurableExecutionArn"])
        include = params.get("IncludeExecutionData")
        include = True if include is None else include
        out: dict[str, Any] = {
            "DurableExecutionArn": ex.arn, "DurableExecutionName": ex.name, "FunctionArn": ex.function_arn,
            "StartTimestamp": ex.started, "Status": ex.status, "Version": ex.version,
            "ExecutionDataIncluded": include}
        if ex.config:
            out["DurableConfig"] = ex.config
        if ex.ended is not None:
            out["EndTimestamp"] = ex.ended
        if ex.deadline is not None:
            out["ExpectedExecutionTimeoutTimestamp"] = ex.deadline
        if ex.pause and ex.status in ("PAUSING", "PAUSED"):
            out["PauseDetails"] = ex.pause
        if include:
            out["InputPayload"] = ex.input or ""
            if ex.result is not None:
                out["Result"] = ex.result
        if ex.error:
            out["Error"] = ex.error
        return out

    def get_durable_execution_history(self, ctx: RequestContext, params: dict) -> dict:
        ex = self._lookup(ctx, params["DurableExecutionArn"])
        events = [json.loads(b) for (b,) in self.store.all(
            "SELECT body FROM lambda_durable_events WHERE execution_id=? ORDER BY event_id", (ex.id,))]
        if params.get("IncludeExecutionData") is False:
            for event in events:
                for details in event.values():
                    if isinstance(details, dict):
                        for key in ("Input", "Result"):
                            if isinstance(details.get(key), dict):
                                details[key] = {"Truncated": True}
        if params.get("ReverseOrder"):
            events.reverse()
        start = _offset(params.get("Marker"))
        limit = params.get("MaxItems") or 100
        out: dict[str, Any] = {"Events": events[start:start + limit]}
        if start + limit < len(events):
            out["NextMarker"] = str(start + limit)
        return out

    def list_durable_executions_by_function(self, ctx: RequestContext, params: dict) -> dict:
        name, row = self.service._function(ctx, params["FunctionName"], params.get("Qualifier"))
        account, region = name.account or ctx.account, name.region or ctx.region
        sql = (f"SELECT {COLUMNS} FROM lambda_durable_executions WHERE account=? AND region=? AND function=?")
        args: list[Any] = [account, region, name.name]
        if name.qualifier:
            sql += " AND version=?"
            args.append(self.service.resolve(account, region, name.name, name.qualifier).version)
        if params.get("DurableExecutionName"):
            sql += " AND name=?"
            args.append(params["DurableExecutionName"])
        statuses = params.get("Statuses") or []
        if statuses:
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            args.extend(statuses)
        if params.get("StartedAfter") is not None:
            sql += " AND started > ?"
            args.append(float(params["StartedAfter"]))
        if params.get("StartedBefore") is not None:
            sql += " AND started < ?"
            args.append(float(params["StartedBefore"]))
        sql += " ORDER BY started DESC, id DESC" if params.get("ReverseOrder") else " ORDER BY started, id"
        rows = [_execution(r) for r in self.store.all(sql, tuple(args))]
        start = _offset(params.get("Marker"))
        limit = params.get("MaxItems") or 50
        items = []
        for ex in rows[start:start + limit]:
            assert ex is not None
            item: dict[str, Any] = {"DurableExecutionArn": ex.arn, "DurableExecutionName": ex.name,
                                    "FunctionArn": ex.function_arn, "Status": ex.status, "StartTimestamp": ex.started}
            if ex.ended is not None:
                item["EndTimestamp"] = ex.ended
            items.append(item)
        out: dict[str, Any] = {"DurableExecutions": items}
        if start + limit < len(rows):
            out["NextMarker"] = str(start + limit)
        return out

    def stop_durable_execution(self, ctx: RequestContext, params: dict) -> dict:
        ex = self._lookup(ctx, params["DurableExecutionArn"])
        if ex.status not in LIVE:
            raise invalid(f"Durable execution {ex.arn} is not running: it is {ex.status}.")
        error = params.get("Error") or {"ErrorType": "ExecutionStopped",
                                        "ErrorMessage": "The execution was stopped by StopDurableExecution."}
        self._finish(ex, "STOPPED", error=error)
        return {"StopTimestamp": self.clock.now()}

    def pause_durable_execution(self, ctx: RequestContext, params: dict) -> dict:
        ex = self._lookup(ctx, params["DurableExecutionArn"])
        if ex.status != "RUNNING":
            raise conflict(f"Durable execution {ex.arn} cannot be paused: it is {ex.status}.")
        now = self.clock.now()
        pause: dict[str, Any] = {"PauseRequestTimestamp": now,
                                 "ExecutionTimeoutPaused": bool(params.get("ExecutionTimeoutPaused"))}
        if params.get("Reason") is not None:
            pause["Reason"] = params["Reason"]
        in_flight = ex.arn in self.running or ex.invoking
        self.store.execute("UPDATE lambda_durable_executions SET status=?, pause=? WHERE id=?",
                           ("PAUSING" if in_flight else "PAUSED", json.dumps(pause), ex.id))
        details: dict[str, Any] = {"PauseRequestTimestamp": now,
                                   "ExecutionTimeoutPaused": pause["ExecutionTimeoutPaused"]}
        if "Reason" in pause:
            details["Reason"] = {"Payload": pause["Reason"], "Truncated": False}
        self._event(ex, "ExecutionPaused", {"Id": ex.invocation}, details)
        return {}

    def _paused(self, ex: Execution) -> None:
        self.store.execute("UPDATE lambda_durable_executions SET status='PAUSED' WHERE id=?", (ex.id,))
        ex.status = "PAUSED"

    def resume_durable_execution(self, ctx: RequestContext, params: dict) -> dict:
        ex = self._lookup(ctx, params["DurableExecutionArn"])
        if ex.status not in ("PAUSING", "PAUSED"):
            raise conflict(f"Durable execution {ex.arn} is not paused: it is {ex.status}.")
        now = self.clock.now()
        deadline = ex.deadline
        pause = ex.pause or {}
        if deadline is not None and pause.get("ExecutionTimeoutPaused"):
            # the time the pause took does not count against ExecutionTimeout
            deadline += now - float(pause.get("PauseRequestTimestamp") or now)
            self.cloud.jobs.enqueue("lambda.durable.timer", {"arn": ex.arn, "what": "timeout"},
                                    delay=max(0.0, deadline - now))
        self.store.execute("UPDATE lambda_durable_executions SET status='RUNNING', pause=NULL, deadline=? WHERE id=?",
                           (deadline, ex.id))
        details: dict[str, Any] = {"ResumeRequestTimestamp": now}
        if params.get("Reason") is not None:
            details["Reason"] = {"Payload": params["Reason"], "Truncated": False}
        self._event(ex, "ExecutionResumed", {"Id": ex.invocation}, details)
        if ex.status == "PAUSED" and (ex.wake or ex.invoking):
            # interrupted, or something finished meanwhile: Lambda invokes the function again
            self.cloud.jobs.enqueue("lambda.durable.resume", {"arn": ex.arn})
        return {}

    def delete_durable_execution(self, ctx: RequestContext, params: dict) -> dict:
        ex = self._lookup(ctx, params["DurableExecutionArn"])
        if ex.status not in TERMINAL:
            raise conflict(f"Durable execution {ex.arn} is {ex.status}: only an execution in a terminal state "
                           "(SUCCEEDED, FAILED, STOPPED or TIMED_OUT) can be deleted.")
        self.store.execute("DELETE FROM lambda_durable_executions WHERE id=?", (ex.id,))
        return {"DeletionRequestTimestamp": self.clock.now()}

    def pending(self) -> dict[str, int]:
        return {"durable_invocations": len(self.running)} if self.running else {}


def _offset(marker: str | None) -> int:
    if not marker:
        return 0
    if not marker.isdigit():
        raise invalid(f"Invalid Marker: {marker}")
    return int(marker)


def _error_object(payload: bytes) -> dict:
    """An invocation's error JSON (``errorType``...) as the durable API's ErrorObject."""
    try:
        body = json.loads(payload)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    error: dict[str, Any] = {"ErrorType": str(body.get("errorType") or "Unhandled"),
                             "ErrorMessage": str(body.get("errorMessage") or payload[:2000].decode("utf-8", "replace"))}
    if body.get("stackTrace"):
        error["StackTrace"] = [str(s) for s in body["stackTrace"]][:50]
    return error

