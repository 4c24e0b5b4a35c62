"""HTTP API CORS (``CorsConfiguration``): API Gateway answers preflight requests
itself and puts the CORS headers on every response, replacing the backend's."""

from __future__ import annotations

from unkai.http import Response

CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-credentials", "access-control-expose-headers",
                "access-control-allow-methods", "access-control-allow-headers", "access-control-max-age")


def _allowed_origin(conf: dict, origin: str) -> str | None:
    origins = conf.get("AllowOrigins") or []
    if "*" in origins:
        return "*" if not conf.get("AllowCredentials") else origin
    lowered = origin.lower()
    for allowed in origins:
        if allowed.lower() == lowered:
            return origin
        if "*" in allowed:  # https://*.example.com
            head, _, tail = allowed.lower().partition("*")
            if lowered.startswith(head) and lowered.endswith(tail):
                return origin
    return None


def is_preflight(method: str, headers: dict[str, str]) -> bool:
    return method == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers


def preflight(conf: dict, headers: dict[str, str], request_id: str) -> Response:
    """The 204 answer to an OPTIONS preflight request."""
    out = [("apigw-requestid", request_id)]
    origin = _allowed_origin(conf, headers.get("origin", ""))
    method = headers.get("access-control-request-method", "").upper()
    methods = [m.upper() for m in conf.get("AllowMethods") or []]
    if origin and ("*" in methods or method in methods):
        out.append(("access-control-allow-origin", origin))
        out.append(("access-control-allow-methods", "*" if "*" in methods else ",".join(methods)))
        wanted = headers.get("access-control-request-headers")
        allowed_headers = [h.lower() for h in conf.get("AllowHeaders") or []]
        if allowed_headers:
            out.append(("access-control-allow-headers", wanted if "*" in allowed_headers and wanted
                        else ",".join(allowed_headers)))
        if conf.get("AllowCredentials"):
            out.append(("access-control-allow-credentials", "true"))
        if conf.get("MaxAge") is not None:
            out.append(("access-control-max-age", str(conf["MaxAge"])))
    return Response(204, out, b"")


def decorate(conf: dict, request_headers: dict[str, str], response: Response) -> None:
    """Replace a backend's CORS headers by the API's, for a request with an Origin."""
    response.headers = [(k, v) for k, v in response.headers if k.lower() not in CORS_HEADERS]
    origin = _allowed_origin(conf, request_headers.get("origin", "")) if "origin" in request_headers else None
    if origin is None:
        return
    response.headers.append(("access-control-allow-origin", origin))
    if conf.get("AllowCredentials"):
        response.headers.append(("access-control-allow-credentials", "true"))
    if conf.get("ExposeHeaders"):
        response.headers.append(("access-control-expose-headers", ",".join(conf["ExposeHeaders"])))
