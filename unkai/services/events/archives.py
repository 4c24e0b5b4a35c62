"""Archives and replays.

An archive is what AWS makes it: a managed rule ``Events-Archive-NAME`` on the source
bus (ManagedBy ``prod.vhs.events.aws.internal``, its pattern the archive's plus
``"replay-name": [{"exists": false}]``), so archiving is ordinary rule matching and a
replayed event is never archived twice. Matching events are rows in ``events_archived``
with their ingestion time on unkai's clock; events older than ``RetentionDays`` are
purged on that clock.

A replay is a durable job (``events.replay``): it walks the archive's rows between
EventStartTime and EventEndTime in batches, each batch one transaction that delivers
the events (with ``replay-name`` added, as AWS adds it) to the destination bus's rules
(only those in ``FilterArns`` when given) and moves the replay's cursor, so a replay
interrupted by a restart resumes where it stopped, and CancelReplay stops it between
batches."""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING, Any

from unkai import targets
from unkai.services import RequestContext
from unkai.services.events import errors
from unkai.services.events.model import ARCHIVE_MANAGER, Rule, bus_name, page

if TYPE_CHECKING:
    from unkai.store import Store

ARCHIVE_NAME = re.compile(r"^[\.\-_A-Za-z0-9]{1,48}$")
ARCHIVE_STATES = ("ENABLED", "DISABLED", "CREATING", "UPDATING", "CREATE_FAILED", "UPDATE_FAILED")
REPLAY_STATES = ("CANCELLED", "CANCELLING", "COMPLETED", "FAILED", "RUNNING", "STARTING")
REPLAY_BATCH = 500
DAY = 86400.0


def archive_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:events:{region}:{account}:archive/{name}"


def replay_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:events:{region}:{account}:replay/{name}"


class ArchiveOps:
    store: "Store"
    clock: Any
    cloud: Any

    # -- the archive path (called by the event path for an archive's rule) ----------

    def archive_event(self, rule: Rule, event: dict[str, Any]) -> None:
        name = rule.name[len("Events-Archive-"):]
        row = self.store.one("SELECT id FROM events_archives WHERE account=? AND region=? AND name=?",
                             (rule.account, rule.region, name))
        if row is not None:
            self.store.execute("INSERT INTO events_archived(archive_id, at, event) VALUES(?,?,?)",
                               (row[0], self.clock.now(), json.dumps(event, separators=(",", ":"))))

    def _purge(self, archive_id: int, config: dict[str, Any]) -> None:
        days = config.get("RetentionDays") or 0
        if days:
            self.store.execute("DELETE FROM events_archived WHERE archive_id=? AND at < ?",
                               (archive_id, self.clock.now() - days * DAY))

    # -- archives -------------------------------------------------------------------

    def _archive(self, ctx: RequestContext, name: str) -> tuple[int, str, dict[str, Any], float]:
        row = self.store.one("SELECT id, source_arn, config, created FROM events_archives WHERE account=? AND "
                             "region=? AND name=?", (ctx.account, ctx.region, name))
        if row is None:
            raise errors.not_found(f"Archive {name} does not exist.")
        return row[0], row[1], json.loads(row[2]), row[3]

    def _archive_rule(self, ctx: RequestContext, name: str, bus: str, pattern: str | None) -> None:
        rule_pattern = json.loads(pattern) if pattern else {}
        rule_pattern["replay-name"] = [{"exists": False}]
        rule_name = f"Events-Archive-{name}"
        self.store.execute(
            "INSERT INTO events_rules(account, region, bus, name, pattern, state, managed_by, created) "
            "VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(account, region, bus, name) DO UPDATE SET pattern=excluded.pattern",
            (ctx.account, ctx.region, bus, rule_name, json.dumps(rule_pattern), "ENABLED", ARCHIVE_MANAGER,
             self.clock.now()))
        rule_id = self.store.one("SELECT id FROM events_rules WHERE account=? AND region=? AND bus=? AND name=?",
                                 (ctx.account, ctx.region, bus, rule_name))[0]
        target = {"Id": rule_name, "Arn": f"arn:aws:events:{ctx.region}:::",
                  "InputTransformer": {"InputPathsMap": {}, "InputTemplate":
                                       f'{{"archive-arn": "{archive_arn(ctx.region, ctx.account, name)}", '
                                       '"event": <aws.events.event.json>, '
                                       '"ingestion-time": <aws.events.event.ingestion-time>}'}}
        self.store.execute("INSERT INTO events_targets(rule_id, target_id, target, seq) VALUES(?,?,?,0) "
                           "ON CONFLICT(rule_id, target_id) DO UPDATE SET target=excluded.target",
                           (rule_id, rule_name, json.dumps(target)))

    def _check_pattern(self, pattern: str | None) -> None:
        from unkai import patterns

        if pattern:
            try:
                patterns.parse(pattern)
            except patterns.InvalidPattern as exc:
                raise errors.invalid_pattern(str(exc)) from None

    def create_archive(self, ctx: RequestContext, params: dict) -> dict:
        name, source = params["ArchiveName"], params["EventSourceArn"]
        if len(name) > 48:
            raise errors.validation(f"1 validation error detected: Value '{name}' at 'archiveName' failed to satisfy "
                                    "constraint: Member must have length less than or equal to 48")
        if not ARCHIVE_NAME.match(name):
            raise errors.validation(f"1 validation error detected: Value '{name}' at 'archiveName' failed to satisfy "
                                    "constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+")
        bus = bus_name(source)
        if not source.startswith(f"arn:aws:events:{ctx.region}:{ctx.account}:event-bus/"):
            raise errors.validation("Parameter EventSourceArn is not valid. Reason: Provided Arn is not in correct "
                                    "format.")
        self.require_bus(ctx, bus)  # type: ignore[attr-defined]
        if self.store.one("SELECT 1 FROM events_archives WHERE account=? AND region=? AND name=?",
                          (ctx.account, ctx.region, name)):
            raise errors.already_exists(f"Archive {name} already exists.")
        self._check_pattern(params.get("EventPattern"))
        config = {k: params[k] for k in ("Description", "EventPattern", "RetentionDays", "KmsKeyIdentifier")
                  if params.get(k) is not None}
        now = self.clock.now()
        self.store.execute("INSERT INTO events_archives(account, region, name, source_arn, config, created) "
                           "VALUES(?,?,?,?,?,?)", (ctx.account, ctx.region, name, source, json.dumps(config), now))
        self._archive_rule(ctx, name, bus, params.get("EventPattern"))
        return {"ArchiveArn": archive_arn(ctx.region, ctx.account, name), "State": "ENABLED", "CreationTime": now}

    def _describe_archive(self, ctx: RequestContext, name: str, full: bool) -> dict[str, Any]:
        archive_id, source, config, created = self._archive(ctx, name)
        self._purge(archive_id, config)
        count, size = self.store.one("SELECT COUNT(*), COALESCE(SUM(LENGTH(event)), 0) FROM events_archived "
                                     "WHERE archive_id=?", (archive_id,))
        out: dict[str, Any] = {"ArchiveName": name, "EventSourceArn": source, "State": "ENABLED",
                               "RetentionDays": config.get("RetentionDays", 0), "SizeBytes": size,
                               "EventCount": count, "CreationTime": created}
        if full:
            out["ArchiveArn"] = archive_arn(ctx.region, ctx.account, name)
            for key in ("Description", "EventPattern", "KmsKeyIdentifier"):
                if config.get(key):
                    out[key] = config[key]
        return out

    def describe_archive(self, ctx: RequestContext, params: dict) -> dict:
        return self._describe_archive(ctx, params["ArchiveName"], True)

    def list_archives(self, ctx: RequestContext, params: dict) -> dict:
        given = [k for k in ("NamePrefix", "EventSourceArn", "State") if params.get(k) is not None]
        if len(given) > 1:
            raise errors.validation("At most one filter is allowed for ListArchives. Use either : State, "
                                    "EventSourceArn, or NamePrefix.")
        state = params.get("State")
        if state is not None and state not in ARCHIVE_STATES:
            raise errors.validation(f"1 validation error detected: Value '{state}' at 'state' failed to satisfy "
                                    f"constraint: Member must satisfy enum value set: [{', '.join(ARCHIVE_STATES)}]")
        rows = self.store.all("SELECT name, source_arn FROM events_archives WHERE account=? AND region=? ORDER BY name",
                              (ctx.account, ctx.region))
        names = [n for n, src in rows if n.startswith(params.get("NamePrefix") or "")
                 and (not params.get("EventSourceArn") or src == params["EventSourceArn"])
                 and (state is None or state == "ENABLED")]
        return page("Archives", [self._describe_archive(ctx, n, False) for n in names], params)

    def update_archive(self, ctx: RequestContext, params: dict) -> dict:
        name = params["ArchiveName"]
        archive_id, source, config, created = self._archive(ctx, name)
        self._check_pattern(params.get("EventPattern"))
        for key in ("Description", "EventPattern", "RetentionDays", "KmsKeyIdentifier"):
            if key in params:
                config[key] = params[key]
        self.store.execute("UPDATE events_archives SET config=? WHERE id=?", (json.dumps(config), archive_id))
        self._archive_rule(ctx, name, bus_name(source), config.get("EventPattern"))
        return {"ArchiveArn": archive_arn(ctx.region, ctx.account, name), "State": "ENABLED", "CreationTime": created}

    def delete_archive(self, ctx: RequestContext, params: dict) -> dict:
        name = params["ArchiveName"]
        archive_id, source, _, _ = self._archive(ctx, name)
        self.store.execute("DELETE FROM events_archived WHERE archive_id=?", (archive_id,))
        self.store.execute("DELETE FROM events_archives WHERE id=?", (archive_id,))
        self.store.execute("DELETE FROM events_rules WHERE account=? AND region=? AND bus=? AND name=?",
                           (ctx.account, ctx.region, bus_name(source), f"Events-Archive-{name}"))
        return {}

    # -- replays --------------------------------------------------------------------

    def start_replay(self, ctx: RequestContext, params: dict) -> dict:
        name, source, destination = params["ReplayName"], params["EventSourceArn"], params["Destination"]
        dest = destination.get("Arn") or ""
        if not re.match(r"^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus/", dest):
            raise errors.validation("Parameter Destination.Arn is not valid. Reason: Must contain an event bus ARN.")
        self.require_bus(ctx, bus_name(dest))  # type: ignore[attr-defined]
        archive_name = source.rsplit("/", 1)[-1]
        row = self.store.one("SELECT source_arn FROM events_archives WHERE account=? AND region=? AND name=?",
                             (ctx.account, ctx.region, archive_name))
        if row is None:
            raise errors.validation(f"Parameter EventSourceArn is not valid. Reason: Archive {archive_name} does "
                                    "not exist.")
        if row[0] != dest:
            raise errors.validation("Parameter Destination.Arn is not valid. Reason: Cross event bus replay is not "
                                    "permitted.")
        start, end = float(params["EventStartTime"]), float(params["EventEndTime"])
        if start > end:
            raise errors.validation("Parameter EventEndTime is not valid. Reason: EventStartTime must be before "
                                    "EventEndTime.")
        if self.store.one("SELECT 1 FROM events_replays WHERE account=? AND region=? AND name=?",
                          (ctx.account, ctx.region, name)):
            raise errors.already_exists(f"Replay {name} already exists.")
        spec = {"EventSourceArn": source, "Destination": destination, "EventStartTime": start, "EventEndTime": end}
        if params.get("Description"):
            spec["Description"] = params["Description"]
        now = self.clock.now()
        self.store.execute("INSERT INTO events_replays(account, region, name, spec, state, started) "
                           "VALUES(?,?,?,?,?,?)", (ctx.account, ctx.region, name, json.dumps(spec), "STARTING", now))
        self.cloud.jobs.enqueue("events.replay", {"account": ctx.account, "region": ctx.region, "name": name})
        return {"ReplayArn": replay_arn(ctx.region, ctx.account, name), "State": "STARTING", "ReplayStartTime": now}

    def _replay(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        row = self.store.one("SELECT spec, state, reason, started, ended, last_replayed FROM events_replays "
                             "WHERE account=? AND region=? AND name=?", (ctx.account, ctx.region, name))
        if row is None:
            raise errors.not_found(f"Replay {name} does not exist.")
        spec = json.loads(row[0])
        out: dict[str, Any] = {"ReplayName": name, "ReplayArn": replay_arn(ctx.region, ctx.account, name),
                               "State": row[1], **spec, "ReplayStartTime": row[3]}
        for key, value in (("StateReason", row[2]), ("ReplayEndTime", row[4]), ("EventLastReplayedTime", row[5])):
            if value is not None:
                out[key] = value
        return out

    def describe_replay(self, ctx: RequestContext, params: dict) -> dict:
        return self._replay(ctx, params["ReplayName"])

    def list_replays(self, ctx: RequestContext, params: dict) -> dict:
        given = [k for k in ("NamePrefix", "EventSourceArn", "State") if params.get(k) is not None]
        if len(given) > 1:
            raise errors.validation("At most one filter is allowed for ListReplays. Use either : State, "
                                    "EventSourceArn, or NamePrefix.")
        state = params.get("State")
        if state is not None and state not in REPLAY_STATES:
            raise errors.validation(f"1 validation error detected: Value '{state}' at 'state' failed to satisfy "
                                    f"constraint: Member must satisfy enum value set: [{', '.join(REPLAY_STATES)}]")
        names = [n for (n,) in self.store.all("SELECT name FROM events_replays WHERE account=? AND region=? "
                                              "ORDER BY name", (ctx.account, ctx.region))]
        replays = []
        for name in names:
            replay = self._replay(ctx, name)
            if (name.startswith(params.get("NamePrefix") or "") and state in (None, replay["State"])
                    and params.get("EventSourceArn") in (None, replay["EventSourceArn"])):
                replays.append({k: v for k, v in replay.items()
                                if k not in ("ReplayArn", "Description", "Destination")})
        return page("Replays", replays, params)

    def cancel_replay(self, ctx: RequestContext, params: dict) -> dict:
        name = params["ReplayName"]
        replay = self._replay(ctx, name)
        if replay["State"] not in ("STARTING", "RUNNING"):
            raise errors.illegal_status(f"Replay {name} is not in a valid state for this operation.")
        self.store.execute("UPDATE events_replays SET state='CANCELLING' WHERE account=? AND region=? AND name=?",
                           (ctx.account, ctx.region, name))
        return {"ReplayArn": replay["ReplayArn"], "State": "CANCELLING"}

    async def run_replay(self, job: dict[str, Any], attempt: int) -> None:
        """The ``events.replay`` job: one batch per transaction until done or cancelled."""
        key = (job["account"], job["region"], job["name"])
        while True:
            with self.store.transaction():
                if not self._replay_batch(*key):
                    return
            await asyncio.sleep(0)  # let requests (DescribeReplay, CancelReplay) in between batches

    def _replay_batch(self, account: str, region: str, name: str) -> bool:
        """Replay the next batch; False once the replay has finished (or was cancelled or deleted)."""
        row = self.store.one("SELECT spec, state, cursor FROM events_replays WHERE account=? AND region=? AND name=?",
                             (account, region, name))
        if row is None:
            return False
        spec, state, cursor = json.loads(row[0]), row[1], row[2]
        now = self.clock.now()
        where = "account=? AND region=? AND name=?"
        if state == "CANCELLING":
            self.store.execute(f"UPDATE events_replays SET state='CANCELLED', ended=? WHERE {where}",
                               (now, account, region, name))
            return False
        if state not in ("STARTING", "RUNNING"):
            return False
        archive = self.store.one("SELECT id, config FROM events_archives WHERE account=? AND region=? AND name=?",
                                 (account, region, spec["EventSourceArn"].rsplit("/", 1)[-1]))
        if archive is None:
            self.store.execute(f"UPDATE events_replays SET state='FAILED', reason=?, ended=? WHERE {where}",
                               ("Archive does not exist.", now, account, region, name))
            return False
        self._purge(archive[0], json.loads(archive[1]))
        rows = self.store.all("SELECT id, at, event FROM events_archived WHERE archive_id=? AND at >= ? AND at <= ? "
                              "AND id > ? ORDER BY id LIMIT ?",
                              (archive[0], spec["EventStartTime"], spec["EventEndTime"], cursor, REPLAY_BATCH))
        destination = spec["Destination"]
        only = set(destination["FilterArns"]) if destination.get("FilterArns") else None
        bus = bus_name(destination["Arn"])
        last = None
        rules = self._pattern_rules(account, region, bus)  # type: ignore[attr-defined]
        deliveries: list[tuple[dict[str, Any], str, str, str]] = []  # the batch's, handed over at once
        for event_row_id, at, text in rows:
            event = json.loads(text)
            event["replay-name"] = name
            self.route(account, region, bus, event, only, rules=rules, out=deliveries)  # type: ignore[attr-defined]
            cursor, last = event_row_id, at
        targets.deliver_all(self.cloud, deliveries, "events")  # type: ignore[attr-defined]
        if rows:
            self.store.execute(f"UPDATE events_replays SET state='RUNNING', cursor=?, last_replayed=? WHERE {where}",
                               (cursor, last, account, region, name))
        if len(rows) < REPLAY_BATCH:
            self.store.execute(f"UPDATE events_replays SET state='COMPLETED', ended=? WHERE {where}",
                               (now, account, region, name))
            return False
        return True

