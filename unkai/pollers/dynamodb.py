"""DynamoDB stream event source mappings: read the stream in order from a durable
position, invoke the function with batches, and on failure block the shard, retrying
(with bisection, partial-batch checkpoints, retry and age limits, and an OnFailure
destination) until the batch succeeds or expires, as AWS does.

Built on the contract of ``cloud.service("dynamodbstreams")``: ``stream_records(arn,
after_sequence, limit)``, ``latest_sequence(arn)`` and the signal
``("dynamodb-stream", arn)`` after a commit that adds records.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

from unkai.feed import triggered_by
from unkai.pollers.poller import Poller
from unkai.protocol import ServiceError
from unkai.protocol.values import iso8601

if TYPE_CHECKING:
    from unkai.pollers import Mappings

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _created(record: dict) -> float | None:
    value = (record.get("dynamodb") or {}).get("ApproximateCreationDateTime")
    return float(value) if isinstance(value, (int, float)) else None


def lambda_record(record: dict, stream_arn: str) -> dict:
    """A stream record as Lambda hands it to a function: GetRecords' shape, with
    ``userIdentity`` spelled ``{"type", "principalId"}`` and ``eventSourceARN`` added."""
    out = dict(record)
    identity = out.pop("userIdentity", None)
    out["eventSourceARN"] = stream_arn
    if identity:
        out["userIdentity"] = {"type": identity.get("Type"), "principalId": identity.get("PrincipalId")}
    return out


class StreamPoller(Poller):
    def __init__(self, mappings: "Mappings", uid: str, config: dict) -> None:
        super().__init__(mappings, uid, config)
        self.busy = False
        self.backoff_until: float | None = None

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._run(), name=f"stream-mapping-{self.uid}")]

    def _streams(self) -> Any:
        return self.cloud.services.get("dynamodbstreams")

    def pending(self) -> int:
        if self.busy:
            return 1
        if self.backoff_until is not None and self.cloud.clock.now() < self.backoff_until:
            return 0
        streams = self._streams()
        if streams is None:
            return 0
        try:
            return 1 if streams.stream_records(self.arn, self.mappings.load_state(self.uid).get("position"), 1) else 0
        except ServiceError:
            return 0

    async def _run(self) -> None:
        clock, signals = self.cloud.clock, self.cloud.signals
        batch_size = self.config["BatchSize"]
        window = self.config.get("MaximumBatchingWindowInSeconds") or 0
        while True:
            streams = self._streams()
            if streams is None:
                await signals.wait(("dynamodb-stream", self.arn), until=clock.now() + 3600)
                continue
            position = self.mappings.load_state(self.uid).get("position")
            try:
                records = streams.stream_records(self.arn, position, batch_size)
            except ServiceError:
                records = []
            if not records:
                await signals.wait(("dynamodb-stream", self.arn), until=clock.now() + 3600)
                continue
            if window and len(records) < batch_size:
                deadline = clock.now() + window
                while len(records) < batch_size and clock.now() < deadline:
                    await signals.wait(("dynamodb-stream", self.arn), until=deadline)
                    records = streams.stream_records(self.arn, position, batch_size)
            self.busy = True
            try:
                await self._batch(records)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("DynamoDB stream mapping %s failed", self.uid)
                await clock.sleep_until(clock.now() + 1)
            finally:
                self.busy = False
                self.backoff_until = None

    def _advance(self, record: dict) -> None:
        with self.cloud.store.transaction():
            state = self.mappings.load_state(self.uid)
            state["position"] = record["dynamodb"]["SequenceNumber"]
            self.mappings.save_state(self.uid, state)

    async def _batch(self, records: list[dict]) -> None:
        max_age = self.config.get("MaximumRecordAgeInSeconds", -1)
        now = self.cloud.clock.now()
        if max_age is not None and max_age >= 0:
            fresh_from = 0
            while fresh_from < len(records) and (_created(records[fresh_from]) or now) < now - max_age:
                fresh_from += 1
            if fresh_from:
                self._on_failure(records[:fresh_from], "RecordAgeExceeded", None, 0)
                self._advance(records[fresh_from - 1])
                records = records[fresh_from:]
        kept = [r for r in records if self.mappings.passes(self.filters, r)]
        if not kept:
            if records:
                self._advance(records[-1])
            return
        await self._deliver(kept)
        self._advance(records[-1])

    async def _deliver(self, batch: list[dict]) -> None:
        """Invoke until the batch succeeds or is given up on (the shard waits meanwhile)."""
        clock = self.cloud.clock
        max_retries = self.config.get("MaximumRetryAttempts", -1)
        max_age = self.config.get("MaximumRecordAgeInSeconds", -1)
        bisect = self.config.get("BisectBatchOnFunctionError", False)
        partial = "ReportBatchItemFailures" in (self.config.get("FunctionResponseTypes") or [])
        attempts = 0
        while batch:
            result = await self._invoke(batch)
            attempts += 1
            if result is None:
                failed_from = 0
            elif result.function_error:
                failed_from = 0
            elif partial:
                failed_from = self._checkpoint(result.payload, batch)
                if failed_from is None:
                    return
            else:
                return
            if failed_from:
                for record in batch[:failed_from]:
                    self._advance(record)
                batch = batch[failed_from:]
            with self.cloud.store.transaction():
                self.mappings.set_result(self.uid, "PROBLEM: Function call failed")
            if bisect and len(batch) > 1 and result is not None and result.function_error:
                # splitting does not count against the retry quota, as on AWS
                half = len(batch) // 2
                await self._deliver(batch[:half])
                self._advance(batch[half - 1])
                await self._deliver(batch[half:])
                return
            oldest = _created(batch[0])
            if max_retries is not None and 0 <= max_retries < attempts:
                self._on_failure(batch, "RetryAttemptsExhausted", result, attempts)
                return
            if max_age is not None and max_age >= 0 and oldest is not None and clock.now() - oldest > max_age:
                self._on_failure(batch, "RecordAgeExceeded", result, attempts)
                return
            delay = min(2.0 ** (attempts - 1), MAX_BACKOFF)
            self.backoff_until = clock.now() + delay
            self.busy = False
            try:
                await clock.sleep_until(self.backoff_until)
            finally:
                self.busy = True
                self.backoff_until = None

    def _checkpoint(self, payload: bytes, batch: list[dict]) -> int | None:
        """Index of the first failed record a partial-batch response names; None if all
        succeeded; 0 (retry everything) when the response is malformed."""
        from unkai.pollers.sqs import failed_items

        sequences = {r["dynamodb"]["SequenceNumber"] for r in batch}
        failed = failed_items(payload, sequences)
        if failed is None:
            return 0
        if not failed:
            return None
        return min(i for i, r in enumerate(batch) if r["dynamodb"]["SequenceNumber"] in failed)

    async def _invoke(self, batch: list[dict]) -> Any:
        event = {"Records": [lambda_record(r, self.arn) for r in batch]}
        payload = json.dumps(event, default=_json_default).encode()
        triggered_by(f"dynamodb stream {self.arn.split(':table/', 1)[-1].split('/', 1)[0]}")
        try:
            result = await self.mappings.service.invoke(self.config["FunctionArn"], payload, region=self.region,
                                                        account=self.account, wait_for_slot=True)
        except ServiceError as exc:
            log.warning("stream mapping %s could not invoke %s: %s", self.uid, self.config["FunctionArn"], exc.message)
            return None
        if not result.function_error:
            with self.cloud.store.transaction():
                self.mappings.set_result(self.uid, "OK")
        return result

    def _on_failure(self, batch: list[dict], condition: str, result: Any, attempts: int) -> None:
        dest = ((self.config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        if not dest:
            return
        try:
            shard = self._streams()._stream(self.arn).shard_id
        except (AttributeError, ServiceError):
            shard = "shardId-00000000000000000000-00000000"
        record: dict[str, Any] = {
            "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": self.config["FunctionArn"],
                               "condition": condition, "approximateInvokeCount": attempts},
            "responseContext": {"statusCode": result.status_code if result else 200,
                                "executedVersion": result.executed_version if result else "$LATEST",
                                "functionError": result.function_error if result else "Unhandled"},
            "version": "1.0",
            "timestamp": iso8601(self.cloud.clock.now()),
            "DDBStreamBatchInfo": {
                "shardId": shard,
                "startSequenceNumber": batch[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": batch[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": iso8601(_created(batch[0]) or self.cloud.clock.now()),
                "approximateArrivalOfLastRecord": iso8601(_created(batch[-1]) or self.cloud.clock.now()),
                "batchSize": len(batch),
                "streamArn": self.arn,
            },
        }
        if result is None or not result.function_error:
            record["responseContext"].pop("functionError", None)
        body = json.dumps(record)
        with self.cloud.store.transaction():
            if ":sqs:" in dest:
                sqs = self.cloud.service("sqs")
                queue = sqs.queue_by_arn(dest)
                if queue is not None:
                    sqs.enqueue(queue, body)
            elif ":sns:" in dest and "sns" in self.cloud.services:
                try:
                    self.cloud.call("sns", "Publish", {"TopicArn": dest, "Message": body}, dest.split(":")[3])
                except (ServiceError, ValueError) as exc:
                    log.warning("OnFailure delivery to %s failed: %s", dest, exc)
