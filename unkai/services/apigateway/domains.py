"""Custom domain names and their API mappings (``apigatewayv2`` CreateDomainName,
CreateApiMapping and their Get/Update/Delete), kept as documents beside the APIs.

A domain name is AVAILABLE as soon as it is created: there is no certificate to
validate locally, so the Terraform provider's wait for ``DomainNameStatus`` ends at
once. ``ApiGatewayDomainName`` and ``HostedZoneId`` have AWS's form (the alias target a
DNS record would point at), for outputs that name them. A domain is stored as kind
``domainname`` (id: the name); its mappings as kind ``apimapping`` under the domain.
"""

from __future__ import annotations

from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext
from unkai.services.apigateway.documents import Documents, new_id

# Route 53 hosted zones of API Gateway's regional endpoints (AWS's "Amazon API Gateway endpoints" table)
_REGIONAL_ZONES = {
    "us-east-1": "Z1UJRXOUMOOFQ8", "us-east-2": "ZOJJZC49E0EPZ", "us-west-1": "Z2MOQWSUQHHKKW",
    "us-west-2": "Z2OJLYMUO9EFXC", "eu-west-1": "ZLY8HYME6SFDD", "eu-central-1": "Z1U9ULNL0V5AJ3",
    "ap-northeast-1": "Z1YSHQZHG15GKL", "ap-southeast-1": "ZL327KTPIQFUL", "ap-southeast-2": "Z2RPCDW04V8134",
}


def _not_found(what: str, id: str) -> ServiceError:
    return ServiceError("NotFoundException", f"Invalid {what} identifier specified {id}", ResourceType=what)


def _bad(message: str) -> ServiceError:
    return ServiceError("BadRequestException", message)


class Domains:
    """The operations on custom domain names, over the API Gateway documents."""

    def __init__(self, docs: Documents, clock: Any) -> None:
        self.docs = docs
        self.clock = clock

    def _configurations(self, ctx: RequestContext, given: list[dict] | None, old: list[dict] | None = None) -> list:
        out = []
        for i, config in enumerate(given or []):
            endpoint = config.get("EndpointType") or "REGIONAL"
            if endpoint != "REGIONAL":
                raise _bad(f"Invalid endpoint type {endpoint}. Valid options are REGIONAL")
            if not config.get("CertificateArn"):
                raise _bad("CertificateArn is required")
            policy = config.get("SecurityPolicy") or "TLS_1_2"
            if policy not in ("TLS_1_0", "TLS_1_2"):
                raise _bad(f"Invalid security policy {policy}. Valid options are TLS_1_0,TLS_1_2")
            kept = (old or [{}])[min(i, len(old or [{}]) - 1)] if old else {}
            out.append({k: v for k, v in {
                "ApiGatewayDomainName": kept.get("ApiGatewayDomainName")
                or f"d-{new_id(10)}.execute-api.{ctx.region}.amazonaws.com",
                "CertificateArn": config["CertificateArn"], "CertificateName": config.get("CertificateName"),
                "CertificateUploadDate": kept.get("CertificateUploadDate") or self.clock.now(),
                "DomainNameStatus": "AVAILABLE", "EndpointType": endpoint,
                "HostedZoneId": _REGIONAL_ZONES.get(ctx.region, _REGIONAL_ZONES["us-east-1"]),
                "SecurityPolicy": policy, "IpAddressType": config.get("IpAddressType") or "ipv4",
                "OwnershipVerificationCertificateArn": config.get("OwnershipVerificationCertificateArn"),
            }.items() if v is not None})
        if not out:
            raise _bad("DomainNameConfigurations is required")
        return out

    def create(self, ctx: RequestContext, params: dict) -> dict:
        name = params.get("DomainName") or ""
        if not name or "." not in name:
            raise _bad("Invalid domain name specified")
        if self.docs.get(ctx.account, ctx.region, "domainname", "", name.lower()) is not None:
            raise ServiceError("ConflictException", "The domain name you provided already exists.")
        doc = {"ApiMappingSelectionExpression": "$request.basepath", "DomainName": name,
               "DomainNameArn": f"arn:aws:apigateway:{ctx.region}::/domainnames/{name}",
               "DomainNameConfigurations": self._configurations(ctx, params.get("DomainNameConfigurations")),
               "Tags": params.get("Tags") or {}}
        self._mutual_tls(doc, params.get("MutualTlsAuthentication"))
        doc["RoutingMode"] = params.get("RoutingMode") or "API_MAPPING_ONLY"
        return self.save(ctx, doc)

    @staticmethod
    def _mutual_tls(doc: dict, given: dict | None) -> None:
        """Mutual TLS as given; an empty truststore URI turns it off (AWS's way to disable it)."""
        if given is None:
            return
        if not given.get("TruststoreUri"):
            doc.pop("MutualTlsAuthentication", None)
        else:
            doc["MutualTlsAuthentication"] = {k: v for k, v in given.items() if v}

    def get(self, ctx: RequestContext, name: str) -> dict:
        doc = self.docs.get(ctx.account, ctx.region, "domainname", "", (name or "").lower())
        if doc is None:
            raise _not_found("domain name", name)
        return doc

    def all(self, ctx: RequestContext) -> list[dict]:
        return self.docs.list(ctx.account, ctx.region, "domainname")

    def update(self, ctx: RequestContext, params: dict) -> dict:
        doc = self.get(ctx, params["DomainName"])
        if params.get("DomainNameConfigurations") is not None:
            doc["DomainNameConfigurations"] = self._configurations(ctx, params["DomainNameConfigurations"],
                                                                   doc["DomainNameConfigurations"])
        self._mutual_tls(doc, params.get("MutualTlsAuthentication"))
        if params.get("RoutingMode"):
            doc["RoutingMode"] = params["RoutingMode"]
        return self.save(ctx, doc)

    def delete(self, ctx: RequestContext, name: str) -> None:
        doc = self.get(ctx, name)
        self.docs.delete(ctx.account, ctx.region, "domainname", "", doc["DomainName"].lower())
        self.docs.delete_children(ctx.account, ctx.region, doc["DomainName"].lower())

    def save(self, ctx: RequestContext, doc: dict) -> dict:
        # kept under the lower-cased name (DNS names ignore case), answered as it was given
        return self.docs.put(ctx.account, ctx.region, "domainname", "", doc["DomainName"].lower(), doc)

    # -- API mappings -------------------------------------------------------------------

    def _check_target(self, ctx: RequestContext, domain: str, api_id: str, stage: str, key: str,
                      mapping_id: str | None = None) -> None:
        if self.docs.get(ctx.account, ctx.region, "api", "", api_id) is None:
            raise _not_found("Api", api_id)
        if self.docs.get(ctx.account, ctx.region, "stage", api_id, stage) is None:
            raise _bad(f"Invalid stage identifier specified {stage}")
        for other in self.docs.list(ctx.account, ctx.region, "apimapping", domain):
            if other["ApiMappingKey"] == key and other["ApiMappingId"] != mapping_id:
                raise ServiceError("ConflictException", "ApiMapping with the provided ApiMappingKey already exists "
                                   "for this DomainName")

    def create_mapping(self, ctx: RequestContext, params: dict) -> dict:
        domain = self.get(ctx, params["DomainName"])["DomainName"].lower()
        key = params.get("ApiMappingKey") or ""
        self._check_target(ctx, domain, params["ApiId"], params.get("Stage") or "", key)
        doc = {"ApiId": params["ApiId"], "ApiMappingId": new_id(6), "ApiMappingKey": key, "Stage": params["Stage"]}
        return self.docs.put(ctx.account, ctx.region, "apimapping", domain, doc["ApiMappingId"], doc)

    def mapping(self, ctx: RequestContext, domain_name: str, mapping_id: str) -> dict:
        domain = self.get(ctx, domain_name)["DomainName"].lower()
        doc = self.docs.get(ctx.account, ctx.region, "apimapping", domain, mapping_id)
        if doc is None:
            raise _not_found("ApiMapping", mapping_id)
        return doc

    def mappings(self, ctx: RequestContext, domain_name: str) -> list[dict]:
        domain = self.get(ctx, domain_name)["DomainName"].lower()
        return self.docs.list(ctx.account, ctx.region, "apimapping", domain)

    def update_mapping(self, ctx: RequestContext, params: dict) -> dict:
        doc = self.mapping(ctx, params["DomainName"], params["ApiMappingId"])
        for key in ("ApiId", "ApiMappingKey", "Stage"):
            if params.get(key) is not None:
                doc[key] = params[key]
        domain = params["DomainName"].lower()
        self._check_target(ctx, domain, doc["ApiId"], doc["Stage"], doc["ApiMappingKey"], doc["ApiMappingId"])
        return self.docs.put(ctx.account, ctx.region, "apimapping", domain, doc["ApiMappingId"], doc)

    def delete_mapping(self, ctx: RequestContext, domain_name: str, mapping_id: str) -> None:
        self.mapping(ctx, domain_name, mapping_id)
        self.docs.delete(ctx.account, ctx.region, "apimapping", domain_name.lower(), mapping_id)


# -- the REST API (v1) view of the same domain names -------------------------------------------
# AWS keeps one set of custom domain names for both APIs: a name created by apigateway's
# CreateDomainName is GetDomainName-able through apigatewayv2 and the other way round, and a
# base path mapping is an API mapping whose key is the base path. So the v1 operations below
# read and write the same documents, in v1's member names.

CLOUDFRONT_ZONE = "Z2FDTNDATAQYW2"  # the hosted zone of every CloudFront distribution


def rest_view(doc: dict) -> dict:
    """A stored domain name as apigateway's GetDomainName answers it."""
    config = doc["DomainNameConfigurations"][0]
    edge = config["EndpointType"] == "EDGE"
    out: dict[str, Any] = {
        "domainName": doc["DomainName"], "domainNameArn": doc["DomainNameArn"],
        "certificateUploadDate": config.get("CertificateUploadDate"), "domainNameStatus": "AVAILABLE",
        "securityPolicy": config.get("SecurityPolicy", "TLS_1_2"),
        "endpointConfiguration": {"types": [config["EndpointType"]],
                                  "ipAddressType": config.get("IpAddressType", "ipv4")},
        "tags": doc.get("Tags") or {}, "routingMode": doc.get("RoutingMode", "API_MAPPING_ONLY"),
    }
    for member, key in (("CertificateArn", "certificateArn"), ("CertificateName", "certificateName")):
        if config.get(member):
            out[key if edge else "regional" + key[0].upper() + key[1:]] = config[member]
    if edge:
        out.update(distributionDomainName=config["ApiGatewayDomainName"], distributionHostedZoneId=CLOUDFRONT_ZONE)
    else:
        out.update(regionalDomainName=config["ApiGatewayDomainName"], regionalHostedZoneId=config["HostedZoneId"])
    if doc.get("MutualTlsAuthentication"):
        tls = doc["MutualTlsAuthentication"]
        out["mutualTlsAuthentication"] = {k[0].lower() + k[1:]: v for k, v in tls.items()}
    if config.get("OwnershipVerificationCertificateArn"):
        out["ownershipVerificationCertificateArn"] = config["OwnershipVerificationCertificateArn"]
    return out


def _rest_config(ctx: RequestContext, params: dict, clock: Any, old: dict | None = None) -> dict:
    types = (params.get("endpointConfiguration") or {}).get("types") or ["EDGE"]
    endpoint = types[0]
    if endpoint not in ("EDGE", "REGIONAL", "PRIVATE") or len(types) != 1:
        raise _bad(f"Invalid endpoint configuration type {','.join(types)}")
    arn = params.get("certificateArn") if endpoint == "EDGE" else params.get("regionalCertificateArn")
    name = params.get("certificateName") if endpoint == "EDGE" else params.get("regionalCertificateName")
    if not arn and not params.get("certificateBody") and endpoint != "PRIVATE":
        raise _bad("Either certificateArn or certificateBody must be provided" if endpoint == "EDGE" else
                   "A regional certificate is required for a REGIONAL domain name")
    policy = params.get("securityPolicy") or "TLS_1_2"
    if policy not in ("TLS_1_0", "TLS_1_2") and not policy.startswith("SecurityPolicy_"):
        raise _bad(f"Invalid security policy {policy}")
    kept = old or {}
    target = kept.get("ApiGatewayDomainName") if kept.get("EndpointType") == endpoint else None
    return {k: v for k, v in {
        "ApiGatewayDomainName": target or (f"d{new_id(13)}.cloudfront.net" if endpoint == "EDGE" else
                                           f"d-{new_id(10)}.execute-api.{ctx.region}.amazonaws.com"),
        "CertificateArn": arn, "CertificateName": name,
        "CertificateUploadDate": kept.get("CertificateUploadDate") or clock.now(), "DomainNameStatus": "AVAILABLE",
        "EndpointType": endpoint,
        "HostedZoneId": CLOUDFRONT_ZONE if endpoint == "EDGE" else _REGIONAL_ZONES.get(
            ctx.region, _REGIONAL_ZONES["us-east-1"]),
        "SecurityPolicy": policy,
        "IpAddressType": (params.get("endpointConfiguration") or {}).get("ipAddressType") or "ipv4",
        "OwnershipVerificationCertificateArn": params.get("ownershipVerificationCertificateArn"),
    }.items() if v is not None}


class RestDomains:
    """apigateway's domain name and base path mapping operations, over ``Domains``."""

    def __init__(self, domains: Domains, docs: Documents) -> None:
        self.domains = domains
        self.docs = docs

    def create(self, ctx: RequestContext, params: dict) -> dict:
        name = params.get("domainName") or ""
        if not name or "." not in name:
            raise _bad("Invalid domain name specified")
        if self.docs.get(ctx.account, ctx.region, "domainname", "", name.lower()) is not None:
            raise ServiceError("ConflictException", "The domain name you provided already exists.")
        doc = {"ApiMappingSelectionExpression": "$request.basepath", "DomainName": name,
               "DomainNameArn": f"arn:aws:apigateway:{ctx.region}::/domainnames/{name}",
               "DomainNameConfigurations": [_rest_config(ctx, params, self.domains.clock)],
               "Tags": params.get("tags") or {}, "RoutingMode": params.get("routingMode") or "API_MAPPING_ONLY"}
        tls = params.get("mutualTlsAuthentication") or {}
        self.domains._mutual_tls(doc, {"TruststoreUri": tls.get("truststoreUri"),
                                       "TruststoreVersion": tls.get("truststoreVersion")} if tls else None)
        return rest_view(self.domains.save(ctx, doc))

    def get(self, ctx: RequestContext, name: str) -> dict:
        return rest_view(self.domains.get(ctx, name))

    def all(self, ctx: RequestContext) -> list[dict]:
        return [rest_view(d) for d in self.domains.all(ctx)]

    def update(self, ctx: RequestContext, name: str, operations: list[dict]) -> dict:
        from unkai.services.apigateway import patch

        doc = self.domains.get(ctx, name)
        view = rest_view(doc)
        patch.apply(view, operations)
        config = doc["DomainNameConfigurations"][0]
        doc["DomainNameConfigurations"] = [_rest_config(ctx, view, self.domains.clock, config)]
        tls = view.get("mutualTlsAuthentication")
        if tls is not None:
            self.domains._mutual_tls(doc, {"TruststoreUri": tls.get("truststoreUri"),
                                           "TruststoreVersion": tls.get("truststoreVersion")})
        return rest_view(self.domains.save(ctx, doc))

    def delete(self, ctx: RequestContext, name: str) -> None:
        self.domains.delete(ctx, name)

    # -- base path mappings: API mappings whose key is the base path ("(none)" for the empty one) --

    @staticmethod
    def _view(mapping: dict) -> dict:
        out = {"basePath": mapping["ApiMappingKey"] or "(none)", "restApiId": mapping["ApiId"]}
        if mapping.get("Stage"):
            out["stage"] = mapping["Stage"]
        return out

    def _find(self, ctx: RequestContext, domain: str, base_path: str) -> dict:
        key = "" if base_path in ("", "(none)") else base_path
        for mapping in self.domains.mappings(ctx, domain):
            if mapping["ApiMappingKey"] == key:
                return mapping
        raise _not_found("base path mapping", base_path)

    def _check(self, ctx: RequestContext, domain: str, api_id: str, stage: str | None, key: str,
               mapping_id: str | None = None) -> None:
        if self.docs.get(ctx.account, ctx.region, "restapi", "", api_id) is None:
            raise _bad(f"Invalid REST API identifier specified {ctx.account}:{api_id}")
        if stage and self.docs.get(ctx.account, ctx.region, "stage", api_id, stage) is None:
            raise _bad(f"Invalid stage identifier specified {stage}")
        for other in self.domains.mappings(ctx, domain):
            if other["ApiMappingKey"] == key and other["ApiMappingId"] != mapping_id:
                raise ServiceError("ConflictException", "Base path already exists for this domain name")

    def create_mapping(self, ctx: RequestContext, params: dict) -> dict:
        domain = self.domains.get(ctx, params["domainName"])["DomainName"].lower()
        key = "" if params.get("basePath") in (None, "", "(none)") else params["basePath"]
        self._check(ctx, domain, params["restApiId"], params.get("stage"), key)
        doc = {"ApiId": params["restApiId"], "ApiMappingId": new_id(6), "ApiMappingKey": key,
               "Stage": params.get("stage") or ""}
        self.docs.put(ctx.account, ctx.region, "apimapping", domain, doc["ApiMappingId"], doc)
        return self._view(doc)

    def mapping(self, ctx: RequestContext, domain: str, base_path: str) -> dict:
        return self._view(self._find(ctx, domain, base_path))

    def mappings(self, ctx: RequestContext, domain: str) -> list[dict]:
        return [self._view(m) for m in self.domains.mappings(ctx, domain)]

    def update_mapping(self, ctx: RequestContext, domain: str, base_path: str, operations: list[dict]) -> dict:
        mapping = self._find(ctx, domain, base_path)
        members = {"/basePath": "ApiMappingKey", "/restapiId": "ApiId", "/stage": "Stage"}
        for op in operations or []:
            member = members.get(op.get("path", ""))
            if member is None or op.get("op", "replace") != "replace":
                raise _bad(f"Invalid patch path {op.get('path')}")
            value = op.get("value") or ""
            mapping[member] = "" if member == "ApiMappingKey" and value == "(none)" else value
        self._check(ctx, domain.lower(), mapping["ApiId"], mapping["Stage"], mapping["ApiMappingKey"],
                    mapping["ApiMappingId"])
        self.docs.put(ctx.account, ctx.region, "apimapping", domain.lower(), mapping["ApiMappingId"], mapping)
        return self._view(mapping)

    def delete_mapping(self, ctx: RequestContext, domain: str, base_path: str) -> None:
        mapping = self._find(ctx, domain, base_path)
        self.docs.delete(ctx.account, ctx.region, "apimapping", domain.lower(), mapping["ApiMappingId"])


def route(docs: Documents, host: str, path: str) -> tuple[str, str] | None:
    """A request to a custom domain name (its ``Host``): (API id, the path under the API,
    ``/{stage}/...``) through the domain's API mappings, the longest matching
    ``ApiMappingKey`` first, as API Gateway picks them. None when ``host`` is no domain here."""
    name = host.rsplit(":", 1)[0].strip().lower().rstrip(".") if not host.startswith("[") else ""
    if not name or "." not in name or name.replace(".", "").isdigit():
        return None
    found = docs.locate(name, ("domainname",))
    if found is None:
        return None
    account, region, _, _ = found
    segments = path.lstrip("/")
    best: dict | None = None
    for mapping in docs.list(account, region, "apimapping", name):
        key = mapping.get("ApiMappingKey") or ""
        if (key == "" or segments == key or segments.startswith(key + "/")) and \
                (best is None or len(key) > len(best.get("ApiMappingKey") or "")):
            best = mapping
    if best is None:
        return None
    rest = segments[len(best.get("ApiMappingKey") or ""):].lstrip("/")
    stage = best["Stage"]
    # a base path mapping without a stage (REST's "(none)") leaves the stage to the caller: the
    # first segment after the base path names it, as API Gateway documents
    return best["ApiId"], (f"/{rest}" if stage in ("$default", "") else f"/{stage}/{rest}")
