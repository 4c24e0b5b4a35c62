"""CloudWatch Logs subscription filters and destinations: log events matching a filter
pattern (the same engine as FilterLogEvents) are handed to Lambda, Kinesis or Firehose
as AWS hands them: gzip-compressed JSON with ``messageType``, ``owner``, ``logGroup``,
``logStream``, ``subscriptionFilters`` and ``logEvents`` (base64 in Lambda's
``awslogs.data``).

Dispatch runs inside the transaction that stores the events (``append`` for every
function's output, PutLogEvents), so a delivery commits with its events: Lambda through
the durable ``lambda.invoke`` job, Kinesis and Firehose by buffering a record. Filters
are cached per log group in memory, so writing to a group without subscriptions costs
one dictionary lookup. A destination (PutDestination) stands for a target ARN that
subscriptions in other accounts name; its access policy is stored, not evaluated.
"""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from unkai.protocol import ServiceError
from unkai.services.logs.patterns import compile_pattern

if TYPE_CHECKING:
    from unkai.services.logs.service import Logs

log = logging.getLogger(__name__)

MIGRATION = """
    CREATE TABLE logs_subscriptions (
        account TEXT NOT NULL, region TEXT NOT NULL, log_group TEXT NOT NULL, name TEXT NOT NULL,
        pattern TEXT NOT NULL, destination TEXT NOT NULL, role TEXT, distribution TEXT NOT NULL,
        created INTEGER NOT NULL, PRIMARY KEY(account, region, log_group, name)
    );
    CREATE TABLE logs_destinations (
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, target TEXT NOT NULL, role TEXT NOT NULL,
        policy TEXT, created INTEGER NOT NULL, tags TEXT NOT NULL DEFAULT '{}', PRIMARY KEY(account, region, name)
    );
"""

MAX_FILTERS = 2
_IDS = itertools.count(1)


@dataclass
class Filter:
    name: str
    pattern: str
    destination: str
    role: str | None
    distribution: str
    created: int
    matches: Callable[[str], bool]


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


def _not_found(message: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", message)


def event_id(ts: int) -> str:
    """A 56-digit event id, as AWS's are."""
    return f"{ts:020d}{next(_IDS):036d}"


def payload(account: str, group: str, stream: str, names: list[str], events: list[dict],
            kind: str = "DATA_MESSAGE") -> bytes:
    """The gzip-compressed JSON document every destination receives."""
    doc = {"messageType": kind, "owner": account, "logGroup": group, "logStream": stream,
           "subscriptionFilters": names, "logEvents": events}
    return gzip.compress(json.dumps(doc, separators=(",", ":")).encode())


class Subscriptions:
    def __init__(self, logs: "Logs") -> None:
        self.logs = logs
        self.cloud = logs.cloud
        self.store = logs.store
        self._cache: dict[tuple[str, str, str], list[Filter]] | None = None

    # -- the cache ------------------------------------------------------------------------------

    def _filters(self, account: str, region: str, group: str) -> list[Filter]:
        if self._cache is None:
            cache: dict[tuple[str, str, str], list[Filter]] = {}
            for row in self.store.all("SELECT account, region, log_group, name, pattern, destination, role, "
                                      "distribution, created FROM logs_subscriptions ORDER BY name"):
                try:
                    matcher = compile_pattern(row[4])
                except ValueError:
                    continue
                cache.setdefault(row[:3], []).append(Filter(*row[3:], matcher))
            self._cache = cache
        return self._cache.get((account, region, group), [])

    def _changed(self) -> None:
        self._cache = None
        self.store.after_commit(self._drop_cache)

    def _drop_cache(self) -> None:
        self._cache = None

    # -- dispatch ---------------------------------------------------------------------------------

    def dispatch(self, account: str, region: str, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        """Hand the events each filter matches to its destination, in the caller's transaction."""
        filters = self._filters(account, region, group)
        if not filters:
            return
        for flt in filters:
            matched = [{"id": event_id(ts), "timestamp": ts, "message": message}
                       for ts, message in events if flt.matches(message)]
            if matched:
                body = payload(account, group, stream, [flt.name], matched)
                try:
                    self._send(flt.destination, body, stream if flt.distribution == "ByLogStream" else None)
                except ServiceError as exc:
                    log.warning("subscription %s of %s could not deliver to %s: %s", flt.name, group,
                                flt.destination, exc.message)
                except Exception:  # a broken destination never breaks the write that logs
                    log.exception("subscription %s of %s failed delivering to %s", flt.name, group,
                                  flt.destination)

    def _target(self, arn: str) -> str:
        """A destination ARN resolves to its target; other ARNs are targets themselves."""
        if ":destination:" in arn:
            parts = arn.split(":")
            row = self.store.one("SELECT target FROM logs_destinations WHERE account=? AND region=? AND name=?",
                                 (parts[4], parts[3], parts[-1]))
            if row is None:
                raise _not_found("The specified destination does not exist.")
            return row[0]
        return arn

    def _send(self, arn: str, body: bytes, partition_key: str | None) -> None:
        target = self._target(arn)
        service = target.split(":")[2] if target.count(":") >= 5 else ""
        if service == "lambda":
            event = json.dumps({"awslogs": {"data": base64.b64encode(body).decode()}})
            self.cloud.jobs.enqueue("lambda.invoke", {"function": target, "payload": event, "source": "logs"})
        elif service == "kinesis":
            self.cloud.service("kinesis").append(target, body, partition_key or uuid.uuid4().hex)
        elif service == "firehose":
            self.cloud.service("firehose").deliver(target, body)
        else:
            raise _invalid(f"Unsupported destination: {target}")

    def _check_destination(self, arn: str) -> None:
        """AWS checks a destination by sending it a test message (Kinesis and Firehose get a
        CONTROL_MESSAGE); a missing one is refused."""
        target = self._target(arn)
        service = target.split(":")[2] if target.count(":") >= 5 else ""
        ok = False
        if service == "lambda" and "lambda" in self.cloud.services:
            try:
                self.cloud.service("lambda").resolve(target.split(":")[4], target.split(":")[3], target)
                ok = True
            except ServiceError:
                ok = False
        elif service == "kinesis" and "kinesis" in self.cloud.services:
            ok = self.cloud.service("kinesis").stream_by_arn(target) is not None
        elif service == "firehose" and "firehose" in self.cloud.services:
            ok = self.cloud.service("firehose").streams.by_arn(target) is not None
        if not ok:
            raise _invalid("Could not deliver test message to specified destination. Check if the destination is "
                           "valid.")
        if service in ("kinesis", "firehose"):
            now = self.logs.clock.now_ms()
            name = "Kinesis stream" if service == "kinesis" else "Firehose stream"
            control = payload("CloudwatchLogs", "", "", [], [{"id": "", "timestamp": now, "message":
                                                              f"CWL CONTROL MESSAGE: Checking health of destination "
                                                              f"{name}."}], "CONTROL_MESSAGE")
            self._send(target, control, None)

    # -- subscription filters -------------------------------------------------------------------

    def put(self, account: str, region: str, group: str, params: dict) -> dict:
        pattern = params.get("filterPattern") or ""
        try:
            compile_pattern(pattern)
        except ValueError:
            raise _invalid("Invalid filter pattern") from None
        name = params["filterName"]
        existing = [f for f in self._filters(account, region, group) if f.name != name]
        if len(existing) >= MAX_FILTERS:
            raise ServiceError("LimitExceededException", "Resource limit exceeded.")
        self._check_destination(params["destinationArn"])
        self.store.execute(
            "INSERT INTO logs_subscriptions(account, region, log_group, name, pattern, destination, role, "
            "distribution, created) VALUES(?,?,?,?,?,?,?,?,?) ON CONFLICT(account, region, log_group, name) DO "
            "UPDATE SET pattern=excluded.pattern, destination=excluded.destination, role=excluded.role, "
            "distribution=excluded.distribution",
            (account, region, group, name, pattern, params["destinationArn"], params.get("roleArn"),
             params.get("distribution") or "ByLogStream", self.logs.clock.now_ms()))
        self._changed()
        return {}

    def describe(self, account: str, region: str, group: str, params: dict) -> dict:
        prefix = params.get("filterNamePrefix") or ""
        items = [{"filterName": f.name, "logGroupName": group, "filterPattern": f.pattern,
                  "destinationArn": f.destination, "distribution": f.distribution, "creationTime": f.created,
                  **({"roleArn": f.role} if f.role else {})}
                 for f in self._filters(account, region, group) if f.name.startswith(prefix)]
        return {"subscriptionFilters": items}

    def delete(self, account: str, region: str, group: str, name: str) -> dict:
        cur = self.store.execute("DELETE FROM logs_subscriptions WHERE account=? AND region=? AND log_group=? AND "
                                 "name=?", (account, region, group, name))
        if cur.rowcount == 0:
            raise _not_found("The specified subscription filter does not exist.")
        self._changed()
        return {}

    def forget_group(self, account: str, region: str, group: str) -> None:
        self.store.execute("DELETE FROM logs_subscriptions WHERE account=? AND region=? AND log_group=?",
                           (account, region, group))
        self._changed()

    # -- destinations ----------------------------------------------------------------------------

    def _destination(self, account: str, region: str, row: tuple) -> dict:
        name, target, role, policy, created = row
        out: dict[str, Any] = {"destinationName": name, "targetArn": target, "roleArn": role,
                               "arn": f"arn:aws:logs:{region}:{account}:destination:{name}", "creationTime": created}
        if policy:
            out["accessPolicy"] = policy
        return out

    def put_destination(self, account: str, region: str, params: dict) -> dict:
        name = params["destinationName"]
        self.store.execute(
            "INSERT INTO logs_destinations(account, region, name, target, role, created, tags) VALUES(?,?,?,?,?,?,?) "
            "ON CONFLICT(account, region, name) DO UPDATE SET target=excluded.target, role=excluded.role",
            (account, region, name, params["targetArn"], params["roleArn"], self.logs.clock.now_ms(),
             json.dumps(params.get("tags") or {})))
        return {"destination": self._destination(account, region, self._destination_row(account, region, name))}

    def _destination_row(self, account: str, region: str, name: str) -> tuple:
        row = self.store.one("SELECT name, target, role, policy, created FROM logs_destinations WHERE account=? AND "
                             "region=? AND name=?", (account, region, name))
        if row is None:
            raise _not_found("The specified destination does not exist.")
        return row

    def put_destination_policy(self, account: str, region: str, params: dict) -> dict:
        self._destination_row(account, region, params["destinationName"])
        try:
            json.loads(params["accessPolicy"])
        except ValueError:
            raise _invalid("Invalid access policy: not JSON.") from None
        self.store.execute("UPDATE logs_destinations SET policy=? WHERE account=? AND region=? AND name=?",
                           (params["accessPolicy"], account, region, params["destinationName"]))
        return {}

    def describe_destinations(self, account: str, region: str, params: dict) -> dict:
        prefix = params.get("DestinationNamePrefix") or ""
        rows = self.store.all("SELECT name, target, role, policy, created FROM logs_destinations WHERE account=? AND "
                              "region=? ORDER BY name", (account, region))
        return {"destinations": [self._destination(account, region, r) for r in rows if r[0].startswith(prefix)]}

    def delete_destination(self, account: str, region: str, name: str) -> dict:
        self._destination_row(account, region, name)
        self.store.execute("DELETE FROM logs_destinations WHERE account=? AND region=? AND name=?",
                           (account, region, name))
        return {}
