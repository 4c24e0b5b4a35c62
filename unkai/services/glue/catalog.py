"""The Data Catalog's rows: databases, tables and partitions as the JSON Glue returns.

Glue keeps database and table names in lower case (``CreateTable`` with ``Logs`` makes
``logs``), and so does this catalog. A partition is keyed by its values in order. The
in-process contract ``table(account, region, database, name)`` and
``partitions(account, region, database, table)`` is what Athena reads.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unkai.store import Store

MIGRATIONS = [
    """
    CREATE TABLE glue_databases (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (account, region, name)
    );
    CREATE TABLE glue_tables (
        account TEXT NOT NULL, region TEXT NOT NULL, db TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (account, region, db, name)
    );
    CREATE TABLE glue_partitions (
        account TEXT NOT NULL, region TEXT NOT NULL, db TEXT NOT NULL, tbl TEXT NOT NULL, vals TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (account, region, db, tbl, vals)
    );
    """
]


class Catalog:
    def __init__(self, store: "Store") -> None:
        self.store = store

    def database(self, account: str, region: str, name: str) -> dict | None:
        row = self.store.one("SELECT body FROM glue_databases WHERE account=? AND region=? AND name=?",
                             (account, region, name.lower()))
        return json.loads(row[0]) if row else None

    def databases(self, account: str, region: str) -> list[dict]:
        return [json.loads(r[0]) for r in self.store.all(
            "SELECT body FROM glue_databases WHERE account=? AND region=? ORDER BY name", (account, region))]

    def table(self, account: str, region: str, database: str, name: str) -> dict | None:
        """A table as GetTable returns it, or None."""
        row = self.store.one("SELECT body FROM glue_tables WHERE account=? AND region=? AND db=? AND name=?",
                             (account, region, database.lower(), name.lower()))
        return json.loads(row[0]) if row else None

    def tables(self, account: str, region: str, database: str) -> list[dict]:
        return [json.loads(r[0]) for r in self.store.all(
            "SELECT body FROM glue_tables WHERE account=? AND region=? AND db=? ORDER BY name",
            (account, region, database.lower()))]

    def partitions(self, account: str, region: str, database: str, table: str) -> list[dict]:
        """A table's partitions as GetPartitions returns them, in creation order."""
        return [json.loads(r[0]) for r in self.store.all(
            "SELECT body FROM glue_partitions WHERE account=? AND region=? AND db=? AND tbl=? ORDER BY rowid",
            (account, region, database.lower(), table.lower()))]

    def partition(self, account: str, region: str, database: str, table: str, values: list[str]) -> dict | None:
        row = self.store.one("SELECT body FROM glue_partitions WHERE account=? AND region=? AND db=? AND tbl=? AND "
                             "vals=?", (account, region, database.lower(), table.lower(), json.dumps(values)))
        return json.loads(row[0]) if row else None

    def put_database(self, account: str, region: str, body: dict) -> None:
        self.store.execute("INSERT OR REPLACE INTO glue_databases(account, region, name, body) VALUES(?,?,?,?)",
                           (account, region, body["Name"], json.dumps(body)))

    def put_table(self, account: str, region: str, body: dict) -> None:
        self.store.execute("INSERT OR REPLACE INTO glue_tables(account, region, db, name, body) VALUES(?,?,?,?,?)",
                           (account, region, body["DatabaseName"], body["Name"], json.dumps(body)))

    def put_partition(self, account: str, region: str, body: dict) -> None:
        self.store.execute("INSERT OR REPLACE INTO glue_partitions(account, region, db, tbl, vals, body) "
                           "VALUES(?,?,?,?,?,?)", (account, region, body["DatabaseName"], body["TableName"],
                                                   json.dumps(body["Values"]), json.dumps(body)))

    def delete_partition(self, account: str, region: str, database: str, table: str, values: list[str]) -> int:
        return self.store.execute("DELETE FROM glue_partitions WHERE account=? AND region=? AND db=? AND tbl=? AND "
                                  "vals=?", (account, region, database, table, json.dumps(values))).rowcount

    def delete_table(self, account: str, region: str, database: str, name: str) -> None:
        self.store.execute("DELETE FROM glue_partitions WHERE account=? AND region=? AND db=? AND tbl=?",
                           (account, region, database, name))
        self.store.execute("DELETE FROM glue_tables WHERE account=? AND region=? AND db=? AND name=?",
                           (account, region, database, name))

    def delete_database(self, account: str, region: str, name: str) -> None:
        for table in self.tables(account, region, name):
            self.delete_table(account, region, name, table["Name"])
        self.store.execute("DELETE FROM glue_databases WHERE account=? AND region=? AND name=?",
                           (account, region, name))


def matches(expression: str | None, name: str) -> bool:
    """GetTables' Expression: a regular expression (``*`` as a wildcard, ``|`` alternatives)."""
    import re

    if not expression:
        return True
    pattern = "|".join(p.replace("*", ".*") if ".*" not in p else p for p in expression.split("|"))
    try:
        return re.fullmatch(pattern, name) is not None
    except re.error:
        return False


def page(items: list[Any], token: str | None, size: int | None) -> tuple[list[Any], str | None]:
    start = int(token) if token and token.isdigit() else 0
    size = size or 100
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)
