"""Secrets and their versions: the records, and how a request's SecretId, VersionId and
VersionStage pick one.

A secret's metadata is one JSON document (``secretsmanager_secrets``); each version is a
row whose value is sealed with the state directory's key, bound to the secret's ARN and
the version id, so the database alone shows no value. A secret scheduled for deletion is
gone once its deletion date passes on unkai's clock (checked on access, so advancing the
clock is enough).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import string
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from unkai.services.secretsmanager import errors

MIGRATIONS = [
    """
    CREATE TABLE secretsmanager_secrets (
        arn TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        data TEXT NOT NULL,
        UNIQUE (account, region, name)
    );
    CREATE TABLE secretsmanager_versions (
        arn TEXT NOT NULL REFERENCES secretsmanager_secrets(arn) ON DELETE CASCADE,
        version_id TEXT NOT NULL,
        stages TEXT NOT NULL,
        created REAL NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (arn, version_id)
    );
    """
]

NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
MAX_VERSIONS = 100
_SUFFIX = string.ascii_letters + string.digits


def suffix() -> str:
    return "".join(_SUFFIX[b % len(_SUFFIX)] for b in os.urandom(6))


class Secret:
    """A secret's record. ``data`` is the caller's own copy of its metadata document, parsed
    on first use, to change and ``save``; ``view`` is the parse shared by every read of the
    same stored text (read only), so a read that changes nothing parses nothing."""

    __slots__ = ("arn", "account", "region", "name", "_data", "_view", "staged")

    def __init__(self, arn: str, account: str, region: str, name: str, data: dict[str, Any] | None = None,
                 view: Any = None) -> None:
        self.arn, self.account, self.region, self.name = arn, account, region, name
        self._data, self._view = data, view  # one of them is given
        # (stage, the version rows whose labels may hold it) read with the secret by ``find``
        self.staged: tuple[str, list[tuple]] | None = None

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            self._data = json.loads(self._view.text)
        return self._data

    @property
    def view(self) -> Any:
        """The metadata to read: the caller's copy once made (it may hold unsaved changes)."""
        return self._data if self._data is not None else self._view.doc

    @property
    def deleted(self) -> float | None:
        return self.view.get("DeletedDate")


class _Parsed:
    """One stored metadata text and its parse (``doc``: never changed, shared)."""

    __slots__ = ("text", "doc")

    def __init__(self, text: str) -> None:
        self.text, self.doc = text, MappingProxyType(json.loads(text))


@dataclass
class Version:
    version_id: str
    stages: list[str]
    created: float
    value: bytes  # sealed


class Secrets:
    """The store of secrets for one Secrets Manager service."""

    def __init__(self, store: Any, sealer: Any, clock: Any) -> None:
        self.store, self.sealer, self.clock = store, sealer, clock
        # What reads repeat, kept by the stored bytes they came from, so a changed row is
        # never served from here: metadata text -> its parse; (ARN, version id, sealed value)
        # -> the opened value (a new value is sealed with a new nonce, so it is a new key).
        self._parsed: dict[str, _Parsed] = {}
        self._opened: dict[tuple[str, str, bytes], dict] = {}

    def parsed(self, text: str) -> "_Parsed":
        """The shared, read-only parse of a stored metadata text (made once per text)."""
        parsed = self._parsed.get(text)
        if parsed is None:
            parsed = _Parsed(text)
            _bounded(self._parsed)[text] = parsed
        return parsed

    def _secret(self, row: tuple) -> Secret:
        return Secret(row[0], row[1], row[2], row[3], view=self.parsed(row[4]))

    # -- secrets ---------------------------------------------------------------------------

    def find(self, account: str, region: str, secret_id: str, purge: bool = True,
             stage: str | None = None) -> Secret | None:
        """By name, full ARN or partial ARN (without the random suffix). With ``stage``, the
        versions that may hold that label are read in the same statement (``version`` uses them)."""
        if stage is None:
            select, order, args = _SECRET, "", []
        else:
            select, order, args = _SECRET_AND_STAGED, _NEWEST, [_needle(stage)]
        if secret_id.startswith("arn:"):
            rows = self.store.all(select + "s.arn=?" + order, (*args, secret_id))
            if not rows:
                name = secret_id.split(":secret:", 1)[-1]
                rows = self.store.all(select + _BY_NAME + order, (*args, account, region, name))
        else:
            rows = self.store.all(select + _BY_NAME + order, (*args, account, region, secret_id))
        if not rows or rows[0][1] != account:
            return None
        secret = self._secret(rows[0])
        if stage is not None:
            secret.staged = (stage, [r[5:] for r in rows if r[5] is not None])
        if purge and secret.deleted is not None and secret.deleted <= self.clock.now():
            self.delete(secret)
            return None
        return secret

    def need(self, account: str, region: str, secret_id: str, stage: str | None = None) -> Secret:
        found = self.find(account, region, secret_id, stage=stage)
        if found is None:
            raise errors.not_found()
        return found

    def all(self, account: str, region: str) -> list[Secret]:
        rows = self.store.all("SELECT arn, account, region, name, data FROM secretsmanager_secrets "
                              "WHERE account=? AND region=? ORDER BY name", (account, region))
        out = []
        for r in rows:
            secret = self._secret(r)
            if secret.deleted is not None and secret.deleted <= self.clock.now():
                self.delete(secret)
                continue
            out.append(secret)
        return out

    def insert(self, secret: Secret) -> None:
        self.store.execute("INSERT INTO secretsmanager_secrets (arn, account, region, name, data) "
                           "VALUES (?, ?, ?, ?, ?)", (secret.arn, secret.account, secret.region, secret.name,
                                                      json.dumps(secret.data)))

    def save(self, secret: Secret) -> None:
        self.store.execute("UPDATE secretsmanager_secrets SET data=? WHERE arn=?", (json.dumps(secret.data), secret.arn))

    def delete(self, secret: Secret) -> None:
        self.store.execute("DELETE FROM secretsmanager_versions WHERE arn=?", (secret.arn,))
        self.store.execute("DELETE FROM secretsmanager_secrets WHERE arn=?", (secret.arn,))
        self.forget(secret.arn)

    def forget(self, arn: str | None = None) -> None:
        """Drop the opened values of a secret (every secret's when None): a deleted secret's
        plaintext is not kept in memory. A rolled-back delete only opens them again."""
        if arn is None:
            self._opened.clear()
            self._parsed.clear()
            return
        for key in [key for key in self._opened if key[0] == arn]:
            del self._opened[key]

    # -- versions --------------------------------------------------------------------------

    def versions(self, secret: Secret) -> list[Version]:
        rows = self.store.all("SELECT version_id, stages, created, value FROM secretsmanager_versions WHERE arn=? "
                              "ORDER BY created DESC", (secret.arn,))
        return [Version(r[0], _stages(r[1]), r[2], r[3]) for r in rows]

    def version(self, secret: Secret, version_id: str | None, stage: str | None) -> Version:
        """The version a request names (AWSCURRENT by default); both given must agree."""
        if version_id is not None:
            row = self.store.one("SELECT version_id, stages, created, value FROM secretsmanager_versions "
                                 "WHERE arn=? AND version_id=?", (secret.arn, version_id))
            if row is None:
                raise errors.no_value(version=version_id)
            found = Version(row[0], _stages(row[1]), row[2], row[3])
            if stage is not None and stage not in found.stages:
                raise errors.invalid_request(f"You provided a VersionStage that is not associated to the provided "
                                             f"VersionId.")
            return found
        stage = stage or "AWSCURRENT"
        # the versions whose stages' JSON holds the stage's JSON string (one, unless a stage
        # name holds another's), checked below; not a parse of every version the secret has
        if secret.staged is not None and secret.staged[0] == stage:
            rows = secret.staged[1]
        else:
            rows = self.store.all("SELECT version_id, stages, created, value FROM secretsmanager_versions "
                                  "WHERE arn=? AND instr(stages, ?) ORDER BY created DESC", (secret.arn, _needle(stage)))
        for r in rows:
            stages = _stages(r[1])
            if stage in stages:
                return Version(r[0], stages, r[2], r[3])
        raise errors.no_value(stage)

    def add_version(self, secret: Secret, version_id: str, value: dict, stages: list[str]) -> None:
        """A new version carrying ``stages`` (taken from whichever version had them; a new
        AWSCURRENT leaves AWSPREVIOUS on the one it replaced)."""
        if "AWSCURRENT" in stages:
            for v in self.versions(secret):
                if "AWSCURRENT" in v.stages:
                    self.move_stage(secret, "AWSPREVIOUS", v.version_id)
        for stage in stages:
            self._take_stage(secret, stage)
        sealed = self.sealer.seal(json.dumps(value).encode(), f"{secret.arn}/{version_id}".encode())
        self.store.execute("INSERT INTO secretsmanager_versions (arn, version_id, stages, created, value) "
                           "VALUES (?, ?, ?, ?, ?)", (secret.arn, version_id, json.dumps(stages), self.clock.now(),
                                                      sealed))
        self._prune(secret)

    def _take_stage(self, secret: Secret, stage: str, keep: str | None = None) -> None:
        for v in self.versions(secret):
            if stage in v.stages and v.version_id != keep:
                v.stages.remove(stage)
                self.store.execute("UPDATE secretsmanager_versions SET stages=? WHERE arn=? AND version_id=?",
                                   (json.dumps(v.stages), secret.arn, v.version_id))

    def move_stage(self, secret: Secret, stage: str, to_version: str) -> None:
        self._take_stage(secret, stage, keep=to_version)
        row = self.store.one("SELECT stages FROM secretsmanager_versions WHERE arn=? AND version_id=?",
                             (secret.arn, to_version))
        stages = json.loads(row[0])
        if stage not in stages:
            stages.append(stage)
        self.store.execute("UPDATE secretsmanager_versions SET stages=? WHERE arn=? AND version_id=?",
                           (json.dumps(stages), secret.arn, to_version))

    def remove_stage(self, secret: Secret, stage: str, from_version: str) -> None:
        row = self.store.one("SELECT stages FROM secretsmanager_versions WHERE arn=? AND version_id=?",
                             (secret.arn, from_version))
        stages = [s for s in json.loads(row[0]) if s != stage]
        self.store.execute("UPDATE secretsmanager_versions SET stages=? WHERE arn=? AND version_id=?",
                           (json.dumps(stages), secret.arn, from_version))

    def _prune(self, secret: Secret) -> None:
        """Versions without a label beyond the quota are deprecated and removed, oldest first."""
        versions = self.versions(secret)
        unlabelled = [v for v in versions if not v.stages]
        while len(versions) > MAX_VERSIONS and unlabelled:
            gone = unlabelled.pop()
            versions.remove(gone)
            self.store.execute("DELETE FROM secretsmanager_versions WHERE arn=? AND version_id=?",
                               (secret.arn, gone.version_id))
            self._opened.pop((secret.arn, gone.version_id, gone.value), None)

    def value(self, secret: Secret, version: Version) -> dict:
        """``{"SecretString": ...}`` or ``{"SecretBinary": bytes}`` (opened once per sealed value)."""
        key = (secret.arn, version.version_id, version.value)
        opened = self._opened.get(key)
        if opened is None:
            raw = json.loads(self.sealer.unseal(version.value, f"{secret.arn}/{version.version_id}".encode()))
            opened = {"SecretBinary": base64.b64decode(raw["SecretBinary"])} if "SecretBinary" in raw else raw
            _bounded(self._opened)[key] = opened
        return dict(opened)


_SECRET = "SELECT s.arn, s.account, s.region, s.name, s.data FROM secretsmanager_secrets s WHERE "
_SECRET_AND_STAGED = (
    "SELECT s.arn, s.account, s.region, s.name, s.data, v.version_id, v.stages, v.created, v.value "
    "FROM secretsmanager_secrets s LEFT JOIN secretsmanager_versions v ON v.arn = s.arn AND instr(v.stages, ?) WHERE ")
_BY_NAME = "s.account=? AND s.region=? AND s.name=?"
_NEWEST = " ORDER BY v.created DESC"


def _needle(stage: str) -> str:
    """What a version's stages JSON holds when it holds ``stage``."""
    return '"AWSCURRENT"' if stage == "AWSCURRENT" else json.dumps(stage)


def _bounded(cache: dict, size: int = 512) -> dict:
    """``cache``, with its oldest entry dropped once it holds ``size``."""
    if len(cache) >= size:
        cache.pop(next(iter(cache)))
    return cache


@functools.lru_cache(maxsize=64)
def _parsed_stages(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))


def _stages(text: str) -> list[str]:
    """A version's stages (a list of its own: callers change it)."""
    return list(_parsed_stages(text))


def stored_value(params: dict) -> dict | None:
    """The value a Create/Put/Update request carries, ready to seal (binary as base64)."""
    has_string, has_binary = params.get("SecretString") is not None, params.get("SecretBinary") is not None
    if has_string and has_binary:
        raise errors.invalid_parameter("You can't specify both a binary secret value and a string secret value in "
                                       "the same secret.")
    if has_string:
        if len(params["SecretString"].encode()) > 65536:
            raise errors.invalid_parameter("SecretString must be no larger than 65536 bytes.")
        return {"SecretString": params["SecretString"]}
    if has_binary:
        return {"SecretBinary": base64.b64encode(params["SecretBinary"]).decode()}
    return None
