"""AWS managed policies that exist in every account by ARN (arn:aws:iam::aws:policy/...),
with the documents AWS publishes for them (the AWS Managed Policy Reference Guide).
Templates attach them by ARN (SAM's ``Policies: [AWSLambdaBasicExecutionRole]`` and its
generated roles), so they are served read-only from here rather than stored.

``managed_policies.json`` holds, for the policies of the services unkai serves, AWS's current
default version: its document, version id, policy id, path, dates and description, as
``GetPolicy`` / ``GetPolicyVersion`` answer them on AWS (taken from AWS's published policies;
refresh it when AWS edits one)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

_DATA: dict[str, dict[str, Any]] = json.loads((Path(__file__).parent / "managed_policies.json").read_text())


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# name -> (path, description, document)
POLICIES: dict[str, tuple[str, str, str]] = {
    name: (p["Path"], p["Description"], json.dumps(p["Document"])) for name, p in _DATA.items()}

CREATED = 1423000000.0  # the date AWS reports for its oldest managed policies (2015-02)


def metadata(name: str) -> dict[str, Any]:
    """A managed policy's PolicyId, DefaultVersionId, CreateDate and UpdateDate (epoch seconds)."""
    p = _DATA[name]
    return {"PolicyId": p["PolicyId"], "DefaultVersionId": p["DefaultVersionId"],
            "CreateDate": _epoch(p["CreateDate"]), "UpdateDate": _epoch(p["UpdateDate"])}


def arn(name: str) -> str:
    path = POLICIES[name][0]
    return f"arn:aws:iam::aws:policy{path}{name}"


BY_ARN: dict[str, str] = {arn(n): n for n in POLICIES}
