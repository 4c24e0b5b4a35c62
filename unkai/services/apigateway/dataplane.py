"""The data plane: finds the API a request or WebSocket is for (host or path form),
compiles its stage once per configuration change, and hands the call to the REST,
HTTP or WebSocket request handling."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from unkai.feed import TRACE, TRIGGER, trace_root, triggered_by
from unkai.gateway.app import Gateway
from unkai.http import ClientDisconnected, Request, Response
from unkai.localurls import browser_form
from unkai.services.apigateway import domains, http_requests, rest_requests, urls
from unkai.services.apigateway.authorizers import Authorizers
from unkai.services.apigateway.documents import Documents
from unkai.services.apigateway.payloads import Call
from unkai.services.apigateway.integrations import Outbound
from unkai.services.apigateway.limits import Limits
from unkai.services.apigateway.responses import plain

MAX_PAYLOAD = 10 * 1024 * 1024
_CONNECTIONS = re.compile(r"^/[^/]+/@connections(/|$)")


class Target:
    """An API addressed by a request: its id, kind, account, region, stage and path."""

    __slots__ = ("api_id", "kind", "account", "region", "stage", "raw_path")

    def __init__(self, api_id: str, kind: str, account: str, region: str, stage: str, raw_path: str) -> None:
        self.api_id = api_id
        self.kind = kind
        self.account = account
        self.region = region
        self.stage = stage
        self.raw_path = raw_path


class DataPlane:
    def __init__(self, cloud: Any, docs: Documents) -> None:
        from unkai.services.apigateway.websockets import WebSockets

        self.cloud = cloud
        self.docs = docs
        self.limits = Limits(cloud.store, cloud.clock)
        self.outbound = Outbound(cloud.config.endpoint)
        self.authorizers = Authorizers(cloud, self.outbound)
        self.rest = rest_requests.RestRequests(self)
        self.http = http_requests.HttpRequests(self)
        self.websockets = WebSockets(self)
        self._apis: dict[str, tuple[str, str, str, dict]] = {}
        self._stages: dict[tuple[str, str], Any] = {}
        self._domains: dict[tuple[str, str], tuple[str, str] | None] = {}
        self._generation = -1

    def mount(self, gateway: Gateway) -> None:
        gateway.mount(self.accepts, self.handle)
        gateway.internal.route("*", r"/_unkai/execute-api/(?P<api>[a-z0-9]+)(?P<rest>/.*)?", self.handle_path_form,
                               access="public")
        previous = gateway.websocket_handler
        self.websockets.fallback = previous
        gateway.websocket_handler = self.websockets.asgi

    async def stop(self) -> None:
        await self.websockets.close_all()
        await self.outbound.close()

    # -- finding the API ---------------------------------------------------------------

    def _fresh(self) -> None:
        if self._generation != self.docs.generation:
            self._generation = self.docs.generation
            self._apis.clear()
            self._stages.clear()
            self._domains.clear()
            self.outbound.endpoint = self.cloud.config.endpoint

    def api(self, api_id: str) -> tuple[str, str, str, dict] | None:
        """(account, region, kind 'restapi'|'api', doc) for an API id."""
        self._fresh()
        found = self._apis.get(api_id)
        if found is None:
            found = self.docs.locate(api_id, ("restapi", "api"))
            if found is None:
                return None
            self._apis[api_id] = found
        return found

    def custom_domain(self, host: str, path: str) -> tuple[str, str] | None:
        """(API id, path under it) when ``host`` is a custom domain name with API mappings (domains.py)."""
        if not host or ".execute-api." in host or host.split(":", 1)[0].endswith((".amazonaws.com", ".localhost")):
            return None
        self._fresh()
        key = (host.lower(), path)
        if key not in self._domains:
            if len(self._domains) > 1000:
                self._domains.clear()
            self._domains[key] = domains.route(self.docs, host, path)
        return self._domains[key]

    def accepts(self, request: Request) -> bool:
        host = request.headers.get("host") or ""
        if ".execute-api." not in host:
            return self.custom_domain(host, request.raw_path.split("?", 1)[0]) is not None
        parsed = urls.api_from_host(host)
        if parsed is None:
            return False
        # the @connections management API shares the host: leave it to the AWS API routing
        return _CONNECTIONS.match(request.raw_path) is None

    def target(self, api_id: str, raw_path: str) -> Target | None:
        found = self.api(api_id)
        if found is None:
            return None
        account, region, kind, doc = found
        if kind == "api" and doc.get("ProtocolType") == "HTTP" and self.stage_doc(api_id, "$default"):
            return Target(api_id, kind, account, region, "$default", raw_path or "/")
        stage, _, rest = (raw_path or "/").lstrip("/").partition("/")
        return Target(api_id, kind, account, region, stage, "/" + rest)

    def stage_doc(self, api_id: str, stage: str) -> dict | None:
        found = self.api(api_id)
        if found is None:
            return None
        account, region, _, _ = found
        return self.docs.get(account, region, "stage", api_id, stage)

    def compiled(self, target: Target) -> Any:
        """The stage compiled for serving, or None when it does not exist."""
        self._fresh()
        key = (target.api_id, target.stage)
        st = self._stages.get(key)
        if st is None:
            st = self._compile(target)
            if st is None:
                return None
            self._stages[key] = st
        return st

    def _compile(self, t: Target) -> Any:
        a, r = t.account, t.region
        stage = self.docs.get(a, r, "stage", t.api_id, t.stage)
        if stage is None:
            return None
        if t.kind == "restapi":
            deployment = self.docs.get(a, r, "deployment", t.api_id, stage.get("deploymentId", ""))
            if deployment is None:
                return None
            plans = self.docs.list(a, r, "usageplan")
            plan_keys = {p["id"]: [k["id"] for k in self.docs.list(a, r, "usageplankey", p["id"])] for p in plans}
            return rest_requests.compile_stage(a, r, stage, deployment, plans, self.docs.list(a, r, "apikey"),
                                               plan_keys)
        api = self.docs.get(a, r, "api", "", t.api_id)
        return http_requests.compile_stage(a, r, api, stage, self.docs.list(a, r, "route", t.api_id),
                                           self.docs.list(a, r, "integration", t.api_id),
                                           self.docs.list(a, r, "authorizer", t.api_id)) if api else None

    # -- HTTP ---------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        host = request.headers.get("host") or ""
        mapped = self.custom_domain(host, request.raw_path.split("?", 1)[0])
        if mapped is not None:  # a custom domain: its API mapping names the API and stage
            query = request.raw_path.partition("?")[2]
            return await self.serve(request, mapped[0], mapped[1] + (f"?{query}" if query else ""))
        api_id, _ = urls.api_from_host(host)  # type: ignore[misc]
        return await self.serve(request, api_id, request.raw_path)

    async def handle_path_form(self, request: Request, m: re.Match) -> Response:
        rest = request.raw_path[len(urls.PATH_PREFIX) + len(m["api"]):] or "/"
        if _CONNECTIONS.match(rest):  # the @connections API in path form
            request.raw_path = rest
            request._path = None
            if "execute-api" not in (request.headers.get("host") or ""):
                request.headers = _with_host(request, f"{m['api']}.execute-api.{self.cloud.config.region}"
                                                      ".amazonaws.com")
            return await self.cloud.gateway.call_aws(request)
        # A $default stage's URL has no stage segment, but ``/$default/...`` (the stage's name
        # in the path, as older banners printed it) means the same stage here.
        found = self.api(m["api"])
        if (found is not None and rest.split("/", 2)[1] in ("$default", "%24default")
                and found[3].get("ProtocolType") == "HTTP" and self.stage_doc(m["api"], "$default")):
            rest = "/" + rest.split("/", 2)[2] if rest.count("/") >= 2 else "/"
        return await self.serve(request, m["api"], rest)

    async def serve(self, request: Request, api_id: str, raw_path: str) -> Response:
        request_id = str(uuid.uuid4())
        target = self.target(api_id, raw_path)
        if target is None or target.kind == "api" and target_protocol(self.api(api_id)) == "WEBSOCKET":
            return _missing(request_id, http=target is not None and target.kind == "api")
        st = self.compiled(target)
        if st is None:
            return _missing(request_id, http=target.kind == "api")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_PAYLOAD:
            return _too_large(target.kind, request_id)
        try:
            body = await _read_limited(request)
        except _TooLarge:
            return _too_large(target.kind, request_id)
        except ClientDisconnected:
            raise
        call = self._call(request, target, body, request_id)
        started = time.perf_counter()
        label = f"{request.method} {raw_path}"
        token = triggered_by(label)
        traced = TRACE.set(trace_root(request.headers.get("x-amzn-trace-id")) or
                           trace_root(call.extras.get("trace_id")))
        status = 500
        try:
            response = await (self.rest.handle(call, st) if target.kind == "restapi" else self.http.handle(call, st))
            status = response.status
            return response
        finally:
            TRIGGER.reset(token)
            self.cloud.feed.publish(
                "apigateway.request", api_id=api_id, api_kind="rest" if target.kind == "restapi" else "http",
                api_name=st.api.get("name") if target.kind == "restapi" else None, account=target.account,
                region=target.region, stage=target.stage, method=request.method, path=raw_path,
                status=status, latency_ms=round((time.perf_counter() - started) * 1000, 2), request_id=request_id,
                integration_latency_ms=call.extras.get("integration_latency"))
            TRACE.reset(traced)

    def _call(self, request: Request, target: Target, body: bytes, request_id: str) -> Call:
        from urllib.parse import parse_qsl, unquote

        port = self.cloud.config.port
        host = request.headers.get("host") or ""
        if ":" in host:
            tail = host.rsplit(":", 1)[1]
            port = int(tail) if tail.isdigit() else port
        call = Call(
            api_id=target.api_id, stage=target.stage, method=request.method, path=unquote(target.raw_path),
            raw_path=target.raw_path, raw_query=request.query_string, headers=request.headers.raw(),
            query=parse_qsl(request.query_string, keep_blank_values=True), body=body, source_ip=request.client,
            request_id=request_id, extended_id=rest_requests.new_extended_id(), region=target.region,
            account=target.account, epoch=self.cloud.clock.now(), port=port, scheme=request.scheme, host=host,
        )
        call.extras["trace_id"] = rest_requests.trace_id(call.epoch)
        call.extras["request"] = request  # as sent: what an AWS_IAM signature covers
        return call

    # -- what `unkai up` prints ---------------------------------------------------------

    def banner(self) -> list[str]:
        lines = []
        endpoint = self.cloud.config.endpoint
        for kind in ("restapi", "api"):
            for account, region, doc in self.docs.all_of(kind):
                api_id = doc.get("id") or doc.get("ApiId")
                name = doc.get("name") or doc.get("Name")
                websocket = doc.get("ProtocolType") == "WEBSOCKET"
                for stage in self.docs.list(account, region, "stage", api_id):
                    stage_name = stage.get("stageName") or stage.get("StageName")
                    url = urls.local_api_url(endpoint, api_id, stage_name, websocket=websocket)
                    lines.append(f"API        {url}   ({name}; in a browser also {browser_form(url)})")
        return lines


def target_protocol(found: tuple | None) -> str:
    return (found[3].get("ProtocolType") or "") if found else ""


def _with_host(request: Request, host: str) -> Any:
    from unkai.http import Headers

    raw = [(k, v) for k, v in request.headers.raw() if k != "host"] + [("host", host)]
    return Headers([(k.encode("latin-1"), v.encode("latin-1")) for k, v in raw])


class _TooLarge(Exception):
    pass


async def _read_limited(request: Request) -> bytes:
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_PAYLOAD:
            raise _TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _missing(request_id: str, http: bool) -> Response:
    if http:
        return plain(404, "Not Found", request_id)
    return Response(403, [("content-type", "application/json"), ("x-amzn-RequestId", request_id),
                          ("x-amzn-ErrorType", "MissingAuthenticationTokenException")],
                    b'{"message":"Missing Authentication Token"}')


def _too_large(kind: str, request_id: str) -> Response:
    if kind == "api":
        return plain(413, "Request Entity Too Large", request_id)
    return Response(413, [("content-type", "application/json"), ("x-amzn-RequestId", request_id)],
                    b'{"message":"Request Too Long"}')



