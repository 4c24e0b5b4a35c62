"""A queue as the service sees it: its identity, settings and where its URL points."""

from __future__ import annotations

import json
from dataclasses import dataclass

from unkai.services.sqs import attributes as qattrs


@dataclass
class Queue:
    id: int
    account: str
    region: str
    name: str
    attributes: dict[str, str]
    tags: dict[str, str]
    created: float
    modified: float
    purged: float | None

    @property
    def fifo(self) -> bool:
        return self.name.endswith(".fifo")

    @property
    def arn(self) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account}:{self.name}"

    def attr_int(self, name: str) -> int:
        return qattrs.as_int(self.attributes, name)

    @property
    def redrive(self) -> tuple[str, int] | None:
        raw = self.attributes.get("RedrivePolicy")
        if not raw:
            return None
        policy = json.loads(raw)
        return policy["deadLetterTargetArn"], int(policy["maxReceiveCount"])

    def url(self, base: str) -> str:
        return f"{base}/{self.account}/{self.name}"
