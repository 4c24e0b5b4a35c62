"""Who may talk to unkai from a browser: the ``Host`` and ``Origin`` checks.

unkai listens on the developer's machine, next to their browser. Two browser attacks
reach a local port without any help from the user:

- **DNS rebinding**: a page at ``evil.example`` makes its own name resolve to
  127.0.0.1 and then reads unkai's answers as same-origin. Every such request carries
  ``Host: evil.example``, so a request is served only when its ``Host`` names unkai:
  an IP literal, ``localhost`` or ``*.localhost``, the AWS host names unkai serves
  (``*.amazonaws.com``, ``*.on.aws``, ``*.amazoncognito.com``, ``*.localhost.localstack.cloud``: zones an
  attacker cannot point at 127.0.0.1), the bound host, or an ``--allow-host``.
- **Cross-site requests**: a page can POST a form (a "simple" request, no preflight)
  or load an ``<img>`` URL. Browsers say where such a request comes from in ``Origin``
  and ``Sec-Fetch-Site``. A *local* origin is a page on this machine that unkai or the
  developer serves (loopback addresses, ``localhost``, ``*.localhost`` such as the S3
  websites and API stages unkai serves, the bound host, ``--allow-host``), plus each
  ``--allow-origin``. Anything else is *foreign*.

Where each check applies is decided by the caller: the gateway for the AWS APIs
(foreign origins only where the resource's own CORS rules allow them, as S3's do),
``InternalRoutes`` for unkai's own endpoints (no foreign origin, ever).
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any
from urllib.parse import urlsplit

from unkai.http import Request, Response

# Zones whose names resolve where AWS (or LocalStack's public record) says, never to
# an attacker's choice: Host headers in them are not a rebinding vector.
_AWS_ZONES = (".amazonaws.com", ".amazonaws.com.cn", ".on.aws", ".localhost.localstack.cloud",
              ".amazoncognito.com")  # Cognito pool domains' OAuth endpoints
_LOOPBACK_NAMES = ("localhost",)


def split_host(host: str) -> str:
    """The host name of a ``Host`` header value, lower case, without port or brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.index("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return host.rstrip(".")


@functools.lru_cache(maxsize=256)  # asked for every request's Host: parse each name once
def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=256)
def _is_loopback_ip(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _matches(name: str, pattern: str) -> bool:
    """``pattern`` is a host name, or ``*.suffix`` for every name under that suffix."""
    pattern = pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    return name == pattern


class OriginPolicy:
    """The ``Host`` and ``Origin`` rules of one running unkai (see the module docstring)."""

    def __init__(self, config: Any) -> None:
        self.allow_hosts = [h.lower() for h in getattr(config, "allow_hosts", None) or []]
        self.allow_origins = {o.rstrip("/").lower() for o in getattr(config, "allow_origins", None) or []}
        bound = split_host(config.host or "")
        self.bound = bound if bound and bound not in ("0.0.0.0", "::") else None
        self._allowed: dict[str, bool] = {}  # Host header -> host_allowed(), for the few hosts clients use

    # -- Host -------------------------------------------------------------------------

    def host_allowed(self, host: str) -> bool:
        """Whether a ``Host`` header names unkai (no DNS-rebinding page sends these)."""
        found = self._allowed.get(host)
        if found is None:
            found = self._host_allowed(host)
            if len(self._allowed) >= 1024:  # any number of names may be sent: keep the memory bounded
                self._allowed.clear()
            self._allowed[host] = found
        return found

    def _host_allowed(self, host: str) -> bool:
        if not host:  # HTTP/1.0 clients; browsers always send one
            return True
        name = split_host(host)
        if not name:
            return True
        if _is_ip(name) or name in _LOOPBACK_NAMES or name.endswith(".localhost"):
            return True
        if name.endswith(_AWS_ZONES) or name == "localhost.localstack.cloud" or name == self.bound:
            return True
        return any(_matches(name, p) for p in self.allow_hosts)

    def refuse_host(self, request: Request) -> Response | None:
        """A 421 for a request whose Host does not name unkai, else None."""
        if self.host_allowed(request.host):
            return None
        return Response.json({
            "message": f"unkai does not answer to the host name {split_host(request.host)!r} (a DNS-rebinding "
                       "page would send it). Use 127.0.0.1 or localhost, or start unkai with --allow-host NAME."},
            421)

    # -- Origin -----------------------------------------------------------------------

    def is_local_origin(self, origin: str, request: Request | None = None) -> bool:
        """Whether a browser ``Origin`` is a page on this machine (or allowed by the user)."""
        origin = origin.strip().rstrip("/").lower()
        if origin in self.allow_origins or "*" in self.allow_origins:
            return True
        if origin == "null" or not origin:
            return False
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        name = parts.hostname.rstrip(".")
        if _is_loopback_ip(name) or name in _LOOPBACK_NAMES or name.endswith(".localhost"):
            return True
        if name == self.bound or any(_matches(name, p) for p in self.allow_hosts):
            return True
        # unkai's own pages, when reached by another address (bound to 0.0.0.0, used over the LAN)
        return request is not None and parts.netloc == (request.host or "").lower()

    def foreign_origin(self, request: Request) -> str | None:
        """The foreign origin a browser says this request comes from, or None when it comes
        from a local page or from no browser at all. A cross-site request without ``Origin``
        (an ``<img>`` or a no-cors GET) answers ``"cross-site"``."""
        origin = request.headers.get("origin")
        if origin is not None:
            return None if self.is_local_origin(origin, request) else origin
        if (request.headers.get("sec-fetch-site") or "").lower() == "cross-site":
            return "cross-site"
        return None


def refused_origin(origin: str) -> str:
    """The message that says why a browser request was refused, and how to allow it."""
    if origin == "cross-site":
        return "unkai refuses cross-site browser requests to this endpoint."
    return (f"unkai refuses browser requests from the origin {origin} here (a page on another site). "
            f"Start unkai with --allow-origin {origin} to allow it.")
