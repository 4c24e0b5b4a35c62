"""The webhook inbox: any request to ``/_unkai/inbox/{name}`` is recorded and listed
back as JSON, so an integration that posts to Slack, Teams, Backlog or any webhook
can be pointed here and tested offline, showing exactly what would have been sent."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from unkai.protocol.values import iso8601

if TYPE_CHECKING:
    from unkai.cloud import Cloud

MIGRATIONS = [
    """
    CREATE TABLE inbox_requests (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        query TEXT NOT NULL,
        headers TEXT NOT NULL,
        body BLOB NOT NULL,
        received_at REAL NOT NULL
    );
    CREATE INDEX inbox_requests_name ON inbox_requests(name, id);
    """
]


class Inbox:
    def __init__(self, cloud: "Cloud") -> None:
        self.cloud = cloud
        self.store = cloud.store
        self.store.migrate("inbox", MIGRATIONS)

    def record(self, name: str, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> int:
        cur = self.store.execute(
            "INSERT INTO inbox_requests(name, method, path, query, headers, body, received_at) "
            "VALUES(?, ?, ?, ?, ?, ?, ?)",
            (name, method, path, query, json.dumps(headers), body, self.cloud.clock.now()),
        )
        self.store.after_commit(lambda: self.cloud.signals.notify(("inbox", name)))
        return cur.lastrowid

    def list(self, name: str) -> list[dict[str, Any]]:
        rows = self.store.all(
            "SELECT id, method, path, query, headers, body, received_at FROM inbox_requests "
            "WHERE name=? ORDER BY id", (name,))
        return [_entry(*row) for row in rows]

    def names(self) -> list[dict[str, Any]]:
        rows = self.store.all("SELECT name, COUNT(*) FROM inbox_requests GROUP BY name ORDER BY name")
        return [{"name": n, "count": c} for n, c in rows]

    def clear(self, name: str) -> int:
        return self.store.execute("DELETE FROM inbox_requests WHERE name=?", (name,)).rowcount


def _entry(entry_id: int, method: str, path: str, query: str, headers: str, body: bytes,
           received_at: float) -> dict[str, Any]:
    out: dict[str, Any] = {"id": entry_id, "method": method, "path": path, "query": query,
                           "headers": json.loads(headers), "received_at": iso8601(received_at)}
    try:
        out["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        out["body_base64"] = base64.b64encode(body).decode()
        return out
    try:
        out["json"] = json.loads(out["body"])
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python parses
        pass
    return out
