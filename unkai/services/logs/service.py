"""CloudWatch Logs: log groups, streams and events, and the in-process ``append`` every
other part of unkai writes its logs through (Lambda output, API Gateway access logs).
Subscription filters and destinations live in ``subscriptions.py``; every write (``append``
and PutLogEvents) passes its events to them in its own transaction."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import Provisioned, RequestContext, ResourceContext, Service
from unkai.services.logs import deliveries, exports, policies, subscriptions
from unkai.services.logs.deliveries import DeliveryOps
from unkai.services.logs.exports import ExportTasks
from unkai.services.logs.livetail import LiveTail
from unkai.services.logs.policies import PolicyOps
from unkai.services.logs.patterns import compile_pattern
from unkai.services.logs.queries import InsightsQueries

MIGRATIONS = [
    """
    CREATE TABLE logs_groups (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
        created INTEGER NOT NULL, retention INTEGER, kms_key TEXT, class TEXT NOT NULL DEFAULT 'STANDARD',
        tags TEXT NOT NULL DEFAULT '{}',
        UNIQUE(account, region, name)
    );
    CREATE TABLE logs_streams (
        id INTEGER PRIMARY KEY,
        group_id INTEGER NOT NULL REFERENCES logs_groups(id) ON DELETE CASCADE,
        name TEXT NOT NULL, created INTEGER NOT NULL,
        first_event INTEGER, last_event INTEGER, last_ingest INTEGER,
        stored_bytes INTEGER NOT NULL DEFAULT 0,
        UNIQUE(group_id, name)
    );
    CREATE TABLE logs_events (
        id INTEGER PRIMARY KEY,
        stream_id INTEGER NOT NULL REFERENCES logs_streams(id) ON DELETE CASCADE,
        ts INTEGER NOT NULL, ingest INTEGER NOT NULL, message TEXT NOT NULL
    );
    CREATE INDEX logs_events_stream ON logs_events(stream_id, ts, id);
    """
]

MIGRATIONS.append(subscriptions.MIGRATION)
MIGRATIONS.append(policies.MIGRATION)
MIGRATIONS.append(deliveries.MIGRATION)
MIGRATIONS.append(exports.MIGRATION)
MIGRATIONS.append("ALTER TABLE logs_groups ADD COLUMN deletion_protection INTEGER NOT NULL DEFAULT 0;")

GROUP_NAME = re.compile(r"^[\.\-_/#A-Za-z0-9]{1,512}$")
STREAM_NAME = re.compile(r"^[^:*]{1,512}$")
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                  3288, 3653)
DAY_MS = 86_400_000
MAX_EVENT_BYTES = 256 * 1024 - 26


def _not_found(what: str = "log group") -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"The specified {what} does not exist.")


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


def _token(prefix: str, value: int) -> str:
    return f"{prefix}/{value:056d}"


def _parse_token(token: str | None, prefix: str) -> int | None:
    if not token:
        return None
    m = re.fullmatch(prefix + r"/(\d+)", token)
    if m is None:
        raise _invalid("The specified nextToken is invalid.")
    return int(m.group(1))


class Logs(InsightsQueries, PolicyOps, DeliveryOps, LiveTail, ExportTasks, Service):
    name = "logs"
    serves_routes = True  # /_unkai/logs
    migrations = MIGRATIONS
    resource_types = ("AWS::Logs::LogGroup", "AWS::Logs::LogStream", "AWS::Logs::SubscriptionFilter",
                      "AWS::Logs::Destination", "AWS::Logs::MetricFilter")

    def check_unimplemented(self, ctx: RequestContext, operation: str, params: dict) -> None:
        """An operation unkai does not serve still answers ResourceNotFoundException for a missing log group first, as AWS does."""
        if isinstance(params.get("logGroupName"), str) or isinstance(params.get("logGroupIdentifier"), str):
            self._group(ctx, params)

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self._streams: dict[tuple[str, str, str, str], int] = {}
        # Called with (account, region, group, stream, [(ms, message)]) inside the transaction
        # that stores events: metric filters and CloudWatch's Embedded Metric Format read them.
        self.listeners: list[Any] = []
        self._insights_setup()  # Logs Insights and metric filters (queries.py)
        self.subscriptions = subscriptions.Subscriptions(self)

    async def pausing(self) -> None:
        # running Insights queries would write their results over the restored store
        for stop in list(self._query_stops.values()):
            stop.set()
        for task in list(self._query_tasks.values()):
            task.cancel()

    async def resetting(self) -> None:
        self._streams.clear()
        self._forget_filters()

    async def start(self) -> None:
        self.cloud.jobs.register("logs.export", self._run_export_task)
        gateway = getattr(self.cloud, "gateway", None)
        if gateway is not None:
            gateway.internal.route("GET", r"/_unkai/logs", self._tail)

    async def _tail(self, request: Any, m: Any) -> Any:
        """``GET /_unkai/logs?group=G[&region=R][&after=ID][&wait=S]``: a group's events after
        an id, in arrival order, waiting up to S seconds for the first (``unkai logs -f``)."""
        from unkai.http import Response

        q = request.query_dict()
        account, region = self.config.account_id, q.get("region") or self.config.region
        group = q.get("group", "")
        try:
            after, wait = int(q.get("after") or 0), min(float(q.get("wait") or 0), 60.0)
        except ValueError:
            return Response.json({"message": "after and wait must be numbers"}, 400)
        deadline = self.clock.now() + wait
        while True:
            row = self.store.one("SELECT id FROM logs_groups WHERE account=? AND region=? AND name=?",
                                 (account, region, group))
            if row is None and group.startswith("/aws/lambda/") and "cloudformation" in self.cloud.services:
                function = self.cloud.service("cloudformation").stacks.physical_id(
                    account, region, group.removeprefix("/aws/lambda/"), "AWS::Lambda::Function")
                if function and function != group.removeprefix("/aws/lambda/"):  # a logical id, as `sam logs -n`
                    group = f"/aws/lambda/{function}"
                    continue
            if row is None:
                return Response.json({"message": f"no log group {group} in {region}"}, 404)
            rows = self.store.all(
                "SELECT e.id, e.ts, s.name, e.message FROM logs_events e JOIN logs_streams s ON s.id=e.stream_id "
                "WHERE s.group_id=? AND e.id>? ORDER BY e.id LIMIT 1000", (row[0], after))
            if rows or self.clock.now() >= deadline:
                break
            await self.cloud.signals.wait(("logs", account, region, group), until=deadline)
        events = [{"id": i, "timestamp": ts, "stream": stream, "message": msg} for i, ts, stream, msg in rows]
        if not rows and not after:
            last = self.store.one("SELECT max(e.id) FROM logs_events e JOIN logs_streams s ON s.id=e.stream_id "
                                  "WHERE s.group_id=?", (row[0],))
            after = last[0] or 0
        return Response.json({"events": events, "next": rows[-1][0] if rows else after})

    # -- the in-process API --------------------------------------------------------------

    def append(self, account: str, region: str, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        """Add events ``[(timestamp ms, message)]`` to a stream, creating the group and the
        stream when missing (as Lambda and API Gateway do). Joins the caller's
        transaction when one is open."""
        if not events:
            return
        now = self.clock.now_ms()
        key = (account, region, group, stream)
        with self.store.transaction():
            sid = self._stream_id(key, now)
            self.store.db.executemany("INSERT INTO logs_events(stream_id, ts, ingest, message) VALUES(?,?,?,?)",
                                      [(sid, ts, now, message) for ts, message in events])
            self._touch(sid, min(e[0] for e in events), max(e[0] for e in events), now,
                        sum(len(m.encode()) for _, m in events))
            self.subscriptions.dispatch(account, region, group, stream, events)
            self._tell(account, region, group, stream, events)
        self.store.after_commit(lambda: self.cloud.signals.notify(("logs", account, region, group)))

    def _tell(self, account: str, region: str, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        for listener in self.listeners:
            listener(account, region, group, stream, events)

    def _stream_id(self, key: tuple[str, str, str, str], now: int) -> int:
        sid = self._streams.get(key)
        if sid is not None:
            return sid
        account, region, group, stream = key
        row = self.store.one("SELECT id FROM logs_groups WHERE account=? AND region=? AND name=?",
                             (account, region, group))
        gid = row[0] if row else self.store.execute(
            "INSERT INTO logs_groups(account, region, name, created) VALUES(?,?,?,?)",
            (account, region, group, now)).lastrowid
        row = self.store.one("SELECT id FROM logs_streams WHERE group_id=? AND name=?", (gid, stream))
        sid = row[0] if row else self.store.execute(
            "INSERT INTO logs_streams(group_id, name, created) VALUES(?,?,?)", (gid, stream, now)).lastrowid
        self.store.after_commit(lambda: self._streams.__setitem__(key, sid))  # never cache a rolled-back id
        return sid

    def _touch(self, sid: int, lo: int, hi: int, now: int, size: int) -> None:
        self.store.execute(
            "UPDATE logs_streams SET first_event=min(coalesce(first_event, ?), ?), last_event=max(coalesce("
            "last_event, ?), ?), last_ingest=?, stored_bytes=stored_bytes+? WHERE id=?",
            (lo, lo, hi, hi, now, size, sid))

    def _forget(self, gid: int | None = None) -> None:
        self._streams.clear()

    # -- groups --------------------------------------------------------------------------

    def _group(self, ctx: RequestContext, params: dict, required: bool = True) -> tuple:
        name = params.get("logGroupName")
        ident = params.get("logGroupIdentifier")
        if ident and not name:
            name = ident.split(":log-group:", 1)[1].removesuffix(":*") if ":log-group:" in ident else ident
        if not name:
            raise _invalid("Either logGroupName or logGroupIdentifier should be provided.")
        row = self.store.one(
            "SELECT id, name, created, retention, kms_key, class, tags FROM logs_groups "
            "WHERE account=? AND region=? AND name=?", (ctx.account, ctx.region, name))
        if row is None and required:
            raise _not_found()
        return row

    def _arn(self, ctx: RequestContext, name: str) -> str:
        return f"arn:aws:logs:{ctx.region}:{ctx.account}:log-group:{name}"

    def create_log_group(self, ctx: RequestContext, params: dict) -> dict:
        name = params["logGroupName"]
        if not GROUP_NAME.match(name):
            raise _invalid(f"1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy "
                           "constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+")
        if self._group(ctx, params, required=False) is not None:
            raise ServiceError("ResourceAlreadyExistsException", "The specified log group already exists")
        if params.get("kmsKeyId"):
            self._check_kms_key(ctx, name, params["kmsKeyId"])
        self.store.execute(
            "INSERT INTO logs_groups(account, region, name, created, kms_key, class, tags) VALUES(?,?,?,?,?,?,?)",
            (ctx.account, ctx.region, name, self.clock.now_ms(), params.get("kmsKeyId"),
             params.get("logGroupClass") or "STANDARD", json.dumps(params.get("tags") or {})))
        if params.get("deletionProtectionEnabled"):
            self.store.execute("UPDATE logs_groups SET deletion_protection=1 WHERE account=? AND region=? AND name=?",
                               (ctx.account, ctx.region, name))
        return {}

    def delete_log_group(self, ctx: RequestContext, params: dict) -> dict:
        row = self._group(ctx, params)
        if self.store.one("SELECT deletion_protection FROM logs_groups WHERE id=?", (row[0],))[0]:
            raise ServiceError("ValidationException", "Cannot delete log group with deletion protection enabled. "
                               "Disable deletion protection first.")  # AWS's words (its user guide)
        self.store.execute("DELETE FROM logs_events WHERE stream_id IN (SELECT id FROM logs_streams WHERE "
                           "group_id=?)", (row[0],))
        self.store.execute("DELETE FROM logs_groups WHERE id=?", (row[0],))
        self.subscriptions.forget_group(ctx.account, ctx.region, row[1])
        self._forget()
        return {}

    def describe_log_groups(self, ctx: RequestContext, params: dict) -> dict:
        limit = params.get("limit") or 50
        if not 1 <= limit <= 50:
            raise _invalid("1 validation error detected: Value at 'limit' failed to satisfy constraint: Member "
                           "must have value less than or equal to 50")
        prefix = params.get("logGroupNamePrefix") or ""
        pattern = params.get("logGroupNamePattern")
        if prefix and pattern:
            raise _invalid("LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
        after = params.get("nextToken") or ""
        rows = self.store.all(
            "SELECT g.id, g.name, g.created, g.retention, g.kms_key, g.class, g.deletion_protection, "
            "(SELECT coalesce(sum(stored_bytes), 0) "
            "FROM logs_streams WHERE group_id=g.id) FROM logs_groups g WHERE account=? AND region=? AND name > ? "
            "ORDER BY name", (ctx.account, ctx.region, after))
        wanted = set(params.get("logGroupIdentifiers") or [])
        out = []
        for gid, name, created, retention, kms, cls, protected, stored in rows:
            if prefix and not name.startswith(prefix):
                continue
            if pattern and pattern.lower() not in name.lower():
                continue
            if wanted and name not in wanted and self._arn(ctx, name) not in wanted:
                continue
            if params.get("logGroupClass") and cls != params["logGroupClass"]:
                continue
            group = {"logGroupName": name, "creationTime": created, "metricFilterCount": 0,
                     "arn": self._arn(ctx, name) + ":*", "storedBytes": stored, "logGroupClass": cls,
                     "logGroupArn": self._arn(ctx, name), "deletionProtectionEnabled": bool(protected)}
            if retention:
                group["retentionInDays"] = retention
            if kms:
                group["kmsKeyId"] = kms
            out.append(group)
            if len(out) > limit:
                break
        result: dict[str, Any] = {"logGroups": out[:limit]}
        if len(out) > limit:
            result["nextToken"] = out[limit - 1]["logGroupName"]
        return result

    def put_retention_policy(self, ctx: RequestContext, params: dict) -> dict:
        row = self._group(ctx, params)
        days = params["retentionInDays"]
        if days not in RETENTION_DAYS:
            raise _invalid(f"1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy "
                           f"constraint: Member must satisfy enum value set: [{', '.join(map(str, RETENTION_DAYS))}]")
        self.store.execute("UPDATE logs_groups SET retention=? WHERE id=?", (days, row[0]))
        return {}

    def delete_retention_policy(self, ctx: RequestContext, params: dict) -> dict:
        row = self._group(ctx, params)
        self.store.execute("UPDATE logs_groups SET retention=NULL WHERE id=?", (row[0],))
        return {}

    def put_log_group_deletion_protection(self, ctx: RequestContext, params: dict) -> dict:
        """Protected groups refuse DeleteLogGroup until protection is turned off (AWS)."""
        row = self._group(ctx, {"logGroupIdentifier": params["logGroupIdentifier"]})
        self.store.execute("UPDATE logs_groups SET deletion_protection=? WHERE id=?",
                           (int(bool(params["deletionProtectionEnabled"])), row[0]))
        return {}

    def associate_kms_key(self, ctx: RequestContext, params: dict) -> dict:
        """Recorded and answered by DescribeLogGroups (events are not encrypted with it here)."""
        if params.get("resourceIdentifier") and not params.get("logGroupName"):
            params = dict(params, logGroupIdentifier=params["resourceIdentifier"])
        row = self._group(ctx, params)
        key = params["kmsKeyId"]
        self._check_kms_key(ctx, row[1], key)
        self.store.execute("UPDATE logs_groups SET kms_key=? WHERE id=?", (key, row[0]))
        return {}

    def _check_kms_key(self, ctx: RequestContext, group: str, key: str) -> None:
        """A log group's key must be a key ARN (InvalidParameterException) of a key that exists
        and is enabled; otherwise AWS answers AccessDeniedException in these words (AWS-run
        outputs quoted in terraform-provider-aws #29282). The key policy is not evaluated."""
        if not key.startswith("arn:aws") or ":kms:" not in key:
            raise _invalid(f"Specified KMS key ARN is not valid: {key}")
        kms = self.cloud.services.get("kms")
        if kms is None:
            return
        found = kms.find_key(ctx.account, ctx.region, key)
        if found is None or found.state != "Enabled":
            raise ServiceError("AccessDeniedException", "The specified KMS key does not exist or is not allowed to be "
                               f"used with Arn '{self._arn(ctx, group)}'")

    def disassociate_kms_key(self, ctx: RequestContext, params: dict) -> dict:
        if params.get("resourceIdentifier") and not params.get("logGroupName"):
            params = dict(params, logGroupIdentifier=params["resourceIdentifier"])
        row = self._group(ctx, params)
        self.store.execute("UPDATE logs_groups SET kms_key=NULL WHERE id=?", (row[0],))
        return {}

    def tag_log_group(self, ctx: RequestContext, params: dict) -> dict:
        row = self._group(ctx, params)
        tags = dict(json.loads(row[6]), **(params.get("tags") or {}))
        self.store.execute("UPDATE logs_groups SET tags=? WHERE id=?", (json.dumps(tags), row[0]))
        return {}

    def untag_log_group(self, ctx: RequestContext, params: dict) -> dict:
        row = self._group(ctx, params)
        tags = {k: v for k, v in json.loads(row[6]).items() if k not in (params.get("tags") or [])}
        self.store.execute("UPDATE logs_groups SET tags=? WHERE id=?", (json.dumps(tags), row[0]))
        return {}

    def list_tags_log_group(self, ctx: RequestContext, params: dict) -> dict:
        return {"tags": json.loads(self._group(ctx, params)[6])}

    def _by_arn(self, ctx: RequestContext, arn: str) -> tuple:
        if ":log-group:" not in arn:
            raise _not_found()
        return self._group(ctx, {"logGroupName": arn.split(":log-group:", 1)[1].removesuffix(":*")})

    def tag_resource(self, ctx: RequestContext, params: dict) -> dict:
        return self.tag_log_group(ctx, {"logGroupName": self._by_arn(ctx, params["resourceArn"])[1],
                                        "tags": params.get("tags")})

    def untag_resource(self, ctx: RequestContext, params: dict) -> dict:
        return self.untag_log_group(ctx, {"logGroupName": self._by_arn(ctx, params["resourceArn"])[1],
                                          "tags": params.get("tagKeys")})

    def list_tags_for_resource(self, ctx: RequestContext, params: dict) -> dict:
        return {"tags": json.loads(self._by_arn(ctx, params["resourceArn"])[6])}

    # -- streams -------------------------------------------------------------------------

    def _stream(self, gid: int, name: str) -> tuple:
        row = self.store.one("SELECT id, name FROM logs_streams WHERE group_id=? AND name=?", (gid, name))
        if row is None:
            raise _not_found("log stream")
        return row

    def create_log_stream(self, ctx: RequestContext, params: dict) -> dict:
        row = self._group(ctx, params)
        name = params["logStreamName"]
        if not STREAM_NAME.match(name):
            raise _invalid(f"1 validation error detected: Value '{name}' at 'logStreamName' failed to satisfy "
                           "constraint: Member must satisfy regular expression pattern: [^:*]*")
        if self.store.one("SELECT 1 FROM logs_streams WHERE group_id=? AND name=?", (row[0], name)):
            raise ServiceError("ResourceAlreadyExistsException", "The specified log stream already exists")
        self.store.execute("INSERT INTO logs_streams(group_id, name, created) VALUES(?,?,?)",
                           (row[0], name, self.clock.now_ms()))
        return {}

    def delete_log_stream(self, ctx: RequestContext, params: dict) -> dict:
        row = self._group(ctx, params)
        sid = self._stream(row[0], params["logStreamName"])[0]
        self.store.execute("DELETE FROM logs_events WHERE stream_id=?", (sid,))
        self.store.execute("DELETE FROM logs_streams WHERE id=?", (sid,))
        self._forget()
        return {}

    def describe_log_streams(self, ctx: RequestContext, params: dict) -> dict:
        row = self._group(ctx, params)
        limit = params.get("limit") or 50
        if not 1 <= limit <= 50:
            raise _invalid("1 validation error detected: Value at 'limit' failed to satisfy constraint: Member "
                           "must have value less than or equal to 50")
        order = params.get("orderBy") or "LogStreamName"
        prefix = params.get("logStreamNamePrefix") or ""
        if prefix and order == "LastEventTime":
            raise _invalid("Cannot order by LastEventTime with a logStreamNamePrefix.")
        desc = bool(params.get("descending"))
        column = "name" if order == "LogStreamName" else "coalesce(last_event, 0), name"
        rows = self.store.all(
            f"SELECT name, created, first_event, last_event, last_ingest, stored_bytes FROM logs_streams "
            f"WHERE group_id=? AND substr(name, 1, ?)=? ORDER BY {column} {'DESC' if desc else ''}",
            (row[0], len(prefix), prefix))
        start = int(params["nextToken"]) if str(params.get("nextToken") or "").isdigit() else 0
        page = rows[start:start + limit]
        out = []
        for name, created, first, last, ingest, stored in page:
            stream = {"logStreamName": name, "creationTime": created,
                      "arn": f"{self._arn(ctx, row[1])}:log-stream:{name}", "storedBytes": stored}
            if first is not None:
                stream.update(firstEventTimestamp=first, lastEventTimestamp=last, lastIngestionTime=ingest,
                              uploadSequenceToken="1")
            out.append(stream)
        result: dict[str, Any] = {"logStreams": out}
        if start + limit < len(rows):
            result["nextToken"] = str(start + limit)
        return result

    # -- events --------------------------------------------------------------------------

    def put_log_events(self, ctx: RequestContext, params: dict) -> dict:
        row = self._group(ctx, params)
        sid = self._stream(row[0], params["logStreamName"])[0]
        events = params.get("logEvents") or []
        if not 1 <= len(events) <= 10000:
            raise _invalid("1 validation error detected: Value at 'logEvents' failed to satisfy constraint: "
                           "Member must have length between 1 and 10000")
        stamps = [e["timestamp"] for e in events]
        if stamps != sorted(stamps):
            raise _invalid("Log events in a single PutLogEvents request must be in chronological order.")
        if stamps[-1] - stamps[0] > DAY_MS:
            raise _invalid("The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")
        now = self.clock.now_ms()
        retention = row[3]
        too_old_before = now - 14 * DAY_MS
        if retention:
            too_old_before = max(too_old_before, now - retention * DAY_MS)
        too_new, too_old, expired = None, None, None
        keep = []
        for i, event in enumerate(events):
            ts = event["timestamp"]
            if ts > now + 2 * 3600 * 1000:
                too_new = i if too_new is None else too_new
            elif ts < too_old_before:
                too_old = i
            else:
                message = event["message"]
                if len(message.encode()) > MAX_EVENT_BYTES:
                    message = message.encode()[:MAX_EVENT_BYTES].decode("utf-8", "ignore")
                keep.append((sid, ts, now, message))
        if keep:
            self.store.db.executemany("INSERT INTO logs_events(stream_id, ts, ingest, message) VALUES(?,?,?,?)", keep)
            self._touch(sid, min(k[1] for k in keep), max(k[1] for k in keep), now,
                        sum(len(k[3].encode()) for k in keep))
            key = (ctx.account, ctx.region, row[1])
            self.store.after_commit(lambda: self.cloud.signals.notify(("logs",) + key))
            self.subscriptions.dispatch(ctx.account, ctx.region, row[1], params["logStreamName"],
                                        [(k[1], k[3]) for k in keep])
            self._tell(ctx.account, ctx.region, row[1], params["logStreamName"], [(k[1], k[3]) for k in keep])
        result: dict[str, Any] = {"nextSequenceToken": str(now)}
        rejected = {}
        if too_new is not None:
            rejected["tooNewLogEventStartIndex"] = too_new
        if too_old is not None:
            rejected["tooOldLogEventEndIndex"] = too_old
        if expired is not None:
            rejected["expiredLogEventEndIndex"] = expired
        if rejected:
            result["rejectedLogEventsInfo"] = rejected
        return result

    def _cutoff(self, row: tuple) -> int:
        return self.clock.now_ms() - row[3] * DAY_MS if row[3] else 0

    def get_log_events(self, ctx: RequestContext, params: dict) -> dict:
        row = self._group(ctx, params)
        sid = self._stream(row[0], params["logStreamName"])[0]
        limit = params.get("limit") or 10000
        if not 1 <= limit <= 10000:
            raise _invalid("1 validation error detected: Value at 'limit' failed to satisfy constraint: Member must "
                           "have value less than or equal to 10000")
        lo = max(params.get("startTime") or 0, self._cutoff(row))
        hi = params.get("endTime")
        token = params.get("nextToken")
        where = "stream_id=? AND ts>=?"
        args: list[Any] = [sid, lo]
        if hi is not None:
            where += " AND ts<?"
            args.append(hi)
        forward = params.get("startFromHead", False)
        if token:
            if token.startswith("f/"):
                forward = True
                where += " AND id>?"
                args.append(_parse_token(token, "f"))
            else:
                forward = False
                where += " AND id<?"
                args.append(_parse_token(token, "b"))
        order = "ASC" if forward else "DESC"
        rows = self.store.all(f"SELECT id, ts, ingest, message FROM logs_events WHERE {where} "
                              f"ORDER BY ts {order}, id {order} LIMIT ?", (*args, limit))
        if not forward:
            rows.reverse()
        events = [{"timestamp": ts, "message": msg, "ingestionTime": ing} for _, ts, ing, msg in rows]
        if rows:
            fwd, back = _token("f", rows[-1][0]), _token("b", rows[0][0])
        else:
            fwd = token if token and token.startswith("f/") else _token("f", _parse_token(token, "b") - 1 if token
                                                                         else self._last_id(sid))
            back = token if token and token.startswith("b/") else _token("b", _parse_token(token, "f") + 1 if token
                                                                          else 0)
        return {"events": events, "nextForwardToken": fwd, "nextBackwardToken": back}

    def _last_id(self, sid: int) -> int:
        row = self.store.one("SELECT max(id) FROM logs_events WHERE stream_id=?", (sid,))
        return row[0] or 0

    def filter_log_events(self, ctx: RequestContext, params: dict) -> dict:
        row = self._group(ctx, params)
        if (params.get("limit") or 0) > 10000:
            raise _invalid(f"1 validation error detected: Value '{params['limit']}' at 'limit' failed to satisfy "
                           "constraint: Member must have value less than or equal to 10000")
        if params.get("logStreamNames") and params.get("logStreamNamePrefix"):
            raise _invalid("logStreamNames and logStreamNamePrefix are mutually exclusive")
        try:
            match = compile_pattern(params.get("filterPattern"))
        except ValueError as exc:
            raise _invalid(str(exc)) from None
        limit = params.get("limit") or 10000
        where = "s.group_id=? AND e.ts>=?"
        args: list[Any] = [row[0], max(params.get("startTime") or 0, self._cutoff(row))]
        if params.get("endTime") is not None:
            where += " AND e.ts<=?"
            args.append(params["endTime"])
        names = params.get("logStreamNames")
        if names:
            where += f" AND s.name IN ({','.join('?' * len(names))})"
            args += names
        prefix = params.get("logStreamNamePrefix")
        if prefix:
            where += " AND substr(s.name, 1, ?)=?"
            args += [len(prefix), prefix]
        after = params.get("nextToken")
        if after:
            try:
                ts, eid = json.loads(base64.b64decode(after))
            except (ValueError, TypeError):
                raise _invalid("The specified nextToken is invalid.") from None
            where += " AND (e.ts > ? OR (e.ts = ? AND e.id > ?))"
            args += [ts, ts, eid]
        events: list[dict] = []
        last = None
        scanned = 0
        for eid, ts, ingest, message, stream in self.store.db.execute(
                f"SELECT e.id, e.ts, e.ingest, e.message, s.name FROM logs_events e JOIN logs_streams s ON "
                f"s.id=e.stream_id WHERE {where} ORDER BY e.ts, e.id", args):
            scanned += 1
            last = (ts, eid)
            if match(message):
                events.append({"logStreamName": stream, "timestamp": ts, "message": message, "ingestionTime": ingest,
                               "eventId": f"{ts:020d}{eid:016d}"})
                if len(events) >= limit:
                    break
        result: dict[str, Any] = {"events": events, "searchedLogStreams": []}
        if len(events) >= limit and last is not None:
            result["nextToken"] = base64.b64encode(json.dumps(last).encode()).decode()
        return result

    # -- subscription filters and destinations --------------------------------------------

    def put_subscription_filter(self, ctx: RequestContext, params: dict) -> dict:
        row = self._group(ctx, params)
        return self.subscriptions.put(ctx.account, ctx.region, row[1], params)

    def describe_subscription_filters(self, ctx: RequestContext, params: dict) -> dict:
        row = self._group(ctx, params)
        return self.subscriptions.describe(ctx.account, ctx.region, row[1], params)

    def delete_subscription_filter(self, ctx: RequestContext, params: dict) -> dict:
        row = self._group(ctx, params)
        return self.subscriptions.delete(ctx.account, ctx.region, row[1], params["filterName"])

    def put_destination(self, ctx: RequestContext, params: dict) -> dict:
        return self.subscriptions.put_destination(ctx.account, ctx.region, params)

    def put_destination_policy(self, ctx: RequestContext, params: dict) -> dict:
        return self.subscriptions.put_destination_policy(ctx.account, ctx.region, params)

    def describe_destinations(self, ctx: RequestContext, params: dict) -> dict:
        return self.subscriptions.describe_destinations(ctx.account, ctx.region, params)

    def delete_destination(self, ctx: RequestContext, params: dict) -> dict:
        return self.subscriptions.delete_destination(ctx.account, ctx.region, params["destinationName"])

    # -- template resources --------------------------------------------------------------

    def create_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str, props: dict) -> Provisioned:
        rctx = ctx.request_context("logs")
        if resource_type == "AWS::Logs::MetricFilter":
            return self.metric_filter_resource(ctx, logical_id, props)
        if resource_type == "AWS::Logs::SubscriptionFilter":
            # Ref is the filter's name (CloudFormation's physical id); FilterName is generated when absent
            name = props.get("FilterName") or f"{ctx.stack_name}-{logical_id}"
            params = {"logGroupName": props["LogGroupName"], "filterName": name,
                      "filterPattern": props.get("FilterPattern") or "", "destinationArn": props["DestinationArn"]}
            for prop, key in (("RoleArn", "roleArn"), ("Distribution", "distribution")):
                if props.get(prop):
                    params[key] = props[prop]
            self.put_subscription_filter(rctx, params)
            return Provisioned(f"{props['LogGroupName']}|{name}", name)
        if resource_type == "AWS::Logs::Destination":
            dest = self.put_destination(rctx, {"destinationName": props["DestinationName"],
                                               "targetArn": props["TargetArn"], "roleArn": props["RoleArn"]})
            if props.get("DestinationPolicy"):
                self.put_destination_policy(rctx, {"destinationName": props["DestinationName"],
                                                   "accessPolicy": props["DestinationPolicy"]})
            return Provisioned(props["DestinationName"], props["DestinationName"],
                               {"Arn": dest["destination"]["arn"]})
        if resource_type == "AWS::Logs::LogStream":
            group = props["LogGroupName"]
            name = props.get("LogStreamName") or f"{ctx.stack_name}-{logical_id}"
            self.create_log_stream(rctx, {"logGroupName": group, "logStreamName": name})
            return Provisioned(name)
        from unkai.template.names import physical_name

        name = props.get("LogGroupName") or physical_name(ctx.stack_name, logical_id, 512)
        if self._group(rctx, {"logGroupName": name}, required=False) is None:
            self.create_log_group(rctx, {"logGroupName": name, "kmsKeyId": props.get("KmsKeyId"),
                                         "logGroupClass": props.get("LogGroupClass"),
                                         "tags": {t["Key"]: t["Value"] for t in props.get("Tags") or []}})
        if props.get("RetentionInDays"):
            self.put_retention_policy(rctx, {"logGroupName": name, "retentionInDays": int(props["RetentionInDays"])})
        return Provisioned(name, name, {"Arn": self._arn(rctx, name) + ":*"})

    def update_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
                        old_props: dict, props: dict) -> Provisioned:
        if resource_type == "AWS::Logs::LogGroup" and old_props.get("LogGroupName") == props.get("LogGroupName"):
            rctx = ctx.request_context("logs")
            if props.get("RetentionInDays"):
                self.put_retention_policy(rctx, {"logGroupName": physical_id,
                                                 "retentionInDays": int(props["RetentionInDays"])})
            else:
                self.delete_retention_policy(rctx, {"logGroupName": physical_id})
            return Provisioned(physical_id, physical_id, {"Arn": self._arn(rctx, physical_id) + ":*"})
        return super().update_resource(ctx, resource_type, logical_id, physical_id, old_props, props)

    def delete_resource(self, ctx: ResourceContext, resource_type: str, physical_id: str, props: dict) -> None:
        rctx = ctx.request_context("logs")
        try:
            if resource_type == "AWS::Logs::MetricFilter":
                group, _, name = physical_id.partition("|")
                self.delete_metric_filter(rctx, {"logGroupName": group, "filterName": name})
            elif resource_type == "AWS::Logs::LogStream":
                self.delete_log_stream(rctx, {"logGroupName": props["LogGroupName"], "logStreamName": physical_id})
            elif resource_type == "AWS::Logs::SubscriptionFilter":
                group, _, name = physical_id.partition("|")
                self.delete_subscription_filter(rctx, {"logGroupName": group, "filterName": name})
            elif resource_type == "AWS::Logs::Destination":
                self.delete_destination(rctx, {"destinationName": physical_id})
            else:
                self.delete_log_group(rctx, {"logGroupName": physical_id})
        except ServiceError:
            pass
