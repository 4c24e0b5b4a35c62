"""The registry's operations: things, thing types and static thing groups.

Versions work as AWS's do: a thing's and a group's ``version`` grows by one on every
update, and an ``expectedVersion`` that differs is a VersionConflictException, so two
writers cannot silently overwrite each other's attributes.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext
from unkai.services.iot import errors
from unkai.services.iot.model import arn, dumps, loads, page

_NAME = re.compile(r"^[a-zA-Z0-9:_-]{1,128}$")


def check_name(name: str, what: str = "thingName") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise errors.invalid(f"1 validation error detected: Value '{name}' at '{what}' failed to satisfy "
                             "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9:_-]+")
    return name


class RegistryOps:
    store: Any
    clock: Any

    # -- things ------------------------------------------------------------------------------

    def _thing(self, ctx: RequestContext, name: str) -> tuple:
        row = self.store.one("SELECT name, id, arn, type_name, attributes, version, created FROM iot_things "
                             "WHERE account=? AND region=? AND name=?", (ctx.account, ctx.region, name))
        if row is None:
            raise errors.thing_not_found(name)
        return row

    def thing_exists(self, account: str, region: str, name: str) -> bool:
        return self.store.one("SELECT 1 FROM iot_things WHERE account=? AND region=? AND name=?",
                              (account, region, name)) is not None

    def _require_type(self, ctx: RequestContext, type_name: str, creating: bool = True) -> None:
        row = self.store.one("SELECT deprecated FROM iot_thing_types WHERE account=? AND region=? AND name=?",
                             (ctx.account, ctx.region, type_name))
        if row is None:
            raise errors.type_not_found(type_name)
        if row[0] and creating:
            raise errors.invalid(f"Can not create new thing with deprecated thing type:{type_name}")

    def create_thing(self, ctx: RequestContext, params: dict) -> dict:
        name = check_name(params["thingName"])
        attributes = (params.get("attributePayload") or {}).get("attributes") or {}
        type_name = params.get("thingTypeName")
        if type_name:
            self._require_type(ctx, type_name)
        row = self.store.one("SELECT id, arn, type_name, attributes FROM iot_things WHERE account=? AND region=? "
                             "AND name=?", (ctx.account, ctx.region, name))
        if row is not None:  # AWS answers an identical create with the existing thing
            if row[2] == type_name and loads(row[3]) == attributes:
                return {"thingName": name, "thingArn": row[1], "thingId": row[0]}
            raise errors.exists(f"Thing {name} already exists in account with different attributes",
                                row[0], row[1])
        thing_id, thing_arn = str(uuid.uuid4()), arn(ctx.region, ctx.account, "thing", name)
        self.store.execute("INSERT INTO iot_things (account, region, name, id, arn, type_name, attributes, "
                           "created) VALUES (?,?,?,?,?,?,?,?)", (ctx.account, ctx.region, name, thing_id, thing_arn,
                                                                type_name, dumps(attributes), self.clock.now()))
        if params.get("billingGroupName"):
            pass  # billing groups are accepted and not kept (docs/iot.md)
        return {"thingName": name, "thingArn": thing_arn, "thingId": thing_id}

    def describe_thing(self, ctx: RequestContext, params: dict) -> dict:
        name, thing_id, thing_arn, type_name, attributes, version, _ = self._thing(ctx, params["thingName"])
        out = {"defaultClientId": name, "thingName": name, "thingId": thing_id, "thingArn": thing_arn,
               "attributes": loads(attributes), "version": version}
        if type_name:
            out["thingTypeName"] = type_name
        return out

    def list_things(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT name, arn, type_name, attributes, version FROM iot_things "
                              "WHERE account=? AND region=? ORDER BY name", (ctx.account, ctx.region))
        things = []
        for name, thing_arn, type_name, attributes, version in rows:
            attrs = loads(attributes)
            if params.get("attributeName") and attrs.get(params["attributeName"]) != params.get("attributeValue"):
                continue
            if params.get("thingTypeName") and type_name != params["thingTypeName"]:
                continue
            item = {"thingName": name, "thingArn": thing_arn, "attributes": attrs, "version": version}
            if type_name:
                item["thingTypeName"] = type_name
            things.append(item)
        return page("things", things, params)

    def update_thing(self, ctx: RequestContext, params: dict) -> dict:
        name, _, _, type_name, attributes, version, _ = self._thing(ctx, params["thingName"])
        expected = params.get("expectedVersion")
        if expected is not None and int(expected) != version:
            raise errors.version_conflict(f"Version conflict. Current version is {version}")
        attrs = loads(attributes)
        payload = params.get("attributePayload")
        if payload is not None:
            new = payload.get("attributes") or {}
            if payload.get("merge"):
                attrs.update(new)
                attrs = {k: v for k, v in attrs.items() if v != ""}  # merging "" removes an attribute
            else:
                attrs = new
        if params.get("removeThingType"):
            if params.get("thingTypeName"):
                raise errors.invalid("Cannot remove thing type and set thing type at the same time")
            type_name = None
        elif params.get("thingTypeName"):
            self._require_type(ctx, params["thingTypeName"])
            type_name = params["thingTypeName"]
        self.store.execute("UPDATE iot_things SET attributes=?, type_name=?, version=version+1 "
                           "WHERE account=? AND region=? AND name=?",
                           (dumps(attrs), type_name, ctx.account, ctx.region, name))
        if self.store.one("SELECT 1 FROM iot_thing_groups WHERE account=? AND region=? AND query IS NOT NULL",
                          (ctx.account, ctx.region)):
            self._policies_changed()  # type: ignore[attr-defined]  # dynamic groups' members may have changed
        return {}

    def delete_thing(self, ctx: RequestContext, params: dict) -> dict:
        name = params["thingName"]
        row = self.store.one("SELECT version FROM iot_things WHERE account=? AND region=? AND name=?",
                             (ctx.account, ctx.region, name))
        if row is None:
            return {}  # AWS answers a delete of an unknown thing with success
        expected = params.get("expectedVersion")
        if expected is not None and int(expected) != row[0]:
            raise errors.version_conflict(f"Version conflict. Current version is {row[0]}")
        if self.store.one("SELECT 1 FROM iot_thing_principals WHERE account=? AND region=? AND thing=?",
                          (ctx.account, ctx.region, name)):
            raise errors.invalid(f"Cannot delete thing {name}, it has principals attached to it.")
        for table, column in (("iot_things", "name"), ("iot_group_members", "thing_name")):
            self.store.execute(f"DELETE FROM {table} WHERE account=? AND region=? AND {column}=?",
                               (ctx.account, ctx.region, name))
        return {}

    # -- thing types -------------------------------------------------------------------------

    def create_thing_type(self, ctx: RequestContext, params: dict) -> dict:
        name = check_name(params["thingTypeName"], "thingTypeName")
        row = self.store.one("SELECT id, arn FROM iot_thing_types WHERE account=? AND region=? AND name=?",
                             (ctx.account, ctx.region, name))
        if row is not None:
            raise errors.exists(f"Thing Type {name} already exists", row[0], row[1])
        type_id, type_arn = str(uuid.uuid4()), arn(ctx.region, ctx.account, "thingtype", name)
        self.store.execute("INSERT INTO iot_thing_types (account, region, name, id, arn, properties, created) "
                           "VALUES (?,?,?,?,?,?,?)", (ctx.account, ctx.region, name, type_id, type_arn,
                                                      dumps(params.get("thingTypeProperties") or {}),
                                                      self.clock.now()))
        self._tag(type_arn, params.get("tags"))
        return {"thingTypeName": name, "thingTypeArn": type_arn, "thingTypeId": type_id}

    def _type_row(self, ctx: RequestContext, name: str) -> tuple:
        row = self.store.one("SELECT name, id, arn, properties, deprecated, deprecation_date, created "
                             "FROM iot_thing_types WHERE account=? AND region=? AND name=?",
                             (ctx.account, ctx.region, name))
        if row is None:
            raise errors.type_not_found(name)
        return row

    @staticmethod
    def _type_view(row: tuple) -> dict:
        name, type_id, type_arn, properties, deprecated, deprecation_date, created = row
        meta: dict[str, Any] = {"deprecated": bool(deprecated), "creationDate": created}
        if deprecation_date:
            meta["deprecationDate"] = deprecation_date
        return {"thingTypeName": name, "thingTypeId": type_id, "thingTypeArn": type_arn,
                "thingTypeProperties": loads(properties), "thingTypeMetadata": meta}

    def describe_thing_type(self, ctx: RequestContext, params: dict) -> dict:
        return self._type_view(self._type_row(ctx, params["thingTypeName"]))

    def list_thing_types(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT name, id, arn, properties, deprecated, deprecation_date, created "
                              "FROM iot_thing_types WHERE account=? AND region=? ORDER BY name",
                              (ctx.account, ctx.region))
        views = [self._type_view(r) for r in rows
                 if not params.get("thingTypeName") or r[0] == params["thingTypeName"]]
        for v in views:
            v.pop("thingTypeId")
        return page("thingTypes", views, params)

    def deprecate_thing_type(self, ctx: RequestContext, params: dict) -> dict:
        name = self._type_row(ctx, params["thingTypeName"])[0]
        undo = bool(params.get("undoDeprecate"))
        self.store.execute("UPDATE iot_thing_types SET deprecated=?, deprecation_date=? WHERE account=? AND "
                           "region=? AND name=?", (0 if undo else 1, None if undo else self.clock.now(),
                                                   ctx.account, ctx.region, name))
        return {}

    def delete_thing_type(self, ctx: RequestContext, params: dict) -> dict:
        name, _, _, _, deprecated, deprecation_date, _ = self._type_row(ctx, params["thingTypeName"])
        # AWS deletes a thing type only five minutes after it was deprecated
        if not deprecated or self.clock.now() - (deprecation_date or 0) < 300:
            raise errors.invalid(f"Thing type {name} must be deprecated for at least 5 minutes before deletion")
        if self.store.one("SELECT 1 FROM iot_things WHERE account=? AND region=? AND type_name=?",
                          (ctx.account, ctx.region, name)):
            raise errors.invalid(f"Can not delete thing type {name} with things associated")
        self.store.execute("DELETE FROM iot_thing_types WHERE account=? AND region=? AND name=?",
                           (ctx.account, ctx.region, name))
        return {}

    # -- thing groups ------------------------------------------------------------------------

    def _group(self, ctx: RequestContext, name: str) -> tuple:
        row = self.store.one("SELECT name, id, arn, parent, properties, version, created FROM iot_thing_groups "
                             "WHERE account=? AND region=? AND name=?", (ctx.account, ctx.region, name))
        if row is None:
            raise errors.group_not_found(name)
        return row

    def _query_of(self, ctx: RequestContext, name: str) -> str | None:
        """A dynamic group's query (None: a static group)."""
        row = self.store.one("SELECT query FROM iot_thing_groups WHERE account=? AND region=? AND name=?",
                             (ctx.account, ctx.region, name))
        return row[0] if row else None

    def _static(self, ctx: RequestContext, name: str, message: str | None = None) -> None:
        if self._query_of(ctx, name) is not None:
            raise errors.invalid(message or f"Cannot add or remove things of dynamic thing group {name}: its "
                                 "query decides its members")

    def _group_name(self, ctx: RequestContext, params: dict) -> str:
        name = params.get("thingGroupName") or (params.get("thingGroupArn") or "").rpartition("/")[2]
        if not name:
            raise errors.invalid("Either thingGroupName or thingGroupArn must be specified")
        return self._group(ctx, name)[0]

    def _thing_name(self, ctx: RequestContext, params: dict) -> str:
        name = params.get("thingName") or (params.get("thingArn") or "").rpartition("/")[2]
        if not name:
            raise errors.invalid("Either thingName or thingArn must be specified")
        return self._thing(ctx, name)[0]

    def create_thing_group(self, ctx: RequestContext, params: dict) -> dict:
        name = check_name(params["thingGroupName"], "thingGroupName")
        parent = params.get("parentGroupName")
        if parent:
            self._group(ctx, parent)
            self._static(ctx, parent, "Dynamic thing groups cannot be part of a hierarchy")
        props = params.get("thingGroupProperties") or {}
        row = self.store.one("SELECT id, arn, parent, properties FROM iot_thing_groups WHERE account=? AND "
                             "region=? AND name=?", (ctx.account, ctx.region, name))
        if row is not None:
            if row[2] == parent and loads(row[3]) == props:
                return {"thingGroupName": name, "thingGroupArn": row[1], "thingGroupId": row[0]}
            raise errors.exists(f"Thing Group {name} already exists in current account with different "
                                "properties", row[0], row[1])
        group_id, group_arn = str(uuid.uuid4()), arn(ctx.region, ctx.account, "thinggroup", name)
        self.store.execute("INSERT INTO iot_thing_groups (account, region, name, id, arn, parent, properties, "
                           "created) VALUES (?,?,?,?,?,?,?,?)", (ctx.account, ctx.region, name, group_id, group_arn,
                                                                parent, dumps(props), self.clock.now()))
        self._tag(group_arn, params.get("tags"))
        return {"thingGroupName": name, "thingGroupArn": group_arn, "thingGroupId": group_id}

    def _ancestors(self, ctx: RequestContext, parent: str | None) -> list[tuple]:
        chain = []
        while parent:
            row = self.store.one("SELECT name, arn, parent FROM iot_thing_groups WHERE account=? AND region=? "
                                 "AND name=?", (ctx.account, ctx.region, parent))
            if row is None or len(chain) > 7:
                break
            chain.append(row)
            parent = row[2]
        return chain

    def describe_thing_group(self, ctx: RequestContext, params: dict) -> dict:
        name, group_id, group_arn, parent, props, version, created = self._group(ctx, params["thingGroupName"])
        meta: dict[str, Any] = {"creationDate": created}
        if parent:
            meta["parentGroupName"] = parent
            meta["rootToParentThingGroups"] = [{"groupName": n, "groupArn": a}
                                               for n, a, _ in reversed(self._ancestors(ctx, parent))]
        out = {"thingGroupName": name, "thingGroupId": group_id, "thingGroupArn": group_arn, "version": version,
               "thingGroupProperties": loads(props), "thingGroupMetadata": meta, "status": "ACTIVE"}
        row = self.store.one("SELECT query, query_version FROM iot_thing_groups WHERE account=? AND region=? AND "
                             "name=?", (ctx.account, ctx.region, name))
        if row and row[0] is not None:
            out.update({"indexName": "AWS_Things", "queryString": row[0], "queryVersion": row[1]})
        return out

    def update_thing_group(self, ctx: RequestContext, params: dict) -> dict:
        name, _, _, _, props, version, _ = self._group(ctx, params["thingGroupName"])
        expected = params.get("expectedVersion")
        if expected is not None and int(expected) != version:
            raise errors.version_conflict(f"Version conflict. Current version is {version}")
        new = params.get("thingGroupProperties") or {}
        current = loads(props)
        if "thingGroupDescription" in new:
            current["thingGroupDescription"] = new["thingGroupDescription"]
        payload = new.get("attributePayload")
        if payload is not None:
            attrs = (current.get("attributePayload") or {}).get("attributes") or {}
            if payload.get("merge"):
                attrs = {k: v for k, v in {**attrs, **(payload.get("attributes") or {})}.items() if v != ""}
            else:
                attrs = payload.get("attributes") or {}
            current["attributePayload"] = {"attributes": attrs}
        self.store.execute("UPDATE iot_thing_groups SET properties=?, version=version+1 WHERE account=? AND "
                           "region=? AND name=?", (dumps(current), ctx.account, ctx.region, name))
        return {"version": version + 1}

    def delete_thing_group(self, ctx: RequestContext, params: dict) -> dict:
        name = params["thingGroupName"]
        row = self.store.one("SELECT version FROM iot_thing_groups WHERE account=? AND region=? AND name=?",
                             (ctx.account, ctx.region, name))
        if row is None:
            return {}
        expected = params.get("expectedVersion")
        if expected is not None and int(expected) != row[0]:
            raise errors.version_conflict(f"Version conflict. Current version is {row[0]}")
        if self.store.one("SELECT 1 FROM iot_thing_groups WHERE account=? AND region=? AND parent=?",
                          (ctx.account, ctx.region, name)):
            raise errors.invalid(f"Cannot delete thing group : {name} when there are still child groups attached")
        for table, column in (("iot_thing_groups", "name"), ("iot_group_members", "group_name")):
            self.store.execute(f"DELETE FROM {table} WHERE account=? AND region=? AND {column}=?",
                               (ctx.account, ctx.region, name))
        group_arn = arn(ctx.region, ctx.account, "thinggroup", name)
        self.store.execute("DELETE FROM iot_policy_targets WHERE account=? AND region=? AND target=?",
                           (ctx.account, ctx.region, group_arn))
        return {}

    def list_thing_groups(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT name, arn, parent FROM iot_thing_groups WHERE account=? AND region=? "
                              "ORDER BY name", (ctx.account, ctx.region))
        parent, prefix = params.get("parentGroup"), params.get("namePrefixFilter") or ""
        recursive = params.get("recursive", True) is not False
        out = []
        for name, group_arn, group_parent in rows:
            if prefix and not name.startswith(prefix):
                continue
            if parent:
                names = [a[0] for a in self._ancestors(ctx, group_parent)] if recursive else [group_parent]
                if parent not in names:
                    continue
            elif not recursive and group_parent:
                continue
            out.append({"groupName": name, "groupArn": group_arn})
        return page("thingGroups", out, params)

    def add_thing_to_thing_group(self, ctx: RequestContext, params: dict) -> dict:
        group, thing = self._group_name(ctx, params), self._thing_name(ctx, params)
        self._static(ctx, group)
        self.store.execute("INSERT OR IGNORE INTO iot_group_members VALUES (?,?,?,?)",
                           (ctx.account, ctx.region, group, thing))
        self._policies_changed()  # type: ignore[attr-defined]  # a group's policies now reach the thing
        return {}

    def remove_thing_from_thing_group(self, ctx: RequestContext, params: dict) -> dict:
        group, thing = self._group_name(ctx, params), self._thing_name(ctx, params)
        self._static(ctx, group)
        self.store.execute("DELETE FROM iot_group_members WHERE account=? AND region=? AND group_name=? AND "
                           "thing_name=?", (ctx.account, ctx.region, group, thing))
        self._policies_changed()  # type: ignore[attr-defined]
        return {}

    def update_thing_groups_for_thing(self, ctx: RequestContext, params: dict) -> dict:
        thing = self._thing(ctx, params["thingName"])[0]
        for group in params.get("thingGroupsToAdd") or []:
            self._group(ctx, group)
            self._static(ctx, group)
        for group in params.get("thingGroupsToRemove") or []:
            self._static(ctx, group)
        for group in params.get("thingGroupsToAdd") or []:
            self.store.execute("INSERT OR IGNORE INTO iot_group_members VALUES (?,?,?,?)",
                               (ctx.account, ctx.region, group, thing))
        for group in params.get("thingGroupsToRemove") or []:
            self.store.execute("DELETE FROM iot_group_members WHERE account=? AND region=? AND group_name=? AND "
                               "thing_name=?", (ctx.account, ctx.region, group, thing))
        self._policies_changed()  # type: ignore[attr-defined]
        return {}

    def _descendants(self, ctx: RequestContext, name: str) -> list[str]:
        out, todo = [name], [name]
        while todo:
            children = [r[0] for r in self.store.all("SELECT name FROM iot_thing_groups WHERE account=? AND "
                                                     "region=? AND parent=?", (ctx.account, ctx.region, todo.pop()))]
            out += children
            todo += children
        return out

    def list_things_in_thing_group(self, ctx: RequestContext, params: dict) -> dict:
        name = self._group(ctx, params["thingGroupName"])[0]
        query = self._query_of(ctx, name)
        if query is not None:  # a dynamic group: whatever its query selects now
            return page("things", self.dynamic_members(ctx.account, ctx.region, query), params)  # type: ignore
        groups = self._descendants(ctx, name) if params.get("recursive") else [name]
        marks = ",".join("?" * len(groups))
        rows = self.store.all(f"SELECT DISTINCT thing_name FROM iot_group_members WHERE account=? AND region=? "
                              f"AND group_name IN ({marks}) ORDER BY thing_name", (ctx.account, ctx.region, *groups))
        return page("things", [r[0] for r in rows], params)

    def groups_of(self, account: str, region: str, thing: str) -> list[tuple[str, str]]:
        """The groups a thing is in, with their ancestors (a group's policies apply to its
        members and to its sub-groups' members)."""
        rows = self.store.all("SELECT g.name, g.arn, g.parent FROM iot_group_members m JOIN iot_thing_groups g "
                              "ON g.account=m.account AND g.region=m.region AND g.name=m.group_name "
                              "WHERE m.account=? AND m.region=? AND m.thing_name=? ORDER BY g.name",
                              (account, region, thing))
        found = [(r[0], r[1]) for r in rows]
        for name, group_arn, query in self.store.all("SELECT name, arn, query FROM iot_thing_groups WHERE account=? "
                                                     "AND region=? AND query IS NOT NULL ORDER BY name",
                                                     (account, region)):
            try:
                if self.dynamic_members(account, region, query, [thing]):  # type: ignore[attr-defined]
                    found.append((name, group_arn))
            except ServiceError:  # a query that no longer parses selects nothing
                continue
        return found

    def list_thing_groups_for_thing(self, ctx: RequestContext, params: dict) -> dict:
        thing = self._thing(ctx, params["thingName"])[0]
        groups = [{"groupName": n, "groupArn": a} for n, a in self.groups_of(ctx.account, ctx.region, thing)]
        return page("thingGroups", groups, params)

    # -- tags --------------------------------------------------------------------------------

    def _tag(self, resource_arn: str, tags: list | None) -> None:
        for tag in tags or []:
            self.store.execute("INSERT OR REPLACE INTO iot_tags VALUES (?,?,?)",
                               (resource_arn, tag["Key"], tag.get("Value") or ""))

    def tag_resource(self, ctx: RequestContext, params: dict) -> dict:
        self._tag(params["resourceArn"], params.get("tags"))
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict) -> dict:
        for key in params.get("tagKeys") or []:
            self.store.execute("DELETE FROM iot_tags WHERE arn=? AND key=?", (params["resourceArn"], key))
        return {}

    def list_tags_for_resource(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT key, value FROM iot_tags WHERE arn=? ORDER BY key", (params["resourceArn"],))
        return page("tags", [{"Key": k, "Value": v} for k, v in rows], params, 50)
