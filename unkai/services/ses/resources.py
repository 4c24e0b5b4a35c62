"""``AWS::SES::*`` for templates, created through SES's own operations (v2's where the
resource is v2's), so a template's identity is the same row an API call makes.

- ``EmailIdentity``: Ref the identity; GetAtt ``DkimDNSTokenName1..3`` /
  ``DkimDNSTokenValue1..3``. An address gets AWS's verification mail, as on AWS.
  Changing ``EmailIdentity`` replaces it; the rest updates in place.
- ``ConfigurationSet``: Ref the name (CloudFormation's generated one when absent).
- ``ConfigurationSetEventDestination``: Ref an id; its ``MatchingEventTypes`` use v1's
  names (``send``, ``bounce``...), as CloudFormation documents.
- ``Template``: Ref the template name; GetAtt ``Id``.
- ``ReceiptRuleSet``: Ref the name. ``ReceiptRule``: Ref the rule's name; a rule's
  changes update it in place (UpdateReceiptRule), a new rule set replaces it.
- ``ContactList``: Ref the list's name; ``Topics`` and ``Description`` update in place
  (UpdateContactList), a new ``ContactListName`` replaces it.
"""

from __future__ import annotations

import uuid
from typing import Any

from unkai.services import Provisioned, ResourceContext
from unkai.template.names import physical_name

V1_EVENT_TYPES = {"send": "SEND", "reject": "REJECT", "bounce": "BOUNCE", "complaint": "COMPLAINT",
                  "delivery": "DELIVERY", "open": "OPEN", "click": "CLICK", "renderingFailure": "RENDERING_FAILURE",
                  "deliveryDelay": "DELIVERY_DELAY", "subscription": "SUBSCRIPTION"}


def _bool(value: Any, default: bool = True) -> bool:
    if value is None:
        return default
    return str(value).lower() == "true"


class ResourceOps:
    def create_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str,
                        props: dict[str, Any]) -> Provisioned:
        v2 = self.cloud.services["sesv2"]
        rctx = ctx.request_context("sesv2")
        if resource_type == "AWS::SES::EmailIdentity":
            name = props["EmailIdentity"]
            if v2._identity_or_none(rctx, name) is None:
                params: dict[str, Any] = {"EmailIdentity": name}
                if (props.get("ConfigurationSetAttributes") or {}).get("ConfigurationSetName"):
                    params["ConfigurationSetName"] = props["ConfigurationSetAttributes"]["ConfigurationSetName"]
                v2.create_email_identity(rctx, params)
            self._identity_settings(rctx, name, props)
            return self._identity_provisioned(rctx, name)
        if resource_type == "AWS::SES::ConfigurationSet":
            name = props.get("Name") or physical_name(ctx.stack_name, logical_id, 64).replace(".", "-")
            params = {"ConfigurationSetName": name}
            for key in ("DeliveryOptions", "ReputationOptions", "SendingOptions", "SuppressionOptions",
                        "TrackingOptions", "VdmOptions"):
                if props.get(key):
                    params[key] = _typed(props[key])
            v2.create_configuration_set(rctx, params)
            return Provisioned(name, name)
        if resource_type == "AWS::SES::ConfigurationSetEventDestination":
            dest = props["EventDestination"]
            name = dest.get("Name") or physical_name(ctx.stack_name, logical_id, 64).replace(".", "-")
            v2.create_configuration_set_event_destination(rctx, {
                "ConfigurationSetName": props["ConfigurationSetName"], "EventDestinationName": name,
                "EventDestination": _destination(dest)})
            physical = f"{props['ConfigurationSetName']}|{name}"
            return Provisioned(physical, str(uuid.uuid5(uuid.NAMESPACE_URL, physical)))
        if resource_type == "AWS::SES::Template":
            t = props.get("Template") or {}
            name = t.get("TemplateName") or physical_name(ctx.stack_name, logical_id, 64).replace(".", "-")
            content = {k: t[f"{k}Part"] for k in ("Subject", "Text", "Html") if t.get(f"{k}Part") is not None}
            v2.create_email_template(rctx, {"TemplateName": name, "TemplateContent": content})
            return Provisioned(name, name, {"Id": name})
        if resource_type == "AWS::SES::ReceiptRuleSet":
            v1 = ctx.request_context("ses")
            name = props.get("RuleSetName") or physical_name(ctx.stack_name, logical_id, 64).replace(".", "-")
            self.create_receipt_rule_set(v1, {"RuleSetName": name})
            return Provisioned(name, name)
        if resource_type == "AWS::SES::ReceiptRule":
            v1 = ctx.request_context("ses")
            rule = _typed(dict(props["Rule"]))
            rule.setdefault("Name", physical_name(ctx.stack_name, logical_id, 64).replace(".", "-"))
            params = {"RuleSetName": props["RuleSetName"], "Rule": rule}
            if props.get("After"):
                params["After"] = props["After"]
            self.create_receipt_rule(v1, params)
            return Provisioned(f"{props['RuleSetName']}|{rule['Name']}", rule["Name"])
        if resource_type == "AWS::SES::ContactList":
            name = props.get("ContactListName") or physical_name(ctx.stack_name, logical_id, 64).replace(".", "-")
            v2.create_contact_list(rctx, {"ContactListName": name, "Topics": props.get("Topics") or [],
                                          "Description": props.get("Description"), "Tags": props.get("Tags") or []})
            return Provisioned(name, name)
        raise NotImplementedError(resource_type)

    def update_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
                        old_props: dict[str, Any], props: dict[str, Any]) -> Provisioned:
        v2 = self.cloud.services["sesv2"]
        rctx = ctx.request_context("sesv2")
        if resource_type == "AWS::SES::EmailIdentity" and props["EmailIdentity"] == old_props.get("EmailIdentity"):
            name = props["EmailIdentity"]
            self._identity_settings(rctx, name, props)
            cs = (props.get("ConfigurationSetAttributes") or {}).get("ConfigurationSetName")
            v2.put_email_identity_configuration_set_attributes(rctx, {"EmailIdentity": name,
                                                                      "ConfigurationSetName": cs})
            return self._identity_provisioned(rctx, name)
        if resource_type == "AWS::SES::Template" and (old_props.get("Template") or {}).get("TemplateName") == \
                (props.get("Template") or {}).get("TemplateName") and physical_id:
            t = props.get("Template") or {}
            content = {k: t[f"{k}Part"] for k in ("Subject", "Text", "Html") if t.get(f"{k}Part") is not None}
            v2.update_email_template(rctx, {"TemplateName": physical_id, "TemplateContent": content})
            return Provisioned(physical_id, physical_id, {"Id": physical_id})
        if resource_type == "AWS::SES::ReceiptRule" and props["RuleSetName"] == old_props.get("RuleSetName") and \
                (props["Rule"].get("Name") or "") == (old_props["Rule"].get("Name") or ""):
            rule_set, _, name = physical_id.partition("|")
            self.update_receipt_rule(ctx.request_context("ses"), {"RuleSetName": rule_set,
                                                                  "Rule": dict(_typed(props["Rule"]), Name=name)})
            return Provisioned(physical_id, name)
        if resource_type == "AWS::SES::ContactList" and props.get("ContactListName") == \
                old_props.get("ContactListName") and physical_id:
            v2.update_contact_list(rctx, {"ContactListName": physical_id, "Topics": props.get("Topics") or [],
                                          "Description": props.get("Description")})
            return Provisioned(physical_id, physical_id)
        self.delete_resource(ctx, resource_type, physical_id, old_props)
        return self.create_resource(ctx, resource_type, logical_id, props)

    def delete_resource(self, ctx: ResourceContext, resource_type: str, physical_id: str,
                        props: dict[str, Any]) -> None:
        from unkai.protocol import ServiceError

        v2 = self.cloud.services["sesv2"]
        rctx = ctx.request_context("sesv2")
        try:
            if resource_type == "AWS::SES::EmailIdentity":
                v2.delete_email_identity(rctx, {"EmailIdentity": physical_id})
            elif resource_type == "AWS::SES::ConfigurationSet":
                v2.delete_configuration_set(rctx, {"ConfigurationSetName": physical_id})
            elif resource_type == "AWS::SES::ConfigurationSetEventDestination":
                cs, _, name = physical_id.partition("|")
                v2.delete_configuration_set_event_destination(rctx, {"ConfigurationSetName": cs,
                                                                     "EventDestinationName": name})
            elif resource_type == "AWS::SES::Template":
                v2.delete_email_template(rctx, {"TemplateName": physical_id})
            elif resource_type == "AWS::SES::ReceiptRuleSet":
                v1 = ctx.request_context("ses")
                active = self.describe_active_receipt_rule_set(v1, {}).get("Metadata", {}).get("Name")
                if active == physical_id:  # AWS refuses to delete the active set; a stack's teardown lets go
                    self.set_active_receipt_rule_set(v1, {})
                self.delete_receipt_rule_set(v1, {"RuleSetName": physical_id})
            elif resource_type == "AWS::SES::ContactList":
                v2.delete_contact_list(rctx, {"ContactListName": physical_id})
            elif resource_type == "AWS::SES::ReceiptRule":
                rule_set, _, name = physical_id.partition("|")
                self.delete_receipt_rule(ctx.request_context("ses"), {"RuleSetName": rule_set, "RuleName": name})
        except ServiceError as exc:
            if exc.code not in ("NotFoundException", "RuleSetDoesNotExistException"):
                raise

    def _identity_settings(self, rctx: Any, name: str, props: dict[str, Any]) -> None:
        v2 = self.cloud.services["sesv2"]
        if props.get("FeedbackAttributes"):
            v2.put_email_identity_feedback_attributes(rctx, {
                "EmailIdentity": name,
                "EmailForwardingEnabled": _bool(props["FeedbackAttributes"].get("EmailForwardingEnabled"))})
        if props.get("DkimAttributes"):
            v2.put_email_identity_dkim_attributes(rctx, {
                "EmailIdentity": name, "SigningEnabled": _bool(props["DkimAttributes"].get("SigningEnabled"))})
        mf = props.get("MailFromAttributes") or {}
        if mf.get("MailFromDomain"):
            v2.put_email_identity_mail_from_attributes(rctx, {
                "EmailIdentity": name, "MailFromDomain": mf["MailFromDomain"],
                "BehaviorOnMxFailure": mf.get("BehaviorOnMxFailure") or "USE_DEFAULT_VALUE"})

    def _identity_provisioned(self, rctx: Any, name: str) -> Provisioned:
        ident = self.cloud.services["sesv2"]._identity(rctx, name)
        domain = name.rpartition("@")[2]
        attrs: dict[str, Any] = {}
        for i, token in enumerate(ident.dkim_tokens[:3], 1):
            attrs[f"DkimDNSTokenName{i}"] = f"{token}._domainkey.{domain}"
            attrs[f"DkimDNSTokenValue{i}"] = f"{token}.dkim.amazonses.com"
        return Provisioned(name, name, attrs)


def _typed(value: Any) -> Any:
    """Template values arrive as written ("true"); the operations want booleans and numbers."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _destination(dest: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"Enabled": _bool(dest.get("Enabled"), False),
                           "MatchingEventTypes": [V1_EVENT_TYPES.get(t, t.upper()) for t in
                                                  dest.get("MatchingEventTypes") or []]}
    if dest.get("SnsDestination"):
        out["SnsDestination"] = {"TopicArn": dest["SnsDestination"].get("TopicARN")}
    if dest.get("EventBridgeDestination"):
        out["EventBridgeDestination"] = {"EventBusArn": dest["EventBridgeDestination"].get("EventBusArn")}
    if dest.get("CloudWatchDestination"):
        out["CloudWatchDestination"] = dest["CloudWatchDestination"]
    if dest.get("KinesisFirehoseDestination"):
        fh = dest["KinesisFirehoseDestination"]
        out["KinesisFirehoseDestination"] = {"IamRoleArn": fh.get("IAMRoleARN"),
                                             "DeliveryStreamArn": fh.get("DeliveryStreamARN")}
    return out
