"""Amazon Data Firehose: delivery streams from Direct PUT or a Kinesis stream to S3.

PutRecord and PutRecordBatch append to the stream's durable buffer in one transaction.
The first record of an empty buffer schedules a ``firehose.flush`` job after the
buffering interval (on unkai's clock); a buffer reaching its size hint schedules one at
once. A flush builds the S3 objects outside any transaction (Lambda transformation may
run), then writes them through S3's in-process contract and forgets exactly those rows
in one transaction, so S3 notifications fire and a crash never loses or half-writes a
buffer (at worst it is delivered again, as Firehose's at-least-once promise allows).
A Kinesis source is read by a task per delivery stream, from LATEST at creation, with
its shard positions saved in the same transaction as the records it buffers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from typing import Any

from unkai.jobs import Retry
from unkai.protocol import ServiceError
from unkai.services import Provisioned, RequestContext, ResourceContext, Service
from unkai.services.firehose import errors, resources
from unkai.services.firehose.delivery import Builder, Record
from unkai.services.firehose.streams import MIGRATIONS, DeliveryStream, DeliveryStreams

log = logging.getLogger(__name__)

MAX_RECORD = 1000 * 1024
MAX_BATCH_BYTES = 4 * 1024 * 1024
_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")
DESTINATIONS = ("ExtendedS3DestinationConfiguration", "S3DestinationConfiguration")
DESCRIPTIONS = {"ExtendedS3DestinationConfiguration": "ExtendedS3DestinationDescription",
                "S3DestinationConfiguration": "S3DestinationDescription"}
UPDATES = {"ExtendedS3DestinationUpdate": "ExtendedS3DestinationConfiguration",
           "S3DestinationUpdate": "S3DestinationConfiguration"}


def _hints(config: dict) -> tuple[int, int]:
    hints = config.get("BufferingHints") or {}
    return int(hints.get("SizeInMBs") or 5), int(hints.get("IntervalInSeconds") or 300)


class Firehose(Service):
    name = "firehose"
    migrations = MIGRATIONS
    resource_types = resources.TYPES

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.streams = DeliveryStreams(self.store)
        self._locks: dict[int, asyncio.Lock] = {}
        self._readers: dict[int, asyncio.Task] = {}
        self._flushing = 0

    async def start(self) -> None:
        self.cloud.jobs.register("firehose.flush", self._flush_job)
        for stream in self.streams.all():
            if stream.source.get("KinesisStreamARN"):
                self._start_reader(stream.id)

    async def stop(self) -> None:
        for task in self._readers.values():
            task.cancel()
        await asyncio.gather(*self._readers.values(), return_exceptions=True)
        self._readers.clear()

    async def pausing(self) -> None:
        # the Kinesis readers write buffers and shard positions: stop them while the store is replaced
        await self.stop()

    async def resetting(self) -> None:
        self._locks.clear()
        for stream in self.streams.all():  # the delivery streams of the restored state read again
            if stream.source.get("KinesisStreamARN"):
                self._start_reader(stream.id)

    def pending(self) -> dict[str, int]:
        return {"firehose_flushes": self._flushing}

    # -- lookups ----------------------------------------------------------------------------

    def _stream(self, ctx: RequestContext, name: str) -> DeliveryStream:
        stream = self.streams.find(ctx.account, ctx.region, name)
        if stream is None:
            raise errors.not_found(name, ctx.account)
        return stream

    # -- delivery streams ---------------------------------------------------------------------

    def create_delivery_stream(self, ctx: RequestContext, params: dict) -> dict:
        name = params["DeliveryStreamName"]
        if not _NAME.match(name):
            raise ServiceError("ValidationException", f"1 validation error detected: Value '{name}' at "
                               "'deliveryStreamName' failed to satisfy constraint: Member must satisfy regular "
                               "expression pattern: [a-zA-Z0-9._-]+")
        if self.streams.find(ctx.account, ctx.region, name) is not None:
            raise errors.exists(name, ctx.account)
        kind = next((k for k in DESTINATIONS if params.get(k)), None)
        others = [k for k in params if k.endswith("DestinationConfiguration") and k not in DESTINATIONS]
        if others:
            raise ServiceError("NotImplemented", f"unkai's Firehose delivers to S3 only, not {others[0]}.", status=501)
        if kind is None:
            raise errors.invalid("Destination configuration is required. Please provide one destination "
                                 "configuration.")
        destination = dict(params[kind])
        self._check_destination(destination)
        type_ = params.get("DeliveryStreamType") or "DirectPut"
        source: dict[str, Any] = {}
        if type_ == "KinesisStreamAsSource":
            config = params.get("KinesisStreamSourceConfiguration") or {}
            arn = config.get("KinesisStreamARN")
            kinesis = self.cloud.services.get("kinesis")
            if not arn or kinesis is None or kinesis.stream_by_arn(arn) is None:
                raise errors.invalid(f"Kinesis stream {arn} does not exist or is not active.")
            source = {"KinesisStreamARN": arn, "RoleARN": config.get("RoleARN", ""),
                      "DeliveryStartTimestamp": self.clock.now()}
        elif type_ != "DirectPut":
            raise ServiceError("NotImplemented", f"unkai's Firehose does not read {type_} sources.", status=501)
        elif params.get("KinesisStreamSourceConfiguration"):
            raise errors.invalid("KinesisSourceStreamConfig is only allowed for KinesisStreamAsSource "
                                 "delivery stream type.")
        tags = {t["Key"]: t.get("Value", "") for t in params.get("Tags") or []}
        encryption = {"Status": "DISABLED"}
        enc = params.get("DeliveryStreamEncryptionConfigurationInput")
        if enc:
            encryption = {"Status": "ENABLED", "KeyType": enc["KeyType"]}
            if enc.get("KeyARN"):
                encryption["KeyARN"] = enc["KeyARN"]
        arn = f"arn:aws:firehose:{ctx.region}:{ctx.account}:deliverystream/{name}"
        stream = self.streams.create(ctx.account, ctx.region, name, arn, type_, self.clock.now(), source, kind,
                                     destination, tags, encryption)
        if source:
            self._start_at_latest(stream)
            sid = stream.id
            self.store.after_commit(lambda: self._start_reader(sid))
        return {"DeliveryStreamARN": arn}

    def _check_destination(self, destination: dict) -> None:
        if not str(destination.get("BucketARN", "")).startswith("arn:aws:s3:::"):
            raise errors.invalid(f"BucketARN {destination.get('BucketARN')} is not a valid S3 bucket ARN.")
        size, interval = _hints(destination)
        if not 1 <= size <= 128:
            raise errors.invalid("BufferingHints.SizeInMBs must be between 1 and 128.")
        if not 0 <= interval <= 900:
            raise errors.invalid("BufferingHints.IntervalInSeconds must be between 0 and 900.")
        dynamic = (destination.get("DynamicPartitioningConfiguration") or {}).get("Enabled")
        prefix = destination.get("Prefix") or ""
        if "partitionKeyFrom" in prefix and not dynamic:
            raise errors.invalid("Prefix cannot contain partitionKeyFromQuery or partitionKeyFromLambda namespaces "
                                 "when dynamic partitioning is not enabled.")
        if dynamic and not destination.get("ErrorOutputPrefix"):
            raise errors.invalid("ErrorOutputPrefix cannot be null or empty when dynamic partitioning is enabled.")
        if dynamic and size < 64:
            raise errors.invalid("BufferingHints.SizeInMBs must be at least 64 when Dynamic Partitioning is "
                                 "enabled.")

    def delete_delivery_stream(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params["DeliveryStreamName"])
        self.streams.delete(stream)
        sid = stream.id
        self.store.after_commit(lambda: self._stop_reader(sid))
        return {}

    def _description(self, stream: DeliveryStream) -> dict:
        config = dict(stream.destination)
        size, interval = _hints(config)
        config["BufferingHints"] = {"SizeInMBs": size, "IntervalInSeconds": interval}
        config.setdefault("CompressionFormat", "UNCOMPRESSED")
        config.setdefault("EncryptionConfiguration", {"NoEncryptionConfig": "NoEncryption"})
        if "S3BackupConfiguration" in config:
            config["S3BackupDescription"] = config.pop("S3BackupConfiguration")
        destination: dict[str, Any] = {"DestinationId": "destinationId-000000000001",
                                       DESCRIPTIONS[stream.kind]: config}
        if stream.kind == "ExtendedS3DestinationConfiguration":
            destination["S3DestinationDescription"] = {k: config[k] for k in (
                "RoleARN", "BucketARN", "Prefix", "ErrorOutputPrefix", "BufferingHints", "CompressionFormat",
                "EncryptionConfiguration", "CloudWatchLoggingOptions") if k in config}
        out: dict[str, Any] = {
            "DeliveryStreamName": stream.name, "DeliveryStreamARN": stream.arn, "DeliveryStreamStatus": "ACTIVE",
            "DeliveryStreamEncryptionConfiguration": stream.encryption, "DeliveryStreamType": stream.type,
            "VersionId": str(stream.version), "CreateTimestamp": stream.created,
            "Destinations": [destination], "HasMoreDestinations": False,
        }
        if stream.version > 1:
            out["LastUpdateTimestamp"] = stream.updated
        if stream.source:
            out["Source"] = {"KinesisStreamSourceDescription": stream.source}
        else:
            out["Source"] = {"DirectPutSourceDescription": {}}
        return out

    def describe_delivery_stream(self, ctx: RequestContext, params: dict) -> dict:
        return {"DeliveryStreamDescription": self._description(self._stream(ctx, params["DeliveryStreamName"]))}

    def list_delivery_streams(self, ctx: RequestContext, params: dict) -> dict:
        streams = self.streams.all(ctx.account, ctx.region)
        if params.get("DeliveryStreamType"):
            streams = [s for s in streams if s.type == params["DeliveryStreamType"]]
        if params.get("ExclusiveStartDeliveryStreamName"):
            streams = [s for s in streams if s.name > params["ExclusiveStartDeliveryStreamName"]]
        limit = params.get("Limit") or 10
        return {"DeliveryStreamNames": [s.name for s in streams[:limit]], "HasMoreDeliveryStreams": len(streams) > limit}

    def update_destination(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params["DeliveryStreamName"])
        if params["CurrentDeliveryStreamVersionId"] != str(stream.version):
            raise errors.concurrent(f"Cannot update firehose: {stream.name} since the current version id: "
                                    f"{stream.version} and the specified version id: "
                                    f"{params['CurrentDeliveryStreamVersionId']} do not match")
        if params["DestinationId"] != "destinationId-000000000001":
            raise errors.invalid(f"Destination Id {params['DestinationId']} not found.")
        update = next(((k, v) for k, v in params.items() if k in UPDATES and v), None)
        if update is None:
            raise errors.invalid("Destination update is required.")
        destination = dict(stream.destination, **update[1])
        self._check_destination(destination)
        self.streams.update(stream, destination=destination, version=stream.version + 1, updated=self.clock.now())
        return {}

    def start_delivery_stream_encryption(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params["DeliveryStreamName"])
        enc = params.get("DeliveryStreamEncryptionConfigurationInput") or {"KeyType": "AWS_OWNED_CMK"}
        value = {"Status": "ENABLED", "KeyType": enc["KeyType"]}
        if enc.get("KeyARN"):
            value["KeyARN"] = enc["KeyARN"]
        self.streams.update(stream, encryption=value)
        return {}

    def stop_delivery_stream_encryption(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params["DeliveryStreamName"])
        self.streams.update(stream, encryption={"Status": "DISABLED"})
        return {}

    def tag_delivery_stream(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params["DeliveryStreamName"])
        tags = dict(stream.tags, **{t["Key"]: t.get("Value", "") for t in params["Tags"]})
        if len(tags) > 50:
            raise errors.limit("A delivery stream cannot have more than 50 tags.")
        self.streams.update(stream, tags=tags)
        return {}

    def untag_delivery_stream(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params["DeliveryStreamName"])
        self.streams.update(stream, tags={k: v for k, v in stream.tags.items() if k not in params["TagKeys"]})
        return {}

    def list_tags_for_delivery_stream(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(ctx, params["DeliveryStreamName"])
        keys = sorted(stream.tags)
        if params.get("ExclusiveStartTagKey"):
            keys = [k for k in keys if k > params["ExclusiveStartTagKey"]]
        limit = params.get("Limit") or 50
        return {"Tags": [{"Key": k, "Value": stream.tags[k]} for k in keys[:limit]], "HasMoreTags": len(keys) > limit}

    # -- records ------------------------------------------------------------------------------

    def _direct(self, ctx: RequestContext, name: str) -> DeliveryStream:
        stream = self._stream(ctx, name)
        if stream.type != "DirectPut":
            raise errors.invalid(f"This operation is not permitted on KinesisStreamAsSource delivery stream type.")
        return stream

    def put_record(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._direct(ctx, params["DeliveryStreamName"])
        data = params["Record"]["Data"]
        if len(data) > MAX_RECORD:
            raise errors.invalid(f"Record size exceeds the maximum allowed size of {MAX_RECORD} bytes.")
        self.buffer(stream, [(data, None)])
        return {"RecordId": uuid.uuid4().hex * 2, "Encrypted": stream.encryption.get("Status") == "ENABLED"}

    def put_record_batch(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._direct(ctx, params["DeliveryStreamName"])
        records = params["Records"]
        if not 1 <= len(records) <= 500:
            raise ServiceError("ValidationException", f"1 validation error detected: Value '{len(records)}' at "
                               "'records' failed to satisfy constraint: Member must have length less than or equal "
                               "to 500")
        if sum(len(r["Data"]) for r in records) > MAX_BATCH_BYTES:
            raise errors.invalid("Records size exceeds the 4 MiB limit for PutRecordBatch.")
        for r in records:
            if len(r["Data"]) > MAX_RECORD:
                raise errors.invalid(f"Record size exceeds the maximum allowed size of {MAX_RECORD} bytes.")
        self.buffer(stream, [(r["Data"], None) for r in records])
        return {"FailedPutCount": 0, "Encrypted": stream.encryption.get("Status") == "ENABLED",
                "RequestResponses": [{"RecordId": uuid.uuid4().hex * 2} for _ in records]}

    def deliver(self, arn: str, data: bytes) -> None:
        """Put one record in the caller's transaction (log subscriptions, event targets);
        raises ResourceNotFoundException."""
        stream = self.streams.by_arn(arn)
        if stream is None:
            raise errors.not_found(arn.rsplit("/", 1)[-1], arn.split(":")[4])
        self.buffer(stream, [(data, None)])

    def buffer(self, stream: DeliveryStream, records: list[tuple[bytes, dict | None]]) -> None:
        """Append to the durable buffer and schedule its flush (interval or size)."""
        now_ms = self.clock.now_ms()
        self.streams.buffer(stream.id, [(now_ms, data, json.dumps(meta) if meta else None) for data, meta in records])
        size, interval = _hints(stream.destination)
        if stream.flush_due is None:
            self.streams.update(stream, flush_due=self.clock.now() + interval)
            self.cloud.jobs.enqueue("firehose.flush", {"stream": stream.id}, delay=interval)
        if self.streams.buffered_bytes(stream.id) >= size * 1024 * 1024:
            self.cloud.jobs.enqueue("firehose.flush", {"stream": stream.id, "size": True})

    # -- flushing -----------------------------------------------------------------------------

    async def _flush_job(self, payload: dict, attempt: int) -> None:
        lock = self._locks.setdefault(payload["stream"], asyncio.Lock())
        async with lock:
            self._flushing += 1
            try:
                await self._flush(payload["stream"])
            finally:
                self._flushing -= 1

    async def _flush(self, sid: int) -> None:
        with self.store.transaction():
            stream = self.streams.by_id(sid)
            if stream is None:
                return
            size, _ = _hints(stream.destination)
            rows = self.streams.buffered(sid, 100_000)
        if not rows:
            with self.store.transaction():
                current = self.streams.by_id(sid)
                if current is not None:
                    self.streams.update(current, flush_due=None)
            return
        # one object per buffer-full, as AWS cuts them at the size hint
        batch, total = [], 0
        for row in rows:
            if batch and total + len(row[2]) > size * 1024 * 1024:
                break
            batch.append(row)
            total += len(row[2])
        records = [Record(rid, arrival, bytes(data), json.loads(meta) if meta else None)
                   for rid, arrival, data, meta in batch]
        objects = await Builder(self.cloud, stream).build(records)
        s3 = self.cloud.service("s3")
        try:
            with self.store.transaction():
                for obj in objects:
                    self._may_write(stream, obj.bucket, obj.key)
                    s3.put_object_bytes(obj.bucket, obj.key, obj.body, "application/octet-stream", stream.region,
                                        principal="firehose.amazonaws.com")
                self.streams.forget(sid, batch[-1][0])
                more = len(batch) < len(rows)
                current = self.streams.by_id(sid)
                if more:
                    self.cloud.jobs.enqueue("firehose.flush", {"stream": sid})
                elif current is not None:
                    self.streams.update(current, flush_due=None)
        except ServiceError as exc:
            log.warning("Firehose %s could not write to S3 (%s: %s); retrying in 60 s", stream.name, exc.code,
                        exc.message)
            self.cloud.feed.publish("firehose.delivery_failed", stream=stream.name, error=exc.code)
            raise Retry(60, exc.code) from None
        self.cloud.feed.publish("firehose.delivery", stream=stream.name, records=len(batch), objects=len(objects))

    def _may_write(self, stream: DeliveryStream, bucket: str, key: str) -> None:
        """Under ``--enforce-iam`` the stream's role must trust Firehose and allow s3:PutObject."""
        if not self.cloud.config.enforce_iam:
            return
        from unkai.services.iam.enforcement import role_denied

        if role_denied(self.cloud, "firehose.amazonaws.com", stream.destination.get("RoleARN") or "",
                       "s3:PutObject", f"arn:aws:s3:::{bucket}/{key}", stream.arn) is not None:
            raise ServiceError("S3.AccessDenied", "Access was denied. Ensure that the trust policy for the provided "
                               "IAM role allows Firehose to assume the role, and the access policy allows access to "
                               "the S3 bucket.")

    # -- Kinesis source --------------------------------------------------------------------------

    def _start_at_latest(self, stream: DeliveryStream) -> None:
        kinesis = self.cloud.service("kinesis")
        arn = stream.source["KinesisStreamARN"]
        # every shard, closed ones too: their old records were there before the delivery stream
        positions = {s.id: kinesis.starting_sequence(arn, s.id, "LATEST") for s in kinesis.shard_list(arn)}
        self.streams.update(stream, positions=positions)

    def _start_reader(self, sid: int) -> None:
        if sid not in self._readers:
            self._readers[sid] = asyncio.get_running_loop().create_task(self._read(sid), name=f"firehose-{sid}")

    def _stop_reader(self, sid: int) -> None:
        task = self._readers.pop(sid, None)
        if task is not None:
            task.cancel()

    async def _read(self, sid: int) -> None:
        """Move the Kinesis stream's new records into the buffer, shard positions saved with them."""
        signals, clock = self.cloud.signals, self.cloud.clock
        while True:
            with self.store.transaction():
                stream = self.streams.by_id(sid)
            if stream is None:
                return
            arn = stream.source["KinesisStreamARN"]
            moved = False
            try:
                kinesis = self.cloud.service("kinesis")
                with self.store.transaction():
                    stream = self.streams.by_id(sid)
                    positions = dict(stream.positions)
                    rows: list[tuple[bytes, dict]] = []
                    for shard in kinesis.shard_list(arn):
                        out = kinesis.shard_records(arn, shard.id, positions.get(shard.id), 10000)
                        for r in out["Records"]:
                            rows.append((r["Data"], {"shardId": shard.id, "partitionKey": r["PartitionKey"],
                                                     "approximateArrivalTimestamp":
                                                         int(r["ApproximateArrivalTimestamp"] * 1000),
                                                     "sequenceNumber": r["SequenceNumber"], "subsequenceNumber": ""}))
                        if out["Records"]:
                            positions[shard.id] = out["Records"][-1]["SequenceNumber"]
                    if rows:
                        self.buffer(stream, rows)
                        self.streams.update(stream, positions=positions)
                        moved = True
            except ServiceError as exc:
                log.warning("Firehose %s cannot read %s: %s", sid, arn, exc.message)
            except Exception:
                log.exception("Firehose %s failed reading %s", sid, arn)
            if not moved:
                await signals.wait(("kinesis", arn), until=clock.now() + 3600)

    # -- template resources -------------------------------------------------------------------

    def create_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str, props: dict) -> Provisioned:
        return resources.create(self, ctx, logical_id, props)

    def delete_resource(self, ctx: ResourceContext, resource_type: str, physical_id: str, props: dict) -> None:
        resources.delete(self, ctx, physical_id)
