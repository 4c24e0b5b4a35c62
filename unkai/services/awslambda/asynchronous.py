"""Asynchronous invocation: Lambda's own durable queue of events (Invoke with
InvocationType=Event, and the ``lambda.invoke`` jobs SNS, S3 and EventBridge enqueue),
with AWS's retries (after about 1 and then 2 minutes, on unkai's clock), maximum event
age, dead-letter queues and OnSuccess/OnFailure destinations."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

from unkai.feed import triggered_by
from unkai.protocol import ServiceError
from unkai.protocol.values import iso8601
from unkai.runtime.pool import DEFAULT_MAX_ENVIRONMENTS
from unkai.services.awslambda.functions import DEFER_RECORDS

if TYPE_CHECKING:
    from unkai.services.awslambda.service import InvokeResult, Lambda, Target

log = logging.getLogger("unkai.lambda")

SIGNAL = "lambda.async"
DEFAULT_RETRIES = 2
DEFAULT_MAX_AGE = 21600
SCAN = 200


def retry_delay(attempt: int) -> float:
    """Seconds before retry ``attempt`` (1, 2): about one minute, then two."""
    return 60.0 * attempt


class AsyncInvocations:
    def __init__(self, service: "Lambda") -> None:
        self.service = service
        self.store = service.store
        self.clock = service.clock
        self.signals = service.cloud.signals
        self.inflight: set[int] = set()
        self.waiting = False  # due events wait for a free slot: a finished invocation wakes the dispatcher
        self._task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._dispatch(), name="lambda-async")

    async def stop(self) -> None:
        for task in [self._task, *self._tasks]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*[t for t in [self._task, *self._tasks] if t], return_exceptions=True)

    def wake(self) -> None:
        self.signals.notify(SIGNAL)

    def pending(self) -> dict[str, int]:
        due = self.store.one("SELECT COUNT(*) FROM lambda_async WHERE due <= ?", (self.clock.now(),))[0]
        return {"async_invocations": max(due, len(self.inflight))}

    def enqueue(self, target: "Target", payload: str, request_id: str, source: str | None,
                tenant_id: str | None = None) -> None:
        """Queue an event for ``target`` in the current transaction (for a tenant of a tenant-isolated function)."""
        now = self.clock.now()
        self.store.execute(
            "INSERT INTO lambda_async(account, region, function, qualifier, payload, request_id, source, due, created, "
            "tenant) VALUES(?,?,?,?,?,?,?,?,?,?)",
            (target.account, target.region, target.name, target.qualifier, payload, request_id, source, now, now,
             tenant_id))
        self.store.after_commit(self.wake)

    async def from_job(self, job: dict, attempt: int) -> None:
        """The ``lambda.invoke`` job kind: an event for a function from SNS, S3, EventBridge..."""
        arn = job["function"]
        parts = arn.split(":")
        region, account = (parts[3], parts[4]) if arn.startswith("arn:") and len(parts) >= 7 else (
            self.service.config.region, self.service.config.account_id)
        try:
            target = self.service.resolve(account, region, arn)
        except ServiceError:
            log.warning("dropping an event from %s for %s: the function does not exist", job.get("source"), arn)
            return
        with self.store.transaction():
            self.enqueue(target, job["payload"], job.get("request_id") or str(uuid.uuid4()), job.get("source"))

    # -- the dispatcher -----------------------------------------------------------------

    async def _dispatch(self) -> None:
        while True:
            now = self.clock.now()
            scan = SCAN + len(self.inflight)
            rows = self.store.all(
                "SELECT id, account, region, function, qualifier, payload, request_id, source, attempts, created, "
                "tenant FROM lambda_async WHERE due <= ? ORDER BY due, id LIMIT ?", (now, scan))
            self.waiting = len(rows) >= scan  # more may be due than this pass saw
            started: dict[tuple, int] = {}
            for row in rows:
                rid = row[0]
                if rid in self.inflight:
                    continue
                try:
                    target = self.service.resolve(row[1], row[2], row[3], row[4])
                except ServiceError:
                    with self.store.transaction():
                        self.store.execute("DELETE FROM lambda_async WHERE id=?", (rid,))
                    continue
                limit = target.reserved if target.reserved is not None else DEFAULT_MAX_ENVIRONMENTS
                busy = self.service.inflight.get(target.key, 0) + started.get(target.key, 0)
                if busy >= limit:
                    self.waiting = True
                    continue  # throttled: the event waits in the queue until a slot frees
                started[target.key] = started.get(target.key, 0) + 1
                self.inflight.add(rid)
                task = asyncio.create_task(self._run(row, target))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            nxt = self.store.one("SELECT MIN(due) FROM lambda_async WHERE due > ?", (now,))[0]
            await self.signals.wait(SIGNAL, until=nxt if nxt is not None else now + 3600)

    async def _run(self, row: tuple, target: "Target") -> None:
        rid, _, _, _, _, payload, request_id, source, attempts, created, tenant = row
        try:
            settings = self.service.event_invoke_config(target)
            max_age = settings.get("MaximumEventAgeInSeconds", DEFAULT_MAX_AGE)
            max_retries = settings.get("MaximumRetryAttempts", DEFAULT_RETRIES)
            if self.clock.now() - created > max_age:
                with self.store.transaction():
                    self._fail(rid, target, settings, payload, request_id, attempts, None, "EventAgeExceeded")
                return
            triggered_by(f"{source} (async)" if source else "async Invoke")
            DEFER_RECORDS.set(True)  # the invocation's log lines and event commit with the bookkeeping below
            try:
                result = await self.service.run(target, payload.encode(), request_id=request_id, tenant_id=tenant)
            except ServiceError as exc:  # the event is not valid JSON, or the like: not retryable
                log.warning("async invocation of %s failed: %s", target.invoked_arn, exc.message)
                with self.store.transaction():
                    self.store.execute("DELETE FROM lambda_async WHERE id=?", (rid,))
                return
            attempts += 1
            with self.store.transaction():
                self.service.flush_records()
                if result.function_error is None:
                    self.store.execute("DELETE FROM lambda_async WHERE id=?", (rid,))
                    dest = ((settings.get("DestinationConfig") or {}).get("OnSuccess") or {}).get("Destination")
                    if dest:
                        self._deliver(target, dest, self._record(target, payload, request_id, attempts, result,
                                                                  "Success"), "Success")
                    return
                delay = retry_delay(attempts)
                if attempts <= max_retries and self.clock.now() + delay - created <= max_age:
                    self.store.execute("UPDATE lambda_async SET attempts=?, due=? WHERE id=?",
                                       (attempts, self.clock.now() + delay, rid))
                    self.service.cloud.feed.publish(
                        "lambda.async_retry", function=target.name, request_id=request_id, attempt=attempts,
                        of=max_retries, delay_s=delay, error_type=result.error_type)
                    return
                condition = "RetriesExhausted" if attempts > max_retries else "EventAgeExceeded"
                self._fail(rid, target, settings, payload, request_id, attempts, result, condition)
        finally:
            self.inflight.discard(rid)
            self.wake()

    def _fail(self, rid: int, target: "Target", settings: dict, payload: str, request_id: str, attempts: int,
              result: "InvokeResult | None", condition: str) -> None:
        """The event is given up on: to the dead-letter queue and the OnFailure destination."""
        self.store.execute("DELETE FROM lambda_async WHERE id=?", (rid,))
        dlq = (target.config.get("DeadLetterConfig") or {}).get("TargetArn")
        dest = ((settings.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        dlq_failed = False
        if dlq:
            message = ""
            if result is not None:
                try:
                    message = json.loads(result.payload).get("errorMessage", "")
                except (ValueError, AttributeError):
                    message = ""
            attributes = {
                "RequestID": {"DataType": "String", "StringValue": request_id},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {"DataType": "String", "StringValue": (message or condition)[:1024]},
            }
            dlq_failed = not self._send(target, dlq, payload, attributes)
        self.service.cloud.feed.publish("lambda.async_failed", function=target.name, arn=target.arn,
                                        request_id=request_id, condition=condition, attempts=attempts, dlq=dlq,
                                        dlq_failed=dlq_failed or None, destination=dest)
        if dest:
            self._deliver(target, dest, self._record(target, payload, request_id, attempts, result, condition),
                          "Failure")

    def _record(self, target: "Target", payload: str, request_id: str, attempts: int, result: "InvokeResult | None",
                condition: str) -> dict:
        """AWS's invocation record for destinations."""
        record: dict[str, Any] = {
            "version": "1.0",
            "timestamp": iso8601(self.clock.now()),
            "requestContext": {
                "requestId": request_id,
                "functionArn": f"{target.arn}:{target.qualifier or '$LATEST'}",
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "requestPayload": _json_or_text(payload),
        }
        if result is not None:
            context: dict[str, Any] = {"statusCode": result.status_code, "executedVersion": result.executed_version}
            if result.function_error:
                context["functionError"] = result.function_error
            record["responseContext"] = context
            record["responsePayload"] = _json_or_text(result.payload.decode("utf-8", "replace"))
        return record

    def _deliver(self, target: "Target", dest: str, record: dict, outcome: str) -> None:
        body = json.dumps(record)
        if ":events:" in dest:
            self._call(target, "events", "PutEvents", {"Entries": [{
                "Source": "lambda", "DetailType": f"Lambda Function Invocation Result - {outcome}",
                "Detail": body, "EventBusName": dest, "Resources": [record["requestContext"]["functionArn"]]}]})
            return
        self._send(target, dest, body, None)

    def _send(self, target: "Target", arn: str, body: str, attributes: dict | None) -> bool:
        """Deliver to an SQS queue, SNS topic or Lambda function, inside the current transaction;
        False when it could not be delivered."""
        if ":sqs:" in arn:
            sqs = self.service.cloud.service("sqs")
            queue = sqs.queue_by_arn(arn)
            if queue is None:
                log.warning("destination %s of %s does not exist", arn, target.name)
                return False
            sqs.enqueue(queue, body, attributes, sender=target.account)
        elif ":sns:" in arn:
            params: dict[str, Any] = {"TopicArn": arn, "Message": body}
            if attributes:
                params["MessageAttributes"] = attributes
            return self._call(target, "sns", "Publish", params)
        elif ":lambda:" in arn:
            try:
                other = self.service.resolve(target.account, target.region, arn)
            except ServiceError:
                log.warning("destination %s of %s does not exist", arn, target.name)
                return False
            self.enqueue(other, body, str(uuid.uuid4()), "lambda")
        return True

    def _call(self, target: "Target", service: str, operation: str, params: dict) -> bool:
        if service not in self.service.cloud.services:
            log.warning("cannot deliver to %s: unkai has no %s service", params, service)
            return False
        try:
            self.service.cloud.call(service, operation, params, target.region)
        except (ServiceError, ValueError) as exc:
            log.warning("delivery from %s to %s failed: %s", target.name, service, exc)
            return False
        return True


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


