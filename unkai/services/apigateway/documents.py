"""API Gateway's configuration as JSON documents: one row per API, resource, route,
stage, key... in botocore's member names, so the control plane returns them as they
are and the data plane compiles them once per change (``generation``)."""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

from unkai.store import Store

MIGRATIONS = [
    """
    CREATE TABLE apigateway_docs (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        kind TEXT NOT NULL,
        parent TEXT NOT NULL,
        id TEXT NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (account, region, kind, parent, id)
    );
    CREATE INDEX apigateway_docs_id ON apigateway_docs(id, kind);
    """
]

_ALNUM = string.ascii_lowercase + string.digits


def escaped_policy(text: str | None) -> str | None:
    """A REST API's resource policy as GetRestApi answers it: minified JSON with its quotes and
    slashes backslash-escaped (``{\\"Version\\":...}``). The Terraform provider unescapes it and
    fails on plain JSON. Text already in that form (not JSON) is kept as it is."""
    if not text:
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if not isinstance(value, (dict, list)):
        return text
    return json.dumps(json.dumps(value, separators=(",", ":")))[1:-1].replace("/", "\\/")


def new_id(length: int = 10) -> str:
    """AWS's lower-case alphanumeric ids (REST API, resource, deployment, key ids)."""
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


class Documents:
    """Documents keyed by (account, region, kind, parent, id). ``parent`` is the API
    id for an API's parts and '' for top-level things (APIs, API keys, usage plans).
    Lists come in creation order (rowid; an update keeps its row)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.migrate("apigateway_docs", MIGRATIONS)
        self.generation = 0

    def _changed(self) -> None:
        def bump() -> None:
            self.generation += 1
        self.store.after_commit(bump)

    def put(self, account: str, region: str, kind: str, parent: str, id: str, doc: dict[str, Any]) -> dict:
        self.store.execute(
            "INSERT INTO apigateway_docs(account, region, kind, parent, id, doc) VALUES(?,?,?,?,?,?) "
            "ON CONFLICT(account, region, kind, parent, id) DO UPDATE SET doc=excluded.doc",
            (account, region, kind, parent, id, json.dumps(doc)),
        )
        self._changed()
        return doc

    def get(self, account: str, region: str, kind: str, parent: str, id: str) -> dict | None:
        row = self.store.one(
            "SELECT doc FROM apigateway_docs WHERE account=? AND region=? AND kind=? AND parent=? AND id=?",
            (account, region, kind, parent, id),
        )
        return json.loads(row[0]) if row else None

    def list(self, account: str, region: str, kind: str, parent: str = "") -> list[dict]:
        rows = self.store.all(
            "SELECT doc FROM apigateway_docs WHERE account=? AND region=? AND kind=? AND parent=? ORDER BY rowid",
            (account, region, kind, parent),
        )
        return [json.loads(r[0]) for r in rows]

    def delete(self, account: str, region: str, kind: str, parent: str, id: str) -> bool:
        cur = self.store.execute(
            "DELETE FROM apigateway_docs WHERE account=? AND region=? AND kind=? AND parent=? AND id=?",
            (account, region, kind, parent, id),
        )
        self._changed()
        return cur.rowcount > 0

    def delete_children(self, account: str, region: str, parent: str) -> None:
        """Everything that belongs to one API (its resources, stages, routes...)."""
        self.store.execute("DELETE FROM apigateway_docs WHERE account=? AND region=? AND parent=?",
                           (account, region, parent))
        self._changed()

    def locate(self, id: str, kinds: tuple[str, ...]) -> tuple[str, str, str, dict] | None:
        """A top-level document by id alone: (account, region, kind, doc)."""
        marks = ",".join("?" for _ in kinds)
        row = self.store.one(
            f"SELECT account, region, kind, doc FROM apigateway_docs WHERE id=? AND parent='' AND kind IN ({marks})",
            (id, *kinds),
        )
        return (row[0], row[1], row[2], json.loads(row[3])) if row else None

    def all_of(self, kind: str) -> list[tuple[str, str, dict]]:
        """Every document of a kind in every account and region: (account, region, doc)."""
        rows = self.store.all("SELECT account, region, doc FROM apigateway_docs WHERE kind=? ORDER BY rowid", (kind,))
        return [(a, r, json.loads(d)) for a, r, d in rows]
