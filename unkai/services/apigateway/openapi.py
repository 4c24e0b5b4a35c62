"""OpenAPI (Swagger 2 and OpenAPI 3) definitions with API Gateway's extensions
(``x-amazon-apigateway-integration``, ``-authorizer``, ``-request-validators``,
``-gateway-responses``, ``-binary-media-types``, ``-cors``...) turned into REST API
resources and methods or HTTP API routes: what ``DefinitionBody``/``Body``,
ImportRestApi/PutRestApi and ImportApi carry."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from unkai.protocol import ServiceError
from unkai.services.apigateway.documents import escaped_policy

if TYPE_CHECKING:
    from unkai.services import RequestContext
    from unkai.services.apigateway.httpapi import HttpApis
    from unkai.services.apigateway.restapi import RestApis

VERBS = ("get", "post", "put", "patch", "delete", "head", "options")
ANY = "x-amazon-apigateway-any-method"
INTEGRATION = "x-amazon-apigateway-integration"


def load(body: Any) -> dict[str, Any]:
    """A definition from a dict, or JSON or YAML text."""
    if isinstance(body, dict):
        return body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str) or not body.strip():
        raise ServiceError("BadRequestException", "Invalid OpenAPI input.")
    try:
        spec = json.loads(body)
    except ValueError:
        import yaml

        try:
            spec = yaml.safe_load(body)
        except yaml.YAMLError as exc:
            raise ServiceError("BadRequestException", f"Invalid OpenAPI input: {exc}") from None
    if not isinstance(spec, dict) or not ("swagger" in spec or "openapi" in spec):
        raise ServiceError("BadRequestException", "Invalid OpenAPI input: the definition has no "
                           "'swagger' or 'openapi' version field.")
    return spec


def _schemes(spec: dict) -> dict[str, dict]:
    return dict((spec.get("components") or {}).get("securitySchemes") or spec.get("securityDefinitions") or {})


def _operations(spec: dict) -> list[tuple[str, str, dict, list]]:
    """(path, METHOD, operation, path-level parameters) for every operation."""
    found = []
    for path, item in (spec.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        shared = item.get("parameters") or []
        for key, op in item.items():
            if not isinstance(op, dict):
                continue
            if key == ANY:
                found.append((path, "ANY", op, shared))
            elif key.lower() in VERBS:
                found.append((path, key.upper(), op, shared))
    return found


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _lower_keys(d: dict | None) -> dict:
    return {k: v for k, v in (d or {}).items()}


# -- REST APIs ---------------------------------------------------------------------


def import_rest(apis: "RestApis", ctx: "RequestContext", api: dict, spec: dict, base_path: str) -> None:
    api_id = api["id"]
    if spec.get("x-amazon-apigateway-binary-media-types") is not None:
        api["binaryMediaTypes"] = list(spec["x-amazon-apigateway-binary-media-types"])
    if spec.get("x-amazon-apigateway-api-key-source"):
        api["apiKeySource"] = spec["x-amazon-apigateway-api-key-source"]
    if spec.get("x-amazon-apigateway-policy"):
        policy = spec["x-amazon-apigateway-policy"]
        api["policy"] = escaped_policy(policy if isinstance(policy, str) else json.dumps(policy))
    # models
    schemas = (spec.get("components") or {}).get("schemas") or spec.get("definitions") or {}
    for name, schema in schemas.items():
        apis.create_model(ctx, api_id, {"name": name, "schema": json.dumps(schema),
                                        "contentType": "application/json"})
    # validators
    validators: dict[str, str] = {}
    for name, conf in (spec.get("x-amazon-apigateway-request-validators") or {}).items():
        validators[name] = apis.create_validator(ctx, api_id, {"name": name, **(conf or {})})["id"]
    default_validator = spec.get("x-amazon-apigateway-request-validator")
    # authorizers and API-key schemes
    authorizers: dict[str, dict] = {}
    key_schemes: set[str] = set()
    iam_schemes: set[str] = set()
    for name, scheme in _schemes(spec).items():
        conf = scheme.get("x-amazon-apigateway-authorizer")
        if conf:
            kind = (conf.get("type") or "token").upper()
            identity = conf.get("identitySource")
            if kind == "TOKEN" and not identity and scheme.get("in") == "header":
                identity = f"method.request.header.{scheme.get('name', 'Authorization')}"
            authorizers[name] = apis.create_authorizer(ctx, api_id, {
                "name": name, "type": kind, "authorizerUri": conf.get("authorizerUri"),
                "authorizerCredentials": conf.get("authorizerCredentials"), "identitySource": identity,
                "identityValidationExpression": conf.get("identityValidationExpression"),
                "authorizerResultTtlInSeconds": conf.get("authorizerResultTtlInSeconds"),
                "providerARNs": conf.get("providerARNs"), "_jwks": conf.get("x-unkai-jwks"),
            })
        elif scheme.get("x-amazon-apigateway-authtype") == "awsSigv4":
            iam_schemes.add(name)
        elif scheme.get("type") == "apiKey":
            key_schemes.add(name)
    # gateway responses
    for kind, conf in (spec.get("x-amazon-apigateway-gateway-responses") or {}).items():
        apis.put_gateway_response(ctx, api_id, {"responseType": kind, "statusCode": conf.get("statusCode"),
                                                "responseParameters": conf.get("responseParameters"),
                                                "responseTemplates": conf.get("responseTemplates")})
    prefix = ""
    if base_path == "prepend":
        prefix = (spec.get("basePath") or "").rstrip("/")
    default_security = spec.get("security")
    for path, verb, op, shared in _operations(spec):
        res = apis.ensure_path(ctx, api, prefix + path)
        params: dict[str, Any] = {"httpMethod": verb, "operationName": op.get("operationId")}
        request_parameters: dict[str, bool] = {}
        for p in list(shared) + list(op.get("parameters") or []):
            if "$ref" in p:
                continue
            where = {"query": "querystring", "header": "header", "path": "path"}.get(p.get("in"))
            if where:
                request_parameters[f"method.request.{where}.{p['name']}"] = bool(p.get("required"))
            elif p.get("in") == "body" and (p.get("schema") or {}).get("$ref"):
                params["requestModels"] = {"application/json": _ref_name(p["schema"]["$ref"])}
        content = ((op.get("requestBody") or {}).get("content") or {})
        models = {ct: _ref_name(c["schema"]["$ref"]) for ct, c in content.items()
                  if isinstance(c, dict) and (c.get("schema") or {}).get("$ref")}
        if models:
            params["requestModels"] = models
        if request_parameters:
            params["requestParameters"] = request_parameters
        security = op.get("security", default_security) or []
        for requirement in security:
            for name, scopes in requirement.items():
                if name in authorizers:
                    auth = authorizers[name]
                    params["authorizationType"] = "COGNITO_USER_POOLS" if auth["type"] == "COGNITO_USER_POOLS" \
                        else "CUSTOM"
                    params["authorizerId"] = auth["id"]
                    if scopes:
                        params["authorizationScopes"] = list(scopes)
                elif name in key_schemes:
                    params["apiKeyRequired"] = True
                elif name in iam_schemes:
                    params["authorizationType"] = "AWS_IAM"
        validator = op.get("x-amazon-apigateway-request-validator", default_validator)
        if validator in validators:
            params["requestValidatorId"] = validators[validator]
        apis.put_method(ctx, api_id, res["id"], params)
        for code, resp in (op.get("responses") or {}).items():
            if not str(code).isdigit() or not isinstance(resp, dict):
                continue
            headers = {f"method.response.header.{h}": False for h in (resp.get("headers") or {})}
            apis.put_method_response(ctx, api_id, res["id"], verb, {"statusCode": str(code),
                                                                     "responseParameters": headers or None})
        integration = op.get(INTEGRATION)
        if integration:
            apis.put_integration(ctx, api_id, res["id"], verb, {
                "type": integration.get("type", "").upper(), "integrationHttpMethod": integration.get("httpMethod"),
                "uri": integration.get("uri"), "credentials": integration.get("credentials"),
                "requestParameters": integration.get("requestParameters"),
                "requestTemplates": integration.get("requestTemplates"),
                "passthroughBehavior": (integration.get("passthroughBehavior") or "when_no_match").upper(),
                "contentHandling": integration.get("contentHandling"),
                "timeoutInMillis": integration.get("timeoutInMillis"),
                "responseTransferMode": integration.get("responseTransferMode"),
                "cacheKeyParameters": integration.get("cacheKeyParameters"),
                "cacheNamespace": integration.get("cacheNamespace"),
                "connectionType": integration.get("connectionType"),
            })
            for pattern, resp in (integration.get("responses") or {}).items():
                apis.put_integration_response(ctx, api_id, res["id"], verb, {
                    "statusCode": str(resp.get("statusCode", "200")),
                    "selectionPattern": None if pattern == "default" else pattern,
                    "responseParameters": resp.get("responseParameters"),
                    "responseTemplates": resp.get("responseTemplates"),
                    "contentHandling": resp.get("contentHandling"),
                })


# -- HTTP APIs ---------------------------------------------------------------------


def import_http(apis: "HttpApis", ctx: "RequestContext", api: dict, spec: dict) -> None:
    api_id = api["ApiId"]
    cors = spec.get("x-amazon-apigateway-cors")
    if cors:
        api["CorsConfiguration"] = {
            "AllowOrigins": cors.get("allowOrigins"), "AllowMethods": cors.get("allowMethods"),
            "AllowHeaders": cors.get("allowHeaders"), "ExposeHeaders": cors.get("exposeHeaders"),
            "MaxAge": cors.get("maxAge"), "AllowCredentials": cors.get("allowCredentials"),
        }
        api["CorsConfiguration"] = {k: v for k, v in api["CorsConfiguration"].items() if v is not None}
    authorizers: dict[str, dict] = {}
    for name, scheme in _schemes(spec).items():
        conf = scheme.get("x-amazon-apigateway-authorizer")
        if not conf:
            continue
        kind = (conf.get("type") or "").lower()
        identity = conf.get("identitySource")
        if isinstance(identity, str):
            identity = [s.strip() for s in identity.split(",") if s.strip()]
        params: dict[str, Any] = {"Name": name, "IdentitySource": identity}
        if kind == "jwt":
            jwt = conf.get("jwtConfiguration") or {}
            params.update(AuthorizerType="JWT", JwtConfiguration={"Issuer": jwt.get("issuer"),
                                                                   "Audience": jwt.get("audience") or []})
            params["IdentitySource"] = identity or ["$request.header.Authorization"]
        else:
            params.update(AuthorizerType="REQUEST", AuthorizerUri=conf.get("authorizerUri"),
                          AuthorizerPayloadFormatVersion=conf.get("authorizerPayloadFormatVersion", "2.0"),
                          EnableSimpleResponses=bool(conf.get("enableSimpleResponses")),
                          AuthorizerResultTtlInSeconds=conf.get("authorizerResultTtlInSeconds", 0),
                          AuthorizerCredentialsArn=conf.get("authorizerCredentials"))
        authorizers[name] = apis.create_authorizer(ctx, api_id, params)
    default_security = spec.get("security")
    for path, verb, op, _shared in _operations(spec):
        route_key = "$default" if path in ("/$default", "$default") else f"{verb} {path}"
        integration = op.get(INTEGRATION) or {}
        target = None
        if integration:
            kind = (integration.get("type") or "aws_proxy").upper()
            created = apis.create_integration(ctx, api_id, {
                "IntegrationType": kind, "IntegrationUri": integration.get("uri"),
                "IntegrationMethod": integration.get("httpMethod"),
                "PayloadFormatVersion": integration.get("payloadFormatVersion", "2.0" if kind == "AWS_PROXY"
                                                        and not integration.get("integrationSubtype") else "1.0"),
                "TimeoutInMillis": integration.get("timeoutInMillis"),
                "ConnectionType": integration.get("connectionType"),
                "RequestParameters": integration.get("requestParameters"),
                "CredentialsArn": integration.get("credentials"),
                "IntegrationSubtype": integration.get("integrationSubtype"),
            })
            target = f"integrations/{created['IntegrationId']}"
        params = {"RouteKey": route_key, "Target": target, "OperationName": op.get("operationId")}
        for requirement in op.get("security", default_security) or []:
            for name, scopes in requirement.items():
                if name in authorizers:
                    auth = authorizers[name]
                    params["AuthorizerId"] = auth["AuthorizerId"]
                    params["AuthorizationType"] = "JWT" if auth["AuthorizerType"] == "JWT" else "CUSTOM"
                    if scopes:
                        params["AuthorizationScopes"] = list(scopes)
        apis.create_route(ctx, api_id, params)
