"""Serving a REST API stage: route to a resource and method, then authorizer, API key
and usage plan, request validation, throttling, the integration (Lambda proxy, Lambda
with mapping templates, HTTP, HTTP_PROXY, MOCK), integration response selection, and
gateway responses for everything that stops a request on the way."""

from __future__ import annotations

import logging

import base64
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from unkai.gateway.signed import is_signed
from unkai.http import Response
from unkai.services.apigateway import access_logs, payloads, responses, vtl
from unkai.services.apigateway.payloads import Call
from unkai.services.apigateway.integrations import DROPPED_RESPONSE_HEADERS as _DROPPED
from unkai.services.apigateway.integrations import (INVALID_LAMBDA_PERMISSIONS, IntegrationTimeout, invoke_lambda,
                                                    lambda_permission_denied, streamed_proxy_response,
                                                    substitute_stage_variables)
from unkai.services.apigateway.responses import GatewayError, resolve_source
from unkai.services.apigateway.routing import Router


log = logging.getLogger(__name__)


@dataclass
class RestStage:
    """One stage's deployment, compiled for serving."""

    account: str
    region: str
    api: dict
    stage: dict
    router: Router
    authorizers: dict[str, dict]
    validators: dict[str, dict]
    models: dict[str, dict]
    gateway_responses: dict[str, dict]
    plans: list[dict]  # usage plans that include this stage
    keys: dict[str, dict]  # API key value -> key document (with "_plans": [plan ids])
    schemas: dict[str, Any] = field(default_factory=dict)

    @property
    def variables(self) -> dict[str, str]:
        return self.stage.get("variables") or {}


def compile_stage(account: str, region: str, stage: dict, deployment: dict, plans: list[dict],
                  keys: list[dict], plan_keys: dict[str, list[str]]) -> RestStage:
    snap = deployment["_snapshot"]
    router = Router()
    for res in snap["resources"]:
        for verb, method in (res.get("resourceMethods") or {}).items():
            router.add(res["path"], verb, (res, method))
    mine = [p for p in plans if any(s.get("apiId") == snap["api"]["id"] and s.get("stage") == stage["stageName"]
                                    for s in p.get("apiStages") or [])]
    by_value: dict[str, dict] = {}
    for key in keys:
        key_plans = [p["id"] for p in mine if key["id"] in plan_keys.get(p["id"], [])]
        if key_plans:
            by_value[key["value"]] = {**key, "_plans": key_plans}
    return RestStage(
        account=account, region=region, api=snap["api"], stage=stage, router=router,
        authorizers={a["id"]: a for a in snap["authorizers"]},
        validators={v["id"]: v for v in snap["validators"]},
        models={m["name"]: m for m in snap["models"]},
        gateway_responses={g["responseType"]: g for g in snap["gatewayResponses"]},
        plans=mine, keys=by_value,
    )


def new_extended_id() -> str:
    import secrets

    return base64.b64encode(secrets.token_bytes(11)).decode()[:15] + "="


def trace_id(epoch: float) -> str:
    import secrets

    return f"Root=1-{int(epoch):08x}-{secrets.token_hex(12)}"


class RestRequests:
    def __init__(self, plane: Any) -> None:
        self.plane = plane
        self.cloud = plane.cloud

    async def handle(self, call: Call, st: RestStage) -> Response:
        started = time.perf_counter()
        call.extras.setdefault("trace_id", trace_id(call.epoch))
        call.extras["deployment_id"] = st.stage.get("deploymentId")
        state: dict[str, Any] = {"resource_id": None, "resource_path": None, "authorizer": None,
                                 "api_key": None, "api_key_id": None, "integration_latency": None,
                                 "path_params": {}, "error": None, "integration_status": None}
        try:
            response = await self._serve(call, st, state)
        except GatewayError as err:
            response = self.gateway_response(call, st, state, err)
        except IntegrationTimeout:
            response = self.gateway_response(call, st, state, GatewayError("INTEGRATION_TIMEOUT"))
        except vtl.TemplateError as exc:
            response = self.gateway_response(call, st, state, GatewayError("API_CONFIGURATION_ERROR",
                                                                           "Internal server error"))
            state["error"] = str(exc)
        response.headers += [("x-amzn-RequestId", call.request_id), ("x-amz-apigw-id", call.extended_id)]
        call.extras["integration_latency"] = state["integration_latency"]  # for AWS/ApiGateway IntegrationLatency
        self._access_log(call, st, state, response, started)
        return response

    # -- the pipeline -----------------------------------------------------------------------

    async def _serve(self, call: Call, st: RestStage, state: dict) -> Response:
        found = st.router.match(call.raw_path, call.method)
        if found is None:
            raise GatewayError("MISSING_AUTHENTICATION_TOKEN")
        (res, method), template, path_params = found
        state.update(resource_id=res["id"], resource_path=res["path"], path_params=path_params)
        state["method"] = method
        auth_type = method.get("authorizationType", "NONE")
        if auth_type in ("CUSTOM", "COGNITO_USER_POOLS"):
            state["authorizer"] = await self._authorize(call, st, res, method, path_params)
        elif auth_type == "AWS_IAM":
            if "authorization" not in {k for k, _ in call.headers} and "X-Amz-Signature" not in call.raw_query:
                raise GatewayError("MISSING_AUTHENTICATION_TOKEN")
            request = call.extras.get("request")
            if request is not None and not is_signed(self.cloud, request, call.body):
                raise GatewayError("INVALID_SIGNATURE")
        if method.get("apiKeyRequired"):
            self._check_api_key(call, st, state)
        self._validate(call, st, method, path_params)
        self._throttle(call, st, res, method)
        integration = method.get("methodIntegration") or {}
        kind = integration.get("type")
        timeout = (integration.get("timeoutInMillis") or 29000) / 1000.0
        if kind in ("AWS_PROXY", "AWS") and self.cloud.config.enforce_iam:
            source_arn = (f"arn:aws:execute-api:{st.region}:{st.account}:{call.api_id}/{call.stage}/{call.method}"
                          f"{res['path']}")
            if lambda_permission_denied(self.cloud, integration.get("uri", ""), st.variables, source_arn,
                                        integration.get("credentials")) is not None:
                log.warning("API %s %s %s: %s", call.api_id, call.method, res["path"], INVALID_LAMBDA_PERMISSIONS)
                state["error"] = INVALID_LAMBDA_PERMISSIONS
                raise GatewayError("API_CONFIGURATION_ERROR", "Internal server error")
        began = time.perf_counter()
        try:
            if kind == "AWS_PROXY":
                return await self._lambda_proxy(call, st, state, integration, timeout)
            if kind == "AWS":
                service = aws_service_uri(substitute_stage_variables(integration.get("uri", ""), st.variables))
                if service is not None:
                    return await self._aws_service(call, st, state, integration, timeout, *service)
                return await self._lambda_custom(call, st, state, method, integration, timeout)
            if kind in ("HTTP", "HTTP_PROXY"):
                return await self._http(call, st, state, method, integration, timeout)
            if kind == "MOCK":
                return self._mock(call, st, state, method, integration)
            raise GatewayError("API_CONFIGURATION_ERROR", "Internal server error")
        finally:
            state["integration_latency"] = int((time.perf_counter() - began) * 1000)

    def _context(self, call: Call, st: RestStage, state: dict) -> dict[str, Any]:
        ctx = payloads.rest_context(call, state["resource_id"], state["resource_path"], state["authorizer"],
                                  state["api_key"], state["api_key_id"])
        ctx["authorizer"] = {k: v for k, v in (state["authorizer"] or {}).items() if not k.startswith("_")}
        return ctx

    def _params(self, call: Call, path_params: dict[str, str]) -> dict[str, dict[str, str]]:
        return {"path": dict(path_params), "querystring": dict(call.query),
                "header": {payloads.title_case(k): v for k, v in call.headers}}

    async def _authorize(self, call: Call, st: RestStage, res: dict, method: dict,
                         path_params: dict[str, str]) -> dict:
        auth = st.authorizers.get(method.get("authorizerId") or "")
        if auth is None:
            raise GatewayError("AUTHORIZER_CONFIGURATION_ERROR")
        headers = call.single_headers()
        query = dict(call.query)
        ttl = int(auth.get("authorizerResultTtlInSeconds") or 0)
        method_arn = (f"arn:aws:execute-api:{st.region}:{st.account}:{call.api_id}/{call.stage}/{call.method}"
                      f"{res['path'] if res['path'] != '/' else '/'}")
        if auth["type"] == "COGNITO_USER_POOLS":
            source = auth.get("identitySource") or "method.request.header.Authorization"
            token = resolve_source(source, headers, query, path_params, st.variables, {})
            if not token:
                raise GatewayError("UNAUTHORIZED")
            claims = await self._cognito_claims(auth, token.removeprefix("Bearer ").strip())
            scopes = method.get("authorizationScopes")
            if scopes:
                granted = set(str(claims.get("scope", "")).split())
                if not granted & set(scopes):
                    raise GatewayError("UNAUTHORIZED")
            return {"claims": claims}
        sources = [s.strip() for s in (auth.get("identitySource") or "").split(",") if s.strip()]
        values = [resolve_source(s, headers, query, path_params, st.variables, {}) for s in sources]
        if auth["type"] == "TOKEN":
            token = values[0] if values else None
            if not token:
                raise GatewayError("UNAUTHORIZED")
            pattern = auth.get("identityValidationExpression")
            if pattern and not re.fullmatch(pattern, token):
                raise GatewayError("UNAUTHORIZED")
            event = {"type": "TOKEN", "methodArn": method_arn, "authorizationToken": token}
        else:
            if sources and not all(values):
                raise GatewayError("UNAUTHORIZED")
            event = payloads.rest_proxy_event(call, res["path"], res["id"], path_params, st.variables, False)
            event = {"type": "REQUEST", "methodArn": method_arn, **{k: v for k, v in event.items()
                                                                     if k not in ("body", "isBase64Encoded")}}
        if not sources:
            ttl = 0
        return await self.plane.authorizers.policy_authorizer(
            api_id=call.api_id, stage=call.stage, auth=auth, identity=tuple(values), event=event,
            method_arn=method_arn, stage_variables=st.variables, ttl=ttl)

    async def _cognito_claims(self, auth: dict, token: str) -> dict:
        for arn in auth.get("providerARNs") or []:
            parts = arn.split(":")
            if len(parts) < 6 or "/" not in parts[5]:
                continue
            region, pool = parts[3], parts[5].split("/", 1)[1]
            issuer = f"https://cognito-idp.{region}.amazonaws.com/{pool}"
            try:
                return await self.plane.authorizers.verify_jwt(token, issuer, None, issuer + "/.well-known/jwks.json")
            except GatewayError:
                continue
        raise GatewayError("UNAUTHORIZED")

    def _check_api_key(self, call: Call, st: RestStage, state: dict) -> None:
        if (st.api.get("apiKeySource") or "HEADER") == "AUTHORIZER":
            value = (state["authorizer"] or {}).get("_usageIdentifierKey")
        else:
            value = call.header("x-api-key")
        key = st.keys.get(value or "")
        if key is None or not key.get("enabled"):
            raise GatewayError("INVALID_API_KEY")
        state.update(api_key=value, api_key_id=key["id"])
        limits = self.plane.limits
        for plan in st.plans:
            if plan["id"] not in key["_plans"]:
                continue
            throttle = plan.get("throttle") or {}
            if throttle and not limits.allow(("plan", plan["id"], key["id"]), throttle.get("rateLimit"),
                                             throttle.get("burstLimit")):
                raise GatewayError("THROTTLED")
            if not limits.consume_quota(plan["id"], key["id"], plan.get("quota")):
                raise GatewayError("QUOTA_EXCEEDED")

    def _validate(self, call: Call, st: RestStage, method: dict, path_params: dict[str, str]) -> None:
        validator = st.validators.get(method.get("requestValidatorId") or "")
        if validator is None:
            return
        if validator.get("validateRequestParameters"):
            missing = []
            query = dict(call.query)
            for name, required in (method.get("requestParameters") or {}).items():
                if not required:
                    continue
                parts = name.split(".", 3)
                if len(parts) != 4:
                    continue
                where, key = parts[2], parts[3]
                present = (call.header(key) is not None if where == "header"
                           else key in query if where in ("querystring", "multivaluequerystring")
                           else bool(path_params.get(key)))
                if not present:
                    missing.append(key)
            if missing:
                raise GatewayError("BAD_REQUEST_PARAMETERS",
                                   f"Missing required request parameters: [{', '.join(missing)}]")
        if validator.get("validateRequestBody"):
            models = method.get("requestModels") or {}
            ct = (call.header("content-type") or "application/json").split(";")[0].strip().lower()
            model_name = models.get(ct) or models.get("$default")
            if not model_name or model_name == "Empty":
                return
            model = st.models.get(model_name)
            if model is None or not model.get("schema"):
                return
            try:
                data = json.loads(call.body or b"null")
            except ValueError:
                raise GatewayError("BAD_REQUEST_BODY", "Invalid request body") from None
            schema = st.schemas.get(model_name)
            if schema is None:
                schema = st.schemas[model_name] = _model_schema(model_name, st.models)
            import jsonschema  # here, not at the top: slow to import, and only request validators need it

            if not jsonschema.Draft4Validator(schema).is_valid(data):
                raise GatewayError("BAD_REQUEST_BODY", "Invalid request body")

    def _throttle(self, call: Call, st: RestStage, res: dict, method: dict) -> None:
        settings = st.stage.get("methodSettings") or {}
        if not settings:
            return
        key = f"{res['path'].lstrip('/')}/{method['httpMethod']}" if res["path"] != "/" else \
            f"~1/{method['httpMethod']}"
        for candidate in (key, f"/{key}" if not key.startswith("~1") else key, "*/*"):
            conf = settings.get(candidate)
            if conf and ("throttlingRateLimit" in conf or "throttlingBurstLimit" in conf):
                if not self.plane.limits.allow(("rest", call.api_id, call.stage, candidate),
                                               conf.get("throttlingRateLimit"), conf.get("throttlingBurstLimit")):
                    raise GatewayError("THROTTLED")
                return

    # -- integrations --------------------------------------------------------------------------

    async def _lambda_proxy(self, call: Call, st: RestStage, state: dict, integration: dict,
                            timeout: float) -> Response:
        binary = payloads.media_type_matches(call.header("content-type") or "", st.api.get("binaryMediaTypes") or [])
        authorizer = None
        if state["authorizer"] is not None:
            authorizer = {k: v for k, v in state["authorizer"].items() if not k.startswith("_")}
        event = payloads.rest_proxy_event(call, state["resource_path"], state["resource_id"], state["path_params"],
                                        st.variables, binary, authorizer, state["api_key"], state["api_key_id"])
        streaming = integration.get("responseTransferMode") == "STREAM"
        result = await invoke_lambda(self.cloud, integration.get("uri", ""), json.dumps(event).encode(), timeout,
                                     st.variables, tenant_id=self._tenant(call, st, state, integration),
                                     streaming=streaming)
        state["integration_status"] = 200
        if result.function_error:
            return _bad_gateway()
        if streaming:  # InvokeWithResponseStream: metadata, eight NUL bytes, then the body as it comes
            answer = await streamed_proxy_response(result)
            if answer is None:
                return _bad_gateway()
            status, headers, body = answer
            headers.append(("X-Amzn-Trace-Id", call.extras["trace_id"]))
            return Response(status, headers, body)
        try:
            out = result.json()
        except ValueError:
            return _bad_gateway()
        parsed = proxy_response(out, call.header("accept") or "", st.api.get("binaryMediaTypes") or [])
        if parsed is None:
            return _bad_gateway()
        status, headers, body = parsed
        headers.append(("X-Amzn-Trace-Id", call.extras["trace_id"]))
        return Response(status, headers, body)

    async def _lambda_custom(self, call: Call, st: RestStage, state: dict, method: dict, integration: dict,
                             timeout: float) -> Response:
        payload = self._request_body(call, st, state, integration)
        params = integration.get("requestParameters") or {}
        invocation = (params.get("integration.request.header.X-Amz-Invocation-Type") or "").strip("'")
        tenant = self._tenant(call, st, state, integration)
        if invocation == "Event":
            await invoke_lambda(self.cloud, integration.get("uri", ""), payload, timeout, st.variables,
                                invocation_type="Event", tenant_id=tenant)
            state["integration_status"] = 202
            return self._integration_response(call, st, state, integration, "202", b"", {}, error_message=None)
        result = await invoke_lambda(self.cloud, integration.get("uri", ""), payload, timeout, st.variables,
                                     tenant_id=tenant)
        state["integration_status"] = 200
        message = None
        if result.function_error:
            try:
                message = str((result.json() or {}).get("errorMessage", ""))
            except (ValueError, AttributeError):
                message = result.payload.decode("utf-8", "replace")
        return self._integration_response(call, st, state, integration, None, result.payload, {},
                                          error_message=message)

    async def _aws_service(self, call: Call, st: RestStage, state: dict, integration: dict, timeout: float,
                           region: str, service: str, kind: str, rest: str) -> Response:
        """An AWS integration with another service (SQS, SNS, DynamoDB...): the request
        the mapping makes is served by unkai itself, as if the service's endpoint got it."""
        from urllib.parse import urlencode

        from unkai.http import Headers, Request

        body = self._request_body(call, st, state, integration)
        mapped = self._map_request_parameters(call, st, state, integration)
        name = service.rsplit(".", 1)[-1]  # "mybucket.s3" addresses a bucket
        router = self.cloud.gateway.router
        model = router.models.get(router.by_endpoint.get(name, name))
        headers = {"host": f"{service}.{region}.amazonaws.com",
                   "authorization": f"AWS4-HMAC-SHA256 Credential=apigateway/20150101/{region}/"
                                    f"{model.signing_name if model else name}/aws4_request, "
                                    "SignedHeaders=host, Signature=0"}
        headers.update({k.lower(): v for k, v in mapped["header"].items()})
        query = dict(mapped["querystring"])
        if kind == "action":
            action, _, extra = rest.partition("&")
            path = "/"
            meta = model.metadata if model else {}
            if meta.get("targetPrefix") and meta.get("protocol") == "json":
                headers.setdefault("x-amz-target", f"{meta['targetPrefix']}.{action}")
                headers.setdefault("content-type", f"application/x-amz-json-{meta.get('jsonVersion', '1.0')}")
            else:
                query = {"Action": action, **dict(p.split("=", 1) for p in extra.split("&") if "=" in p), **query}
        else:
            path = "/" + re.sub(r"\{([^}]+)\}", lambda m: mapped["path"].get(m.group(1), ""), rest)
        request = Request((integration.get("httpMethod") or "POST").upper(), path, urlencode(query),
                          Headers.from_dict(headers), body=body)
        request.state["internal"] = True  # the integration's role is trusted: no signature to check
        answer = await self.cloud.gateway.call_aws(request)
        data = answer.body if isinstance(answer.body, (bytes, bytearray)) else b"".join(
            [chunk async for chunk in answer.body])
        state["integration_status"] = answer.status
        return self._integration_response(call, st, state, integration, str(answer.status), bytes(data),
                                          dict(answer.headers), error_message=None)

    async def _http(self, call: Call, st: RestStage, state: dict, method: dict, integration: dict,
                    timeout: float) -> Response:
        proxy = integration["type"] == "HTTP_PROXY"
        mapped = self._map_request_parameters(call, st, state, integration)
        uri = substitute_stage_variables(integration.get("uri", ""), st.variables)
        path_values = {**({} if not proxy else state["path_params"]), **mapped["path"]}
        uri = re.sub(r"\{([^}+]+)\+?\}", lambda m: path_values.get(m.group(1), ""), uri)
        query: list[tuple[str, str]] = list(call.query) if proxy else []
        query += [(k, v) for k, v in mapped["querystring"].items() if (k, v) not in query]
        if query:
            from urllib.parse import urlencode

            uri += ("&" if "?" in uri else "?") + urlencode(query)
        if proxy:
            headers = [(k, v) for k, v in payloads.forwarded_headers(call) if k != "host"]
            body = call.body
        else:
            headers = []
            ct = call.header("content-type")
            body = self._request_body(call, st, state, integration)
            if ct:
                headers.append(("content-type", ct))
        headers += list(mapped["header"].items())
        verb = (integration.get("httpMethod") or call.method).upper()
        if verb == "ANY":
            verb = call.method
        answer = await self.plane.outbound.request(verb, uri, headers, body, timeout)
        state["integration_status"] = answer.status_code
        if proxy:
            out = [(k, v) for k, v in answer.headers.multi_items()
                   if k.lower() not in _DROPPED]
            return Response(answer.status_code, out, answer.content)
        return self._integration_response(call, st, state, integration, str(answer.status_code), answer.content,
                                          dict(answer.headers), error_message=None)

    def _mock(self, call: Call, st: RestStage, state: dict, method: dict, integration: dict) -> Response:
        rendered = self._request_body(call, st, state, integration).decode("utf-8", "replace")
        status = "200"
        try:
            data = json.loads(rendered) if rendered.strip() else {}
            if isinstance(data, dict) and "statusCode" in data:
                status = str(int(data["statusCode"]))
        except (ValueError, TypeError):
            pass
        state["integration_status"] = int(status)
        return self._integration_response(call, st, state, integration, status, b"", {}, error_message=None)

    # -- mapping -----------------------------------------------------------------------------------

    def _request_body(self, call: Call, st: RestStage, state: dict, integration: dict) -> bytes:
        """The integration request body: the mapping template for the request's content
        type, or the body passed through as the passthrough behavior allows."""
        templates = integration.get("requestTemplates") or {}
        ct = (call.header("content-type") or "application/json").split(";")[0].strip().lower()
        template = templates.get(ct)
        behavior = integration.get("passthroughBehavior") or "WHEN_NO_MATCH"
        if template is None:
            if behavior == "NEVER" or (behavior == "WHEN_NO_TEMPLATES" and templates):
                raise GatewayError("UNSUPPORTED_MEDIA_TYPE")
            if integration.get("type") == "MOCK" and "application/json" in templates and not call.header(
                    "content-type"):
                template = templates["application/json"]
            else:
                return call.body
        if not template:
            return call.body if integration.get("type") != "MOCK" else b""
        text = call.body.decode("utf-8", "replace")
        context = self._context(call, st, state)
        context["requestOverride"] = {"header": {}, "querystring": {}, "path": {}}
        rendered = vtl.render(template, body=text, params=self._params(call, state["path_params"]),
                              context=context, stage_variables=st.variables)
        state["request_override"] = vtl.overrides(context["requestOverride"])
        return rendered.encode()

    def _tenant(self, call: Call, st: RestStage, state: dict, integration: dict) -> str | None:
        """The tenant of a tenant-isolated function: the integration maps a request value to the Invoke
        call's ``X-Amz-Tenant-Id`` header (``integration.request.header.X-Amz-Tenant-Id``), as AWS documents."""
        params = integration.get("requestParameters") or {}
        if not any(k.lower() == "integration.request.header.x-amz-tenant-id" for k in params):
            return None
        mapped = self._map_request_parameters(call, st, state, integration)["header"]
        return next((v for k, v in mapped.items() if k.lower() == "x-amz-tenant-id" and v), None)

    def _map_request_parameters(self, call: Call, st: RestStage, state: dict,
                                integration: dict) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {"path": {}, "querystring": {}, "header": {}}
        headers = call.single_headers()
        context = self._context(call, st, state)
        for target, source in (integration.get("requestParameters") or {}).items():
            parts = target.split(".", 3)
            if len(parts) != 4 or parts[0] != "integration" or parts[2] not in ("path", "querystring", "header",
                                                                                  "multivaluequerystring"):
                continue
            value = resolve_source(source, headers, dict(call.query), state["path_params"], st.variables, context)
            if value is not None:
                out["querystring" if parts[2] == "multivaluequerystring" else parts[2]][parts[3]] = value
        for where, values in (state.get("request_override") or {}).items():  # $context.requestOverride wins
            if isinstance(values, dict) and where in out:
                out[where].update({k: str(v) for k, v in values.items()})
        return out

    def _integration_response(self, call: Call, st: RestStage, state: dict, integration: dict, status: str | None,
                              body: bytes, headers: dict[str, str], error_message: str | None) -> Response:
        chosen = select_integration_response(integration.get("integrationResponses") or {},
                                             error_message if status is None else status,
                                             lambda_default=status is None and error_message is None)
        if chosen is None:
            raise GatewayError("API_CONFIGURATION_ERROR", "Internal server error")
        text = body.decode("utf-8", "replace")
        out_headers: list[tuple[str, str]] = []
        parsed: Any = ...
        for target, source in (chosen.get("responseParameters") or {}).items():
            if not target.startswith("method.response.header."):
                continue
            name = target[len("method.response.header."):]
            value = None
            source = (source or "").strip()
            if len(source) >= 2 and source[0] == source[-1] == "'":
                value = source[1:-1]
            elif source.startswith("integration.response.header."):
                wanted = source[len("integration.response.header."):].lower()
                value = next((v for k, v in headers.items() if k.lower() == wanted), None)
            elif source == "integration.response.body":
                value = text
            elif source.startswith("integration.response.body."):
                if parsed is ...:
                    try:
                        parsed = json.loads(text)
                    except ValueError:
                        parsed = None
                found = vtl.json_path(parsed, "$" + source[len("integration.response.body"):])
                value = found if isinstance(found, str) or found is None else json.dumps(found)
            elif source.startswith("stageVariables."):
                value = st.variables.get(source[len("stageVariables."):])
            elif source.startswith("context."):
                value = resolve_source(source, {}, {}, {}, {}, self._context(call, st, state))
            if value is not None:
                out_headers.append((name, value))
        templates = chosen.get("responseTemplates") or {}
        status_code = int(chosen["statusCode"])
        content_type = "application/json"
        if templates:
            accept = (call.header("accept") or "").split(",")[0].split(";")[0].strip().lower()
            content_type = accept if accept in templates else next(iter(templates))
            template = templates[content_type]
            if template:
                context = self._context(call, st, state)
                context["responseOverride"] = {"header": {}}
                body = vtl.render(template, body=text, params=self._params(call, state["path_params"]),
                                  context=context, stage_variables=st.variables).encode()
                override = vtl.overrides(context["responseOverride"])
                for name, value in (override.get("header") or {}).items():  # $context.responseOverride wins
                    out_headers = [(k, v) for k, v in out_headers if k.lower() != name.lower()]
                    out_headers.append((name, str(value)))
                if str(override.get("status", "")).strip().isdigit():
                    status_code = int(str(override["status"]).strip())
        if not any(k.lower() == "content-type" for k, _ in out_headers):
            out_headers.append(("Content-Type", content_type))
        return Response(status_code, out_headers, body)

    # -- the way out -------------------------------------------------------------------------------

    def gateway_response(self, call: Call, st: RestStage, state: dict, err: GatewayError) -> Response:
        state["error"] = err.message
        state["error_type"] = err.kind
        context = payloads.rest_context(call, state["resource_id"] or "", state["resource_path"] or "")
        status, headers, body = responses.render(err.kind, err.message, st.gateway_responses, context,
                                                 call.single_headers(), st.variables)
        headers.update(err.headers)
        return Response(status, list(headers.items()), body)

    def _access_log(self, call: Call, st: RestStage, state: dict, response: Response, started: float) -> None:
        settings = st.stage.get("accessLogSettings")
        if not settings:
            return
        context = payloads.rest_context(call, state["resource_id"] or "-", state["resource_path"] or "-",
                                      state["authorizer"], state["api_key"], state["api_key_id"])
        body_length = len(response.body) if isinstance(response.body, (bytes, bytearray)) else None
        context.update(status=response.status, responseLength=body_length,
                       responseLatency=int((time.perf_counter() - started) * 1000),
                       integrationLatency=state["integration_latency"],
                       integrationStatus=state["integration_status"],
                       error={"message": state["error"], "responseType": state.get("error_type")},
                       wafResponseCode=None)
        access_logs.write(self.cloud, st.account, st.region, settings, context, st.variables, call.api_id,
                          call.stage)


_SERVICE_URI = re.compile(r"^arn:aws[a-z-]*:apigateway:([a-z0-9-]+):([a-z0-9.-]+):(path|action)/(.+)$")


def aws_service_uri(uri: str) -> tuple[str, str, str, str] | None:
    """(region, service, 'path'|'action', rest) of an AWS integration URI for a service
    other than Lambda (whose URIs name a function)."""
    m = _SERVICE_URI.match(uri)
    if m is None or m.group(2) == "lambda":
        return None
    return m.group(1), m.group(2), m.group(3), m.group(4)


def _model_schema(name: str, models: dict[str, dict]) -> dict:
    """A model's JSON schema with references to other models of the API resolved."""
    schema = json.loads(models[name]["schema"])
    definitions = {}
    for other, model in models.items():
        if model.get("schema"):
            try:
                definitions[other] = json.loads(model["schema"])
            except ValueError:
                continue

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if k == "$ref" and isinstance(v, str):
                    target = v.rsplit("/", 1)[-1]
                    out[k] = f"#/definitions/{target}" if target in definitions else v
                else:
                    out[k] = fix(v)
            return out
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    fixed = fix(schema)
    fixed.setdefault("definitions", {}).update({k: fix(v) for k, v in definitions.items()})
    return fixed


def select_integration_response(responses_: dict[str, dict], subject: str | None,
                                lambda_default: bool) -> dict | None:
    """The integration response whose selection pattern matches the status code (HTTP,
    MOCK) or the Lambda error message; the default one (no pattern) otherwise."""
    default = None
    for resp in responses_.values():
        pattern = resp.get("selectionPattern")
        if not pattern:
            default = default or resp
            continue
        if subject is not None and not lambda_default:
            try:
                if re.fullmatch(pattern, subject, re.DOTALL):
                    return resp
            except re.error:
                continue
    return default


def proxy_response(out: Any, accept: str, binary_types: list[str]) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """A Lambda proxy response as (status, headers, body), or None when malformed."""
    if not isinstance(out, dict):
        return None
    allowed = {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded", "cookies"}
    if set(out) - allowed:
        return None
    try:
        status = int(out.get("statusCode", 200))
    except (TypeError, ValueError):
        return None
    if not 100 <= status <= 599:
        return None
    headers_in = out.get("headers") or {}
    multi = out.get("multiValueHeaders") or {}
    body = out.get("body")
    if not isinstance(headers_in, dict) or not isinstance(multi, dict) or (body is not None and
                                                                           not isinstance(body, str)):
        return None
    headers: list[tuple[str, str]] = []
    for k, vs in multi.items():
        if not isinstance(vs, list):
            return None
        headers += [(str(k), str(v)) for v in vs]
    seen = {k.lower() for k, _ in headers}
    headers += [(str(k), "" if v is None else str(v)) for k, v in headers_in.items() if str(k).lower() not in seen]
    data = (body or "").encode()
    if out.get("isBase64Encoded") and body:
        if payloads.media_type_matches(accept, binary_types):
            try:
                data = base64.b64decode(body)
            except ValueError:
                return None
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return status, headers, data


def _bad_gateway() -> Response:
    return Response(502, [("Content-Type", "application/json"), ("x-amzn-ErrorType", "InternalServerErrorException")],
                    b'{"message": "Internal server error"}')
