"""unkai's own endpoints under ``/_unkai/``: health, the mailbox, the webhook inbox,
the clock, drain and the event feed. Services add theirs with ``route``."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from unkai import __version__
from unkai.http import Request, Response
from unkai.protocol.values import iso8601

if TYPE_CHECKING:
    from unkai.cloud import Cloud

RouteHandler = Callable[[Request, re.Match], Awaitable[Response]]


class InternalRoutes:
    def __init__(self, cloud: "Cloud") -> None:
        self.cloud = cloud
        self.routes: list[tuple[str, re.Pattern, RouteHandler]] = []
        self.route("GET", r"/_unkai/health", self.health)
        self.route("GET", r"/_unkai/mail", self.mail_list)
        self.route("DELETE", r"/_unkai/mail", self.mail_clear)
        self.route("GET", r"/_unkai/mail/(?P<id>[^/]+)\.eml", self.mail_raw)
        self.route("GET", r"/_unkai/inbox", self.inbox_names)
        self.route("GET", r"/_unkai/inbox/(?P<name>[^/]+)", self.inbox_list)
        self.route("DELETE", r"/_unkai/inbox/(?P<name>[^/]+)", self.inbox_clear)
        self.route("*", r"/_unkai/inbox/(?P<name>[^/]+)(?P<rest>/.*)?", self.inbox_record)
        self.route("GET", r"/_unkai/clock", self.clock_get)
        self.route("POST", r"/_unkai/clock/advance", self.clock_advance)
        self.route("POST", r"/_unkai/drain", self.drain)
        self.route("GET", r"/_unkai/feed", self.feed)
        self.route("POST", r"/_unkai/reset", self.reset)
        self.route("*", r"/moto-api/reset", self.moto_reset)

    def route(self, method: str, pattern: str, handler: RouteHandler) -> None:
        """Add an endpoint; ``method`` ``*`` matches any. Earlier routes win."""
        self.routes.append((method, re.compile(f"^{pattern}/?$"), handler))

    async def handle(self, request: Request) -> Response:
        path = request.path
        method = "GET" if request.method == "HEAD" else request.method
        allowed = False
        for want, regex, handler in self.routes:
            m = regex.match(path)
            if m is None:
                continue
            if want in ("*", method):
                return await handler(request, m)
            allowed = True
        if allowed:
            return Response.json({"message": f"{request.method} is not allowed here"}, 405)
        return Response.json({"message": f"no such unkai endpoint: {path}"}, 404)

    async def health(self, request: Request, m: re.Match) -> Response:
        cfg = self.cloud.config
        return Response.json({
            "status": "ready" if self.cloud.started else "starting",
            "version": __version__,
            "services": sorted(self.cloud.services),
            "region": cfg.region,
            "account": cfg.account_id,
            "endpoint": cfg.endpoint,
        })

    async def mail_list(self, request: Request, m: re.Match) -> Response:
        return Response.json(self.cloud.mailbox.list(request.query_dict().get("to")))

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
        body = await request.body()
        headers = dict(request.headers.items())
        with self.cloud.store.transaction():
            entry = self.cloud.inbox.record(m["name"], request.method, request.path, request.query_string,
                                            headers, body)
        return Response.json({"ok": True, "id": entry})

    async def clock_get(self, request: Request, m: re.Match) -> Response:
        clock = self.cloud.clock
        return Response.json({"now": iso8601(clock.now()), "epoch": clock.now(), "offset": clock.offset})

    async def clock_advance(self, request: Request, m: re.Match) -> Response:
        raw = request.query_dict().get("seconds", "")
        try:
            seconds = float(raw)
            if seconds < 0 or seconds != seconds:
                raise ValueError
        except ValueError:
            return Response.json({"message": "seconds must be a number >= 0"}, 400)
        self.cloud.clock.advance(seconds)
        return await self.clock_get(request, m)

    async def drain(self, request: Request, m: re.Match) -> Response:
        raw = request.query_dict().get("timeout", "10")
        try:
            timeout = min(max(float(raw), 0.0), 600.0)
        except ValueError:
            return Response.json({"message": "timeout must be a number of seconds"}, 400)
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
