"""The ``apigatewayv2`` control plane: HTTP and WebSocket APIs with their routes,
integrations, authorizers, route and integration responses, deployments and stages.

Stages serve the API's current routes (as an auto-deploying stage does on AWS); a
stage must exist for the API to answer.
"""

from __future__ import annotations

import re
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext
from unkai.services.apigateway import openapi, urls
from unkai.services.apigateway.documents import Documents, new_id

_ROUTE_KEY = re.compile(r"^(ANY|GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (/\S*)$")


def not_found(what: str, id: str) -> ServiceError:
    return ServiceError("NotFoundException", f"Invalid {what} identifier specified {id}",
                        ResourceType=what)


def bad(message: str) -> ServiceError:
    return ServiceError("BadRequestException", message)


def _clean(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None}


def page(items: list[dict], params: dict[str, Any]) -> dict[str, Any]:
    start = int(params["NextToken"]) if str(params.get("NextToken") or "").isdigit() else 0
    limit = int(params["MaxResults"]) if str(params.get("MaxResults") or "").isdigit() else 100
    out: dict[str, Any] = {"Items": items[start:start + limit]}
    if start + limit < len(items):
        out["NextToken"] = str(start + limit)
    return out


class HttpApis:
    """Shared by the apigatewayv2 operations, the OpenAPI importer and the resource providers."""

    def __init__(self, docs: Documents, clock: Any, endpoint: Any) -> None:
        self.docs = docs
        self.clock = clock
        self.endpoint = endpoint  # () -> the running unkai's base URL

    def api(self, ctx: RequestContext, api_id: str) -> dict:
        doc = self.docs.get(ctx.account, ctx.region, "api", "", api_id)
        if doc is None:
            raise not_found("Api", api_id)
        return self.present(doc)

    def present(self, doc: dict) -> dict:
        websocket = doc.get("ProtocolType") == "WEBSOCKET"
        doc["ApiEndpoint"] = urls.local_api_url(self.endpoint(), doc["ApiId"], websocket=websocket)
        return doc

    def create_api(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        name = params.get("Name")
        protocol = params.get("ProtocolType")
        if not name:
            raise bad("Invalid API name specified")
        if protocol not in ("HTTP", "WEBSOCKET"):
            raise bad("Invalid protocol type specified. Valid options are HTTP,WEBSOCKET")
        if protocol == "WEBSOCKET" and not params.get("RouteSelectionExpression"):
            raise bad("RouteSelectionExpression is required for WEBSOCKET APIs")
        api_id = new_id()
        doc = _clean({
            "ApiId": api_id, "Name": name, "ProtocolType": protocol, "Description": params.get("Description"),
            "CreatedDate": self.clock.now(), "Version": params.get("Version"),
            "ApiKeySelectionExpression": params.get("ApiKeySelectionExpression") or "$request.header.x-api-key",
            # AWS answers "$request.method $request.path" for an HTTP API (the provider's default too)
            "RouteSelectionExpression": params.get("RouteSelectionExpression") or "$request.method $request.path",
            "IpAddressType": params.get("IpAddressType") or "ipv4",
            "CorsConfiguration": params.get("CorsConfiguration"),
            "DisableExecuteApiEndpoint": bool(params.get("DisableExecuteApiEndpoint")),
            "DisableSchemaValidation": params.get("DisableSchemaValidation"),
            "Tags": params.get("Tags") or {},
        })
        self.docs.put(ctx.account, ctx.region, "api", "", api_id, doc)
        if protocol == "HTTP" and (params.get("Target") or params.get("RouteKey")):
            # quick create: a $default stage, an integration and one route
            target = None
            if params.get("Target"):
                integ = self.create_integration(ctx, api_id, {"IntegrationType": "AWS_PROXY"
                                                              if ":lambda:" in params["Target"] or
                                                              params["Target"].startswith("arn:") else "HTTP_PROXY",
                                                              "IntegrationUri": params["Target"],
                                                              "IntegrationMethod": "ANY",
                                                              "PayloadFormatVersion": "2.0"})
                target = f"integrations/{integ['IntegrationId']}"
            self.create_route(ctx, api_id, {"RouteKey": params.get("RouteKey") or "$default", "Target": target})
            self.create_stage(ctx, api_id, {"StageName": "$default", "AutoDeploy": True})
        return self.present(doc)

    def import_body(self, ctx: RequestContext, api_id: str | None, body: Any) -> dict:
        spec = openapi.load(body)
        info = spec.get("info") or {}
        if api_id is None:
            api = self.create_api(ctx, {"Name": info.get("title") or "imported", "ProtocolType": "HTTP",
                                        "Description": info.get("description"), "Version": info.get("version")})
        else:
            api = self.api(ctx, api_id)
            for kind in ("route", "integration", "authorizer"):
                for doc in self.docs.list(ctx.account, ctx.region, kind, api["ApiId"]):
                    self.docs.delete(ctx.account, ctx.region, kind, api["ApiId"], doc[_ID[kind]])
        openapi.import_http(self, ctx, api, spec)
        self.docs.put(ctx.account, ctx.region, "api", "", api["ApiId"], api)
        return self.present(api)

    def delete_api(self, ctx: RequestContext, api_id: str) -> None:
        self.api(ctx, api_id)
        self.docs.delete(ctx.account, ctx.region, "api", "", api_id)
        self.docs.delete_children(ctx.account, ctx.region, api_id)

    # -- parts --------------------------------------------------------------------

    def part(self, ctx: RequestContext, kind: str, api_id: str, id: str) -> dict:
        self.api(ctx, api_id)
        doc = self.docs.get(ctx.account, ctx.region, kind, api_id, id)
        if doc is None:
            raise not_found(_LABEL[kind], id)
        return doc

    def parts(self, ctx: RequestContext, kind: str, api_id: str) -> list[dict]:
        self.api(ctx, api_id)
        return self.docs.list(ctx.account, ctx.region, kind, api_id)

    def save(self, ctx: RequestContext, kind: str, api_id: str, doc: dict) -> dict:
        self.docs.put(ctx.account, ctx.region, kind, api_id, doc[_ID[kind]], doc)
        if kind not in ("stage", "deployment"):
            self._auto_deploy(ctx, api_id)
        return doc

    def create_route(self, ctx: RequestContext, api_id: str, params: dict[str, Any]) -> dict:
        api = self.api(ctx, api_id)
        key = params.get("RouteKey") or ""
        if api["ProtocolType"] == "HTTP" and key != "$default" and not _ROUTE_KEY.match(key):
            raise bad(f"Unable to create route {key}. Route key must be '$default' or start with a supported "
                      "HTTP method and a path")
        if not key:
            raise bad("Route key is required")
        for other in self.docs.list(ctx.account, ctx.region, "route", api_id):
            if other["RouteKey"] == key:
                raise ServiceError("ConflictException", f"Unable to create route {key}. A route with this route "
                                   "key already exists.")
        self._check_target(ctx, api_id, params.get("Target"))
        doc = _clean({
            "RouteId": new_id(7), "RouteKey": key, "Target": params.get("Target"),
            "AuthorizationType": params.get("AuthorizationType") or "NONE",
            "AuthorizerId": params.get("AuthorizerId"), "AuthorizationScopes": params.get("AuthorizationScopes"),
            "ApiKeyRequired": bool(params.get("ApiKeyRequired")), "OperationName": params.get("OperationName"),
            "RouteResponseSelectionExpression": params.get("RouteResponseSelectionExpression"),
            "RequestParameters": params.get("RequestParameters"), "RequestModels": params.get("RequestModels"),
            "ModelSelectionExpression": params.get("ModelSelectionExpression"), "ApiGatewayManaged": False,
        })
        return self.save(ctx, "route", api_id, doc)

    def _check_target(self, ctx: RequestContext, api_id: str, target: str | None) -> None:
        if target:
            integ_id = target.removeprefix("integrations/")
            if not target.startswith("integrations/") or not self.docs.get(ctx.account, ctx.region, "integration",
                                                                            api_id, integ_id):
                raise bad(f"Invalid target {target}")

    def create_integration(self, ctx: RequestContext, api_id: str, params: dict[str, Any]) -> dict:
        api = self.api(ctx, api_id)
        kind = (params.get("IntegrationType") or "").upper()
        allowed = ("AWS_PROXY", "HTTP_PROXY") if api["ProtocolType"] == "HTTP" else \
            ("AWS", "AWS_PROXY", "HTTP", "HTTP_PROXY", "MOCK")
        if kind not in allowed:
            raise bad(f"Invalid integration type {kind}. Valid options are {','.join(allowed)}")
        subtype = params.get("IntegrationSubtype")
        if subtype:
            from unkai.services.apigateway.service_integrations import SUBTYPES

            if kind != "AWS_PROXY" or api["ProtocolType"] != "HTTP" or subtype not in SUBTYPES:
                raise bad(f"Invalid integration subtype {subtype}. Valid options are {','.join(SUBTYPES)}")
        elif kind != "MOCK" and not params.get("IntegrationUri"):
            raise bad("IntegrationUri is required for integration type " + kind)
        version = params.get("PayloadFormatVersion")
        if api["ProtocolType"] == "HTTP":
            version = version or ("2.0" if kind == "AWS_PROXY" and not subtype else "1.0")
            if version not in ("1.0", "2.0"):
                raise bad("Invalid payload format version. Valid options are 1.0, 2.0")
        else:
            version = version or "1.0"
        timeout = params.get("TimeoutInMillis") or (30000 if api["ProtocolType"] == "HTTP" else 29000)
        doc = _clean({
            "IntegrationId": new_id(7), "IntegrationType": kind, "IntegrationUri": params.get("IntegrationUri"),
            "IntegrationSubtype": subtype,
            "IntegrationMethod": params.get("IntegrationMethod") or ("POST" if kind.startswith("AWS") else None),
            "PayloadFormatVersion": version, "TimeoutInMillis": timeout,
            "ConnectionType": params.get("ConnectionType") or "INTERNET",
            "CredentialsArn": params.get("CredentialsArn"), "Description": params.get("Description"),
            "RequestParameters": params.get("RequestParameters"), "RequestTemplates": params.get("RequestTemplates"),
            "ResponseParameters": params.get("ResponseParameters"),
            "TemplateSelectionExpression": params.get("TemplateSelectionExpression"),
            "PassthroughBehavior": params.get("PassthroughBehavior"),
            "ContentHandlingStrategy": params.get("ContentHandlingStrategy"),
            "IntegrationResponseSelectionExpression": params.get("IntegrationResponseSelectionExpression"),
            "ApiGatewayManaged": False,
        })
        return self.save(ctx, "integration", api_id, doc)

    def create_authorizer(self, ctx: RequestContext, api_id: str, params: dict[str, Any]) -> dict:
        api = self.api(ctx, api_id)
        kind = params.get("AuthorizerType")
        allowed = ("JWT", "REQUEST") if api["ProtocolType"] == "HTTP" else ("REQUEST",)
        if kind not in allowed:
            raise bad(f"Invalid authorizer type {kind}. Valid options are {','.join(allowed)}")
        if kind == "JWT" and not (params.get("JwtConfiguration") or {}).get("Issuer"):
            raise bad("JwtConfiguration.Issuer is required for JWT authorizers")
        if kind == "REQUEST" and not params.get("AuthorizerUri"):
            raise bad("AuthorizerUri is required for REQUEST authorizers")
        version = params.get("AuthorizerPayloadFormatVersion")
        if kind == "REQUEST" and api["ProtocolType"] == "HTTP" and version not in ("1.0", "2.0"):
            raise bad("AuthorizerPayloadFormatVersion is required for REQUEST authorizers of HTTP APIs "
                      "(1.0 or 2.0)")
        doc = _clean({
            "AuthorizerId": new_id(6), "Name": params.get("Name"), "AuthorizerType": kind,
            "AuthorizerUri": params.get("AuthorizerUri"), "IdentitySource": params.get("IdentitySource"),
            "AuthorizerPayloadFormatVersion": version, "EnableSimpleResponses": params.get("EnableSimpleResponses"),
            "AuthorizerResultTtlInSeconds": params.get("AuthorizerResultTtlInSeconds"),
            "AuthorizerCredentialsArn": params.get("AuthorizerCredentialsArn"),
            "IdentityValidationExpression": params.get("IdentityValidationExpression"),
            "JwtConfiguration": params.get("JwtConfiguration"),
        })
        return self.save(ctx, "authorizer", api_id, doc)

    def create_route_response(self, ctx: RequestContext, api_id: str, route_id: str, params: dict) -> dict:
        self.part(ctx, "route", api_id, route_id)
        doc = _clean({"RouteResponseId": new_id(6), "RouteResponseKey": params.get("RouteResponseKey"),
                      "ModelSelectionExpression": params.get("ModelSelectionExpression"),
                      "ResponseModels": params.get("ResponseModels"),
                      "ResponseParameters": params.get("ResponseParameters"), "_route": route_id})
        return self.save(ctx, "routeresponse", api_id, doc)

    def create_integration_response(self, ctx: RequestContext, api_id: str, integ_id: str, params: dict) -> dict:
        self.part(ctx, "integration", api_id, integ_id)
        doc = _clean({"IntegrationResponseId": new_id(6),
                      "IntegrationResponseKey": params.get("IntegrationResponseKey"),
                      "ResponseParameters": params.get("ResponseParameters"),
                      "ResponseTemplates": params.get("ResponseTemplates"),
                      "TemplateSelectionExpression": params.get("TemplateSelectionExpression"),
                      "ContentHandlingStrategy": params.get("ContentHandlingStrategy"), "_integration": integ_id})
        return self.save(ctx, "integrationresponse", api_id, doc)

    # -- stages and deployments -------------------------------------------------------

    def create_stage(self, ctx: RequestContext, api_id: str, params: dict[str, Any]) -> dict:
        self.api(ctx, api_id)
        name = params.get("StageName") or ""
        if not re.match(r"^(\$default|[A-Za-z0-9_-]{1,128})$", name):
            raise bad("Stage name only allows a-zA-Z0-9_- or $default")
        if self.docs.get(ctx.account, ctx.region, "stage", api_id, name):
            raise ServiceError("ConflictException", f"Stage {name} already exists")
        now = self.clock.now()
        doc = _clean({
            "StageName": name, "Description": params.get("Description"), "AutoDeploy": bool(params.get("AutoDeploy")),
            "DeploymentId": params.get("DeploymentId"), "StageVariables": params.get("StageVariables"),
            "AccessLogSettings": params.get("AccessLogSettings"),
            "DefaultRouteSettings": params.get("DefaultRouteSettings") or {},
            "RouteSettings": params.get("RouteSettings") or {}, "Tags": params.get("Tags") or {},
            "CreatedDate": now, "LastUpdatedDate": now, "ApiGatewayManaged": False,
        })
        self.docs.put(ctx.account, ctx.region, "stage", api_id, name, doc)
        if doc["AutoDeploy"]:
            self._auto_deploy(ctx, api_id)
        return self.docs.get(ctx.account, ctx.region, "stage", api_id, name)

    def create_deployment(self, ctx: RequestContext, api_id: str, params: dict[str, Any], auto: bool = False) -> dict:
        self.api(ctx, api_id)
        doc = _clean({"DeploymentId": new_id(6), "CreatedDate": self.clock.now(), "DeploymentStatus": "DEPLOYED",
                      "Description": params.get("Description"), "AutoDeployed": auto})
        self.docs.put(ctx.account, ctx.region, "deployment", api_id, doc["DeploymentId"], doc)
        if params.get("StageName"):
            stage = self.part(ctx, "stage", api_id, params["StageName"])
            stage["DeploymentId"] = doc["DeploymentId"]
            stage["LastUpdatedDate"] = self.clock.now()
            self.docs.put(ctx.account, ctx.region, "stage", api_id, stage["StageName"], stage)
        return doc

    def _auto_deploy(self, ctx: RequestContext, api_id: str) -> None:
        for stage in self.docs.list(ctx.account, ctx.region, "stage", api_id):
            if stage.get("AutoDeploy"):
                self.create_deployment(ctx, api_id, {"StageName": stage["StageName"]}, auto=True)


_ID = {"route": "RouteId", "integration": "IntegrationId", "authorizer": "AuthorizerId", "stage": "StageName",
       "deployment": "DeploymentId", "routeresponse": "RouteResponseId",
       "integrationresponse": "IntegrationResponseId", "model": "ModelId"}
_LABEL = {"route": "Route", "integration": "Integration", "authorizer": "Authorizer", "stage": "Stage",
          "deployment": "Deployment", "routeresponse": "RouteResponse", "integrationresponse": "IntegrationResponse",
          "model": "Model"}
