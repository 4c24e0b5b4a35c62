"""Amazon EventBridge: rules on the default bus or a custom bus, fired by a schedule or
by events that match their pattern (PutEvents), delivered to their targets. The
operation handlers for buses, policies and tags (``buses.py``), archives and replays
(``archives.py``), connections and API destinations (``apidestinations.py``) are
mixed in from their modules; this one holds rules, targets and the event path.

An archive is, as on AWS, a managed rule (``Events-Archive-NAME``, ManagedBy
``prod.vhs.events.aws.internal``) whose pattern adds ``"replay-name": [{"exists":
false}]``: an event reaches archives through the same matching as every other rule,
and replayed events are never archived again.

A scheduled rule runs on unkai's clock (``clock.call_at``), so advancing the clock
fires whatever falls due, each run with its own scheduled time. Runs missed while
unkai was stopped are not made up, as AWS never has a backlog: after a restart
the next run is the next one due."""

from __future__ import annotations

import json
import logging
from typing import Any

from unkai.clock import Timer
from unkai.protocol.awsjson import NOT_READ, fast_loads
from unkai.ids import uuid4
from unkai.services import RequestContext, Service
from unkai import patterns, targets
from unkai import schedules as schedule
from unkai.services.events import errors
from unkai.services.events.apidestinations import ApiDestinationOps
from unkai.services.events.archives import ArchiveOps
from unkai.services.events.matching import RuleSet, index_key
from unkai.services.events.buses import BusOps
from unkai.services.events.deferred import PUT_JOB, DeferredDelivery, compact
from unkai.services.events.model import (ARCHIVE_MANAGER, DEFAULT_BUS, MAX_TARGETS, MIGRATIONS, RULE_COLUMNS,
                                         Rule, bus_name, like, page, rule_arn)
from unkai.services.events.resources import TYPES
from unkai.services.events.targets import check_target_input, render

log = logging.getLogger(__name__)


def _bus(params: dict) -> str:
    return bus_name(params.get("EventBusName"))


def _missing(key: str) -> dict[str, str]:
    """A failed entry's result as AWS words it: the first of Source, DetailType, Detail missing."""
    return {"ErrorCode": "InvalidArgument",
            "ErrorMessage": f"Parameter {key} is not valid. Reason: {key} is a required argument."}


def _detail(text: str) -> Any:
    """``json.loads(text)``, by orjson where it gives the same (``awsjson.fast_loads``)."""
    detail = fast_loads(text)
    return json.loads(text) if detail is NOT_READ else detail


class Events(BusOps, ArchiveOps, ApiDestinationOps, DeferredDelivery, Service):
    name = "events"
    migrations = MIGRATIONS
    resource_types = TYPES

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self._timers: dict[int, Timer] = {}
        self._http = None
        self._tokens = {}
        self._sent = {}
        # pattern text -> (parsed pattern, its index key); matching never mutates a pattern
        self._patterns: dict[str, tuple[Any, Any]] = {}
        self._rulesets: dict[tuple[str, str, str], tuple[int, RuleSet]] = {}  # see _pattern_rules
        self._generation: int | None = None
        self._now_second, self._now_string = -1, ""  # see _now_text

    async def start(self) -> None:
        self.cloud.jobs.register("events.replay", self.run_replay)
        self.cloud.jobs.register(PUT_JOB, self.run_put)
        self.start_http()
        for row in self.store.all(f"SELECT {RULE_COLUMNS} FROM events_rules WHERE schedule IS NOT NULL "
                                  "AND state='ENABLED'"):
            self._arm(Rule(*row), after=self.clock.now())

    async def stop(self) -> None:
        self.forget_deferred()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._rulesets.clear()
        self._tokens.clear()
        self._sent.clear()
        await self.stop_http()

    async def pausing(self) -> None:
        await self.stop()

    async def resetting(self) -> None:
        await self.start()

    # -- rules --------------------------------------------------------------------

    def _rule(self, ctx: RequestContext, name: str, bus: str) -> Rule:
        row = self.store.one(f"SELECT {RULE_COLUMNS} FROM events_rules WHERE account=? AND region=? AND bus=? AND name=?",
                             (ctx.account, ctx.region, bus, name))
        if row is None:
            raise errors.rule_not_found(name, bus)
        return Rule(*row)

    def put_rule(self, ctx: RequestContext, params: dict) -> dict:
        name, bus = params["Name"], _bus(params)
        errors.check_name(name, "name")
        self.require_bus(ctx, bus)
        expression, pattern = params.get("ScheduleExpression"), params.get("EventPattern")
        if not expression and not pattern:
            raise errors.validation("Parameter(s) EventPattern and ScheduleExpression cannot be null.")
        if expression:
            if bus != DEFAULT_BUS:
                raise errors.validation("ScheduleExpression is supported only on the default event bus.")
            try:
                schedule.parse(expression)
            except schedule.InvalidSchedule:
                raise errors.validation("Parameter ScheduleExpression is not valid.") from None
        if pattern:
            try:
                patterns.parse(pattern)
            except patterns.InvalidPattern as exc:
                raise errors.invalid_pattern(str(exc)) from None
        state = params.get("State") or "ENABLED"
        if state not in ("ENABLED", "DISABLED", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"):
            raise errors.validation(f"1 validation error detected: Value '{state}' at 'state' failed to satisfy constraint")
        row = self.store.one("SELECT id, created FROM events_rules WHERE account=? AND region=? AND bus=? AND name=?",
                             (ctx.account, ctx.region, bus, name))
        created = row[1] if row else self.clock.now()
        if row is None:
            self.store.execute(
                "INSERT INTO events_rules(account, region, bus, name, schedule, pattern, state, description, role_arn, "
                "created, tags) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                (ctx.account, ctx.region, bus, name, expression, pattern, state, params.get("Description"),
                 params.get("RoleArn"), created, "{}"))
        else:
            if expression != self._rule(ctx, name, bus).schedule:
                created = self.clock.now()  # a new schedule counts from now
            self.store.execute(
                "UPDATE events_rules SET schedule=?, pattern=?, state=?, description=?, role_arn=?, created=? "
                "WHERE id=?", (expression, pattern, state, params.get("Description"), params.get("RoleArn"),
                               created, row[0]))
        rule = self._rule(ctx, name, bus)
        self.set_tags(rule.arn, params.get("Tags") or [])
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
        self.require_bus(ctx, _bus(params))
        rows = self.store.all(f"SELECT {RULE_COLUMNS} FROM events_rules WHERE account=? AND region=? AND bus=? "
                              "AND name LIKE ? ESCAPE '\\' ORDER BY name",
                              (ctx.account, ctx.region, _bus(params), like(params.get("NamePrefix"))))
        rules = [self._describe(Rule(*r)) for r in rows]
        for r in rules:
            r.pop("CreatedBy")
        return page("Rules", rules, params)

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
            raise errors.validation("Rule can't be deleted since it has targets.")
        self.store.execute("DELETE FROM events_rules WHERE id=?", (row[0],))
        self.store.execute("DELETE FROM events_tags WHERE arn=?",
                           (rule_arn(ctx.region, ctx.account, bus, params["Name"]),))
        self.store.after_commit(lambda: self._rearm(row[0]))
        return {}

    # -- targets ------------------------------------------------------------------

    def put_targets(self, ctx: RequestContext, params: dict) -> dict:
        wanted = params.get("Targets") or []
        for i, target in enumerate(wanted, 1):  # AWS checks the targets before it looks the rule up
            errors.check_name(target["Id"], f"targets.{i}.member.id")
            arn = target.get("Arn") or ""
            if not arn.startswith("arn:"):
                raise errors.validation(f"Parameter {arn} is not valid. Reason: Provided Arn is not in correct "
                                        "format.")
            if arn.startswith("arn:aws:sqs:") and arn.endswith(".fifo") and not target.get("SqsParameters"):
                raise errors.validation(f"Parameter(s) SqsParameters must be specified for target: {target['Id']}.")
            problem = check_target_input(target)
            if problem:
                raise errors.validation(problem)
        rule = self._rule(ctx, params["Rule"], _bus(params))
        existing = {tid for (tid,) in self.store.all("SELECT target_id FROM events_targets WHERE rule_id=?",
                                                     (rule.id,))}
        if len(existing | {t["Id"] for t in wanted}) > MAX_TARGETS:
            raise errors.limit_exceeded()
        seq = len(existing)
        for target in wanted:
            self.store.execute(
                "INSERT INTO events_targets(rule_id, target_id, target, seq) VALUES(?,?,?,?) "
                "ON CONFLICT(rule_id, target_id) DO UPDATE SET target=excluded.target",
                (rule.id, target["Id"], json.dumps(target), seq))
            seq += 1
        return {"FailedEntryCount": 0, "FailedEntries": []}

    def _targets(self, rule_id: int) -> list[dict[str, Any]]:
        return [json.loads(t) for t in self._target_texts(rule_id)]

    def _target_texts(self, rule_id: int) -> list[str]:
        return [t for (t,) in self.store.all(
            "SELECT target FROM events_targets WHERE rule_id=? ORDER BY seq, target_id", (rule_id,))]

    def list_targets_by_rule(self, ctx: RequestContext, params: dict) -> dict:
        rule = self._rule(ctx, params["Rule"], _bus(params))
        return page("Targets", self._targets(rule.id), params)

    def list_rule_names_by_target(self, ctx: RequestContext, params: dict) -> dict:
        bus = _bus(params)
        self.require_bus(ctx, bus)
        rows = self.store.all(
            "SELECT DISTINCT r.name FROM events_rules r JOIN events_targets t ON t.rule_id = r.id "
            "WHERE r.account=? AND r.region=? AND r.bus=? AND json_extract(t.target, '$.Arn')=? ORDER BY r.name",
            (ctx.account, ctx.region, bus, params["TargetArn"]))
        return page("RuleNames", [n for (n,) in rows], params)

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
            raise errors.validation("1 validation error detected: Value at 'entries' failed to satisfy constraint: "
                                    "Member must have length less than or equal to 10")
        # Only what the answer needs happens here: each entry checked (its Detail parsed),
        # its id, and the accepted events made durable as one compact job (deferred.py);
        # the events themselves are built when they are routed, after the answer.
        answer: list[dict[str, str]] = []  # each entry's result
        buses: dict[str | None, str] = {}  # EventBusName as given -> the bus
        ids: list[str] = []  # the accepted events' ids
        flat: list[str] = []  # their source, detail-type and Detail text, three by three
        odd: list[list[Any]] = []  # [index, bus, time, resources] of those not on the first's bus and time
        details: list[Any] = []  # their parsed Details
        first = None  # the first accepted event's bus
        now_text = self._now_text()  # the entries without a Time of their own share it
        for entry in entries:
            get = entry.get
            source, detail_type, text = get("Source"), get("DetailType"), get("Detail")
            if not (source and detail_type and text):  # AWS names the first one missing, in this order
                answer.append(_missing("Source" if not source else "DetailType" if not detail_type else "Detail"))
                continue
            try:
                detail = _detail(text)
                if type(detail) is not dict:  # what json makes of an object
                    raise ValueError
            except (ValueError, RecursionError):
                answer.append({"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."})
                continue
            event_id = uuid4()
            # An event for a bus that does not exist is accepted and dropped, as AWS does.
            name = get("EventBusName")
            bus = buses.get(name)
            if bus is None:
                bus = buses[name] = bus_name(name)
                if first is None:
                    first = bus
            if len(entry) > 3 + (name is not None) or bus != first:  # a Time or Resources (or TraceHeader)
                when, resources = get("Time"), get("Resources")
                if when or resources or bus != first:
                    odd.append([len(ids), bus, schedule.event_time(when) if when else now_text, resources or []])
            ids.append(event_id)
            flat += (source, detail_type, text)
            details.append(detail)
            answer.append({"EventId": event_id})
        if ids:  # durable now, routed right after the answer (deferred.py)
            self.defer({"t": ids[0], "a": ctx.account, "r": ctx.region, "b": first, "w": now_text,
                        "i": "".join(ids), "f": compact(flat), "x": odd}, details)
        failed = len(entries) - len(ids)
        return {"FailedEntryCount": failed, "Entries": answer}

    def _now_text(self) -> str:
        """The clock's time as an event's ``time`` (to the second), made once a second."""
        now = self.clock.now()
        second = int(now)
        if second != self._now_second:
            self._now_second, self._now_string = second, schedule.event_time(second)
        return self._now_string

    def route_all(self, account: str, region: str, accepted: list[tuple[str, dict[str, Any]]]) -> None:
        """Route each (bus, event) of a PutEvents, in order, and hand over all their deliveries
        at once: runs to one SQS queue are one batch insert. In the current transaction."""
        rules: dict[str, RuleSet] = {}
        deliveries: list[tuple[dict[str, Any], str, str, str]] = []
        for bus, event in accepted:
            ruleset = rules.get(bus)
            if ruleset is None:  # each bus's rules are read once per call, not once per entry
                ruleset = rules[bus] = self._pattern_rules(account, region, bus)
            self.route(account, region, bus, event, rules=ruleset, out=deliveries)
        targets.deliver_all(self.cloud, deliveries, "events")

    def route(self, account: str, region: str, bus: str, event: dict[str, Any], only: set[str] | None = None,
              rules: RuleSet | None = None, out: list[tuple[dict[str, Any], str, str, str]] | None = None) -> int:
        """Deliver ``event`` to every enabled rule on ``bus`` whose pattern matches (only the
        rules whose ARN is in ``only``, when given: a replay's FilterArns); how many matched.
        ``rules`` are the bus's pattern rules when the caller has read them already; with
        ``out``, the deliveries are appended there for the caller to hand over with others."""
        matched = 0
        ruleset = rules if rules is not None else self._pattern_rules(account, region, bus)
        pending = out if out is not None else []
        text: list[str] = []  # the event as JSON, made once for all the plain targets
        for rule, match in ruleset.candidates(event):
            if only is not None and rule.arn not in only:
                continue
            if match(event):
                matched += 1
                self._deliver(rule, event, ruleset, pending, text)
        if out is None and pending:
            targets.deliver_all(self.cloud, pending, "events")
        return matched

    def _pattern_rules(self, account: str, region: str, bus: str) -> RuleSet:
        """The bus's enabled pattern rules with their patterns as matchers, indexed so an event is
        matched only against rules it may match. Kept in memory until a write to any rule or
        target changes ``events_generation`` (a trigger does), so a call reads one row."""
        (generation,) = self.store.one("SELECT n FROM events_generation")
        key = (account, region, bus)
        cached = self._rulesets.get(key)
        if cached is not None and cached[0] == generation:
            return cached[1]
        if len(self._rulesets) > 1000 or (self._rulesets and self._generation != generation):
            self._rulesets.clear()
        self._generation = generation
        out = []
        cache = self._patterns
        for row in self.store.all(f"SELECT {RULE_COLUMNS} FROM events_rules WHERE account=? AND region=? AND bus=? "
                                  "AND pattern IS NOT NULL AND state LIKE 'ENABLED%'", (account, region, bus)):
            rule = Rule(*row)
            parsed = cache.get(rule.pattern)
            if parsed is None:
                if len(cache) > 10000:
                    cache.clear()
                pattern = json.loads(rule.pattern)
                parsed = cache[rule.pattern] = (patterns.matcher(pattern) if isinstance(pattern, dict) else
                                                (lambda event, p=pattern: patterns.matches(p, event)),
                                                index_key(pattern) if isinstance(pattern, dict) else None)
            out.append((rule, *parsed))
        ruleset = RuleSet(out)
        self._rulesets[key] = (generation, ruleset)
        return ruleset

    def accept(self, target: dict[str, Any], payload: str, event_id: str, rule_arn: str) -> None:
        """A target ARN of EventBridge's own: another event bus, whose rules then see the event
        (cross-bus targets), or an API destination (an HTTP call, as a durable job).

        The contract ``unkai.targets.deliver`` uses for ``arn:aws:events:...`` targets."""
        parts = (target.get("Arn") or "").split(":")
        if len(parts) < 6:
            return
        kind, _, rest = parts[5].partition("/")
        if kind == "event-bus":
            try:
                event = json.loads(payload)
            except ValueError:
                return
            if isinstance(event, dict):
                self.route(parts[4], parts[3], rest, event)
        elif kind == "api-destination":
            self.enqueue_http(target, payload, event_id, rule_arn)
        else:
            log.warning("unkai does not deliver events to %s", target.get("Arn"))

    def test_event_pattern(self, ctx: RequestContext, params: dict) -> dict:
        try:
            pattern = patterns.parse(params["EventPattern"])
        except patterns.InvalidPattern as exc:
            raise errors.invalid_pattern(str(exc)) from None
        try:
            event = json.loads(params["Event"])
        except ValueError:
            raise errors.validation("Parameter Event is not valid.") from None
        return {"Result": patterns.matches(pattern, event)}

    def _deliver(self, rule: Rule, event: dict[str, Any], rules: RuleSet | None = None,
                 out: list[tuple[dict[str, Any], str, str, str]] | None = None, text: list[str] | None = None) -> None:
        """Hand ``event`` to ``rule``'s targets (or its archive); with ``out``, append each
        delivery there instead. ``text`` holds the event's JSON once a plain target made it."""
        if rule.managed_by == ARCHIVE_MANAGER:
            self.archive_event(rule, event)
            return
        # parsed once per rule set; deliveries only read a target (a job keeps its own JSON copy)
        found = rules.targets(rule.id, self._targets) if rules is not None else self._targets(rule.id)
        rule_arn = rule.arn
        for target in found:
            if target.get("Input") is None and not target.get("InputPath") and not target.get("InputTransformer"):
                if not text:  # the whole event, as render gives it: made once per event
                    if text is None:
                        text = []
                    text.append(json.dumps(event))
                payload = text[0]
            else:
                payload = render(target, event, rule_arn, rule.name)
            if out is not None:
                out.append((target, payload, event["id"], rule_arn))
            else:
                targets.deliver(self.cloud, target, payload, "events", event["id"], rule_arn)

    # -- schedules ----------------------------------------------------------------

    def _rearm(self, rule_id: int) -> None:
        timer = self._timers.pop(rule_id, None)
        if timer is not None:
            timer.cancel()
        row = self.store.one(f"SELECT {RULE_COLUMNS} FROM events_rules WHERE id=?", (rule_id,))
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
            row = self.store.one(f"SELECT {RULE_COLUMNS} FROM events_rules WHERE id=?", (rule_id,))
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


def scheduled_event(rule: Rule, when: float) -> dict[str, Any]:
    """AWS's Scheduled Event, for one run of a rule at ``when``."""
    return {"version": "0", "id": uuid4(), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": rule.account, "time": schedule.event_time(when), "region": rule.region,
            "resources": [rule.arn], "detail": {}}

