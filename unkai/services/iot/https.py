"""The device HTTPS endpoint ("the IoT HTTP protocol"): what AWS IoT serves on port 8443 to
devices that authenticate with their X.509 certificate instead of SigV4.

``POST /topics/{topic}?qos=0|1&retain=true|false`` publishes (through the one publish
path, so rules, retained messages and shadow requests behave as for MQTT); ``GET``,
``POST`` and ``DELETE /things/{thing}/shadow[?name=...]`` read, update and delete shadows.
The certificate must be registered and ACTIVE and its policies must allow ``iot:Publish``
on the topic (``iot:GetThingShadow`` / ``UpdateThingShadow`` / ``DeleteThingShadow`` on
``thing/{thing}`` for shadows); otherwise 403 ``{"message": "Forbidden"}``, as AWS answers.
Started with the MQTT broker, on a port of its own, with the broker's TLS settings. HTTP
parsing is h11's (uvicorn's own dependency).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import ssl
import uuid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from unkai.protocol import ServiceError

log = logging.getLogger(__name__)
MAX_BODY = 128 * 1024


class DeviceHttps:
    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.server: asyncio.AbstractServer | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int, context: ssl.SSLContext) -> None:
        self.server = await asyncio.start_server(self._connection, host, port, ssl=context)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import h11

        conn = h11.Connection(h11.SERVER)
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        try:
            while True:
                request, body = None, b""
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        data = await asyncio.wait_for(reader.read(65536), 30)
                        conn.receive_data(data)
                        continue
                    if isinstance(event, h11.Request):
                        request = event
                    elif isinstance(event, h11.Data):
                        body += event.data
                        if len(body) > MAX_BODY:
                            raise ValueError("body too large")
                    elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                        break
                if request is None:
                    return
                headers = {k.decode().lower(): v.decode("latin-1") for k, v in request.headers}
                verdict = None
                if not der:  # a custom authorizer's request (its name, token and signature in headers or query)
                    verdict = await self.broker.authorize_handshake(
                        urlsplit(request.target.decode()).query, headers,
                        getattr(writer.get_extra_info("ssl_object"), "iot_server_name", None))
                status, answer = self.handle(request.method.decode(), request.target.decode(), body, der, headers,
                                             verdict)
                payload = json.dumps(answer).encode() if not isinstance(answer, bytes) else answer
                writer.write(conn.send(h11.Response(status_code=status, headers=[
                    ("content-type", "application/json"), ("content-length", str(len(payload)))])))
                writer.write(conn.send(h11.Data(data=payload)))
                writer.write(conn.send(h11.EndOfMessage()))
                await writer.drain()
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (h11.RemoteProtocolError, ValueError, asyncio.TimeoutError, ConnectionError, ssl.SSLError):
            return
        finally:
            writer.close()

    def handle(self, method: str, target: str, body: bytes, der: bytes | None,
               headers: dict[str, str] | None = None, verdict: Any = None) -> tuple[int, Any]:
        """One request, authenticated by the device's certificate or, without one, by a custom
        authorizer's ``verdict`` (its policy documents decide)."""
        from unkai.services.iot.broker import Connection

        trace = str(uuid.uuid4())
        forbidden = (403, {"message": "Forbidden", "traceId": trace})
        broker = self.broker
        if not der:
            if verdict is None or not verdict.authenticated:
                return forbidden
            conn = Connection("", "", "", {}, "")
            conn.custom_documents, conn.custom_principal = verdict.documents, verdict.principal_id
        else:
            cert_id = hashlib.sha256(der).hexdigest()
            row = broker.cloud.store.one("SELECT arn, status FROM iot_certificates WHERE account=? AND region=? "
                                         "AND id=?", (broker.account, broker.region, cert_id))
            if row is None or row[1] != "ACTIVE":
                return forbidden
            conn = Connection("", cert_id, row[0], broker._variables("", der, row[0]), "")
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [unquote(p) for p in url.path.split("/")[1:]]
        data = broker.data
        try:
            with broker.cloud.store.transaction():
                if method == "POST" and parts[:1] == ["topics"] and len(parts) > 1:
                    topic = "/".join(parts[1:])
                    if not broker.allowed(conn, "iot:Publish", f"topic/{topic}"):
                        return forbidden
                    from unkai.services.iot.data import check_topic

                    check_topic(topic)
                    qos = int(query.get("qos") or 0)
                    data.publish_message(broker.account, broker.region, topic, body, qos,
                                         query.get("retain") == "true", principal=conn.principal,
                                         properties=_properties(query, headers or {}))
                    return 200, {"message": "OK", "traceId": trace}
                if len(parts) == 3 and parts[0] == "things" and parts[2] == "shadow":
                    thing, name = parts[1], query.get("name")
                    action = {"GET": "GetThingShadow", "POST": "UpdateThingShadow",
                              "DELETE": "DeleteThingShadow"}.get(method)
                    if action is None:
                        return 405, {"message": "Method Not Allowed", "traceId": trace}
                    if not broker.allowed(conn, f"iot:{action}", f"thing/{thing}"):
                        return forbidden
                    if method == "GET":
                        return 200, data.get_shadow(broker.account, broker.region, thing, name)
                    if method == "POST":
                        return 200, data.update_shadow(broker.account, broker.region, thing, name, body)
                    return 200, data.delete_shadow(broker.account, broker.region, thing, name)
        except ServiceError as exc:
            return exc.status or 400, {"message": exc.message, "traceId": trace}
        return 404, {"message": "Not Found", "traceId": trace}


def _properties(query: dict[str, str], headers: dict[str, str]) -> Any:
    """A publish's MQTT 5 properties as iot-data Publish takes them: ``contentType``,
    ``responseTopic`` and ``messageExpiry`` in the query, the user properties (base64 JSON),
    payload format indicator and correlation data in ``x-amz-mqtt5-*`` headers."""
    import base64
    import binascii

    from unkai.services.iot import errors
    from unkai.services.iot.properties import InvalidProperties, Properties

    params: dict[str, Any] = {k: query[k] for k in ("contentType", "responseTopic") if k in query}
    try:
        if "messageExpiry" in query:
            params["messageExpiry"] = int(query["messageExpiry"])
        if "x-amz-mqtt5-user-properties" in headers:
            params["userProperties"] = base64.b64decode(headers["x-amz-mqtt5-user-properties"]).decode()
        if "x-amz-mqtt5-payload-format-indicator" in headers:
            params["payloadFormatIndicator"] = headers["x-amz-mqtt5-payload-format-indicator"]
        if "x-amz-mqtt5-correlation-data" in headers:
            params["correlationData"] = headers["x-amz-mqtt5-correlation-data"]
        return Properties.from_publish(params)
    except (InvalidProperties, ValueError, binascii.Error) as exc:
        raise errors.invalid(str(exc)) from None
