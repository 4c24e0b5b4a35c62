"""The Kinesis model: streams, their shards (hash key ranges, parents, sequence
ranges) and their records, all rows in the store.

A record is a row keyed by (stream, shard, sequence number), so reading a shard from any
position is an index range scan however long the shard is. Sequence numbers come from
one counter per stream, bumped in the put's transaction, and are shown as 56-digit
decimal strings (as long as AWS's), so they increase as numbers and as text and every
shard's records are ordered. A shard is closed (resharding) by setting its ending
sequence number; its children are new rows naming it as parent.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from unkai.services.kinesis import errors

MIGRATIONS = [
    """
    CREATE TABLE kinesis_streams (
        id INTEGER PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
        arn TEXT NOT NULL UNIQUE, mode TEXT NOT NULL, retention_hours INTEGER NOT NULL, created REAL NOT NULL,
        status TEXT NOT NULL, encryption TEXT NOT NULL DEFAULT 'NONE', key_id TEXT, tags TEXT NOT NULL DEFAULT '{}',
        metrics TEXT NOT NULL DEFAULT '[]', seq INTEGER NOT NULL DEFAULT 0, UNIQUE(account, region, name)
    );
    CREATE TABLE kinesis_shards (
        stream_id INTEGER NOT NULL, idx INTEGER NOT NULL, start_hash TEXT NOT NULL, end_hash TEXT NOT NULL,
        parent INTEGER, adjacent INTEGER, start_seq INTEGER NOT NULL, end_seq INTEGER, created REAL NOT NULL,
        PRIMARY KEY(stream_id, idx)
    );
    CREATE TABLE kinesis_records (
        stream_id INTEGER NOT NULL, shard INTEGER NOT NULL, seq INTEGER NOT NULL, arrival INTEGER NOT NULL,
        pkey TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY(stream_id, shard, seq)
    ) WITHOUT ROWID;
    CREATE TABLE kinesis_consumers (
        stream_id INTEGER NOT NULL, name TEXT NOT NULL, arn TEXT NOT NULL UNIQUE, created REAL NOT NULL,
        PRIMARY KEY(stream_id, name)
    );
    """,
]

MAX_HASH = 2 ** 128 - 1
SEQUENCE_BASE = 49 * 10 ** 54  # 56 digits, the length of AWS's sequence numbers


def format_sequence(seq: int) -> str:
    return str(SEQUENCE_BASE + seq)


def parse_sequence(text: Any) -> int:
    if not isinstance(text, str) or not text.isdigit() or len(text) != 56 or int(text) < SEQUENCE_BASE:
        raise errors.invalid(f"StartingSequenceNumber {text} used in GetShardIterator on shard is invalid.")
    return int(text) - SEQUENCE_BASE


def shard_name(idx: int) -> str:
    return f"shardId-{idx:012d}"


def shard_index(name: Any) -> int | None:
    if isinstance(name, str) and name.startswith("shardId-") and name[8:].isdigit():
        return int(name[8:])
    return None


def even_ranges(count: int) -> list[tuple[int, int]]:
    """``count`` contiguous hash key ranges covering 0..2^128-1, as CreateStream splits them."""
    step = (MAX_HASH + 1) // count
    return [(i * step, (i + 1) * step - 1 if i < count - 1 else MAX_HASH) for i in range(count)]


@dataclass
class StreamRow:
    id: int
    account: str
    region: str
    name: str
    arn: str
    mode: str
    retention_hours: int
    created: float
    status: str
    encryption: str
    key_id: str | None
    tags: dict
    metrics: list
    seq: int


@dataclass
class ShardRow:
    stream_id: int
    idx: int
    start_hash: int
    end_hash: int
    parent: int | None
    adjacent: int | None
    start_seq: int
    end_seq: int | None
    created: float

    @functools.cached_property
    def id(self) -> str:
        return shard_name(self.idx)

    @property
    def open(self) -> bool:
        return self.end_seq is None

    def describe(self) -> dict:
        out: dict[str, Any] = {
            "ShardId": self.id,
            "HashKeyRange": {"StartingHashKey": str(self.start_hash), "EndingHashKey": str(self.end_hash)},
            "SequenceNumberRange": {"StartingSequenceNumber": format_sequence(self.start_seq)},
        }
        if self.parent is not None:
            out["ParentShardId"] = shard_name(self.parent)
        if self.adjacent is not None:
            out["AdjacentParentShardId"] = shard_name(self.adjacent)
        if self.end_seq is not None:
            out["SequenceNumberRange"]["EndingSequenceNumber"] = format_sequence(self.end_seq)
        return out


_STREAM_COLUMNS = "id, account, region, name, arn, mode, retention_hours, created, status, encryption, key_id, " \
                  "tags, metrics, seq"
_SHARD_COLUMNS = "stream_id, idx, start_hash, end_hash, parent, adjacent, start_seq, end_seq, created"


def _stream(row: tuple) -> StreamRow:
    values = list(row)
    values[11] = json.loads(values[11])
    values[12] = json.loads(values[12])
    return StreamRow(*values)


def _shard(row: tuple) -> ShardRow:
    values = list(row)
    values[2], values[3] = int(values[2]), int(values[3])
    return ShardRow(*values)


class Streams:
    """Queries over the tables; every write runs in the caller's transaction."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def find(self, account: str, region: str, name: str) -> StreamRow | None:
        row = self.store.one(f"SELECT {_STREAM_COLUMNS} FROM kinesis_streams WHERE account=? AND region=? AND name=?",
                             (account, region, name))
        return _stream(row) if row else None

    def by_arn(self, arn: str) -> StreamRow | None:
        row = self.store.one(f"SELECT {_STREAM_COLUMNS} FROM kinesis_streams WHERE arn=?", (arn,))
        return _stream(row) if row else None

    def by_id(self, sid: int) -> StreamRow | None:
        row = self.store.one(f"SELECT {_STREAM_COLUMNS} FROM kinesis_streams WHERE id=?", (sid,))
        return _stream(row) if row else None

    def names(self, account: str, region: str) -> list[StreamRow]:
        rows = self.store.all(f"SELECT {_STREAM_COLUMNS} FROM kinesis_streams WHERE account=? AND region=? "
                              "ORDER BY name", (account, region))
        return [_stream(r) for r in rows]

    def create(self, account: str, region: str, name: str, arn: str, mode: str, shards: int, now: float,
               tags: dict) -> StreamRow:
        cur = self.store.execute(
            "INSERT INTO kinesis_streams(account, region, name, arn, mode, retention_hours, created, status, tags) "
            "VALUES(?,?,?,?,?,24,?,'ACTIVE',?)", (account, region, name, arn, mode, now, json.dumps(tags)))
        sid = cur.lastrowid
        for idx, (lo, hi) in enumerate(even_ranges(shards)):
            self.add_shard(sid, idx, lo, hi, None, None, 0, now)
        return self.by_id(sid)

    def delete(self, stream: StreamRow) -> None:
        for table in ("kinesis_records", "kinesis_shards", "kinesis_consumers"):
            self.store.execute(f"DELETE FROM {table} WHERE stream_id=?", (stream.id,))
        self.store.execute("DELETE FROM kinesis_streams WHERE id=?", (stream.id,))

    def update(self, stream: StreamRow, **fields: Any) -> None:
        for key, value in fields.items():
            if key in ("tags", "metrics"):
                value = json.dumps(value)
            self.store.execute(f"UPDATE kinesis_streams SET {key}=? WHERE id=?", (value, stream.id))

    # -- shards -----------------------------------------------------------------------------

    def shards(self, stream: StreamRow) -> list[ShardRow]:
        rows = self.store.all(f"SELECT {_SHARD_COLUMNS} FROM kinesis_shards WHERE stream_id=? ORDER BY idx",
                              (stream.id,))
        return [_shard(r) for r in rows]

    def open_shards(self, stream_id: int) -> list[ShardRow]:
        rows = self.store.all(f"SELECT {_SHARD_COLUMNS} FROM kinesis_shards WHERE stream_id=? AND end_seq IS NULL "
                              "ORDER BY idx", (stream_id,))
        return [_shard(r) for r in rows]

    def shard(self, stream: StreamRow, idx: int) -> ShardRow | None:
        row = self.store.one(f"SELECT {_SHARD_COLUMNS} FROM kinesis_shards WHERE stream_id=? AND idx=?",
                             (stream.id, idx))
        return _shard(row) if row else None

    def add_shard(self, sid: int, idx: int, lo: int, hi: int, parent: int | None, adjacent: int | None,
                  start_seq: int, now: float) -> None:
        self.store.execute(f"INSERT INTO kinesis_shards({_SHARD_COLUMNS}) VALUES(?,?,?,?,?,?,?,NULL,?)",
                           (sid, idx, str(lo), str(hi), parent, adjacent, start_seq, now))

    def close_shard(self, shard: ShardRow, end_seq: int) -> None:
        self.store.execute("UPDATE kinesis_shards SET end_seq=? WHERE stream_id=? AND idx=?",
                           (end_seq, shard.stream_id, shard.idx))

    def next_index(self, stream: StreamRow) -> int:
        row = self.store.one("SELECT MAX(idx) FROM kinesis_shards WHERE stream_id=?", (stream.id,))
        return (row[0] if row and row[0] is not None else -1) + 1

    def bump(self, stream_id: int, count: int) -> int:
        """Reserve ``count`` sequence numbers; returns the first."""
        row = self.store.one("UPDATE kinesis_streams SET seq=seq+? WHERE id=? RETURNING seq", (count, stream_id))
        return row[0] - count + 1

    def current_seq(self, stream_id: int) -> int:
        row = self.store.one("SELECT seq FROM kinesis_streams WHERE id=?", (stream_id,))
        return row[0] if row else 0

    # -- records ----------------------------------------------------------------------------

    def records(self, stream_id: int, shard: int, after: int, limit: int, since_ms: int) -> list[tuple]:
        """(seq, arrival_ms, partition key, data) after ``after``, not older than ``since_ms``."""
        return self.store.all("SELECT seq, arrival, pkey, data FROM kinesis_records WHERE stream_id=? AND shard=? "
                              "AND seq>? AND arrival>=? ORDER BY seq LIMIT ?",
                              (stream_id, shard, after, since_ms, limit))

    def last_record(self, stream_id: int, shard: int) -> tuple | None:
        return self.store.one("SELECT seq, arrival FROM kinesis_records WHERE stream_id=? AND shard=? "
                              "ORDER BY seq DESC LIMIT 1", (stream_id, shard))

    def first_at(self, stream_id: int, shard: int, ts_ms: int) -> int | None:
        row = self.store.one("SELECT MIN(seq) FROM kinesis_records WHERE stream_id=? AND shard=? AND arrival>=?",
                             (stream_id, shard, ts_ms))
        return row[0] if row else None

    def trim(self, stream: StreamRow, now: float) -> None:
        cutoff = int((now - stream.retention_hours * 3600) * 1000)
        self.store.execute("DELETE FROM kinesis_records WHERE stream_id=? AND arrival<?", (stream.id, cutoff))

    # -- consumers ----------------------------------------------------------------------------

    def consumers(self, stream: StreamRow) -> list[tuple]:
        return self.store.all("SELECT name, arn, created FROM kinesis_consumers WHERE stream_id=? ORDER BY created",
                              (stream.id,))

    def consumer_by_arn(self, arn: str) -> tuple | None:
        return self.store.one("SELECT stream_id, name, arn, created FROM kinesis_consumers WHERE arn=?", (arn,))
