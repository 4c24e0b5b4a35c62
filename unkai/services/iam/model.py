"""IAM's records: users, groups, roles, customer managed policies, instance profiles
and OIDC providers as one JSON document per entity (IAM is global: keyed by account
only), and access keys in their own table, their secrets sealed.

Each entity is read and written whole: IAM entities are small and changed rarely, and
one row per entity keeps a role with its inline policies, attachments and tags
consistent in one write. The compiled policies of a principal are cached and the
cache is dropped on every IAM write, so request-time evaluation never parses JSON.
"""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any

from unkai.services.iam import errors, managed

MIGRATIONS = [
    """
    CREATE TABLE iam_entities (
        account TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (account, kind, name)
    );
    CREATE TABLE iam_access_keys (
        key_id TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        user TEXT NOT NULL,
        secret BLOB NOT NULL,
        status TEXT NOT NULL,
        created REAL NOT NULL,
        last_used REAL,
        last_service TEXT,
        last_region TEXT
    );
    """
]

# Id prefixes IAM hands out (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html)
PREFIX = {"user": "AIDA", "group": "AGPA", "role": "AROA", "policy": "ANPA", "profile": "AIPA"}
ARN_KIND = {"user": "user", "group": "group", "role": "role", "policy": "policy", "profile": "instance-profile"}
NAME = re.compile(r"^[\w+=,.@-]+$")
PATH = re.compile(r"^(/|/[\x21-\x7e]+/)$")
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def unique_id(kind: str) -> str:
    return PREFIX[kind] + base64.b32encode(os.urandom(11)).decode()[:17]


def access_key_id(prefix: str = "AKIA") -> str:
    return prefix + base64.b32encode(os.urandom(10)).decode()[:16]


def secret_key() -> str:
    return base64.b64encode(os.urandom(30)).decode().replace("/", "+")[:40]


def arn(account: str, kind: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account}:{ARN_KIND[kind]}{path}{name}"


def check_name(value: Any, member: str, max_len: int = 64) -> str:
    if not isinstance(value, str) or not value:
        raise errors.validation(str(value), member, "Member must have length greater than or equal to 1")
    if len(value) > max_len:
        raise errors.validation(value, member, f"Member must have length less than or equal to {max_len}")
    if not NAME.match(value):
        raise errors.validation(value, member, "Member must satisfy regular expression pattern: [\\w+=,.@-]+")
    return value


def check_path(value: Any, member: str = "path") -> str:
    if value is None:
        return "/"
    if not isinstance(value, str) or len(value) > 512 or not PATH.match(value):
        raise errors.validation(str(value), member, "Member must satisfy regular expression pattern: "
                                "(\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)")
    return value


class Entities:
    """The JSON-document store for IAM entities."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.generation = 0  # bumped on every write; caches of compiled policies check it

    def get(self, account: str, kind: str, name: str) -> dict | None:
        row = self.store.one("SELECT data FROM iam_entities WHERE account=? AND kind=? AND name=?",
                             (account, kind, name))
        return json.loads(row[0]) if row else None

    def need(self, account: str, kind: str, name: str) -> dict:
        found = self.get(account, kind, name)
        if found is None:
            raise errors.no_such(kind, name)
        return found

    def put(self, account: str, kind: str, name: str, data: dict) -> None:
        self.store.execute("INSERT OR REPLACE INTO iam_entities (account, kind, name, data) VALUES (?, ?, ?, ?)",
                           (account, kind, name, json.dumps(data)))
        self.generation += 1

    def delete(self, account: str, kind: str, name: str) -> None:
        self.store.execute("DELETE FROM iam_entities WHERE account=? AND kind=? AND name=?", (account, kind, name))
        self.generation += 1

    def all(self, account: str, kind: str) -> list[dict]:
        rows = self.store.all("SELECT data FROM iam_entities WHERE account=? AND kind=? ORDER BY name",
                              (account, kind))
        return [json.loads(r[0]) for r in rows]

    # -- policies (customer managed or AWS managed) ------------------------------------------

    def policy(self, account: str, policy_arn: str) -> dict | None:
        """A managed policy by ARN: the account's own, or an AWS managed one."""
        name = managed.BY_ARN.get(policy_arn)
        if name is not None:
            path, description, document = managed.POLICIES[name]
            meta = managed.metadata(name)
            return {"PolicyName": name, "Arn": policy_arn, "Path": path, "PolicyId": meta["PolicyId"],
                    "Description": description, "CreateDate": meta["CreateDate"], "UpdateDate": meta["UpdateDate"],
                    "DefaultVersionId": meta["DefaultVersionId"], "IsAttachable": True, "Tags": [],
                    "Versions": [{"VersionId": meta["DefaultVersionId"], "Document": document,
                                  "CreateDate": meta["UpdateDate"]}],
                    "NextVersion": int(meta["DefaultVersionId"][1:]) + 1, "aws": True}
        return self.get(account, "policy", policy_arn)

    def default_document(self, policy: dict) -> str:
        for v in policy["Versions"]:
            if v["VersionId"] == policy["DefaultVersionId"]:
                return v["Document"]
        return "{}"

    def attachments(self, account: str, policy_arn: str) -> list[tuple[str, dict]]:
        out = []
        for kind in ("user", "group", "role"):
            for entity in self.all(account, kind):
                if policy_arn in entity.get("Attached", []):
                    out.append((kind, entity))
        return out

    def boundary_uses(self, account: str, policy_arn: str) -> int:
        return sum(1 for kind in ("user", "role") for e in self.all(account, kind)
                   if e.get("Boundary") == policy_arn)
