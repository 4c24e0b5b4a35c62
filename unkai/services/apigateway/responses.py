"""Gateway responses: the answers API Gateway gives itself (missing route, bad key,
throttled, authorizer said no...), with AWS's default statuses and messages, and the
API's own overrides (PutGatewayResponse, ``x-amazon-apigateway-gateway-responses``)."""

from __future__ import annotations

import json
from typing import Any

from unkai.http import Response

# type -> (default status, default message); None status: the class default (4XX/5XX)
DEFAULTS: dict[str, tuple[int | None, str]] = {
    "ACCESS_DENIED": (403, "User is not authorized to access this resource with an explicit deny"),
    "API_CONFIGURATION_ERROR": (500, "Internal server error"),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, "Internal server error"),
    "AUTHORIZER_FAILURE": (500, "Internal server error"),
    "BAD_REQUEST_PARAMETERS": (400, "Missing required request parameters"),
    "BAD_REQUEST_BODY": (400, "Invalid request body"),
    "DEFAULT_4XX": (None, ""),
    "DEFAULT_5XX": (None, ""),
    "EXPIRED_TOKEN": (403, "The security token included in the request is expired"),
    "INTEGRATION_FAILURE": (504, "Internal server error"),
    "INTEGRATION_TIMEOUT": (504, "Endpoint request timed out"),
    "INVALID_API_KEY": (403, "Forbidden"),
    "INVALID_SIGNATURE": (403, "The request signature we calculated does not match the signature you provided"),
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token"),
    "QUOTA_EXCEEDED": (429, "Limit Exceeded"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long"),
    "RESOURCE_NOT_FOUND": (404, "Not Found"),
    "THROTTLED": (429, "Too Many Requests"),
    "UNAUTHORIZED": (401, "Unauthorized"),
    "UNSUPPORTED_MEDIA_TYPE": (415, "Unsupported Media Type"),
    "WAF_FILTERED": (403, "Forbidden"),
}

ERROR_TYPES = {
    "ACCESS_DENIED": "AccessDeniedException", "INVALID_API_KEY": "ForbiddenException",
    "MISSING_AUTHENTICATION_TOKEN": "MissingAuthenticationTokenException", "UNAUTHORIZED": "UnauthorizedException",
    "BAD_REQUEST_BODY": "BadRequestException", "BAD_REQUEST_PARAMETERS": "BadRequestException",
    "THROTTLED": "TooManyRequestsException", "QUOTA_EXCEEDED": "LimitExceededException",
    "REQUEST_TOO_LARGE": "RequestEntityTooLargeException",
    "UNSUPPORTED_MEDIA_TYPE": "UnsupportedMediaTypeException",
}


class GatewayError(Exception):
    """Stop the request with a gateway response of ``kind``."""

    def __init__(self, kind: str, message: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.message = message if message is not None else DEFAULTS[kind][1]
        self.headers = headers or {}


def render(kind: str, message: str, configured: dict[str, dict], context: dict[str, Any],
           request_headers: dict[str, str], stage_variables: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a gateway response, honouring the API's overrides
    (type-specific, then DEFAULT_4XX/DEFAULT_5XX)."""
    from unkai.services.apigateway import vtl

    status = DEFAULTS.get(kind, (500, ""))[0] or 500
    klass = "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX"
    conf = configured.get(kind) or configured.get(klass) or {}
    if conf.get("statusCode"):
        status = int(conf["statusCode"])
    headers: dict[str, str] = {}
    for target, source in (configured.get(klass, {}).get("responseParameters") or {}).items():
        _map_header(headers, target, source, request_headers, stage_variables, context)
    for target, source in (conf.get("responseParameters") or {}).items():
        _map_header(headers, target, source, request_headers, stage_variables, context)
    error_context = dict(context)
    error_context["error"] = {"message": message, "messageString": json.dumps(message), "responseType": kind,
                              "validationErrorString": message}
    templates = conf.get("responseTemplates") or {}
    template = templates.get("application/json") or next(iter(templates.values()), None) \
        if templates else None
    if template:
        body = vtl.render(template, body="", context=error_context, stage_variables=stage_variables)
    else:
        body = json.dumps({"message": message}, separators=(",", ":"))
    headers.setdefault("content-type", "application/json")
    if kind in ERROR_TYPES:
        headers.setdefault("x-amzn-ErrorType", ERROR_TYPES[kind])
    return status, headers, body.encode()


def _map_header(out: dict, target: str, source: str, request_headers: dict, stage_variables: dict,
                context: dict) -> None:
    if not target.startswith("gatewayresponse.header."):
        return
    name = target[len("gatewayresponse.header."):]
    value = resolve_source(source, request_headers, {}, {}, stage_variables, context)
    if value is not None:
        out[name] = value


def resolve_source(source: str, headers: dict[str, str], query: dict[str, str], path: dict[str, str],
                   stage_variables: dict[str, str], context: dict[str, Any]) -> str | None:
    """A mapping expression's value: ``'literal'``, ``method.request.header.X``,
    ``method.request.querystring.X``, ``method.request.path.X``, ``stageVariables.X``,
    ``context.X``."""
    source = (source or "").strip()
    if len(source) >= 2 and source[0] == source[-1] == "'":
        return source[1:-1]
    for prefix, group in (("method.request.header.", None), ("method.request.querystring.", query),
                          ("method.request.multivaluequerystring.", query), ("method.request.path.", path),
                          ("stageVariables.", stage_variables)):
        if source.startswith(prefix):
            name = source[len(prefix):]
            if group is None:
                lowered = name.lower()
                return next((v for k, v in headers.items() if k.lower() == lowered), None)
            return group.get(name)
    if source.startswith("context."):
        value: Any = context
        for part in source[len("context."):].split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return None if value is None else str(value)
    return None


def plain(status: int, message: str, request_id: str, extra: dict[str, str] | None = None) -> Response:
    """An error answer outside the REST gateway-response machinery (HTTP APIs)."""
    headers = [("content-type", "application/json"), ("apigw-requestid", request_id)]
    headers += list((extra or {}).items())
    return Response(status, headers, json.dumps({"message": message}, separators=(",", ":")).encode())
