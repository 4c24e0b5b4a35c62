"""The Firehose model: delivery streams and their durable record buffers.

A delivery stream's configuration is one row (its destination kept as given, its
version bumped by UpdateDestination). Records wait in ``firehose_records`` until a flush
writes them to S3, so a record acknowledged by PutRecord survives a restart; the flush
deletes exactly the rows it wrote, in the transaction that writes the objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MIGRATIONS = [
    """
    CREATE TABLE firehose_streams (
        id INTEGER PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
        arn TEXT NOT NULL UNIQUE, type TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
        version INTEGER NOT NULL DEFAULT 1, source TEXT NOT NULL DEFAULT '{}', kind TEXT NOT NULL,
        destination TEXT NOT NULL, encryption TEXT NOT NULL DEFAULT '{}', tags TEXT NOT NULL DEFAULT '{}',
        positions TEXT NOT NULL DEFAULT '{}', flush_due REAL, UNIQUE(account, region, name)
    );
    CREATE TABLE firehose_records (
        id INTEGER PRIMARY KEY AUTOINCREMENT, stream_id INTEGER NOT NULL, arrival INTEGER NOT NULL,
        data BLOB NOT NULL, meta TEXT
    );
    CREATE INDEX firehose_records_stream ON firehose_records(stream_id, id);
    """,
]

_COLUMNS = ("id, account, region, name, arn, type, created, updated, version, source, kind, destination, encryption, "
            "tags, positions, flush_due")


@dataclass
class DeliveryStream:
    id: int
    account: str
    region: str
    name: str
    arn: str
    type: str
    created: float
    updated: float
    version: int
    source: dict
    kind: str  # ExtendedS3DestinationConfiguration or S3DestinationConfiguration
    destination: dict
    encryption: dict
    tags: dict
    positions: dict
    flush_due: float | None


def _row(row: tuple) -> DeliveryStream:
    values = list(row)
    for i in (9, 11, 12, 13, 14):
        values[i] = json.loads(values[i])
    return DeliveryStream(*values)


class DeliveryStreams:
    def __init__(self, store: Any) -> None:
        self.store = store

    def find(self, account: str, region: str, name: str) -> DeliveryStream | None:
        row = self.store.one(f"SELECT {_COLUMNS} FROM firehose_streams WHERE account=? AND region=? AND name=?",
                             (account, region, name))
        return _row(row) if row else None

    def by_id(self, sid: int) -> DeliveryStream | None:
        row = self.store.one(f"SELECT {_COLUMNS} FROM firehose_streams WHERE id=?", (sid,))
        return _row(row) if row else None

    def by_arn(self, arn: str) -> DeliveryStream | None:
        row = self.store.one(f"SELECT {_COLUMNS} FROM firehose_streams WHERE arn=?", (arn,))
        return _row(row) if row else None

    def all(self, account: str | None = None, region: str | None = None) -> list[DeliveryStream]:
        if account is None:
            rows = self.store.all(f"SELECT {_COLUMNS} FROM firehose_streams ORDER BY id")
        else:
            rows = self.store.all(f"SELECT {_COLUMNS} FROM firehose_streams WHERE account=? AND region=? "
                                  "ORDER BY name", (account, region))
        return [_row(r) for r in rows]

    def create(self, account: str, region: str, name: str, arn: str, type_: str, now: float, source: dict,
               kind: str, destination: dict, tags: dict, encryption: dict) -> DeliveryStream:
        cur = self.store.execute(
            "INSERT INTO firehose_streams(account, region, name, arn, type, created, updated, source, kind, "
            "destination, tags, encryption) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
            (account, region, name, arn, type_, now, now, json.dumps(source), kind, json.dumps(destination),
             json.dumps(tags), json.dumps(encryption)))
        return self.by_id(cur.lastrowid)

    def update(self, stream: DeliveryStream, **fields: Any) -> None:
        for key, value in fields.items():
            if isinstance(value, (dict, list)):
                value = json.dumps(value)
            self.store.execute(f"UPDATE firehose_streams SET {key}=? WHERE id=?", (value, stream.id))

    def delete(self, stream: DeliveryStream) -> None:
        self.store.execute("DELETE FROM firehose_records WHERE stream_id=?", (stream.id,))
        self.store.execute("DELETE FROM firehose_streams WHERE id=?", (stream.id,))

    # -- the buffer -------------------------------------------------------------------------

    def buffer(self, stream_id: int, rows: list[tuple[int, bytes, str | None]]) -> None:
        self.store.db.executemany("INSERT INTO firehose_records(stream_id, arrival, data, meta) VALUES(?,?,?,?)",
                                  [(stream_id, arrival, data, meta) for arrival, data, meta in rows])

    def buffered_bytes(self, stream_id: int) -> int:
        return self.store.one("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM firehose_records WHERE stream_id=?",
                              (stream_id,))[0]

    def buffered(self, stream_id: int, limit: int) -> list[tuple]:
        return self.store.all("SELECT id, arrival, data, meta FROM firehose_records WHERE stream_id=? ORDER BY id "
                              "LIMIT ?", (stream_id, limit))

    def forget(self, stream_id: int, last_id: int) -> None:
        self.store.execute("DELETE FROM firehose_records WHERE stream_id=? AND id<=?", (stream_id, last_id))
