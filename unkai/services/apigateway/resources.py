"""AWS::ApiGateway::* and AWS::ApiGatewayV2::* template resources, created through the
same control-plane code as the API operations (SAM's Api, HttpApi and WebSocketApi
expand to these). ``AWS::ApiGatewayV2::DomainName``'s Ref is the name (GetAtt
RegionalDomainName, RegionalHostedZoneId, DomainNameArn); ``ApiMapping``'s is its id.
``AWS::ApiGateway::DomainName`` (what SAM's ``Domain`` on an Api expands to, with a
``BasePathMapping`` per base path): Ref the name, GetAtt DistributionDomainName and
DistributionHostedZoneId (EDGE) or RegionalDomainName and RegionalHostedZoneId (REGIONAL), and
DomainNameArn; both are the same domain names and mappings as the API operations' (domains.py),
so the stage answers on the name's Host."""

from __future__ import annotations

import json
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import Provisioned, ResourceContext

REST_TYPES = tuple(f"AWS::ApiGateway::{t}" for t in (
    "RestApi", "Resource", "Method", "Deployment", "Stage", "Authorizer", "ApiKey", "UsagePlan", "UsagePlanKey",
    "RequestValidator", "Model", "GatewayResponse", "Account", "DomainName", "BasePathMapping"))
V2_TYPES = tuple(f"AWS::ApiGatewayV2::{t}" for t in (
    "Api", "Route", "Integration", "Stage", "Deployment", "Authorizer", "RouteResponse", "IntegrationResponse",
    "DomainName", "ApiMapping"))


def _lower(d: dict | None) -> dict:
    return {k[:1].lower() + k[1:]: v for k, v in (d or {}).items()}


def _tags(props: dict) -> dict[str, str] | None:
    tags = props.get("Tags")
    if isinstance(tags, list):
        return {t["Key"]: t["Value"] for t in tags}
    return tags or None


def _json(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (dict, list)) else value


def create(service: Any, ctx: ResourceContext, kind: str, logical_id: str, props: dict[str, Any]) -> Provisioned:
    short = kind.rsplit("::", 1)[1]
    rctx = ctx.request_context(service.name)
    if kind.startswith("AWS::ApiGatewayV2::"):
        return _create_v2(service, rctx, ctx, short, logical_id, props)
    rest = service.rest
    api_id = props.get("RestApiId", "")
    if short == "RestApi":
        params = {"name": props.get("Name") or logical_id, "description": props.get("Description"),
                  "binaryMediaTypes": props.get("BinaryMediaTypes"), "apiKeySource": props.get("ApiKeySourceType"),
                  "endpointConfiguration": _lower(props.get("EndpointConfiguration")) or None,
                  "policy": _json(props.get("Policy")), "tags": _tags(props),
                  "minimumCompressionSize": props.get("MinimumCompressionSize"),
                  "disableExecuteApiEndpoint": props.get("DisableExecuteApiEndpoint")}
        if props.get("CloneFrom"):
            params["cloneFrom"] = props["CloneFrom"]
            api = service.create_rest_api(rctx, params)
        else:
            api = rest.create_api(rctx, params)
        if props.get("Body") is not None:
            api = rest.import_body(rctx, api["id"], props["Body"], mode=props.get("Mode") or "overwrite",
                                   base_path=(props.get("Parameters") or {}).get("basepath", "ignore"))
            if props.get("Name"):
                api["name"] = props["Name"]
            for key in ("binaryMediaTypes",):
                if params.get(key):
                    api[key] = params[key]
            service.docs.put(rctx.account, rctx.region, "restapi", "", api["id"], api)
        elif props.get("BodyS3Location"):
            raise ServiceError("BadRequestException", "BodyS3Location is not supported by unkai; inline the "
                               "definition as Body (or DefinitionBody in SAM)")
        return Provisioned(api["id"], api["id"], {"RestApiId": api["id"], "RootResourceId": api["rootResourceId"]})
    if short == "Resource":
        res = rest.create_resource(rctx, api_id, props["ParentId"], props.get("PathPart", ""))
        return Provisioned(res["id"], res["id"], {"ResourceId": res["id"]})
    if short == "Method":
        verb = props["HttpMethod"].upper()
        rest.put_method(rctx, api_id, props["ResourceId"], {
            "httpMethod": verb, "authorizationType": props.get("AuthorizationType"),
            "authorizerId": props.get("AuthorizerId"), "apiKeyRequired": props.get("ApiKeyRequired"),
            "requestParameters": props.get("RequestParameters"), "requestModels": props.get("RequestModels"),
            "requestValidatorId": props.get("RequestValidatorId"), "operationName": props.get("OperationName"),
            "authorizationScopes": props.get("AuthorizationScopes")})
        for resp in props.get("MethodResponses") or []:
            rest.put_method_response(rctx, api_id, props["ResourceId"], verb, {
                "statusCode": str(resp["StatusCode"]), "responseParameters": resp.get("ResponseParameters"),
                "responseModels": resp.get("ResponseModels")})
        integration = props.get("Integration")
        if integration:
            rest.put_integration(rctx, api_id, props["ResourceId"], verb, {
                "type": integration.get("Type"), "integrationHttpMethod": integration.get("IntegrationHttpMethod"),
                "uri": integration.get("Uri"), "credentials": integration.get("Credentials"),
                "requestParameters": integration.get("RequestParameters"),
                "requestTemplates": integration.get("RequestTemplates"),
                "passthroughBehavior": integration.get("PassthroughBehavior"),
                "contentHandling": integration.get("ContentHandling"),
                "timeoutInMillis": integration.get("TimeoutInMillis"),
                "cacheKeyParameters": integration.get("CacheKeyParameters"),
                "cacheNamespace": integration.get("CacheNamespace"),
                "connectionType": integration.get("ConnectionType")})
            for resp in integration.get("IntegrationResponses") or []:
                rest.put_integration_response(rctx, api_id, props["ResourceId"], verb, {
                    "statusCode": str(resp["StatusCode"]), "selectionPattern": resp.get("SelectionPattern"),
                    "responseParameters": resp.get("ResponseParameters"),
                    "responseTemplates": resp.get("ResponseTemplates"),
                    "contentHandling": resp.get("ContentHandling")})
        physical = f"{api_id}|{props['ResourceId']}|{verb}"
        return Provisioned(physical, physical)
    if short == "Deployment":
        description = props.get("StageDescription") or {}
        dep = rest.create_deployment(rctx, api_id, {"description": props.get("Description"),
                                                    "stageName": props.get("StageName"),
                                                    "variables": description.get("Variables")})
        if props.get("StageName") and description:
            _apply_stage_settings(service, rctx, api_id, props["StageName"], description)
        return Provisioned(dep["id"], dep["id"], {"DeploymentId": dep["id"]})
    if short == "Stage":
        name = props.get("StageName") or logical_id
        existing = service.docs.get(rctx.account, rctx.region, "stage", api_id, name)
        if existing is not None:  # SAM's Deployment may have created it
            existing["deploymentId"] = props["DeploymentId"]
            service.docs.put(rctx.account, rctx.region, "stage", api_id, name, existing)
        else:
            rest.create_stage(rctx, api_id, {"stageName": name, "deploymentId": props.get("DeploymentId"),
                                             "description": props.get("Description"),
                                             "variables": props.get("Variables"),
                                             "tracingEnabled": props.get("TracingEnabled"), "tags": _tags(props)})
        _apply_stage_settings(service, rctx, api_id, name, props)
        return Provisioned(name, name)
    if short == "Authorizer":
        auth = rest.create_authorizer(rctx, api_id, {
            "name": props.get("Name") or logical_id, "type": props.get("Type"),
            "authorizerUri": props.get("AuthorizerUri"), "identitySource": props.get("IdentitySource"),
            "identityValidationExpression": props.get("IdentityValidationExpression"),
            "authorizerResultTtlInSeconds": props.get("AuthorizerResultTtlInSeconds"),
            "providerARNs": props.get("ProviderARNs"), "authType": props.get("AuthType"),
            "authorizerCredentials": props.get("AuthorizerCredentials")})
        return Provisioned(auth["id"], auth["id"], {"AuthorizerId": auth["id"]})
    if short == "ApiKey":
        key = rest.create_api_key(rctx, {"name": props.get("Name") or logical_id, "value": props.get("Value"),
                                         "description": props.get("Description"),
                                         "enabled": props.get("Enabled", False), "customerId": props.get("CustomerId"),
                                         "stageKeys": [_lower(s) for s in props.get("StageKeys") or []],
                                         "tags": _tags(props)})
        return Provisioned(key["id"], key["id"], {"APIKeyId": key["id"]})
    if short == "UsagePlan":
        plan = rest.create_usage_plan(rctx, {
            "name": props.get("UsagePlanName") or logical_id, "description": props.get("Description"),
            "apiStages": [{"apiId": s.get("ApiId"), "stage": s.get("Stage")} for s in props.get("ApiStages") or []],
            "throttle": _lower(props.get("Throttle")) or None, "quota": _lower(props.get("Quota")) or None,
            "tags": _tags(props)})
        return Provisioned(plan["id"], plan["id"], {"Id": plan["id"]})
    if short == "UsagePlanKey":
        rest.create_usage_plan_key(rctx, props["UsagePlanId"], props["KeyId"], props.get("KeyType", "API_KEY"))
        physical = f"{props['UsagePlanId']}|{props['KeyId']}"
        return Provisioned(physical, physical, {"Id": physical})
    if short == "RequestValidator":
        val = rest.create_validator(rctx, api_id, {"name": props.get("Name") or logical_id,
                                                   "validateRequestBody": props.get("ValidateRequestBody"),
                                                   "validateRequestParameters":
                                                       props.get("ValidateRequestParameters")})
        return Provisioned(val["id"], val["id"], {"RequestValidatorId": val["id"]})
    if short == "Model":
        model = rest.create_model(rctx, api_id, {"name": props.get("Name") or logical_id,
                                                 "schema": props.get("Schema"),
                                                 "contentType": props.get("ContentType"),
                                                 "description": props.get("Description")})
        return Provisioned(model["name"], model["name"])
    if short == "GatewayResponse":
        rest.put_gateway_response(rctx, api_id, {"responseType": props["ResponseType"],
                                                 "statusCode": props.get("StatusCode"),
                                                 "responseParameters": props.get("ResponseParameters"),
                                                 "responseTemplates": props.get("ResponseTemplates")})
        physical = f"{api_id}|{props['ResponseType']}"
        return Provisioned(physical, physical)
    if short == "Account":
        return Provisioned(f"{ctx.account}-apigateway-account")
    if short == "DomainName":
        view = service.domains.create(rctx, {
            "domainName": props.get("DomainName"), "certificateArn": props.get("CertificateArn"),
            "regionalCertificateArn": props.get("RegionalCertificateArn"),
            "endpointConfiguration": _lower(props.get("EndpointConfiguration")) or None,
            "securityPolicy": props.get("SecurityPolicy"),
            "mutualTlsAuthentication": _lower(props.get("MutualTlsAuthentication")) or None,
            "ownershipVerificationCertificateArn": props.get("OwnershipVerificationCertificateArn"),
            "routingMode": props.get("RoutingMode"), "tags": _tags(props)})
        attributes = {"DistributionDomainName": view.get("distributionDomainName"),
                      "DistributionHostedZoneId": view.get("distributionHostedZoneId"),
                      "RegionalDomainName": view.get("regionalDomainName"),
                      "RegionalHostedZoneId": view.get("regionalHostedZoneId"), "DomainNameArn": view["domainNameArn"]}
        return Provisioned(view["domainName"], view["domainName"], {k: v for k, v in attributes.items() if v})
    if short == "BasePathMapping":
        mapping = service.domains.create_mapping(rctx, {"domainName": props.get("DomainName"), "restApiId": api_id,
                                                        "stage": props.get("Stage"), "basePath": props.get("BasePath")})
        physical = f"{props.get('DomainName')}|{mapping['basePath']}"
        return Provisioned(physical, physical)
    raise NotImplementedError(kind)


def _apply_stage_settings(service: Any, rctx: Any, api_id: str, name: str, props: dict) -> None:
    stage = service.docs.get(rctx.account, rctx.region, "stage", api_id, name)
    settings = stage.setdefault("methodSettings", {})
    for s in props.get("MethodSettings") or []:
        path = s.get("ResourcePath", "/*")
        key = "*/*" if path in ("/*", "*") and s.get("HttpMethod", "*") == "*" else \
            f"{path.lstrip('/')}/{s.get('HttpMethod', '*')}"
        entry = {k: v for k, v in _lower(s).items() if k not in ("resourcePath", "httpMethod")}
        settings[key] = entry
    for flat in ("ThrottlingBurstLimit", "ThrottlingRateLimit", "LoggingLevel", "MetricsEnabled", "DataTraceEnabled"):
        if flat in props:  # Deployment's StageDescription spells the */* settings flat
            settings.setdefault("*/*", {})[flat[:1].lower() + flat[1:]] = props[flat]
    log = props.get("AccessLogSetting")
    if log:
        stage["accessLogSettings"] = {"destinationArn": log.get("DestinationArn"), "format": log.get("Format")}
    if props.get("Variables"):
        stage["variables"] = dict(props["Variables"])
    service.docs.put(rctx.account, rctx.region, "stage", api_id, name, stage)


def _create_v2(service: Any, rctx: Any, ctx: ResourceContext, short: str, logical_id: str,
               props: dict[str, Any]) -> Provisioned:
    apis = service.apis
    api_id = props.get("ApiId", "")
    params = {k: v for k, v in props.items() if k not in ("ApiId", "Body", "BodyS3Location", "FailOnWarnings")}
    if short == "Api":
        if props.get("Body") is not None:
            api = apis.import_body(rctx, None, props["Body"])
            for key in ("Name", "Description", "CorsConfiguration", "DisableExecuteApiEndpoint"):
                if props.get(key) is not None:
                    api[key] = props[key]
            api["Tags"] = _tags(props) or api.get("Tags") or {}
            service.docs.put(rctx.account, rctx.region, "api", "", api["ApiId"], api)
        else:
            params["Tags"] = _tags(props)
            api = apis.create_api(rctx, params)
        endpoint = f"{'wss' if api['ProtocolType'] == 'WEBSOCKET' else 'https'}://{api['ApiId']}.execute-api." \
                   f"{ctx.region}.amazonaws.com"
        return Provisioned(api["ApiId"], api["ApiId"], {"ApiId": api["ApiId"], "ApiEndpoint": endpoint})
    if short == "Route":
        route = apis.create_route(rctx, api_id, params)
        return Provisioned(route["RouteId"], route["RouteId"], {"RouteId": route["RouteId"]})
    if short == "Integration":
        integ = apis.create_integration(rctx, api_id, params)
        return Provisioned(integ["IntegrationId"], integ["IntegrationId"], {"IntegrationId": integ["IntegrationId"]})
    if short == "Authorizer":
        auth = apis.create_authorizer(rctx, api_id, {"Name": logical_id, **params})
        return Provisioned(auth["AuthorizerId"], auth["AuthorizerId"], {"AuthorizerId": auth["AuthorizerId"]})
    if short == "Stage":
        if isinstance(params.get("RouteSettings"), str):
            params["RouteSettings"] = json.loads(params["RouteSettings"])
        params["Tags"] = _tags(props)
        existing = service.docs.get(rctx.account, rctx.region, "stage", api_id, params.get("StageName", ""))
        if existing is not None:
            existing.update({k: v for k, v in params.items() if v is not None})
            service.docs.put(rctx.account, rctx.region, "stage", api_id, existing["StageName"], existing)
            stage = existing
        else:
            stage = apis.create_stage(rctx, api_id, params)
        return Provisioned(stage["StageName"], stage["StageName"])
    if short == "Deployment":
        dep = apis.create_deployment(rctx, api_id, params)
        return Provisioned(dep["DeploymentId"], dep["DeploymentId"], {"DeploymentId": dep["DeploymentId"]})
    if short == "RouteResponse":
        resp = apis.create_route_response(rctx, api_id, props["RouteId"], params)
        return Provisioned(resp["RouteResponseId"], resp["RouteResponseId"])
    if short == "IntegrationResponse":
        resp = apis.create_integration_response(rctx, api_id, props["IntegrationId"], params)
        return Provisioned(resp["IntegrationResponseId"], resp["IntegrationResponseId"])
    if short == "DomainName":  # Ref: the name; GetAtt: the regional alias target, as CloudFormation gives it
        domain = service.domains.create(rctx, {"DomainName": props.get("DomainName"), "Tags": props.get("Tags"),
                                               "DomainNameConfigurations": props.get("DomainNameConfigurations"),
                                               "MutualTlsAuthentication": props.get("MutualTlsAuthentication")})
        config = (domain.get("DomainNameConfigurations") or [{}])[0]
        return Provisioned(domain["DomainName"], domain["DomainName"], {
            "RegionalDomainName": config.get("ApiGatewayDomainName"),
            "RegionalHostedZoneId": config.get("HostedZoneId"), "DomainNameArn": domain.get("DomainNameArn")})
    if short == "ApiMapping":  # Ref: the mapping's id
        mapping = service.domains.create_mapping(rctx, {k: props[k] for k in ("DomainName", "ApiId", "Stage",
                                                                              "ApiMappingKey") if k in props})
        return Provisioned(mapping["ApiMappingId"], mapping["ApiMappingId"])
    raise NotImplementedError(short)


def update(service: Any, ctx: ResourceContext, kind: str, logical_id: str, physical_id: str, old: dict[str, Any],
           new: dict[str, Any]) -> Provisioned | None:
    """An API whose OpenAPI ``Body`` changed is re-imported in place, as CloudFormation updates it: its id, and
    so its URLs and the permissions naming it, are kept (an edited SAM event route must not move the API).
    None otherwise: the resource is replaced."""
    changed = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
    if old.get("Body") is None or new.get("Body") is None or not changed <= {"Body", "Name", "Description"}:
        return None
    rctx = ctx.request_context(service.name)
    if kind == "AWS::ApiGatewayV2::Api":
        api = service.apis.import_body(rctx, physical_id, new["Body"])
        doc = service.apis.api(rctx, physical_id)
        for key in ("Name", "Description"):
            if new.get(key) is not None:
                doc[key] = new[key]
        service.docs.put(rctx.account, rctx.region, "api", "", physical_id, doc)
        endpoint = f"{'wss' if api['ProtocolType'] == 'WEBSOCKET' else 'https'}://{physical_id}.execute-api." \
                   f"{ctx.region}.amazonaws.com"
        return Provisioned(physical_id, physical_id, {"ApiId": physical_id, "ApiEndpoint": endpoint})
    if kind == "AWS::ApiGateway::RestApi" and not new.get("CloneFrom"):
        api = service.rest.import_body(rctx, physical_id, new["Body"], mode=new.get("Mode") or "overwrite",
                                       base_path=(new.get("Parameters") or {}).get("basepath", "ignore"))
        if new.get("Name"):
            api["name"] = new["Name"]
        service.docs.put(rctx.account, rctx.region, "restapi", "", physical_id, api)
        return Provisioned(physical_id, physical_id, {"RestApiId": physical_id, "RootResourceId": api["rootResourceId"]})
    return None


def delete(service: Any, ctx: ResourceContext, kind: str, physical_id: str, props: dict[str, Any]) -> None:
    short = kind.rsplit("::", 1)[1]
    rctx = ctx.request_context(service.name)
    docs = service.docs
    a, r = rctx.account, rctx.region
    try:
        if kind.startswith("AWS::ApiGatewayV2::"):
            api_id = props.get("ApiId", "")
            if short == "Api":
                service.apis.delete_api(rctx, physical_id)
            elif short == "DomainName":
                service.domains.delete(rctx, physical_id)
            elif short == "ApiMapping":
                service.domains.delete_mapping(rctx, props.get("DomainName", ""), physical_id)
            else:
                kind_name = {"Route": "route", "Integration": "integration", "Authorizer": "authorizer",
                             "Stage": "stage", "Deployment": "deployment", "RouteResponse": "routeresponse",
                             "IntegrationResponse": "integrationresponse"}[short]
                docs.delete(a, r, kind_name, api_id, physical_id)
            return
        rest = service.rest
        api_id = props.get("RestApiId", "")
        if short == "RestApi":
            rest.delete_api(rctx, physical_id)
        elif short == "Resource":
            rest.delete_resource(rctx, api_id, physical_id)
        elif short == "Method":
            api_id, resource_id, verb = physical_id.split("|")
            res = docs.get(a, r, "resource", api_id, resource_id)
            if res and (res.get("resourceMethods") or {}).pop(verb, None) is not None:
                rest.save_resource(rctx, api_id, res)
        elif short in ("Deployment", "Authorizer", "RequestValidator", "Model"):
            docs.delete(a, r, short.lower(), api_id, physical_id)
        elif short == "Stage":
            docs.delete(a, r, "stage", api_id, physical_id)
        elif short == "GatewayResponse":
            api_id, response_type = physical_id.split("|")
            docs.delete(a, r, "gatewayresponse", api_id, response_type)
        elif short == "ApiKey":
            docs.delete(a, r, "apikey", "", physical_id)
        elif short == "UsagePlan":
            docs.delete(a, r, "usageplan", "", physical_id)
            docs.delete_children(a, r, physical_id)
        elif short == "UsagePlanKey":
            plan, key = physical_id.split("|")
            docs.delete(a, r, "usageplankey", plan, key)
        elif short == "DomainName":
            service.domains.delete(rctx, physical_id)
        elif short == "BasePathMapping":
            domain, base_path = physical_id.split("|", 1)
            service.domains.delete_mapping(rctx, domain, base_path)
    except ServiceError as exc:
        if exc.code != "NotFoundException":
            raise
