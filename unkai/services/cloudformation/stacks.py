"""What is deployed: each stack and its resources as the template engine made them.
The engine writes here; the CloudFormation API reads it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from unkai.store import Store

MIGRATIONS = [
    """
    CREATE TABLE cloudformation_stacks (
        stack_id TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        description TEXT,
        template TEXT NOT NULL,
        processed TEXT NOT NULL,
        parameters TEXT NOT NULL,
        outputs TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL,
        deleted REAL
    );
    CREATE INDEX cloudformation_stacks_name ON cloudformation_stacks(account, region, name);
    CREATE TABLE cloudformation_resources (
        stack_id TEXT NOT NULL REFERENCES cloudformation_stacks(stack_id) ON DELETE CASCADE,
        logical_id TEXT NOT NULL,
        type TEXT NOT NULL,
        physical_id TEXT,
        ref TEXT,
        attributes TEXT NOT NULL DEFAULT '{}',
        props TEXT NOT NULL DEFAULT '{}',
        depends TEXT NOT NULL DEFAULT '[]',
        status TEXT NOT NULL,
        reason TEXT,
        updated REAL NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (stack_id, logical_id)
    );
    """
]


@dataclass
class Stack:
    stack_id: str
    account: str
    region: str
    name: str
    status: str
    reason: str | None
    description: str | None
    template: str
    processed: dict[str, Any]
    parameters: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    created: float
    updated: float | None = None
    deleted: float | None = None


@dataclass
class StackResource:
    logical_id: str
    type: str
    physical_id: str | None
    ref: Any
    attributes: dict[str, Any] = field(default_factory=dict)
    props: dict[str, Any] = field(default_factory=dict)
    depends: list[str] = field(default_factory=list)
    status: str = "CREATE_COMPLETE"
    reason: str | None = None
    updated: float = 0.0
    seq: int = 0

    @property
    def ok(self) -> bool:
        return self.status.endswith("_COMPLETE")

    @property
    def usable(self) -> bool:
        """References to it resolve: it is complete, or a failed update left the old one in place."""
        return self.ok or self.physical_id is not None


_STACK_COLUMNS = ("stack_id, account, region, name, status, reason, description, template, processed, parameters, "
                  "outputs, created, updated, deleted")


class Stacks:
    def __init__(self, store: Store) -> None:
        self.store = store
        store.migrate("cloudformation", MIGRATIONS)

    @staticmethod
    def _stack(row: tuple) -> Stack:
        values = list(row)
        for i in (8, 9, 10):
            values[i] = json.loads(values[i])
        return Stack(*values)

    def find(self, account: str, region: str, name_or_id: str, include_deleted: bool = False) -> Stack | None:
        """A stack by name (the live one) or by stack id (deleted ones too, as on AWS)."""
        if name_or_id.startswith("arn:"):
            row = self.store.one(f"SELECT {_STACK_COLUMNS} FROM cloudformation_stacks WHERE stack_id=? AND account=? "
                                 "AND region=?", (name_or_id, account, region))
        else:
            row = self.store.one(
                f"SELECT {_STACK_COLUMNS} FROM cloudformation_stacks WHERE account=? AND region=? AND name=? "
                + ("" if include_deleted else "AND deleted IS NULL ") + "ORDER BY created DESC LIMIT 1",
                (account, region, name_or_id))
        return self._stack(row) if row else None

    def all(self, account: str, region: str) -> list[Stack]:
        rows = self.store.all(f"SELECT {_STACK_COLUMNS} FROM cloudformation_stacks WHERE account=? AND region=? "
                              "ORDER BY created DESC", (account, region))
        return [self._stack(r) for r in rows]

    def physical_id(self, account: str, region: str, logical_id: str, resource_type: str) -> str | None:
        """A live stack's resource by its logical id (``unkai logs PublisherFunction``)."""
        row = self.store.one(
            "SELECT r.physical_id FROM cloudformation_resources r JOIN cloudformation_stacks s "
            "ON s.stack_id=r.stack_id WHERE s.account=? AND s.region=? AND s.deleted IS NULL AND r.logical_id=? "
            "AND r.type=? ORDER BY s.created DESC LIMIT 1", (account, region, logical_id, resource_type))
        return row[0] if row and row[0] else None

    def save(self, stack: Stack) -> None:
        updates = ", ".join(f"{c}=excluded.{c}" for c in _STACK_COLUMNS.split(", ")[1:])
        self.store.execute(  # an upsert: REPLACE would delete (and cascade to) the stack's resources
            f"INSERT INTO cloudformation_stacks({_STACK_COLUMNS}) VALUES({','.join('?' * 14)}) "
            f"ON CONFLICT(stack_id) DO UPDATE SET {updates}",
            (stack.stack_id, stack.account, stack.region, stack.name, stack.status, stack.reason, stack.description,
             stack.template, json.dumps(stack.processed), json.dumps(stack.parameters), json.dumps(stack.outputs),
             stack.created, stack.updated, stack.deleted))

    def resources(self, stack_id: str) -> dict[str, StackResource]:
        rows = self.store.all(
            "SELECT logical_id, type, physical_id, ref, attributes, props, depends, status, reason, updated, seq "
            "FROM cloudformation_resources WHERE stack_id=? ORDER BY seq", (stack_id,))
        out = {}
        for r in rows:
            out[r[0]] = StackResource(r[0], r[1], r[2], json.loads(r[3]) if r[3] else None, json.loads(r[4]),
                                      json.loads(r[5]), json.loads(r[6]), r[7], r[8], r[9], r[10])
        return out

    def save_resource(self, stack_id: str, res: StackResource) -> None:
        self.store.execute(
            "INSERT OR REPLACE INTO cloudformation_resources(stack_id, logical_id, type, physical_id, ref, attributes, "
            "props, depends, status, reason, updated, seq) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
            (stack_id, res.logical_id, res.type, res.physical_id, json.dumps(res.ref), json.dumps(res.attributes),
             json.dumps(res.props), json.dumps(res.depends), res.status, res.reason, res.updated, res.seq))

    def forget_resource(self, stack_id: str, logical_id: str) -> None:
        self.store.execute("DELETE FROM cloudformation_resources WHERE stack_id=? AND logical_id=?",
                           (stack_id, logical_id))
