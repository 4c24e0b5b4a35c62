"""Amazon API Gateway v2 (``apigatewayv2``): HTTP and WebSocket API operations."""

from __future__ import annotations

from typing import Any

from unkai.protocol import ServiceError
from unkai.services import Provisioned, RequestContext, ResourceContext, Service
from unkai.services.apigateway import resources
from unkai.services.apigateway.domains import Domains
from unkai.services.apigateway.httpapi import _ID, HttpApis, _clean, page

# mutable members per kind for Update* calls (the rest are identity or server-set)
_UPDATABLE = {
    "api": ("Name", "Description", "Version", "CorsConfiguration", "RouteSelectionExpression",
            "ApiKeySelectionExpression", "DisableExecuteApiEndpoint", "DisableSchemaValidation", "IpAddressType"),
    "route": ("RouteKey", "Target", "AuthorizationType", "AuthorizerId", "AuthorizationScopes", "ApiKeyRequired",
              "OperationName", "RouteResponseSelectionExpression", "RequestParameters", "RequestModels",
              "ModelSelectionExpression"),
    "integration": ("IntegrationType", "IntegrationUri", "IntegrationMethod", "PayloadFormatVersion",
                    "TimeoutInMillis", "ConnectionType", "CredentialsArn", "Description", "RequestParameters",
                    "RequestTemplates", "ResponseParameters", "TemplateSelectionExpression", "PassthroughBehavior",
                    "ContentHandlingStrategy"),
    "authorizer": ("Name", "AuthorizerUri", "IdentitySource", "AuthorizerPayloadFormatVersion",
                   "EnableSimpleResponses", "AuthorizerResultTtlInSeconds", "AuthorizerCredentialsArn",
                   "IdentityValidationExpression", "JwtConfiguration"),
    "stage": ("Description", "AutoDeploy", "DeploymentId", "StageVariables", "AccessLogSettings",
              "DefaultRouteSettings", "RouteSettings"),
    "deployment": ("Description",),
    "routeresponse": ("RouteResponseKey", "ResponseModels", "ResponseParameters", "ModelSelectionExpression"),
    "integrationresponse": ("IntegrationResponseKey", "ResponseParameters", "ResponseTemplates",
                            "TemplateSelectionExpression", "ContentHandlingStrategy"),
}


class ApiGatewayV2(Service):
    name = "apigatewayv2"
    resource_types = resources.V2_TYPES

    def check_unimplemented(self, ctx: RequestContext, operation: str, params: dict) -> None:
        """An operation unkai does not serve still answers NotFoundException for a missing API first, as AWS does."""
        if isinstance(params.get("ApiId"), str):
            self.apis.api(ctx, params["ApiId"])

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.v1 = cloud.services["apigateway"]
        self.apis = HttpApis(self.v1.docs, self.clock, lambda: self.cloud.config.endpoint)
        self.domains = Domains(self.v1.docs, self.clock)

    @property
    def docs(self) -> Any:
        return self.v1.docs

    def create_api(self, ctx: RequestContext, params: dict) -> dict:
        return self.apis.create_api(ctx, params)

    def import_api(self, ctx: RequestContext, params: dict) -> dict:
        return self.apis.import_body(ctx, None, params.get("Body", ""))

    def reimport_api(self, ctx: RequestContext, params: dict) -> dict:
        return self.apis.import_body(ctx, params["ApiId"], params.get("Body", ""))

    def get_api(self, ctx: RequestContext, params: dict) -> dict:
        return self.apis.api(ctx, params["ApiId"])

    def get_apis(self, ctx: RequestContext, params: dict) -> dict:
        return page([self.apis.present(d) for d in self.docs.list(ctx.account, ctx.region, "api")], params)

    def update_api(self, ctx: RequestContext, params: dict) -> dict:
        api = self.apis.api(ctx, params["ApiId"])
        api.update({k: v for k, v in params.items() if k in _UPDATABLE["api"] and v is not None})
        self.docs.put(ctx.account, ctx.region, "api", "", api["ApiId"], api)
        return api

    def delete_api(self, ctx: RequestContext, params: dict) -> dict:
        self.apis.delete_api(ctx, params["ApiId"])
        return {}

    def delete_cors_configuration(self, ctx: RequestContext, params: dict) -> dict:
        api = self.apis.api(ctx, params["ApiId"])
        api.pop("CorsConfiguration", None)
        self.docs.put(ctx.account, ctx.region, "api", "", api["ApiId"], api)
        return {}

    # -- parts: one generic Get/Gets/Update/Delete per kind --------------------------------------

    def _get(self, kind: str, ctx: RequestContext, params: dict) -> dict:
        return self.apis.part(ctx, kind, params["ApiId"], params[_ID[kind]])

    def _list(self, kind: str, ctx: RequestContext, params: dict, parent: tuple[str, str] | None = None) -> dict:
        items = self.apis.parts(ctx, kind, params["ApiId"])
        if parent:
            items = [i for i in items if i.get(parent[0]) == params[parent[1]]]
        return page(items, params)

    def _update(self, kind: str, ctx: RequestContext, params: dict) -> dict:
        doc = self._get(kind, ctx, params)
        if kind == "stage":
            # UpdateStage merges: stage variables by name (an empty value removes one) and route
            # settings by route key (DeleteRouteSettings removes one), as the Terraform provider expects
            params = dict(params)
            if params.get("StageVariables") is not None:
                merged = {**(doc.get("StageVariables") or {}), **params.pop("StageVariables")}
                doc["StageVariables"] = {k: v for k, v in merged.items() if v != ""}
            if params.get("RouteSettings") is not None:
                doc["RouteSettings"] = {**(doc.get("RouteSettings") or {}), **params.pop("RouteSettings")}
            doc["LastUpdatedDate"] = self.clock.now()
        doc.update({k: v for k, v in params.items() if k in _UPDATABLE[kind] and v is not None})
        return self.apis.save(ctx, kind, params["ApiId"], doc)

    def _delete(self, kind: str, ctx: RequestContext, params: dict) -> dict:
        self._get(kind, ctx, params)
        self.docs.delete(ctx.account, ctx.region, kind, params["ApiId"], params[_ID[kind]])
        return {}

    def create_route(self, ctx: RequestContext, params: dict) -> dict:
        return self.apis.create_route(ctx, params["ApiId"], params)

    def get_route(self, ctx: RequestContext, params: dict) -> dict:
        return self._get("route", ctx, params)

    def get_routes(self, ctx: RequestContext, params: dict) -> dict:
        return self._list("route", ctx, params)

    def update_route(self, ctx: RequestContext, params: dict) -> dict:
        return self._update("route", ctx, params)

    def delete_route(self, ctx: RequestContext, params: dict) -> dict:
        return self._delete("route", ctx, params)

    def create_integration(self, ctx: RequestContext, params: dict) -> dict:
        return self.apis.create_integration(ctx, params["ApiId"], params)

    def get_integration(self, ctx: RequestContext, params: dict) -> dict:
        return self._get("integration", ctx, params)

    def get_integrations(self, ctx: RequestContext, params: dict) -> dict:
        return self._list("integration", ctx, params)

    def update_integration(self, ctx: RequestContext, params: dict) -> dict:
        return self._update("integration", ctx, params)

    def delete_integration(self, ctx: RequestContext, params: dict) -> dict:
        return self._delete("integration", ctx, params)

    def create_authorizer(self, ctx: RequestContext, params: dict) -> dict:
        return self.apis.create_authorizer(ctx, params["ApiId"], params)

    def get_authorizer(self, ctx: RequestContext, params: dict) -> dict:
        return self._get("authorizer", ctx, params)

    def get_authorizers(self, ctx: RequestContext, params: dict) -> dict:
        return self._list("authorizer", ctx, params)

    def update_authorizer(self, ctx: RequestContext, params: dict) -> dict:
        return self._update("authorizer", ctx, params)

    def delete_authorizer(self, ctx: RequestContext, params: dict) -> dict:
        return self._delete("authorizer", ctx, params)

    def create_stage(self, ctx: RequestContext, params: dict) -> dict:
        return self.apis.create_stage(ctx, params["ApiId"], params)

    def get_stage(self, ctx: RequestContext, params: dict) -> dict:
        return self._get("stage", ctx, params)

    def get_stages(self, ctx: RequestContext, params: dict) -> dict:
        return self._list("stage", ctx, params)

    def update_stage(self, ctx: RequestContext, params: dict) -> dict:
        return self._update("stage", ctx, params)

    def delete_stage(self, ctx: RequestContext, params: dict) -> dict:
        return self._delete("stage", ctx, params)

    def delete_route_settings(self, ctx: RequestContext, params: dict) -> dict:
        doc = self._get("stage", ctx, params)
        settings = doc.get("RouteSettings") or {}
        if params["RouteKey"] not in settings:
            raise ServiceError("NotFoundException", f"Unable to find route settings for route key "
                               f"{params['RouteKey']}", ResourceType="RouteSettings")
        del settings[params["RouteKey"]]
        doc["RouteSettings"] = settings
        self.apis.save(ctx, "stage", params["ApiId"], doc)
        return {}

    def delete_access_log_settings(self, ctx: RequestContext, params: dict) -> dict:
        doc = self._get("stage", ctx, params)
        doc.pop("AccessLogSettings", None)
        self.apis.save(ctx, "stage", params["ApiId"], doc)
        return {}

    def reset_authorizers_cache(self, ctx: RequestContext, params: dict) -> dict:
        self._get("stage", ctx, params)
        if self.v1.dataplane:
            self.v1.dataplane.authorizers.flush(params["ApiId"], params["StageName"])
        return {}

    def create_deployment(self, ctx: RequestContext, params: dict) -> dict:
        return self.apis.create_deployment(ctx, params["ApiId"], params)

    def get_deployment(self, ctx: RequestContext, params: dict) -> dict:
        return self._get("deployment", ctx, params)

    def get_deployments(self, ctx: RequestContext, params: dict) -> dict:
        return self._list("deployment", ctx, params)

    def update_deployment(self, ctx: RequestContext, params: dict) -> dict:
        return self._update("deployment", ctx, params)

    def delete_deployment(self, ctx: RequestContext, params: dict) -> dict:
        return self._delete("deployment", ctx, params)

    def create_route_response(self, ctx: RequestContext, params: dict) -> dict:
        return self.apis.create_route_response(ctx, params["ApiId"], params["RouteId"], params)

    def get_route_response(self, ctx: RequestContext, params: dict) -> dict:
        return self._get("routeresponse", ctx, params)

    def get_route_responses(self, ctx: RequestContext, params: dict) -> dict:
        return self._list("routeresponse", ctx, params, ("_route", "RouteId"))

    def update_route_response(self, ctx: RequestContext, params: dict) -> dict:
        return self._update("routeresponse", ctx, params)

    def delete_route_response(self, ctx: RequestContext, params: dict) -> dict:
        return self._delete("routeresponse", ctx, params)

    def create_integration_response(self, ctx: RequestContext, params: dict) -> dict:
        return self.apis.create_integration_response(ctx, params["ApiId"], params["IntegrationId"], params)

    def get_integration_response(self, ctx: RequestContext, params: dict) -> dict:
        return self._get("integrationresponse", ctx, params)

    def get_integration_responses(self, ctx: RequestContext, params: dict) -> dict:
        return self._list("integrationresponse", ctx, params, ("_integration", "IntegrationId"))

    def update_integration_response(self, ctx: RequestContext, params: dict) -> dict:
        return self._update("integrationresponse", ctx, params)

    def delete_integration_response(self, ctx: RequestContext, params: dict) -> dict:
        return self._delete("integrationresponse", ctx, params)

    # -- custom domain names and API mappings (domains.py) --------------------------------

    def create_domain_name(self, ctx: RequestContext, params: dict) -> dict:
        return self.domains.create(ctx, params)

    def get_domain_name(self, ctx: RequestContext, params: dict) -> dict:
        return self.domains.get(ctx, params["DomainName"])

    def get_domain_names(self, ctx: RequestContext, params: dict) -> dict:
        return page(self.domains.all(ctx), params)

    def update_domain_name(self, ctx: RequestContext, params: dict) -> dict:
        return self.domains.update(ctx, params)

    def delete_domain_name(self, ctx: RequestContext, params: dict) -> dict:
        self.domains.delete(ctx, params["DomainName"])
        return {}

    def create_api_mapping(self, ctx: RequestContext, params: dict) -> dict:
        return self.domains.create_mapping(ctx, params)

    def get_api_mapping(self, ctx: RequestContext, params: dict) -> dict:
        return self.domains.mapping(ctx, params["DomainName"], params["ApiMappingId"])

    def get_api_mappings(self, ctx: RequestContext, params: dict) -> dict:
        return page(self.domains.mappings(ctx, params["DomainName"]), params)

    def update_api_mapping(self, ctx: RequestContext, params: dict) -> dict:
        return self.domains.update_mapping(ctx, params)

    def delete_api_mapping(self, ctx: RequestContext, params: dict) -> dict:
        self.domains.delete_mapping(ctx, params["DomainName"], params["ApiMappingId"])
        return {}

    def get_tags(self, ctx: RequestContext, params: dict) -> dict:
        return {"Tags": self._tagged(ctx, params["ResourceArn"]).get("Tags") or {}}

    def tag_resource(self, ctx: RequestContext, params: dict) -> dict:
        doc = self._tagged(ctx, params["ResourceArn"])
        doc.setdefault("Tags", {}).update(params.get("Tags") or {})
        self._save_tagged(ctx, doc)
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict) -> dict:
        doc = self._tagged(ctx, params["ResourceArn"])
        for key in params.get("TagKeys") or []:
            (doc.get("Tags") or {}).pop(key, None)
        self._save_tagged(ctx, doc)
        return {}

    def _tagged(self, ctx: RequestContext, arn: str) -> dict:
        parts = arn.split("::", 1)[-1].strip("/").split("/")
        if parts[0] == "domainnames" and len(parts) == 2:
            return self.domains.get(ctx, parts[1])
        return self.apis.api(ctx, parts[1] if len(parts) >= 2 else "")

    def _save_tagged(self, ctx: RequestContext, doc: dict) -> None:
        if "ApiId" in doc:
            self.docs.put(ctx.account, ctx.region, "api", "", doc["ApiId"], doc)
        else:
            self.domains.save(ctx, doc)

    # -- template resources -------------------------------------------------------------------------

    def create_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str,
                        props: dict[str, Any]) -> Provisioned:
        return resources.create(self, ctx, resource_type, logical_id, props)

    def delete_resource(self, ctx: ResourceContext, resource_type: str, physical_id: str,
                        props: dict[str, Any]) -> None:
        resources.delete(self, ctx, resource_type, physical_id, props)



