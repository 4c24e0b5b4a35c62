"""SQS event source mappings: take batches from a queue the moment messages arrive,
invoke the function, delete what succeeded; failed messages come back through the
visibility timeout, so the queue's redrive policy applies as on AWS."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
from typing import TYPE_CHECKING, Any

from unkai.feed import TRACE, trace_root, triggered_by
from unkai.pollers.poller import Poller
from unkai.protocol import ServiceError
from unkai.runtime.pool import DEFAULT_MAX_ENVIRONMENTS
from unkai.services.awslambda.functions import DEFER_RECORDS

if TYPE_CHECKING:
    from unkai.pollers import Mappings

log = logging.getLogger(__name__)

MAX_PAYLOAD = 6 * 1024 * 1024


def sqs_record(message: dict, queue_arn: str, region: str) -> dict:
    """One SQS message as Lambda hands it to a function."""
    attributes = {}
    for name, attr in (message.get("MessageAttributes") or {}).items():
        item: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": attr["DataType"]}
        if "StringValue" in attr:
            item["stringValue"] = attr["StringValue"]
        if "BinaryValue" in attr:
            value = attr["BinaryValue"]
            item["binaryValue"] = base64.b64encode(value).decode() if isinstance(value, bytes) else value
        attributes[name] = {k: item[k] for k in ("stringValue", "binaryValue", "stringListValues", "binaryListValues",
                                                 "dataType") if k in item}
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes") or {},
        "messageAttributes": attributes,
        "md5OfBody": message["MD5OfBody"],
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update({"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region})
    return record


def filter_view(record: dict) -> dict:
    """What FilterCriteria patterns see: the record, with a JSON body parsed."""
    try:
        body = json.loads(record["body"])
    except ValueError:
        return record
    return dict(record, body=body) if isinstance(body, (dict, list)) or body is None else record


def failed_items(payload: bytes, ids: set[str]) -> set[str] | None:
    """The message ids a ReportBatchItemFailures response names; None when it is malformed
    (then the whole batch failed, as on AWS)."""
    try:
        response = json.loads(payload or b"null")
    except ValueError:
        return None
    if response is None or response == {}:
        return set()
    if not isinstance(response, dict):
        return set()
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    found = set()
    for item in failures:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not ident or ident not in ids:
            return None
        found.add(ident)
    return found


class QueuePoller(Poller):
    def __init__(self, mappings: "Mappings", uid: str, config: dict) -> None:
        super().__init__(mappings, uid, config)
        self.busy = 0
        # Messages already in flight when this poller starts were received by a process that is
        # gone (a crash, a kill -9): no invocation holds them, and they come back only after their
        # visibility timeout. Until then they are reported as interrupted, so a drain does not
        # answer "drained" while a message is on its way back.
        sqs = self.cloud.service("sqs")
        queue = sqs.queue_by_arn(self.arn)
        self.orphans: dict[int, int] = sqs.in_flight(queue) if queue is not None else {}

    def start(self) -> None:
        # One task receives, and each batch it takes runs in a task of its own, up to the mapping's
        # concurrency. One receiver per queue (not one per concurrent batch) means a sent message
        # wakes one reader, not eight that race for it and mostly find nothing.
        self.limit = (self.config.get("ScalingConfig") or {}).get("MaximumConcurrency") or DEFAULT_MAX_ENVIRONMENTS
        self.batches: set[asyncio.Task] = set()
        self.freed = asyncio.Event()
        self.tasks = [asyncio.create_task(self._receiver(), name=f"sqs-mapping-{self.uid}")]

    def cancel(self) -> None:
        super().cancel()
        for task in list(self.batches):
            task.cancel()

    async def stop(self) -> None:
        self.cancel()
        await asyncio.gather(*self.tasks, *self.batches, return_exceptions=True)

    def pending(self) -> int:
        sqs = self.cloud.service("sqs")
        queue = sqs.queue_by_arn(self.arn)
        visible = sqs.counts(queue)[0] if queue is not None else 0
        return self.busy + visible

    def interrupted(self) -> int:
        """Messages a crash left in flight that are not back yet (see ``__init__``)."""
        if not self.orphans:
            return 0
        sqs = self.cloud.service("sqs")
        queue = sqs.queue_by_arn(self.arn)
        left = sqs.still_in_flight(queue, self.orphans) if queue is not None else 0
        if not left:
            self.orphans = {}
        return left

    async def _receiver(self) -> None:
        sqs = self.cloud.service("sqs")
        clock = self.cloud.clock
        signals = self.cloud.signals
        batch_size = self.config["BatchSize"]
        window = self.config.get("MaximumBatchingWindowInSeconds") or 0
        while True:
            if len(self.batches) >= self.limit:  # every slot busy: take nothing the function could not start on
                self.freed.clear()
                await self.freed.wait()
                continue
            queue = sqs.queue_by_arn(self.arn)
            if queue is None:
                await signals.wait(("lambda-mapping", self.uid), until=clock.now() + 60)
                continue
            with self.cloud.store.transaction():
                messages = sqs.receive(queue, batch_size)
                # a partial batch that left nothing visible: sleep right after handing it on, without
                # a receive that would find nothing (nothing can commit before the wait below is
                # registered: no await in between, and every change happens on this thread)
                drained = not messages or (not window and len(messages) < batch_size and not sqs.has_visible(queue))
                nxt = sqs._next_visible(queue) if drained else None
            if not messages:
                await signals.wait(("sqs", queue.id), until=nxt if nxt is not None else clock.now() + 3600)
                continue
            self.busy += 1
            try:
                if window and len(messages) < batch_size:
                    deadline = clock.now() + window
                    while len(messages) < batch_size and clock.now() < deadline:
                        await signals.wait(("sqs", queue.id), until=deadline)
                        with self.cloud.store.transaction():
                            messages += sqs.receive(queue, batch_size - len(messages))
            except BaseException:
                self.busy -= 1
                raise
            task = asyncio.create_task(self._batch(sqs, queue, messages))
            self.batches.add(task)
            task.add_done_callback(functools.partial(self._batch_done, queue))
            if drained:
                await signals.wait(("sqs", queue.id), until=nxt if nxt is not None else clock.now() + 3600)

    def _batch_done(self, queue: Any, task: asyncio.Task) -> None:
        self.batches.discard(task)
        self.freed.set()
        if queue.fifo:  # its message groups are free again: their next messages are visible to the receiver
            self.cloud.signals.notify(("sqs", queue.id))

    async def _batch(self, sqs: Any, queue: Any, messages: list[dict]) -> None:
        try:
            await self._process(sqs, queue, messages)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("SQS event source mapping %s failed", self.uid)
        finally:
            self.busy -= 1

    async def _process(self, sqs: Any, queue: Any, messages: list[dict]) -> None:
        records = [sqs_record(m, self.arn, self.region) for m in messages]
        dropped = [r for r in records if not self.mappings.passes(self.filters, filter_view(r))] \
            if self.filters else []
        if dropped:
            with self.cloud.store.transaction():
                for record in dropped:
                    sqs.delete_receipt(queue, record["receiptHandle"])
            records = [r for r in records if r not in dropped]
        if not records:
            return
        payload = json.dumps({"Records": records}).encode()
        service = self.mappings.service
        triggered_by(f"sqs {self.arn.rsplit(':', 1)[-1]}")
        DEFER_RECORDS.set(True)  # the invocation's log lines and event commit with the deletes below
        TRACE.set(next((trace_root(r["attributes"].get("AWSTraceHeader")) for r in records
                        if r["attributes"].get("AWSTraceHeader")), ""))
        try:
            result = await service.invoke(self.config["FunctionArn"], payload, region=self.region, account=self.account,
                                          wait_for_slot=True)
        except ServiceError as exc:
            log.warning("SQS event source mapping %s could not invoke %s: %s", self.uid, self.config["FunctionArn"],
                        exc.message)
            with self.cloud.store.transaction():
                service.flush_records()
                self.mappings.set_result(self.uid, "PROBLEM: Function call failed")
            return
        ids = {r["messageId"] for r in records}
        if result.function_error:
            failed = ids
        elif "ReportBatchItemFailures" in (self.config.get("FunctionResponseTypes") or []):
            found = failed_items(result.payload, ids)
            failed = ids if found is None else found
        else:
            failed = set()
        with self.cloud.store.transaction():
            service.flush_records()
            for record in records:
                if record["messageId"] not in failed:
                    sqs.delete_receipt(queue, record["receiptHandle"])
            self.mappings.set_result(self.uid, "OK")
