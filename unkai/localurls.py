"""The two local forms of a URL that unkai serves on its one port.

Browsers resolve ``*.localhost`` to the loopback address, so stack outputs, banners and
``ApiEndpoint`` keep AWS's shape there (``http://ID.execute-api.localhost:4566/Prod``,
``http://BUCKET.s3-website-REGION.localhost:4566``). Python, Node and curl on most
Linux machines do not (``Name or service not known``), so every such URL also has a
path form on ``127.0.0.1`` (``/_unkai/execute-api/ID/...``, ``/_unkai/website/BUCKET/...``)
that any client reaches as it is. ``path_form`` turns the first into the second; the
banner and ``unkai status`` print both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

# the prefixes of unkai/services/apigateway/urls.py and unkai/services/s3/website.py, written
# out so that client commands (`unkai status`) need not import the services
API_PREFIX = "/_unkai/execute-api/"
WEBSITE_PREFIX = "/_unkai/website/"
_API = re.compile(r"(https?|wss?)://([a-z0-9]{10})\.execute-api\.localhost(:\d+)?(/.*)?$")
_WEBSITE = re.compile(r"(https?)://([^/]+)\.s3-website[.-][a-z0-9-]+\.localhost(:\d+)?(/.*)?$")


def path_form(url: str) -> str | None:
    """``url``'s path form when it is a local ``*.localhost`` URL unkai serves, else None."""
    m = _API.match(url)
    if m is not None:
        scheme, api_id, port, rest = m.groups()
        return f"{scheme}://127.0.0.1{port or ''}{API_PREFIX}{api_id}{rest or ''}"
    m = _WEBSITE.match(url)
    if m is None:
        return None
    scheme, bucket, port, rest = m.groups()
    return f"{scheme}://127.0.0.1{port or ''}{WEBSITE_PREFIX}{bucket}{rest or '/'}"


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
