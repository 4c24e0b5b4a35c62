"""DynamoDB Streams: the change log written in the same transaction as each change,
and the DynamoDB Streams API that reads it.

Each stream has one shard. A record is a row keyed by (stream, sequence number), so
reading from any position is an index range scan. Sequence numbers come from one
counter for all streams and are shown as 21-digit decimal strings, so they increase
both as numbers and as text. Records older than 24 hours (by unkai's clock) are
invisible and trimmed.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext, Service
from unkai.services.dynamodb import attributes
from unkai.services.dynamodb.attributes import Item
from unkai.services.dynamodb.errors import not_found, validation

RETENTION = 24 * 3600.0
ITERATOR_LIFETIME = 15 * 60.0
SEQUENCE_BASE = 10 ** 20
MAX_RECORDS = 1000
MAX_BYTES = 1024 * 1024
SERVICE_IDENTITY = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}


def format_sequence(seq: int) -> str:
    return str(SEQUENCE_BASE + seq)


def parse_sequence(text: str) -> int:
    if not isinstance(text, str) or not text.isdigit() or not 21 <= len(text) <= 40:
        raise validation(f"Invalid SequenceNumber: {text}")
    return int(text) - SEQUENCE_BASE


@dataclass
class StreamRow:
    id: int
    table_id: int
    region: str
    account: str
    table_name: str
    arn: str
    label: str
    view_type: str
    key_schema: list
    created: float
    disabled: float | None
    first_seq: int
    last_seq: int

    @property
    def shard_id(self) -> str:
        digest = hashlib.md5(self.arn.encode()).hexdigest()[:8]
        return f"shardId-{int(self.created * 1000):020d}-{digest}"


_COLUMNS = ("id, table_id, region, account, table_name, arn, label, view_type, key_schema, created, disabled, "
            "first_seq, last_seq")


class StreamLog:
    """The write side: enabling and disabling streams, appending and trimming records."""

    def __init__(self, service: Service) -> None:
        self.store = service.store
        self.clock = service.clock
        self.signals = service.cloud.signals
        self._seq: int | None = None

    def _next_seq(self) -> int:
        if self._seq is None:
            row = self.store.one("SELECT MAX(m) FROM (SELECT MAX(seq) AS m FROM dynamodb_stream_records "
                                 "UNION ALL SELECT MAX(last_seq) FROM dynamodb_streams)")
            self._seq = (row[0] or 0) if row else 0
        self._seq += 1
        return self._seq

    def enable(self, table: Any, view_type: str) -> tuple[int, str, str]:
        now = self.clock.now()
        label_time = dt.datetime.fromtimestamp(now, dt.timezone.utc)
        label = label_time.strftime("%Y-%m-%dT%H:%M:%S.") + f"{label_time.microsecond // 1000:03d}"
        arn = f"{table.arn}/stream/{label}"
        while self.store.one("SELECT 1 FROM dynamodb_streams WHERE arn=?", (arn,)):
            now += 0.001
            label_time = dt.datetime.fromtimestamp(now, dt.timezone.utc)
            label = label_time.strftime("%Y-%m-%dT%H:%M:%S.") + f"{label_time.microsecond // 1000:03d}"
            arn = f"{table.arn}/stream/{label}"
        first = self._next_seq()
        cur = self.store.execute(
            "INSERT INTO dynamodb_streams(table_id, region, account, table_name, arn, label, view_type, key_schema, "
            "created, first_seq, last_seq) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (table.id, table.region, table.account, table.name, arn, label, view_type,
             json.dumps(table.definition["KeySchema"]), now, first, first - 1))
        return cur.lastrowid, arn, label

    def disable(self, stream_id: int) -> None:
        self.store.execute(
            "UPDATE dynamodb_streams SET disabled=?, last_seq=MAX(last_seq, COALESCE((SELECT MAX(seq) FROM "
            "dynamodb_stream_records WHERE stream_id=?), 0)) WHERE id=? AND disabled IS NULL",
            (self.clock.now(), stream_id, stream_id))

    def append(self, table: Any, keys: Item, old: Item | None, new: Item | None,
               identity: dict | None = None, images_size: int | None = None) -> None:
        stream = table.stream
        view = stream.view_type
        seq = self._next_seq()
        now = self.clock.now()
        record: dict[str, Any] = {"ApproximateCreationDateTime": int(now), "Keys": keys}
        size = attributes.item_size(keys)
        if new is not None and view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
            record["NewImage"] = new
        if old is not None and view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
            record["OldImage"] = old
        if view == "NEW_AND_OLD_IMAGES" and images_size is not None:
            size += images_size
        else:
            size += sum(attributes.item_size(record[i]) for i in ("NewImage", "OldImage") if i in record)
        record["SequenceNumber"] = format_sequence(seq)
        record["SizeBytes"] = size
        record["StreamViewType"] = view
        event = {
            "eventID": os.urandom(16).hex(),
            "eventName": "INSERT" if old is None else ("REMOVE" if new is None else "MODIFY"),
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": table.region,
            "dynamodb": record,
        }
        if identity is not None:
            event["userIdentity"] = identity
        self.store.execute("INSERT INTO dynamodb_stream_records(stream_id, seq, created, record) VALUES(?, ?, ?, ?)",
                           (stream.id, seq, now, attributes.dumps(event)))
        self.store.after_commit(lambda: self.signals.notify(("dynamodb-stream", stream.arn)))

    def trim(self) -> None:
        """Drop records past retention, and streams disabled for longer than that.
        Records of a stream are in creation order, so each stream is trimmed from its
        oldest record forward (no index on the creation time to keep up on writes)."""
        horizon = self.clock.now() - RETENTION
        with self.store.transaction():
            self.store.execute(
                "UPDATE dynamodb_streams SET last_seq=MAX(last_seq, COALESCE((SELECT MAX(seq) FROM "
                "dynamodb_stream_records r WHERE r.stream_id=dynamodb_streams.id), 0))")
            for (stream_id,) in self.store.all("SELECT id FROM dynamodb_streams"):
                while True:
                    rows = self.store.all("SELECT seq, created FROM dynamodb_stream_records WHERE stream_id=? "
                                          "ORDER BY seq LIMIT 1000", (stream_id,))
                    expired = 0
                    while expired < len(rows) and rows[expired][1] < horizon:
                        expired += 1
                    if expired:
                        self.store.execute("DELETE FROM dynamodb_stream_records WHERE stream_id=? AND seq<=?",
                                           (stream_id, rows[expired - 1][0]))
                    if expired < 1000:
                        break
            self.store.execute("DELETE FROM dynamodb_streams WHERE disabled IS NOT NULL AND disabled < ?",
                               (horizon,))


class DynamoDBStreams(Service):
    """The DynamoDB Streams API, and the in-process reader event source mappings use."""

    name = "dynamodbstreams"

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self._trim_timer = None

    async def start(self) -> None:
        self._schedule_trim()

    async def stop(self) -> None:
        if self._trim_timer is not None:
            self._trim_timer.cancel()

    def _schedule_trim(self) -> None:
        def run() -> None:
            self.cloud.service("dynamodb").streams.trim()
            self._schedule_trim()
        self._trim_timer = self.clock.call_later(3600.0, run)

    # -- lookups ----------------------------------------------------------------------

    def _stream(self, arn: str) -> StreamRow:
        row = self.store.one(f"SELECT {_COLUMNS} FROM dynamodb_streams WHERE arn=?", (arn,))
        if row is None or (row[10] is not None and row[10] < self.clock.now() - RETENTION):
            raise not_found(f"Requested resource not found: Stream: {arn} not found")
        values = list(row)
        values[8] = json.loads(values[8])
        return StreamRow(*values)

    def _last(self, stream: StreamRow) -> int:
        row = self.store.one("SELECT MAX(seq) FROM dynamodb_stream_records WHERE stream_id=?", (stream.id,))
        return max(row[0] or 0, stream.last_seq)

    def _rows(self, stream: StreamRow, after: int, limit: int) -> list[tuple[int, str]]:
        horizon = self.clock.now() - RETENTION
        return self.store.all(
            "SELECT seq, record FROM dynamodb_stream_records WHERE stream_id=? AND seq>? AND created>=? "
            "ORDER BY seq LIMIT ?", (stream.id, after, horizon, limit))

    # -- the contract for event source mappings ---------------------------------------

    def stream_records(self, stream_arn: str, after_sequence: str | None, limit: int) -> list[dict]:
        """Records after ``after_sequence`` (None: from the trim horizon), oldest first,
        exactly as GetRecords shows them, JSON-ready (binary as base64, the creation
        time as epoch seconds). Raises ResourceNotFoundException for unknown streams."""
        stream = self._stream(stream_arn)
        after = parse_sequence(after_sequence) if after_sequence else 0
        return [json.loads(text) for _, text in self._rows(stream, after, limit)]

    def latest_sequence(self, stream_arn: str) -> str | None:
        """The newest record's sequence number (StartingPosition LATEST starts after it)."""
        stream = self._stream(stream_arn)
        last = self._last(stream)
        return format_sequence(last) if last >= stream.first_seq else None

    # -- the API ----------------------------------------------------------------------

    def list_streams(self, ctx: RequestContext, params: dict) -> dict:
        limit = params.get("Limit") or 100
        if not 1 <= limit <= 100:
            raise validation(f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: "
                             "Member must have value less than or equal to 100")
        sql = f"SELECT {_COLUMNS} FROM dynamodb_streams WHERE account=? AND region=? AND " \
              "(disabled IS NULL OR disabled>=?)"
        args: list[Any] = [ctx.account, ctx.region, self.clock.now() - RETENTION]
        if params.get("TableName"):
            sql += " AND table_name=?"
            args.append(params["TableName"])
        if params.get("ExclusiveStartStreamArn"):
            sql += " AND arn>?"
            args.append(params["ExclusiveStartStreamArn"])
        rows = self.store.all(sql + " ORDER BY arn LIMIT ?", (*args, limit + 1))
        out: dict[str, Any] = {"Streams": [{"StreamArn": r[5], "TableName": r[4], "StreamLabel": r[6]}
                                           for r in rows[:limit]]}
        if len(rows) > limit:
            out["LastEvaluatedStreamArn"] = rows[limit - 1][5]
        return out

    def describe_stream(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(params["StreamArn"])
        shard: dict[str, Any] = {"ShardId": stream.shard_id,
                                 "SequenceNumberRange": {"StartingSequenceNumber": format_sequence(stream.first_seq)}}
        if stream.disabled is not None:
            shard["SequenceNumberRange"]["EndingSequenceNumber"] = format_sequence(max(self._last(stream),
                                                                                       stream.first_seq))
        shards = [shard]
        if params.get("ExclusiveStartShardId") == stream.shard_id:
            shards = []
        return {"StreamDescription": {
            "StreamArn": stream.arn,
            "StreamLabel": stream.label,
            "StreamStatus": "ENABLED" if stream.disabled is None else "DISABLED",
            "StreamViewType": stream.view_type,
            "CreationRequestDateTime": stream.created,
            "TableName": stream.table_name,
            "KeySchema": stream.key_schema,
            "Shards": shards,
        }}

    def get_shard_iterator(self, ctx: RequestContext, params: dict) -> dict:
        stream = self._stream(params["StreamArn"])
        if params["ShardId"] != stream.shard_id:
            raise not_found(f"Requested resource not found: Shard does not exist")
        kind = params["ShardIteratorType"]
        seq_text = params.get("SequenceNumber")
        if kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
            if not seq_text:
                raise validation(f"SequenceNumber is required for {kind} shard iterator type")
            seq = parse_sequence(seq_text)
            last = self._last(stream)
            # the shard's advertised StartingSequenceNumber (first_seq) is valid even before any record
            if not stream.first_seq <= seq <= max(last, stream.first_seq):
                raise validation(f"Invalid SequenceNumber for ShardIterator: {seq_text} is not in this shard")
            oldest = self._rows(stream, 0, 1)
            # sequence numbers are shared by every stream, so a gap before this stream's oldest record
            # is only trimmed data once the stream is older than the retention period
            trimmed = stream.created < self.clock.now() - RETENTION
            if trimmed and seq < (oldest[0][0] if oldest else last + 1):
                raise ServiceError("TrimmedDataAccessException",
                                   "The operation attempted to read past the oldest stream record in a shard.")
            after = seq - 1 if kind == "AT_SEQUENCE_NUMBER" else seq
        elif kind == "TRIM_HORIZON":
            oldest = self._rows(stream, 0, 1)
            after = oldest[0][0] - 1 if oldest else self._last(stream)
        elif kind == "LATEST":
            after = self._last(stream)
        else:
            raise validation(f"1 validation error detected: Value '{kind}' at 'shardIteratorType' failed to satisfy "
                             "constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, "
                             "TRIM_HORIZON, AT_SEQUENCE_NUMBER]")
        return {"ShardIterator": self._iterator(stream, after)}

    def _iterator(self, stream: StreamRow, after: int) -> str:
        raw = json.dumps([stream.arn, stream.shard_id, after, self.clock.now()], separators=(",", ":"))
        return f"{stream.arn}|1|" + base64.urlsafe_b64encode(raw.encode()).decode()

    def _read_iterator(self, token: str) -> tuple[StreamRow, int]:
        try:
            arn, _, payload = token.split("|", 2)
            stream_arn, shard, after, issued = json.loads(base64.urlsafe_b64decode(payload.encode()))
            if stream_arn != arn:
                raise ValueError
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise validation("Invalid ShardIterator") from None
        if self.clock.now() - issued > ITERATOR_LIFETIME:
            raise ServiceError("ExpiredIteratorException", "Iterator expired. The iterator was created at time "
                               f"{_show_time(issued)} while right now it is {_show_time(self.clock.now())}. "
                               "The iterator is valid for 15 minutes.")
        return self._stream(stream_arn), int(after)

    def get_records(self, ctx: RequestContext, params: dict) -> dict:
        stream, after = self._read_iterator(params["ShardIterator"])
        limit = params.get("Limit") or MAX_RECORDS
        if not 1 <= limit <= MAX_RECORDS:
            raise validation(f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: "
                             "Member must have value less than or equal to 1000")
        records = []
        size = 0
        last = after
        for seq, text in self._rows(stream, after, limit):
            record = json.loads(text)
            dyn = record["dynamodb"]
            if '"B' in text:
                for image in ("Keys", "NewImage", "OldImage"):
                    if image in dyn:
                        attributes.from_wire(dyn[image])
            records.append(record)
            last = seq
            size += len(text)
            if size >= MAX_BYTES:
                break
        out: dict[str, Any] = {"Records": records}
        closed = stream.disabled is not None and last >= self._last(stream)
        if not closed:
            out["NextShardIterator"] = self._iterator(stream, last)
        return out


def _show_time(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%a %b %d %H:%M:%S UTC %Y")
