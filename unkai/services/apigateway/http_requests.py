"""Serving an HTTP API stage: CORS preflight, route selection (``$default`` last),
JWT and Lambda authorizers, route throttling, Lambda proxy integrations with payload
2.0 (and its response inference) or 1.0, HTTP proxy integrations, and HTTP API's
error answers (404 Not Found, 500 Internal Server Error...)."""

from __future__ import annotations

import logging

import base64
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from unkai.gateway.signed import is_signed
from unkai.http import Response
from unkai.services.apigateway import access_logs, authorizers, cors, payloads, service_integrations
from unkai.services.apigateway.payloads import Call
from unkai.services.apigateway.integrations import DROPPED_RESPONSE_HEADERS as _DROPPED
from unkai.services.apigateway.integrations import (INVALID_LAMBDA_PERMISSIONS, IntegrationTimeout, invoke_lambda,
                                                    lambda_permission_denied, substitute_stage_variables)
from unkai.services.apigateway.responses import GatewayError, plain
from unkai.services.apigateway.rest_requests import proxy_response
from unkai.services.apigateway.routing import Router

log = logging.getLogger(__name__)


MESSAGES = {"UNAUTHORIZED": (401, "Unauthorized"), "ACCESS_DENIED": (403, "Forbidden"),
            "THROTTLED": (429, "Too Many Requests"), "REQUEST_TOO_LARGE": (413, "Request Entity Too Large")}


@dataclass
class HttpStage:
    account: str
    region: str
    api: dict
    stage: dict
    router: Router
    default_route: dict | None
    integrations: dict[str, dict]
    authorizers: dict[str, dict]

    @property
    def variables(self) -> dict[str, str]:
        return self.stage.get("StageVariables") or {}


def compile_stage(account: str, region: str, api: dict, stage: dict, routes: list[dict], integrations: list[dict],
                  auths: list[dict]) -> HttpStage:
    router = Router()
    default = None
    for route in routes:
        if route["RouteKey"] == "$default":
            default = route
            continue
        verb, _, path = route["RouteKey"].partition(" ")
        router.add(path, verb, route)
    return HttpStage(account, region, api, stage, router, default,
                     {i["IntegrationId"]: i for i in integrations}, {a["AuthorizerId"]: a for a in auths})


def identity_values(sources: list[str], call: Call, route_params: dict[str, str], variables: dict[str, str],
                    context: dict[str, Any]) -> list[str | None]:
    """Values of identity sources: $request.header.X, $request.querystring.X,
    $context.X, $stageVariables.X (route.request.header.X for WebSockets)."""
    values: list[str | None] = []
    query = dict(call.query)
    for source in sources:
        source = source.strip()
        value = None
        for prefix in ("$request.header.", "route.request.header."):
            if source.startswith(prefix):
                value = call.header(source[len(prefix):])
        for prefix in ("$request.querystring.", "route.request.querystring."):
            if source.startswith(prefix):
                value = query.get(source[len(prefix):])
        if source.startswith("$stageVariables.") or source.startswith("stageVariables."):
            value = variables.get(source.split(".", 1)[1])
        if source.startswith("$context."):
            node: Any = context
            for part in source[len("$context."):].split("."):
                node = node.get(part) if isinstance(node, dict) else None
            value = None if node is None else str(node)
        values.append(value)
    return values


class HttpRequests:
    def __init__(self, plane: Any) -> None:
        self.plane = plane
        self.cloud = plane.cloud

    async def handle(self, call: Call, st: HttpStage) -> Response:
        started = time.perf_counter()
        state: dict[str, Any] = {"route_key": "-", "authorizer": None, "error": None, "integration_status": None,
                                 "integration_latency": None}
        conf = st.api.get("CorsConfiguration")
        headers = call.single_headers()
        try:
            if conf and cors.is_preflight(call.method, headers):
                response = cors.preflight(conf, headers, call.extended_id)
            else:
                response = await self._serve(call, st, state)
        except GatewayError as err:
            status, message = MESSAGES.get(err.kind, (500, "Internal Server Error"))
            state["error"] = message
            response = plain(status, message, call.extended_id, err.headers)
        except IntegrationTimeout:
            state["error"] = "Service Unavailable"
            response = plain(503, "Service Unavailable", call.extended_id)
        if conf and not cors.is_preflight(call.method, headers):
            cors.decorate(conf, headers, response)
        if not any(k.lower() == "apigw-requestid" for k, _ in response.headers):
            response.headers.append(("apigw-requestid", call.extended_id))
        call.extras["integration_latency"] = state["integration_latency"]  # for AWS/ApiGateway IntegrationLatency
        self._access_log(call, st, state, response, started)
        return response

    async def _serve(self, call: Call, st: HttpStage, state: dict) -> Response:
        found = st.router.match(call.raw_path, call.method)
        if found is not None:
            route, template, path_params = found
        elif st.default_route is not None:
            route, template, path_params = st.default_route, "$default", {}
        else:
            state["error"] = "Not Found"
            return plain(404, "Not Found", call.extended_id)
        state["route_key"] = route["RouteKey"]
        authorizer = await self._authorize(call, st, route, path_params)
        state["authorizer"] = authorizer
        self._throttle(call, st, route)
        target = route.get("Target") or ""
        integration = st.integrations.get(target.removeprefix("integrations/"))
        if integration is None:
            state["error"] = "Not Found"
            return plain(404, "Not Found", call.extended_id)
        timeout = (integration.get("TimeoutInMillis") or 30000) / 1000.0
        began = time.perf_counter()
        try:
            if integration.get("IntegrationSubtype"):  # a first-class AWS service integration
                response = service_integrations.run(
                    self.cloud, integration, st.region, call, path_params, st.variables,
                    payloads.http_context(call, route["RouteKey"]), call.extended_id)
                state["integration_status"] = response.status
                return response
            if integration["IntegrationType"] == "AWS_PROXY":
                if self.cloud.config.enforce_iam:
                    path = route["RouteKey"].split(" ", 1)[-1] if " " in route["RouteKey"] else call.raw_path
                    source_arn = (f"arn:aws:execute-api:{st.region}:{st.account}:{call.api_id}/{call.stage}/"
                                  f"{call.method}{path}")
                    if lambda_permission_denied(self.cloud, integration.get("IntegrationUri", ""), st.variables,
                                                source_arn, integration.get("CredentialsArn")) is not None:
                        log.warning("API %s %s: %s", call.api_id, route["RouteKey"], INVALID_LAMBDA_PERMISSIONS)
                        state["error"] = INVALID_LAMBDA_PERMISSIONS
                        raise GatewayError("API_CONFIGURATION_ERROR", "Internal server error")
                return await self._lambda(call, st, state, route, template, path_params, integration, timeout)
            return await self._http_proxy(call, st, state, path_params, integration, timeout)
        finally:
            state["integration_latency"] = int((time.perf_counter() - began) * 1000)

    async def _authorize(self, call: Call, st: HttpStage, route: dict, path_params: dict[str, str]) -> dict | None:
        kind = route.get("AuthorizationType") or "NONE"
        if kind == "NONE":
            return None
        if kind == "AWS_IAM":
            request = call.extras.get("request")
            if call.header("authorization") is None and request is None or \
                    request is not None and not is_signed(self.cloud, request, call.body):
                raise GatewayError("ACCESS_DENIED")
            return {"iam": {"sourceIp": call.source_ip, "userAgent": call.header("user-agent")}}
        auth = st.authorizers.get(route.get("AuthorizerId") or "")
        if auth is None:
            raise GatewayError("AUTHORIZER_CONFIGURATION_ERROR")
        context = payloads.http_context(call, route["RouteKey"])
        sources = auth.get("IdentitySource") or []
        values = identity_values(sources, call, path_params, st.variables, context)
        if auth["AuthorizerType"] == "JWT":
            token = values[0] if values else None
            if not token:
                raise GatewayError("UNAUTHORIZED")
            token = re.sub(r"^[Bb]earer\s+", "", token.strip())
            jwt_conf = auth.get("JwtConfiguration") or {}
            claims = await self.plane.authorizers.verify_jwt(token, jwt_conf.get("Issuer", ""),
                                                             jwt_conf.get("Audience") or [])
            scopes = authorizers.scopes_of(claims)
            wanted = route.get("AuthorizationScopes") or []
            if wanted and not set(wanted) & set(scopes):
                raise GatewayError("ACCESS_DENIED")
            return {"jwt": {"claims": authorizers.string_claims(claims), "scopes": scopes or None}}
        if sources and not all(values):
            raise GatewayError("UNAUTHORIZED")
        version = auth.get("AuthorizerPayloadFormatVersion") or "2.0"
        ttl = int(auth.get("AuthorizerResultTtlInSeconds") or 0) if sources else 0
        route_arn = (f"arn:aws:execute-api:{st.region}:{st.account}:{call.api_id}/{call.stage}/{call.method}"
                     f"{call.raw_path}")
        if version == "2.0":
            event = payloads.http_event_v2(call, route["RouteKey"], path_params, st.variables)
            event = {"version": "2.0", "type": "REQUEST", "routeArn": route_arn,
                     "identitySource": [v for v in values if v], **{k: v for k, v in event.items()
                                                                    if k not in ("version", "body",
                                                                                 "isBase64Encoded")}}
            if auth.get("EnableSimpleResponses"):
                ctx = await self.plane.authorizers.simple_authorizer(
                    api_id=call.api_id, stage=call.stage, auth=auth, identity=tuple(values), event=event,
                    stage_variables=st.variables, ttl=ttl)
                return {"lambda": ctx}
        else:
            event = payloads.http_event_v1(call, route["RouteKey"], route["RouteKey"].partition(" ")[2] or "$default",
                                         path_params, st.variables)
            event = {"version": "1.0", "type": "REQUEST", "methodArn": route_arn,
                     "identitySource": ",".join(v for v in values if v),
                     "authorizationToken": values[0] if values else None, **event}
        ctx = await self.plane.authorizers.policy_authorizer(
            api_id=call.api_id, stage=call.stage, auth=auth, identity=tuple(values), event=event,
            method_arn=route_arn, stage_variables=st.variables, ttl=ttl)
        principal = ctx.pop("principalId", None)
        ctx = {k: v for k, v in ctx.items() if not k.startswith("_") and k != "integrationLatency"}
        return {"lambda": ctx, "principalId": principal} if version == "2.0" else {**ctx, "principalId": principal}

    def _throttle(self, call: Call, st: HttpStage, route: dict) -> None:
        conf = (st.stage.get("RouteSettings") or {}).get(route["RouteKey"]) or {}
        default = st.stage.get("DefaultRouteSettings") or {}
        rate = conf.get("ThrottlingRateLimit", default.get("ThrottlingRateLimit"))
        burst = conf.get("ThrottlingBurstLimit", default.get("ThrottlingBurstLimit"))
        if not self.plane.limits.allow(("http", call.api_id, call.stage, route["RouteKey"]), rate, burst):
            raise GatewayError("THROTTLED")

    async def _lambda(self, call: Call, st: HttpStage, state: dict, route: dict, template: str,
                      path_params: dict[str, str], integration: dict, timeout: float) -> Response:
        version = integration.get("PayloadFormatVersion") or "2.0"
        if version == "2.0":
            event = payloads.http_event_v2(call, route["RouteKey"], path_params, st.variables, state["authorizer"])
        else:
            event = payloads.http_event_v1(call, route["RouteKey"], template, path_params, st.variables,
                                         state["authorizer"])
        result = await invoke_lambda(self.cloud, integration.get("IntegrationUri", ""), json.dumps(event).encode(),
                                     timeout, st.variables)
        state["integration_status"] = 200
        if result.function_error:
            raise GatewayError("INTEGRATION_FAILURE")
        try:
            out = result.json()
        except ValueError:
            raise GatewayError("INTEGRATION_FAILURE") from None
        if version == "1.0":
            parsed = proxy_response(out, "*/*", ["*/*"])
            if parsed is None:
                raise GatewayError("INTEGRATION_FAILURE")
            return Response(*parsed)
        return v2_response(out, result.payload)

    async def _http_proxy(self, call: Call, st: HttpStage, state: dict, path_params: dict[str, str],
                          integration: dict, timeout: float) -> Response:
        uri = substitute_stage_variables(integration.get("IntegrationUri", ""), st.variables)
        uri = re.sub(r"\{([^}+]+)\+?\}", lambda m: path_params.get(m.group(1), ""), uri)
        if call.raw_query:
            uri += ("&" if "?" in uri else "?") + call.raw_query
        headers = [(k, v) for k, v in payloads.forwarded_headers(call) if k != "host"]
        verb = (integration.get("IntegrationMethod") or "ANY").upper()
        answer = await self.plane.outbound.request(call.method if verb == "ANY" else verb, uri, headers, call.body,
                                                   timeout)
        state["integration_status"] = answer.status_code
        out = [(k, v) for k, v in answer.headers.multi_items()
               if k.lower() not in _DROPPED]
        return Response(answer.status_code, out, answer.content)

    def _access_log(self, call: Call, st: HttpStage, state: dict, response: Response, started: float) -> None:
        settings = st.stage.get("AccessLogSettings")
        if not settings:
            return
        context = payloads.http_context(call, state["route_key"], state["authorizer"])
        context.update(
            requestId=call.extended_id, extendedRequestId=call.extended_id, httpMethod=call.method,
            path=context["http"]["path"], protocol="HTTP/1.1", status=response.status,
            identity={"sourceIp": call.source_ip, "userAgent": call.header("user-agent")},
            requestTime=payloads.request_time(call.epoch), requestTimeEpoch=int(call.epoch * 1000),
            responseLength=len(response.body) if isinstance(response.body, (bytes, bytearray)) else None,
            responseLatency=int((time.perf_counter() - started) * 1000),
            integrationLatency=state["integration_latency"], integrationStatus=state["integration_status"],
            error={"message": state["error"]})
        access_logs.write(self.cloud, st.account, st.region, settings, context, st.variables, call.api_id,
                          call.stage)


def v2_response(out: Any, raw: bytes) -> Response:
    """Payload 2.0 responses: a dict with statusCode is taken apart; any other valid
    JSON becomes a 200 application/json body (a string as itself)."""
    if not isinstance(out, dict) or "statusCode" not in out:
        if out is None and not raw.strip():
            return Response(200, [("content-type", "application/json")], b"")
        body = out.encode() if isinstance(out, str) else raw
        return Response(200, [("content-type", "application/json")], body)
    try:
        status = int(out["statusCode"])
    except (TypeError, ValueError):
        raise GatewayError("INTEGRATION_FAILURE") from None
    headers: list[tuple[str, str]] = []
    for k, v in (out.get("headers") or {}).items():
        headers.append((str(k), str(v)))
    for k, vs in (out.get("multiValueHeaders") or {}).items():
        headers += [(str(k), str(v)) for v in (vs or [])]
    for cookie in out.get("cookies") or []:
        headers.append(("set-cookie", str(cookie)))
    body = out.get("body")
    if body is None:
        data = b""
    elif isinstance(body, str):
        data = body.encode()
        if out.get("isBase64Encoded"):
            try:
                data = base64.b64decode(body)
            except ValueError:
                raise GatewayError("INTEGRATION_FAILURE") from None
    else:
        data = json.dumps(body).encode()
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("content-type", "application/json"))
    return Response(status, headers, data)
