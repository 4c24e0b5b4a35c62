"""WebSocket APIs: the connection lifecycle ($connect with its authorizer, messages
routed by the RouteSelectionExpression, $disconnect), two-way route responses, the
@connections operations, AWS's limits (128 KB messages, 10-minute idle timeout,
2-hour connections, on unkai's clock) and an access-log line per event."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets


from typing import Any

from unkai.services.apigateway import access_logs, payloads, urls
from unkai.services.apigateway.http_requests import identity_values
from unkai.services.apigateway.integrations import IntegrationTimeout, invoke_lambda
from unkai.services.apigateway.responses import GatewayError

log = logging.getLogger("unkai.apigateway")

MAX_MESSAGE = 128 * 1024
IDLE_TIMEOUT = 600.0
MAX_DURATION = 7200.0


class Connection:
    def __init__(self, plane: "WebSockets", api: dict, account: str, region: str, stage: dict, scope: dict,
                 send: Any) -> None:
        self.plane = plane
        self.api = api
        self.api_id = api["ApiId"]
        self.account = account
        self.region = region
        self.stage = stage
        self.stage_name = stage["StageName"]
        self.id = base64.b64encode(secrets.token_bytes(12)).decode().replace("/", "_").replace("+", "-")[:15] + "="
        self.connected_at = plane.cloud.clock.now()
        self.last_active = self.connected_at
        self.send_raw = send
        self.headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", [])]
        self.query = scope.get("query_string", b"").decode("latin-1")
        client = scope.get("client")
        self.source_ip = client[0] if client else "127.0.0.1"
        self.authorizer: dict | None = None
        self.open = False
        self.closing = False
        self.timers: list[Any] = []
        self.tasks: set[asyncio.Task] = set()
        self.lock = asyncio.Lock()

    @property
    def variables(self) -> dict[str, str]:
        return self.stage.get("StageVariables") or {}

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name.lower()), None)

    def identity(self) -> dict[str, Any]:
        return {"sourceIp": self.source_ip, "userAgent": self.header("user-agent")}

    async def send_text(self, data: bytes) -> None:
        async with self.lock:
            try:
                text = data.decode("utf-8")
                await self.send_raw({"type": "websocket.send", "text": text})
            except UnicodeDecodeError:
                await self.send_raw({"type": "websocket.send", "bytes": data})

    def context(self, route_key: str, event_type: str, request_id: str, extended_id: str, epoch: float,
                message_id: str | None = None, **extra: Any) -> dict[str, Any]:
        ctx: dict[str, Any] = {
            "routeKey": route_key, "eventType": event_type, "extendedRequestId": extended_id,
            "requestTime": payloads.request_time(epoch), "stage": self.stage_name,
            "connectedAt": int(self.connected_at * 1000), "requestTimeEpoch": int(epoch * 1000),
            "identity": self.identity(), "requestId": extended_id, "domainName":
                f"{self.api_id}.execute-api.{self.region}.amazonaws.com",
            "connectionId": self.id, "apiId": self.api_id,
        }
        if message_id is not None:
            ctx["messageId"] = message_id
            ctx["messageDirection"] = "IN"
        elif event_type != "MESSAGE":
            ctx["messageDirection"] = "IN"
        if self.authorizer is not None:
            ctx["authorizer"] = self.authorizer
        ctx.update(extra)
        return ctx


def _extended_id() -> str:
    return base64.b64encode(secrets.token_bytes(11)).decode()[:15] + "="


def select_route(expression: str, body: str) -> str | None:
    """The route key a message selects: ``$request.body.action`` (or ``${...}``)."""
    expr = expression.strip()
    if expr.startswith("${") and expr.endswith("}"):
        expr = expr[2:-1]
    if not expr.startswith("$request.body"):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    for part in [p for p in expr[len("$request.body"):].split(".") if p]:
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    if isinstance(data, (dict, list)) or data is None:
        return None
    return str(data).lower() if isinstance(data, bool) else str(data)


class WebSockets:
    def __init__(self, plane: Any) -> None:
        self.plane = plane
        self.cloud = plane.cloud
        self.connections: dict[str, Connection] = {}
        self.fallback: Any = None

    # -- ASGI ---------------------------------------------------------------------------

    def _target(self, scope: dict) -> tuple[str, str] | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path = scope.get("path", "/")
        parsed = urls.api_from_host(headers.get("host", ""))
        if parsed is not None:
            return parsed[0], path
        mapped = self.plane.custom_domain(headers.get("host", ""), path)
        if mapped is not None:  # a custom domain name's API mapping
            return mapped
        if path.startswith(urls.PATH_PREFIX):
            api_id, _, rest = path[len(urls.PATH_PREFIX):].partition("/")
            return api_id, "/" + rest
        return None

    async def asgi(self, scope: dict, receive: Any, send: Any) -> None:
        target = self._target(scope)
        if target is None:
            if self.fallback is not None:
                await self.fallback(scope, receive, send)
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        api_id, path = target
        found = self.plane.api(api_id)
        stage_name = path.strip("/").split("/")[0]
        stage = self.plane.stage_doc(api_id, stage_name) if found else None
        if found is None or found[2] != "api" or found[3].get("ProtocolType") != "WEBSOCKET" or stage is None:
            message = await receive()
            if message["type"] == "websocket.connect":
                await _deny(send, 403, b'{"message":"Forbidden"}')
            return
        account, region, _, api = found
        conn = Connection(self, api, account, region, stage, scope, send)
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        accepted = await self._connect(conn)
        if not accepted:
            return
        self.connections[conn.id] = conn
        self._arm_timers(conn)
        try:
            await self._receive_loop(conn, receive)
        finally:
            await self._finish(conn)

    async def _connect(self, conn: Connection) -> bool:
        routes = self._routes(conn)
        route = routes.get("$connect")
        epoch = self.cloud.clock.now()
        extended = _extended_id()
        status = 200
        headers: list[tuple[bytes, bytes]] = []
        subprotocol = None
        try:
            if route is not None:
                if route.get("AuthorizationType") == "CUSTOM":
                    conn.authorizer = await self._authorize(conn, route, extended, epoch)
                event = self._event(conn, "$connect", "CONNECT", extended, epoch, None)
                result = await self._integrate(conn, route, event)
                if result is not None:
                    status, out_headers, _ = result
                    for k, v in out_headers.items():
                        if k.lower() == "sec-websocket-protocol":
                            subprotocol = v
        except GatewayError as err:
            status = {"UNAUTHORIZED": 401, "ACCESS_DENIED": 403}.get(err.kind, 500)
        except IntegrationTimeout:
            status = 504
        self._access_log(conn, "$connect", "CONNECT", extended, epoch, status, 0)
        if not 200 <= status < 300:
            body = {401: b'{"message":"Unauthorized"}', 403: b'{"message":"Forbidden"}'}.get(
                status, b'{"message": "Internal server error"}')
            await _deny(conn.send_raw, status, body)
            return False
        accept: dict[str, Any] = {"type": "websocket.accept", "headers": headers}
        if subprotocol:
            accept["subprotocol"] = subprotocol
        await conn.send_raw(accept)
        conn.open = True
        return True

    async def _authorize(self, conn: Connection, route: dict, extended: str, epoch: float) -> dict:
        auths = {a["AuthorizerId"]: a for a in self.plane.docs.list(conn.account, conn.region, "authorizer",
                                                                        conn.api_id)}
        auth = auths.get(route.get("AuthorizerId") or "")
        if auth is None:
            raise GatewayError("AUTHORIZER_CONFIGURATION_ERROR")
        call = self._call(conn, extended, epoch)
        sources = auth.get("IdentitySource") or []
        values = identity_values(sources, call, {}, conn.variables, {})
        if sources and not all(values):
            raise GatewayError("UNAUTHORIZED")
        method_arn = f"arn:aws:execute-api:{conn.region}:{conn.account}:{conn.api_id}/{conn.stage_name}/$connect"
        query = payloads._single(call.query)
        event = {"type": "REQUEST", "methodArn": method_arn,
                 "headers": {payloads.title_case(k): v for k, v in conn.headers},
                 "multiValueHeaders": payloads._multi([(payloads.title_case(k), v) for k, v in conn.headers]),
                 "queryStringParameters": query, "multiValueQueryStringParameters": payloads._multi(call.query),
                 "stageVariables": conn.variables or None,
                 "requestContext": conn.context("$connect", "CONNECT", extended, extended, epoch)}
        ttl = int(auth.get("AuthorizerResultTtlInSeconds") or 0) if sources else 0
        return await self.plane.authorizers.policy_authorizer(
            api_id=conn.api_id, stage=conn.stage_name, auth=auth, identity=tuple(values), event=event,
            method_arn=method_arn, stage_variables=conn.variables, ttl=ttl)

    def _call(self, conn: Connection, extended: str, epoch: float) -> payloads.Call:
        from urllib.parse import parse_qsl

        return payloads.Call(api_id=conn.api_id, stage=conn.stage_name, method="GET", path="/", raw_path="/",
                           raw_query=conn.query, headers=conn.headers,
                           query=parse_qsl(conn.query, keep_blank_values=True), body=b"", source_ip=conn.source_ip,
                           request_id=extended, extended_id=extended, region=conn.region, account=conn.account,
                           epoch=epoch)

    async def _receive_loop(self, conn: Connection, receive: Any) -> None:
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                conn.open = False
                conn.close_code = message.get("code", 1005)
                conn.close_reason = message.get("reason") or ""
                return
            if kind != "websocket.receive":
                continue
            data = message.get("text")
            raw = data.encode() if data is not None else (message.get("bytes") or b"")
            conn.last_active = self.cloud.clock.now()
            if len(raw) > MAX_MESSAGE:
                await self.close(conn, 1009, "Message too big")
                conn.close_code, conn.close_reason = 1009, "Message too big"
                return
            task = asyncio.create_task(self._message(conn, raw, data is None))
            conn.tasks.add(task)
            task.add_done_callback(conn.tasks.discard)

    async def _message(self, conn: Connection, raw: bytes, binary: bool) -> None:
        epoch = self.cloud.clock.now()
        extended = _extended_id()
        message_id = _extended_id()
        text = raw.decode("utf-8", "replace")
        routes = self._routes(conn)
        key = select_route(conn.api.get("RouteSelectionExpression", ""), text)
        route = routes.get(key) if key is not None else None
        if route is None:
            route = routes.get("$default")
        route_key = route["RouteKey"] if route else "-"
        status = 200
        try:
            if route is None:
                status = 403
                await conn.send_text(json.dumps({"message": "Forbidden", "connectionId": conn.id,
                                                 "requestId": extended}).encode())
                return
            settings = (conn.stage.get("RouteSettings") or {}).get(route_key) or {}
            default = conn.stage.get("DefaultRouteSettings") or {}
            if not self.plane.limits.allow(("ws", conn.api_id, conn.stage_name, route_key),
                                           settings.get("ThrottlingRateLimit", default.get("ThrottlingRateLimit")),
                                           settings.get("ThrottlingBurstLimit",
                                                        default.get("ThrottlingBurstLimit"))):
                status = 429
                await conn.send_text(json.dumps({"message": "Too Many Requests", "connectionId": conn.id,
                                                 "requestId": extended}).encode())
                return
            event = self._event(conn, route_key, "MESSAGE", extended, epoch, message_id,
                                body=base64.b64encode(raw).decode() if binary else text, binary=binary)
            try:
                result = await self._integrate(conn, route, event)
            except (GatewayError, IntegrationTimeout):
                status = 500
                if conn.open:
                    await conn.send_text(json.dumps({"message": "Internal server error", "connectionId": conn.id,
                                                     "requestId": extended}).encode())
                return
            if result is not None:
                status = result[0]
                if route.get("RouteResponseSelectionExpression") and result[2] is not None and conn.open:
                    await conn.send_text(result[2])
        except Exception:  # the socket went away mid-message: nothing to answer
            log.debug("websocket message on %s failed", conn.id, exc_info=True)
        finally:
            self._access_log(conn, route_key, "MESSAGE", extended, epoch, status, len(raw))

    async def _finish(self, conn: Connection) -> None:
        self.connections.pop(conn.id, None)
        for timer in conn.timers:
            timer.cancel()
        for task in list(conn.tasks):
            if not task.done():
                try:
                    await asyncio.wait_for(asyncio.shield(task), 30)
                except Exception:
                    pass
        routes = self._routes(conn)
        route = routes.get("$disconnect")
        epoch = self.cloud.clock.now()
        extended = _extended_id()
        status = 200
        if route is not None:
            event = self._event(conn, "$disconnect", "DISCONNECT", extended, epoch, None,
                                disconnectStatusCode=getattr(conn, "close_code", 1005),
                                disconnectReason=getattr(conn, "close_reason", ""))
            try:
                result = await self._integrate(conn, route, event)
                status = result[0] if result else 200
            except (GatewayError, IntegrationTimeout):
                status = 500
        self._access_log(conn, "$disconnect", "DISCONNECT", extended, epoch, status, 0)

    # -- routes, events, integrations -------------------------------------------------------

    def _routes(self, conn: Connection) -> dict[str, dict]:
        return {r["RouteKey"]: r for r in self.plane.docs.list(conn.account, conn.region, "route", conn.api_id)}

    def _event(self, conn: Connection, route_key: str, event_type: str, extended: str, epoch: float,
               message_id: str | None, body: str | None = None, binary: bool = False, **extra: Any) -> dict:
        ctx = conn.context(route_key, event_type, extended, extended, epoch, message_id, **extra)
        if event_type == "MESSAGE":
            return {"requestContext": ctx, "body": body, "isBase64Encoded": binary}
        headers = {payloads.title_case(k): v for k, v in conn.headers}
        multi = payloads._multi([(payloads.title_case(k), v) for k, v in conn.headers])
        event: dict[str, Any] = {"headers": headers, "multiValueHeaders": multi}
        if event_type == "CONNECT":
            from urllib.parse import parse_qsl

            pairs = parse_qsl(conn.query, keep_blank_values=True)
            if pairs:
                event["queryStringParameters"] = payloads._single(pairs)
                event["multiValueQueryStringParameters"] = payloads._multi(pairs)
        event["requestContext"] = ctx
        event["isBase64Encoded"] = False
        return event

    async def _integrate(self, conn: Connection, route: dict, event: dict) -> tuple[int, dict, bytes | None] | None:
        """Run the route's integration: (status, headers, body to send back) or None."""
        target = (route.get("Target") or "").removeprefix("integrations/")
        integration = self.plane.docs.get(conn.account, conn.region, "integration", conn.api_id, target) \
            if target else None
        if integration is None:
            return None
        kind = integration.get("IntegrationType")
        if kind == "MOCK":
            return 200, {}, None
        if kind not in ("AWS_PROXY", "AWS"):
            raise GatewayError("API_CONFIGURATION_ERROR")
        timeout = (integration.get("TimeoutInMillis") or 29000) / 1000.0
        result = await invoke_lambda(self.cloud, integration.get("IntegrationUri", ""), json.dumps(event).encode(),
                                     timeout, conn.variables)
        if result.function_error:
            raise GatewayError("INTEGRATION_FAILURE")
        try:
            out = result.json()
        except ValueError:
            return 200, {}, result.payload
        if isinstance(out, dict) and ("statusCode" in out or "body" in out):
            try:
                status = int(out.get("statusCode", 200))
            except (TypeError, ValueError):
                raise GatewayError("INTEGRATION_FAILURE") from None
            body = out.get("body")
            data = None if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()
            if data is not None and out.get("isBase64Encoded"):
                data = base64.b64decode(data)
            return status, dict(out.get("headers") or {}), data
        return 200, {}, result.payload if out is not None else None

    def _access_log(self, conn: Connection, route_key: str, event_type: str, extended: str, epoch: float,
                    status: int, length: int) -> None:
        settings = conn.stage.get("AccessLogSettings")
        if not settings:
            return
        ctx = conn.context(route_key, event_type, extended, extended, epoch)
        ctx.update(status=status, httpMethod="GET" if event_type == "CONNECT" else "-",
                   identity={"sourceIp": conn.source_ip, "userAgent": conn.header("user-agent")},
                   protocol="HTTP/1.1" if event_type == "CONNECT" else "websocket", responseLength=length,
                   integrationLatency="-")
        access_logs.write(self.cloud, conn.account, conn.region, settings, ctx, conn.variables, conn.api_id,
                          conn.stage_name)

    # -- timers and the @connections operations ------------------------------------------------

    def _arm_timers(self, conn: Connection) -> None:
        clock = self.cloud.clock

        def idle() -> None:
            if conn.id not in self.connections:
                return
            due = conn.last_active + IDLE_TIMEOUT
            if clock.now() >= due:
                asyncio.ensure_future(self.close(conn, 1001, "Going away"))
            else:
                conn.timers.append(clock.call_at(due, idle))

        conn.timers.append(clock.call_at(conn.connected_at + IDLE_TIMEOUT, idle))
        conn.timers.append(clock.call_at(conn.connected_at + MAX_DURATION,
                                         lambda: asyncio.ensure_future(self.close(conn, 1001, "Going away"))))

    async def close(self, conn: Connection, code: int = 1000, reason: str = "") -> None:
        if conn.closing:
            return
        conn.closing = True
        conn.close_code, conn.close_reason = code, reason
        try:
            async with conn.lock:
                await conn.send_raw({"type": "websocket.close", "code": code, "reason": reason})
        except Exception:
            pass

    def find(self, connection_id: str) -> Connection | None:
        conn = self.connections.get(connection_id)
        return conn if conn is not None and conn.open and not conn.closing else None

    async def close_all(self) -> None:
        for conn in list(self.connections.values()):
            await self.close(conn, 1001, "Going away")


async def _deny(send: Any, status: int, body: bytes) -> None:
    await send({"type": "websocket.http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "websocket.http.response.body", "body": body})



