"""Where items live: one SQLite row per item, keyed (table, partition bytes, sort
bytes), and one row per secondary-index entry keyed by the index's key then the
table's. Every change goes through ``write``, which in the caller's transaction
updates the item, its index entries, the table's counters, its TTL deadline and
its stream, so none of them can disagree with another."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from unkai.services.dynamodb import attributes
from unkai.services.dynamodb.attributes import Item
from unkai.services.dynamodb.keys import encode, partition
from unkai.services.dynamodb.tables import Index, Table

MIGRATIONS = [
    """
    CREATE TABLE dynamodb_tables (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        definition TEXT NOT NULL,
        status TEXT NOT NULL,
        created REAL NOT NULL,
        item_count INTEGER NOT NULL DEFAULT 0,
        size_bytes INTEGER NOT NULL DEFAULT 0,
        UNIQUE(account, region, name)
    );
    CREATE TABLE dynamodb_items (
        table_id INTEGER NOT NULL,
        pk BLOB NOT NULL,
        rk BLOB NOT NULL,
        item TEXT NOT NULL,
        size INTEGER NOT NULL,
        expires REAL,
        PRIMARY KEY (table_id, pk, rk)
    ) WITHOUT ROWID;
    CREATE INDEX dynamodb_items_expiry ON dynamodb_items(expires) WHERE expires IS NOT NULL;
    CREATE TABLE dynamodb_index_ids (id INTEGER PRIMARY KEY AUTOINCREMENT, table_id INTEGER NOT NULL);
    CREATE TABLE dynamodb_index_entries (
        index_id INTEGER NOT NULL,
        pk BLOB NOT NULL,
        rk BLOB NOT NULL,
        tpk BLOB NOT NULL,
        trk BLOB NOT NULL,
        PRIMARY KEY (index_id, pk, rk, tpk, trk)
    ) WITHOUT ROWID;
    CREATE TABLE dynamodb_streams (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        table_id INTEGER NOT NULL,
        region TEXT NOT NULL,
        account TEXT NOT NULL,
        table_name TEXT NOT NULL,
        arn TEXT NOT NULL UNIQUE,
        label TEXT NOT NULL,
        view_type TEXT NOT NULL,
        key_schema TEXT NOT NULL,
        created REAL NOT NULL,
        disabled REAL,
        first_seq INTEGER NOT NULL,
        last_seq INTEGER NOT NULL
    );
    CREATE INDEX dynamodb_streams_table ON dynamodb_streams(table_id);
    CREATE TABLE dynamodb_stream_records (
        stream_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        created REAL NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (stream_id, seq)
    ) WITHOUT ROWID;
    CREATE INDEX dynamodb_stream_records_created ON dynamodb_stream_records(created);
    CREATE TABLE dynamodb_transactions (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        token TEXT NOT NULL,
        digest TEXT NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (account, region, token)
    );
    """,
    # every write paid for this index; trimming walks each stream in sequence order instead
    "DROP INDEX dynamodb_stream_records_created",
]

FIVE_YEARS = 5 * 365 * 24 * 3600.0


class Items:
    def __init__(self, store: Any, streams: Any, on_expiry: Any, clock: Any = None) -> None:
        self.store = store
        self.streams = streams
        self.clock = clock  # stamps point-in-time recovery's log
        self.on_expiry = on_expiry  # told each new TTL deadline, to wake the sweeper in time
        # Item count and size per table, counted once then kept by committed deltas
        # (cheaper than updating a counter row in every write's transaction).
        self._counts: dict[int, list[int]] = {}

    def counts(self, table_id: int) -> tuple[int, int]:
        counts = self._counts.get(table_id)
        if counts is None:
            row = self.store.one("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM dynamodb_items WHERE table_id=?",
                                 (table_id,))
            counts = self._counts[table_id] = [row[0], row[1]]
        return counts[0], counts[1]

    def forget(self, table_id: int) -> None:
        self._counts.pop(table_id, None)

    def _count(self, table_id: int, items: int, size: int) -> None:
        counts = self._counts.get(table_id)
        if counts is not None:
            counts[0] += items
            counts[1] += size

    def get(self, table: Table, pk: bytes, rk: bytes) -> Item | None:
        row = self.store.one("SELECT item FROM dynamodb_items WHERE table_id=? AND pk=? AND rk=?",
                             (table.id, pk, rk))
        return attributes.loads(row[0]) if row else None

    def write(self, table: Table, keys: Item, pk: bytes, rk: bytes, old: Item | None, new: Item | None,
              identity: dict | None = None) -> bool:
        """Replace ``old`` (None: absent) by ``new`` (None: delete). False when nothing
        changed, which writes nothing and, as on AWS, adds no stream record."""
        if old is None and new is None:
            return False
        if old is not None and new is not None and _same(old, new):
            return False
        db = self.store.db
        old_size = attributes.item_size(old) if old is not None else 0
        if new is None:
            db.execute("DELETE FROM dynamodb_items WHERE table_id=? AND pk=? AND rk=?", (table.id, pk, rk))
            new_size = 0
        else:
            new_size = attributes.item_size(new)
            deadline = expiry(table, new)
            db.execute("INSERT OR REPLACE INTO dynamodb_items(table_id, pk, rk, item, size, expires) "
                       "VALUES(?, ?, ?, ?, ?, ?)",
                       (table.id, pk, rk, attributes.dumps(new), new_size, deadline))
            if deadline is not None:
                self.on_expiry(deadline)
        delta = (new is not None) - (old is not None)
        self.store.after_commit(lambda: self._count(table.id, delta, new_size - old_size))
        for index in table.indexes.values():
            before = index_key(index, old) if old is not None else None
            after = index_key(index, new) if new is not None else None
            if before == after:
                continue
            if before is not None:
                db.execute("DELETE FROM dynamodb_index_entries WHERE index_id=? AND pk=? AND rk=? AND tpk=? AND trk=?",
                           (index.id, before[0], before[1], pk, rk))
            if after is not None:
                db.execute("INSERT OR REPLACE INTO dynamodb_index_entries(index_id, pk, rk, tpk, trk) "
                           "VALUES(?, ?, ?, ?, ?)", (index.id, after[0], after[1], pk, rk))
        if table.stream is not None:
            self.streams.append(table, keys, old, new, identity, old_size + new_size)
        if (table.definition.get("PITR") or {}).get("Enabled") and self.clock is not None:
            from unkai.services.dynamodb.backups import log_write

            log_write(self.store, table, self.clock.now(), pk, rk, old)
        return True


def check_index_keys(table: Table, item: Item) -> None:
    """Raise if the item carries an index key attribute of the wrong type."""
    for index in table.indexes.values():
        index.schema.check_item(item, index.name)


def index_key(index: Index, item: Item) -> tuple[bytes, bytes] | None:
    schema = index.schema
    hash_value = item.get(schema.hash.name)
    if hash_value is None or schema.hash.type not in hash_value:
        return None
    if schema.range is None:
        return partition(encode(hash_value)), b""
    range_value = item.get(schema.range.name)
    if range_value is None or schema.range.type not in range_value:
        return None
    return partition(encode(hash_value)), encode(range_value)


def expiry(table: Table, item: Item) -> float | None:
    name = table.ttl_attribute
    if name is None:
        return None
    value = item.get(name)
    if value is None or "N" not in value:
        return None
    try:
        return float(Decimal(value["N"]))
    except (InvalidOperation, OverflowError):
        return None


def _same(a: Item, b: Item) -> bool:
    return a.keys() == b.keys() and all(attributes.equal(v, b[k]) for k, v in a.items())
