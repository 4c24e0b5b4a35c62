"""MQTT over WebSocket with SigV4, as AWS IoT's device endpoint serves it at ``wss://host/mqtt``.

A client (the AWS IoT Device SDK's ``websockets_with_default_aws_signing``, a browser with
a presigned URL) opens ``GET /mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=...
&X-Amz-Date=...&X-Amz-SignedHeaders=host&X-Amz-Signature=...`` with the ``mqtt``
subprotocol. The signature is for the service ``iotdevicegateway``; the session token
(``X-Amz-Security-Token``) is appended after signing, as AWS IoT wants it (the Device SDK
leaves it out of the signature; a URL that signed it is accepted too). The handshake is
refused with 403 when the parameters are missing, the date is more than 15 minutes off
unkai's clock (or past ``X-Amz-Expires``), or, with credentials configured
(``--access-key``/``--secret-key``), the key is unknown or the signature does not hold; the
same rule as the gateway's for every other request. A connection that passes is handed to
amqtt like a TLS one; the signer stands where a certificate would (``Identity``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from unkai.gateway.auth import MAX_SKEW, signing_key

log = logging.getLogger(__name__)

SERVICE = "iotdevicegateway"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_REQUIRED = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Signature")


@dataclass
class Identity:
    """Who signed a WebSocket connection: the access key and, when unkai issued it, the
    STS identity (``None``: the configured pair or any key while signatures are not verified,
    i.e. the account's root user)."""

    access_key: str
    caller: Any = None


class Refused(Exception):
    """The handshake is refused (403) for this reason (logged and in the feed, not sent)."""


def parse_query(query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in query.split("&") if query else []:
        if part:
            key, _, value = part.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs


def canonical_query(pairs: list[tuple[str, str]], omit: tuple[str, ...]) -> str:
    kept = [(quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs if k not in omit]
    return "&".join(f"{k}={v}" for k, v in sorted(kept))


def verify(cloud: Any, path: str, query: str, headers: Any) -> Identity:
    """The signer of a ``GET /mqtt`` handshake, or ``Refused``."""
    pairs = parse_query(query)
    q = dict(pairs)
    missing = [name for name in _REQUIRED if not q.get(name)]
    if missing:
        raise Refused(f"missing {', '.join(missing)}")
    if q["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256":
        raise Refused("X-Amz-Algorithm must be AWS4-HMAC-SHA256")
    parts = q["X-Amz-Credential"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise Refused("malformed X-Amz-Credential")
    access_key, date, region, service = parts[:4]
    if service != SERVICE:
        raise Refused(f"credential scope names {service!r}, not {SERVICE!r}")
    amz_date = q["X-Amz-Date"]
    try:
        signed = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc).timestamp()
    except ValueError:
        raise Refused("malformed X-Amz-Date") from None
    clock = cloud.clock
    now = clock.now()
    # the client signed with the wall clock; unkai's clock may have been advanced since
    offsets = (clock.offset_at(signed), clock.offset_at(signed + 1))
    expires = q.get("X-Amz-Expires")
    if expires is not None:
        if not expires.isdigit():
            raise Refused("X-Amz-Expires must be a number")
        if all(now > signed + offset + int(expires) for offset in offsets):
            raise Refused("the signature has expired (X-Amz-Expires)")
    elif not any(abs(now - (signed + offset)) <= MAX_SKEW for offset in offsets):
        raise Refused("X-Amz-Date is more than 15 minutes from the server's time")
    config = cloud.config
    caller = None
    sts = cloud.services.get("sts")
    if sts is not None and access_key != config.access_key:
        caller = sts.credential(access_key)
    if not config.verify_signatures:
        return Identity(access_key, caller)
    if access_key == config.access_key:
        secret = config.secret_key
    else:
        if caller is None or not caller.active:
            raise Refused(f"unknown access key {access_key}")
        if caller.token and not hmac.compare_digest(q.get("X-Amz-Security-Token", ""), caller.token):
            raise Refused("X-Amz-Security-Token does not belong to the access key")
        if caller.expires is not None and now > caller.expires:
            raise Refused("the credentials have expired")
        secret = caller.secret
    signed_headers = (q.get("X-Amz-SignedHeaders") or "host").lower().split(";")
    canonical_headers = "".join(f"{name}:{' '.join((headers.get(name) or '').split())}\n" for name in signed_headers)
    key = signing_key(secret, date, region, service)
    scope = f"{date}/{region}/{service}/aws4_request"
    for omit in (("X-Amz-Signature", "X-Amz-Security-Token"), ("X-Amz-Signature",)):
        for payload in (EMPTY_SHA256, "UNSIGNED-PAYLOAD"):
            canonical = "\n".join(["GET", quote(path, safe="/~"), canonical_query(pairs, omit), canonical_headers,
                                   ";".join(signed_headers), payload])
            to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                                 hashlib.sha256(canonical.encode()).hexdigest()])
            expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
            if hmac.compare_digest(expected, q["X-Amz-Signature"].lower()):
                return Identity(access_key, caller)
    raise Refused("the signature does not match")


class WebSocketFront:
    """The ``wss://host:port/mqtt`` listener: the SigV4 handshake, then amqtt takes over."""

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.server: Any = None
        self.port: int | None = None
        # peer address -> signer (or a custom authorizer's Verdict), until CONNECT
        self.pending: dict[tuple[str, int], Any] = {}

    async def start(self, host: str, port: int, context: Any) -> None:
        import websockets

        self.server = await websockets.serve(self._connected, host, port, ssl=context,
                                             subprotocols=[websockets.Subprotocol("mqtt")],
                                             process_request=self._handshake, max_size=2 ** 20)
        self.port = next(iter(self.server.sockets)).getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def _handshake(self, connection: Any, request: Any) -> Any:
        from http import HTTPStatus

        path, _, query = request.path.partition("?")
        if path != "/mqtt":
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        # a custom authorizer's handshake: its Lambda judges it now, its policies decide later
        server_name = getattr(connection.transport.get_extra_info("ssl_object"), "iot_server_name", None)
        verdict = await self.broker.authorize_handshake(query, request.headers, server_name)
        if verdict is not None:
            if not verdict.authenticated:
                log.info("IoT WebSocket handshake refused by a custom authorizer: %s", verdict.reason)
                self.broker.cloud.feed.publish("iot.connect", client_id=None, status="refused",
                                               reason=f"custom authorizer: {verdict.reason}")
                return connection.respond(HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
            self.pending[tuple(connection.remote_address[:2])] = verdict
            return None
        try:
            identity = verify(self.broker.cloud, path, query, request.headers)
        except Refused as exc:
            log.info("IoT WebSocket handshake refused: %s", exc)
            self.broker.cloud.feed.publish("iot.connect", client_id=None, status="refused",
                                           reason=f"WebSocket SigV4: {exc}")
            return connection.respond(HTTPStatus.FORBIDDEN, "Forbidden\n")
        self.pending[tuple(connection.remote_address[:2])] = identity
        return None

    async def _connected(self, connection: Any) -> None:
        from unkai.services.iot import mqtt5

        peer = tuple(connection.remote_address[:2])
        try:
            reader, writer = mqtt5.websocket_adapters(connection, self.broker.accept)
            await self.broker.amqtt.external_connected(reader, writer, "ws")
        finally:
            self.pending.pop(peer, None)
