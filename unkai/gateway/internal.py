"""unkai's own endpoints under ``/_unkai/``: health, the mailbox, the webhook inbox,
the clock, drain and the event feed. Services add theirs with ``route``.

Each route says who may call it (``access``), because these endpoints are unkai's
control plane, next to data-plane pages that stand for public AWS URLs:

- ``"control"`` (the default): no cross-origin browser request, ever (no CORS), and
  with credentials configured a request signed with them or carrying the control
  token printed at start (``X-Unkai-Token``, or ``Authorization: Bearer``);
- ``"local"``: no cross-origin browser request, no credentials (health);
- ``"public"``: what AWS serves to anyone (API stages, function URLs, websites, SNS's
  confirmation pages, CloudFormation response URLs) and the webhook inbox standing for
  a public webhook (handlers and API HTTP integrations post to it), checked by the
  service itself.
"""

from __future__ import annotations

import hmac
import math
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from unkai import __version__
from unkai.gateway.origin import OriginPolicy, refused_origin
from unkai.http import BodyTooLarge, Request, Response
from unkai.protocol.values import iso8601

if TYPE_CHECKING:
    from unkai.cloud import Cloud

RouteHandler = Callable[[Request, re.Match], Awaitable[Response]]
ACCESS = ("control", "local", "public")
MAX_ADVANCE = 100 * 366 * 86400.0  # a century: far past any retention, TTL or schedule, still a finite date
MAX_CONTROL_BODY = 1024 * 1024
INBOX_MAX_BODY = 1024 * 1024  # a webhook call kept in the inbox; the rest is read and dropped


async def _first_bytes(request: Request, limit: int) -> tuple[bytes, int]:
    """The first ``limit`` bytes of a body, and how many bytes it had."""
    kept: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        if size < limit:
            kept.append(chunk[: limit - size])
        size += len(chunk)
    return b"".join(kept), size


def number(raw: str | None, name: str, default: float, low: float, high: float) -> float:
    """A finite number in [low, high] from a query parameter, or ValueError with a message."""
    try:
        value = float(default if raw is None or raw == "" else raw)
    except ValueError:
        raise ValueError(f"{name} must be a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be a finite number between {low:g} and {high:g}")
    return value


class InternalRoutes:
    def __init__(self, cloud: "Cloud") -> None:
        self.cloud = cloud
        self.origins = OriginPolicy(cloud.config)
        self.routes: list[tuple[str, re.Pattern, RouteHandler, str]] = []
        self.route("GET", r"/_unkai/health", self.health, access="local")
        self.route("GET", r"/_unkai/mail", self.mail_list)
        self.route("DELETE", r"/_unkai/mail", self.mail_clear)
        self.route("GET", r"/_unkai/mail/(?P<id>[^/]+)\.eml", self.mail_raw)
        self.route("GET", r"/_unkai/mail/(?P<id>[^/]+)\.html", self.mail_html)
        self.route("GET", r"/_unkai/mail/(?P<id>[^/]+)/attachments/(?P<n>\d+)", self.mail_attachment)
        self.route("GET", r"/_unkai/mail/(?P<id>[^/]+)", self.mail_show)
        self.route("GET", r"/_unkai/inbox", self.inbox_names)
        self.route("GET", r"/_unkai/inbox/(?P<name>[^/]+)", self.inbox_list)
        self.route("DELETE", r"/_unkai/inbox/(?P<name>[^/]+)", self.inbox_clear)
        self.route("*", r"/_unkai/inbox/(?P<name>[^/]+)(?P<rest>/.*)?", self.inbox_record, access="public")
        self.route("GET", r"/_unkai/clock", self.clock_get)
        self.route("POST", r"/_unkai/clock/advance", self.clock_advance)
        self.route("POST", r"/_unkai/drain", self.drain)
        self.route("GET", r"/_unkai/feed", self.feed)
        self.route("POST", r"/_unkai/reset", self.reset)
        self.route("*", r"/moto-api/reset", self.moto_reset)
        from unkai.dashboard.routes import register

        self.dashboard = register(self)  # /_unkai/ and /_unkai/ui/*: the web dashboard

    def route(self, method: str, pattern: str, handler: RouteHandler, access: str = "control") -> None:
        """Add an endpoint; ``method`` ``*`` matches any. Earlier routes win. ``access`` is
        who may call it: ``control``, ``local`` or ``public`` (see the module docstring)."""
        if access not in ACCESS:
            raise ValueError(f"access must be one of {ACCESS}")
        self.routes.append((method, re.compile(f"^{pattern}/?$"), handler, access))

    async def handle(self, request: Request) -> Response:
        path = request.path
        method = "GET" if request.method == "HEAD" else request.method
        allowed = False
        for want, regex, handler, access in self.routes:
            m = regex.match(path)
            if m is None:
                continue
            if want in ("*", method):
                refused = None if access == "public" else await self.refuse(request, access)
                return refused or await handler(request, m)
            allowed = True
        if allowed:
            return Response.json({"message": f"{request.method} is not allowed here"}, 405)
        return Response.json({"message": f"no such unkai endpoint: {path}"}, 404)

    async def refuse(self, request: Request, access: str) -> Response | None:
        """The answer refusing a request this route's ``access`` does not admit, else None."""
        foreign = self.origins.foreign_origin(request)
        if foreign is not None:
            return Response.json({"message": refused_origin(foreign)}, 403)
        if access == "control" and self.cloud.config.verify_signatures and not await self._authorized(request):
            return Response.json({"message": "unkai's own endpoints need a request signed with the configured "
                                  "credentials, or the control token unkai printed at start (X-Unkai-Token)."},
                                 403)
        return None

    async def _authorized(self, request: Request) -> bool:
        token = request.headers.get("x-unkai-token") or ""
        auth = request.headers.get("authorization") or ""
        if not token and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        if not token:  # the dashboard's browser: a SameSite=Strict cookie set by /_unkai/ui/login
            from unkai.dashboard.routes import cookie_token

            token = cookie_token(request)
        expected = self.cloud.config.control_token
        if token:
            return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())
        from types import SimpleNamespace

        from unkai.gateway.auth import read_signature
        from unkai.protocol import ServiceError

        sig = read_signature(request)
        gateway = getattr(self.cloud, "gateway", None)
        authorizer = gateway.authorizer if gateway is not None else None
        if sig is None or authorizer is None:
            return False
        try:
            body = await request.body(MAX_CONTROL_BODY)
        except BodyTooLarge:
            return False
        try:
            authorizer(request, SimpleNamespace(signature=sig, protocol="json", service="unkai"), body)
        except ServiceError:
            return False
        return True

    async def health(self, request: Request, m: re.Match) -> Response:
        cfg = self.cloud.config
        return Response.json({
            "status": "ready" if self.cloud.started else "starting",
            "version": __version__,
            "services": sorted(self.cloud.services),
            "loaded": sorted(self.cloud.services.loaded()),  # services load on first use (unkai/cloud.py)
            "region": cfg.region,
            "account": cfg.account_id,
            "endpoint": cfg.endpoint,
        })

    async def mail_list(self, request: Request, m: re.Match) -> Response:
        """``?to=ADDRESS`` (a part of a recipient), ``&after=SEQ`` (newer messages only),
        ``&wait=S`` (long-poll up to S seconds until there is one)."""
        query = request.query_dict()
        try:
            after = int(query.get("after", "0"))
            wait = float(query.get("wait", "0"))
        except ValueError:
            return Response.json({"message": "after must be an integer and wait a number of seconds"}, 400)
        if not 0 <= wait <= 60:
            return Response.json({"message": "wait must be between 0 and 60 seconds"}, 400)
        mailbox, to = self.cloud.mailbox, query.get("to")
        found = mailbox.list(to, after)
        if wait and not found:
            import asyncio

            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait
            while not found and loop.time() < deadline:
                await self.cloud.signals.wait(("mail",), timeout=deadline - loop.time())
                found = mailbox.list(to, after)
        return Response.json(found)

    async def mail_show(self, request: Request, m: re.Match) -> Response:
        msg = self.cloud.mailbox.get(m["id"])
        if msg is None:
            return Response.json({"message": "no such message"}, 404)
        return Response.json(msg)

    async def mail_html(self, request: Request, m: re.Match) -> Response:
        msg = self.cloud.mailbox.get(m["id"])
        if msg is None:
            return Response.json({"message": "no such message"}, 404)
        body = msg["html"]
        if body is None:  # a text-only mail, shown as text in a page
            import html

            body = f"<pre>{html.escape(msg['text'] or '')}</pre>"
        # A mail's HTML is someone else's page: sandboxed (no script, an opaque origin) even when
        # opened on its own, so it cannot act on unkai's endpoints; its links open in a new tab.
        return Response(200, [("content-type", "text/html; charset=utf-8"),
                              ("content-security-policy", "sandbox allow-popups allow-popups-to-escape-sandbox"),
                              ("x-content-type-options", "nosniff")], body.encode())

    async def mail_attachment(self, request: Request, m: re.Match) -> Response:
        found = self.cloud.mailbox.attachment(m["id"], int(m["n"]))
        if found is None:
            return Response.json({"message": "no such attachment"}, 404)
        filename, ctype, data = found
        safe = filename.replace('"', "")
        return Response(200, [("content-type", ctype), ("content-disposition", f'attachment; filename="{safe}"')],
                        data)

    async def mail_raw(self, request: Request, m: re.Match) -> Response:
        raw = self.cloud.mailbox.raw(m["id"])
        if raw is None:
            return Response.json({"message": "no such message"}, 404)
        return Response(200, [("content-type", "message/rfc822")], raw)

    async def mail_clear(self, request: Request, m: re.Match) -> Response:
        with self.cloud.store.transaction():
            n = self.cloud.mailbox.clear()
        return Response.json({"deleted": n})

    async def inbox_names(self, request: Request, m: re.Match) -> Response:
        return Response.json(self.cloud.inbox.names())

    async def inbox_list(self, request: Request, m: re.Match) -> Response:
        return Response.json(self.cloud.inbox.list(m["name"]))

    async def inbox_clear(self, request: Request, m: re.Match) -> Response:
        with self.cloud.store.transaction():
            n = self.cloud.inbox.clear(m["name"])
        return Response.json({"deleted": n})

    async def inbox_record(self, request: Request, m: re.Match) -> Response:
        body, received = await _first_bytes(request, INBOX_MAX_BODY)
        headers = dict(request.headers.items())
        if received > len(body):  # kept, but not all of it: the note says how much came
            headers["x-unkai-truncated"] = f"{received} bytes received, the first {len(body)} kept"
        with self.cloud.store.transaction():
            entry = self.cloud.inbox.record(m["name"], request.method, request.path, request.query_string,
                                            headers, body)
        return Response.json({"ok": True, "id": entry})

    async def clock_get(self, request: Request, m: re.Match) -> Response:
        clock = self.cloud.clock
        return Response.json({"now": iso8601(clock.now()), "epoch": clock.now(), "offset": clock.offset})

    async def clock_advance(self, request: Request, m: re.Match) -> Response:
        raw = request.query_dict().get("seconds")
        clock = self.cloud.clock
        try:
            seconds = number(raw, "seconds", math.nan, 0, MAX_ADVANCE)
        except ValueError as exc:
            return Response.json({"message": f"{exc} (a century at most)"}, 400)
        if clock.offset + seconds > MAX_ADVANCE:
            return Response.json({"message": "unkai's clock cannot move more than a century ahead"}, 400)
        clock.advance(seconds)
        return await self.clock_get(request, m)

    async def drain(self, request: Request, m: re.Match) -> Response:
        try:
            timeout = number(request.query_dict().get("timeout"), "timeout", 10, 0, 600)
        except ValueError as exc:
            return Response.json({"message": f"{exc} (seconds)"}, 400)
        left = await self.cloud.drain(timeout)
        return Response.json({"drained": not left, "pending": left})

    async def feed(self, request: Request, m: re.Match) -> Response:
        """``?after=ID`` (events newer than that id), ``&wait=S`` (long-poll up to S seconds
        for the first one), ``&kind=lambda.&kind=sqs.`` (kind prefixes)."""
        query = request.query_dict()
        try:
            after = int(query.get("after", "0"))
            wait = float(query.get("wait", "0"))
        except ValueError:
            return Response.json({"message": "after must be an integer and wait a number of seconds"}, 400)
        if after < 0 or not 0 <= wait <= 60:
            return Response.json({"message": "after must be >= 0 and wait between 0 and 60 seconds"}, 400)
        kinds = tuple(v for k, v in request.query if k == "kind")
        feed = self.cloud.feed
        events = await feed.wait(after, wait, kinds) if wait else feed.since(after, kinds)
        return Response.json({"events": events, "last": feed.last_id})

    async def reset(self, request: Request, m: re.Match) -> Response:
        """Back to the state unkai reached once ready (``?empty=1``: no state at all)."""
        empty = request.query_dict().get("empty", "") not in ("", "0", "false")
        ms = await self.cloud.resetter.reset(empty)
        return Response.json({"reset": True, "empty": empty, "ms": round(ms, 2)})

    async def moto_reset(self, request: Request, m: re.Match) -> Response:
        """moto server's ``POST /moto-api/reset``, answered as moto answers it."""
        if request.method != "POST":
            return Response.json({"Error": "Need to POST to reset Moto"}, 400)
        await self.cloud.resetter.reset()
        return Response.json({"status": "ok"})
