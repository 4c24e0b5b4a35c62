"""Fleet indexing and dynamic thing groups.

There is no separate index to keep in step: ``SearchIndex`` evaluates its query over the
registry as it is (things, their attributes, types and static groups; classic and named
shadows with ``REGISTRY_AND_SHADOW``; connectivity with ``STATUS``), so a search, a
dynamic group's members, and the policies and jobs that reach things through a dynamic
group follow every registry and shadow change at once (AWS's index catches up within
seconds).

The query syntax is AWS's (a Lucene subset): ``field:value`` terms, a bare term searching
every field, ``*`` and ``?`` wildcards (``thingName:box*``, ``field:*`` for "has the
field"), quoted phrases, ranges ``field:[a TO b]`` / ``{a TO b}`` (mixed brackets, ``*``
open ends), comparisons ``field>n`` / ``>=`` / ``<`` / ``<=``, ``AND`` (also implied by
whitespace), ``OR``, ``NOT`` and ``-``, parentheses, field grouping ``field:(a OR b)``,
and ``\\`` escapes. Matching is case-insensitive; numbers compare as numbers.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from unkai.protocol import ServiceError
from unkai.services import RequestContext
from unkai.services.iot import errors, shadows
from unkai.services.iot.model import arn, dumps, loads

THINGS, GROUPS = "AWS_Things", "AWS_ThingGroups"
QUERY_VERSION = "2017-09-30"
THING_MODES = ("OFF", "REGISTRY", "REGISTRY_AND_SHADOW")
CONNECTIVITY_MODES = ("OFF", "STATUS")
DEFAULT_CONFIG = {"thingIndexingConfiguration": {"thingIndexingMode": "OFF", "thingConnectivityIndexingMode": "OFF"},
                  "thingGroupIndexingConfiguration": {"thingGroupIndexingMode": "OFF"}}


def invalid_query(message: str = "Syntax error in query string") -> ServiceError:
    return ServiceError("InvalidQueryException", message)


def index_missing(name: str) -> ServiceError:
    return errors.not_found(f"Index {name} does not exist. Please enable index by calling "
                            "UpdateIndexingConfiguration")


# -- the query language --------------------------------------------------------------------

_SPECIAL = set('()[]{}:<>"')
Doc = dict[str, list[Any]]
Node = Callable[[Doc], bool]


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == '"':
            j, buf = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(text[j])
                j += 1
            if j >= n:
                raise invalid_query("Unterminated quoted phrase in query string")
            out.append(("phrase", "".join(buf)))
            i = j + 1
        elif ch in "<>":
            op = ch + ("=" if i + 1 < n and text[i + 1] == "=" else "")
            out.append(("op", op))
            i += len(op)
        elif ch in _SPECIAL:
            out.append((ch, ch))
            i += 1
        elif ch == "-" and (i == 0 or text[i - 1].isspace() or text[i - 1] == "(") and i + 1 < n \
                and not text[i + 1].isspace():
            out.append(("not", "-"))
            i += 1
        else:
            buf = []
            while i < n and not text[i].isspace() and text[i] not in _SPECIAL:
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                    buf.append("\\" + text[i] if text[i] in "*?" else text[i])
                else:
                    buf.append(text[i])
                i += 1
            word = "".join(buf)
            kind = word if word in ("AND", "OR", "NOT", "TO") else "word"
            out.append(("not", word) if kind == "NOT" else (kind, word))
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _pattern(word: str) -> re.Pattern | None:
    """A regex for a term with unescaped wildcards, else None."""
    parts, wild, i = [], False, 0
    while i < len(word):
        ch = word[i]
        if ch == "\\" and i + 1 < len(word):
            parts.append(re.escape(word[i + 1]))
            i += 2
            continue
        if ch in "*?":
            wild = True
            parts.append(".*" if ch == "*" else ".")
        else:
            parts.append(re.escape(ch))
        i += 1
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL) if wild else None


def _equals(term: str, phrase: bool) -> Callable[[Any], bool]:
    pattern = None if phrase else _pattern(term)
    if pattern is not None:
        return lambda value: bool(pattern.fullmatch(_text(value)))
    literal = term.replace("\\", "") if not phrase else term
    number = _number(literal)
    lowered = literal.lower()

    def match(value: Any) -> bool:
        if number is not None:
            found = _number(value)
            if found is not None:
                return found == number
        return _text(value).lower() == lowered
    return match


def _compare(low: str | None, high: str | None, low_in: bool, high_in: bool) -> Callable[[Any], bool]:
    lo_n, hi_n = (_number(low) if low is not None else None), (_number(high) if high is not None else None)
    numeric = (low is None or lo_n is not None) and (high is None or hi_n is not None)

    def match(value: Any) -> bool:
        if numeric:
            v: Any = _number(value)
            lo, hi = lo_n, hi_n
            if v is None:
                return False
        else:
            v, lo, hi = _text(value).lower(), (low or "").lower(), (high or "").lower()
        if low is not None and (v < lo or (v == lo and not low_in)):
            return False
        if high is not None and (v > hi or (v == hi and not high_in)):
            return False
        return True
    return match


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at][0] if self.at < len(self.tokens) else None

    def take(self, kind: str | None = None) -> tuple[str, str]:
        if self.at >= len(self.tokens) or (kind is not None and self.tokens[self.at][0] != kind):
            raise invalid_query()
        self.at += 1
        return self.tokens[self.at - 1]

    def parse(self) -> Node:
        if not self.tokens:
            raise invalid_query()
        node = self.disjunction(None)
        if self.at != len(self.tokens):
            raise invalid_query()
        return node

    def disjunction(self, field: str | None) -> Node:
        nodes = [self.conjunction(field)]
        while self.peek() == "OR":
            self.take()
            nodes.append(self.conjunction(field))
        return nodes[0] if len(nodes) == 1 else (lambda doc: any(n(doc) for n in nodes))

    def conjunction(self, field: str | None) -> Node:
        nodes = [self.unary(field)]
        while self.peek() not in (None, "OR", ")"):
            if self.peek() == "AND":
                self.take()
            nodes.append(self.unary(field))
        return nodes[0] if len(nodes) == 1 else (lambda doc: all(n(doc) for n in nodes))

    def unary(self, field: str | None) -> Node:
        if self.peek() == "not":
            self.take()
            inner = self.unary(field)
            return lambda doc: not inner(doc)
        if self.peek() == "(":
            self.take()
            inner = self.disjunction(field)
            self.take(")")
            return inner
        return self.term(field)

    def term(self, field: str | None) -> Node:
        kind, word = self.take()
        if kind == "phrase":
            return _on(field, _equals(word, True))
        if kind != "word":
            raise invalid_query()
        if field is None and self.peek() == ":":
            self.take()
            return self.value(word)
        if field is None and self.peek() == "op":
            op = self.take()[1]
            value = self.take()
            if value[0] not in ("word", "phrase"):
                raise invalid_query()
            low, high = (value[1], None) if op.startswith(">") else (None, value[1])
            return _on(word, _compare(low, high, op == ">=", op == "<="))
        return _on(field, _equals(word, False))

    def value(self, field: str) -> Node:
        nxt = self.peek()
        if nxt == "(":
            self.take()
            inner = self.disjunction(field)
            self.take(")")
            return inner
        if nxt in ("[", "{"):
            low_in = self.take()[0] == "["
            low = self.take()
            self.take("TO")
            high = self.take()
            close = self.take()[0]
            if close not in ("]", "}") or low[0] not in ("word", "phrase") or high[0] not in ("word", "phrase"):
                raise invalid_query()
            return _on(field, _compare(None if low[1] == "*" else low[1], None if high[1] == "*" else high[1],
                                       low_in, close == "]"))
        if nxt == "op":
            op = self.take()[1]
            value = self.take()
            low, high = (value[1], None) if op.startswith(">") else (None, value[1])
            return _on(field, _compare(low, high, op == ">=", op == "<="))
        kind, word = self.take()
        if kind == "phrase":
            return _on(field, _equals(word, True))
        if kind != "word":
            raise invalid_query()
        if word == "*":
            return lambda doc: bool(doc.get(field))
        return _on(field, _equals(word, False))


def _on(field: str | None, match: Callable[[Any], bool]) -> Node:
    if field is None:
        return lambda doc: any(match(v) for values in doc.values() for v in values)
    return lambda doc: any(match(v) for v in doc.get(field, ()))


def parse(query: str) -> Node:
    """A predicate over flattened documents for an AWS fleet-indexing query (InvalidQueryException)."""
    if not isinstance(query, str) or len(query) > 1000:
        raise invalid_query()
    return _Parser(query).parse()


def _flatten(prefix: str, value: Any, out: Doc) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}", inner, out)
    elif isinstance(value, list):
        for inner in value:
            _flatten(prefix, inner, out)
    elif value is not None:
        out.setdefault(prefix, []).append(value)


# -- the operations ------------------------------------------------------------------------


class IndexingOps:
    """Mixed into the ``iot`` service (see ``service.py``)."""

    store: Any
    clock: Any

    def indexing_config(self, account: str, region: str) -> dict:
        row = self.store.one("SELECT config FROM iot_indexing WHERE account=? AND region=?", (account, region))
        return loads(row[0]) if row else json.loads(json.dumps(DEFAULT_CONFIG))

    def _thing_mode(self, account: str, region: str) -> str:
        return self.indexing_config(account, region)["thingIndexingConfiguration"].get("thingIndexingMode", "OFF")

    def update_indexing_configuration(self, ctx: RequestContext, params: dict) -> dict:
        config = self.indexing_config(ctx.account, ctx.region)
        things = params.get("thingIndexingConfiguration")
        if things is not None:
            mode = things.get("thingIndexingMode")
            if mode not in THING_MODES:
                raise errors.invalid(f"Invalid thingIndexingMode: {mode}")
            connectivity = things.get("thingConnectivityIndexingMode") or "OFF"
            if connectivity not in CONNECTIVITY_MODES:
                raise errors.invalid(f"Invalid thingConnectivityIndexingMode: {connectivity}")
            if mode == "OFF" and connectivity != "OFF":
                raise errors.invalid("thingConnectivityIndexingMode must be OFF when thingIndexingMode is OFF")
            if mode == "OFF" and self.store.one("SELECT 1 FROM iot_thing_groups WHERE account=? AND region=? AND "
                                                "query IS NOT NULL", (ctx.account, ctx.region)):
                raise errors.invalid("Thing indexing cannot be turned off while dynamic thing groups exist")
            config["thingIndexingConfiguration"] = {k: v for k, v in {
                **things, "thingConnectivityIndexingMode": connectivity}.items() if v is not None}
        groups = params.get("thingGroupIndexingConfiguration")
        if groups is not None:
            if groups.get("thingGroupIndexingMode") not in ("OFF", "ON"):
                raise errors.invalid(f"Invalid thingGroupIndexingMode: {groups.get('thingGroupIndexingMode')}")
            config["thingGroupIndexingConfiguration"] = groups
        self.store.execute("INSERT OR REPLACE INTO iot_indexing VALUES (?,?,?)",
                           (ctx.account, ctx.region, dumps(config)))
        return {}

    def get_indexing_configuration(self, ctx: RequestContext, params: dict) -> dict:
        return self.indexing_config(ctx.account, ctx.region)

    def _enabled_indices(self, account: str, region: str) -> list[str]:
        config = self.indexing_config(account, region)
        out = []
        if config["thingIndexingConfiguration"].get("thingIndexingMode", "OFF") != "OFF":
            out.append(THINGS)
        if config["thingGroupIndexingConfiguration"].get("thingGroupIndexingMode", "OFF") != "OFF":
            out.append(GROUPS)
        return out

    def list_indices(self, ctx: RequestContext, params: dict) -> dict:
        from unkai.services.iot.model import page

        return page("indexNames", self._enabled_indices(ctx.account, ctx.region), params)

    def describe_index(self, ctx: RequestContext, params: dict) -> dict:
        name = params["indexName"]
        if name not in self._enabled_indices(ctx.account, ctx.region):
            raise index_missing(name)
        if name == GROUPS:
            return {"indexName": name, "indexStatus": "ACTIVE", "schema": "THING_GROUPS"}
        things = self.indexing_config(ctx.account, ctx.region)["thingIndexingConfiguration"]
        schema = things["thingIndexingMode"]
        if things.get("thingConnectivityIndexingMode") == "STATUS":
            schema += "_AND_CONNECTIVITY_STATUS"
        return {"indexName": name, "indexStatus": "ACTIVE", "schema": schema}

    # -- documents ---------------------------------------------------------------------------

    def thing_documents(self, account: str, region: str, names: list[str] | None = None) -> list[tuple[Doc, dict]]:
        """Every thing (or those named) as (flattened fields, SearchIndex's ThingDocument)."""
        config = self.indexing_config(account, region)["thingIndexingConfiguration"]
        with_shadow = config.get("thingIndexingMode") == "REGISTRY_AND_SHADOW"
        named = config.get("namedShadowIndexingMode") == "ON"
        named_filter = set(((config.get("filter") or {}).get("namedShadowNames")) or [])
        with_connectivity = config.get("thingConnectivityIndexingMode") == "STATUS"
        sql = "SELECT name, id, type_name, attributes, version FROM iot_things WHERE account=? AND region=?"
        args: tuple = (account, region)
        if names is not None:
            sql += f" AND name IN ({','.join('?' * len(names))})"
            args += tuple(names)
        members: dict[str, list[str]] = {}
        for group, thing in self.store.all("SELECT group_name, thing_name FROM iot_group_members WHERE account=? "
                                           "AND region=? ORDER BY group_name", (account, region)):
            members.setdefault(thing, []).append(group)
        shadow_rows: dict[str, list[tuple]] = {}
        if with_shadow:
            for row in self.store.all("SELECT thing, name, state, metadata, version FROM iot_shadows WHERE account=? "
                                      "AND region=?", (account, region)):
                shadow_rows.setdefault(row[0], []).append(row)
        connectivity: dict[str, tuple] = {}
        if with_connectivity:
            for client, connected, stamp, reason in self.store.all(
                    "SELECT client_id, connected, timestamp, reason FROM iot_connectivity WHERE account=? AND "
                    "region=?", (account, region)):
                connectivity[client] = (bool(connected), stamp, reason)
        out = []
        for name, thing_id, type_name, attributes, version in self.store.all(sql, args):
            attrs = loads(attributes)
            doc: Doc = {"thingName": [name], "thingId": [thing_id], "registry.version": [version]}
            view: dict[str, Any] = {"thingName": name, "thingId": thing_id}
            if type_name:
                doc["thingTypeName"] = [type_name]
                view["thingTypeName"] = type_name
            if members.get(name):
                doc["thingGroupNames"] = list(members[name])
                view["thingGroupNames"] = list(members[name])
            for key, value in attrs.items():
                doc[f"attributes.{key}"] = [value]
            if attrs:
                view["attributes"] = attrs
            for _, shadow_name, state, metadata, shadow_version in shadow_rows.get(name, []):
                if shadow_name and not (named and shadow_name in named_filter):
                    continue
                state = loads(state)
                found = {"desired": state.get("desired"), "reported": state.get("reported")}
                found = {k: v for k, v in found.items() if v is not None}
                d = shadows.delta(state.get("desired"), state.get("reported")) if "desired" in state else None
                if d:
                    found["delta"] = d
                found["hasDelta"] = bool(d)
                found["version"] = shadow_version
                prefix = "shadow" if not shadow_name else f"shadow.name.{shadow_name}"
                _flatten(prefix, found, doc)
                if not shadow_name:
                    view["shadow"] = json.dumps({**{k: v for k, v in found.items() if k != "hasDelta"},
                                                 "hasDelta": found["hasDelta"], "metadata": loads(metadata)})
            if name in connectivity:
                connected, stamp, reason = connectivity[name]
                doc["connectivity.connected"] = [connected]
                doc["connectivity.timestamp"] = [int(stamp * 1000)]
                view["connectivity"] = {"connected": connected, "timestamp": int(stamp * 1000)}
                if reason and not connected:
                    doc["connectivity.disconnectReason"] = [reason]
                    view["connectivity"]["disconnectReason"] = reason
            out.append((doc, view))
        return out

    def _group_documents(self, account: str, region: str) -> list[tuple[Doc, dict]]:
        out = []
        rows = self.store.all("SELECT name, id, parent, properties FROM iot_thing_groups WHERE account=? AND region=? "
                              "ORDER BY name", (account, region))
        parents = {r[0]: r[2] for r in rows}
        for name, group_id, parent, props in rows:
            props = loads(props)
            doc: Doc = {"thingGroupName": [name], "thingGroupId": [group_id]}
            view: dict[str, Any] = {"thingGroupName": name, "thingGroupId": group_id}
            if props.get("thingGroupDescription"):
                doc["thingGroupDescription"] = [props["thingGroupDescription"]]
                view["thingGroupDescription"] = props["thingGroupDescription"]
            attrs = (props.get("attributePayload") or {}).get("attributes") or {}
            for key, value in attrs.items():
                doc[f"attributes.{key}"] = [value]
            if attrs:
                view["attributes"] = attrs
            chain, at = [], parent
            while at and len(chain) < 8:
                chain.append(at)
                at = parents.get(at)
            if chain:
                doc["parentGroupNames"] = chain
                view["parentGroupNames"] = chain
            out.append((doc, view))
        return out

    def search_index(self, ctx: RequestContext, params: dict) -> dict:
        from unkai.services.iot.model import page

        name, match = self._index_query(ctx, params)
        max_results = int(params.get("maxResults") or 500)
        if not 1 <= max_results <= 500:
            raise errors.invalid("maxResults must be between 1 and 500")
        if name == GROUPS:
            found = [view for doc, view in self._group_documents(ctx.account, ctx.region) if match(doc)]
            return {**page("thingGroups", found, {**params, "maxResults": max_results}), "things": []}
        found = [view for doc, view in self.thing_documents(ctx.account, ctx.region) if match(doc)]
        return {**page("things", found, {**params, "maxResults": max_results}), "thingGroups": []}

    def _index_query(self, ctx: RequestContext, params: dict) -> tuple[str, Any]:
        """The index a request names (which must exist and be enabled) and its compiled query."""
        name = params.get("indexName") or THINGS
        if name not in (THINGS, GROUPS):
            raise errors.not_found(f"Index {name} does not exist")
        if name not in self._enabled_indices(ctx.account, ctx.region):
            raise index_missing(name)
        return name, parse(params["queryString"])

    def _matching_docs(self, ctx: RequestContext, params: dict) -> list[Doc]:
        name, match = self._index_query(ctx, params)
        docs = self._group_documents(ctx.account, ctx.region) if name == GROUPS else \
            self.thing_documents(ctx.account, ctx.region)
        return [doc for doc, _ in docs if match(doc)]

    def get_statistics(self, ctx: RequestContext, params: dict) -> dict:
        """Count of the matching things, and with ``aggregationField`` the statistics of its
        numeric values (a field with no numeric value is InvalidAggregationException)."""
        docs = self._matching_docs(ctx, params)
        field = params.get("aggregationField")
        if not field:
            return {"statistics": {"count": len(docs)}}
        values = [float(v) for doc in docs for v in doc.get(field, ()) if not isinstance(v, bool)
                  and _number(v) is not None]
        if not values and any(doc.get(field) for doc in docs):
            raise ServiceError("InvalidAggregationException", f"The aggregation field {field} is not numeric")
        if not values:
            return {"statistics": {"count": 0}}
        count, total = len(values), sum(values)
        average = total / count
        squares = sum(v * v for v in values)
        variance = squares / count - average * average
        return {"statistics": {"count": count, "average": average, "sum": total, "minimum": min(values),
                               "maximum": max(values), "sumOfSquares": squares, "variance": max(variance, 0.0),
                               "stdDeviation": max(variance, 0.0) ** 0.5}}

    def get_cardinality(self, ctx: RequestContext, params: dict) -> dict:
        """How many distinct values ``aggregationField`` has among the matching things
        (exact here; AWS's is an approximation)."""
        docs = self._matching_docs(ctx, params)
        field = params.get("aggregationField") or "thingName"
        return {"cardinality": len({_text(v) for doc in docs for v in doc.get(field, ())})}

    # -- dynamic thing groups ----------------------------------------------------------------

    def dynamic_members(self, account: str, region: str, query: str, names: list[str] | None = None) -> list[str]:
        """The things a dynamic group's query selects now."""
        match = parse(query)
        return sorted(view["thingName"] for doc, view in self.thing_documents(account, region, names) if match(doc))

    def create_dynamic_thing_group(self, ctx: RequestContext, params: dict) -> dict:
        from unkai.services.iot.registry import check_name

        name = check_name(params["thingGroupName"], "thingGroupName")
        index = params.get("indexName") or THINGS
        if index != THINGS:
            raise errors.invalid(f"Dynamic thing groups can only use the {THINGS} index")
        if self._thing_mode(ctx.account, ctx.region) == "OFF":
            raise index_missing(THINGS)
        query = params["queryString"]
        parse(query)
        row = self.store.one("SELECT id, arn FROM iot_thing_groups WHERE account=? AND region=? AND name=?",
                             (ctx.account, ctx.region, name))
        if row is not None:
            raise errors.exists(f"Thing Group {name} already exists in current account", row[0], row[1])
        import uuid

        group_id, group_arn = str(uuid.uuid4()), arn(ctx.region, ctx.account, "thinggroup", name)
        version = params.get("queryVersion") or QUERY_VERSION
        self.store.execute("INSERT INTO iot_thing_groups (account, region, name, id, arn, parent, properties, created, "
                           "query, query_version) VALUES (?,?,?,?,?,?,?,?,?,?)",
                           (ctx.account, ctx.region, name, group_id, group_arn, None,
                            dumps(params.get("thingGroupProperties") or {}), self.clock.now(), query, version))
        self._tag(group_arn, params.get("tags"))  # type: ignore[attr-defined]
        self._policies_changed()  # type: ignore[attr-defined]
        return {"thingGroupName": name, "thingGroupArn": group_arn, "thingGroupId": group_id, "indexName": THINGS,
                "queryString": query, "queryVersion": version}

    def _dynamic(self, ctx: RequestContext, name: str) -> tuple:
        row = self.store.one("SELECT query, version FROM iot_thing_groups WHERE account=? AND region=? AND name=?",
                             (ctx.account, ctx.region, name))
        if row is None:
            raise errors.group_not_found(name)
        if row[0] is None:
            raise errors.invalid(f"Thing group {name} is a static thing group")
        return row

    def update_dynamic_thing_group(self, ctx: RequestContext, params: dict) -> dict:
        name = params["thingGroupName"]
        self._dynamic(ctx, name)
        if params.get("indexName") not in (None, THINGS):
            raise errors.invalid(f"Dynamic thing groups can only use the {THINGS} index")
        query = params.get("queryString")
        if query is not None:
            parse(query)
        out = self.update_thing_group(ctx, {  # type: ignore[attr-defined]
            "thingGroupName": name, "thingGroupProperties": params.get("thingGroupProperties") or {},
            "expectedVersion": params.get("expectedVersion")})
        if query is not None:
            self.store.execute("UPDATE iot_thing_groups SET query=?, query_version=? WHERE account=? AND region=? AND "
                               "name=?", (query, params.get("queryVersion") or QUERY_VERSION, ctx.account, ctx.region,
                                          name))
            self._policies_changed()  # type: ignore[attr-defined]
        return out

    def delete_dynamic_thing_group(self, ctx: RequestContext, params: dict) -> dict:
        name = params["thingGroupName"]
        row = self.store.one("SELECT query FROM iot_thing_groups WHERE account=? AND region=? AND name=?",
                             (ctx.account, ctx.region, name))
        if row is None:
            return {}
        if row[0] is None:
            raise errors.invalid(f"Thing group {name} is a static thing group")
        out = self.delete_thing_group(ctx, params)  # type: ignore[attr-defined]
        self._policies_changed()  # type: ignore[attr-defined]
        return out

    # -- connectivity (from the broker's presence events) ----------------------------------------

    def record_connectivity(self, account: str, region: str, client_id: str, connected: bool, reason: str) -> None:
        self.store.execute("INSERT OR REPLACE INTO iot_connectivity VALUES (?,?,?,?,?,?)",
                           (account, region, client_id, int(connected), self.clock.now(), reason or None))
        self.dynamic_inputs_changed(account, region, "connectivity.")

    def dynamic_inputs_changed(self, account: str, region: str, prefix: str) -> None:
        """A shadow or a connection changed: when a dynamic group's query reads such fields,
        its members (and so the policies that reach things through it) may have changed."""
        if self.store.one("SELECT 1 FROM iot_thing_groups WHERE account=? AND region=? AND query LIKE ?",
                          (account, region, f"%{prefix}%")):
            self._policies_changed()  # type: ignore[attr-defined]
