"""AWS IoT Core's data plane (botocore's ``iot-data``, rest-json, signing name ``iotdata``):
Publish (the HTTPS side of the message broker), retained messages and device shadows.

Every message, whether published over HTTPS, over MQTT or by the service itself (a
shadow's ``accepted``/``delta``/``documents`` messages, a republish action), goes
through ``publish_message`` inside one store transaction: the retained copy, the shadow
change, every rule's actions are committed together, and MQTT subscribers get the
message after the commit. A message to a shadow's ``update``/``get``/``delete`` topic is
a shadow request, answered on its ``accepted``/``rejected`` topics as AWS does.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext, Service
from unkai.services.iot import errors, shadows
from unkai.services.iot.model import dumps, loads
from unkai.services.iot.properties import InvalidProperties, Properties
from unkai.services.iot.sql import Message

_JOBS_TOPIC = re.compile(r"^\$aws/things/([a-zA-Z0-9:_-]+)/jobs/(?:(get|start-next)|([a-zA-Z0-9_$-]+)/(get|update))$")
_SHADOW_TOPIC = re.compile(r"^\$aws/things/([a-zA-Z0-9:_-]+)/shadow(?:/name/([a-zA-Z0-9:_-]+))?/"
                           r"(update|get|delete)$")
_SHADOW_NAME = re.compile(r"^[a-zA-Z0-9:_-]{1,64}$")
MAX_PAYLOAD = 128 * 1024


def shadow_prefix(thing: str, name: str | None) -> str:
    return f"$aws/things/{thing}/shadow" + (f"/name/{name}" if name else "")


class IoTData(Service):
    name = "iot-data"
    serves_routes = True  # /_unkai/iot
    start_env = ("UNKAI_IOT_MQTT_PORT",)

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        # called after commit with (account, region, topic, payload, qos, retain, properties)
        self.subscribers: list[Any] = []
        self.broker: Any = None

    @property
    def iot(self) -> Any:
        return self.cloud.service("iot")

    async def start(self) -> None:
        from unkai.services.iot import broker

        self.broker = broker.Broker(self.cloud, self)
        await self.broker.start_if_configured()
        self.cloud.gateway.internal.route("GET", r"/_unkai/iot", self._info, access="local")

    async def stop(self) -> None:
        if self.broker is not None:
            await self.broker.stop()

    async def _info(self, request: Any, match: Any) -> Any:
        from unkai.http import Response

        info = {"ca": str(self.iot.authority.ca_path), "caPem": self.iot.authority.ca_pem(),
                "mqtt": self.broker.address() if self.broker else None}
        return Response(200, [("content-type", "application/json")], json.dumps(info).encode())

    def banner(self) -> list[str]:
        address = self.broker.address() if self.broker else None
        if not address:
            return []
        return [f"IoT MQTT   {address['host']}:{address['port']}   (TLS with certificates from "
                f"CreateKeysAndCertificate; CA {self.iot.authority.ca_path})",
                f"IoT HTTPS  {address['host']}:{address['httpsPort']}   (the device HTTP protocol: POST /topics/...)",
                f"IoT WSS    {address['host']}:{address['wsPort']}   (MQTT over WebSocket with SigV4: wss://.../mqtt)"]

    # -- the one publish path ----------------------------------------------------------------

    def publish_message(self, account: str, region: str, topic: str, payload: bytes, qos: int = 0,
                        retain: bool = False, client_id: str = "", principal: str = "", depth: int = 0,
                        properties: Properties | None = None) -> None:
        """Accept one message (inside the caller's transaction): retain it, answer a shadow
        request, run the rules, and hand it to MQTT subscribers once committed. ``properties``:
        its MQTT 5 properties (kept with a retained copy, given to rules and MQTT 5 subscribers;
        a Message Expiry Interval counts from now)."""
        now = self.clock.now()
        if properties is not None:
            properties = properties.stamped(now)
        if topic.startswith("$aws/rules/"):
            # Basic Ingest: straight to the named rule, which sees the topic without the
            # prefix; no subscriber and no retained copy (the broker is not in the path)
            _, _, rule, *rest = topic.split("/", 3)
            msg = Message(rest[0] if rest else "", payload, client_id, principal, int(now * 1000), str(uuid.uuid4()),
                          properties=properties)
            self.iot.engine.fire(account, region, msg, self._republish, depth, only=rule)
            return
        if retain:
            if payload:
                self.store.execute("INSERT OR REPLACE INTO iot_retained (account, region, topic, payload, qos, "
                                   "updated, properties, expires) VALUES (?,?,?,?,?,?,?,?)",
                                   (account, region, topic, payload, qos, now,
                                    properties.to_json() if properties else None,
                                    properties.expires_at if properties else None))
            else:  # an empty retained message clears the topic's retained message
                self.store.execute("DELETE FROM iot_retained WHERE account=? AND region=? AND topic=?",
                                   (account, region, topic))
        self.cloud.feed.publish("iot.publish", topic=topic, bytes=len(payload), qos=qos,
                                client_id=client_id or None)
        msg = Message(topic, payload, client_id, principal, int(now * 1000),  # the trace id: when a rule runs
                      properties=properties)
        self.iot.engine.fire(account, region, msg, self._republish, depth)
        if self.subscribers:
            subscribers = list(self.subscribers)
            self.store.after_commit(lambda: [s(account, region, topic, payload, qos, retain, properties)
                                             for s in subscribers])
        shadow = _SHADOW_TOPIC.match(topic)
        if shadow and depth == 0:
            self._shadow_request(account, region, shadow.group(1), shadow.group(2), shadow.group(3), payload)
        jobs = _JOBS_TOPIC.match(topic) if depth == 0 else None
        if jobs:
            thing, job_id, verb = jobs.group(1), jobs.group(3), jobs.group(2) or jobs.group(4)
            self.cloud.service("iot-jobs-data").mqtt_request(account, region, thing, job_id, verb, payload)

    def _republish(self, account: str, region: str, topic: str, payload: bytes, qos: int, depth: int,
                   properties: Properties | None = None) -> None:
        self.publish_message(account, region, topic, payload, qos, depth=depth, properties=properties)

    def _shadow_request(self, account: str, region: str, thing: str, name: str | None, verb: str,
                        payload: bytes) -> None:
        prefix = shadow_prefix(thing, name)
        token = None
        try:
            token = (json.loads(payload) or {}).get("clientToken") if payload else None
        except (ValueError, AttributeError, UnicodeDecodeError):
            pass
        try:
            with self.store.transaction():  # a savepoint: a rejected request changes nothing
                if verb == "update":
                    doc = self.update_shadow(account, region, thing, name, payload)
                elif verb == "get":
                    doc = self.get_shadow(account, region, thing, name)
                else:
                    doc = self.delete_shadow(account, region, thing, name)
        except ServiceError as exc:
            body = {"code": exc.status or 400, "message": exc.message, "timestamp": int(self.clock.now())}
            if token:
                body["clientToken"] = token
            self.publish_message(account, region, f"{prefix}/{verb}/rejected", dumps(body).encode(), depth=1)
            return
        if verb != "update":  # update publishes its own accepted message
            if token:
                doc["clientToken"] = token
            self.publish_message(account, region, f"{prefix}/{verb}/accepted", dumps(doc).encode(), depth=1)

    # -- shadows -----------------------------------------------------------------------------

    def _shadow_row(self, account: str, region: str, thing: str, name: str) -> tuple | None:
        return self.store.one("SELECT state, metadata, version, updated FROM iot_shadows WHERE account=? AND "
                              "region=? AND thing=? AND name=?", (account, region, thing, name))

    def update_shadow(self, account: str, region: str, thing: str, name: str | None, payload: bytes) -> dict:
        request = shadows.parse_update(payload)
        row = self._shadow_row(account, region, thing, name or "")
        live = row is not None and row[0] != "null"
        state, meta = (loads(row[0]), loads(row[1])) if live else ({}, {})
        version = row[2] if row else 0
        if "version" in request and request["version"] != version:
            raise errors.shadow_conflict()
        now = int(self.clock.now())
        previous = shadows.document(state, meta, version, now, with_delta=False) if live else None
        new_state, new_meta, echoed, echoed_meta = shadows.apply(state, meta, request, now)
        version += 1
        self.store.execute("INSERT OR REPLACE INTO iot_shadows VALUES (?,?,?,?,?,?,?,?)",
                           (account, region, thing, name or "", dumps(new_state), dumps(new_meta), version, now))
        self.iot.dynamic_inputs_changed(account, region, "shadow.")
        accepted: dict[str, Any] = {"state": echoed, "metadata": echoed_meta, "version": version, "timestamp": now}
        token = request.get("clientToken")
        if token:
            accepted["clientToken"] = token
        prefix = shadow_prefix(thing, name)
        self.publish_message(account, region, f"{prefix}/update/accepted", dumps(accepted).encode(), depth=1)
        if (echoed or {}).get("desired") is not None or (echoed or {}).get("reported") is not None:
            d = shadows.delta(new_state.get("desired") or {}, new_state.get("reported") or {})
            if d and "desired" in (echoed or {}):
                message = {"version": version, "timestamp": now, "state": d,
                           "metadata": shadows.delta_metadata(new_meta.get("desired") or {}, d)}
                if token:
                    message["clientToken"] = token
                self.publish_message(account, region, f"{prefix}/update/delta", dumps(message).encode(), depth=1)
        current = shadows.document(new_state, new_meta, version, now, with_delta=False)
        documents = {"previous": previous, "current": current, "timestamp": now}
        if previous is None:
            documents.pop("previous")
        else:
            documents["previous"].pop("timestamp", None)
        documents["current"].pop("timestamp", None)
        if token:
            documents["clientToken"] = token
        self.publish_message(account, region, f"{prefix}/update/documents", dumps(documents).encode(), depth=1)
        return accepted

    def get_shadow(self, account: str, region: str, thing: str, name: str | None) -> dict:
        row = self._shadow_row(account, region, thing, name or "")
        if row is None or row[0] == "null":
            raise errors.shadow_not_found(thing, name)
        return shadows.document(loads(row[0]), loads(row[1]), row[2], int(self.clock.now()))

    def delete_shadow(self, account: str, region: str, thing: str, name: str | None) -> dict:
        row = self._shadow_row(account, region, thing, name or "")
        if row is None or row[0] == "null":
            raise errors.shadow_not_found(thing, name)
        now = int(self.clock.now())
        # the version is kept: a shadow created again continues from it, as AWS's does
        self.store.execute("UPDATE iot_shadows SET state='null', metadata='{}', updated=? WHERE account=? AND "
                           "region=? AND thing=? AND name=?", (now, account, region, thing, name or ""))
        self.iot.dynamic_inputs_changed(account, region, "shadow.")
        doc = {"version": row[2], "timestamp": now}
        self.publish_message(account, region, f"{shadow_prefix(thing, name)}/delete/accepted",
                             dumps(doc).encode(), depth=1)
        return doc

    @staticmethod
    def _names(params: dict) -> tuple[str, str | None]:
        thing, name = params["thingName"], params.get("shadowName") or None
        if not re.match(r"^[a-zA-Z0-9:_-]{1,128}$", thing):
            raise errors.invalid(f"Invalid thing name: {thing}")
        if name is not None and not _SHADOW_NAME.match(name):
            raise errors.invalid(f"Invalid shadow name: {name}")
        return thing, name

    def update_thing_shadow(self, ctx: RequestContext, params: dict) -> dict:
        thing, name = self._names(params)
        payload = params.get("payload") or b""
        doc = self.update_shadow(ctx.account, ctx.region, thing, name, payload)
        return {"payload": dumps(doc).encode()}

    def get_thing_shadow(self, ctx: RequestContext, params: dict) -> dict:
        thing, name = self._names(params)
        return {"payload": dumps(self.get_shadow(ctx.account, ctx.region, thing, name)).encode()}

    def delete_thing_shadow(self, ctx: RequestContext, params: dict) -> dict:
        thing, name = self._names(params)
        row = self._shadow_row(ctx.account, ctx.region, thing, name or "")
        if row is None or row[0] == "null":
            raise errors.shadow_not_found(thing, name)
        return {"payload": dumps(self.delete_shadow(ctx.account, ctx.region, thing, name)).encode()}

    def list_named_shadows_for_thing(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT name FROM iot_shadows WHERE account=? AND region=? AND thing=? AND name<>'' "
                              "AND state<>'null' ORDER BY name", (ctx.account, ctx.region, params["thingName"]))
        names = [r[0] for r in rows]
        size = int(params.get("pageSize") or 25)
        start = int(params["nextToken"]) if str(params.get("nextToken") or "").isdigit() else 0
        out: dict[str, Any] = {"results": names[start:start + size], "timestamp": int(self.clock.now())}
        if start + size < len(names):
            out["nextToken"] = str(start + size)
        return out

    # -- publish and retained messages -------------------------------------------------------

    def publish(self, ctx: RequestContext, params: dict) -> dict:
        topic = params["topic"]
        payload = params.get("payload") or b""
        if isinstance(payload, str):
            payload = payload.encode()
        check_topic(topic)
        if len(payload) > MAX_PAYLOAD:
            raise errors.too_large()
        qos = int(params.get("qos") or 0)
        if qos not in (0, 1):
            raise errors.invalid("QoS must be 0 or 1")
        try:
            properties = Properties.from_publish(params)
        except InvalidProperties as exc:
            raise errors.invalid(str(exc)) from None
        self.publish_message(ctx.account, ctx.region, topic, payload, qos, bool(params.get("retain")),
                             principal=ctx.access_key or "", properties=properties)
        return {}

    def get_retained_message(self, ctx: RequestContext, params: dict) -> dict:
        row = self.store.one("SELECT payload, qos, updated, properties FROM iot_retained WHERE account=? AND "
                             "region=? AND topic=? AND (expires IS NULL OR expires>?)",
                             (ctx.account, ctx.region, params["topic"], self.clock.now()))
        if row is None:
            raise errors.not_found("The retained message was not found")
        out = {"topic": params["topic"], "payload": bytes(row[0]), "qos": row[1],
               "lastModifiedTime": int(row[2] * 1000)}
        properties = Properties.from_json(row[3])
        user = properties.user_json() if properties else None
        if user:
            out["userProperties"] = user
        return out

    def list_retained_messages(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT topic, length(payload), qos, updated FROM iot_retained WHERE account=? AND "
                              "region=? AND (expires IS NULL OR expires>?) ORDER BY topic",
                              (ctx.account, ctx.region, self.clock.now()))
        items = [{"topic": t, "payloadSize": n, "qos": q, "lastModifiedTime": int(u * 1000)} for t, n, q, u in rows]
        size = int(params.get("maxResults") or 200)
        start = int(params["nextToken"]) if str(params.get("nextToken") or "").isdigit() else 0
        out: dict[str, Any] = {"retainedTopics": items[start:start + size]}
        if start + size < len(items):
            out["nextToken"] = str(start + size)
        return out

    def retained(self, account: str, region: str) -> list[tuple[str, bytes, int, Properties | None]]:
        """Every retained message that has not expired, with its properties (the broker sends
        matching ones to a new subscription)."""
        return [(t, bytes(p), q, Properties.from_json(props)) for t, p, q, props in self.store.all(
            "SELECT topic, payload, qos, properties FROM iot_retained WHERE account=? AND region=? AND "
            "(expires IS NULL OR expires>?)", (account, region, self.clock.now()))]


def check_topic(topic: str) -> None:
    """A topic a client may publish to: no wildcards, at most 256 bytes, no reserved
    ``$aws`` topic other than a shadow or jobs request."""
    if not topic or len(topic.encode()) > 256 or "+" in topic or "#" in topic:
        raise errors.invalid(f"Invalid topic name: {topic}")
    if topic.startswith("$") and not _SHADOW_TOPIC.match(topic) and not _JOBS_TOPIC.match(topic) \
            and not topic.startswith("$aws/rules/"):
        raise errors.unauthorized()
