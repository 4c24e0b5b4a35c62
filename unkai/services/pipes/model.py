"""The ``pipes_pipes`` table and the ``Pipe`` row: a pipe's whole specification as the API
takes it (JSON), its desired state, and the poller's durable state (stream positions),
which survives restarts as a Lambda mapping's does."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MIGRATIONS = [
    """
    CREATE TABLE pipes_pipes (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        desired TEXT NOT NULL,
        created REAL NOT NULL,
        modified REAL NOT NULL,
        state TEXT NOT NULL DEFAULT '{}',
        tags TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (account, region, name)
    );
    """
]

COLUMNS = "account, region, name, spec, desired, created, modified, tags"


@dataclass
class Pipe:
    account: str
    region: str
    name: str
    spec: dict[str, Any]
    desired: str
    created: float
    modified: float
    tags: dict[str, str]

    @classmethod
    def from_row(cls, row: tuple) -> "Pipe":
        account, region, name, spec, desired, created, modified, tags = row
        return cls(account, region, name, json.loads(spec), desired, created, modified, json.loads(tags))

    @property
    def arn(self) -> str:
        return f"arn:aws:pipes:{self.region}:{self.account}:pipe/{self.name}"

    @property
    def key(self) -> str:
        """The poller's id for this pipe (unique across accounts and regions)."""
        return self.arn

    @property
    def source(self) -> str:
        return self.spec["Source"]


def source_kind(source: str) -> str:
    if source.startswith("arn:aws:sqs:"):
        return "sqs"
    if source.startswith("arn:aws:dynamodb:") and "/stream/" in source:
        return "dynamodb"
    if source.startswith("arn:aws:kinesis:"):
        return "kinesis"
    return "unknown"
