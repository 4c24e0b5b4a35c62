"""Reading who signed a request and for which service and region (SigV4 and SigV2,
in the Authorization header or in a presigned URL's query string)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from unkai.http import Request

_V4_HEADER = re.compile(
    r"\s*AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<sig>[0-9a-fA-F]+)"
)


@dataclass
class Signature:
    kind: str  # "v4-header", "v4-query", "v2-header", "v2-query"
    access_key: str
    region: str | None = None
    service: str | None = None
    date: str | None = None
    signed_headers: list[str] | None = None
    signature: str = ""
    amz_date: str | None = None  # X-Amz-Date of a presigned v4 URL
    expires: str | None = None  # X-Amz-Expires (seconds) or v2 Expires (epoch)


def read_signature(request: Request) -> Signature | None:
    """The request's signature details, or None when it is unsigned."""
    auth = request.headers.get("authorization")
    if auth:
        m = _V4_HEADER.match(auth)
        if m:
            parts = m.group("cred").split("/")
            if len(parts) == 5:
                return Signature("v4-header", parts[0], parts[2], parts[3], parts[1],
                                 m.group("signed").split(";"), m.group("sig"))
            return Signature("v4-header", parts[0], signature=m.group("sig"))
        if auth.startswith("AWS ") and ":" in auth:
            key, _, sig = auth[4:].strip().partition(":")
            return Signature("v2-header", key, service="s3", signature=sig)
        return None
    qs = request.query_string
    if "X-Amz-Credential" in qs or "x-amz-credential" in qs.lower():
        q = {k.lower(): v for k, v in request.query}
        cred = q.get("x-amz-credential", "")
        parts = cred.split("/")
        if len(parts) == 5:
            return Signature("v4-query", parts[0], parts[2], parts[3], parts[1],
                             q.get("x-amz-signedheaders", "host").split(";"), q.get("x-amz-signature", ""),
                             q.get("x-amz-date"), q.get("x-amz-expires"))
    if "AWSAccessKeyId" in qs and "Signature" in qs:
        q = request.query_dict()
        return Signature("v2-query", q.get("AWSAccessKeyId", ""), service="s3",
                         signature=q.get("Signature", ""), expires=q.get("Expires"))
    return None
