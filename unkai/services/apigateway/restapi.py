"""The ``apigateway`` control plane: REST APIs and their resources, methods,
integrations, deployments, stages, authorizers, validators, models, gateway
responses, API keys and usage plans, kept as documents in botocore's member names.

A deployment snapshots the API as it is, and a stage serves its deployment's
snapshot, so changes reach clients only when redeployed, as on AWS.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext
from unkai.services.apigateway import openapi, patch
from unkai.services.apigateway.documents import Documents, escaped_policy, new_id

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")
_PATH_PART = re.compile(r"^(\{[A-Za-z0-9._-]+\+?\}|[A-Za-z0-9._~:@!$&'()*+,;=-]+)$")


def not_found(what: str) -> ServiceError:
    return ServiceError("NotFoundException", f"Invalid {what} identifier specified")


def bad(message: str) -> ServiceError:
    return ServiceError("BadRequestException", message)


def _page(items: list[dict], params: dict[str, Any]) -> dict[str, Any]:
    start = int(params.get("position") or 0) if str(params.get("position") or "0").isdigit() else 0
    limit = min(max(int(params.get("limit") or 25), 1), 500)
    out: dict[str, Any] = {"items": items[start:start + limit]}
    if start + limit < len(items):
        out["position"] = str(start + limit)
    return out


def _clean(doc: dict[str, Any]) -> dict[str, Any]:
    """What the API returns: our private keys (``_...``) left out."""
    return {k: v for k, v in doc.items() if not k.startswith("_") and v is not None}


def endpoint_configuration(given: dict[str, Any] | None) -> dict[str, Any]:
    """AWS's answer: the types (EDGE by default) and an ``ipAddressType`` (ipv4 unless asked;
    a PRIVATE API's default is dualstack)."""
    config = dict(given or {"types": ["EDGE"]})
    config.setdefault("types", ["EDGE"])
    config.setdefault("ipAddressType", "dualstack" if "PRIVATE" in config["types"] else "ipv4")
    return config


class RestApis:
    """The REST API control plane, shared by the service operations, the OpenAPI
    importer and the CloudFormation resource providers."""

    def __init__(self, docs: Documents, clock: Any) -> None:
        self.docs = docs
        self.clock = clock

    # -- APIs ------------------------------------------------------------------

    def api(self, ctx: RequestContext, api_id: str) -> dict:
        doc = self.docs.get(ctx.account, ctx.region, "restapi", "", api_id)
        if doc is None:
            raise ServiceError("NotFoundException", f"Invalid API identifier specified {ctx.account}:{api_id}")
        return doc

    def create_api(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        if not params.get("name"):
            raise bad("Invalid REST API name specified")
        api_id = new_id()
        root = new_id()
        doc = {
            "id": api_id, "name": params["name"], "description": params.get("description"),
            "createdDate": self.clock.now(), "version": params.get("version"),
            "binaryMediaTypes": params.get("binaryMediaTypes") or [],
            "minimumCompressionSize": params.get("minimumCompressionSize"),
            "apiKeySource": params.get("apiKeySource") or "HEADER",
            "endpointConfiguration": endpoint_configuration(params.get("endpointConfiguration")),
            "policy": escaped_policy(params.get("policy")), "tags": params.get("tags") or {},
            "disableExecuteApiEndpoint": bool(params.get("disableExecuteApiEndpoint")),
            "rootResourceId": root,
        }
        self.docs.put(ctx.account, ctx.region, "restapi", "", api_id, doc)
        self.docs.put(ctx.account, ctx.region, "resource", api_id, root, {"id": root, "path": "/"})
        return doc

    def import_body(self, ctx: RequestContext, api_id: str | None, body: Any, mode: str = "overwrite",
                    base_path: str = "ignore") -> dict:
        """Create (``api_id`` None) or update a REST API from an OpenAPI/Swagger document."""
        spec = openapi.load(body)
        info = spec.get("info") or {}
        if api_id is None:
            api = self.create_api(ctx, {"name": info.get("title") or "imported", "description": info.get("description"),
                                        "version": info.get("version")})
            api_id = api["id"]
        api = self.api(ctx, api_id)
        if mode == "overwrite":
            for kind in ("resource", "authorizer", "requestvalidator", "model", "gatewayresponse"):
                for doc in self.docs.list(ctx.account, ctx.region, kind, api_id):
                    if kind == "resource" and doc["id"] == api["rootResourceId"]:
                        continue
                    self.docs.delete(ctx.account, ctx.region, kind, api_id, doc.get("id") or doc.get("name")
                                     or doc.get("responseType"))
            self.docs.put(ctx.account, ctx.region, "resource", api_id, api["rootResourceId"],
                          {"id": api["rootResourceId"], "path": "/"})
            if info.get("title"):
                api["name"] = info["title"]
            if "description" in info:
                api["description"] = info.get("description")
        openapi.import_rest(self, ctx, api, spec, base_path)
        self.docs.put(ctx.account, ctx.region, "restapi", "", api_id, api)
        return api

    def delete_api(self, ctx: RequestContext, api_id: str) -> None:
        self.api(ctx, api_id)
        self.docs.delete(ctx.account, ctx.region, "restapi", "", api_id)
        self.docs.delete_children(ctx.account, ctx.region, api_id)

    # -- resources and methods -------------------------------------------------

    def resource(self, ctx: RequestContext, api_id: str, resource_id: str) -> dict:
        self.api(ctx, api_id)
        doc = self.docs.get(ctx.account, ctx.region, "resource", api_id, resource_id)
        if doc is None:
            raise not_found("Resource")
        return doc

    def create_resource(self, ctx: RequestContext, api_id: str, parent_id: str, path_part: str) -> dict:
        parent = self.resource(ctx, api_id, parent_id)
        if not path_part or not _PATH_PART.match(path_part):
            raise bad(f"Resource's path part only allow a-zA-Z0-9._- and curly braces at the beginning and the end "
                      f"and an optional plus sign before the closing brace.")
        path = parent["path"].rstrip("/") + "/" + path_part
        siblings = self.docs.list(ctx.account, ctx.region, "resource", api_id)
        for other in siblings:
            if other.get("parentId") == parent_id:
                if other["path"] == path:
                    raise ServiceError("ConflictException", f"Another resource with the same parent already has "
                                       f"this name: {path_part}")
                if path_part.startswith("{") and other["pathPart"].startswith("{"):
                    raise bad("A sibling ({}) of this resource already has a variable path part -- only one is "
                              "allowed".format(other["pathPart"]))
        doc = {"id": new_id(), "parentId": parent_id, "pathPart": path_part, "path": path}
        return self.docs.put(ctx.account, ctx.region, "resource", api_id, doc["id"], doc)

    def ensure_path(self, ctx: RequestContext, api: dict, path: str) -> dict:
        """The resource for ``path``, creating the missing ones along the way."""
        resources = {r["path"]: r for r in self.docs.list(ctx.account, ctx.region, "resource", api["id"])}
        current = resources["/"]
        for part in [p for p in path.split("/") if p]:
            want = current["path"].rstrip("/") + "/" + part
            current = resources.get(want) or self.create_resource(ctx, api["id"], current["id"], part)
            resources[want] = current
        return current

    def delete_resource(self, ctx: RequestContext, api_id: str, resource_id: str) -> None:
        doc = self.resource(ctx, api_id, resource_id)
        if not doc.get("parentId"):
            raise bad("Cannot delete root resource")
        for other in self.docs.list(ctx.account, ctx.region, "resource", api_id):
            if other["path"] == doc["path"] or other["path"].startswith(doc["path"] + "/"):
                self.docs.delete(ctx.account, ctx.region, "resource", api_id, other["id"])

    def save_resource(self, ctx: RequestContext, api_id: str, doc: dict) -> dict:
        return self.docs.put(ctx.account, ctx.region, "resource", api_id, doc["id"], doc)

    def method(self, ctx: RequestContext, api_id: str, resource_id: str, http_method: str) -> tuple[dict, dict]:
        res = self.resource(ctx, api_id, resource_id)
        method = (res.get("resourceMethods") or {}).get(http_method.upper())
        if method is None:
            raise not_found("Method")
        return res, method

    def put_method(self, ctx: RequestContext, api_id: str, resource_id: str, params: dict[str, Any]) -> dict:
        res = self.resource(ctx, api_id, resource_id)
        http_method = params["httpMethod"].upper()
        if http_method not in METHODS:
            raise bad("Invalid HttpMethod specified. Valid options are GET,PUT,POST,DELETE,PATCH,OPTIONS,HEAD,ANY")
        auth = params.get("authorizationType") or "NONE"
        if auth not in ("NONE", "AWS_IAM", "CUSTOM", "COGNITO_USER_POOLS"):
            raise bad("Invalid authorization type specified. Valid options are NONE,AWS_IAM,CUSTOM,"
                      "COGNITO_USER_POOLS")
        if auth in ("CUSTOM", "COGNITO_USER_POOLS") and not params.get("authorizerId"):
            raise bad("Invalid authorizer ID specified. Setting the authorization type to CUSTOM or "
                      "COGNITO_USER_POOLS requires a valid authorizer.")
        method = {
            "httpMethod": http_method, "authorizationType": auth, "authorizerId": params.get("authorizerId"),
            "apiKeyRequired": bool(params.get("apiKeyRequired")), "operationName": params.get("operationName"),
            "requestParameters": params.get("requestParameters"), "requestModels": params.get("requestModels"),
            "requestValidatorId": params.get("requestValidatorId"),
            "authorizationScopes": params.get("authorizationScopes"),
        }
        res.setdefault("resourceMethods", {})[http_method] = _clean(method)
        self.save_resource(ctx, api_id, res)
        return _clean(method)

    def put_integration(self, ctx: RequestContext, api_id: str, resource_id: str, http_method: str,
                        params: dict[str, Any]) -> dict:
        res, method = self.method(ctx, api_id, resource_id, http_method)
        kind = (params.get("type") or "").upper()
        if kind not in ("HTTP", "HTTP_PROXY", "AWS", "AWS_PROXY", "MOCK"):
            raise bad("Invalid integration type specified. Valid options are HTTP,HTTP_PROXY,AWS,AWS_PROXY,MOCK")
        if kind != "MOCK" and not params.get("uri"):
            raise bad("Enumeration value for Integration uri is required")
        if kind in ("HTTP", "HTTP_PROXY", "AWS", "AWS_PROXY") and not params.get("integrationHttpMethod"):
            raise bad("Enumeration value for HttpMethod must be non-empty")
        integration = {
            "type": kind, "httpMethod": params.get("integrationHttpMethod"), "uri": params.get("uri"),
            "connectionType": params.get("connectionType") or "INTERNET", "credentials": params.get("credentials"),
            "requestParameters": params.get("requestParameters"), "requestTemplates": params.get("requestTemplates"),
            "passthroughBehavior": params.get("passthroughBehavior") or "WHEN_NO_MATCH",
            "contentHandling": params.get("contentHandling"),
            "timeoutInMillis": params.get("timeoutInMillis") or 29000,
            "responseTransferMode": params.get("responseTransferMode") or "BUFFERED",
            "cacheNamespace": params.get("cacheNamespace") or resource_id,
            "cacheKeyParameters": params.get("cacheKeyParameters") or [],
            "integrationResponses": (method.get("methodIntegration") or {}).get("integrationResponses"),
        }
        method["methodIntegration"] = _clean(integration)
        self.save_resource(ctx, api_id, res)
        return method["methodIntegration"]

    def put_integration_response(self, ctx: RequestContext, api_id: str, resource_id: str, http_method: str,
                                 params: dict[str, Any]) -> dict:
        res, method = self.method(ctx, api_id, resource_id, http_method)
        integration = method.get("methodIntegration")
        if integration is None:
            raise not_found("Integration")
        response = _clean({
            "statusCode": params["statusCode"], "selectionPattern": params.get("selectionPattern"),
            "responseParameters": params.get("responseParameters"),
            "responseTemplates": params.get("responseTemplates"), "contentHandling": params.get("contentHandling"),
        })
        integration.setdefault("integrationResponses", {})[params["statusCode"]] = response
        self.save_resource(ctx, api_id, res)
        return response

    def put_method_response(self, ctx: RequestContext, api_id: str, resource_id: str, http_method: str,
                            params: dict[str, Any]) -> dict:
        res, method = self.method(ctx, api_id, resource_id, http_method)
        response = _clean({"statusCode": params["statusCode"], "responseParameters": params.get("responseParameters"),
                           "responseModels": params.get("responseModels")})
        method.setdefault("methodResponses", {})[params["statusCode"]] = response
        self.save_resource(ctx, api_id, res)
        return response

    # -- deployments and stages ------------------------------------------------

    def snapshot(self, ctx: RequestContext, api_id: str) -> dict:
        """Everything a stage serves, frozen at deployment time."""
        a, r = ctx.account, ctx.region
        return {
            "api": self.api(ctx, api_id),
            "resources": self.docs.list(a, r, "resource", api_id),
            "authorizers": self.docs.list(a, r, "authorizer", api_id),
            "validators": self.docs.list(a, r, "requestvalidator", api_id),
            "models": self.docs.list(a, r, "model", api_id),
            "gatewayResponses": self.docs.list(a, r, "gatewayresponse", api_id),
        }

    def create_deployment(self, ctx: RequestContext, api_id: str, params: dict[str, Any]) -> dict:
        snap = self.snapshot(ctx, api_id)
        if not any(res.get("resourceMethods") for res in snap["resources"]):
            raise bad("The REST API doesn't contain any methods")
        for res in snap["resources"]:
            for verb, method in (res.get("resourceMethods") or {}).items():
                if not method.get("methodIntegration"):
                    raise bad("No integration defined for method")
        summary = {res["path"]: {verb: {"authorizationType": m.get("authorizationType", "NONE"),
                                        "apiKeyRequired": bool(m.get("apiKeyRequired"))}
                                 for verb, m in (res.get("resourceMethods") or {}).items()}
                   for res in snap["resources"] if res.get("resourceMethods")}
        doc = {"id": new_id(), "description": params.get("description"), "createdDate": self.clock.now(),
               "apiSummary": summary, "_snapshot": snap}
        self.docs.put(ctx.account, ctx.region, "deployment", api_id, doc["id"], doc)
        if params.get("stageName"):
            stage = self.docs.get(ctx.account, ctx.region, "stage", api_id, params["stageName"])
            if stage is None:
                self.create_stage(ctx, api_id, {
                    "stageName": params["stageName"], "deploymentId": doc["id"],
                    "description": params.get("stageDescription"), "variables": params.get("variables"),
                    "tracingEnabled": params.get("tracingEnabled"),
                    "cacheClusterEnabled": params.get("cacheClusterEnabled")})
            else:
                stage["deploymentId"] = doc["id"]
                if params.get("variables"):
                    stage.setdefault("variables", {}).update(params["variables"])
                stage["lastUpdatedDate"] = self.clock.now()
                self.docs.put(ctx.account, ctx.region, "stage", api_id, stage["stageName"], stage)
        return doc

    def create_stage(self, ctx: RequestContext, api_id: str, params: dict[str, Any]) -> dict:
        self.api(ctx, api_id)
        name = params.get("stageName") or ""
        if not re.match(r"^[A-Za-z0-9_-]{1,128}$", name):
            raise bad("Stage name only allows a-zA-Z0-9_-")
        if self.docs.get(ctx.account, ctx.region, "stage", api_id, name):
            raise ServiceError("ConflictException", "Stage already exists")
        if not self.docs.get(ctx.account, ctx.region, "deployment", api_id, params.get("deploymentId") or ""):
            raise not_found("Deployment")
        now = self.clock.now()
        doc = _clean({
            "stageName": name, "deploymentId": params["deploymentId"], "description": params.get("description"),
            "variables": params.get("variables") or None, "tracingEnabled": bool(params.get("tracingEnabled")),
            "cacheClusterEnabled": bool(params.get("cacheClusterEnabled")), "cacheClusterStatus": "NOT_AVAILABLE",
            "methodSettings": params.get("methodSettings") or {}, "accessLogSettings": params.get("accessLogSettings"),
            "tags": params.get("tags") or None, "createdDate": now, "lastUpdatedDate": now,
        })
        return self.docs.put(ctx.account, ctx.region, "stage", api_id, name, doc)

    def stage(self, ctx: RequestContext, api_id: str, name: str) -> dict:
        self.api(ctx, api_id)
        doc = self.docs.get(ctx.account, ctx.region, "stage", api_id, name)
        if doc is None:
            raise not_found("stage")
        return doc

    # -- parts kept by id: authorizers, validators, models, gateway responses -----

    def part(self, ctx: RequestContext, kind: str, api_id: str, id: str, label: str) -> dict:
        self.api(ctx, api_id)
        doc = self.docs.get(ctx.account, ctx.region, kind, api_id, id)
        if doc is None:
            raise not_found(label)
        return doc

    def create_authorizer(self, ctx: RequestContext, api_id: str, params: dict[str, Any]) -> dict:
        self.api(ctx, api_id)
        kind = params.get("type") or ""
        if kind not in ("TOKEN", "REQUEST", "COGNITO_USER_POOLS"):
            raise bad("Invalid authorizer type specified. Valid options are TOKEN,REQUEST,COGNITO_USER_POOLS")
        if kind != "COGNITO_USER_POOLS" and not params.get("authorizerUri"):
            raise bad("Authorizer URI is required for authorizer of type " + kind)
        ttl = params.get("authorizerResultTtlInSeconds")
        doc = _clean({
            "id": new_id(6), "name": params.get("name"), "type": kind, "providerARNs": params.get("providerARNs"),
            "authType": params.get("authType") or ("cognito_user_pools" if kind == "COGNITO_USER_POOLS" else "custom"),
            "authorizerUri": params.get("authorizerUri"), "authorizerCredentials": params.get("authorizerCredentials"),
            "identitySource": params.get("identitySource") or ("method.request.header.Authorization"
                                                               if kind != "REQUEST" else None),
            "identityValidationExpression": params.get("identityValidationExpression"),
            "authorizerResultTtlInSeconds": 300 if ttl is None else ttl,
            "_jwks": params.get("_jwks"),
        })
        return self.docs.put(ctx.account, ctx.region, "authorizer", api_id, doc["id"], doc)

    def create_validator(self, ctx: RequestContext, api_id: str, params: dict[str, Any]) -> dict:
        self.api(ctx, api_id)
        doc = {"id": new_id(6), "name": params.get("name"),
               "validateRequestBody": bool(params.get("validateRequestBody")),
               "validateRequestParameters": bool(params.get("validateRequestParameters"))}
        return self.docs.put(ctx.account, ctx.region, "requestvalidator", api_id, doc["id"], doc)

    def create_model(self, ctx: RequestContext, api_id: str, params: dict[str, Any]) -> dict:
        self.api(ctx, api_id)
        name = params.get("name") or ""
        if not re.match(r"^[A-Za-z0-9]+$", name):
            raise bad("Model name must be alphanumeric")
        if self.docs.get(ctx.account, ctx.region, "model", api_id, name):
            raise ServiceError("ConflictException", "Model name already exists for this REST API")
        schema = params.get("schema")
        if schema is not None and not isinstance(schema, str):
            schema = json.dumps(schema)
        if schema:
            try:
                json.loads(schema)
            except ValueError:
                raise bad("Invalid model specified: Validation Result: warnings : [], errors : [Invalid model "
                          "schema specified]") from None
        doc = _clean({"id": new_id(6), "name": name, "description": params.get("description"), "schema": schema,
                      "contentType": params.get("contentType") or "application/json"})
        return self.docs.put(ctx.account, ctx.region, "model", api_id, name, doc)

    def put_gateway_response(self, ctx: RequestContext, api_id: str, params: dict[str, Any]) -> dict:
        self.api(ctx, api_id)
        doc = _clean({"responseType": params["responseType"], "statusCode": params.get("statusCode"),
                      "responseParameters": params.get("responseParameters"),
                      "responseTemplates": params.get("responseTemplates"), "defaultResponse": False})
        return self.docs.put(ctx.account, ctx.region, "gatewayresponse", api_id, params["responseType"], doc)

    # -- API keys and usage plans -------------------------------------------------

    def create_api_key(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        value = params.get("value") or secrets.token_urlsafe(30)[:40]
        if len(value) < 20:
            raise bad("API Key value should be at least 20 characters")
        for _, _, other in self.docs.all_of("apikey"):
            if other["value"] == value:
                raise ServiceError("ConflictException", "API Key already exists")
        now = self.clock.now()
        doc = _clean({"id": new_id(), "value": value, "name": params.get("name"),
                      "customerId": params.get("customerId"), "description": params.get("description"),
                      "enabled": bool(params.get("enabled", False)), "createdDate": now, "lastUpdatedDate": now,
                      "stageKeys": params.get("stageKeys") or [], "tags": params.get("tags") or None})
        return self.docs.put(ctx.account, ctx.region, "apikey", "", doc["id"], doc)

    def create_usage_plan(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        if not params.get("name"):
            raise bad("Usage plan name is required")
        for stage in params.get("apiStages") or []:
            api_id = stage.get("apiId", "")
            self.api(ctx, api_id)
            if not self.docs.get(ctx.account, ctx.region, "stage", api_id, stage.get("stage", "")):
                raise bad(f"Invalid stage identifier specified")
        doc = _clean({"id": new_id(6), "name": params["name"], "description": params.get("description"),
                      "apiStages": params.get("apiStages") or [], "throttle": params.get("throttle"),
                      "quota": params.get("quota"), "tags": params.get("tags") or None})
        return self.docs.put(ctx.account, ctx.region, "usageplan", "", doc["id"], doc)

    def usage_plan(self, ctx: RequestContext, plan_id: str) -> dict:
        doc = self.docs.get(ctx.account, ctx.region, "usageplan", "", plan_id)
        if doc is None:
            raise ServiceError("NotFoundException", "Invalid Usage Plan ID specified")
        return doc

    def create_usage_plan_key(self, ctx: RequestContext, plan_id: str, key_id: str, key_type: str) -> dict:
        self.usage_plan(ctx, plan_id)
        if key_type != "API_KEY":
            raise bad("Invalid key type specified")
        key = self.docs.get(ctx.account, ctx.region, "apikey", "", key_id)
        if key is None:
            raise ServiceError("NotFoundException", "Invalid API Key identifier specified")
        doc = {"id": key_id, "type": "API_KEY", "value": key["value"], "name": key.get("name")}
        return self.docs.put(ctx.account, ctx.region, "usageplankey", plan_id, key_id, _clean(doc))
