"""Amazon API Gateway (``apigateway``): the REST API operations, and the owner of the
data plane every API type is served by (mounted on the gateway at start)."""

from __future__ import annotations

from typing import Any

from unkai.protocol import ServiceError
from unkai.services import Provisioned, RequestContext, ResourceContext, Service
from unkai.services.apigateway import patch, resources, urls
from unkai.services.apigateway.documentation import DocumentationOps
from unkai.services.apigateway.documents import Documents, escaped_policy
from unkai.services.apigateway.eventtargets import EventTargets
from unkai.services.apigateway.domains import Domains, RestDomains
from unkai.services.apigateway.restapi import RestApis, _clean, _page, bad, not_found


class ApiGateway(EventTargets, DocumentationOps, Service):
    name = "apigateway"
    serves_routes = True  # execute-api hosts and paths, custom domains, websockets
    resource_types = resources.REST_TYPES

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.docs = Documents(self.store)
        self.rest = RestApis(self.docs, self.clock)
        self.domains = RestDomains(Domains(self.docs, self.clock), self.docs)
        self.dataplane: Any = None

    async def start(self) -> None:
        from unkai.services.apigateway.dataplane import DataPlane

        self.dataplane = DataPlane(self.cloud, self.docs)
        self.dataplane.mount(self.cloud.gateway)
        self.start_event_targets()

    async def stop(self) -> None:
        if self.dataplane is not None:
            await self.dataplane.stop()

    async def pausing(self) -> None:
        if self.dataplane is not None:
            await self.dataplane.websockets.close_all()

    async def resetting(self) -> None:
        self.docs.generation += 1  # the data plane recompiles every API from the restored rows
        if self.dataplane is not None:
            self.dataplane.limits.buckets.clear()
            self.dataplane.authorizers.cache.clear()

    def banner(self) -> list[str]:
        return self.dataplane.banner() if self.dataplane else []

    def local_url(self, value: str) -> str | None:
        """An execute-api URL (a stack Output) as the local URL serving it; None if not one."""
        local = urls.rewrite_url(value, self.cloud.config.endpoint)
        return local if local != value else None

    # -- REST APIs ----------------------------------------------------------------

    def create_rest_api(self, ctx: RequestContext, params: dict) -> dict:
        if params.get("cloneFrom"):
            source = self.rest.api(ctx, params["cloneFrom"])
            api = self.rest.create_api(ctx, {**source, **{k: v for k, v in params.items() if v is not None}})
            snap = self.rest.snapshot(ctx, source["id"])
            self._restore(ctx, api, snap)
            return api
        return self.rest.create_api(ctx, params)

    def _restore(self, ctx: RequestContext, api: dict, snap: dict) -> None:
        ids = {snap["api"]["rootResourceId"]: api["rootResourceId"]}
        for res in sorted(snap["resources"], key=lambda r: r["path"].count("/") if r["path"] != "/" else 0):
            if res["path"] == "/":
                target = self.rest.resource(ctx, api["id"], api["rootResourceId"])
            else:
                target = self.rest.create_resource(ctx, api["id"], ids[res["parentId"]], res["pathPart"])
            ids[res["id"]] = target["id"]
            target["resourceMethods"] = res.get("resourceMethods")
            self.rest.save_resource(ctx, api["id"], _clean(target))

    def import_rest_api(self, ctx: RequestContext, params: dict) -> dict:
        base = (params.get("parameters") or {}).get("basepath", "ignore")
        return self.rest.import_body(ctx, None, params.get("body") or b"", base_path=base)

    def put_rest_api(self, ctx: RequestContext, params: dict) -> dict:
        base = (params.get("parameters") or {}).get("basepath", "ignore")
        return self.rest.import_body(ctx, params["restApiId"], params.get("body") or b"",
                                     mode=params.get("mode") or "merge", base_path=base)

    def check_unimplemented(self, ctx: RequestContext, operation: str, params: dict) -> None:
        """An operation unkai does not serve still answers "Invalid API identifier specified" for
        a missing REST API first, as AWS does."""
        if isinstance(params.get("restApiId"), str):
            self.rest.api(ctx, params["restApiId"])

    def get_rest_api(self, ctx: RequestContext, params: dict) -> dict:
        return self.rest.api(ctx, params["restApiId"])

    def get_rest_apis(self, ctx: RequestContext, params: dict) -> dict:
        return _page(self.docs.list(ctx.account, ctx.region, "restapi"), params)

    def update_rest_api(self, ctx: RequestContext, params: dict) -> dict:
        api = self.rest.api(ctx, params["restApiId"])
        patch.apply(api, params.get("patchOperations"), lists=("binaryMediaTypes",))
        for i, t in enumerate(api.get("binaryMediaTypes") or []):
            api["binaryMediaTypes"][i] = t.replace("~1", "/")
        if api.get("policy"):
            api["policy"] = escaped_policy(api["policy"])
        return self.docs.put(ctx.account, ctx.region, "restapi", "", api["id"], api)

    # -- custom domain names and base path mappings (domains.py; shared with apigatewayv2) -----------

    def create_domain_name(self, ctx: RequestContext, params: dict) -> dict:
        return self.domains.create(ctx, params)

    def get_domain_name(self, ctx: RequestContext, params: dict) -> dict:
        return self.domains.get(ctx, params["domainName"])

    def get_domain_names(self, ctx: RequestContext, params: dict) -> dict:
        return _page(self.domains.all(ctx), params)

    def update_domain_name(self, ctx: RequestContext, params: dict) -> dict:
        return self.domains.update(ctx, params["domainName"], params.get("patchOperations") or [])

    def delete_domain_name(self, ctx: RequestContext, params: dict) -> dict:
        self.domains.delete(ctx, params["domainName"])
        return {}

    def create_base_path_mapping(self, ctx: RequestContext, params: dict) -> dict:
        return self.domains.create_mapping(ctx, params)

    def get_base_path_mapping(self, ctx: RequestContext, params: dict) -> dict:
        return self.domains.mapping(ctx, params["domainName"], params["basePath"])

    def get_base_path_mappings(self, ctx: RequestContext, params: dict) -> dict:
        return _page(self.domains.mappings(ctx, params["domainName"]), params)

    def update_base_path_mapping(self, ctx: RequestContext, params: dict) -> dict:
        return self.domains.update_mapping(ctx, params["domainName"], params["basePath"],
                                           params.get("patchOperations") or [])

    def delete_base_path_mapping(self, ctx: RequestContext, params: dict) -> dict:
        self.domains.delete_mapping(ctx, params["domainName"], params["basePath"])
        return {}

    def delete_rest_api(self, ctx: RequestContext, params: dict) -> dict:
        self.rest.delete_api(ctx, params["restApiId"])
        return {}

    # -- resources ------------------------------------------------------------------

    def handler(self, operation: str) -> Any:
        # CreateResource/DeleteResource would shadow the template-resource methods
        if operation in ("CreateResource", "UpdateResource", "DeleteResource"):
            return getattr(self, "api_" + operation[:6].lower() + "_resource")
        return super().handler(operation)

    def api_create_resource(self, ctx: RequestContext, params: dict) -> dict:
        return self.rest.create_resource(ctx, params["restApiId"], params["parentId"], params.get("pathPart", ""))

    def get_resource(self, ctx: RequestContext, params: dict) -> dict:
        return self._embed(self.rest.resource(ctx, params["restApiId"], params["resourceId"]),
                           params.get("embed"))

    def get_resources(self, ctx: RequestContext, params: dict) -> dict:
        self.rest.api(ctx, params["restApiId"])
        items = self.docs.list(ctx.account, ctx.region, "resource", params["restApiId"])
        return _page([self._embed(r, params.get("embed")) for r in items], params)

    @staticmethod
    def _embed(res: dict, embed: list[str] | None) -> dict:
        if res.get("resourceMethods") and "methods" not in (embed or []):
            return {**res, "resourceMethods": {k: {} for k in res["resourceMethods"]}}
        return res

    def api_update_resource(self, ctx: RequestContext, params: dict) -> dict:
        res = self.rest.resource(ctx, params["restApiId"], params["resourceId"])
        for op in params.get("patchOperations") or []:
            if not res.get("parentId") and op.get("path") in ("/pathPart", "/parentId"):
                raise bad("Root resource cannot update its pathPart." if op.get("path") == "/pathPart"
                          else "Root resource cannot update its parent.")
            if op.get("path") == "/pathPart":
                self.rest.delete_resource(ctx, params["restApiId"], res["id"])
                parent = self.rest.resource(ctx, params["restApiId"], res["parentId"])
                res.update(pathPart=op["value"], path=parent["path"].rstrip("/") + "/" + op["value"])
            elif op.get("path") == "/parentId":
                parent = self.rest.resource(ctx, params["restApiId"], op["value"])
                res.update(parentId=parent["id"], path=parent["path"].rstrip("/") + "/" + res["pathPart"])
        return self.rest.save_resource(ctx, params["restApiId"], res)

    def api_delete_resource(self, ctx: RequestContext, params: dict) -> dict:
        self.rest.delete_resource(ctx, params["restApiId"], params["resourceId"])
        return {}

    # -- methods, integrations, responses ----------------------------------------------

    def put_method(self, ctx: RequestContext, params: dict) -> dict:
        return self.rest.put_method(ctx, params["restApiId"], params["resourceId"], params)

    def get_method(self, ctx: RequestContext, params: dict) -> dict:
        return self.rest.method(ctx, params["restApiId"], params["resourceId"], params["httpMethod"])[1]

    def update_method(self, ctx: RequestContext, params: dict) -> dict:
        res, method = self.rest.method(ctx, params["restApiId"], params["resourceId"], params["httpMethod"])
        patch.apply(method, params.get("patchOperations"), lists=("authorizationScopes",))
        self.rest.save_resource(ctx, params["restApiId"], res)
        return method

    def delete_method(self, ctx: RequestContext, params: dict) -> dict:
        res, _ = self.rest.method(ctx, params["restApiId"], params["resourceId"], params["httpMethod"])
        del res["resourceMethods"][params["httpMethod"].upper()]
        self.rest.save_resource(ctx, params["restApiId"], res)
        return {}

    def put_method_response(self, ctx: RequestContext, params: dict) -> dict:
        return self.rest.put_method_response(ctx, params["restApiId"], params["resourceId"], params["httpMethod"],
                                             params)

    def get_method_response(self, ctx: RequestContext, params: dict) -> dict:
        _, method = self.rest.method(ctx, params["restApiId"], params["resourceId"], params["httpMethod"])
        found = (method.get("methodResponses") or {}).get(params["statusCode"])
        if found is None:
            raise not_found("Response status code")
        return found

    def delete_method_response(self, ctx: RequestContext, params: dict) -> dict:
        res, method = self.rest.method(ctx, params["restApiId"], params["resourceId"], params["httpMethod"])
        if (method.get("methodResponses") or {}).pop(params["statusCode"], None) is None:
            raise not_found("Response status code")
        self.rest.save_resource(ctx, params["restApiId"], res)
        return {}

    def put_integration(self, ctx: RequestContext, params: dict) -> dict:
        return self.rest.put_integration(ctx, params["restApiId"], params["resourceId"], params["httpMethod"], params)

    def get_integration(self, ctx: RequestContext, params: dict) -> dict:
        _, method = self.rest.method(ctx, params["restApiId"], params["resourceId"], params["httpMethod"])
        if not method.get("methodIntegration"):
            raise not_found("Integration")
        return method["methodIntegration"]

    def update_integration(self, ctx: RequestContext, params: dict) -> dict:
        res, method = self.rest.method(ctx, params["restApiId"], params["resourceId"], params["httpMethod"])
        if not method.get("methodIntegration"):
            raise not_found("Integration")
        patch.apply(method["methodIntegration"], params.get("patchOperations"), lists=("cacheKeyParameters",))
        self.rest.save_resource(ctx, params["restApiId"], res)
        return method["methodIntegration"]

    def delete_integration(self, ctx: RequestContext, params: dict) -> dict:
        res, method = self.rest.method(ctx, params["restApiId"], params["resourceId"], params["httpMethod"])
        if method.pop("methodIntegration", None) is None:
            raise not_found("Integration")
        self.rest.save_resource(ctx, params["restApiId"], res)
        return {}

    def put_integration_response(self, ctx: RequestContext, params: dict) -> dict:
        return self.rest.put_integration_response(ctx, params["restApiId"], params["resourceId"],
                                                  params["httpMethod"], params)

    def get_integration_response(self, ctx: RequestContext, params: dict) -> dict:
        integration = self.get_integration(ctx, params)
        found = (integration.get("integrationResponses") or {}).get(params["statusCode"])
        if found is None:
            raise not_found("Response status code")
        return found

    def delete_integration_response(self, ctx: RequestContext, params: dict) -> dict:
        res, method = self.rest.method(ctx, params["restApiId"], params["resourceId"], params["httpMethod"])
        responses = (method.get("methodIntegration") or {}).get("integrationResponses") or {}
        if responses.pop(params["statusCode"], None) is None:
            raise not_found("Response status code")
        self.rest.save_resource(ctx, params["restApiId"], res)
        return {}

    # -- deployments and stages ----------------------------------------------------------

    # AWS answers a deployment's apiSummary only to GetDeployment with embed=apisummary (its docs: "this
    # request supports only retrieval of the embedded API summary this way"); the other calls omit it
    @staticmethod
    def _deployment_view(doc: dict, embed: list | None = None) -> dict:
        shown = {k: v for k, v in doc.items() if not k.startswith("_") and k != "apiSummary"}
        if "apisummary" in [e.lower() for e in embed or []]:
            shown["apiSummary"] = doc.get("apiSummary") or {}
        return shown

    def create_deployment(self, ctx: RequestContext, params: dict) -> dict:
        return self._deployment_view(self.rest.create_deployment(ctx, params["restApiId"], params))

    def _deployment(self, ctx: RequestContext, params: dict) -> dict:
        return self.rest.part(ctx, "deployment", params["restApiId"], params["deploymentId"], "Deployment")

    def get_deployment(self, ctx: RequestContext, params: dict) -> dict:
        return self._deployment_view(self._deployment(ctx, params), params.get("embed"))

    def get_deployments(self, ctx: RequestContext, params: dict) -> dict:
        self.rest.api(ctx, params["restApiId"])
        return _page([self._deployment_view(d) for d in
                      self.docs.list(ctx.account, ctx.region, "deployment", params["restApiId"])], params)

    def update_deployment(self, ctx: RequestContext, params: dict) -> dict:
        doc = self._deployment(ctx, params)
        patch.apply(doc, params.get("patchOperations"))
        return self._deployment_view(
            self.docs.put(ctx.account, ctx.region, "deployment", params["restApiId"], doc["id"], doc))

    def delete_deployment(self, ctx: RequestContext, params: dict) -> dict:
        self._deployment(ctx, params)
        for stage in self.docs.list(ctx.account, ctx.region, "stage", params["restApiId"]):
            if stage["deploymentId"] == params["deploymentId"]:
                raise bad("Active stages pointing to this deployment must be moved or deleted")
        self.docs.delete(ctx.account, ctx.region, "deployment", params["restApiId"], params["deploymentId"])
        return {}

    def create_stage(self, ctx: RequestContext, params: dict) -> dict:
        return self.rest.create_stage(ctx, params["restApiId"], params)

    def get_stage(self, ctx: RequestContext, params: dict) -> dict:
        return self.rest.stage(ctx, params["restApiId"], params["stageName"])

    def get_stages(self, ctx: RequestContext, params: dict) -> dict:
        self.rest.api(ctx, params["restApiId"])
        items = self.docs.list(ctx.account, ctx.region, "stage", params["restApiId"])
        if params.get("deploymentId"):
            items = [s for s in items if s["deploymentId"] == params["deploymentId"]]
        return {"item": items}

    def update_stage(self, ctx: RequestContext, params: dict) -> dict:
        stage = self.rest.stage(ctx, params["restApiId"], params["stageName"])
        patch.apply(stage, params.get("patchOperations"))
        if not self.docs.get(ctx.account, ctx.region, "deployment", params["restApiId"], stage["deploymentId"]):
            raise not_found("Deployment")
        stage["lastUpdatedDate"] = self.clock.now()
        return self.docs.put(ctx.account, ctx.region, "stage", params["restApiId"], stage["stageName"], stage)

    def delete_stage(self, ctx: RequestContext, params: dict) -> dict:
        self.rest.stage(ctx, params["restApiId"], params["stageName"])
        self.docs.delete(ctx.account, ctx.region, "stage", params["restApiId"], params["stageName"])
        return {}

    def flush_stage_authorizers_cache(self, ctx: RequestContext, params: dict) -> dict:
        self.rest.stage(ctx, params["restApiId"], params["stageName"])
        if self.dataplane:
            self.dataplane.authorizers.flush(params["restApiId"], params["stageName"])
        return {}

    # -- authorizers, validators, models, gateway responses --------------------------------

    def create_authorizer(self, ctx: RequestContext, params: dict) -> dict:
        return self.rest.create_authorizer(ctx, params["restApiId"], params)

    def get_authorizer(self, ctx: RequestContext, params: dict) -> dict:
        return self.rest.part(ctx, "authorizer", params["restApiId"], params["authorizerId"], "Authorizer")

    def get_authorizers(self, ctx: RequestContext, params: dict) -> dict:
        self.rest.api(ctx, params["restApiId"])
        return _page(self.docs.list(ctx.account, ctx.region, "authorizer", params["restApiId"]), params)

    def update_authorizer(self, ctx: RequestContext, params: dict) -> dict:
        doc = self.get_authorizer(ctx, params)
        patch.apply(doc, params.get("patchOperations"), lists=("providerARNs",))
        return self.docs.put(ctx.account, ctx.region, "authorizer", params["restApiId"], doc["id"], doc)

    def delete_authorizer(self, ctx: RequestContext, params: dict) -> dict:
        self.get_authorizer(ctx, params)
        self.docs.delete(ctx.account, ctx.region, "authorizer", params["restApiId"], params["authorizerId"])
        return {}

    def create_request_validator(self, ctx: RequestContext, params: dict) -> dict:
        return self.rest.create_validator(ctx, params["restApiId"], params)

    def get_request_validator(self, ctx: RequestContext, params: dict) -> dict:
        return self.rest.part(ctx, "requestvalidator", params["restApiId"], params["requestValidatorId"],
                              "Request Validator")

    def get_request_validators(self, ctx: RequestContext, params: dict) -> dict:
        self.rest.api(ctx, params["restApiId"])
        return _page(self.docs.list(ctx.account, ctx.region, "requestvalidator", params["restApiId"]), params)

    def update_request_validator(self, ctx: RequestContext, params: dict) -> dict:
        doc = self.get_request_validator(ctx, params)
        patch.apply(doc, params.get("patchOperations"))
        return self.docs.put(ctx.account, ctx.region, "requestvalidator", params["restApiId"], doc["id"], doc)

    def delete_request_validator(self, ctx: RequestContext, params: dict) -> dict:
        self.get_request_validator(ctx, params)
        self.docs.delete(ctx.account, ctx.region, "requestvalidator", params["restApiId"],
                         params["requestValidatorId"])
        return {}

    def create_model(self, ctx: RequestContext, params: dict) -> dict:
        return self.rest.create_model(ctx, params["restApiId"], params)

    def get_model(self, ctx: RequestContext, params: dict) -> dict:
        return self.rest.part(ctx, "model", params["restApiId"], params["modelName"], "Model")

    def get_models(self, ctx: RequestContext, params: dict) -> dict:
        self.rest.api(ctx, params["restApiId"])
        return _page(self.docs.list(ctx.account, ctx.region, "model", params["restApiId"]), params)

    def update_model(self, ctx: RequestContext, params: dict) -> dict:
        doc = self.get_model(ctx, params)
        patch.apply(doc, params.get("patchOperations"))
        return self.docs.put(ctx.account, ctx.region, "model", params["restApiId"], doc["name"], doc)

    def delete_model(self, ctx: RequestContext, params: dict) -> dict:
        self.get_model(ctx, params)
        self.docs.delete(ctx.account, ctx.region, "model", params["restApiId"], params["modelName"])
        return {}

    def put_gateway_response(self, ctx: RequestContext, params: dict) -> dict:
        return self.rest.put_gateway_response(ctx, params["restApiId"], params)

    def get_gateway_response(self, ctx: RequestContext, params: dict) -> dict:
        from unkai.services.apigateway.responses import DEFAULTS

        self.rest.api(ctx, params["restApiId"])
        doc = self.docs.get(ctx.account, ctx.region, "gatewayresponse", params["restApiId"], params["responseType"])
        if doc is None:
            if params["responseType"] not in DEFAULTS:
                raise not_found("Gateway Response type")
            status, _ = DEFAULTS[params["responseType"]]
            return {"responseType": params["responseType"], "statusCode": str(status) if status else None,
                    "responseParameters": {}, "responseTemplates": {"application/json":
                                                                   '{"message":$context.error.messageString}'},
                    "defaultResponse": True}
        return doc

    def get_gateway_responses(self, ctx: RequestContext, params: dict) -> dict:
        from unkai.services.apigateway.responses import DEFAULTS

        self.rest.api(ctx, params["restApiId"])
        items = [self.get_gateway_response(ctx, {**params, "responseType": t}) for t in DEFAULTS]
        return _page(items, params)

    def update_gateway_response(self, ctx: RequestContext, params: dict) -> dict:
        doc = self.get_gateway_response(ctx, params)
        patch.apply(doc, params.get("patchOperations"))
        doc["defaultResponse"] = False
        return self.docs.put(ctx.account, ctx.region, "gatewayresponse", params["restApiId"], doc["responseType"],
                             doc)

    def delete_gateway_response(self, ctx: RequestContext, params: dict) -> dict:
        self.rest.api(ctx, params["restApiId"])
        if not self.docs.delete(ctx.account, ctx.region, "gatewayresponse", params["restApiId"],
                                params["responseType"]):
            raise not_found("Gateway Response type")
        return {}

    # -- API keys and usage plans ------------------------------------------------------------

    def create_api_key(self, ctx: RequestContext, params: dict) -> dict:
        return self.rest.create_api_key(ctx, params)

    def _key(self, ctx: RequestContext, key_id: str) -> dict:
        doc = self.docs.get(ctx.account, ctx.region, "apikey", "", key_id)
        if doc is None:
            raise ServiceError("NotFoundException", "Invalid API Key identifier specified")
        return doc

    def get_api_key(self, ctx: RequestContext, params: dict) -> dict:
        doc = self._key(ctx, params["apiKey"])
        return doc if params.get("includeValue") else {k: v for k, v in doc.items() if k != "value"}

    def get_api_keys(self, ctx: RequestContext, params: dict) -> dict:
        items = self.docs.list(ctx.account, ctx.region, "apikey")
        if params.get("nameQuery"):
            items = [k for k in items if (k.get("name") or "").startswith(params["nameQuery"])]
        if params.get("customerId"):
            items = [k for k in items if k.get("customerId") == params["customerId"]]
        if not params.get("includeValues"):
            items = [{k: v for k, v in key.items() if k != "value"} for key in items]
        return _page(items, params)

    def update_api_key(self, ctx: RequestContext, params: dict) -> dict:
        doc = self._key(ctx, params["apiKey"])
        patch.apply(doc, params.get("patchOperations"), lists=("stageKeys",))
        doc["lastUpdatedDate"] = self.clock.now()
        return self.docs.put(ctx.account, ctx.region, "apikey", "", doc["id"], doc)

    def delete_api_key(self, ctx: RequestContext, params: dict) -> dict:
        self._key(ctx, params["apiKey"])
        self.docs.delete(ctx.account, ctx.region, "apikey", "", params["apiKey"])
        for plan in self.docs.list(ctx.account, ctx.region, "usageplan"):
            self.docs.delete(ctx.account, ctx.region, "usageplankey", plan["id"], params["apiKey"])
        return {}

    def create_usage_plan(self, ctx: RequestContext, params: dict) -> dict:
        return self.rest.create_usage_plan(ctx, params)

    def get_usage_plan(self, ctx: RequestContext, params: dict) -> dict:
        return self.rest.usage_plan(ctx, params["usagePlanId"])

    def get_usage_plans(self, ctx: RequestContext, params: dict) -> dict:
        items = self.docs.list(ctx.account, ctx.region, "usageplan")
        if params.get("keyId"):
            items = [p for p in items if self.docs.get(ctx.account, ctx.region, "usageplankey", p["id"],
                                                       params["keyId"])]
        return _page(items, params)

    def update_usage_plan(self, ctx: RequestContext, params: dict) -> dict:
        doc = self.rest.usage_plan(ctx, params["usagePlanId"])
        for op in params.get("patchOperations") or []:
            if op.get("path") == "/apiStages":
                api_id, _, stage = (op.get("value") or "").partition(":")
                entry = {"apiId": api_id, "stage": stage}
                stages = doc.setdefault("apiStages", [])
                if op.get("op") == "add" and entry not in stages:
                    stages.append(entry)
                elif op.get("op") == "remove" and entry in stages:
                    stages.remove(entry)
            else:
                patch.apply(doc, [op])
        return self.docs.put(ctx.account, ctx.region, "usageplan", "", doc["id"], doc)

    def delete_usage_plan(self, ctx: RequestContext, params: dict) -> dict:
        self.rest.usage_plan(ctx, params["usagePlanId"])
        self.docs.delete(ctx.account, ctx.region, "usageplan", "", params["usagePlanId"])
        self.docs.delete_children(ctx.account, ctx.region, params["usagePlanId"])
        return {}

    def create_usage_plan_key(self, ctx: RequestContext, params: dict) -> dict:
        return self.rest.create_usage_plan_key(ctx, params["usagePlanId"], params["keyId"], params["keyType"])

    def get_usage_plan_keys(self, ctx: RequestContext, params: dict) -> dict:
        self.rest.usage_plan(ctx, params["usagePlanId"])
        items = self.docs.list(ctx.account, ctx.region, "usageplankey", params["usagePlanId"])
        if params.get("nameQuery"):
            items = [k for k in items if (k.get("name") or "").startswith(params["nameQuery"])]
        return _page(items, params)

    def get_usage_plan_key(self, ctx: RequestContext, params: dict) -> dict:
        self.rest.usage_plan(ctx, params["usagePlanId"])
        doc = self.docs.get(ctx.account, ctx.region, "usageplankey", params["usagePlanId"], params["keyId"])
        if doc is None:
            raise ServiceError("NotFoundException", "Invalid API Key identifier specified")
        return doc

    def delete_usage_plan_key(self, ctx: RequestContext, params: dict) -> dict:
        self.get_usage_plan_key(ctx, params)
        self.docs.delete(ctx.account, ctx.region, "usageplankey", params["usagePlanId"], params["keyId"])
        return {}

    def get_usage(self, ctx: RequestContext, params: dict) -> dict:
        self.rest.usage_plan(ctx, params["usagePlanId"])
        usage = self.dataplane.limits.usage(params["usagePlanId"], params.get("keyId")) if self.dataplane else {}
        return {"usagePlanId": params["usagePlanId"], "startDate": params["startDate"],
                "endDate": params["endDate"], "items": usage}

    # -- tags ----------------------------------------------------------------------------------

    def _tagged(self, ctx: RequestContext, arn: str) -> tuple[str, str, dict]:
        # arn:aws:apigateway:{region}::/restapis/{id}[/stages/{name}]
        path = arn.split("::", 1)[-1].strip("/").split("/")
        if len(path) >= 2 and path[0] == "restapis":
            if len(path) == 4 and path[2] == "stages":
                return "stage", path[1], self.rest.stage(ctx, path[1], path[3])
            return "restapi", "", self.rest.api(ctx, path[1])
        if len(path) == 2 and path[0] == "apikeys":
            return "apikey", "", self._key(ctx, path[1])
        if len(path) == 2 and path[0] == "usageplans":
            return "usageplan", "", self.rest.usage_plan(ctx, path[1])
        raise ServiceError("NotFoundException", "Invalid resource identifier specified")

    def tag_resource(self, ctx: RequestContext, params: dict) -> dict:
        kind, parent, doc = self._tagged(ctx, params["resourceArn"])
        doc.setdefault("tags", {}).update(params.get("tags") or {})
        self.docs.put(ctx.account, ctx.region, kind, parent, doc.get("id") or doc["stageName"], doc)
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict) -> dict:
        kind, parent, doc = self._tagged(ctx, params["resourceArn"])
        for key in params.get("tagKeys") or []:
            (doc.get("tags") or {}).pop(key, None)
        self.docs.put(ctx.account, ctx.region, kind, parent, doc.get("id") or doc["stageName"], doc)
        return {}

    def get_tags(self, ctx: RequestContext, params: dict) -> dict:
        return {"tags": self._tagged(ctx, params["resourceArn"])[2].get("tags") or {}}

    def get_account(self, ctx: RequestContext, params: dict) -> dict:
        return {"throttleSettings": {"burstLimit": 5000, "rateLimit": 10000.0}, "features": ["UsagePlans"],
                "apiKeyVersion": "4"}

    # -- template resources ---------------------------------------------------------------------

    def create_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str,  # type: ignore[override]
                        props: dict[str, Any]) -> Provisioned:
        return resources.create(self, ctx, resource_type, logical_id, props)

    def delete_resource(self, ctx: ResourceContext, resource_type: str, physical_id: str,  # type: ignore[override]
                        props: dict[str, Any]) -> None:
        resources.delete(self, ctx, resource_type, physical_id, props)
