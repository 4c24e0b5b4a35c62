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
