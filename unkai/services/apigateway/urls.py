"""Where an API answers locally, and how AWS's execute-api URLs map onto unkai.

Every API answers at three addresses on unkai's one port:

- the path form ``http://127.0.0.1:{port}/_unkai/execute-api/{apiId}/{stage}/...``, which
  every client reaches as it is (it cannot collide with S3 bucket or AWS API paths): what
  GetApis returns as ApiEndpoint and stack Outputs carry (``unkai/localurls.py``);
- ``http://{apiId}.execute-api.localhost:{port}/{stage}/...`` (browsers resolve
  ``*.localhost`` to the loopback address with no DNS set-up; the banner prints it);
- any address with ``Host: {apiId}.execute-api.{region}.amazonaws.com`` (what Lambda
  workers send when a handler calls its API's AWS URL).
"""

from __future__ import annotations

import re

from unkai.localurls import API_PREFIX as PATH_PREFIX
from unkai.localurls import path_url

_HOST = re.compile(r"^([a-z0-9]{10})\.execute-api\.(?:([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com(?:\.cn)?|localhost)"
                   r"(?::\d+)?$")
_AWS_URL = re.compile(r"(https|wss)://([a-z0-9]{10})\.execute-api\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?")


def api_from_host(host: str) -> tuple[str, str | None] | None:
    """(api id, region or None) when ``host`` is an execute-api host name."""
    m = _HOST.match(host.lower())
    return (m.group(1), m.group(2)) if m else None


def local_api_url(endpoint: str, api_id: str, stage: str | None = None, websocket: bool = False) -> str:
    """The local URL of an API (and stage) that any client calls as it is: what GetApis
    returns as ApiEndpoint and a stack's Outputs carry."""
    rest = f"/{stage}" if stage and stage != "$default" else ""  # like AWS's URL of a $default stage
    return path_url(endpoint, PATH_PREFIX, api_id, rest, websocket)


def rewrite_url(text: str, endpoint: str) -> str:
    """Replace AWS execute-api URLs in ``text`` (``https://{id}.execute-api.{region}.amazonaws.com``,
    ``wss://...``) by their local equivalents; the rest of each URL is kept. Template
    Outputs go through this so a stack's URLs work locally, for any client."""

    def local(m: re.Match) -> str:
        return local_api_url(endpoint, m.group(2), websocket=m.group(1) == "wss")

    return _AWS_URL.sub(local, text)
