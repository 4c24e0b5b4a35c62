"""The gateway: one ASGI app on one port for every AWS API, unkai's own endpoints
and whatever services mount (API Gateway stages, S3 websites)."""

from __future__ import annotations

import inspect
import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from unkai.feed import TRACE, trace_root
from unkai.gateway.auth import Authorizer
from unkai.gateway.internal import InternalRoutes
from unkai.gateway.origin import OriginPolicy, refused_origin
from unkai.ids import uuid4
from unkai.gateway.routing import Router
from unkai.http import BodyTooLarge, ClientDisconnected, Request, Response
from unkai.protocol import PROTOCOLS, ParamError, SerializationError, ServiceError, streaming_input
from unkai.services import RequestContext

if TYPE_CHECKING:
    from unkai.cloud import Cloud

log = logging.getLogger("unkai.gateway")

MAX_BODY = 64 * 1024 * 1024  # for non-streaming operations; streaming ones read as they go

Predicate = Callable[[Request], bool]
Handler = Callable[[Request], Awaitable[Response]]


class Gateway:
    def __init__(self, cloud: "Cloud") -> None:
        self.cloud = cloud
        self.router = Router(list(cloud.services), cloud.config.region)
        self.internal = InternalRoutes(cloud)
        self.origins: OriginPolicy = self.internal.origins  # Host and Origin rules (gateway/origin.py)
        self.mounts: list[tuple[Predicate, Handler]] = []
        self._routed_hosts: dict[str, bool] = {}  # Host header -> whether it may name a mounted route
        self.websocket_handler: Callable[[dict, Any, Any], Awaitable[None]] | None = None
        # Checks signatures (and presigned URLs' expiry) before an operation runs.
        self.authorizer: Callable[[Request, Any, bytes | None], Awaitable[None] | None] | None = \
            Authorizer(cloud.config, cloud.clock)

    def mount(self, predicate: Predicate, handler: Handler) -> None:
        """Serve requests ``predicate`` accepts with ``handler`` (before the AWS APIs)."""
        self.mounts.append((predicate, handler))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            request = Request.from_scope(scope, receive)
            try:
                response = self.origins.refuse_host(request) or await self.handle(request)
            except ClientDisconnected:
                return
            if request.body_unread and "100-continue" in (request.headers.get("expect") or "").lower():
                # Answered before the client sent the body it announced (an early error): the
                # connection cannot be reused, or that body would be read as the next request.
                response.headers.append(("connection", "close"))
            body = response.body
            if isinstance(body, bytes) and "extensions" in scope:  # the server writes it whole, in one go
                respond = scope["extensions"].get("unkai.respond")
                if respond is not None and respond(response.status, response.headers, body,
                                                   request.method == "HEAD"):
                    return
            await response.send(send, head_only=request.method == "HEAD")
        elif kind == "websocket":
            host = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"), "")
            if self.cloud.services.routes_asleep:
                self.cloud.services.wake_routes()  # the websocket handler is a service's (unkai/cloud.py)
            if self.websocket_handler is None or not self.origins.host_allowed(host):
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.websocket_handler(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def handle(self, request: Request) -> Response:
        if self.cloud.services.routes_asleep and self._may_be_routed(request):
            self.cloud.services.wake_routes()  # services load on first use: their mounts first (unkai/cloud.py)
        if request.raw_path.startswith(("/_unkai/", "/moto-api/")):  # moto's reset, for moto-style suites
            return await self.internal.handle(request)
        for predicate, handler in self.mounts:
            if predicate(request):
                return await handler(request)
        return await self.call_aws(request)

    def _may_be_routed(self, request: Request) -> bool:
        """Whether a request may be for a route a service mounts (its own host name, a CORS
        preflight, a browser's form POST, an /_unkai/ page no route here serves yet), so the
        services with routes of their own must be loaded before it is matched; a plain API
        call is not (unkai/cloud.py)."""
        path = request.raw_path
        if path.startswith("/_unkai/"):
            path = request.path
            return not any(regex.match(path) for _, regex, _, _ in self.internal.routes)
        if request.method == "OPTIONS" or "multipart/form-data" in (request.headers.get("content-type") or ""):
            return True
        header = request.headers.get("host") or ""
        found = self._routed_hosts.get(header)
        if found is None:  # worked out once per Host value: clients send the same few
            host = header if header.endswith("]") else header.rsplit(":", 1)[0]
            host = host.strip("[]").lower()
            found = not (host in ("", "localhost", "127.0.0.1", "::1", "0.0.0.0") or host.replace(".", "").isdigit())
            if len(self._routed_hosts) >= 1024:
                self._routed_hosts.clear()
            self._routed_hosts[header] = found
        return found

    async def call_aws(self, request: Request) -> Response:
        # A traced caller (boto3 in a function sends X-Amzn-Trace-Id) keeps its trace in what it causes.
        header = request.headers.get("x-amzn-trace-id")
        root = trace_root(header) if header else ""
        traced = TRACE.set(root) if root else None
        try:
            response = await self._call_aws(request)
        finally:
            if traced is not None:
                TRACE.reset(traced)
        route = request.state.get("route")
        if route is not None:  # e.g. S3 adds the CORS headers its bucket's rules grant
            finish = getattr(self.cloud.services[route.service], "finish_response", None)
            if finish is not None:
                finish(request, response)
        return response

    async def _call_aws(self, request: Request) -> Response:
        request_id = uuid4()
        route = None
        op = None
        try:
            body = None
            if request.method == "POST" and "x-www-form-urlencoded" in request.headers.get("content-type", ""):
                body = await self._read_body(request)
            route = self.router.resolve(request, _inflated(request, body))
            if route is None:
                return _unknown_service(request_id)
            request.state["route"] = route
            service = self.cloud.services[route.service]
            rewrite = getattr(service, "rewrite_request", None)
            if rewrite is not None:
                rewrite(request)
            if body is not None and service.max_body and len(body) > service.max_body:
                raise _too_large(service.max_body)  # a form body, read before the service was known
            foreign = self.origins.foreign_origin(request)
            if foreign is not None and not service.allows_origin(request, foreign):
                raise ServiceError("AccessDeniedException" if route.protocol in ("json", "rest-json", "cbor")
                                   else "AccessDenied",
                                   refused_origin(foreign), status=403)
            protocol = PROTOCOLS[route.protocol]
            if body is None and protocol.needs_body_to_route():
                body = await self._read_body(request, service.max_body)
            op = protocol.find_operation(route.model, request, body)
            if op is None:
                raise _unknown_operation(route.protocol, request)
            streaming = _STREAMING.get(op)
            if streaming is None:
                streaming = _STREAMING[op] = streaming_input(op)
            if body is None and not streaming:
                body = await self._read_body(request, service.max_body)
            if self.authorizer is not None and not (route.signature is None
                                                    and op.name in service.anonymous_operations):
                outcome = self.authorizer(request, route, body)
                if outcome is not None and inspect.isawaitable(outcome):
                    await outcome
            params = protocol.parse(op, request, _inflated(request, body))  # signed as sent, parsed as meant
            handler = service.handler(op.name)
            ctx = RequestContext(
                service=route.service, operation=op.name, region=route.region,
                account=self.cloud.config.account_id, request_id=request_id, request=request,
                protocol=route.protocol, access_key=route.signature.access_key if route.signature else "",
            )
            if handler is None:  # validation came first (parse); then AWS's not-found, if any
                service.check_unimplemented(ctx, op.name, params)
                raise ServiceError(
                    "NotImplemented", f"unkai does not implement {route.service}:{op.name} yet.", status=501
                )
            if self.cloud.config.enforce_iam:  # `unkai up --enforce-iam`: IAM's decision first
                from unkai.services.iam.enforcement import check

                check(self.cloud, ctx, params)
            if _is_async(handler):
                result = await handler(ctx, params)
            else:
                with self.cloud.store.transaction():
                    result = handler(ctx, params)
            if isinstance(result, Response):
                return result
            return protocol.serialize(op, result, request_id)
        except SerializationError as exc:
            if route is None:
                return _error(None, "query", exc, request_id)
            error = self.cloud.services[route.service].serialization_error(exc, route.protocol)
            return _error(route, route.protocol, error, request_id, op)
        except ParamError as exc:
            if route is None:
                return _error(None, "query", ServiceError("InvalidParameterValue", exc.message), request_id)
            error = self.cloud.services[route.service].param_error(exc, route.protocol)
            return _error(route, route.protocol, error, request_id, op)
        except ServiceError as exc:
            return _error(route, route.protocol if route else "query", exc, request_id, op)
        except ClientDisconnected:
            raise
        except (RecursionError, UnicodeError) as exc:
            # input no parser or service should hold: nested past Python's limit, or text that is
            # not Unicode (a lone surrogate): the sender's fault, never a 500
            bad = SerializationError("The request is nested too deeply." if isinstance(exc, RecursionError)
                                     else "The request holds text that is not valid Unicode.")
            if route is None:
                return _error(None, "query", bad, request_id)
            error = self.cloud.services[route.service].serialization_error(bad, route.protocol)
            return _error(route, route.protocol, error, request_id, op)
        except Exception:
            log.error("internal error in %s:\n%s", route.service if route else "?", traceback.format_exc())
            error = ServiceError("InternalFailure", "The request processing has failed because of an unknown "
                                 "error, exception or failure.", status=500, sender_fault=False)
            return _error(route, route.protocol if route else "query", error, request_id, op)

    async def _read_body(self, request: Request, limit: int | None = None) -> bytes:
        """The body, refused past ``limit`` (the service's ``max_body``, else MAX_BODY) while it
        is read, so a huge chunked body is never held whole."""
        limit = limit or MAX_BODY
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            raise _too_large(limit)
        try:
            return await request.body(limit)
        except BodyTooLarge:
            raise _too_large(limit) from None


def _too_large(limit: int) -> ServiceError:
    return ServiceError("RequestEntityTooLarge", f"Request must be smaller than {limit} bytes.", status=413)


INFLATED_LIMIT = 16 * 1024 * 1024  # what a gzipped JSON or query body may inflate to


def _inflated(request: Request, body: bytes | None) -> bytes | None:
    """A JSON or query body botocore gzipped (the model's ``requestcompression`` trait,
    e.g. CloudWatch's PutMetricData), decompressed; S3 keeps Content-Encoding as metadata."""
    if not body or "content-encoding" not in request.headers \
            or request.headers["content-encoding"].strip().lower() != "gzip":
        return body
    route = request.state.get("route")
    if route is None or route.protocol in ("json", "query"):
        cached = request.state.get("inflated")
        if cached is None:
            import zlib

            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                cached = inflater.decompress(body, INFLATED_LIMIT)
            except zlib.error:
                raise SerializationError("The request body could not be decompressed (Content-Encoding: gzip).") \
                    from None
            if inflater.unconsumed_tail:  # a decompression bomb is refused, not inflated
                raise _too_large(INFLATED_LIMIT)
            request.state["inflated"] = cached
        return cached
    return body


_ASYNC: dict[Any, bool] = {}
_STREAMING: dict[Any, bool] = {}  # operation model -> streaming_input(op): models are loaded once


def _is_async(handler: Any) -> bool:
    func = getattr(handler, "__func__", handler)
    found = _ASYNC.get(func)
    if found is None:
        found = _ASYNC[func] = inspect.iscoroutinefunction(func)
    return found


def _error(route: Any, protocol: str, error: ServiceError, request_id: str, op: Any = None) -> Response:
    model = route.model if route is not None else None
    return PROTOCOLS[protocol].serialize_error(model, error, request_id, op)


def _unknown_operation(protocol: str, request: Request) -> ServiceError:
    if protocol == "query":
        action = request.state.get("query_action") or request.query_dict().get("Action") or ""
        return ServiceError("InvalidAction", f"The action {action} is not valid for this web service.")
    if protocol in ("json", "cbor"):
        return ServiceError("UnknownOperationException", "")
    return ServiceError("NotImplemented", "This operation is not implemented.", status=501)


def _unknown_service(request_id: str) -> Response:
    body = (
        '<?xml version="1.0"?><ErrorResponse><Error><Type>Sender</Type><Code>NotImplemented</Code>'
        "<Message>unkai does not serve the service this request is addressed to.</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    return Response(501, [("content-type", "text/xml"), ("x-amzn-requestid", request_id)], body)
