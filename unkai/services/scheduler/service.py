"""Amazon EventBridge Scheduler: schedules (rate, cron and one-time ``at``, in a
time zone, between optional start and end dates) in schedule groups, each
invoking one target on unkai's clock. Recurring runs missed while unkai was
stopped are not made up; a one-time schedule whose time passed meanwhile runs
once, as soon as unkai is back."""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

from unkai.clock import Timer
from unkai.protocol import ServiceError
from unkai.services import Provisioned, RequestContext, ResourceContext, Service
from unkai import schedules as schedule, targets
from unkai.paging import paged
from unkai.template.names import physical_name

log = logging.getLogger("unkai.scheduler")

MIGRATIONS = [
    """
    CREATE TABLE scheduler_groups (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        created REAL NOT NULL,
        tags TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (account, region, name)
    );
    CREATE TABLE scheduler_schedules (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        grp TEXT NOT NULL,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        created REAL NOT NULL,
        modified REAL NOT NULL,
        anchor REAL NOT NULL,
        fired REAL,
        UNIQUE(account, region, grp, name)
    );
    """
]

NAME = re.compile(r"^[0-9a-zA-Z\-_.]{1,64}$")
DEFAULT_GROUP = "default"
SPEC_KEYS = ("ScheduleExpression", "StartDate", "EndDate", "Description", "ScheduleExpressionTimezone", "State",
             "KmsKeyArn", "Target", "FlexibleTimeWindow", "ActionAfterCompletion")


@dataclass
class Entry:
    id: int
    account: str
    region: str
    group: str
    name: str
    spec: dict[str, Any]
    created: float
    modified: float
    anchor: float
    fired: float | None

    @property
    def arn(self) -> str:
        return f"arn:aws:scheduler:{self.region}:{self.account}:schedule/{self.group}/{self.name}"


_COLUMNS = "id, account, region, grp, name, spec, created, modified, anchor, fired"


def _entry(row: tuple) -> Entry:
    values = list(row)
    values[5] = json.loads(values[5])
    return Entry(*values)


def _validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def _not_found(what: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"{what} does not exist.")


class Scheduler(Service):
    name = "scheduler"
    migrations = MIGRATIONS
    resource_types = ("AWS::Scheduler::Schedule", "AWS::Scheduler::ScheduleGroup")

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self._timers: dict[int, Timer] = {}

    async def start(self) -> None:
        for (sid,) in self.store.all("SELECT id FROM scheduler_schedules"):
            self._rearm(sid)

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    async def pausing(self) -> None:
        await self.stop()

    async def resetting(self) -> None:
        await self.start()

    # -- groups -------------------------------------------------------------------

    def _group_exists(self, ctx: Any, name: str) -> bool:
        return name == DEFAULT_GROUP or self.store.one(
            "SELECT 1 FROM scheduler_groups WHERE account=? AND region=? AND name=?",
            (ctx.account, ctx.region, name)) is not None

    def _group_arn(self, ctx: Any, name: str) -> str:
        return f"arn:aws:scheduler:{ctx.region}:{ctx.account}:schedule-group/{name}"

    def create_schedule_group(self, ctx: RequestContext, params: dict) -> dict:
        name = params["Name"]
        if not NAME.match(name):
            raise _validation(f"Invalid schedule group name {name}.")
        if self._group_exists(ctx, name):
            raise ServiceError("ConflictException", f"Schedule group {name} already exists.")
        self.store.execute("INSERT INTO scheduler_groups(account, region, name, created, tags) VALUES(?,?,?,?,?)",
                           (ctx.account, ctx.region, name, self.clock.now(),
                            json.dumps({t["Key"]: t["Value"] for t in params.get("Tags") or []})))
        return {"ScheduleGroupArn": self._group_arn(ctx, name)}

    def get_schedule_group(self, ctx: RequestContext, params: dict) -> dict:
        name = params["Name"]
        if not self._group_exists(ctx, name):
            raise _not_found(f"Schedule group {name}")
        return self._group(ctx, name)

    def _group(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        row = self.store.one("SELECT created FROM scheduler_groups WHERE account=? AND region=? AND name=?",
                             (ctx.account, ctx.region, name))
        created = row[0] if row else 0.0
        return {"Arn": self._group_arn(ctx, name), "Name": name, "State": "ACTIVE", "CreationDate": created,
                "LastModificationDate": created}

    def list_schedule_groups(self, ctx: RequestContext, params: dict) -> dict:
        names = [DEFAULT_GROUP] + [n for (n,) in self.store.all(
            "SELECT name FROM scheduler_groups WHERE account=? AND region=? ORDER BY name", (ctx.account, ctx.region))]
        prefix = params.get("NamePrefix") or ""
        groups = [self._group(ctx, n) for n in names if n.startswith(prefix)]
        return _paged("ScheduleGroups", groups, params)

    def delete_schedule_group(self, ctx: RequestContext, params: dict) -> dict:
        name = params["Name"]
        if name == DEFAULT_GROUP:
            raise _validation("You cannot delete the default group.")
        if not self._group_exists(ctx, name):
            raise _not_found(f"Schedule group {name}")
        for (sid,) in self.store.all("SELECT id FROM scheduler_schedules WHERE account=? AND region=? AND grp=?",
                                     (ctx.account, ctx.region, name)):
            self._forget(sid)
        self.store.execute("DELETE FROM scheduler_groups WHERE account=? AND region=? AND name=?",
                           (ctx.account, ctx.region, name))
        return {}

    # -- schedules ----------------------------------------------------------------

    def _find(self, ctx: Any, group: str, name: str) -> Entry | None:
        row = self.store.one(f"SELECT {_COLUMNS} FROM scheduler_schedules WHERE account=? AND region=? AND grp=? "
                             "AND name=?", (ctx.account, ctx.region, group, name))
        return _entry(row) if row else None

    def _checked(self, ctx: Any, params: dict) -> tuple[str, str, dict[str, Any]]:
        name, group = params["Name"], params.get("GroupName") or DEFAULT_GROUP
        if not NAME.match(name):
            raise _validation(f"Invalid schedule name {name}.")
        if not self._group_exists(ctx, group):
            raise _not_found(f"Schedule group {group}")
        spec = {k: params[k] for k in SPEC_KEYS if params.get(k) is not None}
        spec.setdefault("State", "ENABLED")
        spec.setdefault("ActionAfterCompletion", "NONE")
        try:
            schedule.parse(spec.get("ScheduleExpression", ""), spec.get("ScheduleExpressionTimezone"), allow_at=True)
        except schedule.InvalidSchedule as exc:
            raise _validation(f"Invalid Schedule Expression {spec.get('ScheduleExpression')}."
                              if "time zone" not in str(exc) else f"{exc}.") from None
        target = spec.get("Target") or {}
        if not target.get("Arn") or not target.get("RoleArn"):
            raise _validation("Target Arn and RoleArn are required.")
        if (spec.get("FlexibleTimeWindow") or {}).get("Mode") not in ("OFF", "FLEXIBLE"):
            raise _validation("FlexibleTimeWindow Mode must be OFF or FLEXIBLE.")
        if spec.get("State") not in ("ENABLED", "DISABLED"):
            raise _validation(f"Invalid State {spec.get('State')}.")
        if spec.get("StartDate") and spec.get("EndDate") and spec["EndDate"] <= spec["StartDate"]:
            raise _validation("The EndDate must be after the StartDate.")
        problems = []  # the model's ranges, checked server-side as AWS does (botocore checks only minimums)
        retry = target.get("RetryPolicy") or {}
        for field, member, high in (("target.retryPolicy.maximumRetryAttempts", "MaximumRetryAttempts", 185),
                                    ("target.retryPolicy.maximumEventAgeInSeconds", "MaximumEventAgeInSeconds",
                                     86400)):
            if retry.get(member) is not None and retry[member] > high:
                problems.append(f"Value '{retry[member]}' at '{field}' failed to satisfy constraint: Member must "
                                f"have value less than or equal to {high}")
        window = (spec.get("FlexibleTimeWindow") or {}).get("MaximumWindowInMinutes")
        if window is not None and window > 1440:
            problems.append(f"Value '{window}' at 'flexibleTimeWindow.maximumWindowInMinutes' failed to satisfy "
                            "constraint: Member must have value less than or equal to 1440")
        if problems:
            count = f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected: "
            raise _validation(count + "; ".join(problems))
        return group, name, spec

    def create_schedule(self, ctx: RequestContext, params: dict) -> dict:
        group, name, spec = self._checked(ctx, params)
        if self._find(ctx, group, name) is not None:
            raise ServiceError("ConflictException", f"Schedule {name} already exists.")
        now = self.clock.now()
        cur = self.store.execute(
            "INSERT INTO scheduler_schedules(account, region, grp, name, spec, created, modified, anchor) "
            "VALUES(?,?,?,?,?,?,?,?)", (ctx.account, ctx.region, group, name, json.dumps(spec), now, now, now))
        sid = cur.lastrowid
        self.store.after_commit(lambda: self._rearm(sid))
        return {"ScheduleArn": self._find(ctx, group, name).arn}

    def update_schedule(self, ctx: RequestContext, params: dict) -> dict:
        group, name, spec = self._checked(ctx, params)
        entry = self._find(ctx, group, name)
        if entry is None:
            raise _not_found(f"Schedule {name}")
        now = self.clock.now()
        anchor = entry.anchor if entry.spec.get("ScheduleExpression") == spec["ScheduleExpression"] else now
        fired = entry.fired if entry.spec.get("ScheduleExpression") == spec["ScheduleExpression"] else None
        self.store.execute("UPDATE scheduler_schedules SET spec=?, modified=?, anchor=?, fired=? WHERE id=?",
                           (json.dumps(spec), now, anchor, fired, entry.id))
        self.store.after_commit(lambda: self._rearm(entry.id))
        return {"ScheduleArn": entry.arn}

    def get_schedule(self, ctx: RequestContext, params: dict) -> dict:
        group, name = params.get("GroupName") or DEFAULT_GROUP, params["Name"]
        entry = self._find(ctx, group, name)
        if entry is None:
            raise _not_found(f"Schedule {name}")
        return {"Arn": entry.arn, "GroupName": group, "Name": name, "CreationDate": entry.created,
                "LastModificationDate": entry.modified} | entry.spec

    def list_schedules(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all(f"SELECT {_COLUMNS} FROM scheduler_schedules WHERE account=? AND region=? "
                              "ORDER BY grp, name", (ctx.account, ctx.region))
        found = []
        for row in rows:
            e = _entry(row)
            if params.get("GroupName") and e.group != params["GroupName"]:
                continue
            if params.get("NamePrefix") and not e.name.startswith(params["NamePrefix"]):
                continue
            if params.get("State") and e.spec.get("State") != params["State"]:
                continue
            found.append({"Arn": e.arn, "Name": e.name, "GroupName": e.group, "State": e.spec.get("State"),
                          "CreationDate": e.created, "LastModificationDate": e.modified,
                          "Target": {"Arn": e.spec["Target"]["Arn"]}})
        return _paged("Schedules", found, params)

    def delete_schedule(self, ctx: RequestContext, params: dict) -> dict:
        group, name = params.get("GroupName") or DEFAULT_GROUP, params["Name"]
        entry = self._find(ctx, group, name)
        if entry is None:
            raise _not_found(f"Schedule {name}")
        self._forget(entry.id)
        return {}

    def _forget(self, sid: int) -> None:
        self.store.execute("DELETE FROM scheduler_schedules WHERE id=?", (sid,))
        self.store.after_commit(lambda: self._rearm(sid))

    # -- running ------------------------------------------------------------------

    @staticmethod
    def _plan(entry: Entry) -> schedule.Schedule:
        return schedule.parse(entry.spec["ScheduleExpression"], entry.spec.get("ScheduleExpressionTimezone"),
                              allow_at=True)

    def _rearm(self, sid: int) -> None:
        timer = self._timers.pop(sid, None)
        if timer is not None:
            timer.cancel()
        row = self.store.one(f"SELECT {_COLUMNS} FROM scheduler_schedules WHERE id=?", (sid,))
        if row is not None:
            entry = _entry(row)
            if entry.spec.get("State") == "ENABLED":
                if self._plan(entry).kind == "at":
                    if entry.fired is None:  # a time already past runs now
                        at = self._plan(entry).at
                        self._timers[sid] = self.clock.call_at(at, lambda: self._fire(sid, at))
                else:
                    self._arm(entry, after=self.clock.now())

    def _next(self, entry: Entry, plan: schedule.Schedule, after: float) -> float | None:
        start, end = entry.spec.get("StartDate"), entry.spec.get("EndDate")
        if start and after < float(start):
            after = float(start) - 0.001
        when = plan.next_after(after, anchor=float(start) if start and plan.kind == "rate" else entry.anchor)
        if when is not None and end and when > float(end):
            return None
        return when

    def _arm(self, entry: Entry, after: float) -> None:
        when = self._next(entry, self._plan(entry), after)
        if when is not None:
            self._timers[entry.id] = self.clock.call_at(when, lambda: self._fire(entry.id, when))

    def _fire(self, sid: int, when: float) -> None:
        self._timers.pop(sid, None)
        due: float | None = None
        with self.store.transaction():
            row = self.store.one(f"SELECT {_COLUMNS} FROM scheduler_schedules WHERE id=?", (sid,))
            if row is None:
                return
            entry = _entry(row)
            if entry.spec.get("State") != "ENABLED":
                return
            plan = self._plan(entry)
            if plan.kind == "at":
                self._invoke(entry, when)
                if entry.spec.get("ActionAfterCompletion") == "DELETE":
                    self.store.execute("DELETE FROM scheduler_schedules WHERE id=?", (sid,))
                else:
                    self.store.execute("UPDATE scheduler_schedules SET fired=? WHERE id=?", (when, sid))
                return
            now, runs, due = self.clock.now(), 0, when
            while due is not None and due <= now and runs < schedule.MAX_RUNS_PER_FIRE:
                self._invoke(entry, due)
                runs += 1
                due = self._next(entry, plan, due)
            if runs == schedule.MAX_RUNS_PER_FIRE:
                due = self._next(entry, plan, now)
            self.store.execute("UPDATE scheduler_schedules SET fired=? WHERE id=?", (now, sid))
            if due is None and entry.spec.get("ActionAfterCompletion") == "DELETE":
                self.store.execute("DELETE FROM scheduler_schedules WHERE id=?", (sid,))
        if due is not None:
            self._timers[sid] = self.clock.call_at(due, lambda: self._fire(sid, due))

    def _invoke(self, entry: Entry, when: float) -> None:
        target = entry.spec["Target"]
        execution = str(uuid.uuid4())
        payload = target.get("Input")
        if payload is None:
            payload = "{}"
        else:
            context = {"aws.scheduler.schedule-arn": entry.arn, "aws.scheduler.scheduled-time": schedule.event_time(when),
                       "aws.scheduler.execution-id": execution, "aws.scheduler.attempt-number": "1"}
            payload = re.sub(r"<(aws\.scheduler\.[a-z\-]+)>", lambda m: context.get(m.group(1), m.group(0)), payload)
        if ":event-bus/" in (target.get("Arn") or "") and target["Arn"].startswith("arn:aws:events:"):
            # the EventBridge PutEvents target: an event whose detail is the Input, as AWS sends it
            if self.cloud.config.enforce_iam:
                from unkai.services.iam.enforcement import role_denied

                denied = role_denied(self.cloud, "scheduler.amazonaws.com", target.get("RoleArn") or "",
                                     "events:PutEvents", target["Arn"], entry.arn)
                if denied is not None:
                    targets.dead_letter(self.cloud, target, payload, "scheduler", entry.arn, "AccessDenied", denied)
                    return
            params = target.get("EventBridgeParameters") or {}
            self.cloud.call("events", "PutEvents", {"Entries": [{
                "Source": params.get("Source") or "aws.scheduler", "DetailType": params.get("DetailType") or
                "Scheduled Event", "Detail": payload, "Resources": [entry.arn], "EventBusName": target["Arn"]}]},
                target["Arn"].split(":")[3])
            return
        targets.deliver(self.cloud, target, payload, "scheduler", execution, entry.arn,
                        role_arn=target.get("RoleArn") or "")

    # -- template resources -------------------------------------------------------

    def create_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str,
                        props: dict[str, Any]) -> Provisioned:
        rctx = ctx.request_context("scheduler")
        if resource_type == "AWS::Scheduler::ScheduleGroup":
            name = props.get("Name") or physical_name(ctx.stack_name, logical_id, 64)
            arn = self.create_schedule_group(rctx, {"Name": name, "Tags": props.get("Tags")})["ScheduleGroupArn"]
            return Provisioned(name, name, {"Arn": arn, "State": "ACTIVE", "CreationDate": str(self.clock.now()),
                                            "LastModificationDate": str(self.clock.now())})
        name = props.get("Name") or physical_name(ctx.stack_name, logical_id, 64)
        arn = self.create_schedule(rctx, _schedule_request(name, props))["ScheduleArn"]
        return Provisioned(name, name, {"Arn": arn})

    def update_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
                        old_props: dict[str, Any], props: dict[str, Any]) -> Provisioned:
        same_place = props.get("Name", physical_id) == physical_id and props.get("GroupName") == old_props.get("GroupName")
        if resource_type != "AWS::Scheduler::Schedule" or not same_place:
            return super().update_resource(ctx, resource_type, logical_id, physical_id, old_props, props)
        arn = self.update_schedule(ctx.request_context("scheduler"), _schedule_request(physical_id, props))
        return Provisioned(physical_id, physical_id, {"Arn": arn["ScheduleArn"]})

    def delete_resource(self, ctx: ResourceContext, resource_type: str, physical_id: str,
                        props: dict[str, Any]) -> None:
        rctx = ctx.request_context("scheduler")
        try:
            if resource_type == "AWS::Scheduler::ScheduleGroup":
                self.delete_schedule_group(rctx, {"Name": physical_id})
            else:
                self.delete_schedule(rctx, {"Name": physical_id, "GroupName": props.get("GroupName")})
        except ServiceError:
            pass  # already gone


def _schedule_request(name: str, props: dict[str, Any]) -> dict[str, Any]:
    request = {k: props[k] for k in SPEC_KEYS + ("GroupName",) if props.get(k) is not None}
    for key in ("StartDate", "EndDate"):
        if isinstance(request.get(key), str):
            from unkai.protocol.values import parse_timestamp

            request[key] = parse_timestamp(request[key], key)
    request["Name"] = name
    return request


def _paged(key: str, items: list, params: dict) -> dict:
    return paged(key, items, params.get("NextToken"), params.get("MaxResults"))
