"""The events API Gateway hands to Lambda: the REST proxy event (payload 1.0), the HTTP
API event (payload 2.0) and the WebSocket event, field for field as AWS builds them."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def request_time(epoch: float) -> str:
    """AWS's CLF time: 04/Mar/2020:19:15:17 +0000."""
    t = time.gmtime(epoch)
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"


def title_case(name: str) -> str:
    """Header names as HTTP/1.1 clients write them (the server hands us lower case)."""
    return "-".join(p[:1].upper() + p[1:] for p in name.split("-"))


def media_type_matches(content_type: str, binary_types: list[str]) -> bool:
    """Whether a Content-Type (or Accept) names one of the API's binary media types."""
    if not binary_types or not content_type:
        return False
    for candidate in content_type.split(","):
        ct = candidate.split(";")[0].strip().lower()
        if not ct:
            continue
        major = ct.split("/")[0]
        for b in binary_types:
            b = b.replace("~1", "/").lower()
            if b in ("*/*", ct) or (b.endswith("/*") and b[:-2] == major):
                return True
    return False


@dataclass
class Call:
    """One HTTP request as API Gateway saw it, with everything events and logs need."""

    api_id: str
    stage: str
    method: str
    path: str  # without the stage, decoded
    raw_path: str  # without the stage, as sent
    raw_query: str
    headers: list[tuple[str, str]]  # lower-case names, in order
    query: list[tuple[str, str]]
    body: bytes
    source_ip: str
    request_id: str
    extended_id: str
    region: str
    account: str
    epoch: float
    port: int = 80
    scheme: str = "http"
    host: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def domain_name(self) -> str:
        return f"{self.api_id}.execute-api.{self.region}.amazonaws.com"

    def header(self, name: str) -> str | None:
        name = name.lower()
        found = None
        for k, v in self.headers:
            if k == name:
                found = v if found is None else f"{found},{v}"
        return found

    def single_headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for k, v in self.headers:
            out[k] = v
        return out


def _single(pairs: list[tuple[str, str]]) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for k, v in pairs:
        out[k] = v
    return out or None


def _multi(pairs: list[tuple[str, str]]) -> dict[str, list[str]] | None:
    out: dict[str, list[str]] = {}
    for k, v in pairs:
        out.setdefault(k, []).append(v)
    return out or None


def _body(call: Call, binary: bool) -> tuple[str | None, bool]:
    if not call.body:
        return None, False
    if binary:
        return base64.b64encode(call.body).decode(), True
    try:
        return call.body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(call.body).decode(), True


def forwarded_headers(call: Call) -> list[tuple[str, str]]:
    """The client's headers plus those API Gateway adds (X-Forwarded-*, trace id)."""
    headers = [(k, v) for k, v in call.headers if k not in ("x-forwarded-for", "x-forwarded-port",
                                                             "x-forwarded-proto")]
    forwarded = call.header("x-forwarded-for")
    headers.append(("x-forwarded-for", f"{forwarded}, {call.source_ip}" if forwarded else call.source_ip))
    headers.append(("x-forwarded-port", str(call.port)))
    headers.append(("x-forwarded-proto", call.scheme))
    if call.header("x-amzn-trace-id") is None:
        headers.append(("x-amzn-trace-id", call.extras.get("trace_id", "")))
    return headers


def identity(call: Call, api_key: str | None = None, api_key_id: str | None = None) -> dict[str, Any]:
    return {
        "cognitoIdentityPoolId": None, "accountId": None, "cognitoIdentityId": None, "caller": None,
        "apiKey": api_key, "apiKeyId": api_key_id, "sourceIp": call.source_ip, "principalOrgId": None,
        "accessKey": None, "cognitoAuthenticationType": None, "cognitoAuthenticationProvider": None,
        "userArn": None, "userAgent": call.header("user-agent"), "user": None,
    }


def rest_context(call: Call, resource_id: str, resource_path: str, authorizer: dict | None = None,
                 api_key: str | None = None, api_key_id: str | None = None) -> dict[str, Any]:
    """``requestContext`` of a REST proxy event (and ``$context`` of mapping templates)."""
    ctx: dict[str, Any] = {
        "resourceId": resource_id, "resourcePath": resource_path, "httpMethod": call.method,
        "extendedRequestId": call.extended_id, "requestTime": request_time(call.epoch),
        "path": f"/{call.stage}{call.raw_path}", "accountId": call.account, "protocol": "HTTP/1.1",
        "stage": call.stage, "domainPrefix": call.api_id, "requestTimeEpoch": int(call.epoch * 1000),
        "requestId": call.request_id, "identity": identity(call, api_key, api_key_id),
        "domainName": call.domain_name, "deploymentId": call.extras.get("deployment_id"), "apiId": call.api_id,
    }
    if authorizer is not None:
        ctx["authorizer"] = authorizer
    return ctx


def rest_proxy_event(call: Call, resource_path: str, resource_id: str, path_params: dict[str, str],
                     stage_variables: dict[str, str] | None, binary: bool, authorizer: dict | None = None,
                     api_key: str | None = None, api_key_id: str | None = None) -> dict[str, Any]:
    """The Lambda proxy integration event of a REST API (payload format 1.0)."""
    headers = [(title_case(k), v) for k, v in forwarded_headers(call)]
    body, encoded = _body(call, binary)
    return {
        "resource": resource_path,
        "path": call.path,
        "httpMethod": call.method,
        "headers": _single(headers),
        "multiValueHeaders": _multi(headers),
        "queryStringParameters": _single(call.query),
        "multiValueQueryStringParameters": _multi(call.query),
        "pathParameters": path_params or None,
        "stageVariables": stage_variables or None,
        "requestContext": rest_context(call, resource_id, resource_path, authorizer, api_key, api_key_id),
        "body": body,
        "isBase64Encoded": encoded,
    }


def http_context(call: Call, route_key: str, authorizer: dict | None = None) -> dict[str, Any]:
    """``requestContext`` of an HTTP API event, payload 2.0."""
    ctx: dict[str, Any] = {
        "accountId": call.account, "apiId": call.api_id, "domainName": call.domain_name,
        "domainPrefix": call.api_id,
        "http": {"method": call.method, "path": call.raw_path if call.stage == "$default"
                 else f"/{call.stage}{call.raw_path}", "protocol": "HTTP/1.1",
                 "sourceIp": call.source_ip, "userAgent": call.header("user-agent") or ""},
        "requestId": call.extended_id, "routeKey": route_key, "stage": call.stage,
        "time": request_time(call.epoch), "timeEpoch": int(call.epoch * 1000),
    }
    if authorizer is not None:
        ctx["authorizer"] = authorizer
    return ctx


def http_event_v2(call: Call, route_key: str, path_params: dict[str, str], stage_variables: dict[str, str] | None,
                  authorizer: dict | None = None) -> dict[str, Any]:
    """The HTTP API event, payload format 2.0: lower-case headers joined with commas,
    cookies apart, repeated query parameters joined with commas."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for k, v in forwarded_headers(call):
        if k == "cookie":
            cookies.extend(c.strip() for c in v.split(";") if c.strip())
            continue
        headers[k] = f"{headers[k]},{v}" if k in headers else v
    query: dict[str, str] = {}
    for k, v in call.query:
        query[k] = f"{query[k]},{v}" if k in query else v
    body, encoded = _body(call, False)
    if body is not None and not encoded and not _textual(call.header("content-type")):
        body, encoded = base64.b64encode(call.body).decode(), True
    event: dict[str, Any] = {
        "version": "2.0", "routeKey": route_key,
        "rawPath": call.raw_path if call.stage == "$default" else f"/{call.stage}{call.raw_path}",
        "rawQueryString": call.raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = http_context(call, route_key, authorizer)
    if body is not None:
        event["body"] = body
    if path_params:
        event["pathParameters"] = path_params
    event["isBase64Encoded"] = encoded
    if stage_variables:
        event["stageVariables"] = stage_variables
    return event


def http_event_v1(call: Call, route_key: str, resource_path: str, path_params: dict[str, str],
                  stage_variables: dict[str, str] | None, authorizer: dict | None = None) -> dict[str, Any]:
    """The HTTP API event, payload format 1.0 (the REST shape with HTTP API's context)."""
    headers = [(k, v) for k, v in forwarded_headers(call)]
    body, encoded = _body(call, False)
    if body is not None and not encoded and not _textual(call.header("content-type")):
        body, encoded = base64.b64encode(call.body).decode(), True
    ctx = rest_context(call, route_key, route_key, authorizer)
    ctx.pop("deploymentId", None)
    ctx.update(routeKey=route_key, requestId=call.extended_id, resourcePath=resource_path,
               path=call.raw_path if call.stage == "$default" else f"/{call.stage}{call.raw_path}")
    return {
        "version": "1.0", "resource": resource_path, "path": ctx["path"], "httpMethod": call.method,
        "headers": _single(headers), "multiValueHeaders": _multi(headers),
        "queryStringParameters": _single(call.query), "multiValueQueryStringParameters": _multi(call.query),
        "requestContext": ctx, "pathParameters": path_params or None, "stageVariables": stage_variables or None,
        "body": body, "isBase64Encoded": encoded,
    }


def _textual(content_type: str | None) -> bool:
    """HTTP APIs base64-encode every body whose type is not plainly text."""
    if not content_type:
        return True
    ct = content_type.split(";")[0].strip().lower()
    return ct.startswith("text/") or ct.endswith(("json", "xml", "javascript")) or \
        ct in ("application/x-www-form-urlencoded", "application/graphql") or "+json" in ct or "+xml" in ct
