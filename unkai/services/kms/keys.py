"""KMS keys and aliases: the records, and how a KeyId (id, ARN, alias name or alias ARN)
finds a key.

A key's metadata is one JSON document; its material (one entry per rotation, newest last)
is sealed with the state directory's key and bound to the key's ARN. Keys scheduled for
deletion are gone once their deletion date passes on unkai's clock (checked on access).
``alias/aws/<service>`` names AWS managed keys, created on first use as AWS does.
"""

from __future__ import annotations

import base64
import json
import uuid
from types import MappingProxyType
from typing import Any

from unkai.protocol import ServiceError
from unkai.services.kms import crypto

MIGRATIONS = [
    """
    CREATE TABLE kms_keys (
        arn TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        key_id TEXT NOT NULL,
        data TEXT NOT NULL,
        material BLOB NOT NULL,
        UNIQUE (account, region, key_id)
    );
    CREATE TABLE kms_aliases (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        key_id TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (account, region, name)
    );
    """
]


def default_policy(account: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Id": "key-default-1", "Statement": [
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
         "Action": "kms:*", "Resource": "*"}]})


def managed_policy(account: str, region: str, service: str) -> str:
    """The key policy of an AWS managed key (``alias/aws/<service>``): every principal of the
    account may use it through that service, and read its metadata directly."""
    name = {"s3": "S3", "secretsmanager": "Secrets Manager", "sqs": "SQS", "sns": "SNS", "lambda": "Lambda",
            "dynamodb": "DynamoDB"}.get(service, service)
    return json.dumps({"Version": "2012-10-17", "Id": f"auto-{service}-2", "Statement": [
        {"Sid": f"Allow access through {name} for all principals in the account that are authorized to use {name}",
         "Effect": "Allow", "Principal": {"AWS": "*"},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
         "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": account,
                                                          "kms:ViaService": f"{service}.{region}.amazonaws.com"}}},
        {"Sid": "Allow direct access to key metadata to the account", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
         "Action": ["kms:Describe*", "kms:Get*", "kms:List*"], "Resource": "*"}]})


def not_found(what: str) -> ServiceError:
    return ServiceError("NotFoundException", what)


class Key:
    """A key's record. ``data`` is the caller's own copy of its metadata document, parsed on
    first use, to change and ``save``; ``view`` is the parse shared by every call that read
    the same stored text (read only), so Encrypt, Decrypt and DescribeKey parse nothing."""

    __slots__ = ("arn", "account", "region", "key_id", "sealed", "_data", "_view")

    def __init__(self, arn: str, account: str, region: str, key_id: str, data: dict[str, Any] | None = None,
                 sealed: bytes = b"", view: "_Parsed | None" = None) -> None:
        self.arn, self.account, self.region, self.key_id, self.sealed = arn, account, region, key_id, sealed
        self._data, self._view = data, view  # one of them is given

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            self._data = json.loads(self._view.text)  # type: ignore[union-attr]
        return self._data

    @property
    def view(self) -> Any:
        """The metadata to read: the caller's copy once made (it may hold unsaved changes)."""
        return self._data if self._data is not None else self._view.doc  # type: ignore[union-attr]

    @property
    def derived(self) -> dict[str, Any] | None:
        """Values worked out from the stored metadata alone, kept with its parse; None once
        the caller has its own copy (which may differ)."""
        return self._view.derived if self._data is None and self._view is not None else None

    @property
    def spec(self) -> str:
        return self.view["KeySpec"]

    @property
    def state(self) -> str:
        return self.view["KeyState"]


class _Parsed:
    """One stored metadata text, its parse (``doc``: never changed, shared) and what is
    worked out from it alone (``derived``: e.g. DescribeKey's KeyMetadata)."""

    __slots__ = ("text", "doc", "derived")

    def __init__(self, text: str) -> None:
        self.text, self.doc = text, MappingProxyType(json.loads(text))
        self.derived: dict[str, Any] = {}


class Keys:
    def __init__(self, store: Any, sealer: Any, clock: Any) -> None:
        self.store, self.sealer, self.clock = store, sealer, clock
        # (arn, sealed bytes) -> opened materials: the row is still read on every call (state,
        # rotation), but a sealed value already opened is not unsealed and parsed again. The
        # sealed bytes are the cache key, so a rotation (new sealed value) is never missed.
        self._opened: dict[tuple[str, bytes], tuple[bytes, ...]] = {}
        self._parsed: dict[str, _Parsed] = {}  # stored metadata text -> its parse

    def parsed(self, text: str) -> "_Parsed":
        """The shared, read-only parse of a stored metadata text (made once per text)."""
        parsed = self._parsed.get(text)
        if parsed is None:
            if len(self._parsed) >= 512:
                self._parsed.pop(next(iter(self._parsed)))
            parsed = self._parsed[text] = _Parsed(text)
        return parsed

    def _row(self, row: tuple) -> Key:
        return Key(row[0], row[1], row[2], row[3], sealed=row[5], view=self.parsed(row[4]))

    def create(self, account: str, region: str, data: dict, materials: list[bytes]) -> Key:
        key_id = str(uuid.uuid4())
        arn = f"arn:aws:kms:{region}:{account}:key/{key_id}"
        key = Key(arn, account, region, key_id, data)
        key.data.update({"KeyId": key_id, "Arn": arn, "AWSAccountId": account})
        self.store.execute("INSERT INTO kms_keys (arn, account, region, key_id, data, material) VALUES (?, ?, ?, ?, ?, ?)",
                           (arn, account, region, key_id, json.dumps(key.data), self._seal(arn, materials)))
        return key

    def _seal(self, arn: str, materials: list[bytes]) -> bytes:
        text = json.dumps([base64.b64encode(m).decode() for m in materials]).encode()
        return self.sealer.seal(text, arn.encode())

    def materials(self, key: Key) -> list[bytes]:
        """The key's materials, oldest first (opened from its sealed value, once per value)."""
        opened = self._opened.get((key.arn, key.sealed))
        if opened is None:
            opened = tuple(base64.b64decode(m) for m in json.loads(self.sealer.unseal(key.sealed, key.arn.encode())))
            if len(self._opened) >= 256:
                self._opened.pop(next(iter(self._opened)))
            self._opened[(key.arn, key.sealed)] = opened
        return list(opened)

    def add_material(self, key: Key, material: bytes) -> None:
        materials = self.materials(key) + [material]
        key.sealed = self._seal(key.arn, materials)
        self.store.execute("UPDATE kms_keys SET material=? WHERE arn=?", (key.sealed, key.arn))

    def save(self, key: Key) -> None:
        self.store.execute("UPDATE kms_keys SET data=? WHERE arn=?", (json.dumps(key.data), key.arn))

    def by_id(self, account: str, region: str, key_id: str) -> Key | None:
        row = self.store.one("SELECT arn, account, region, key_id, data, material FROM kms_keys "
                             "WHERE account=? AND region=? AND key_id=?", (account, region, key_id))
        if row is None:
            return None
        key = self._row(row)
        if key.state == "PendingDeletion" and (key.view.get("DeletionDate") or 0) <= self.clock.now():
            self.store.execute("DELETE FROM kms_keys WHERE arn=?", (key.arn,))
            self._opened.pop((key.arn, key.sealed), None)
            self.store.execute("DELETE FROM kms_aliases WHERE account=? AND region=? AND key_id=?",
                               (account, region, key.key_id))
            return None
        return key

    def all(self, account: str, region: str) -> list[Key]:
        rows = self.store.all("SELECT key_id FROM kms_keys WHERE account=? AND region=? ORDER BY rowid",
                              (account, region))
        return [k for k in (self.by_id(account, region, r[0]) for r in rows) if k is not None]

    def alias_target(self, account: str, region: str, name: str) -> str | None:
        row = self.store.one("SELECT key_id FROM kms_aliases WHERE account=? AND region=? AND name=?",
                             (account, region, name))
        return row[0] if row else None

    def aliases(self, account: str, region: str) -> list[tuple[str, str, float, float]]:
        return self.store.all("SELECT name, key_id, created, updated FROM kms_aliases WHERE account=? AND region=? "
                              "ORDER BY name", (account, region))

    def set_alias(self, account: str, region: str, name: str, key_id: str, created: float | None = None) -> None:
        now = self.clock.now()
        self.store.execute("INSERT OR REPLACE INTO kms_aliases (account, region, name, key_id, created, updated) "
                           "VALUES (?, ?, ?, ?, ?, ?)", (account, region, name, key_id, created or now, now))

    def delete_alias(self, account: str, region: str, name: str) -> None:
        self.store.execute("DELETE FROM kms_aliases WHERE account=? AND region=? AND name=?", (account, region, name))


def new_key_data(spec: str, usage: str, now: float, **extra: Any) -> dict:
    data: dict[str, Any] = {"CreationDate": now, "Enabled": True, "KeyState": "Enabled", "KeyUsage": usage,
                            "KeySpec": spec, "CustomerMasterKeySpec": spec, "Origin": "AWS_KMS",
                            "KeyManager": "CUSTOMER", "MultiRegion": False, "Description": "", "Tags": [],
                            "Grants": [], "RotationEnabled": False, "Rotations": []}
    if spec == "SYMMETRIC_DEFAULT":
        data["EncryptionAlgorithms"] = ["SYMMETRIC_DEFAULT"]
    elif spec.startswith("HMAC"):
        data["MacAlgorithms"] = crypto.MACS[spec]
    elif usage == "ENCRYPT_DECRYPT":
        data["EncryptionAlgorithms"] = crypto.RSA_ENCRYPTION
    else:
        data["SigningAlgorithms"] = crypto.SIGNING["RSA" if spec.startswith("RSA") else spec]
    data.update(extra)
    return data
