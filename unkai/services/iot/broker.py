"""The MQTT broker: MQTT 3.1.1 and 5 over TLS with client certificates and over WebSocket
with SigV4, as AWS IoT's device endpoint serves them, built on amqtt (a maintained asyncio
broker, which speaks 3.1.1). ``mqtt5.py`` sits between each socket and amqtt: it
translates MQTT 5 and answers PUBLISH itself; ``websocket.py`` does the SigV4 handshake.

Started when ``UNKAI_IOT_MQTT_PORT`` is set (``unkai up --mqtt-port N``; ``0``: any free
port), on unkai's host, in unkai's event loop; amqtt is imported only then. What unkai
adds to amqtt:

- **Who connects**: TLS asks for a client certificate and verifies it against the local
  CA, the registered CA certificates and self-signed certificates registered without a
  CA. The certificate must be registered and ACTIVE; a certificate signed by a CA with
  auto-registration that is not registered yet is registered as PENDING_ACTIVATION and
  ``$aws/events/certificates/registered/{caCertificateId}`` is published (just-in-time
  registration), and that first connection is refused, as AWS does. Then ``iot:Connect``
  on ``client/{clientId}`` must be allowed by the certificate's policies.
- **What a client may do**: ``iot:Publish`` on ``topic/{topic}``, ``iot:Subscribe`` on
  ``topicfilter/{filter}``, ``iot:Receive`` on ``topic/{topic}``, with the policy
  variables resolved per connection. An unauthorized publish closes the connection
  (AWS closes MQTT 3.1.1 connections that do so); an unauthorized subscription gets
  the failure return code.
- **Where a message goes**: not amqtt's own fan-out but unkai's one publish path
  (``IoTData.publish_message``) in a store transaction, so shadows, retained messages
  and rules see MQTT messages exactly as HTTPS ones; subscribers get every message
  after its commit, whichever front end accepted it. Retained messages come from the
  store. ``$aws/things/.../shadow/...`` and ``$aws/rules/...`` may be published to.
- **Presence**: ``$aws/events/presence/connected/{clientId}`` and ``.../disconnected/...``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import ssl
import uuid
from typing import Any

from unkai.services.iot import security
from unkai.services.iot.sql import topic_matches

log = logging.getLogger(__name__)


def _remember_server_name(sslobj: Any, name: str | None, _context: Any) -> None:
    """TLS's SNI callback: a custom authorizer's event carries the host name the client asked
    for (``protocolData.tls.serverName``)."""
    try:
        sslobj.iot_server_name = name
    except AttributeError:
        pass


class Connection:
    """What the broker knows of one authenticated client."""

    def __init__(self, client_id: str, cert_id: str, cert_arn: str, variables: dict[str, str],
                 address: str, signer: Any = None) -> None:
        self.client_id, self.cert_id, self.cert_arn = client_id, cert_id, cert_arn
        self.variables = variables
        self.address = address
        self.signer = signer  # a WebSocket connection's SigV4 signer (websocket.Identity); no certificate then
        self.documents: list[str] | None = None
        self.compiled: list | None = None  # the documents with this connection's variables, compiled
        self.decisions: dict[tuple[str, str], bool] = {}  # (action, resource) -> allowed, until policies change
        self.session_id = str(uuid.uuid4())
        # a custom authorizer's connection: the policies and principal id its function answered
        self.custom_documents: list[str] | None = None
        self.custom_principal = ""

    @property
    def principal(self) -> str:
        """What ``principal()`` and presence events name: the certificate id, the signer, or a
        custom authorizer's principal id."""
        if self.custom_documents is not None:
            return self.custom_principal
        if self.signer is None:
            return self.cert_id
        caller = self.signer.caller
        return caller.user_id if caller is not None else self.signer.access_key


class Broker:
    """unkai's side of the broker: authentication, policies, the publish path, presence."""

    def __init__(self, cloud: Any, data: Any) -> None:
        self.cloud, self.data = cloud, data
        self.account, self.region = cloud.config.account_id, cloud.config.region
        self.amqtt: Any = None
        self.port: int | None = None
        self.connections: dict[str, Connection] = {}
        self._contexts: list[ssl.SSLContext] = []  # the broker's and the device HTTPS endpoint's
        self._trusted: dict[int, set[str]] = {}
        self.https: Any = None
        self.websocket: Any = None

    @property
    def iot(self) -> Any:
        return self.cloud.service("iot")

    def address(self) -> dict | None:
        if not self.port:
            return None
        return {"host": self.cloud.config.host, "port": self.port,
                "httpsPort": self.https.port if self.https is not None else None,
                "wsPort": self.websocket.port if self.websocket is not None else None}

    async def start_if_configured(self) -> None:
        port = os.environ.get("UNKAI_IOT_MQTT_PORT")
        if port is None or port == "":
            return
        await self.start(int(port))

    async def start(self, port: int) -> None:
        from unkai.services.iot._amqtt import IotAmqttBroker

        host = self.cloud.config.host
        names = ["localhost", "127.0.0.1", *([host] if host not in ("localhost", "127.0.0.1", "0.0.0.0") else [])]
        cert, key = self.iot.authority.server_files(names)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "ssl": True,
                                      "certfile": str(cert), "keyfile": str(key),
                                      "cafile": str(self.iot.authority.ca_path)},
                          # MQTT over WebSocket: websocket.py does the SigV4 handshake, then hands over
                          "ws": {"type": "external", "bind": f"{host}:0"}},
            "plugins": {"unkai.services.iot._amqtt.Gate": {}},
        }
        self.amqtt = IotAmqttBroker(config, gate=self)
        await self.amqtt.start()
        self.port = self.amqtt.bound_port("default")
        from unkai.services.iot.https import DeviceHttps

        https_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.iot.authority.ca_path))
        https_context.load_cert_chain(str(cert), str(key))
        https_context.verify_mode = ssl.CERT_OPTIONAL
        https_context.sni_callback = _remember_server_name
        self._contexts.append(https_context)
        self.https = DeviceHttps(self)
        await self.https.start(host, int(os.environ.get("UNKAI_IOT_HTTPS_PORT") or 0), https_context)
        from unkai.services.iot.websocket import WebSocketFront

        ws_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ws_context.load_cert_chain(str(cert), str(key))
        ws_context.sni_callback = _remember_server_name
        self.websocket = WebSocketFront(self)
        await self.websocket.start(host, int(os.environ.get("UNKAI_IOT_WS_PORT") or 0), ws_context)
        self.trust_registered()
        self.iot.listeners.append(self._policies_changed)
        self.data.subscribers.append(self._deliver)
        log.info("IoT MQTT broker on %s:%s", host, self.port)

    async def stop(self) -> None:
        if self.https is not None:
            await self.https.stop()
        if self.websocket is not None:
            await self.websocket.stop()
        if self.amqtt is not None:
            try:
                await self.amqtt.shutdown()
            except Exception:  # noqa: BLE001 - stopping must not fail the server's shutdown
                log.exception("IoT MQTT broker did not shut down cleanly")
            self.amqtt = None

    # -- trust -------------------------------------------------------------------------------

    def ssl_context(self, context: ssl.SSLContext) -> None:
        self._contexts.append(context)
        self.trust_registered()
        context.sni_callback = _remember_server_name

    def trust_registered(self) -> None:
        """Trust registered CA certificates and self-signed device certificates (new ones are
        added as they are registered; the local CA is trusted from the start)."""
        if not self._contexts:
            return
        rows = self.cloud.store.all("SELECT id, pem FROM iot_ca_certificates WHERE status='ACTIVE'") + \
            self.cloud.store.all("SELECT id, pem FROM iot_certificates WHERE ca_id IS NULL")
        for context in self._contexts:
            trusted = self._trusted.setdefault(id(context), set())
            for cert_id, pem in rows:
                if cert_id in trusted:
                    continue
                trusted.add(cert_id)
                try:
                    context.load_verify_locations(cadata=pem)
                except ssl.SSLError:
                    pass

    def _policies_changed(self) -> None:
        for conn in self.connections.values():
            conn.documents = conn.compiled = None
            conn.decisions = {}
        self.trust_registered()

    # -- authentication ----------------------------------------------------------------------

    def authenticate(self, client_id: str, der: bytes | None, address: str,
                     signer: Any = None) -> tuple[bool, str]:
        """Whether a CONNECT from a client presenting ``der`` (or a WebSocket connection's
        SigV4 ``signer``, or a custom authorizer's ``Verdict`` from the handshake) may
        proceed, and why not."""
        if signer is not None and hasattr(signer, "authenticated"):
            return self.admit(client_id, signer, address)
        if signer is not None:
            conn = Connection(client_id, "", "", {"iot:ClientId": client_id}, address, signer)
            if not self.allowed(conn, "iot:Connect", f"client/{client_id}"):
                return False, "iot:Connect not allowed"
            self.connections[client_id] = conn
            return True, ""
        if not der:
            return False, "no client certificate"
        cert_id = hashlib.sha256(der).hexdigest()
        store = self.cloud.store
        with store.transaction():
            row = store.one("SELECT arn, status FROM iot_certificates WHERE account=? AND region=? AND id=?",
                            (self.account, self.region, cert_id))
            if row is None:
                self._just_in_time(der, cert_id)
                return False, "certificate not registered"
            cert_arn, status = row
            if status != "ACTIVE":
                return False, f"certificate {status}"
            variables = self._variables(client_id, der, cert_arn)
            conn = Connection(client_id, cert_id, cert_arn, variables, address)
            if not self.allowed(conn, "iot:Connect", f"client/{client_id}"):
                return False, "iot:Connect not allowed"
            self.connections[client_id] = conn
        return True, ""

    async def authenticate_custom(self, client_id: str, username: str | None, password: Any, address: str,
                                  server_name: str | None = None) -> tuple[bool, str]:
        """A CONNECT without a client certificate: the authorizer its username names
        (``?x-amz-customauthorizer-name=...``), else the default authorizer, judges it; the
        policy documents it answers decide ``iot:Connect`` and everything after."""
        from unkai.services.iot import authorizers

        name, query = authorizers.mqtt_request(username)
        found = self.iot.authorizer(self.account, self.region, name)
        if found is None:
            return False, f"authorizer {name} not found" if name else "no client certificate"
        token = query.get(found.get("tokenKeyName") or "") if found.get("tokenKeyName") else None
        raw = password.encode() if isinstance(password, str) else password
        mqtt: dict[str, Any] = {"username": username or "", "clientId": client_id}
        if raw is not None:
            mqtt["password"] = base64.b64encode(raw).decode()
        protocol_data = {"tls": {"serverName": server_name} if server_name else {}, "mqtt": mqtt}
        request = (found, token, query.get(authorizers.SIGNATURE_PARAMETER), protocol_data)
        verdict = await authorizers.authorize(self.cloud, self.account, self.region, *request)
        return self.admit(client_id, verdict, address, request)

    async def authorize_handshake(self, query: str, headers: Any, server_name: str | None = None) -> Any:
        """A WebSocket handshake for a custom authorizer (``x-amz-customauthorizer-name`` in
        its query or headers, or no SigV4 while a default authorizer is set): the authorizer's
        ``Verdict``, or None when the handshake is SigV4's to judge."""
        from urllib.parse import parse_qsl

        from unkai.services.iot import authorizers

        params = dict(parse_qsl(query, keep_blank_values=True))
        lowered = {k.lower(): v for k, v in params.items()}
        pairs = list(headers.raw_items()) if hasattr(headers, "raw_items") else list(headers.items())
        header = {k.lower(): v for k, v in pairs}
        name = lowered.get(authorizers.NAME_PARAMETER) or header.get(authorizers.NAME_PARAMETER)
        if name is None and ("X-Amz-Signature" in params or "x-amz-signature" in lowered):
            return None
        found = self.iot.authorizer(self.account, self.region, name)
        if found is None:
            return None if name is None else authorizers.Verdict(False, reason=f"authorizer {name} not found")
        key = found.get("tokenKeyName")
        token = (header.get(key.lower()) or params.get(key)) if key else None
        signature = header.get(authorizers.SIGNATURE_PARAMETER) or lowered.get(authorizers.SIGNATURE_PARAMETER)
        protocol_data = {"tls": {"serverName": server_name} if server_name else {},
                         "http": {"headers": dict(pairs), "queryString": f"?{query}" if query else ""}}
        verdict = await authorizers.authorize(self.cloud, self.account, self.region, found, token, signature,
                                              protocol_data)
        verdict.request = (found, token, signature, protocol_data)
        return verdict

    def admit(self, client_id: str, verdict: Any, address: str, request: Any = None) -> tuple[bool, str]:
        """A connection a custom authorizer judged: its policy documents decide from now on.
        On unkai's clock it is closed after ``disconnectAfterInSeconds``
        (``CUSTOMAUTH_TTL_EXPIRATION``) and judged again every ``refreshAfterInSeconds``
        (the new policies apply; a refusal closes it), as AWS does."""
        if not verdict.authenticated:
            return False, verdict.reason
        conn = Connection(client_id, "", "", {"iot:ClientId": client_id}, address)
        conn.custom_documents, conn.custom_principal = verdict.documents, verdict.principal_id
        if not self.allowed(conn, "iot:Connect", f"client/{client_id}"):
            return False, "iot:Connect not allowed"
        self.connections[client_id] = conn
        clock = self.cloud.clock
        if verdict.disconnect_after:
            clock.call_later(verdict.disconnect_after, lambda: self._close(conn, "CUSTOMAUTH_TTL_EXPIRATION"))
        request = request or getattr(verdict, "request", None)
        if verdict.refresh_after and request is not None:
            self._schedule_refresh(conn, verdict.refresh_after, request)
        return True, ""

    def _schedule_refresh(self, conn: Connection, delay: int, request: Any) -> None:
        import asyncio

        self.cloud.clock.call_later(delay, lambda: asyncio.ensure_future(self._refresh(conn, request)))

    async def _refresh(self, conn: Connection, request: Any) -> None:
        from unkai.services.iot import authorizers

        if self.connections.get(conn.client_id) is not conn:
            return
        found = self.iot.authorizer(self.account, self.region, request[0]["authorizerName"]) or request[0]
        verdict = await authorizers.authorize(self.cloud, self.account, self.region, found, *request[1:])
        if self.connections.get(conn.client_id) is not conn:
            return
        if not verdict.authenticated:
            self._close(conn, "AUTH_ERROR")
            return
        conn.custom_documents, conn.custom_principal = verdict.documents, verdict.principal_id
        conn.documents = conn.compiled = None
        conn.decisions = {}
        if verdict.refresh_after:
            self._schedule_refresh(conn, verdict.refresh_after, (found, *request[1:]))

    def _close(self, conn: Connection, reason: str) -> None:
        """Close a connection the broker ends itself; its presence event says ``reason``."""
        import asyncio

        if self.amqtt is None or self.connections.get(conn.client_id) is not conn:
            return
        session, handler = self.amqtt._sessions.get(conn.client_id, (None, None))
        if session is None or handler is None:
            return
        log.info("IoT MQTT client %s disconnected: %s", conn.client_id, reason)
        session.iot_disconnect_reason = reason
        asyncio.ensure_future(handler.handle_connection_closed())

    def _just_in_time(self, der: bytes, cert_id: str) -> None:
        from unkai.services.iot.certificates import parse_der
        from unkai.services.iot.model import arn

        cert = parse_der(der)
        for ca_id, pem in self.cloud.store.all(
                "SELECT id, pem FROM iot_ca_certificates WHERE account=? AND region=? AND status='ACTIVE' AND "
                "auto_registration='ENABLE'", (self.account, self.region)):
            from unkai.services.iot.certificates import parse

            if not cert.signed_by(parse(pem)):
                continue
            now = self.cloud.clock.now()
            self.cloud.store.execute(
                "INSERT INTO iot_certificates (account, region, id, arn, pem, status, ca_id, created, updated, "
                "not_before, not_after) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (self.account, self.region, cert_id, arn(self.region, self.account, "cert", cert_id), cert.pem,
                 "PENDING_ACTIVATION", ca_id, now, now, cert.not_before, cert.not_after))
            event = {"certificateId": cert_id, "caCertificateId": ca_id, "timestamp": int(now * 1000),
                     "certificateStatus": "PENDING_ACTIVATION", "awsAccountId": self.account,
                     "certificateRegistrationTimestamp": int(now * 1000)}
            self.data.publish_message(self.account, self.region, f"$aws/events/certificates/registered/{ca_id}",
                                      json.dumps(event).encode(), depth=1)
            return

    def _variables(self, client_id: str, der: bytes, cert_arn: str) -> dict[str, str]:
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        variables = {"iot:ClientId": client_id}
        things = self.iot.certificate_things(self.account, self.region, cert_arn)
        if client_id in things:
            variables["iot:Connection.Thing.ThingName"] = client_id
            variables["iot:Connection.Thing.IsAttached"] = "true"
            row = self.cloud.store.one("SELECT type_name, attributes FROM iot_things WHERE account=? AND region=? "
                                       "AND name=?", (self.account, self.region, client_id))
            if row and row[0]:
                variables["iot:Connection.Thing.ThingTypeName"] = row[0]
            for key, value in (json.loads(row[1]) if row else {}).items():
                variables[f"iot:Connection.Thing.Attributes[{key}]"] = str(value)
        else:
            variables["iot:Connection.Thing.IsAttached"] = "false"
        try:
            subject = x509.load_der_x509_certificate(der).subject
            for attr in subject.get_attributes_for_oid(NameOID.COMMON_NAME):
                variables["iot:Certificate.Subject.CommonName"] = str(attr.value)
        except ValueError:
            pass
        return variables

    def allowed(self, conn: Connection, action: str, resource: str) -> bool:
        if conn.signer is not None:
            return self._iam_allows(conn, action, f"arn:aws:iot:{self.region}:{self.account}:{resource}")
        key = (action, resource)
        found = conn.decisions.get(key)
        if found is not None and conn.documents is not None:
            return found
        if conn.documents is None or conn.compiled is None:
            conn.documents = conn.custom_documents if conn.custom_documents is not None else \
                self.iot.principal_documents(self.account, self.region, conn.cert_arn)
            conn.compiled = security.compile_documents(conn.documents, conn.variables)
            conn.decisions = {}
        found = security.allowed_compiled(conn.compiled, action, f"arn:aws:iot:{self.region}:{self.account}:{resource}")
        if len(conn.decisions) < 1024:
            conn.decisions[key] = found
        return found

    def _iam_allows(self, conn: Connection, action: str, resource: str) -> bool:
        """A SigV4 connection is the signer's IAM identity policies' to allow, as on AWS; they
        are evaluated with ``unkai up --enforce-iam`` (``log``: reported, allowed), and the
        account's root user may do anything."""
        caller = conn.signer.caller
        iam = self.cloud.services.get("iam")
        if caller is None or caller.kind == "root" or iam is None or not iam.enforcing:
            return True
        from unkai.services.iam import policies

        found = iam.principal_policies(caller.account, caller.principal_arn)
        identity, boundary = found if found is not None else ([], None)
        session = [policies.compile_text(caller.policy)] if caller.policy else None
        context = {"aws:PrincipalArn": caller.principal_arn, "aws:PrincipalAccount": caller.account,
                   "aws:userid": caller.user_id, "aws:SecureTransport": "true", "iot:ClientId": conn.client_id}
        decision = policies.evaluate(action, resource, context, identity, None, boundary, session)
        if decision.allowed:
            return True
        iam.denied(caller, action, resource, decision.reason)
        return iam.enforcing != "on"

    def may(self, client_id: str | None, action: str, topic: str) -> bool:
        conn = self.connections.get(client_id or "")
        if conn is None:
            return False
        kind = "topicfilter" if action == "iot:Subscribe" else "topic"
        return self.allowed(conn, action, f"{kind}/{topic}")

    # -- messages ----------------------------------------------------------------------------

    def accept(self, client_id: str, topic: str, payload: bytes, qos: int, retain: bool,
               properties: Any = None) -> bool:
        """A PUBLISH from a client (``properties``: an MQTT 5 client's ``Properties``): False
        closes the connection (not allowed)."""
        from unkai.protocol import ServiceError
        from unkai.services.iot.data import check_topic

        conn = self.connections.get(client_id)
        if conn is None:
            return False
        try:
            check_topic(topic)
        except ServiceError:
            return False
        if not self.allowed(conn, "iot:Publish", f"topic/{topic}"):
            self.cloud.feed.publish("iot.connect", client_id=client_id, status="disconnected",
                                    reason=f"iot:Publish not allowed on {topic}")
            return False
        with self.cloud.store.transaction():
            self.data.publish_message(self.account, self.region, topic, payload, qos, retain, client_id=client_id,
                                      principal=conn.principal, properties=properties)
        return True

    def _deliver(self, account: str, region: str, topic: str, payload: bytes, qos: int, retain: bool,
                 properties: Any = None) -> None:
        if self.amqtt is None or account != self.account or region != self.region:
            return
        self.amqtt.fan_out(topic, payload, qos, properties)

    def retained_for(self, topic_filter: str) -> list[tuple[str, bytes, int, Any]]:
        """The retained messages (not expired) a new subscription to ``topic_filter`` gets,
        with their MQTT 5 properties."""
        return [m for m in self.data.retained(self.account, self.region) if topic_matches(topic_filter, m[0])]

    def presence(self, client_id: str, connected: bool, reason: str = "", conn: Connection | None = None) -> None:
        current = self.connections.get(client_id)
        conn = conn or current
        if conn is None:
            return
        now = self.cloud.clock.now()
        event: dict[str, Any] = {"clientId": client_id, "timestamp": int(now * 1000),
                                 "eventType": "connected" if connected else "disconnected",
                                 "sessionIdentifier": conn.session_id, "principalIdentifier": conn.principal,
                                 "versionNumber": 0}
        if connected:
            event["ipAddress"] = conn.address
        else:
            event["clientInitiatedDisconnect"] = reason == "CLIENT_INITIATED_DISCONNECT"
            event["disconnectReason"] = reason or "CONNECTION_LOST"
            if current is conn:  # not a newer connection that took the client id over
                self.connections.pop(client_id, None)
        self.cloud.feed.publish("iot.connect", client_id=client_id, status=event["eventType"], reason=reason or None)
        kind = "connected" if connected else "disconnected"
        with self.cloud.store.transaction():
            if connected or current is conn:  # a displaced connection leaves the newer one connected
                self.iot.record_connectivity(self.account, self.region, client_id, connected,
                                             "" if connected else reason or "CONNECTION_LOST")
            self.data.publish_message(self.account, self.region, f"$aws/events/presence/{kind}/{client_id}",
                                      json.dumps(event).encode(), depth=1)

