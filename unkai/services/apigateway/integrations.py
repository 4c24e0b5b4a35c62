"""Calling what an API integrates with: Lambda functions (through the Lambda service's
in-process invoke) and HTTP endpoints (AWS hosts and ``*.localhost`` sent to unkai
itself with their Host kept), each under the integration's timeout."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit


from unkai.services.apigateway.responses import GatewayError
from unkai.localurls import own_port_hooks

_LAMBDA_URI = re.compile(r"^arn:aws[a-z-]*:apigateway:([a-z0-9-]+):lambda:path/[^/]+/functions/(.+)/"
                         r"(?:invocations|response-streaming-invocations)$")
_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
        "transfer-encoding", "upgrade", "host", "content-length"}


# backend response headers the gateway sets itself
DROPPED_RESPONSE_HEADERS = ("content-length", "transfer-encoding", "connection", "content-encoding", "date",
                            "server")


class IntegrationTimeout(Exception):
    pass


@dataclass
class LambdaResult:
    payload: bytes
    function_error: str | None
    stream: Any = None  # a streamed answer: (content type, async iterator of the chunks after the first)

    def json(self) -> Any:
        return json.loads(self.payload) if self.payload else None


def function_arn(uri: str, stage_variables: dict[str, str] | None = None) -> tuple[str, str]:
    """(function ARN or name, region) from a Lambda integration URI (or a bare ARN, as
    HTTP APIs allow), with ``${stageVariables.x}`` substituted."""
    uri = substitute_stage_variables(uri or "", stage_variables)
    m = _LAMBDA_URI.match(uri)
    if m:
        return m.group(2), m.group(1)
    if uri.startswith("arn:") and ":lambda:" in uri:
        return uri, uri.split(":")[3]
    raise GatewayError("API_CONFIGURATION_ERROR", "Internal server error")


def substitute_stage_variables(text: str, stage_variables: dict[str, str] | None) -> str:
    if "${stageVariables." not in text:
        return text
    variables = stage_variables or {}
    return re.sub(r"\$\{stageVariables\.([A-Za-z0-9_.:/-]+)\}", lambda m: variables.get(m.group(1), ""), text)


async def invoke_lambda(cloud: Any, uri: str, payload: bytes, timeout: float,
                        stage_variables: dict[str, str] | None = None,
                        invocation_type: str = "RequestResponse", tenant_id: str | None = None,
                        streaming: bool = False) -> LambdaResult:
    """Invoke the function (synchronously unless ``invocation_type`` is Event);
    IntegrationTimeout past ``timeout`` seconds."""
    arn, region = function_arn(uri, stage_variables)
    qualifier = None
    parts = arn.split(":")
    if len(parts) == 8:
        arn, qualifier = ":".join(parts[:7]), parts[7]
    lam = cloud.services.get("lambda")
    if lam is None or not hasattr(lam, "invoke"):
        raise GatewayError("API_CONFIGURATION_ERROR", "Internal server error")
    if streaming:
        return await _invoke_streaming(lam, arn, payload, region, qualifier, timeout, tenant_id)
    try:
        result = await asyncio.wait_for(lam.invoke(arn, payload, region=region, qualifier=qualifier,
                                                   invocation_type=invocation_type, tenant_id=tenant_id), timeout)
    except asyncio.TimeoutError:
        raise IntegrationTimeout() from None
    except GatewayError:
        raise
    except Exception as exc:  # the function is missing, throttled...: API Gateway answers 500
        code = getattr(exc, "code", "")
        if code in ("TooManyRequestsException",):
            raise GatewayError("THROTTLED") from None
        raise GatewayError("API_CONFIGURATION_ERROR", "Internal server error") from None
    return LambdaResult(result.payload or b"", result.function_error)


async def _invoke_streaming(lam: Any, arn: str, payload: bytes, region: str, qualifier: str | None, timeout: float,
                            tenant_id: str | None) -> LambdaResult:
    """InvokeWithResponseStream, as a streaming integration calls it (``Lambda.invoke_streaming``):
    the result has ``stream`` once the function starts streaming, else the whole answer."""
    try:
        got = await lam.invoke_streaming(arn, payload, timeout, region=region, qualifier=qualifier, tenant_id=tenant_id)
    except asyncio.TimeoutError:
        raise IntegrationTimeout() from None
    except Exception as exc:  # the function is missing, throttled...: API Gateway answers 500
        if getattr(exc, "code", "") == "TooManyRequestsException":
            raise GatewayError("THROTTLED") from None
        raise GatewayError("API_CONFIGURATION_ERROR", "Internal server error") from None
    if hasattr(got, "chunks"):
        return LambdaResult(b"", None, (got.content_type, got.chunks))
    return LambdaResult(got.payload or b"", got.function_error)


STREAM_DELIMITER = b"\0" * 8


async def streamed_proxy_response(result: LambdaResult) -> tuple[int, list[tuple[str, str]], Any] | None:
    """A Lambda proxy integration in response streaming mode: the function writes the metadata JSON
    (statusCode, headers, multiValueHeaders, cookies), eight NUL bytes, then the payload, which
    goes to the client as it comes. None when the metadata is not valid (API Gateway's 502)."""
    if result.stream is None:
        head, rest = result.payload, None
    else:
        head, rest = b"", result.stream[1]
        async for chunk in rest:
            head += chunk
            if STREAM_DELIMITER in head:
                break
    if STREAM_DELIMITER not in head:
        return None
    prelude, _, body = head.partition(STREAM_DELIMITER)
    try:
        meta = json.loads(prelude or b"{}")
        status = int(meta.get("statusCode") or 200)
    except (ValueError, TypeError, AttributeError):
        return None
    headers = [(k, str(v)) for k, v in (meta.get("headers") or {}).items()]
    for key, values in (meta.get("multiValueHeaders") or {}).items():
        headers += [(key, str(v)) for v in values or []]
    headers += [("set-cookie", str(c)) for c in meta.get("cookies") or []]

    async def stream():  # type: ignore[no-untyped-def]
        if body:
            yield body
        if rest is not None:
            async for chunk in rest:
                yield chunk

    return status, headers, stream()


class Outbound:
    """One HTTP client for every HTTP/HTTP_PROXY integration and JWKS fetch."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._client: Any = None  # an httpx.AsyncClient, made at the first call (httpx is slow to import)

    @property
    def client(self) -> Any:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(follow_redirects=False, verify=True,
                                             event_hooks=own_port_hooks(lambda: self.endpoint))
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def target(self, url: str) -> tuple[str, dict[str, str]]:
        """The URL to connect to and headers to add: AWS hosts and ``*.localhost`` are
        served by unkai itself, so they go to its endpoint with the Host kept."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if host.endswith((".amazonaws.com", ".localhost")) or host == "localhost":
            local = urlsplit(self.endpoint)
            rewritten = urlunsplit((local.scheme, local.netloc, parts.path or "/", parts.query, ""))
            return rewritten, {"host": parts.netloc}
        return url, {}

    async def request(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes,
                      timeout: float) -> "httpx.Response":
        import httpx

        url, extra = self.target(url)
        sent = [(k, v) for k, v in headers if k.lower() not in _HOP] + list(extra.items())
        try:
            return await self.client.request(method, url, headers=sent, content=body or None,
                                             timeout=httpx.Timeout(timeout))
        except httpx.TimeoutException:
            raise IntegrationTimeout() from None
        except httpx.HTTPError:
            raise GatewayError("INTEGRATION_FAILURE", "Internal server error") from None


INVALID_LAMBDA_PERMISSIONS = "Execution failed due to configuration error: Invalid permissions on Lambda function"


def lambda_permission_denied(cloud: Any, uri: str, stage_variables: dict[str, str] | None, source_arn: str,
                             credentials: str | None) -> str | None:
    """Under ``--enforce-iam``: why API Gateway may not invoke the integration's function, or None.
    With an integration role (``credentials``) the role must trust apigateway.amazonaws.com and
    allow lambda:InvokeFunction; without one the function's own policy must allow
    apigateway.amazonaws.com for ``source_arn`` (the method's execute-api ARN), as on AWS."""
    if not cloud.config.enforce_iam:
        return None
    try:
        arn, _ = function_arn(uri, stage_variables)
    except GatewayError:
        return None
    if not arn.startswith("arn:"):
        return None
    from unkai.services.iam import enforcement

    with cloud.store.transaction():
        if credentials and ":role/" in credentials:
            return enforcement.role_denied(cloud, "apigateway.amazonaws.com", credentials, "lambda:InvokeFunction",
                                           arn, source_arn)
        if credentials:  # arn:aws:iam::*:user/*: the caller's own credentials
            return None
        return enforcement.service_denied(cloud, "apigateway.amazonaws.com", arn, source_arn)
