"""``AWS::IoT::*`` template resources, each created through the IoT service's own operations.

| type | Ref | GetAtt |
|---|---|---|
| `Thing` | thing name | `Arn`, `Id` |
| `ThingGroup` | group name | `Arn`, `Id` |
| `Policy` | policy name | `Arn`, `Id` |
| `TopicRule` | rule name | `Arn` |
| `Certificate` | certificate id | `Arn`, `Id` |
| `CACertificate` | CA certificate id | `Arn`, `Id` |
| `PolicyPrincipalAttachment`, `ThingPrincipalAttachment` | a generated id | — |
| `Authorizer` | authorizer name | `Arn` |

Every property change replaces the resource (delete, then create); a TopicRule is
replaced in place with ReplaceTopicRule, and an Authorizer with UpdateAuthorizer unless its
name or SigningDisabled changes, as CloudFormation does.
"""

from __future__ import annotations

import json
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import Provisioned, ResourceContext
from unkai.template.names import physical_name

TYPES = ("AWS::IoT::Thing", "AWS::IoT::ThingGroup", "AWS::IoT::Policy", "AWS::IoT::PolicyPrincipalAttachment",
         "AWS::IoT::ThingPrincipalAttachment", "AWS::IoT::TopicRule", "AWS::IoT::Certificate",
         "AWS::IoT::CACertificate", "AWS::IoT::Authorizer")


def _camel(value: Any) -> Any:
    """CloudFormation's PascalCase property tree as the API's camelCase one (TopicRulePayload)."""
    if isinstance(value, dict):
        return {(k[:1].lower() + k[1:]): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _attributes(props: dict) -> dict:
    return {k: str(v) for k, v in ((props.get("AttributePayload") or {}).get("Attributes") or {}).items()}


def _rule_payload(props: dict) -> dict:
    payload = _camel(props.get("TopicRulePayload") or {})
    for action in list(payload.get("actions") or []) + ([payload["errorAction"]] if payload.get("errorAction")
                                                        else []):
        republish = action.get("republish")
        if republish and "qos" in republish:
            republish["qos"] = int(republish["qos"])
    return payload


def create(iot: Any, ctx: ResourceContext, resource_type: str, logical_id: str, props: dict) -> Provisioned:
    kind = resource_type.rsplit("::", 1)[1]
    rctx = ctx.request_context("iot")
    if kind == "Thing":
        name = props.get("ThingName") or physical_name(ctx.stack_name, logical_id, 128)
        out = iot.create_thing(rctx, {"thingName": name, "attributePayload": {"attributes": _attributes(props)}})
        return Provisioned(name, name, {"Arn": out["thingArn"], "Id": out["thingId"]})
    if kind == "ThingGroup":
        name = props.get("ThingGroupName") or physical_name(ctx.stack_name, logical_id, 128)
        group_props = props.get("ThingGroupProperties") or {}
        params: dict[str, Any] = {"thingGroupName": name, "thingGroupProperties": {}}
        if group_props.get("ThingGroupDescription"):
            params["thingGroupProperties"]["thingGroupDescription"] = group_props["ThingGroupDescription"]
        if group_props.get("AttributePayload"):
            params["thingGroupProperties"]["attributePayload"] = {"attributes": _attributes(group_props)}
        if props.get("ParentGroupName"):
            params["parentGroupName"] = props["ParentGroupName"]
        out = iot.create_thing_group(rctx, params)
        return Provisioned(name, name, {"Arn": out["thingGroupArn"], "Id": out["thingGroupId"]})
    if kind == "Policy":
        name = props.get("PolicyName") or physical_name(ctx.stack_name, logical_id, 128)
        document = props.get("PolicyDocument") or {}
        out = iot.create_policy(rctx, {"policyName": name, "policyDocument": document if isinstance(document, str)
                                       else json.dumps(document)})
        return Provisioned(name, name, {"Arn": out["policyArn"], "Id": name})
    if kind == "TopicRule":
        name = props.get("RuleName") or physical_name(ctx.stack_name, logical_id, 128).replace("-", "_")
        iot.create_topic_rule(rctx, {"ruleName": name, "topicRulePayload": _rule_payload(props)})
        return Provisioned(name, name, {"Arn": f"arn:aws:iot:{ctx.region}:{ctx.account}:rule/{name}"})
    if kind == "PolicyPrincipalAttachment":
        iot.attach_policy(rctx, {"policyName": props["PolicyName"], "target": props["Principal"]})
        pid = f"{props['PolicyName']}|{props['Principal']}"
        return Provisioned(pid, pid)
    if kind == "ThingPrincipalAttachment":
        iot.attach_thing_principal(rctx, {"thingName": props["ThingName"], "principal": props["Principal"]})
        pid = f"{props['ThingName']}|{props['Principal']}"
        return Provisioned(pid, pid)
    if kind == "Certificate":
        status = props.get("Status") or "ACTIVE"
        if props.get("CertificateSigningRequest"):
            out = iot.create_certificate_from_csr(rctx, {"certificateSigningRequest": props["CertificateSigningRequest"],
                                                         "setAsActive": status == "ACTIVE"})
        elif props.get("CertificateMode") == "SNI_ONLY":
            out = iot.register_certificate_without_ca(rctx, {"certificatePem": props["CertificatePem"],
                                                             "status": status})
        else:
            out = iot.register_certificate(rctx, {"certificatePem": props["CertificatePem"], "status": status,
                                                  "caCertificatePem": props.get("CACertificatePem")})
        return Provisioned(out["certificateId"], out["certificateId"], {"Arn": out["certificateArn"],
                                                                        "Id": out["certificateId"]})
    if kind == "CACertificate":
        out = iot.register_ca_certificate(rctx, {
            "caCertificate": props["CACertificatePem"], "setAsActive": (props.get("Status") or "") == "ACTIVE",
            "allowAutoRegistration": (props.get("AutoRegistrationStatus") or "") == "ENABLE",
            "verificationCertificate": props.get("VerificationCertificatePem"),
            "certificateMode": props.get("CertificateMode") or "DEFAULT"})
        return Provisioned(out["certificateId"], out["certificateId"], {"Arn": out["certificateArn"],
                                                                        "Id": out["certificateId"]})
    if kind == "Authorizer":
        name = props.get("AuthorizerName") or physical_name(ctx.stack_name, logical_id, 128)
        out = iot.create_authorizer(rctx, {"authorizerName": name, **_authorizer_params(props),
                                           "signingDisabled": _camel(props.get("SigningDisabled") or False),
                                           "tags": props.get("Tags") or []})
        return Provisioned(name, name, {"Arn": out["authorizerArn"]})
    raise ServiceError("InvalidRequestException", f"unkai does not create {resource_type}")


def _authorizer_params(props: dict) -> dict:
    params = {"authorizerFunctionArn": props.get("AuthorizerFunctionArn"), "status": props.get("Status") or "ACTIVE",
              "tokenKeyName": props.get("TokenKeyName"), "tokenSigningPublicKeys": props.get("TokenSigningPublicKeys"),
              "enableCachingForHttp": _camel(props.get("EnableCachingForHttp") or False)}
    return {k: v for k, v in params.items() if v is not None}


def update(iot: Any, ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
           old_props: dict, props: dict) -> Provisioned:
    if resource_type == "AWS::IoT::TopicRule" and (props.get("RuleName") or physical_id) == physical_id:
        iot.replace_topic_rule(ctx.request_context("iot"), {"ruleName": physical_id,
                                                            "topicRulePayload": _rule_payload(props)})
        return Provisioned(physical_id, physical_id,
                           {"Arn": f"arn:aws:iot:{ctx.region}:{ctx.account}:rule/{physical_id}"})
    if resource_type == "AWS::IoT::Authorizer" and (props.get("AuthorizerName") or physical_id) == physical_id \
            and _camel(props.get("SigningDisabled") or False) == _camel(old_props.get("SigningDisabled") or False):
        out = iot.update_authorizer(ctx.request_context("iot"), {"authorizerName": physical_id,
                                                                 **_authorizer_params(props)})
        return Provisioned(physical_id, physical_id, {"Arn": out["authorizerArn"]})
    delete(iot, ctx, resource_type, physical_id, old_props)
    return create(iot, ctx, resource_type, logical_id, props)


def delete(iot: Any, ctx: ResourceContext, resource_type: str, physical_id: str, props: dict) -> None:
    kind = resource_type.rsplit("::", 1)[1]
    rctx = ctx.request_context("iot")
    try:
        if kind == "Thing":
            for principal in iot.list_thing_principals(rctx, {"thingName": physical_id})["principals"]:
                iot.detach_thing_principal(rctx, {"thingName": physical_id, "principal": principal})
            iot.delete_thing(rctx, {"thingName": physical_id})
        elif kind == "ThingGroup":
            iot.delete_thing_group(rctx, {"thingGroupName": physical_id})
        elif kind == "Policy":
            for target in iot.list_targets_for_policy(rctx, {"policyName": physical_id})["targets"]:
                iot.detach_policy(rctx, {"policyName": physical_id, "target": target})
            iot.delete_policy(rctx, {"policyName": physical_id})
        elif kind == "TopicRule":
            iot.delete_topic_rule(rctx, {"ruleName": physical_id})
        elif kind == "PolicyPrincipalAttachment":
            policy, _, principal = physical_id.partition("|")
            iot.detach_policy(rctx, {"policyName": policy, "target": principal})
        elif kind == "ThingPrincipalAttachment":
            thing, _, principal = physical_id.partition("|")
            iot.detach_thing_principal(rctx, {"thingName": thing, "principal": principal})
        elif kind == "Certificate":
            iot.update_certificate(rctx, {"certificateId": physical_id, "newStatus": "INACTIVE"})
            iot.delete_certificate(rctx, {"certificateId": physical_id, "forceDelete": True})
        elif kind == "CACertificate":
            iot.update_ca_certificate(rctx, {"certificateId": physical_id, "newStatus": "INACTIVE"})
            iot.delete_ca_certificate(rctx, {"certificateId": physical_id})
        elif kind == "Authorizer":
            default = iot.authorizer(ctx.account, ctx.region, None)
            if default is not None and default["authorizerName"] == physical_id:
                iot.clear_default_authorizer(rctx, {})
            iot.update_authorizer(rctx, {"authorizerName": physical_id, "status": "INACTIVE"})
            iot.delete_authorizer(rctx, {"authorizerName": physical_id})
    except ServiceError as exc:
        if exc.code not in ("ResourceNotFoundException", "UnauthorizedException"):
            raise
