"""Event buses: the default bus (always there, never a row until it gets a policy) and
custom buses (CreateEventBus...), their resource policies (PutPermission /
RemovePermission, stored as the policy document DescribeEventBus returns), and tags
on any EventBridge ARN.

Deleting a custom bus deletes its rules and their targets, as AWS does."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from unkai.services import RequestContext
from unkai.services.events import errors
from unkai.services.events.model import DEFAULT_BUS, bus_arn, bus_name, page

if TYPE_CHECKING:
    from unkai.store import Store

BUS_NAME = re.compile(r"^[/\.\-_A-Za-z0-9]{1,256}$")
PRINCIPAL = re.compile(r"^(\d{12}|\*)$")
STATEMENT_ID = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")
BUS_KEYS = ("Description", "KmsKeyIdentifier", "DeadLetterConfig", "LogConfig")


class BusOps:
    store: "Store"
    clock: Any

    # -- the model ------------------------------------------------------------------

    def bus_exists(self, account: str, region: str, name: str) -> bool:
        return name == DEFAULT_BUS or self.store.one(
            "SELECT 1 FROM events_buses WHERE account=? AND region=? AND name=?", (account, region, name)) is not None

    def require_bus(self, ctx: RequestContext, name: str) -> None:
        if not self.bus_exists(ctx.account, ctx.region, name):
            raise errors.bus_not_found(name)

    def _bus_row(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        row = self.store.one("SELECT config, policy, created, modified FROM events_buses WHERE account=? AND "
                             "region=? AND name=?", (ctx.account, ctx.region, name))
        if row is None:
            if name != DEFAULT_BUS:
                raise errors.bus_not_found(name)
            return {"Name": name, "Arn": bus_arn(ctx.region, ctx.account, name)}
        out: dict[str, Any] = {"Name": name, "Arn": bus_arn(ctx.region, ctx.account, name)}
        out.update(json.loads(row[0]))
        if row[1]:
            out["Policy"] = row[1]
        out["CreationTime"], out["LastModifiedTime"] = row[2], row[3]
        return out

    def _save_bus(self, ctx: RequestContext, name: str, config: dict[str, Any], policy: str | None) -> None:
        now = self.clock.now()
        self.store.execute(
            "INSERT INTO events_buses(account, region, name, config, policy, created, modified) VALUES(?,?,?,?,?,?,?) "
            "ON CONFLICT(account, region, name) DO UPDATE SET config=excluded.config, policy=excluded.policy, "
            "modified=excluded.modified", (ctx.account, ctx.region, name, json.dumps(config), policy, now, now))

    # -- the API --------------------------------------------------------------------

    def create_event_bus(self, ctx: RequestContext, params: dict) -> dict:
        name = params["Name"]
        if not BUS_NAME.match(name):
            raise errors.validation(f"1 validation error detected: Value '{name}' at 'name' failed to satisfy "
                                    "constraint: Member must satisfy regular expression pattern: [/\\.\\-_A-Za-z0-9]+")
        if self.bus_exists(ctx.account, ctx.region, name):
            raise errors.already_exists(f"Event bus {name} already exists.")
        if params.get("EventSourceName"):
            raise errors.not_found(f"Event source {params['EventSourceName']} does not exist.")
        if "/" in name:
            raise errors.validation("Event bus name must not contain '/'.")
        config = {k: params[k] for k in BUS_KEYS if params.get(k)}
        self._save_bus(ctx, name, config, None)
        arn = bus_arn(ctx.region, ctx.account, name)
        self.set_tags(arn, params.get("Tags") or [])
        return {"EventBusArn": arn, **config}

    def describe_event_bus(self, ctx: RequestContext, params: dict) -> dict:
        return self._bus_row(ctx, bus_name(params.get("Name")))

    def list_event_buses(self, ctx: RequestContext, params: dict) -> dict:
        names = [DEFAULT_BUS] + [n for (n,) in self.store.all(
            "SELECT name FROM events_buses WHERE account=? AND region=? AND name != 'default' ORDER BY name",
            (ctx.account, ctx.region))]
        prefix = params.get("NamePrefix") or ""
        buses = []
        for name in names:
            if name.startswith(prefix):
                bus = self._bus_row(ctx, name)
                buses.append({k: bus[k] for k in ("Name", "Arn", "Description", "Policy", "CreationTime",
                                                  "LastModifiedTime") if k in bus})
        return page("EventBuses", buses, params)

    def update_event_bus(self, ctx: RequestContext, params: dict) -> dict:
        name = bus_name(params.get("Name"))
        bus = self._bus_row(ctx, name)
        config = {k: bus[k] for k in BUS_KEYS if k in bus}
        for key in BUS_KEYS:
            if key in params:
                config[key] = params[key]
        self._save_bus(ctx, name, {k: v for k, v in config.items() if v}, bus.get("Policy"))
        return {"Arn": bus["Arn"], "Name": name, **{k: v for k, v in config.items() if v}}

    def delete_event_bus(self, ctx: RequestContext, params: dict) -> dict:
        name = params["Name"]
        if name == DEFAULT_BUS:
            raise errors.validation("Cannot delete event bus default.")
        for rule_id, in self.store.all("SELECT id FROM events_rules WHERE account=? AND region=? AND bus=?",
                                       (ctx.account, ctx.region, name)):
            self.store.execute("DELETE FROM events_rules WHERE id=?", (rule_id,))
        self.store.execute("DELETE FROM events_buses WHERE account=? AND region=? AND name=?",
                           (ctx.account, ctx.region, name))
        arn = bus_arn(ctx.region, ctx.account, name)
        self.store.execute("DELETE FROM events_tags WHERE arn=? OR arn LIKE ?",
                           (arn, f"arn:aws:events:{ctx.region}:{ctx.account}:rule/{name}/%"))
        return {}

    # -- resource policies ----------------------------------------------------------

    def put_permission(self, ctx: RequestContext, params: dict) -> dict:
        name = bus_name(params.get("EventBusName"))
        bus = self._bus_row(ctx, name)
        policy = json.loads(bus["Policy"]) if bus.get("Policy") else {"Version": "2012-10-17", "Statement": []}
        if params.get("Policy"):
            try:
                given = json.loads(params["Policy"])
            except ValueError:
                raise errors.validation("This policy contains invalid Json") from None
            if not isinstance(given, dict) or not isinstance(given.get("Statement"), list):
                raise errors.validation("This policy contains invalid Json")
            policy = given
        else:
            principal, condition = params.get("Principal"), params.get("Condition")
            if principal is None:
                raise errors.validation("Parameter Principal must be specified.")
            if condition and principal != "*":
                raise errors.invalid_parameter("Value of the parameter 'principal' must be '*' when the parameter "
                                               "'condition' is set.")
            if not condition and not PRINCIPAL.match(principal):
                raise errors.invalid_parameter(f"Value {principal} at 'principal' failed to satisfy constraint: "
                                               "Member must satisfy regular expression pattern: (\\d{12}|\\*)")
            action = params.get("Action")
            if action != "events:PutEvents":
                raise errors.validation("Provided value in parameter 'action' is not supported.")
            sid = params.get("StatementId")
            if sid is None or not STATEMENT_ID.match(sid):
                raise errors.invalid_parameter("StatementId must match ^[a-zA-Z0-9-_]{1,64}$")
            statement: dict[str, Any] = {
                "Sid": sid, "Effect": "Allow",
                "Principal": "*" if principal == "*" else {"AWS": f"arn:aws:iam::{principal}:root"},
                "Action": action, "Resource": bus["Arn"]}
            if condition:
                statement["Condition"] = {condition["Type"]: {condition["Key"]: condition["Value"]}}
            policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != sid] + [statement]
        config = {k: bus[k] for k in BUS_KEYS if k in bus}
        self._save_bus(ctx, name, config, json.dumps(policy))
        return {}

    def remove_permission(self, ctx: RequestContext, params: dict) -> dict:
        name = bus_name(params.get("EventBusName"))
        bus = self._bus_row(ctx, name)
        config = {k: bus[k] for k in BUS_KEYS if k in bus}
        if params.get("RemoveAllPermissions"):
            self._save_bus(ctx, name, config, None)
            return {}
        if not bus.get("Policy"):
            raise errors.not_found("EventBus does not have a policy.")
        policy = json.loads(bus["Policy"])
        kept = [s for s in policy.get("Statement") or [] if s.get("Sid") != params.get("StatementId")]
        if len(kept) == len(policy.get("Statement") or []):
            raise errors.not_found("Statement with the provided id does not exist.")
        policy["Statement"] = kept
        self._save_bus(ctx, name, config, json.dumps(policy) if kept else None)
        return {}

    # -- tags -----------------------------------------------------------------------

    def set_tags(self, arn: str, tags: list[dict[str, str]]) -> None:
        for tag in tags:
            self.store.execute("INSERT INTO events_tags(arn, key, value) VALUES(?,?,?) ON CONFLICT(arn, key) "
                               "DO UPDATE SET value=excluded.value", (arn, tag["Key"], tag["Value"]))

    def _taggable(self, ctx: RequestContext, arn: str) -> None:
        """Raise AWS's not-found error unless ``arn`` names a rule or bus of this account."""
        prefix = f"arn:aws:events:{ctx.region}:{ctx.account}:"
        rest = arn[len(prefix):] if arn.startswith(prefix) else ""
        kind, _, path = rest.partition("/")
        if kind == "event-bus" and self.bus_exists(ctx.account, ctx.region, path):
            return
        if kind == "rule":
            bus, _, name = path.rpartition("/")
            bus = bus or DEFAULT_BUS
            if self.store.one("SELECT 1 FROM events_rules WHERE account=? AND region=? AND bus=? AND name=?",
                              (ctx.account, ctx.region, bus, name)):
                return
            raise errors.rule_not_found(name, bus)
        if kind in ("connection", "api-destination", "archive"):
            table, column = {"connection": ("events_connections", "arn"),
                             "api-destination": ("events_destinations", "arn"),
                             "archive": ("events_archives", "name")}[kind]
            key = arn if column == "arn" else path
            if self.store.one(f"SELECT 1 FROM {table} WHERE account=? AND region=? AND {column}=?",
                              (ctx.account, ctx.region, key)):
                return
        if kind == "event-bus":
            raise errors.bus_not_found(path)
        raise errors.not_found(f"Resource {arn} does not exist.")

    def tag_resource(self, ctx: RequestContext, params: dict) -> dict:
        self._taggable(ctx, params["ResourceARN"])
        self.set_tags(params["ResourceARN"], params.get("Tags") or [])
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict) -> dict:
        self._taggable(ctx, params["ResourceARN"])
        for key in params.get("TagKeys") or []:
            self.store.execute("DELETE FROM events_tags WHERE arn=? AND key=?", (params["ResourceARN"], key))
        return {}

    def list_tags_for_resource(self, ctx: RequestContext, params: dict) -> dict:
        self._taggable(ctx, params["ResourceARN"])
        rows = self.store.all("SELECT key, value FROM events_tags WHERE arn=? ORDER BY key", (params["ResourceARN"],))
        return {"Tags": [{"Key": k, "Value": v} for k, v in rows]}

