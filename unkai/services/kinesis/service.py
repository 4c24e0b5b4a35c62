"""Kinesis Data Streams: the operation handlers (JSON and CBOR on the wire).

Writes (PutRecord, PutRecords) run in one store transaction each, so an acknowledged
record survives ``kill -9``; after the commit the signal ``("kinesis", stream ARN)``
wakes readers (Lambda's pollers, Firehose, SubscribeToShard). Shard iterators are
opaque tokens that carry the position, so GetRecords is one index range scan and keeps
no server-side cursor. Throughput limits (1 MB/s and 1,000 records/s per shard for
writes) are counted in memory per clock second.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import binascii
import hashlib
import json
import logging
import re
from typing import Any

from unkai.http import Response
from unkai.protocol import awsjson, eventstream, models
from unkai.services import Provisioned, RequestContext, ResourceContext, Service
from unkai.services.kinesis import errors, resources
from unkai.services.kinesis.streams import (
    MAX_HASH, MIGRATIONS, ShardRow, StreamRow, Streams, even_ranges, format_sequence, parse_sequence, shard_index,
    shard_name,
)

log = logging.getLogger(__name__)

ITERATOR_LIFETIME_MS = 300_000
MAX_RECORD = 1024 * 1024
MAX_REQUEST = 5 * 1024 * 1024
MAX_GET_BYTES = 10 * 1024 * 1024
SHARD_LIMIT = 500
ON_DEMAND_SHARDS = 4
SHARD_RECORDS_PER_SECOND = 1000
SHARD_BYTES_PER_SECOND = 1024 * 1024
_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,128}$")


def _hash_of(partition_key: str) -> int:
    return int.from_bytes(hashlib.md5(partition_key.encode()).digest(), "big")


class Kinesis(Service):
    name = "kinesis"
    migrations = MIGRATIONS
    resource_types = resources.TYPES

    def check_unimplemented(self, ctx: RequestContext, operation: str, params: dict) -> None:
        """An operation unkai does not serve still answers ResourceNotFoundException for a missing stream first, as AWS does."""
        if isinstance(params.get("StreamName"), str) or isinstance(params.get("StreamARN"), str):
            self._stream(ctx, params)

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.streams = Streams(self.store)
        self._rates: dict[tuple[int, int], list[int]] = {}
        self._open: dict[int, tuple[list[int], list[ShardRow]]] = {}  # open shards, dropped on any reshard
        self._trimmer: asyncio.Task | None = None

    async def start(self) -> None:
        self._trimmer = asyncio.create_task(self._trim_forever(), name="kinesis-trim")

    async def stop(self) -> None:
        if self._trimmer is not None:
            self._trimmer.cancel()

    async def resetting(self) -> None:
        # the open-shard cache and the per-shard write rates describe streams from before the reset
        self._open.clear()
        self._rates.clear()

    async def _trim_forever(self) -> None:
        """Records past their stream's retention are invisible at once and deleted hourly."""
        while True:
            await self.clock.sleep_until(self.clock.now() + 3600)
            try:
                with self.store.transaction():
                    for (sid,) in self.store.all("SELECT id FROM kinesis_streams"):
                        stream = self.streams.by_id(sid)
                        if stream is not None:
                            self.streams.trim(stream, self.clock.now())
            except Exception:  # never let the trimmer die
                log.exception("trimming Kinesis records failed")

    # -- lookups ----------------------------------------------------------------------------

    def _stream(self, ctx: RequestContext, params: dict) -> StreamRow:
        arn = params.get("StreamARN")
        name = params.get("StreamName")
        if arn:
            stream = self.streams.by_arn(arn)
            if stream is None:
                raise errors.stream_not_found(arn.rsplit("/", 1)[-1], ctx.account)
            return stream
        if not name:
            raise errors.invalid("Either StreamName or StreamARN should be provided.")
        stream = self.streams.find(ctx.account, ctx.region, name)
        if stream is None:
            raise errors.stream_not_found(name, ctx.account)
        return stream

    def _arn(self, ctx: RequestContext, name: str) -> str:
        return f"arn:aws:kinesis:{ctx.region}:{ctx.account}:stream/{name}"

    def _shard(self, stream: StreamRow, shard_id: Any) -> ShardRow:
        idx = shard_index(shard_id)
        shard = self.streams.shard(stream, idx) if idx is not None else None
        if shard is None:
            raise errors.not_found(f"Shard {shard_id} in stream {stream.name} under account {stream.account} "
                                   "does not exist")
        return shard

    def _open_shards(self, stream_id: int) -> list[ShardRow]:
        return self._router(stream_id)[1]

    def _router(self, stream_id: int) -> tuple[list[int], list[ShardRow]]:
        """The open shards of a stream and their starting hash keys, in hash key order (cached)."""
        found = self._open.get(stream_id)
        if found is None:
            shards = sorted(self.streams.open_shards(stream_id), key=lambda s: s.start_hash)
            found = self._open[stream_id] = ([s.start_hash for s in shards], shards)
        return found

    def _resharded(self, stream: StreamRow) -> None:
        self._open.pop(stream.id, None)
        self.store.after_commit(lambda: self._open.pop(stream.id, None))

    # -- streams ------------------------------------------------------------------------------

    def create_stream(self, ctx: RequestContext, params: dict) -> dict:
        name = params["StreamName"]
        if not _NAME.match(name):
            raise errors.validation(f"1 validation error detected: Value '{name}' at 'streamName' failed to satisfy "
                                    "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
        mode = (params.get("StreamModeDetails") or {}).get("StreamMode") or "PROVISIONED"
        count = params.get("ShardCount")
        if mode == "ON_DEMAND":
            if count is not None:
                raise errors.invalid("ShardCount is not supported for streams in ON_DEMAND mode.")
            count = ON_DEMAND_SHARDS
        elif count is None:
            raise errors.invalid("ShardCount is required for streams in PROVISIONED mode.")
        if count < 1:
            raise errors.validation(f"1 validation error detected: Value '{count}' at 'shardCount' failed to "
                                    "satisfy constraint: Member must have value greater than or equal to 1")
        if count + self._open_count(ctx) > SHARD_LIMIT:
            raise errors.limit(f"This request would exceed the shard limit for the account {ctx.account} in "
                               f"{ctx.region}. Current shard count for the account: {self._open_count(ctx)}. "
                               f"Limit: {SHARD_LIMIT}. Number of additional shards that would have resulted from "
                               f"this request: {count}. Refer to the AWS Service Limits page for more information.")
        if self.streams.find(ctx.account, ctx.region, name) is not None:
            raise errors.stream_exists(name, ctx.account)
        self.streams.create(ctx.account, ctx.region, name, self._arn(ctx, name), mode, count, self.clock.now(),
                            params.get("Tags") or {})
        return {}

    def _open_count(self, ctx: RequestContext) -> int:
        row = self.store.one("SELECT COUNT(*) FROM kinesis_shards s JOIN kinesis_streams t ON t.id=s.stream_id "
                             "WHERE t.account=? AND t.region=? AND s.end_seq IS NULL", (ctx.account, ctx.region))
        return row[0]

    def delete_stream(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params)
        if self.streams.consumers(stream) and not params.get("EnforceConsumerDeletion"):
            raise errors.in_use(f"Stream {stream.name} under account {ctx.account} has registered consumers.")
        self.streams.delete(stream)
        self._resharded(stream)
        return {}

    def _description(self, stream: StreamRow) -> dict:
        out: dict[str, Any] = {
            "StreamName": stream.name, "StreamARN": stream.arn, "StreamStatus": stream.status,
            "StreamModeDetails": {"StreamMode": stream.mode}, "RetentionPeriodHours": stream.retention_hours,
            "StreamCreationTimestamp": stream.created, "EnhancedMonitoring": [{"ShardLevelMetrics": stream.metrics}],
            "EncryptionType": stream.encryption,
        }
        if stream.key_id:
            out["KeyId"] = stream.key_id
        return out

    def describe_stream(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params)
        limit = params.get("Limit") or 100
        if not 1 <= limit <= 10000:
            raise errors.invalid("Limit must be between 1 and 10000.")
        shards = self.streams.shards(stream)
        start = params.get("ExclusiveStartShardId")
        if start:
            after = shard_index(start)
            shards = [s for s in shards if after is None or s.idx > after]
        out = self._description(stream)
        out["Shards"] = [s.describe() for s in shards[:limit]]
        out["HasMoreShards"] = len(shards) > limit
        return {"StreamDescription": out}

    def describe_stream_summary(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params)
        out = self._description(stream)
        out["StreamId"] = hashlib.md5(stream.arn.encode()).hexdigest()
        out["OpenShardCount"] = len(self.streams.open_shards(stream.id))
        out["ConsumerCount"] = len(self.streams.consumers(stream))
        return {"StreamDescriptionSummary": out}

    def list_streams(self, ctx: RequestContext, params: dict) -> dict:
        streams = self.streams.names(ctx.account, ctx.region)
        limit = params.get("Limit") or 100
        if not 1 <= limit <= 10000:
            raise errors.invalid("Limit must be between 1 and 10000.")
        token = params.get("NextToken")
        start = params.get("ExclusiveStartStreamName")
        if token:
            try:
                start = base64.urlsafe_b64decode(token.encode()).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise errors.invalid(f"Invalid NextToken: {token}") from None
        if start:
            streams = [s for s in streams if s.name > start]
        page = streams[:limit]
        out: dict[str, Any] = {
            "StreamNames": [s.name for s in page], "HasMoreStreams": len(streams) > limit,
            "StreamSummaries": [{"StreamName": s.name, "StreamARN": s.arn, "StreamStatus": s.status,
                                 "StreamModeDetails": {"StreamMode": s.mode},
                                 "StreamCreationTimestamp": s.created} for s in page],
        }
        if len(streams) > limit:
            out["NextToken"] = base64.urlsafe_b64encode(page[-1].name.encode()).decode()
        return out

    def list_shards(self, ctx: RequestContext, params: dict) -> dict:
        token = params.get("NextToken")
        after: int | None = None
        if token:
            if params.get("StreamName") or params.get("StreamARN"):
                raise errors.invalid("NextToken and StreamName cannot be provided together.")
            try:
                arn, after = json.loads(base64.urlsafe_b64decode(token.encode()))
            except (ValueError, TypeError, binascii.Error):
                raise errors.invalid(f"Invalid NextToken: {token}") from None
            params = {"StreamARN": arn}
        stream = self._stream(ctx, params)
        limit = params.get("MaxResults") or 1000
        if not 1 <= limit <= 10000:
            raise errors.invalid("MaxResults must be between 1 and 10000.")
        shards = self.streams.shards(stream)
        if params.get("ExclusiveStartShardId"):
            after = shard_index(params["ExclusiveStartShardId"])
        filt = params.get("ShardFilter") or {}
        kind = filt.get("Type")
        now = self.clock.now()
        if kind == "AFTER_SHARD_ID":
            if not filt.get("ShardId"):
                raise errors.invalid("Must specify ShardId when ShardFilter type is AFTER_SHARD_ID.")
            after = shard_index(filt["ShardId"])
        elif kind == "AT_LATEST":
            shards = [s for s in shards if s.open]
        elif kind == "AT_TRIM_HORIZON":
            # the shards a consumer starting at the trim horizon begins with: those without a live parent
            alive = {s.idx for s in shards if s.open or s.created >= now - stream.retention_hours * 3600}
            shards = [s for s in shards if s.parent not in alive and s.adjacent not in alive]
        elif kind in ("AT_TIMESTAMP", "FROM_TIMESTAMP"):
            if filt.get("Timestamp") is None:
                raise errors.invalid(f"Must specify Timestamp when ShardFilter type is {kind}.")
            ts = filt["Timestamp"]
            ended = self._shard_end_times(stream)
            shards = [s for s in shards if (kind == "FROM_TIMESTAMP" or s.created <= ts)
                      and (s.open or ended.get(s.idx, now) >= ts)]
        if after is not None:
            shards = [s for s in shards if s.idx > after]
        page = shards[:limit]
        out: dict[str, Any] = {"Shards": [s.describe() for s in page]}
        if len(shards) > limit:
            out["NextToken"] = base64.urlsafe_b64encode(json.dumps([stream.arn, page[-1].idx]).encode()).decode()
        return out

    def _shard_end_times(self, stream: StreamRow) -> dict[int, float]:
        """When each closed shard closed: the creation time of its children."""
        ended: dict[int, float] = {}
        for s in self.streams.shards(stream):
            for parent in (s.parent, s.adjacent):
                if parent is not None:
                    ended[parent] = s.created
        return ended

    def update_stream_mode(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, {"StreamARN": params["StreamARN"]})
        self.streams.update(stream, mode=params["StreamModeDetails"]["StreamMode"])
        return {}

    def describe_limits(self, ctx: RequestContext, params: dict) -> dict:
        on_demand = self.store.one("SELECT COUNT(*) FROM kinesis_streams WHERE account=? AND region=? AND "
                                   "mode='ON_DEMAND'", (ctx.account, ctx.region))[0]
        return {"ShardLimit": SHARD_LIMIT, "OpenShardCount": self._open_count(ctx),
                "OnDemandStreamCount": on_demand, "OnDemandStreamCountLimit": 50}

    # -- tags, retention, encryption, monitoring ------------------------------------------------

    def add_tags_to_stream(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params)
        tags = dict(stream.tags, **(params.get("Tags") or {}))
        if len(tags) > 50:
            raise errors.invalid(f"Failed to add tags to stream {stream.name} under account {ctx.account} because "
                                 "a given stream cannot have more than 50 tags associated with it.")
        self.streams.update(stream, tags=tags)
        return {}

    def remove_tags_from_stream(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params)
        self.streams.update(stream, tags={k: v for k, v in stream.tags.items() if k not in params["TagKeys"]})
        return {}

    def list_tags_for_stream(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params)
        keys = sorted(stream.tags)
        if params.get("ExclusiveStartTagKey"):
            keys = [k for k in keys if k > params["ExclusiveStartTagKey"]]
        limit = params.get("Limit") or 50
        return {"Tags": [{"Key": k, "Value": stream.tags[k]} for k in keys[:limit]], "HasMoreTags": len(keys) > limit}

    def _by_resource(self, ctx: RequestContext, arn: str) -> StreamRow:
        return self._stream(ctx, {"StreamARN": arn.split("/consumer/")[0]})

    def tag_resource(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._by_resource(ctx, params["ResourceARN"])
        self.streams.update(stream, tags=dict(stream.tags, **params["Tags"]))
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._by_resource(ctx, params["ResourceARN"])
        self.streams.update(stream, tags={k: v for k, v in stream.tags.items() if k not in params["TagKeys"]})
        return {}

    def list_tags_for_resource(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._by_resource(ctx, params["ResourceARN"])
        return {"Tags": [{"Key": k, "Value": v} for k, v in sorted(stream.tags.items())]}

    def increase_stream_retention_period(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params)
        hours = params["RetentionPeriodHours"]
        self._check_retention(hours)
        if hours < stream.retention_hours:
            raise errors.invalid(f"Requested retention period ({hours} hours) for stream {stream.name} can not be "
                                 f"shorter than existing retention period ({stream.retention_hours} hours). Use "
                                 "DecreaseRetentionPeriod API.")
        self.streams.update(stream, retention_hours=hours)
        return {}

    def decrease_stream_retention_period(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params)
        hours = params["RetentionPeriodHours"]
        self._check_retention(hours)
        if hours > stream.retention_hours:
            raise errors.invalid(f"Requested retention period ({hours} hours) for stream {stream.name} can not be "
                                 f"longer than existing retention period ({stream.retention_hours} hours). Use "
                                 "IncreaseRetentionPeriod API.")
        self.streams.update(stream, retention_hours=hours)
        return {}

    @staticmethod
    def _check_retention(hours: int) -> None:
        if hours < 24:
            raise errors.invalid(f"Minimum allowed retention period is 24 hours. Requested retention period "
                                 f"({hours} hours) is too short.")
        if hours > 8760:
            raise errors.invalid(f"Maximum allowed retention period is 8760 hours. Requested retention period "
                                 f"({hours} hours) is too long.")

    def start_stream_encryption(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params)
        if params["EncryptionType"] != "KMS":
            raise errors.invalid("EncryptionType must be KMS.")
        self.streams.update(stream, encryption="KMS", key_id=params["KeyId"])
        return {}

    def stop_stream_encryption(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params)
        self.streams.update(stream, encryption="NONE", key_id=None)
        return {}

    def _monitoring(self, ctx: RequestContext, params: dict, enable: bool) -> dict:
        stream = self._stream(ctx, params)
        wanted = params["ShardLevelMetrics"]
        every = ["IncomingBytes", "IncomingRecords", "OutgoingBytes", "OutgoingRecords", "WriteProvisionedThroughput"
                 "Exceeded", "ReadProvisionedThroughputExceeded", "IteratorAgeMilliseconds"]
        if "ALL" in wanted:
            wanted = every
        current = list(stream.metrics)
        desired = sorted(set(current) | set(wanted)) if enable else [m for m in current if m not in wanted]
        self.streams.update(stream, metrics=desired)
        return {"StreamName": stream.name, "StreamARN": stream.arn, "CurrentShardLevelMetrics": current,
                "DesiredShardLevelMetrics": desired}

    def enable_enhanced_monitoring(self, ctx: RequestContext, params: dict) -> dict:
        return self._monitoring(ctx, params, True)

    def disable_enhanced_monitoring(self, ctx: RequestContext, params: dict) -> dict:
        return self._monitoring(ctx, params, False)

    # -- writing ------------------------------------------------------------------------------

    def _route(self, stream: StreamRow, partition_key: Any, explicit: Any) -> ShardRow:
        if not isinstance(partition_key, str) or not 1 <= len(partition_key) <= 256:
            raise errors.validation("1 validation error detected: Value at 'partitionKey' failed to satisfy "
                                    "constraint: Member must have length less than or equal to 256")
        if explicit is not None:
            if not isinstance(explicit, str) or not explicit.isdigit() or int(explicit) > MAX_HASH:
                raise errors.invalid(f"Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. "
                                     f"Specified value was {explicit}")
            key = int(explicit)
        else:
            key = _hash_of(partition_key)
        starts, shards = self._router(stream.id)
        return shards[bisect.bisect_right(starts, key) - 1]  # open shards cover the whole key space

    def _admit(self, stream: StreamRow, shard: ShardRow, size: int, second: int | None = None) -> bool:
        """Count a write against its shard's per-second limits; False when it would exceed them."""
        if second is None:
            second = int(self.clock.now())
        rate = self._rates.get((stream.id, shard.idx))
        if rate is None or rate[0] != second:
            rate = self._rates[(stream.id, shard.idx)] = [second, 0, 0]
        if rate[1] + 1 > SHARD_RECORDS_PER_SECOND or rate[2] + size > SHARD_BYTES_PER_SECOND:
            return False
        rate[1] += 1
        rate[2] += size
        return True

    def _writable(self, stream: StreamRow) -> None:
        if stream.status not in ("ACTIVE", "UPDATING"):
            raise errors.not_found(f"Stream {stream.name} under account {stream.account} not found.")

    def _insert(self, stream: StreamRow, rows: list[tuple[ShardRow, str, bytes]]) -> list[int]:
        first = self.streams.bump(stream.id, len(rows))
        now_ms = self.clock.now_ms()
        seqs = list(range(first, first + len(rows)))
        self.store.db.executemany(
            "INSERT INTO kinesis_records(stream_id, shard, seq, arrival, pkey, data) VALUES(?,?,?,?,?,?)",
            [(stream.id, shard.idx, seq, now_ms, key, data) for seq, (shard, key, data) in zip(seqs, rows)])
        arn = stream.arn
        self.store.after_commit(lambda: self.cloud.signals.notify(("kinesis", arn)))
        return seqs

    def put_record(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params)
        self._writable(stream)
        data = params["Data"]
        if len(data) > MAX_RECORD:
            raise errors.validation("1 validation error detected: Value at 'data' failed to satisfy constraint: "
                                    "Member must have length less than or equal to 1048576")
        shard = self._route(stream, params["PartitionKey"], params.get("ExplicitHashKey"))
        if params.get("SequenceNumberForOrdering") is not None:
            parse_sequence(params["SequenceNumberForOrdering"])  # only checked: our numbers always increase
        if not self._admit(stream, shard, len(data) + len(params["PartitionKey"])):
            raise errors.throttled(shard.id, stream.name, stream.account)
        (seq,) = self._insert(stream, [(shard, params["PartitionKey"], data)])
        return {"ShardId": shard.id, "SequenceNumber": format_sequence(seq), "EncryptionType": stream.encryption}

    def put_records(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params)
        self._writable(stream)
        entries = params["Records"]
        if not 1 <= len(entries) <= 500:
            raise errors.validation(f"1 validation error detected: Value '{len(entries)}' at 'records' failed to "
                                    "satisfy constraint: Member must have length less than or equal to 500")
        total = 0
        for i, entry in enumerate(entries):
            if len(entry["Data"]) > MAX_RECORD:
                raise errors.validation(f"1 validation error detected: Value at 'records.{i + 1}.member.data' "
                                        "failed to satisfy constraint: Member must have length less than or equal "
                                        "to 1048576")
            total += len(entry["Data"]) + len(entry["PartitionKey"])
        if total > MAX_REQUEST:
            raise errors.invalid(f"Records size exceeds 5 MB limit")
        results: list[dict] = []
        accepted: list[tuple[int, tuple[ShardRow, str, bytes]]] = []
        second = int(self.clock.now())
        for entry in entries:
            shard = self._route(stream, entry["PartitionKey"], entry.get("ExplicitHashKey"))
            if self._admit(stream, shard, len(entry["Data"]) + len(entry["PartitionKey"]), second):
                accepted.append((len(results), (shard, entry["PartitionKey"], entry["Data"])))
                results.append({"ShardId": shard.id})
            else:
                results.append({"ErrorCode": "ProvisionedThroughputExceededException",
                                "ErrorMessage": errors.throttled_message(shard.id, stream.name, stream.account)})
        if accepted:
            seqs = self._insert(stream, [row for _, row in accepted])
            for (i, _), seq in zip(accepted, seqs):
                results[i]["SequenceNumber"] = format_sequence(seq)
        return {"FailedRecordCount": len(entries) - len(accepted), "Records": results,
                "EncryptionType": stream.encryption}

    # -- reading ------------------------------------------------------------------------------

    def _iterator(self, stream: StreamRow, shard: ShardRow, after: int) -> str:
        raw = json.dumps([stream.id, shard.idx, after, self.clock.now_ms(), stream.arn]).encode()
        return base64.b64encode(raw).decode()

    def _position(self, stream: StreamRow, shard: ShardRow, kind: str, sequence: Any, timestamp: Any) -> int:
        """The sequence number after which reading starts."""
        if kind == "TRIM_HORIZON":
            return shard.start_seq
        if kind == "LATEST":
            last = self.streams.last_record(stream.id, shard.idx)
            return max(last[0] if last else shard.start_seq, shard.start_seq)
        if kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
            if sequence is None:
                raise errors.invalid(f"Must specify StartingSequenceNumber for {kind} shard iterator type.")
            try:
                seq = parse_sequence(sequence)
            except Exception:
                raise errors.invalid(f"StartingSequenceNumber {sequence} used in GetShardIterator on shard "
                                     f"{shard.id} in stream {stream.name} under account {stream.account} is "
                                     "invalid.") from None
            if seq < shard.start_seq or (shard.end_seq is not None and seq > shard.end_seq):
                raise errors.invalid(f"StartingSequenceNumber {sequence} used in GetShardIterator on shard "
                                     f"{shard.id} in stream {stream.name} under account {stream.account} is "
                                     "invalid because it did not come from this stream.")
            return seq - 1 if kind == "AT_SEQUENCE_NUMBER" else seq
        if kind == "AT_TIMESTAMP":
            if timestamp is None:
                raise errors.invalid("Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. "
                                     "Current request has no timestamp parameter.")
            first = self.streams.first_at(stream.id, shard.idx, int(float(timestamp) * 1000))
            if first is not None:
                return max(first - 1, shard.start_seq)
            return self._position(stream, shard, "LATEST", None, None)
        raise errors.invalid(f"Invalid ShardIteratorType: {kind}")

    def get_shard_iterator(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params)
        shard = self._shard(stream, params["ShardId"])
        after = self._position(stream, shard, params["ShardIteratorType"], params.get("StartingSequenceNumber"),
                               params.get("Timestamp"))
        return {"ShardIterator": self._iterator(stream, shard, after)}

    def _children(self, stream: StreamRow, shard: ShardRow) -> list[dict]:
        out = []
        for child in self.streams.shards(stream):
            if shard.idx in (child.parent, child.adjacent):
                parents = [shard_name(p) for p in (child.parent, child.adjacent) if p is not None]
                out.append({"ShardId": child.id, "ParentShards": parents,
                            "HashKeyRange": {"StartingHashKey": str(child.start_hash),
                                             "EndingHashKey": str(child.end_hash)}})
        return out

    def read(self, stream: StreamRow, shard: ShardRow, after: int, limit: int) -> dict:
        """Records of a shard after a position, GetRecords' answer without the iterator:
        ``Records``, ``MillisBehindLatest``, ``next`` (position) and ``ChildShards`` at a
        closed shard's end."""
        now = self.clock.now()
        since = int((now - stream.retention_hours * 3600) * 1000)
        rows = self.streams.records(stream.id, shard.idx, after, limit, since)
        size, kept = 0, []
        for row in rows:
            size += len(row[3])
            if kept and size > MAX_GET_BYTES:
                break
            kept.append(row)
        records = [{"SequenceNumber": format_sequence(seq), "ApproximateArrivalTimestamp": arrival / 1000.0,
                    "Data": data, "PartitionKey": pkey} for seq, arrival, pkey, data in kept]
        if stream.encryption != "NONE":
            for record in records:
                record["EncryptionType"] = stream.encryption
        position = kept[-1][0] if kept else after
        last = self.streams.last_record(stream.id, shard.idx)
        behind = 0
        if kept and last is not None and last[0] > position:
            behind = max(0, int(now * 1000) - kept[-1][1])
        out: dict[str, Any] = {"Records": records, "MillisBehindLatest": behind, "next": position}
        if shard.end_seq is not None and (last is None or position >= last[0]):
            out["ChildShards"] = self._children(stream, shard)
            out["next"] = None
        return out

    def get_records(self, ctx: RequestContext, params: dict) -> dict:
        token = params["ShardIterator"]
        try:
            sid, idx, after, issued, arn = json.loads(base64.b64decode(token.encode(), validate=True))
            int(sid), int(idx), int(after), int(issued)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise errors.invalid("Invalid ShardIterator.") from None
        limit = params.get("Limit") or 10000
        if not 1 <= limit <= 10000:
            raise errors.invalid(f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy "
                                 "constraint: Member must have value less than or equal to 10000")
        now_ms = self.clock.now_ms()
        if now_ms - issued > ITERATOR_LIFETIME_MS:
            raise errors.expired_iterator(issued, now_ms)
        stream = self.streams.by_id(sid)
        if stream is None or stream.arn != arn:
            raise errors.stream_not_found(arn.rsplit("/", 1)[-1], ctx.account)
        shard = self.streams.shard(stream, idx)
        if shard is None:
            raise errors.invalid("Invalid ShardIterator.")
        out = self.read(stream, shard, after, limit)
        position = out.pop("next")
        if position is not None:
            out["NextShardIterator"] = self._iterator(stream, shard, position)
        return out

    # -- resharding -------------------------------------------------------------------------

    def split_shard(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params)
        shard = self._shard(stream, params["ShardToSplit"])
        text = params["NewStartingHashKey"]
        if not shard.open:
            raise errors.in_use(f"Shard {shard.id} in stream {stream.name} under account {ctx.account} has already "
                                "been merged or split, and thus is not eligible for merging or splitting.")
        if not text.isdigit() or not shard.start_hash + 1 <= int(text) <= shard.end_hash:
            raise errors.invalid(f"NewStartingHashKey {text} used in SplitShard() on shard {shard.id} in stream "
                                 f"{stream.name} under account {ctx.account} is not both greater than one plus the "
                                 f"shard's StartingHashKey {shard.start_hash} and less than the shard's EndingHashKey "
                                 f"{shard.end_hash}.")
        self._check_growth(ctx, 1)
        new = int(text)
        self._reshard(stream, [shard], [(shard.start_hash, new - 1, shard.idx, None),
                                        (new, shard.end_hash, shard.idx, None)])
        return {}

    def merge_shards(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params)
        first = self._shard(stream, params["ShardToMerge"])
        second = self._shard(stream, params["AdjacentShardToMerge"])
        for s in (first, second):
            if not s.open:
                raise errors.in_use(f"Shard {s.id} in stream {stream.name} under account {ctx.account} has already "
                                    "been merged or split, and thus is not eligible for merging or splitting.")
        lo, hi = sorted([first, second], key=lambda s: s.start_hash)
        if lo.end_hash + 1 != hi.start_hash:
            raise errors.invalid(f"Shards {first.id} and {second.id} in stream {stream.name} under account "
                                 f"{ctx.account} are not an adjacent pair of shards eligible for merging")
        self._reshard(stream, [first, second], [(lo.start_hash, hi.end_hash, first.idx, second.idx)])
        return {}

    def update_shard_count(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params)
        target = params["TargetShardCount"]
        current = self._open_shards(stream.id)
        if params.get("ScalingType", "UNIFORM_SCALING") != "UNIFORM_SCALING":
            raise errors.invalid("ScalingType must be UNIFORM_SCALING.")
        if target > 2 * len(current) or target * 2 < len(current):
            raise errors.invalid(f"UpdateShardCount cannot scale up over double your current open shard count "
                                 f"or scale down below half your current open shard count. Current open shard "
                                 f"count: {len(current)}. Target shard count: {target}")
        self._check_growth(ctx, target - len(current))
        children = []
        for lo, hi in even_ranges(target):
            parents = [s.idx for s in current if s.start_hash <= hi and lo <= s.end_hash]
            children.append((lo, hi, parents[0], parents[1] if len(parents) > 1 else None))
        self._reshard(stream, current, children)
        return {"StreamName": stream.name, "StreamARN": stream.arn, "CurrentShardCount": len(current),
                "TargetShardCount": target}

    def _check_growth(self, ctx: RequestContext, extra: int) -> None:
        if extra > 0 and self._open_count(ctx) + extra > SHARD_LIMIT:
            raise errors.limit(f"This request would exceed the shard limit for the account {ctx.account} in "
                               f"{ctx.region}. Limit: {SHARD_LIMIT}.")

    def _reshard(self, stream: StreamRow, parents: list[ShardRow],
                 children: list[tuple[int, int, int, int | None]]) -> None:
        """Close ``parents`` at the current sequence number and open ``children`` after it,
        in one transaction (AWS does it in the background while the stream is UPDATING)."""
        end = self.streams.bump(stream.id, 1)
        now = self.clock.now()
        for shard in parents:
            self.streams.close_shard(shard, end)
        idx = self.streams.next_index(stream)
        for i, (lo, hi, parent, adjacent) in enumerate(children):
            self.streams.add_shard(stream.id, idx + i, lo, hi, parent, adjacent, end, now)
        self._resharded(stream)
        arn = stream.arn
        self.store.after_commit(lambda: self.cloud.signals.notify(("kinesis", arn)))

    # -- enhanced fan-out -----------------------------------------------------------------------

    def register_stream_consumer(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, {"StreamARN": params["StreamARN"]})
        name = params["ConsumerName"]
        if any(c[0] == name for c in self.streams.consumers(stream)):
            raise errors.in_use(f"Consumer {name} under stream {stream.name} already exists for account "
                                f"{ctx.account}.")
        if len(self.streams.consumers(stream)) >= 20:
            raise errors.limit(f"Stream {stream.name} under account {ctx.account} already has 20 consumers.")
        now = self.clock.now()
        arn = f"{stream.arn}/consumer/{name}:{int(now)}"
        self.store.execute("INSERT INTO kinesis_consumers(stream_id, name, arn, created) VALUES(?,?,?,?)",
                           (stream.id, name, arn, now))
        return {"Consumer": {"ConsumerName": name, "ConsumerARN": arn, "ConsumerStatus": "ACTIVE",
                             "ConsumerCreationTimestamp": now}}

    def _consumer(self, ctx: RequestContext, params: dict) -> tuple[StreamRow, tuple]:
        if params.get("ConsumerARN"):
            row = self.store.one("SELECT stream_id, name, arn, created FROM kinesis_consumers WHERE arn=?",
                                 (params["ConsumerARN"],))
            if row is None:
                raise errors.not_found(f"Consumer {params['ConsumerARN']} under account {ctx.account} not found.")
            return self.streams.by_id(row[0]), row
        if not params.get("StreamARN") or not params.get("ConsumerName"):
            raise errors.invalid("Either ConsumerARN or both ConsumerName and StreamARN must be provided.")
        stream = self._stream(ctx, {"StreamARN": params["StreamARN"]})
        row = self.store.one("SELECT stream_id, name, arn, created FROM kinesis_consumers WHERE stream_id=? AND "
                             "name=?", (stream.id, params["ConsumerName"]))
        if row is None:
            raise errors.not_found(f"Consumer {params['ConsumerName']} under stream {stream.name} under account "
                                   f"{ctx.account} not found.")
        return stream, row

    def describe_stream_consumer(self, ctx: RequestContext, params: dict) -> dict:
        stream, (_, name, arn, created) = self._consumer(ctx, params)
        return {"ConsumerDescription": {"ConsumerName": name, "ConsumerARN": arn, "ConsumerStatus": "ACTIVE",
                                        "ConsumerCreationTimestamp": created, "StreamARN": stream.arn}}

    def deregister_stream_consumer(self, ctx: RequestContext, params: dict) -> dict:
        _, row = self._consumer(ctx, params)
        self.store.execute("DELETE FROM kinesis_consumers WHERE arn=?", (row[2],))
        return {}

    def list_stream_consumers(self, ctx: RequestContext, params: dict) -> dict:
        from unkai.paging import paged

        stream = self._stream(ctx, {"StreamARN": params["StreamARN"]})
        items = [{"ConsumerName": n, "ConsumerARN": a, "ConsumerStatus": "ACTIVE", "ConsumerCreationTimestamp": c}
                 for n, a, c in self.streams.consumers(stream)]
        return paged("Consumers", items, params.get("NextToken"), params.get("MaxResults"))

    async def subscribe_to_shard(self, ctx: RequestContext, params: dict) -> Response:
        """Enhanced fan-out: an event stream of SubscribeToShardEvents for up to five
        minutes (on unkai's clock), each sent as soon as records arrive, plus a heartbeat
        event every 5 seconds as AWS sends."""
        with self.store.transaction():
            stream, _ = self._consumer(ctx, {"ConsumerARN": params["ConsumerARN"]})
            shard = self._shard(stream, params["ShardId"])
            start = params["StartingPosition"]
            after = self._position(stream, shard, start["Type"], start.get("SequenceNumber"),
                                   start.get("Timestamp"))
        shape = models.load_model("kinesis").shape_for("SubscribeToShardEvent")
        request = ctx.request

        async def events():
            yield eventstream.encode_message({":message-type": "event", ":event-type": "initial-response",
                                              ":content-type": "application/json"}, b"{}")
            gone = asyncio.ensure_future(request.disconnected())
            deadline = self.clock.now() + 300
            position = after
            try:
                while self.clock.now() < deadline and not gone.done():
                    with self.store.transaction():
                        current = self.streams.shard(stream, shard.idx)
                        if current is None:
                            return
                        out = self.read(stream, current, position, 10000)
                    nxt = out.pop("next")
                    event: dict[str, Any] = {"Records": out["Records"], "MillisBehindLatest": out["MillisBehindLatest"],
                                             "ContinuationSequenceNumber": format_sequence(nxt if nxt is not None
                                                                                           else position)}
                    if "ChildShards" in out:
                        event["ChildShards"] = out["ChildShards"]
                    yield eventstream.event("SubscribeToShardEvent", awsjson.dumps(awsjson.encode(shape, event)))
                    if nxt is None:
                        return
                    position = nxt
                    if out["Records"]:
                        continue
                    waiter = self.cloud.signals.watch(("kinesis", stream.arn),
                                                      until=min(deadline, self.clock.now() + 5))
                    await asyncio.wait({waiter, gone}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
            finally:
                gone.cancel()

        return Response(200, [("content-type", eventstream.CONTENT_TYPE), ("x-amzn-requestid", ctx.request_id)],
                        events())

    # -- in-process contract (Lambda's pollers, Firehose, Logs subscriptions, targets) -------------

    def stream_by_arn(self, arn: str) -> StreamRow | None:
        return self.streams.by_arn(arn)

    def shard_list(self, arn: str) -> list[ShardRow]:
        """Every shard of the stream, oldest first; raises ResourceNotFoundException."""
        stream = self.streams.by_arn(arn)
        if stream is None:
            raise errors.stream_not_found(arn.rsplit("/", 1)[-1], arn.split(":")[4])
        return self.streams.shards(stream)

    def shard_records(self, arn: str, shard_id: str, after: str | None, limit: int) -> dict:
        """``read()`` by ARN and shard id, with positions as sequence-number strings: after
        ``after`` (None: the trim horizon), up to ``limit`` records."""
        stream = self.streams.by_arn(arn)
        if stream is None:
            raise errors.stream_not_found(arn.rsplit("/", 1)[-1], arn.split(":")[4])
        shard = self._shard(stream, shard_id)
        position = parse_sequence(after) if after else shard.start_seq
        return self.read(stream, shard, position, limit)

    def starting_sequence(self, arn: str, shard_id: str, kind: str, timestamp: float | None = None) -> str:
        """The position (a sequence number string) a reader starting at ``kind`` begins after."""
        stream = self.streams.by_arn(arn)
        if stream is None:
            raise errors.stream_not_found(arn.rsplit("/", 1)[-1], arn.split(":")[4])
        shard = self._shard(stream, shard_id)
        return format_sequence(self._position(stream, shard, kind, None, timestamp))

    def append(self, arn: str, data: bytes, partition_key: str) -> str:
        """Put one record in the caller's transaction (log subscriptions, event targets), with
        no throughput limit. Returns its sequence number."""
        stream = self.streams.by_arn(arn)
        if stream is None:
            raise errors.stream_not_found(arn.rsplit("/", 1)[-1], arn.split(":")[4])
        shard = self._route(stream, partition_key[:256] or "-", None)
        (seq,) = self._insert(stream, [(shard, partition_key[:256] or "-", data)])
        return format_sequence(seq)

    # -- template resources ---------------------------------------------------------------------

    def create_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str, props: dict) -> Provisioned:
        return resources.create(self, ctx, logical_id, props)

    def update_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
                        old_props: dict, props: dict) -> Provisioned:
        return resources.update(self, ctx, logical_id, physical_id, old_props, props)

    def delete_resource(self, ctx: ResourceContext, resource_type: str, physical_id: str, props: dict) -> None:
        resources.delete(self, ctx, physical_id)
