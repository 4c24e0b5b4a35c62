"""CORS: the bucket's CORSConfiguration, answered for browser preflights
(``OPTIONS``) and added to actual responses, the way S3 evaluates its rules."""

from __future__ import annotations

import fnmatch
from typing import Any

from unkai.http import Request, Response
from unkai.protocol import PROTOCOLS, ServiceError
from unkai.services import RequestContext
from unkai.services.s3 import addressing
from unkai.services.s3.state import Bucket, S3Error, malformed_xml

METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")


def _matches(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value.lower(), pattern.lower().replace("[", "[[]"))


def match_rule(rules: list[dict], origin: str, method: str, headers: list[str]) -> dict | None:
    """The first rule allowing this origin, method and request headers."""
    for rule in rules:
        if not any(_matches(o, origin) for o in rule.get("AllowedOrigins") or []):
            continue
        if method not in (rule.get("AllowedMethods") or []):
            continue
        allowed = rule.get("AllowedHeaders") or []
        if all(any(_matches(a, h) for a in allowed) for h in headers):
            return rule
    return None


def cors_headers(rule: dict, origin: str, preflight: bool, request_headers: list[str]) -> list[tuple[str, str]]:
    wildcard = "*" in (rule.get("AllowedOrigins") or [])
    out = [("Access-Control-Allow-Origin", "*" if wildcard else origin),
           ("Access-Control-Allow-Methods", ", ".join(rule.get("AllowedMethods") or []))]
    if not wildcard:
        out.append(("Access-Control-Allow-Credentials", "true"))
    if preflight and request_headers:
        out.append(("Access-Control-Allow-Headers", ", ".join(request_headers)))
    if rule.get("ExposeHeaders"):
        out.append(("Access-Control-Expose-Headers", ", ".join(rule["ExposeHeaders"])))
    if rule.get("MaxAgeSeconds") is not None:
        out.append(("Access-Control-Max-Age", str(rule["MaxAgeSeconds"])))
    out.append(("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"))
    return out


def _request_headers(request: Request) -> list[str]:
    raw = request.headers.get("access-control-request-headers") or ""
    return [h.strip().lower() for h in raw.split(",") if h.strip()]


def bucket_of(request: Request) -> str | None:
    """The bucket an S3 request (either addressing style) is for."""
    bucket = addressing.virtual_bucket(request)
    if bucket is not None:
        return bucket
    first = request.path.lstrip("/").split("/", 1)[0]
    return first or None


class CorsOps:
    """Mixed into the S3 service."""

    store: Any
    cloud: Any

    def start_cors(self) -> None:
        self.cloud.gateway.mount(self._is_preflight, self._preflight)

    def put_bucket_cors(self, ctx: RequestContext, params: dict) -> dict:
        rules = (params.get("CORSConfiguration") or {}).get("CORSRules") or []
        if not rules or len(rules) > 100:
            raise malformed_xml()
        for rule in rules:
            if not rule.get("AllowedOrigins") or not rule.get("AllowedMethods"):
                raise malformed_xml()
            for method in rule["AllowedMethods"]:
                if method not in METHODS:
                    raise S3Error("InvalidRequest", "Found unsupported HTTP method in CORS config. "
                                       f"Unsupported method is {method}")
            for origin in rule["AllowedOrigins"]:
                if origin.count("*") > 1:
                    raise S3Error("InvalidRequest", f'AllowedOrigin "{origin}" can not have more than one '
                                       "wildcard.")
        self._set_config(params["Bucket"], "CORSRules", rules)  # type: ignore[attr-defined]
        return {}

    def get_bucket_cors(self, ctx: RequestContext, params: dict) -> dict:
        rules = self._get_config(params["Bucket"], "CORSRules",  # type: ignore[attr-defined]
                                 "NoSuchCORSConfiguration", "The CORS configuration does not exist")
        return {"CORSRules": rules}

    def delete_bucket_cors(self, ctx: RequestContext, params: dict) -> dict:
        self._set_config(params["Bucket"], "CORSRules", None)  # type: ignore[attr-defined]
        return {}

    # -- enforcement --------------------------------------------------------------------

    def _is_preflight(self, request: Request) -> bool:
        if request.method != "OPTIONS" or "origin" not in request.headers:
            return False
        route = self.cloud.gateway.router.resolve(request, None)
        return route is not None and route.service == "s3"

    def _cors_rules(self, name: str | None) -> tuple[Bucket | None, list[dict]]:
        bucket = self.bucket_named(name) if name else None  # type: ignore[attr-defined]
        return bucket, (bucket.config.get("CORSRules") or []) if bucket else []

    async def _preflight(self, request: Request) -> Response:
        origin = request.headers.get("origin") or ""
        method = request.headers.get("access-control-request-method")
        bucket, rules = self._cors_rules(bucket_of(request))
        if not method or method not in METHODS:
            return self._cors_error(S3Error("BadRequest", f"Invalid Access-Control-Request-Method: {method}"))
        if bucket is None:
            return self._cors_error(S3Error("NoSuchBucket", "The specified bucket does not exist",
                                                 BucketName=bucket_of(request) or ""))
        if not rules:
            return self._cors_error(S3Error("AccessForbidden", "CORSResponse: CORS is not enabled for this "
                                                 "bucket.", status=403, Method=method, ResourceType="BUCKET"))
        headers = _request_headers(request)
        rule = match_rule(rules, origin, method, headers)
        if rule is None:
            return self._cors_error(S3Error(
                "AccessForbidden", "CORSResponse: This CORS request is not allowed. This is usually because the "
                "evalution of Origin, request method / Access-Control-Request-Method or "
                "Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.", status=403,
                Method=method, ResourceType="OBJECT"))
        return Response(200, cors_headers(rule, origin, True, headers))

    def _cors_error(self, error: ServiceError) -> Response:
        return PROTOCOLS["rest-xml"].serialize_error(self.model, error, "")  # type: ignore[attr-defined]

    def allows_origin(self, request: Request, origin: str) -> bool:
        """A foreign page may call S3 where the bucket's CORS rules allow its origin and method
        (and, named by no Origin, only read: an ``<img>`` of an object)."""
        if origin == "cross-site":
            return request.method in ("GET", "HEAD")
        _, rules = self._cors_rules(bucket_of(request))
        return match_rule(rules, origin, "GET" if request.method == "HEAD" else request.method, []) is not None

    def finish_response(self, request: Request, response: Response) -> None:
        """Add the CORS headers a matching rule grants to an actual (non-preflight) response."""
        origin = request.headers.get("origin")
        if not origin:
            return
        _, rules = self._cors_rules(bucket_of(request))
        method = "GET" if request.method == "HEAD" and not any(
            "HEAD" in (r.get("AllowedMethods") or []) for r in rules) else request.method
        rule = match_rule(rules, origin, method, [])
        if rule is not None:
            response.headers.extend(cors_headers(rule, origin, False, []))
