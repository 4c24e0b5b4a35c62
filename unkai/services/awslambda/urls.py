"""Function URLs: the configuration API, and serving them on the gateway with
payload format 2.0 as AWS does.

A URL answers at ``/_unkai/lambda-url/{url-id}/...`` on unkai's address (the
FunctionUrl, which any client calls as it is: ``unkai/localurls.py``), at
``http://{url-id}.lambda-url.{region}.localhost:{port}/`` (browsers resolve
``*.localhost``) and at the AWS host name ``{url-id}.lambda-url.{region}.on.aws`` in the
Host header.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import string
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from unkai.gateway.signed import is_signed
from unkai.http import BodyTooLarge, Request, Response
from unkai.localurls import LAMBDA_URL_PREFIX, path_url
from unkai.protocol import ServiceError
from unkai.protocol.values import iso8601

if TYPE_CHECKING:
    from unkai.services import RequestContext
    from unkai.services.awslambda.service import Lambda

HOST = re.compile(r"^(?P<id>[a-z0-9]{32})\.lambda-url\.(?P<region>[a-z0-9-]+)\.(?:localhost|on\.aws)(?::\d+)?$")
MAX_PAYLOAD = 6 * 1024 * 1024  # Lambda's synchronous request payload
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "application/x-www-form-urlencoded")


def _url(service: "Lambda", url_id: str) -> str:
    return path_url(service.config.endpoint, LAMBDA_URL_PREFIX, url_id, "/")


def _key(service: "Lambda", ctx: "RequestContext", params: dict) -> tuple[tuple, str, str]:
    name, row = service._function(ctx, params["FunctionName"], params.get("Qualifier"))
    qualifier = name.qualifier or "$LATEST"
    arn = json.loads(row[1])["FunctionArn"]
    return row, qualifier, arn if qualifier == "$LATEST" else f"{arn}:{qualifier}"


def create(service: "Lambda", ctx: "RequestContext", params: dict) -> dict:
    row, qualifier, arn = _key(service, ctx, params)
    if qualifier != "$LATEST" and qualifier.isdigit():
        raise ServiceError("ValidationException", "1 validation error detected: Value at 'qualifier' failed to satisfy "
                           "constraint: Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)")
    if service.store.one("SELECT 1 FROM lambda_urls WHERE function_id=? AND qualifier=?", (row[0], qualifier)):
        raise ServiceError("ResourceConflictException", f"Failed to create function url config for [functionArn = "
                           f"{arn}]. Error message:  FunctionUrlConfig exists for this Lambda function", Type="User")
    url_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(32))
    now = iso8601(service.clock.now()).replace("Z", "000Z")
    config = {"FunctionUrl": _url(service, url_id), "FunctionArn": arn, "AuthType": params["AuthType"],
              "CreationTime": now, "LastModifiedTime": now, "InvokeMode": params.get("InvokeMode") or "BUFFERED"}
    if params.get("Cors"):
        config["Cors"] = params["Cors"]
    service.store.execute("INSERT INTO lambda_urls(function_id, qualifier, url_id, config) VALUES(?,?,?,?)",
                          (row[0], qualifier, url_id, json.dumps(config)))
    config.pop("LastModifiedTime")
    return config


def _find(service: "Lambda", ctx: "RequestContext", params: dict) -> tuple[tuple, str, dict]:
    row, qualifier, arn = _key(service, ctx, params)
    found = service.store.one("SELECT config FROM lambda_urls WHERE function_id=? AND qualifier=?", (row[0], qualifier))
    if found is None:
        raise ServiceError("ResourceNotFoundException", "The resource you requested does not exist.", Type="User")
    return row, qualifier, json.loads(found[0])


def get(service: "Lambda", ctx: "RequestContext", params: dict) -> dict:
    return _find(service, ctx, params)[2]


def update(service: "Lambda", ctx: "RequestContext", params: dict) -> dict:
    row, qualifier, config = _find(service, ctx, params)
    for key in ("AuthType", "Cors", "InvokeMode"):
        if key in params:
            config[key] = params[key]
    config["LastModifiedTime"] = iso8601(service.clock.now()).replace("Z", "000Z")
    service.store.execute("UPDATE lambda_urls SET config=? WHERE function_id=? AND qualifier=?",
                          (json.dumps(config), row[0], qualifier))
    return config


def delete(service: "Lambda", ctx: "RequestContext", params: dict) -> dict:
    row, qualifier, _ = _find(service, ctx, params)
    service.store.execute("DELETE FROM lambda_urls WHERE function_id=? AND qualifier=?", (row[0], qualifier))
    return {}


def list_configs(service: "Lambda", ctx: "RequestContext", params: dict) -> dict:
    name, row = service._function(ctx, params["FunctionName"])
    rows = service.store.all("SELECT config FROM lambda_urls WHERE function_id=? ORDER BY qualifier", (row[0],))
    return {"FunctionUrlConfigs": [json.loads(c) for (c,) in rows]}


# -- serving ----------------------------------------------------------------------------

def mount_function_urls(service: "Lambda") -> None:
    gateway = getattr(service.cloud, "gateway", None)
    if gateway is None:
        return

    def by_host(request: Request) -> bool:
        return HOST.match(request.host.lower()) is not None

    async def serve_host(request: Request) -> Response:
        m = HOST.match(request.host.lower())
        return await serve(service, request, m["id"], request.raw_path)

    async def serve_path(request: Request, m: re.Match) -> Response:
        return await serve(service, request, m["id"], m["rest"] or "/")

    gateway.mount(by_host, serve_host)
    gateway.internal.route("*", r"/_unkai/lambda-url/(?P<id>[a-z0-9]{32})(?P<rest>/.*)?", serve_path, access="public")


def _error(status: int, message: str) -> Response:
    return Response.json({"Message": message}, status, [("x-amzn-requestid", str(uuid.uuid4()))])


async def serve(service: "Lambda", request: Request, url_id: str, path: str) -> Response:
    row = service.store.one(
        "SELECT f.account, f.region, f.name, u.qualifier, u.config FROM lambda_urls u JOIN lambda_functions f ON "
        "f.id=u.function_id WHERE u.url_id=?", (url_id,))
    if row is None:
        return _error(403, "Forbidden")
    account, region, name, qualifier, config = row
    config = json.loads(config)
    cors = config.get("Cors") or {}
    origin = request.headers.get("origin")
    if request.method == "OPTIONS" and cors and origin:
        return Response(200, _cors_headers(cors, origin, preflight=True))
    try:
        body = await request.body(MAX_PAYLOAD)
    except BodyTooLarge:  # as AWS: the payload limit of a synchronous invocation, answered before invoking
        return _error(413, "Request must be smaller than 6291456 bytes for the InvokeFunction operation")
    if config.get("AuthType") == "AWS_IAM" and not is_signed(service.cloud, request, body):
        return _error(403, "Forbidden")  # as AWS: unsigned, or signed wrongly
    event = _event(request, url_id, region, account, path, body)
    if config.get("InvokeMode") == "RESPONSE_STREAM":
        return await _serve_stream(service, name, event, region, account, qualifier, cors, origin)
    try:
        result = await service.invoke(name, json.dumps(event).encode(), region=region, account=account,
                                      qualifier=None if qualifier == "$LATEST" else qualifier)
    except ServiceError as exc:
        if exc.code == "TooManyRequestsException":
            return _error(429, "Rate Exceeded.")
        return _error(502, "Internal Server Error")
    if result.function_error:
        return Response(502, [("content-type", "application/json"), ("x-amzn-requestid", result.request_id)],
                        b'{"Message":"Internal Server Error"}')
    response = _response(result.payload)
    response.headers.append(("x-amzn-requestid", result.request_id))
    if cors and origin:
        response.headers += _cors_headers(cors, origin, preflight=False)
    return response


HTTP_INTEGRATION = "application/vnd.awslambda.http-integration-response"
PRELUDE_END = b"\0" * 8


async def _serve_stream(service: "Lambda", name: str, event: dict, region: str, account: str, qualifier: str,
                        cors: dict, origin: str | None) -> Response:
    """``InvokeMode: RESPONSE_STREAM``: the body goes to the client as the function streams it. A
    streamed ``application/vnd.awslambda.http-integration-response`` starts with a JSON prelude
    (statusCode, headers, cookies) ended by eight NUL bytes, as ``awslambda.HttpResponseStream``
    writes it; a function that does not stream is answered as a buffered one."""
    from unkai.services.awslambda.service import Streamed

    extra = _cors_headers(cors, origin, preflight=False) if cors and origin else []
    try:
        got = await service.invoke_streaming(name, json.dumps(event).encode(), region=region, account=account,
                                             qualifier=None if qualifier == "$LATEST" else qualifier)
    except ServiceError as exc:
        return _error(429, "Rate Exceeded.") if exc.code == "TooManyRequestsException" else \
            _error(502, "Internal Server Error")
    if not isinstance(got, Streamed):
        if got.function_error:
            return Response(502, [("content-type", "application/json"), ("x-amzn-requestid", got.request_id)],
                            b'{"Message":"Internal Server Error"}')
        response = _response(got.payload)
        response.headers += [("x-amzn-requestid", got.request_id), *extra]
        return response
    content_type, stream = got.content_type, got.chunks
    status, headers, head = 200, [("content-type", content_type)], b""
    if content_type == HTTP_INTEGRATION:
        async for chunk in stream:  # the prelude comes first, maybe over several chunks
            head += chunk
            if PRELUDE_END in head:
                break
        prelude, _, head = head.partition(PRELUDE_END)
        try:
            meta = json.loads(prelude or b"{}")
            status = int(meta.get("statusCode") or 200)
        except (ValueError, TypeError, AttributeError):
            meta, status = {}, 200
        headers = [(k, str(v)) for k, v in (meta.get("headers") or {}).items()]
        headers += [("set-cookie", c) for c in meta.get("cookies") or []]
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("content-type", "application/octet-stream"))

    async def body():  # type: ignore[no-untyped-def]
        if head:
            yield head
        async for chunk in stream:
            yield chunk

    return Response(status, [*headers, ("x-amzn-requestid", event["requestContext"]["requestId"]), *extra], body())


def _event(request: Request, url_id: str, region: str, account: str, path: str, body: bytes) -> dict:
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for key, value in request.headers.raw():
        if key == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    query: dict[str, str] = {}
    for key, value in parse_qsl(request.query_string, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": request.query_string,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": "anonymous", "apiId": url_id,
        "domainName": f"{url_id}.lambda-url.{region}.on.aws", "domainPrefix": url_id,
        "http": {"method": request.method, "path": path, "protocol": "HTTP/1.1", "sourceIp": request.client,
                 "userAgent": request.headers.get("user-agent", "")},
        "requestId": str(uuid.uuid4()), "routeKey": "$default", "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)), "timeEpoch": int(now * 1000),
    }
    if body:
        content_type = request.headers.get("content-type", "")
        if any(content_type.startswith(t) for t in TEXT_TYPES):
            event["body"] = body.decode("utf-8", "replace")
            event["isBase64Encoded"] = False
        else:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    else:
        event["isBase64Encoded"] = False
    return event


def _response(payload: bytes) -> Response:
    """Payload format 2.0's response rules: a dict with statusCode is a response; anything
    else is the JSON body of a 200."""
    try:
        value = json.loads(payload or b"null")
    except ValueError:
        return Response(502, [("content-type", "application/json")], b'{"Message":"Internal Server Error"}')
    if isinstance(value, dict) and "statusCode" in value:
        headers = [(k, str(v)) for k, v in (value.get("headers") or {}).items()]
        for cookie in value.get("cookies") or []:
            headers.append(("set-cookie", cookie))
        body = value.get("body")
        body = "" if body is None else body
        # A body that is not a string is sent as its JSON (never Python's repr), as HTTP APIs do.
        text = body if isinstance(body, str) else json.dumps(body)
        data = base64.b64decode(text) if value.get("isBase64Encoded") else text.encode()
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("content-type", "application/json"))
        try:
            status = int(value["statusCode"])
        except (TypeError, ValueError):
            return Response(502, [("content-type", "application/json")], b'{"Message":"Internal Server Error"}')
        return Response(status, headers, data)
    body = value if isinstance(value, str) else json.dumps(value)
    return Response(200, [("content-type", "application/json")], body.encode())


def _cors_headers(cors: dict, origin: str, preflight: bool) -> list[tuple[str, str]]:
    allowed = cors.get("AllowOrigins") or []
    if "*" not in allowed and origin not in allowed:
        return []
    headers = [("access-control-allow-origin", "*" if "*" in allowed and not cors.get("AllowCredentials") else origin)]
    if cors.get("AllowCredentials"):
        headers.append(("access-control-allow-credentials", "true"))
    if cors.get("ExposeHeaders") and not preflight:
        headers.append(("access-control-expose-headers", ",".join(cors["ExposeHeaders"])))
    if preflight:
        if cors.get("AllowMethods"):
            headers.append(("access-control-allow-methods", ",".join(cors["AllowMethods"])))
        if cors.get("AllowHeaders"):
            headers.append(("access-control-allow-headers", ",".join(cors["AllowHeaders"])))
        if cors.get("MaxAge"):
            headers.append(("access-control-max-age", str(cors["MaxAge"])))
    return headers
