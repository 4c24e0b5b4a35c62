"""The two local forms of a URL that unkai serves on its one port.

Every API, function URL and website answers at a path form on unkai's own address
(``http://127.0.0.1:4566/_unkai/execute-api/ID/Prod``, ``/_unkai/lambda-url/ID/``,
``/_unkai/website/BUCKET/``), which Python, Node and curl reach as it is, and at an
AWS-shaped ``*.localhost`` host name (``http://ID.execute-api.localhost:4566/Prod``)
that browsers resolve to loopback and most other clients do not
(``Name or service not known``). Values a program reads (stack Outputs, ``ApiEndpoint``,
``FunctionUrl``, ``WebsiteURL``) are path forms, so a script calls them as they are;
the banner and ``unkai status`` print the browser form beside each (``browser_form``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

# the prefixes of the services' data planes, written out so that client commands
# (`unkai status`) need not import the services
API_PREFIX = "/_unkai/execute-api/"
LAMBDA_URL_PREFIX = "/_unkai/lambda-url/"
WEBSITE_PREFIX = "/_unkai/website/"
_PATH_FORM = re.compile(r"(https?|wss?)://[^/]+?(:\d+)?/_unkai/(execute-api|lambda-url|website)/([^/]+)(/.*)?$")


def path_url(endpoint: str, prefix: str, name: str, rest: str = "", websocket: bool = False) -> str:
    """The path form of ``name`` (an API id, a function URL id, a bucket) under ``prefix``."""
    url = f"{endpoint.rstrip('/')}{prefix}{name}{rest}"
    return url.replace("http", "ws", 1) if websocket else url


def browser_form(url: str, region: str = "us-east-1") -> str | None:
    """``url``'s ``*.localhost`` form when it is a path form unkai serves, else None
    (``region`` names a website's endpoint, which the path form does not carry)."""
    m = _PATH_FORM.match(url)
    if m is None:
        return None
    scheme, port, kind, name, rest = m.groups()
    host = {"execute-api": f"{name}.execute-api", "lambda-url": f"{name}.lambda-url.{region}",
            "website": f"{name}.s3-website-{region}"}[kind]
    return f"{scheme}://{host}.localhost{port or ''}{rest or ('/' if kind != 'execute-api' else '')}"


DEFAULT_PORT = 4566  # unkai/config.py's, written out for the same reason as the prefixes


def to_own_port(url: str, endpoint: str) -> str | None:
    """``http://localhost:4566/...`` (or 127.0.0.1) as the same URL on unkai's own port when
    unkai runs on another one; None for any other URL. unkai's default port names unkai
    itself in templates' local defaults (a webhook at ``/_unkai/inbox/NAME``), so they work
    on any ``--port`` (workers do the same in ``unkai/runtime/bootstrap.py``)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in ("localhost", "127.0.0.1") or parts.port != DEFAULT_PORT:
        return None
    own = urlsplit(endpoint)
    if not own.port or own.port == DEFAULT_PORT:
        return None
    return urlunsplit(("http", own.netloc, parts.path, parts.query, parts.fragment))


def own_port_hooks(endpoint: Callable[[], str]) -> dict[str, list]:
    """httpx ``event_hooks`` for unkai's outbound clients (SNS HTTP subscriptions, API
    Gateway HTTP integrations, EventBridge API destinations): see ``to_own_port``."""

    async def redirect(request: Any) -> None:
        import httpx

        target = to_own_port(str(request.url), endpoint())
        if target is not None:
            request.url = httpx.URL(target)

    return {"request": [redirect]}
