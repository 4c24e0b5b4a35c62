"""Where an API answers locally, and how AWS's execute-api URLs map onto unkai.

Every API answers at three addresses on unkai's one port:

- ``http://{apiId}.execute-api.localhost:{port}/{stage}/...`` (browsers resolve
  ``*.localhost`` to the loopback address with no DNS set-up);
- any address with ``Host: {apiId}.execute-api.{region}.amazonaws.com`` (what Lambda
  workers send when a handler calls its API's AWS URL);
- the path form ``http://127.0.0.1:{port}/_unkai/execute-api/{apiId}/{stage}/...``
  for clients that can set neither (it cannot collide with S3 bucket or AWS API paths).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

PATH_PREFIX = "/_unkai/execute-api/"
_HOST = re.compile(r"^([a-z0-9]{10})\.execute-api\.(?:([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com(?:\.cn)?|localhost)"
                   r"(?::\d+)?$")
_AWS_URL = re.compile(r"(https|wss)://([a-z0-9]{10})\.execute-api\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?")


def api_from_host(host: str) -> tuple[str, str | None] | None:
    """(api id, region or None) when ``host`` is an execute-api host name."""
    m = _HOST.match(host.lower())
    return (m.group(1), m.group(2)) if m else None


def _port(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    return f":{parts.port}" if parts.port else ""


def local_api_url(endpoint: str, api_id: str, stage: str | None = None, websocket: bool = False) -> str:
    """The browser-friendly local URL of an API (and stage): what ``unkai up`` prints
    and GetApis returns as ApiEndpoint."""
    scheme = "ws" if websocket else "http"
    url = f"{scheme}://{api_id}.execute-api.localhost{_port(endpoint)}"
    if stage and stage != "$default":
        url += f"/{stage}"
    return url


def path_form_url(endpoint: str, api_id: str, stage: str = "$default", websocket: bool = False) -> str:
    """The path-form URL for clients that cannot resolve ``*.localhost`` or set a Host."""
    url = f"{endpoint.rstrip('/')}{PATH_PREFIX}{api_id}"
    if stage and stage != "$default":  # like AWS's URL of a $default stage: no stage segment
        url += f"/{stage}"
    return url.replace("http://", "ws://", 1) if websocket else url


def rewrite_url(text: str, endpoint: str) -> str:
    """Replace AWS execute-api URLs in ``text`` (``https://{id}.execute-api.{region}.amazonaws.com``,
    ``wss://...``) by their local equivalents; the rest of each URL is kept. Template
    Outputs go through this so a stack's printed URLs work locally."""

    def local(m: re.Match) -> str:
        return local_api_url(endpoint, m.group(2), websocket=m.group(1) == "wss")

    return _AWS_URL.sub(local, text)
