"""Who signed a request and for which service and region (SigV4 and SigV2, in the
Authorization header or in a presigned URL's query string), and whether the
signature holds: one mechanism for every service, called by the gateway."""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

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


def _v4_header(auth: str) -> tuple[str, str, str] | None:
    """Credential, SignedHeaders and Signature of a SigV4 Authorization header, as
    ``_V4_HEADER`` reads them; the layout every SDK writes is split without the regex."""
    if auth.startswith("AWS4-HMAC-SHA256 Credential="):
        cred, sep, rest = auth[28:].partition(", SignedHeaders=")
        signed, sep2, sig = rest.partition(", Signature=")
        if (sep and sep2 and sig and not sig.strip("0123456789abcdefABCDEF") and "," not in cred
                and "," not in signed and len(cred.split()) == 1 == len(signed.split())
                and cred.strip() == cred and signed.strip() == signed):
            return cred, signed, sig
    m = _V4_HEADER.match(auth)
    return (m.group("cred"), m.group("signed"), m.group("sig")) if m else None


def read_signature(request: Request) -> Signature | None:
    """The request's signature details, or None when it is unsigned."""
    auth = request.headers.get("authorization")
    if auth:
        found = _v4_header(auth)
        if found:
            cred, signed, sig = found
            parts = cred.split("/")
            if len(parts) == 5:
                return Signature("v4-header", parts[0], parts[2], parts[3], parts[1], signed.split(";"), sig)
            return Signature("v4-header", parts[0], signature=sig)
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


# -- verification -----------------------------------------------------------------------

UNSIGNED = "UNSIGNED-PAYLOAD"
MAX_SKEW = 900  # seconds a signed request is good for either side of its date (AWS: 15 minutes)
MAX_PRESIGN = 604800
_V2_SUBRESOURCES = frozenset((
    "accelerate", "acl", "cors", "defaultObjectAcl", "location", "logging", "partNumber", "policy",
    "requestPayment", "torrent", "versioning", "versionId", "versions", "website", "uploads", "uploadId",
    "response-content-type", "response-content-language", "response-expires", "response-cache-control",
    "response-content-disposition", "response-content-encoding", "delete", "lifecycle", "tagging", "restore",
    "storageClass", "notification", "replication", "analytics", "metrics", "inventory", "select", "select-type",
    "object-lock"))

# What each protocol family answers for each failure: (code, message, status).
_ERRORS = {
    "rest-xml": {
        "key": ("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.", 403),
        "signature": ("SignatureDoesNotMatch", "The request signature we calculated does not match the signature "
                      "you provided. Check your key and signing method.", 403),
        "missing": ("AccessDenied", "Access Denied", 403),
        "expired": ("AccessDenied", "Request has expired", 403),
        "token-expired": ("ExpiredToken", "The provided token has expired.", 400),
    },
    "query": {
        "key": ("InvalidClientTokenId", "The security token included in the request is invalid.", 403),
        "signature": ("SignatureDoesNotMatch", "The request signature we calculated does not match the signature "
                      "you provided. Check your AWS Secret Access Key and signing method. Consult the service "
                      "documentation for details.", 403),
        "missing": ("MissingAuthenticationToken", "Request is missing Authentication Token", 403),
        "expired": ("SignatureDoesNotMatch", "Signature expired", 403),
        "token-expired": ("ExpiredToken", "The security token included in the request is expired", 403),
    },
    "json": {
        "key": ("UnrecognizedClientException", "The security token included in the request is invalid.", 400),
        "signature": ("InvalidSignatureException", "The request signature we calculated does not match the "
                      "signature you provided. Check your AWS Secret Access Key and signing method. Consult the "
                      "service documentation for details.", 400),
        "missing": ("MissingAuthenticationTokenException", "Missing Authentication Token", 400),
        "expired": ("InvalidSignatureException", "Signature expired", 400),
        "token-expired": ("ExpiredTokenException", "The security token included in the request is expired", 400),
    },
}
_ERRORS["rest-json"] = {k: (c, m, 403) for k, (c, m, _) in _ERRORS["json"].items()}
_ERRORS["cbor"] = _ERRORS["json"]


def _fail(protocol: str, kind: str, message: str | None = None, **fields: str) -> Exception:
    from unkai.protocol import ServiceError

    code, default, status = _ERRORS.get(protocol, _ERRORS["query"])[kind]
    return ServiceError(code, message or default, status=status, **fields)


def _query_error(message: str) -> Exception:
    from unkai.protocol import ServiceError

    return ServiceError("AuthorizationQueryParametersError", message, status=400)


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


class ChunkSigner:
    """The chain of chunk signatures a SigV4 streaming upload (aws-chunked) carries."""

    def __init__(self, key: bytes, amz_date: str, scope: str, seed: str, protocol: str) -> None:
        self.key, self.amz_date, self.scope, self.previous, self.protocol = key, amz_date, scope, seed, protocol

    def check_chunk(self, signature: str, payload_hash: str) -> None:
        text = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", self.amz_date, self.scope, self.previous,
                          hashlib.sha256(b"").hexdigest(), payload_hash])
        expected = hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature or ""):
            raise _fail(self.protocol, "signature")
        self.previous = signature


class Authorizer:
    """Checks who signed a request, for every service (the gateway's ``authorizer``).

    Presigned URLs always have their expiry enforced against unkai's clock. With
    credentials configured (``--access-key``/``--secret-key``) every signature is
    verified and an unsigned request is refused; without them any signature and
    any access key is accepted, as a local cloud should.
    """

    def __init__(self, config: Any, clock: Any) -> None:
        self.config = config
        self.clock = clock
        self._first_seen: dict[str, float] = {}
        # Credentials unkai issued besides the configured pair (IAM access keys, STS sessions,
        # functions' role sessions): access key -> an object with secret, token, expires and
        # active, or None. Set by the STS service.
        self.credentials: Any = None

    def __call__(self, request: Request, route: Any, body: bytes | None) -> None:
        if request.state.get("internal"):  # made in-process by a service (API Gateway AWS integrations)
            return
        sig = route.signature
        protocol = route.protocol
        verify = self.config.verify_signatures
        if sig is None:
            if verify:
                raise _fail(protocol, "missing")
            return
        if sig.kind == "v4-query":
            self._check_v4_expiry(request, sig, protocol)
        elif sig.kind == "v2-query":
            self._check_v2_expiry(sig, protocol)
        if not verify:
            return
        secret = self.config.secret_key
        if sig.access_key != self.config.access_key:
            found = self.credentials(sig.access_key) if self.credentials is not None else None
            if found is None or not found.active:
                raise _fail(protocol, "key", **({"AWSAccessKeyId": sig.access_key} if protocol == "rest-xml" else {}))
            if found.token:
                token = request.headers.get("x-amz-security-token") or \
                    next((v for k, v in request.query if k.lower() == "x-amz-security-token"), "")
                if not hmac.compare_digest(token, found.token):
                    raise _fail(protocol, "key")
            if found.expires is not None and self.clock.now() > found.expires:
                raise _fail(protocol, "token-expired")
            secret = found.secret
        if sig.kind.startswith("v4"):
            self._verify_v4(request, route, sig, body, secret)
        else:
            self._verify_v2(request, route, sig, secret)

    # -- presigned expiry -----------------------------------------------------------------

    def _check_v4_expiry(self, request: Request, sig: Signature, protocol: str) -> None:
        q = {k.lower(): v for k, v in request.query}
        if q.get("x-amz-algorithm") != "AWS4-HMAC-SHA256":
            raise _query_error("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
        try:
            signed_at = dt.datetime.strptime(sig.amz_date or "", "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            raise _query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"") from None
        try:
            expires = int(sig.expires or "")
        except ValueError:
            raise _query_error("X-Amz-Expires should be a number") from None
        if expires < 0:
            raise _query_error("X-Amz-Expires must be non-negative")
        if expires > MAX_PRESIGN:
            raise _query_error("X-Amz-Expires must be less than a week (in seconds) that is; 604800")
        # The client signed with the wall clock; on unkai's clock that moment was later by
        # whatever advances had happened by then, and the URL lasts ``expires`` from there.
        # X-Amz-Date has whole seconds: for an advance within the signing second, whether
        # unkai had seen the URL before it decides.
        wall = signed_at.timestamp()
        low, high = self.clock.offset_at(wall), self.clock.offset_at(wall + 1)
        seen = self._seen(sig.signature)
        offset = low if low == high else min(max(seen, low), high)
        issued = wall + offset
        now = self.clock.now()
        if now > issued + expires:
            raise _fail(protocol, "expired", **({
                "X-Amz-Expires": str(expires),
                "Expires": _iso(issued + expires),
                "ServerTime": _iso(now)} if protocol == "rest-xml" else {}))

    def _check_v2_expiry(self, sig: Signature, protocol: str) -> None:
        try:
            expires = int(sig.expires or "")
        except ValueError:
            raise _fail(protocol, "missing") from None
        # A SigV2 URL carries only its expiry, not when it was signed: count the clock advances
        # since unkai first saw it (so: fetch, advance, fetch again expires it as on AWS).
        offset = self._seen(sig.signature)
        now = self.clock.now()
        if now > expires + offset:
            raise _fail(protocol, "expired", **({"Expires": _iso(expires + offset), "ServerTime": _iso(now)}
                                                 if protocol == "rest-xml" else {}))

    def _seen(self, signature: str) -> float:
        """The clock offset when unkai first saw this presigned URL."""
        offset = self._first_seen.setdefault(signature, self.clock.offset)
        if len(self._first_seen) > 10000:
            self._first_seen.pop(next(iter(self._first_seen)))
        return offset

    # -- signatures ----------------------------------------------------------------------

    def _verify_v4(self, request: Request, route: Any, sig: Signature, body: bytes | None, secret: str) -> None:
        headers = request.headers
        if sig.kind == "v4-header":
            amz_date = headers.get("x-amz-date") or _iso_basic(headers.get("date"))
        else:
            amz_date = sig.amz_date or ""
        if not sig.date or not sig.region or not sig.service or not amz_date:
            raise _fail(route.protocol, "signature")
        if sig.kind == "v4-header":
            self._check_freshness(amz_date, route.protocol)
        payload = headers.get("x-amz-content-sha256")
        if payload is not None and body is not None and payload != UNSIGNED \
                and not payload.startswith("STREAMING-") and payload != hashlib.sha256(body).hexdigest():
            raise _payload_mismatch(route.protocol, payload, body)
        if payload is None:
            if sig.kind == "v4-query" and route.service == "s3":
                payload = UNSIGNED
            elif body is not None:
                payload = hashlib.sha256(body).hexdigest()
            else:
                payload = UNSIGNED
        path = request.state.get("signed_path", request.raw_path)
        if sig.service != "s3":
            path = quote(path, safe="/~")
        canonical = "\n".join([
            request.method, path, _canonical_query(request.query_string, sig.kind == "v4-query"),
            "".join(f"{name}:{_header_values(request, name)}\n" for name in sig.signed_headers or []),
            ";".join(sig.signed_headers or []), payload])
        scope = f"{sig.date}/{sig.region}/{sig.service}/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = signing_key(secret, sig.date, sig.region, sig.service)
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sig.signature.lower()):
            raise _fail(route.protocol, "signature", **({
                "AWSAccessKeyId": sig.access_key, "StringToSign": to_sign, "SignatureProvided": sig.signature,
                "CanonicalRequest": canonical} if route.protocol == "rest-xml" else {}))
        if payload.startswith("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"):
            request.state["chunk_signer"] = ChunkSigner(key, amz_date, scope, sig.signature, route.protocol)

    def _check_freshness(self, amz_date: str, protocol: str) -> None:
        """A signed request is good for 15 minutes either side of its X-Amz-Date, as on AWS,
        with unkai's clock advances counted (the client signed with the wall clock)."""
        try:
            signed = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc).timestamp()
        except ValueError:
            raise _fail(protocol, "signature") from None
        now = self.clock.now()
        # X-Amz-Date has whole seconds: an advance within that second may have come before or after
        offsets = (self.clock.offset_at(signed), self.clock.offset_at(signed + 1))
        if any(abs(now - (signed + offset)) <= MAX_SKEW for offset in offsets):
            return
        signed += offsets[0]
        stamp = _iso_basic_epoch
        if protocol == "rest-xml":
            from unkai.protocol import ServiceError

            raise ServiceError("RequestTimeTooSkewed", "The difference between the request time and the current "
                               "time is too large.", status=403, RequestTime=amz_date, ServerTime=_iso(now),
                               MaxAllowedSkewMilliseconds=str(MAX_SKEW * 1000))
        if signed < now:
            message = (f"Signature expired: {amz_date} is now earlier than {stamp(now - MAX_SKEW)} "
                       f"({stamp(now)} - 15 min.)")
        else:
            message = (f"Signature not yet current: {amz_date} is still later than {stamp(now + MAX_SKEW)} "
                       f"({stamp(now)} + 15 min.)")
        raise _fail(protocol, "expired", message)

    def _verify_v2(self, request: Request, route: Any, sig: Signature, secret: str) -> None:
        headers = request.headers
        if sig.kind == "v2-header":
            date = "" if "x-amz-date" in headers else headers.get("date", "")
        else:
            date = sig.expires or ""
        found = {k: v for k, v in _grouped(request).items() if k.startswith("x-amz-")}
        md5, ctype = headers.get("content-md5", ""), headers.get("content-type", "")
        if sig.kind == "v2-query":
            # A presigned v2 URL carries the x-amz-* headers it signed (a session's
            # x-amz-security-token...), Content-MD5 and Content-Type in its query string.
            for k, v in request.query:
                lk = k.lower()
                if lk.startswith("x-amz-"):
                    found[lk] = " ".join(v.split())
                elif lk == "content-md5":
                    md5 = v
                elif lk == "content-type":
                    ctype = v
        amz = sorted(found.items())
        resource = request.raw_path
        sub = []
        for part in request.query_string.split("&") if request.query_string else []:
            name, eq, value = part.partition("=")
            if name in _V2_SUBRESOURCES:
                sub.append((name, f"{name}={unquote(value)}" if eq else name))
        if sub:
            resource += "?" + "&".join(text for _, text in sorted(sub, key=lambda s: s[0]))
        to_sign = "\n".join([request.method, md5, ctype, date,
                             *[f"{k}:{v}" for k, v in amz], resource])
        expected = base64.b64encode(hmac.new(secret.encode(), to_sign.encode(),
                                             hashlib.sha1).digest()).decode()
        if not hmac.compare_digest(expected, sig.signature):
            raise _fail(route.protocol, "signature", **({
                "AWSAccessKeyId": sig.access_key, "StringToSign": to_sign, "SignatureProvided": sig.signature}
                if route.protocol == "rest-xml" else {}))


def _grouped(request: Request) -> dict[str, str]:
    found: dict[str, list[str]] = {}
    for k, v in request.headers.raw():
        found.setdefault(k, []).append(" ".join(v.split()))
    return {k: ",".join(v) for k, v in found.items()}


def _header_values(request: Request, name: str) -> str:
    values = [" ".join(v.split()) for k, v in request.headers.raw() if k == name]
    return ",".join(values)


def _canonical_query(query: str, presigned: bool) -> str:
    pairs = []
    for part in query.split("&") if query else []:
        if not part:
            continue
        key, _, value = part.partition("=")
        key, value = unquote(key), unquote(value)
        if presigned and key == "X-Amz-Signature":
            continue
        pairs.append((quote(key, safe="-_.~"), quote(value, safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_basic(date: str | None) -> str:
    if not date:
        return ""
    try:
        return email.utils.parsedate_to_datetime(date).astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    except (TypeError, ValueError):
        return ""


def _iso_basic_epoch(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _payload_mismatch(protocol: str, claimed: str, body: bytes) -> Exception:
    """The body is not the one that was signed (its x-amz-content-sha256 says otherwise)."""
    from unkai.protocol import ServiceError

    if protocol == "rest-xml":
        return ServiceError("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not "
                            "match what was computed.", status=400, ClientComputedContentSHA256=claimed,
                            S3ComputedContentSHA256=hashlib.sha256(body).hexdigest())
    return _fail(protocol, "signature")
