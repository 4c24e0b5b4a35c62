"""Stream event source mappings (DynamoDB Streams and Kinesis): one poller for every
stream source.

A ``StreamSource`` says how to list a stream's shards, read a shard after a position,
and shape a record for Lambda; everything else is shared. For each shard the poller
reads in order from a durable position, invokes the function with batches, and on
failure blocks the shard, retrying (with bisection, partial-batch checkpoints, retry and
age limits, and an OnFailure destination) until the batch succeeds or is given up on,
as AWS does. A child shard (after a split or merge) is read only once its parents are
finished. ``ParallelizationFactor`` runs up to 10 batches of one shard at once, split by
partition key, so each key's records stay in order. Tumbling windows carry the state a
function returns to its next invocation in the same window, and end with a final
invocation.

The durable state is the mapping's ``state`` row: ``{"positions": {shard: sequence},
"finished": [shard...], "windows": {shard: {"start", "state"}}}``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import uuid
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from unkai.feed import triggered_by
from unkai.pollers.poller import Poller
from unkai.protocol import ServiceError
from unkai.protocol.values import iso8601
from unkai.services.awslambda.functions import DEFER_RECORDS

if TYPE_CHECKING:
    from unkai.cloud import Cloud
    from unkai.pollers import Mappings

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0
DYNAMODB_SHARD = "0"  # a DynamoDB stream has one shard; its positions are kept under this key


@dataclass
class Shard:
    id: str
    parents: list[str] = field(default_factory=list)


@dataclass
class Read:
    records: list[dict]
    ended: bool = False  # a closed shard read to its end


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class StreamSource:
    """What the shared poller needs from one kind of stream."""

    batch_info = ""  # the OnFailure record's key, e.g. KinesisBatchInfo

    def __init__(self, cloud: "Cloud", arn: str) -> None:
        self.cloud = cloud
        self.arn = arn

    @property
    def signal(self) -> Any:
        """The ``signals`` key notified after a commit that adds records or shards."""
        raise NotImplementedError

    def shards(self) -> list[Shard]:
        """Every shard, parents first; raises ServiceError when the stream is gone."""
        raise NotImplementedError

    def read(self, shard: str, after: str | None, limit: int) -> Read:
        raise NotImplementedError

    def start(self, shard: str, kind: str, timestamp: float | None) -> str | None:
        """The position a mapping starting at ``kind`` reads after."""
        raise NotImplementedError

    def sequence(self, record: dict) -> str:
        raise NotImplementedError

    def arrival(self, record: dict) -> float | None:
        raise NotImplementedError

    def partition_key(self, record: dict) -> str:
        return ""

    def event_record(self, record: dict, shard: str, role: str) -> dict:
        """The record as the function receives it."""
        raise NotImplementedError

    def filter_view(self, record: dict, event_record: dict) -> dict:
        """What FilterCriteria patterns are matched against."""
        return event_record

    def shard_name(self, shard: str) -> str:
        return shard

    def label(self) -> str:
        """What the event feed names as the cause of the invocations."""
        raise NotImplementedError


class DynamoDBSource(StreamSource):
    """Built on ``cloud.service("dynamodbstreams")``: ``stream_records``, ``latest_sequence``."""

    batch_info = "DDBStreamBatchInfo"

    @property
    def signal(self) -> Any:
        return ("dynamodb-stream", self.arn)

    def _streams(self) -> Any:
        streams = self.cloud.services.get("dynamodbstreams")
        if streams is None:
            raise ServiceError("ResourceNotFoundException", "DynamoDB Streams is not served.")
        return streams

    def shards(self) -> list[Shard]:
        self._streams().latest_sequence(self.arn)  # raises when the stream is gone
        return [Shard(DYNAMODB_SHARD)]

    def read(self, shard: str, after: str | None, limit: int) -> Read:
        return Read(self._streams().stream_records(self.arn, after, limit))

    def start(self, shard: str, kind: str, timestamp: float | None) -> str | None:
        return self._streams().latest_sequence(self.arn) if kind == "LATEST" else None

    def sequence(self, record: dict) -> str:
        return record["dynamodb"]["SequenceNumber"]

    def arrival(self, record: dict) -> float | None:
        value = (record.get("dynamodb") or {}).get("ApproximateCreationDateTime")
        return float(value) if isinstance(value, (int, float)) else None

    def partition_key(self, record: dict) -> str:
        return json.dumps(record.get("dynamodb", {}).get("Keys"), sort_keys=True, default=_json_default)

    def event_record(self, record: dict, shard: str, role: str) -> dict:
        """GetRecords' shape, with ``userIdentity`` spelled ``{"type", "principalId"}`` and
        ``eventSourceARN`` added."""
        out = dict(record)
        identity = out.pop("userIdentity", None)
        out["eventSourceARN"] = self.arn
        if identity:
            out["userIdentity"] = {"type": identity.get("Type"), "principalId": identity.get("PrincipalId")}
        return out

    def label(self) -> str:
        return f"dynamodb stream {self.arn.split(':table/', 1)[-1].split('/', 1)[0]}"

    def shard_name(self, shard: str) -> str:
        try:
            return self._streams()._stream(self.arn).shard_id
        except (AttributeError, ServiceError):
            return "shardId-00000000000000000000-00000000"


class KinesisSource(StreamSource):
    """Built on ``cloud.service("kinesis")``: ``shard_list``, ``shard_records``,
    ``starting_sequence`` and the signal ``("kinesis", stream ARN)``. A consumer ARN
    (enhanced fan-out) reads its stream."""

    batch_info = "KinesisBatchInfo"

    def __init__(self, cloud: "Cloud", arn: str) -> None:
        super().__init__(cloud, arn)
        self.stream_arn = arn.split("/consumer/")[0]

    @property
    def signal(self) -> Any:
        return ("kinesis", self.stream_arn)

    def _kinesis(self) -> Any:
        kinesis = self.cloud.services.get("kinesis")
        if kinesis is None:
            raise ServiceError("ResourceNotFoundException", "Kinesis is not served.")
        return kinesis

    def shards(self) -> list[Shard]:
        from unkai.services.kinesis.streams import shard_name

        return [Shard(s.id, [shard_name(p) for p in (s.parent, s.adjacent) if p is not None])
                for s in self._kinesis().shard_list(self.stream_arn)]

    def read(self, shard: str, after: str | None, limit: int) -> Read:
        out = self._kinesis().shard_records(self.stream_arn, shard, after, limit)
        return Read(out["Records"], out["next"] is None)

    def start(self, shard: str, kind: str, timestamp: float | None) -> str | None:
        return self._kinesis().starting_sequence(self.stream_arn, shard, kind, timestamp)

    def sequence(self, record: dict) -> str:
        return record["SequenceNumber"]

    def arrival(self, record: dict) -> float | None:
        return record["ApproximateArrivalTimestamp"]

    def partition_key(self, record: dict) -> str:
        return record["PartitionKey"]

    def event_record(self, record: dict, shard: str, role: str) -> dict:
        return {
            "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": record["PartitionKey"],
                        "sequenceNumber": record["SequenceNumber"],
                        "data": base64.b64encode(record["Data"]).decode(),
                        "approximateArrivalTimestamp": record["ApproximateArrivalTimestamp"]},
            "eventSource": "aws:kinesis", "eventVersion": "1.0",
            "eventID": f"{shard}:{record['SequenceNumber']}", "eventName": "aws:kinesis:record",
            "invokeIdentityArn": role, "awsRegion": self.stream_arn.split(":")[3],
            "eventSourceARN": self.stream_arn,
        }

    def label(self) -> str:
        return f"kinesis stream {self.stream_arn.rsplit('/', 1)[-1]}"

    def filter_view(self, record: dict, event_record: dict) -> dict:
        """Kinesis patterns see the ``kinesis`` object, with ``data`` parsed when it is JSON."""
        view = dict(event_record["kinesis"])
        try:
            view["data"] = json.loads(record["Data"])
        except (ValueError, UnicodeDecodeError):
            pass
        return view


SOURCES: dict[str, type[StreamSource]] = {"dynamodb": DynamoDBSource, "kinesis": KinesisSource}


def initial_state(cloud: "Cloud", kind: str, config: dict) -> dict:
    """Where a new mapping starts on each shard: its StartingPosition, fixed at creation."""
    source = SOURCES[kind](cloud, config["EventSourceArn"])
    start = config.get("StartingPosition") or "TRIM_HORIZON"
    if start == "TRIM_HORIZON":
        return {"positions": {}, "finished": []}
    timestamp = config.get("StartingPositionTimestamp")
    positions: dict[str, str | None] = {}
    finished: list[str] = []
    shards = source.shards()
    children = {p for s in shards for p in s.parents}
    for shard in shards:
        if start == "LATEST" and shard.id in children:
            finished.append(shard.id)  # closed before the mapping existed: nothing new will come
        else:
            positions[shard.id] = source.start(shard.id, start, timestamp)
    return {"positions": positions, "finished": finished}


def _window_iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class StreamPoller(Poller):
    def __init__(self, mappings: "Mappings", uid: str, config: dict, kind: str) -> None:
        super().__init__(mappings, uid, config)
        self.source = SOURCES[kind](self.cloud, self.arn)
        self.busy = 0
        self.backoff: dict[str, float] = {}
        self.running: dict[str, asyncio.Task] = {}
        self.role = ""

    def start(self) -> None:
        try:
            target = self.mappings.service.resolve(self.account, self.region, self.config["FunctionArn"])
            self.role = target.config.get("Role", "")
        except (ServiceError, AttributeError):
            pass
        self.tasks = [asyncio.create_task(self._supervise(), name=f"stream-mapping-{self.uid}")]

    def cancel(self) -> None:
        for task in list(self.running.values()):
            task.cancel()
        super().cancel()

    async def stop(self) -> None:
        running = list(self.running.values())
        await super().stop()
        await asyncio.gather(*running, return_exceptions=True)

    # -- state --------------------------------------------------------------------------------

    def _state(self) -> dict:
        state = self.mappings.load_state(self.uid)
        positions = state.setdefault("positions", {})
        if "position" in state:  # written before mappings had shards
            positions[DYNAMODB_SHARD] = state.pop("position")
        state.setdefault("finished", [])
        return state

    def _position(self, shard: str) -> str | None:
        return self._state()["positions"].get(shard)

    def _update(self, change: Any) -> None:
        with self.cloud.store.transaction():
            state = self._state()
            change(state)
            self.mappings.save_state(self.uid, state)

    def _advance(self, shard: str, record: dict) -> None:
        seq = self.source.sequence(record)
        self._update(lambda state: state["positions"].__setitem__(shard, seq))

    def _finish(self, shard: str) -> None:
        def change(state: dict) -> None:
            if shard not in state["finished"]:
                state["finished"].append(shard)
        self._update(change)
        self.cloud.signals.notify(self.source.signal)

    # -- the loops ------------------------------------------------------------------------------

    def pending(self) -> int:
        if self.busy:
            return 1
        now = self.cloud.clock.now()
        try:
            state = self._state()
            for shard in self.source.shards():
                if shard.id in state["finished"] or self.backoff.get(shard.id, 0) > now:
                    continue
                if shard.id not in self.running:
                    continue
                if self.source.read(shard.id, state["positions"].get(shard.id), 1).records:
                    return 1
        except ServiceError:
            return 0
        return 0

    async def _supervise(self) -> None:
        """Start a reader for each shard whose parents are finished (shards come and go with resharding)."""
        clock, signals = self.cloud.clock, self.cloud.signals
        while True:
            try:
                shards = self.source.shards()
            except ServiceError:
                shards = []
            finished = set(self._state()["finished"]) if shards else set()
            known = {s.id for s in shards}
            for shard in shards:
                if shard.id in self.running or shard.id in finished:
                    continue
                if any(p in known and p not in finished for p in shard.parents):
                    continue
                self.running[shard.id] = asyncio.create_task(self._read_shard(shard.id),
                                                             name=f"stream-mapping-{self.uid}-{shard.id}")
            for sid, task in list(self.running.items()):
                if task.done():
                    self.running.pop(sid)
            await signals.wait(self.source.signal, until=clock.now() + 3600)

    async def _read_shard(self, shard: str) -> None:
        clock, signals = self.cloud.clock, self.cloud.signals
        batch_size = self.config["BatchSize"]
        window = self.config.get("MaximumBatchingWindowInSeconds") or 0
        tumbling = self.config.get("TumblingWindowInSeconds") or 0
        while True:
            position = self._position(shard)
            try:
                read = self.source.read(shard, position, batch_size)
            except ServiceError:
                await signals.wait(self.source.signal, until=clock.now() + 3600)
                continue
            records = read.records
            if not records:
                if read.ended:
                    await self._close_window(shard, None)
                    self._finish(shard)
                    return
                until = clock.now() + 3600
                open_window = self._state().get("windows", {}).get(shard)
                if tumbling and open_window:
                    end = open_window["start"] + tumbling
                    if clock.now() >= end:
                        await self._close_window(shard, None)
                        continue
                    until = end
                await signals.wait(self.source.signal, until=until)
                continue
            if window and len(records) < batch_size:
                deadline = clock.now() + window
                while len(records) < batch_size and clock.now() < deadline:
                    await signals.wait(self.source.signal, until=deadline)
                    records = self.source.read(shard, position, batch_size).records
            self.busy += 1
            try:
                await self._batch(shard, records)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stream mapping %s failed on %s", self.uid, shard)
                await clock.sleep_until(clock.now() + 1)
            finally:
                self.busy -= 1
                self.backoff.pop(shard, None)

    async def _batch(self, shard: str, records: list[dict]) -> None:
        max_age = self.config.get("MaximumRecordAgeInSeconds", -1)
        now = self.cloud.clock.now()
        tumbling = self.config.get("TumblingWindowInSeconds") or 0
        if tumbling:  # a batch never spans two windows
            first = int(self.source.arrival(records[0]) or now) // tumbling
            records = [r for r in records if int(self.source.arrival(r) or now) // tumbling == first] or records[:1]
        if max_age is not None and max_age >= 0:
            fresh_from = 0
            while fresh_from < len(records) and (self.source.arrival(records[fresh_from]) or now) < now - max_age:
                fresh_from += 1
            if fresh_from:
                self._on_failure(shard, records[:fresh_from], "RecordAgeExceeded", None, 0)
                self._advance(shard, records[fresh_from - 1])
                records = records[fresh_from:]
        kept = [r for r in records
                if self.mappings.passes(self.filters,
                                        self.source.filter_view(r, self.source.event_record(r, shard, self.role)))]
        if not kept:
            if records:
                self._advance(shard, records[-1])
            return
        if tumbling:
            start = (int(self.source.arrival(kept[0]) or now) // tumbling) * tumbling
            current = self._state().get("windows", {}).get(shard)
            if current and current["start"] != start:
                await self._close_window(shard, None)
            lanes = [kept]
        else:
            lanes = self._lanes(kept)
        if len(lanes) == 1:
            await self._deliver(shard, lanes[0], checkpoint=True)
        else:  # ParallelizationFactor: lanes by partition key, the shard moves on when all are done
            await asyncio.gather(*(self._deliver(shard, lane, checkpoint=False) for lane in lanes))
        self._advance(shard, records[-1])

    def _lanes(self, records: list[dict]) -> list[list[dict]]:
        factor = self.config.get("ParallelizationFactor") or 1
        if factor <= 1:
            return [records]
        lanes: dict[int, list[dict]] = {}
        for record in records:
            lanes.setdefault(zlib.crc32(self.source.partition_key(record).encode()) % factor, []).append(record)
        return list(lanes.values())

    async def _deliver(self, shard: str, batch: list[dict], checkpoint: bool) -> None:
        """Invoke until the batch succeeds or is given up on (the shard waits meanwhile)."""
        clock = self.cloud.clock
        max_retries = self.config.get("MaximumRetryAttempts", -1)
        max_age = self.config.get("MaximumRecordAgeInSeconds", -1)
        bisect = self.config.get("BisectBatchOnFunctionError", False)
        partial = "ReportBatchItemFailures" in (self.config.get("FunctionResponseTypes") or [])
        attempts = 0
        while batch:
            result = await self._invoke(shard, batch)
            attempts += 1
            if result is None or result.function_error:
                failed_from = 0
            elif partial:
                failed_from = self._checkpoint(result.payload, batch)
                if failed_from is None:
                    return
            else:
                return
            if failed_from:
                if checkpoint:
                    self._advance(shard, batch[failed_from - 1])
                batch = batch[failed_from:]
            with self.cloud.store.transaction():
                self.mappings.set_result(self.uid, "PROBLEM: Function call failed")
            if bisect and len(batch) > 1 and result is not None and result.function_error:
                # splitting does not count against the retry quota, as on AWS
                half = len(batch) // 2
                await self._deliver(shard, batch[:half], checkpoint)
                if checkpoint:
                    self._advance(shard, batch[half - 1])
                await self._deliver(shard, batch[half:], checkpoint)
                return
            oldest = self.source.arrival(batch[0])
            if max_retries is not None and 0 <= max_retries < attempts:
                self._on_failure(shard, batch, "RetryAttemptsExhausted", result, attempts)
                return
            if max_age is not None and max_age >= 0 and oldest is not None and clock.now() - oldest > max_age:
                self._on_failure(shard, batch, "RecordAgeExceeded", result, attempts)
                return
            delay = min(2.0 ** (attempts - 1), MAX_BACKOFF)
            self.backoff[shard] = clock.now() + delay
            self.busy -= 1
            try:
                await clock.sleep_until(self.backoff[shard])
            finally:
                self.busy += 1
                self.backoff.pop(shard, None)

    def _checkpoint(self, payload: bytes, batch: list[dict]) -> int | None:
        """Index of the first failed record a partial-batch response names; None if all
        succeeded; 0 (retry everything) when the response is malformed."""
        from unkai.pollers.sqs import failed_items

        sequences = {self.source.sequence(r) for r in batch}
        failed = failed_items(payload, sequences)
        if failed is None:
            return 0
        if not failed:
            return None
        return min(i for i, r in enumerate(batch) if self.source.sequence(r) in failed)

    # -- invoking -------------------------------------------------------------------------------

    async def _call(self, event: dict) -> Any:
        payload = json.dumps(event, default=_json_default).encode()
        triggered_by(self.source.label())
        DEFER_RECORDS.set(True)  # the invocation's log lines and event commit with this poller's next write
        try:
            return await self.mappings.service.invoke(self.config["FunctionArn"], payload, region=self.region,
                                                      account=self.account, wait_for_slot=True)
        except ServiceError as exc:
            log.warning("stream mapping %s could not invoke %s: %s", self.uid, self.config["FunctionArn"], exc.message)
            return None

    async def _invoke(self, shard: str, batch: list[dict]) -> Any:
        event: dict[str, Any] = {"Records": [self.source.event_record(r, shard, self.role) for r in batch]}
        tumbling = self.config.get("TumblingWindowInSeconds") or 0
        if tumbling:
            start = (int(self.source.arrival(batch[0]) or self.cloud.clock.now()) // tumbling) * tumbling
            current = self._state().get("windows", {}).get(shard) or {"start": start, "state": {}}
            event.update(self._window_fields(shard, start, tumbling, current.get("state") or {}, final=False))
        self._iterator_age(batch)
        result = await self._call(event)
        if result is not None and not result.function_error:
            with self.cloud.store.transaction():
                self.mappings.service.flush_records()
                self.mappings.set_result(self.uid, "OK")
            if tumbling:
                self._keep_window(shard, start, result.payload)
        return result

    def _iterator_age(self, batch: list[dict]) -> None:
        """AWS/Lambda IteratorAge: how long the batch's last record waited in the stream
        before this invocation (milliseconds), per function and across functions."""
        cw = self.cloud.services.get("cloudwatch")
        arrival = self.source.arrival(batch[-1]) if batch else None
        if cw is None or arrival is None:
            return
        parts = str(self.config.get("FunctionArn") or "").split(":")
        if len(parts) < 7:
            return
        age = max(0.0, (self.cloud.clock.now() - float(arrival)) * 1000.0)
        for dims in ([{"Name": "FunctionName", "Value": parts[6]}], None):
            cw.count(parts[4], parts[3], "AWS/Lambda", "IteratorAge", dims, round(age), "Milliseconds")

    def _window_fields(self, shard: str, start: int, size: int, state: dict, final: bool) -> dict:
        return {"window": {"start": _window_iso(start), "end": _window_iso(start + size)}, "state": state,
                "shardId": self.source.shard_name(shard), "eventSourceARN": getattr(self.source, "stream_arn",
                                                                                     self.arn),
                "isFinalInvokeForWindow": final, "isWindowTerminatedEarly": False}

    def _keep_window(self, shard: str, start: int, payload: bytes) -> None:
        try:
            answer = json.loads(payload or b"null")
        except ValueError:
            answer = None
        state = answer.get("state") if isinstance(answer, dict) and isinstance(answer.get("state"), dict) else {}
        self._update(lambda s: s.setdefault("windows", {}).__setitem__(shard, {"start": start, "state": state}))

    async def _close_window(self, shard: str, _unused: Any) -> None:
        """The window's final invocation (no records, ``isFinalInvokeForWindow``), then forget it."""
        tumbling = self.config.get("TumblingWindowInSeconds") or 0
        current = self._state().get("windows", {}).get(shard)
        if not tumbling or not current:
            return
        event = {"Records": []}
        event.update(self._window_fields(shard, current["start"], tumbling, current.get("state") or {}, final=True))
        await self._call(event)
        self._update(lambda s: s.setdefault("windows", {}).pop(shard, None))

    def _on_failure(self, shard: str, batch: list[dict], condition: str, result: Any, attempts: int) -> None:
        dest = ((self.config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        if not dest:
            return
        now = self.cloud.clock.now()
        record: dict[str, Any] = {
            "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": self.config["FunctionArn"],
                               "condition": condition, "approximateInvokeCount": attempts},
            "responseContext": {"statusCode": result.status_code if result else 200,
                                "executedVersion": result.executed_version if result else "$LATEST",
                                "functionError": result.function_error if result else "Unhandled"},
            "version": "1.0",
            "timestamp": iso8601(now),
            self.source.batch_info: {
                "shardId": self.source.shard_name(shard),
                "startSequenceNumber": self.source.sequence(batch[0]),
                "endSequenceNumber": self.source.sequence(batch[-1]),
                "approximateArrivalOfFirstRecord": iso8601(self.source.arrival(batch[0]) or now),
                "approximateArrivalOfLastRecord": iso8601(self.source.arrival(batch[-1]) or now),
                "batchSize": len(batch),
                "streamArn": getattr(self.source, "stream_arn", self.arn),
            },
        }
        if result is None or not result.function_error:
            record["responseContext"].pop("functionError", None)
        from unkai.targets import deliver

        with self.cloud.store.transaction():
            deliver(self.cloud, {"Arn": dest}, json.dumps(record), "lambda", record["requestContext"]["requestId"],
                    sender="lambda.amazonaws.com")
