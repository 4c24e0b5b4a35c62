"""A queue as the service sees it: its identity, settings and where its URL points."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property

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
    # Settings read on every send, parsed once: a Queue is never changed in place (a change of
    # attributes or tags stores the row and drops the cached Queue, so the next read builds a new one).
    _ints: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def fifo(self) -> bool:
        return self.name.endswith(".fifo")

    @property
    def arn(self) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account}:{self.name}"

    def attr_int(self, name: str) -> int:
        value = self._ints.get(name)
        if value is None:
            value = self._ints[name] = qattrs.as_int(self.attributes, name)
        return value

    @property
    def redrive(self) -> tuple[str, int] | None:
        raw = self.attributes.get("RedrivePolicy")
        if not raw:
            return None
        policy = json.loads(raw)
        return policy["deadLetterTargetArn"], int(policy["maxReceiveCount"])

    def url(self, base: str) -> str:
        return f"{base}/{self.account}/{self.name}"
