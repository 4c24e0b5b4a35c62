"""Whether a request outside the AWS APIs is signed: what ``AWS_IAM`` means on API
Gateway routes and Lambda function URLs, and one way into unkai's control endpoints.

AWS checks these with SigV4 like any API call, so unkai does too, through the same
``Authorizer`` (``unkai/gateway/auth.py``): with ``--access-key/--secret-key`` the
signature must hold for those credentials and be fresh; without them any access key
is accepted, as for the APIs, but the request must still carry a well-formed SigV4
signature (an unsigned call, or ``Authorization: garbage``, is refused as on AWS).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from unkai.gateway.auth import read_signature
from unkai.http import Request


def is_signed(cloud: Any, request: Request, body: bytes | None, protocol: str = "rest-json") -> bool:
    """Whether ``request`` (whose body is ``body``) carries a SigV4 signature that unkai accepts."""
    from unkai.protocol import ServiceError

    sig = read_signature(request)
    if sig is None or not sig.kind.startswith("v4") or not sig.service or not sig.region:
        return False
    gateway = getattr(cloud, "gateway", None)
    authorizer = gateway.authorizer if gateway is not None else None
    if authorizer is None:
        return not cloud.config.verify_signatures
    try:
        authorizer(request, SimpleNamespace(signature=sig, protocol=protocol, service=sig.service), body)
    except ServiceError:
        return False
    return True
