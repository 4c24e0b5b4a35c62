"""Amazon EventBridge: rules on the default event bus, fired by a schedule or by
events that match their pattern (PutEvents), delivered to their targets.

A scheduled rule runs on unkai's clock (``clock.call_at``), so advancing the clock
fires whatever falls due, each run with its own scheduled time. Runs missed while
unkai was stopped are not made up, as AWS never has a backlog: after a restart
the next run is the next one due."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from unkai.clock import Timer
from unkai.protocol import ServiceError
from unkai.services import Provisioned, RequestContext, ResourceContext, Service
from unkai import patterns, targets
from unkai import schedules as schedule
from unkai.paging import paged
from unkai.services.events.targets import check_target_input, render
from unkai.template.names import physical_name

log = logging.getLogger(__name__)

MIGRATIONS = [
    """
    CREATE TABLE events_rules (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        bus TEXT NOT NULL,
        name TEXT NOT NULL,
        schedule TEXT,
        pattern TEXT,
        state TEXT NOT NULL,
        description TEXT,
        role_arn TEXT,
        managed_by TEXT,
        created REAL NOT NULL,
        tags TEXT NOT NULL DEFAULT '{}',
        UNIQUE(account, region, bus, name)
    );
    CREATE TABLE events_targets (
        rule_id INTEGER NOT NULL REFERENCES events_rules(id) ON DELETE CASCADE,
        target_id TEXT NOT NULL,
        target TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (rule_id, target_id)
    );
    """
]

DEFAULT_BUS = "default"
MAX_TARGETS = 5


@dataclass
class Rule:
    id: int
    account: str
    region: str
    bus: str
    name: str
    schedule: str | None
    pattern: str | None
    state: str
    description: str | None
    role_arn: str | None
    managed_by: str | None
    created: float

    @property
    def arn(self) -> str:
        path = self.name if self.bus == DEFAULT_BUS else f"{self.bus}/{self.name}"
        return f"arn:aws:events:{self.region}:{self.account}:rule/{path}"


_COLUMNS = "id, account, region, bus, name, schedule, pattern, state, description, role_arn, managed_by, created"


def _not_found(name: str, bus: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"Rule {name} does not exist on EventBus {bus}.")


def _validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def _bus(params: dict) -> str:
    bus = params.get("EventBusName") or DEFAULT_BUS
    return bus.rsplit("/", 1)[-1] if bus.startswith("arn:") else bus


class Events(Service):
    name = "events"
    migrations = MIGRATIONS
    resource_types = ("AWS::Events::Rule",)

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self._timers: dict[int, Timer] = {}

    async def start(self) -> None:
        for row in self.store.all(f"SELECT {_COLUMNS} FROM events_rules WHERE schedule IS NOT NULL "
                                  "AND state='ENABLED'"):
            self._arm(Rule(*row), after=self.clock.now())

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    async def pausing(self) -> None:
        await self.stop()

    async def resetting(self) -> None:
        await self.start()

    # -- rules --------------------------------------------------------------------

    def _rule(self, ctx: RequestContext, name: str, bus: str) -> Rule:
        row = self.store.one(f"SELECT {_COLUMNS} FROM events_rules WHERE account=? AND region=? AND bus=? AND name=?",
                             (ctx.account, ctx.region, bus, name))
        if row is None:
            raise _not_found(name, bus)
        return Rule(*row)

    def put_rule(self, ctx: RequestContext, params: dict) -> dict:
        name, bus = params["Name"], _bus(params)
        expression, pattern = params.get("ScheduleExpression"), params.get("EventPattern")
        if not expression and not pattern:
            raise _validation("Parameter(s) EventPattern and ScheduleExpression cannot be null.")
        if expression:
            if bus != DEFAULT_BUS:
                raise _validation("ScheduleExpression is supported only on the default event bus.")
            try:
                schedule.parse(expression)
            except schedule.InvalidSchedule:
                raise _validation("Parameter ScheduleExpression is not valid.") from None
        if pattern:
            try:
                patterns.parse(pattern)
            except patterns.InvalidPattern as exc:
                raise ServiceError("InvalidEventPatternException", str(exc)) from None
        state = params.get("State") or "ENABLED"
        if state not in ("ENABLED", "DISABLED", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"):
            raise _validation(f"1 validation error detected: Value '{state}' at 'state' failed to satisfy constraint")
        row = self.store.one("SELECT id, created FROM events_rules WHERE account=? AND region=? AND bus=? AND name=?",
                             (ctx.account, ctx.region, bus, name))
        created = row[1] if row else self.clock.now()
        if row is None:
            self.store.execute(
                "INSERT INTO events_rules(account, region, bus, name, schedule, pattern, state, description, role_arn, "
                "created, tags) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                (ctx.account, ctx.region, bus, name, expression, pattern, state, params.get("Description"),
                 params.get("RoleArn"), created, json.dumps({t["Key"]: t["Value"] for t in params.get("Tags") or []})))
        else:
            if expression != self._rule(ctx, name, bus).schedule:
                created = self.clock.now()  # a new schedule counts from now
            self.store.execute(
                "UPDATE events_rules SET schedule=?, pattern=?, state=?, description=?, role_arn=?, created=? "
                "WHERE id=?", (expression, pattern, state, params.get("Description"), params.get("RoleArn"),
                               created, row[0]))
        rule = self._rule(ctx, name, bus)
        self.store.after_commit(lambda: self._rearm(rule.id))
        return {"RuleArn": rule.arn}

    def describe_rule(self, ctx: RequestContext, params: dict) -> dict:
        return self._describe(self._rule(ctx, params["Name"], _bus(params)))

    def _describe(self, rule: Rule) -> dict[str, Any]:
        out = {"Name": rule.name, "Arn": rule.arn, "State": rule.state, "EventBusName": rule.bus,
               "CreatedBy": rule.account}
        for key, value in (("ScheduleExpression", rule.schedule), ("EventPattern", rule.pattern),
                           ("Description", rule.description), ("RoleArn", rule.role_arn),
                           ("ManagedBy", rule.managed_by)):
            if value:
                out[key] = value
        return out

    def list_rules(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all(f"SELECT {_COLUMNS} FROM events_rules WHERE account=? AND region=? AND bus=? "
                              "AND name LIKE ? ESCAPE '\\' ORDER BY name",
                              (ctx.account, ctx.region, _bus(params), _like(params.get("NamePrefix"))))
        rules = [self._describe(Rule(*r)) for r in rows]
        for r in rules:
            r.pop("CreatedBy")
        return _paged("Rules", rules, params)

    def enable_rule(self, ctx: RequestContext, params: dict) -> dict:
        return self._set_state(ctx, params, "ENABLED")

    def disable_rule(self, ctx: RequestContext, params: dict) -> dict:
        return self._set_state(ctx, params, "DISABLED")

    def _set_state(self, ctx: RequestContext, params: dict, state: str) -> dict:
        rule = self._rule(ctx, params["Name"], _bus(params))
        self.store.execute("UPDATE events_rules SET state=? WHERE id=?", (state, rule.id))
        self.store.after_commit(lambda: self._rearm(rule.id))
        return {}

    def delete_rule(self, ctx: RequestContext, params: dict) -> dict:
        bus = _bus(params)
        row = self.store.one("SELECT id FROM events_rules WHERE account=? AND region=? AND bus=? AND name=?",
                             (ctx.account, ctx.region, bus, params["Name"]))
        if row is None:
            return {}  # deleting a rule that is not there succeeds, as on AWS
        if self.store.one("SELECT 1 FROM events_targets WHERE rule_id=?", (row[0],)) and not params.get("Force"):
            raise _validation("Rule can't be deleted since it has targets.")
        self.store.execute("DELETE FROM events_rules WHERE id=?", (row[0],))
        self.store.after_commit(lambda: self._rearm(row[0]))
        return {}

    # -- targets ------------------------------------------------------------------

    # -- tags (rules only; the Terraform provider reads them on every refresh) -----------

    def _tagged_rule(self, ctx: RequestContext, arn: str) -> int:
        path = arn.split(":rule/", 1)[1] if ":rule/" in arn else ""
        bus, _, name = path.rpartition("/")
        row = self.store.one("SELECT id FROM events_rules WHERE account=? AND region=? AND bus=? AND name=?",
                             (ctx.account, ctx.region, bus or DEFAULT_BUS, name))
        if row is None:
            raise _not_found(name or arn, bus or DEFAULT_BUS)
        return row[0]

    def _tags(self, rule_id: int) -> dict[str, str]:
        return json.loads(self.store.one("SELECT tags FROM events_rules WHERE id=?", (rule_id,))[0] or "{}")

    def list_tags_for_resource(self, ctx: RequestContext, params: dict) -> dict:
        tags = self._tags(self._tagged_rule(ctx, params["ResourceARN"]))
        return {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}

    def tag_resource(self, ctx: RequestContext, params: dict) -> dict:
        rule_id = self._tagged_rule(ctx, params["ResourceARN"])
        tags = self._tags(rule_id)
        tags.update({t["Key"]: t["Value"] for t in params.get("Tags") or []})
        self.store.execute("UPDATE events_rules SET tags=? WHERE id=?", (json.dumps(tags), rule_id))
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict) -> dict:
        rule_id = self._tagged_rule(ctx, params["ResourceARN"])
        tags = self._tags(rule_id)
        for key in params.get("TagKeys") or []:
            tags.pop(key, None)
        self.store.execute("UPDATE events_rules SET tags=? WHERE id=?", (json.dumps(tags), rule_id))
        return {}

    def put_targets(self, ctx: RequestContext, params: dict) -> dict:
        rule = self._rule(ctx, params["Rule"], _bus(params))
        existing = {tid for (tid,) in self.store.all("SELECT target_id FROM events_targets WHERE rule_id=?",
                                                     (rule.id,))}
        failed = []
        wanted = params.get("Targets") or []
        if len(existing | {t["Id"] for t in wanted}) > MAX_TARGETS:
            raise ServiceError("LimitExceededException", "The requested resource exceeds the maximum number allowed.")
        seq = len(existing)
        for target in wanted:
            problem = check_target_input(target)
            if problem:
                raise _validation(problem)
            if not target.get("Arn", "").startswith("arn:"):
                failed.append({"TargetId": target["Id"], "ErrorCode": "ValidationException",
                               "ErrorMessage": f"Parameter {target.get('Arn')} is not valid. Reason: Provided Arn is "
                                               "not in correct format."})
                continue
            self.store.execute(
                "INSERT INTO events_targets(rule_id, target_id, target, seq) VALUES(?,?,?,?) "
                "ON CONFLICT(rule_id, target_id) DO UPDATE SET target=excluded.target",
                (rule.id, target["Id"], json.dumps(target), seq))
            seq += 1
        return {"FailedEntryCount": len(failed), "FailedEntries": failed}

    def _targets(self, rule_id: int) -> list[dict[str, Any]]:
        return [json.loads(t) for (t,) in self.store.all(
            "SELECT target FROM events_targets WHERE rule_id=? ORDER BY seq, target_id", (rule_id,))]

    def list_targets_by_rule(self, ctx: RequestContext, params: dict) -> dict:
        rule = self._rule(ctx, params["Rule"], _bus(params))
        return _paged("Targets", self._targets(rule.id), params)

    def remove_targets(self, ctx: RequestContext, params: dict) -> dict:
        rule = self._rule(ctx, params["Rule"], _bus(params))
        failed = []
        for target_id in params.get("Ids") or []:
            cur = self.store.execute("DELETE FROM events_targets WHERE rule_id=? AND target_id=?", (rule.id, target_id))
            if cur.rowcount == 0:
                failed.append({"TargetId": target_id, "ErrorCode": "ResourceNotFoundException",
                               "ErrorMessage": f"Target {target_id} does not exist on rule {rule.name}."})
        return {"FailedEntryCount": len(failed), "FailedEntries": failed}

    # -- events -------------------------------------------------------------------

    def put_events(self, ctx: RequestContext, params: dict) -> dict:
        entries = params.get("Entries") or []
        if not 1 <= len(entries) <= 10:
            raise _validation("1 validation error detected: Value at 'entries' failed to satisfy constraint: Member "
                              "must have length less than or equal to 10")
        results = []
        for entry in entries:
            missing = [k for k in ("Source", "DetailType", "Detail") if not entry.get(k)]
            if missing:
                results.append({"ErrorCode": "InvalidArgument",
                                "ErrorMessage": f"Parameter(s) {', '.join(missing)} must be specified."})
                continue
            try:
                detail = json.loads(entry["Detail"])
                if not isinstance(detail, dict):
                    raise ValueError
            except ValueError:
                results.append({"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."})
                continue
            event_id = str(uuid.uuid4())
            event = {"version": "0", "id": event_id, "detail-type": entry["DetailType"], "source": entry["Source"],
                     "account": ctx.account,
                     "time": schedule.event_time(entry["Time"] if entry.get("Time") else self.clock.now()),
                     "region": ctx.region, "resources": entry.get("Resources") or [], "detail": detail}
            bus = _bus({"EventBusName": entry.get("EventBusName")})
            for row in self.store.all(f"SELECT {_COLUMNS} FROM events_rules WHERE account=? AND region=? AND bus=? "
                                      "AND pattern IS NOT NULL AND state LIKE 'ENABLED%'", (ctx.account, ctx.region, bus)):
                rule = Rule(*row)
                if patterns.matches(json.loads(rule.pattern), event):
                    self._deliver(rule, event)
            results.append({"EventId": event_id})
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedEntryCount": failed, "Entries": results}

    def test_event_pattern(self, ctx: RequestContext, params: dict) -> dict:
        try:
            pattern = patterns.parse(params["EventPattern"])
        except patterns.InvalidPattern as exc:
            raise ServiceError("InvalidEventPatternException", str(exc)) from None
        try:
            event = json.loads(params["Event"])
        except ValueError:
            raise _validation("Parameter Event is not valid.") from None
        return {"Result": patterns.matches(pattern, event)}

    def _deliver(self, rule: Rule, event: dict[str, Any]) -> None:
        for target in self._targets(rule.id):
            payload = render(target, event, rule.arn, rule.name)
            targets.deliver(self.cloud, target, payload, "events", event["id"], rule.arn)

    # -- schedules ----------------------------------------------------------------

    def _rearm(self, rule_id: int) -> None:
        timer = self._timers.pop(rule_id, None)
        if timer is not None:
            timer.cancel()
        row = self.store.one(f"SELECT {_COLUMNS} FROM events_rules WHERE id=?", (rule_id,))
        if row is not None:
            rule = Rule(*row)
            if rule.schedule and rule.state == "ENABLED":
                self._arm(rule, after=self.clock.now())

    def _arm(self, rule: Rule, after: float) -> None:
        try:
            when = schedule.parse(rule.schedule).next_after(after, anchor=rule.created)
        except schedule.InvalidSchedule:
            return
        if when is not None:
            self._timers[rule.id] = self.clock.call_at(when, lambda: self._fire(rule.id, when))

    def _fire(self, rule_id: int, when: float) -> None:
        """Run every occurrence due from ``when`` up to now, then wait for the next."""
        self._timers.pop(rule_id, None)
        with self.store.transaction():
            row = self.store.one(f"SELECT {_COLUMNS} FROM events_rules WHERE id=?", (rule_id,))
            if row is None:
                return
            rule = Rule(*row)
            if rule.state != "ENABLED" or not rule.schedule:
                return
            plan = schedule.parse(rule.schedule)
            now = self.clock.now()
            runs = 0
            due: float | None = when
            while due is not None and due <= now and runs < schedule.MAX_RUNS_PER_FIRE:
                self._deliver(rule, scheduled_event(rule, due))
                runs += 1
                due = plan.next_after(due, anchor=rule.created)
            if runs == schedule.MAX_RUNS_PER_FIRE:
                log.warning("rule %s: more than %d runs fell due at once; skipped the rest", rule.name, runs)
                due = plan.next_after(now, anchor=rule.created)
        if due is not None:
            self._timers[rule.id] = self.clock.call_at(due, lambda: self._fire(rule.id, due))

    # -- template resources -------------------------------------------------------

    def create_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str,
                        props: dict[str, Any]) -> Provisioned:
        name = props.get("Name") or physical_name(ctx.stack_name, logical_id, 64)
        return self._apply_rule(ctx, name, props)

    def update_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
                        old_props: dict[str, Any], props: dict[str, Any]) -> Provisioned:
        name = physical_id.rsplit("|", 1)[-1]
        if props.get("Name", name) != name or _bus(props) != _bus(old_props):
            return super().update_resource(ctx, resource_type, logical_id, physical_id, old_props, props)
        rctx = ctx.request_context("events", "RemoveTargets")
        old_ids = [t["Id"] for t in old_props.get("Targets") or []]
        new_ids = {t["Id"] for t in props.get("Targets") or []}
        gone = [i for i in old_ids if i not in new_ids]
        if gone:
            self.remove_targets(rctx, {"Rule": name, "EventBusName": props.get("EventBusName"), "Ids": gone})
        return self._apply_rule(ctx, name, props)

    def delete_resource(self, ctx: ResourceContext, resource_type: str, physical_id: str,
                        props: dict[str, Any]) -> None:
        rctx = ctx.request_context("events", "DeleteRule")
        self.delete_rule(rctx, {"Name": physical_id.rsplit("|", 1)[-1], "EventBusName": props.get("EventBusName"),
                                "Force": True})

    def _apply_rule(self, ctx: ResourceContext, name: str, props: dict[str, Any]) -> Provisioned:
        rctx = ctx.request_context("events", "PutRule")
        pattern = props.get("EventPattern")
        request = {"Name": name, "State": props.get("State") or "ENABLED",
                   "EventBusName": props.get("EventBusName")}
        for key in ("ScheduleExpression", "Description", "RoleArn"):
            if props.get(key):
                request[key] = props[key]
        if pattern:
            request["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        arn = self.put_rule(rctx, request)["RuleArn"]
        wanted = []
        for target in props.get("Targets") or []:
            target = dict(target)
            if isinstance(target.get("InputTransformer"), dict):
                target["InputTransformer"] = dict(target["InputTransformer"])
            wanted.append(target)
        if wanted:
            result = self.put_targets(rctx, {"Rule": name, "EventBusName": props.get("EventBusName"),
                                             "Targets": wanted})
            if result["FailedEntryCount"]:
                raise _validation(result["FailedEntries"][0]["ErrorMessage"])
        bus = _bus(props)
        ref = name if bus == DEFAULT_BUS else f"{bus}|{name}"
        return Provisioned(ref, ref, {"Arn": arn})


def scheduled_event(rule: Rule, when: float) -> dict[str, Any]:
    """AWS's Scheduled Event, for one run of a rule at ``when``."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": rule.account, "time": schedule.event_time(when), "region": rule.region,
            "resources": [rule.arn], "detail": {}}


def _like(prefix: str | None) -> str:
    escaped = (prefix or "").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _paged(key: str, items: list, params: dict) -> dict:
    return paged(key, items, params.get("NextToken"), params.get("Limit"))
