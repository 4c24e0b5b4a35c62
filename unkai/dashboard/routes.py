"""The dashboard's routes under ``/_unkai/``, added to unkai's own endpoints
(``unkai/gateway/internal.py``) with the control plane's access rule: same origin only,
the Host checked by the gateway, and with credentials configured the control token
(which a browser carries as the ``unkai_token`` cookie that ``/_unkai/ui/login?token=``
sets; ``unkai open`` opens that URL). Pages and actions read and change the cloud
through the services' own operations, never the state directory's files."""

from __future__ import annotations

import hmac
import logging
import re
from importlib import resources as package_files
from typing import TYPE_CHECKING, Any

from unkai.dashboard import apis, buckets, flow, functions, live, mail, messaging, metrics, overview, tables
from unkai.dashboard.html import CSP, e, html_response, page
from unkai.http import ClientDisconnected, Request, Response

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from unkai.cloud import Cloud
    from unkai.gateway.internal import InternalRoutes

COOKIE = "unkai_token"
STATIC = {"dashboard.js": "text/javascript; charset=utf-8", "dashboard.css": "text/css; charset=utf-8"}
NAME = r"(?P<name>[^/]+)"


class Dashboard:
    """What every view handler gets: the cloud and the region it shows."""

    def __init__(self, cloud: "Cloud") -> None:
        self.cloud = cloud
        self._static: dict[str, bytes] = {}

    @property
    def region(self) -> str:
        stack = self.cloud.stack
        return stack.region if stack is not None else self.cloud.config.region

    def live(self, **extra: Any) -> dict:
        """What a page's script needs: where the feed stands now."""
        return {"last": self.cloud.feed.last_id, **extra}

    def bind(self, handler: Any) -> Any:
        async def bound(request: Request, m: re.Match) -> Response:
            try:
                return await handler(self, request, m)
            except ClientDisconnected:
                raise
            except Exception as exc:  # a view's bug: say so on the page, never a bare 500
                log.exception("dashboard view %s failed", request.path)
                if request.method != "GET":
                    return Response.json({"message": f"the dashboard failed: {type(exc).__name__}: {exc}"}, 500)
                return page("Something went wrong", "", f"<p class=\"bad\">This view failed: "
                            f"{e(type(exc).__name__)}: {e(exc)}. unkai's log has the details.</p>")
        return bound

    async def static(self, request: Request, m: re.Match) -> Response:
        name = m["name"]
        if name not in STATIC:
            return Response.json({"message": "no such file"}, 404)
        if name not in self._static:
            self._static[name] = (package_files.files("unkai.dashboard") / "static" / name).read_bytes()
        return Response(200, [("content-type", STATIC[name]), ("cache-control", "no-cache"),
                              ("x-content-type-options", "nosniff")], self._static[name])

    async def login(self, request: Request, m: re.Match) -> Response:
        """``?token=T``: keep the control token in a same-site, script-proof cookie and go to
        the overview (what ``unkai open`` opens when credentials are configured)."""
        token = request.query_dict().get("token", "")
        expected = self.cloud.config.control_token or ""
        if not self.cloud.config.verify_signatures:
            return _redirect("/_unkai/")
        if not token or not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            return html_response("<!doctype html><title>unkai</title><p>That is not the control token unkai "
                                 "printed at start. Run <code>unkai open</code>.</p>", 403)
        return _redirect("/_unkai/", [("set-cookie", f"{COOKIE}={e(token)}; Path=/; HttpOnly; SameSite=Strict")])

    async def events(self, request: Request, m: re.Match) -> Response:
        return live.events(request, self.cloud.feed)


def _redirect(to: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(303, [("location", to), ("content-security-policy", CSP)] + (headers or []), b"")


def cookie_token(request: Request) -> str:
    """The control token a browser sent as the dashboard's cookie, or ''."""
    for part in (request.headers.get("cookie") or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == COOKIE:
            return value
    return ""


def register(internal: "InternalRoutes") -> Dashboard:
    """Add the dashboard's routes to unkai's endpoints."""
    dash = Dashboard(internal.cloud)
    b = dash.bind
    route = internal.route
    route("GET", r"/_unkai/ui/login", dash.login, access="local")
    route("GET", r"/_unkai/ui/static/(?P<name>[a-z.]+)", dash.static, access="local")
    route("GET", r"/_unkai", b(overview.overview))
    route("GET", r"/_unkai/ui/events", dash.events)
    route("GET", r"/_unkai/ui/flow", b(flow.view))
    route("GET", r"/_unkai/ui/flow\.json", b(flow.graph_json))
    route("GET", r"/_unkai/ui/trace/(?P<trace>[^/]+)", b(flow.trace))
    route("GET", r"/_unkai/ui/functions", b(functions.index))
    route("GET", rf"/_unkai/ui/functions/{NAME}", b(functions.detail))
    route("POST", rf"/_unkai/ui/functions/{NAME}/invoke", b(functions.invoke))
    route("GET", r"/_unkai/ui/queues", b(messaging.index))
    route("GET", rf"/_unkai/ui/queues/{NAME}", b(messaging.detail))
    route("POST", rf"/_unkai/ui/queues/{NAME}/send", b(messaging.send))
    route("POST", rf"/_unkai/ui/queues/{NAME}/redrive", b(messaging.redrive))
    route("GET", r"/_unkai/ui/tables", b(tables.index))
    route("GET", rf"/_unkai/ui/tables/{NAME}", b(tables.detail))
    route("POST", rf"/_unkai/ui/tables/{NAME}/item", b(tables.put_item))
    route("POST", rf"/_unkai/ui/tables/{NAME}/delete", b(tables.delete_item))
    route("GET", r"/_unkai/ui/buckets", b(buckets.index))
    route("GET", rf"/_unkai/ui/buckets/{NAME}", b(buckets.detail))
    route("GET", rf"/_unkai/ui/buckets/{NAME}/object", b(buckets.download))
    route("POST", rf"/_unkai/ui/buckets/{NAME}/object", b(buckets.upload))
    route("GET", r"/_unkai/ui/mail", b(mail.index))
    route("GET", r"/_unkai/ui/mail/(?P<id>[^/]+)", b(mail.detail))
    route("GET", r"/_unkai/ui/apis", b(apis.index))
    route("POST", r"/_unkai/ui/apis/(?P<api>[^/]+)/connections/(?P<id>[^/]+)", b(apis.send_to_connection))
    route("GET", r"/_unkai/ui/metrics", b(metrics.index))
    return dash
