"""SES v2 (botocore ``sesv2``, rest-json over ``/v2/email/...``): the same account,
identities, templates and configuration sets as v1 (one model), in v2's shapes and with
v2's error codes (``NotFoundException``, ``BadRequestException``...)."""

from __future__ import annotations

import json
import re
from typing import Any

from unkai.protocol import ParamError, ServiceError
from unkai.services import RequestContext
from unkai.services.ses import errors, templates
from unkai.services.ses.contacts import contact_json, matches
from unkai.services.ses.identities import Identity, check_address
from unkai.services.ses.sending import Outgoing
from unkai.services.ses.service import NAME, SesBase, _bulk_status, _domain, render_mime

EVENT_TYPES = ("SEND", "REJECT", "BOUNCE", "COMPLAINT", "DELIVERY", "OPEN", "CLICK", "RENDERING_FAILURE",
               "DELIVERY_DELAY", "SUBSCRIPTION")
STATUS = {"Success": "SUCCESS", "Pending": "PENDING", "Failed": "FAILED", "NotStarted": "NOT_STARTED"}
REASONS = ("BOUNCE", "COMPLAINT")


def bad(message: str) -> ServiceError:
    return ServiceError("BadRequestException", message)


class SESv2(SesBase):
    name = "sesv2"
    v2 = True

    def param_error(self, error: ParamError, protocol: str) -> ServiceError:
        if error.kind == "missing":
            return bad(f"{error.name} is required.")
        return bad(error.message)

    # -- identities ---------------------------------------------------------------------

    def create_email_identity(self, ctx: RequestContext, params: dict) -> dict:
        name = params["EmailIdentity"]
        is_email = "@" in name
        name = check_address(name, True) if is_email else _v2_domain(name)
        if self._identity_or_none(ctx, name) is not None:
            raise errors.identity_exists(name)
        if params.get("ConfigurationSetName"):
            self._config_set(ctx, params["ConfigurationSetName"])
        if is_email:
            ident = self._verify_email(ctx, name)
        else:
            ident = self.model.add_identity(ctx.account, ctx.region, name, "Domain", self.clock.now(), dkim=True)
        changes: dict[str, Any] = {}
        if params.get("Tags"):
            changes["tags"] = params["Tags"]
        if params.get("ConfigurationSetName"):
            changes["config_set"] = params["ConfigurationSetName"]
        if changes:
            self.model.update(ident, **changes)
        ident = self._identity(ctx, name)
        return {"IdentityType": _type(ident), "VerifiedForSendingStatus": ident.status(self.clock.now()) == "Success",
                "DkimAttributes": self._dkim(ctx, ident)}

    def get_email_identity(self, ctx: RequestContext, params: dict) -> dict:
        ident = self._identity(ctx, params["EmailIdentity"])
        now = self.clock.now()
        mf = ident.mail_from
        out: dict[str, Any] = {
            "IdentityType": _type(ident), "FeedbackForwardingStatus": ident.forwarding,
            "VerifiedForSendingStatus": ident.status(now) == "Success", "DkimAttributes": self._dkim(ctx, ident),
            "MailFromAttributes": {"MailFromDomain": mf.get("MailFromDomain", ""),
                                   "MailFromDomainStatus": ("SUCCESS" if now >= mf.get("SetAt", 0) + 60 else
                                                            "PENDING") if mf.get("MailFromDomain") else "FAILED",
                                   "BehaviorOnMxFailure": _upper(mf.get("BehaviorOnMxFailure", "UseDefaultValue"))},
            "Policies": ident.policies, "Tags": ident.tags,
            "VerificationStatus": STATUS[ident.status(now)],
        }
        if ident.config_set:
            out["ConfigurationSetName"] = ident.config_set
        return out

    def list_email_identities(self, ctx: RequestContext, params: dict) -> dict:
        now = self.clock.now()
        items = [{"IdentityType": _type(i), "IdentityName": i.identity,
                  "SendingEnabled": i.status(now) == "Success", "VerificationStatus": STATUS[i.status(now)]}
                 for i in self.model.identities(ctx.account, ctx.region)]
        page, token = self._paged(items, params.get("NextToken"), params.get("PageSize"), True)
        return {"EmailIdentities": page, **({"NextToken": token} if token else {})}

    def delete_email_identity(self, ctx: RequestContext, params: dict) -> dict:
        ident = self._identity(ctx, params["EmailIdentity"])
        self.model.delete_identity(ctx.account, ctx.region, ident.identity)
        return {}

    def put_email_identity_feedback_attributes(self, ctx: RequestContext, params: dict) -> dict:
        ident = self._identity(ctx, params["EmailIdentity"])
        self.model.update(ident, forwarding=int(bool(params.get("EmailForwardingEnabled", False))))
        return {}

    def put_email_identity_dkim_attributes(self, ctx: RequestContext, params: dict) -> dict:
        ident = self._identity(ctx, params["EmailIdentity"])
        self.model.update(ident, dkim_enabled=int(bool(params.get("SigningEnabled", False))))
        return {}

    def put_email_identity_mail_from_attributes(self, ctx: RequestContext, params: dict) -> dict:
        ident = self._identity(ctx, params["EmailIdentity"])
        domain = params.get("MailFromDomain")
        if domain:
            parent = ident.identity.rpartition("@")[2].lower()
            if not domain.lower().endswith("." + parent):
                raise bad(f"Provided MAIL-FROM domain '{domain}' is not subdomain of the domain of the identity "
                          f"'{ident.identity}'.")
            behavior = {"USE_DEFAULT_VALUE": "UseDefaultValue", "REJECT_MESSAGE": "RejectMessage"}.get(
                params.get("BehaviorOnMxFailure") or "USE_DEFAULT_VALUE", "UseDefaultValue")
            self.model.update(ident, mail_from={"MailFromDomain": domain, "SetAt": self.clock.now(),
                                                "BehaviorOnMxFailure": behavior})
        else:
            self.model.update(ident, mail_from={})
        return {}

    def put_email_identity_configuration_set_attributes(self, ctx: RequestContext, params: dict) -> dict:
        ident = self._identity(ctx, params["EmailIdentity"])
        name = params.get("ConfigurationSetName")
        if name:
            self._config_set(ctx, name)
        self.model.update(ident, config_set=name)
        return {}

    def create_email_identity_policy(self, ctx: RequestContext, params: dict) -> dict:
        ident = self._identity(ctx, params["EmailIdentity"])
        if params["PolicyName"] in ident.policies:
            raise errors.already_exists(f"Policy {params['PolicyName']} already exists.")
        _policy(params["Policy"])
        self.model.update(ident, policies=dict(ident.policies, **{params["PolicyName"]: params["Policy"]}))
        return {}

    def update_email_identity_policy(self, ctx: RequestContext, params: dict) -> dict:
        ident = self._identity(ctx, params["EmailIdentity"])
        if params["PolicyName"] not in ident.policies:
            raise errors.not_found(f"Policy {params['PolicyName']} does not exist.")
        _policy(params["Policy"])
        self.model.update(ident, policies=dict(ident.policies, **{params["PolicyName"]: params["Policy"]}))
        return {}

    def get_email_identity_policies(self, ctx: RequestContext, params: dict) -> dict:
        return {"Policies": self._identity(ctx, params["EmailIdentity"]).policies}

    def delete_email_identity_policy(self, ctx: RequestContext, params: dict) -> dict:
        ident = self._identity(ctx, params["EmailIdentity"])
        if params["PolicyName"] not in ident.policies:
            raise errors.not_found(f"Policy {params['PolicyName']} does not exist.")
        self.model.update(ident, policies={k: v for k, v in ident.policies.items() if k != params["PolicyName"]})
        return {}

    def _identity(self, ctx: RequestContext, name: str) -> Identity:
        ident = self._identity_or_none(ctx, name)
        if ident is None:
            raise errors.identity_missing(name)
        return ident

    def _dkim(self, ctx: RequestContext, ident: Identity) -> dict:
        domain = ident if ident.kind == "Domain" else self._identity_or_none(ctx, ident.identity.rpartition("@")[2])
        if domain is None or not domain.dkim_tokens:
            return {"SigningEnabled": False, "Status": "NOT_STARTED", "SigningAttributesOrigin": "AWS_SES"}
        return {"SigningEnabled": bool(domain.dkim_enabled), "Status": STATUS[domain.dkim_status(self.clock.now())],
                "Tokens": domain.dkim_tokens, "SigningAttributesOrigin": "AWS_SES",
                "CurrentSigningKeyLength": "RSA_2048_BIT", "NextSigningKeyLength": "RSA_2048_BIT"}

    # -- the account ----------------------------------------------------------------------

    def get_account(self, ctx: RequestContext, params: dict) -> dict:
        acct = self.model.account(ctx.account, ctx.region)
        sent = self.model.sent_since(ctx.account, ctx.region, self.clock.now() - 86400)
        out: dict[str, Any] = {
            "DedicatedIpAutoWarmupEnabled": False, "EnforcementStatus": "HEALTHY",
            "ProductionAccessEnabled": acct.production, "SendingEnabled": acct.sending,
            "SendQuota": {"Max24HourSend": acct.max24, "MaxSendRate": acct.rate, "SentLast24Hours": float(sent)},
            "SuppressionAttributes": {"SuppressedReasons": acct.suppressed_reasons},
        }
        if acct.details:
            out["Details"] = acct.details
        return out

    def put_account_details(self, ctx: RequestContext, params: dict) -> dict:
        """AWS reviews a request for production access; unkai grants it at once."""
        details = {k: params[k] for k in ("MailType", "WebsiteURL", "ContactLanguage", "UseCaseDescription",
                                          "AdditionalContactEmailAddresses") if params.get(k) is not None}
        if details.get("MailType") not in ("MARKETING", "TRANSACTIONAL"):
            raise bad("MailType must be MARKETING or TRANSACTIONAL.")
        production = params.get("ProductionAccessEnabled")
        details["ReviewDetails"] = {"Status": "GRANTED" if production else "PENDING", "CaseId": "unkai-local"}
        changes: dict[str, Any] = {"details": details}
        if production is not None:
            changes["production"] = bool(production)
        self.model.update_account(ctx.account, ctx.region, **changes)
        return {}

    def put_account_sending_attributes(self, ctx: RequestContext, params: dict) -> dict:
        self.model.update_account(ctx.account, ctx.region, sending=bool(params.get("SendingEnabled", False)))
        return {}

    def put_account_suppression_attributes(self, ctx: RequestContext, params: dict) -> dict:
        reasons = list(dict.fromkeys(params.get("SuppressedReasons") or []))
        for r in reasons:
            if r not in REASONS:
                raise bad(f"Invalid suppression reason: {r}")
        self.model.update_account(ctx.account, ctx.region, suppressed_reasons=reasons)
        return {}

    # -- the suppression list ---------------------------------------------------------------

    def put_suppressed_destination(self, ctx: RequestContext, params: dict) -> dict:
        address = check_address(params["EmailAddress"], True)
        if params["Reason"] not in REASONS:
            raise bad(f"Invalid suppression reason: {params['Reason']}")
        self.model.suppress(ctx.account, ctx.region, address, params["Reason"], self.clock.now())
        return {}

    def get_suppressed_destination(self, ctx: RequestContext, params: dict) -> dict:
        row = self.model.suppressed(ctx.account, ctx.region, params["EmailAddress"])
        if row is None:
            raise errors.not_found(f"Email address {params['EmailAddress']} does not exist on your suppression "
                                   "list.")
        return {"SuppressedDestination": _suppressed(row, full=True)}

    def delete_suppressed_destination(self, ctx: RequestContext, params: dict) -> dict:
        if not self.model.unsuppress(ctx.account, ctx.region, params["EmailAddress"]):
            raise errors.not_found(f"Email address {params['EmailAddress']} does not exist on your suppression "
                                   "list.")
        return {}

    def list_suppressed_destinations(self, ctx: RequestContext, params: dict) -> dict:
        reasons = params.get("Reasons") or list(REASONS)
        start, end = params.get("StartDate"), params.get("EndDate")
        rows = [r for r in self.model.suppressed_list(ctx.account, ctx.region) if r[1] in reasons
                and (start is None or r[2] >= start) and (end is None or r[2] <= end)]
        page, token = self._paged([_suppressed(r) for r in rows], params.get("NextToken"), params.get("PageSize"),
                                  True)
        return {"SuppressedDestinationSummaries": page, **({"NextToken": token} if token else {})}

    # -- sending ----------------------------------------------------------------------------

    def send_email(self, ctx: RequestContext, params: dict) -> dict:
        content = params["Content"]
        out = self._outgoing(ctx, params, params.get("Destination") or {})
        if sum(1 for k in ("Simple", "Raw", "Template") if content.get(k)) != 1:
            raise bad("Exactly one of Simple, Raw or Template content must be given.")
        if content.get("Simple"):
            simple = content["Simple"]
            out.subject = (simple.get("Subject") or {}).get("Data", "")
            body = simple.get("Body") or {}
            out.text = (body.get("Text") or {}).get("Data")
            out.html = (body.get("Html") or {}).get("Data")
            out.headers = _headers(simple.get("Headers"))
            out.attachments = _attachments(simple.get("Attachments"))
        elif content.get("Raw"):
            data = content["Raw"].get("Data")
            if not data:
                raise bad("Raw message data is required.")
            out.raw = data if isinstance(data, bytes) else str(data).encode()
        else:
            tpl = content["Template"]
            self._template(ctx, out, tpl)
            out.headers = _headers(tpl.get("Headers"))
            out.attachments = _attachments(tpl.get("Attachments"))
        return {"MessageId": self._send(ctx, out)}

    def send_bulk_email(self, ctx: RequestContext, params: dict) -> dict:
        entries = params["BulkEmailEntries"]
        if len(entries) > 50:
            raise errors.too_many_recipients(True)
        default = (params.get("DefaultContent") or {}).get("Template") or {}
        if not (default.get("TemplateName") or default.get("TemplateArn") or default.get("TemplateContent")):
            raise bad("DefaultContent.Template is required.")
        results = []
        for entry in entries:
            out = self._outgoing(ctx, params, entry["Destination"])
            out.tags.update({t["Name"]: t["Value"] for t in params.get("DefaultEmailTags") or []})
            out.tags.update({t["Name"]: t["Value"] for t in entry.get("ReplacementTags") or []})
            try:
                replacement = ((entry.get("ReplacementEmailContent") or {}).get("ReplacementTemplate") or {}).get(
                    "ReplacementTemplateData")
                data = dict(templates.parse_data(default.get("TemplateData") or "{}", True),
                            **templates.parse_data(replacement or "{}", True))
                self._template(ctx, out, dict(default, TemplateData=json.dumps(data)))
                out.headers = _headers(entry.get("ReplacementHeaders"))
                with self.store.transaction():
                    results.append({"Status": "SUCCESS", "MessageId": self._send(ctx, out)})
            except ServiceError as exc:
                results.append({"Status": _v2_bulk_status(exc), "Error": exc.message})
        return {"BulkEmailEntryResults": results}

    def _outgoing(self, ctx: RequestContext, params: dict, dest: dict) -> Outgoing:
        return Outgoing(
            ctx.account, ctx.region, True, source=params.get("FromEmailAddress") or "",
            to=list(dest.get("ToAddresses") or []), cc=list(dest.get("CcAddresses") or []),
            bcc=list(dest.get("BccAddresses") or []), reply_to=list(params.get("ReplyToAddresses") or []),
            tags={t["Name"]: t["Value"] for t in params.get("EmailTags") or []},
            config_set=params.get("ConfigurationSetName"), feedback_to=params.get("FeedbackForwardingEmailAddress"),
            list_management=params.get("ListManagementOptions"))

    def _template(self, ctx: RequestContext, out: Outgoing, tpl: dict) -> None:
        if tpl.get("TemplateContent"):
            c = tpl["TemplateContent"]
            out.template = "inline"
            out.template_parts = (c.get("Subject"), c.get("Text"), c.get("Html"))
        else:
            name = tpl.get("TemplateName") or (tpl.get("TemplateArn") or "").rpartition("/")[2]
            t = templates.get(self.store, ctx.account, ctx.region, name)
            if t is None:
                raise errors.template_missing(name, True)
            out.template = name
            out.template_parts = (t.subject, t.text, t.html)
        out.template_data = templates.parse_data(tpl.get("TemplateData") or "{}", True)

    # -- templates ------------------------------------------------------------------------

    def create_email_template(self, ctx: RequestContext, params: dict) -> dict:
        t = self._template_from(params["TemplateName"], params["TemplateContent"])
        if templates.get(self.store, ctx.account, ctx.region, t.name) is not None:
            raise errors.template_exists(t.name, True)
        templates.put(self.store, ctx.account, ctx.region, t)
        return {}

    def update_email_template(self, ctx: RequestContext, params: dict) -> dict:
        t = self._template_from(params["TemplateName"], params["TemplateContent"])
        old = templates.get(self.store, ctx.account, ctx.region, t.name)
        if old is None:
            raise errors.template_missing(t.name, True)
        t.created = old.created
        templates.put(self.store, ctx.account, ctx.region, t)
        return {}

    def _template_from(self, name: str, content: dict) -> templates.Template:
        if not NAME.match(name or ""):
            raise bad("Template name must be less than 64 characters and contain only letters, numbers, dashes "
                      "and underscores.")
        for part in ("Subject", "Text", "Html"):
            try:
                templates.validate(content.get(part))
            except templates.BadTemplate as exc:
                raise bad(f"Invalid template {part}: {exc}") from None
        return templates.Template(name, content.get("Subject"), content.get("Text"), content.get("Html"),
                                  self.clock.now())

    def get_email_template(self, ctx: RequestContext, params: dict) -> dict:
        t = templates.get(self.store, ctx.account, ctx.region, params["TemplateName"])
        if t is None:
            raise errors.template_missing(params["TemplateName"], True)
        content = {k: v for k, v in (("Subject", t.subject), ("Text", t.text), ("Html", t.html)) if v is not None}
        return {"TemplateName": t.name, "TemplateContent": content}

    def delete_email_template(self, ctx: RequestContext, params: dict) -> dict:
        if not templates.delete(self.store, ctx.account, ctx.region, params["TemplateName"]):
            raise errors.template_missing(params["TemplateName"], True)
        return {}

    def list_email_templates(self, ctx: RequestContext, params: dict) -> dict:
        items = [{"TemplateName": n, "CreatedTimestamp": c}
                 for n, c in templates.names(self.store, ctx.account, ctx.region)]
        page, token = self._paged(items, params.get("NextToken"), params.get("PageSize"), True)
        return {"TemplatesMetadata": page, **({"NextToken": token} if token else {})}

    def test_render_email_template(self, ctx: RequestContext, params: dict) -> dict:
        name = params["TemplateName"]
        t = templates.get(self.store, ctx.account, ctx.region, name)
        if t is None:
            raise errors.template_missing(name, True)
        return {"RenderedTemplate": render_mime(t, templates.parse_data(params["TemplateData"], True), name, True)}

    # -- configuration sets ---------------------------------------------------------------

    def create_configuration_set(self, ctx: RequestContext, params: dict) -> dict:
        name = params["ConfigurationSetName"]
        if not NAME.match(name):
            raise bad("Configuration set name must contain only letters, numbers, dashes and underscores, and be "
                      "at most 64 characters.")
        if self.model.config_set(ctx.account, ctx.region, name) is not None:
            raise errors.config_set_exists(name, True)
        spec = {k: params[k] for k in ("TrackingOptions", "DeliveryOptions", "ReputationOptions", "SendingOptions",
                                       "SuppressionOptions", "VdmOptions", "ArchivingOptions") if params.get(k)}
        spec.setdefault("SendingOptions", {"SendingEnabled": True})
        self.model.put_config_set(ctx.account, ctx.region, name, spec, self.clock.now(), tags=params.get("Tags") or [])
        return {}

    def get_configuration_set(self, ctx: RequestContext, params: dict) -> dict:
        name = params["ConfigurationSetName"]
        spec = self._config_set(ctx, name)
        return {"ConfigurationSetName": name, **spec}

    def list_configuration_sets(self, ctx: RequestContext, params: dict) -> dict:
        names = self.model.config_sets(ctx.account, ctx.region)
        page, token = self._paged(names, params.get("NextToken"), params.get("PageSize"), True)
        return {"ConfigurationSets": page, **({"NextToken": token} if token else {})}

    def delete_configuration_set(self, ctx: RequestContext, params: dict) -> dict:
        if not self.model.delete_config_set(ctx.account, ctx.region, params["ConfigurationSetName"]):
            raise errors.config_set_missing(params["ConfigurationSetName"], True)
        return {}

    def put_configuration_set_sending_options(self, ctx: RequestContext, params: dict) -> dict:
        return self._put_option(ctx, params, "SendingOptions", {"SendingEnabled": bool(params.get("SendingEnabled"))})

    def put_configuration_set_tracking_options(self, ctx: RequestContext, params: dict) -> dict:
        return self._put_option(ctx, params, "TrackingOptions", {k: params[k] for k in (
            "CustomRedirectDomain", "HttpsPolicy") if params.get(k)})

    def put_configuration_set_delivery_options(self, ctx: RequestContext, params: dict) -> dict:
        return self._put_option(ctx, params, "DeliveryOptions", {k: params[k] for k in (
            "TlsPolicy", "SendingPoolName", "MaxDeliverySeconds") if params.get(k)})

    def put_configuration_set_reputation_options(self, ctx: RequestContext, params: dict) -> dict:
        return self._put_option(ctx, params, "ReputationOptions", {
            "ReputationMetricsEnabled": bool(params.get("ReputationMetricsEnabled"))})

    def put_configuration_set_suppression_options(self, ctx: RequestContext, params: dict) -> dict:
        return self._put_option(ctx, params, "SuppressionOptions", {
            "SuppressedReasons": params.get("SuppressedReasons") or []})

    def _put_option(self, ctx: RequestContext, params: dict, key: str, value: dict) -> dict:
        name = params["ConfigurationSetName"]
        spec = self._config_set(ctx, name)
        spec[key] = value
        self.model.put_config_set(ctx.account, ctx.region, name, spec, self.clock.now())
        return {}

    def create_configuration_set_event_destination(self, ctx: RequestContext, params: dict) -> dict:
        name, dest_name = params["ConfigurationSetName"], params["EventDestinationName"]
        self._config_set(ctx, name)
        if any(d["Name"] == dest_name for d in self.model.destinations(ctx.account, ctx.region, name)):
            raise errors.destination_exists(name, dest_name, True)
        self.model.put_destination(ctx.account, ctx.region, name, dest_name, _destination(params["EventDestination"]))
        return {}

    def update_configuration_set_event_destination(self, ctx: RequestContext, params: dict) -> dict:
        name, dest_name = params["ConfigurationSetName"], params["EventDestinationName"]
        self._config_set(ctx, name)
        if not any(d["Name"] == dest_name for d in self.model.destinations(ctx.account, ctx.region, name)):
            raise errors.destination_missing(name, dest_name, True)
        self.model.put_destination(ctx.account, ctx.region, name, dest_name, _destination(params["EventDestination"]))
        return {}

    def get_configuration_set_event_destinations(self, ctx: RequestContext, params: dict) -> dict:
        name = params["ConfigurationSetName"]
        self._config_set(ctx, name)
        return {"EventDestinations": self.model.destinations(ctx.account, ctx.region, name)}

    def delete_configuration_set_event_destination(self, ctx: RequestContext, params: dict) -> dict:
        name = params["ConfigurationSetName"]
        self._config_set(ctx, name)
        if not self.model.delete_destination(ctx.account, ctx.region, name, params["EventDestinationName"]):
            raise errors.destination_missing(name, params["EventDestinationName"], True)
        return {}

    # -- list management ----------------------------------------------------------------------

    def create_contact_list(self, ctx: RequestContext, params: dict) -> dict:
        name = params["ContactListName"]
        if not NAME.match(name):
            raise bad("Contact list name must contain only letters, numbers, dashes and underscores, and be at "
                      "most 64 characters.")
        self.contacts.create_list(ctx.account, ctx.region, name, params.get("Topics") or [],
                                  params.get("Description"), params.get("Tags") or [], self.clock.now())
        return {}

    def get_contact_list(self, ctx: RequestContext, params: dict) -> dict:
        found = self.contacts.need_list(ctx.account, ctx.region, params["ContactListName"])
        out: dict[str, Any] = {"ContactListName": found.name, "Topics": found.topics,
                               "CreatedTimestamp": found.created, "LastUpdatedTimestamp": found.updated,
                               "Tags": found.tags}
        if found.description is not None:
            out["Description"] = found.description
        return out

    def update_contact_list(self, ctx: RequestContext, params: dict) -> dict:
        self.contacts.update_list(ctx.account, ctx.region, params["ContactListName"], params.get("Topics"),
                                  params.get("Description"), self.clock.now())
        return {}

    def delete_contact_list(self, ctx: RequestContext, params: dict) -> dict:
        self.contacts.delete_list(ctx.account, ctx.region, params["ContactListName"])
        return {}

    def list_contact_lists(self, ctx: RequestContext, params: dict) -> dict:
        items = [{"ContactListName": c.name, "LastUpdatedTimestamp": c.updated}
                 for c in self.contacts.lists(ctx.account, ctx.region)]
        page, token = self._paged(items, params.get("NextToken"), params.get("PageSize"), True)
        return {"ContactLists": page, **({"NextToken": token} if token else {})}

    def create_contact(self, ctx: RequestContext, params: dict) -> dict:
        contact_list = self.contacts.need_list(ctx.account, ctx.region, params["ContactListName"])
        email = check_address(params["EmailAddress"], True)
        self.contacts.put(ctx.account, ctx.region, contact_list, email, params.get("TopicPreferences") or [],
                          params.get("UnsubscribeAll"), params.get("AttributesData"), self.clock.now(), create=True)
        return {}

    def get_contact(self, ctx: RequestContext, params: dict) -> dict:
        contact_list = self.contacts.need_list(ctx.account, ctx.region, params["ContactListName"])
        found = self.contacts.need(ctx.account, ctx.region, contact_list.name, params["EmailAddress"])
        return contact_json(found, contact_list, True)

    def update_contact(self, ctx: RequestContext, params: dict) -> dict:
        contact_list = self.contacts.need_list(ctx.account, ctx.region, params["ContactListName"])
        self.contacts.put(ctx.account, ctx.region, contact_list, params["EmailAddress"],
                          params.get("TopicPreferences"), params.get("UnsubscribeAll"), params.get("AttributesData"),
                          self.clock.now(), create=False)
        return {}

    def delete_contact(self, ctx: RequestContext, params: dict) -> dict:
        self.contacts.need_list(ctx.account, ctx.region, params["ContactListName"])
        self.contacts.delete(ctx.account, ctx.region, params["ContactListName"], params["EmailAddress"])
        return {}

    def list_contacts(self, ctx: RequestContext, params: dict) -> dict:
        contact_list = self.contacts.need_list(ctx.account, ctx.region, params["ContactListName"])
        flt = params.get("Filter") or {}
        items = [contact_json(c, contact_list, False)
                 for c in self.contacts.contacts(ctx.account, ctx.region, contact_list.name)
                 if matches(c, contact_list, flt)]
        page, token = self._paged(items, params.get("NextToken"), params.get("PageSize"), True)
        return {"Contacts": page, **({"NextToken": token} if token else {})}

    def _config_set(self, ctx: RequestContext, name: str) -> dict:
        spec = self.model.config_set(ctx.account, ctx.region, name)
        if spec is None:
            raise errors.config_set_missing(name, True)
        spec.pop("Tags", None)
        return spec


def _type(ident: Identity) -> str:
    return "EMAIL_ADDRESS" if ident.kind == "EmailAddress" else "DOMAIN"


def _upper(value: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", value).upper()


def _v2_domain(value: str) -> str:
    try:
        return _domain(value)
    except ServiceError as exc:
        raise bad(exc.message) from None


def _policy(text: str) -> None:
    try:
        json.loads(text)
    except ValueError:
        raise bad("Policy is not valid JSON.") from None


def _destination(dest: dict) -> dict:
    types = list(dest.get("MatchingEventTypes") or [])
    for t in types:
        if t not in EVENT_TYPES:
            raise bad(f"Invalid event type: {t}")
    spec: dict[str, Any] = {"Enabled": bool(dest.get("Enabled", False)), "MatchingEventTypes": types}
    for key in ("KinesisFirehoseDestination", "CloudWatchDestination", "SnsDestination", "EventBridgeDestination",
                "PinpointDestination"):
        if dest.get(key):
            spec[key] = dest[key]
    return spec


_HEADER_NAME = re.compile(r"[!-9;-~]{1,126}")  # MessageHeaderName: printable ASCII but the colon
_HEADER_VALUE = re.compile(r"[ -~]{1,995}")  # MessageHeaderValue: printable ASCII
MAX_HEADERS = 15  # MessageHeaderList


def _headers(items: list[dict] | None) -> list[tuple[str, str]]:
    """A message's own headers, refused at the call as SES refuses them (the model's
    MessageHeader constraints): a send never answers for a message that cannot be built."""
    items = items or []
    if len(items) > MAX_HEADERS:
        raise bad(f"A message can have at most {MAX_HEADERS} custom headers.")
    headers = []
    for h in items:
        name, value = h["Name"], h["Value"]
        if not _HEADER_NAME.fullmatch(name):
            raise bad(f"Invalid header name '{name}': it must be 1 to 126 printable ASCII characters, "
                      "none of them a colon.")
        if not _HEADER_VALUE.fullmatch(value):
            raise bad(f"Invalid value for header '{name}': it must be 1 to 995 printable ASCII characters.")
        headers.append((name, value))
    return headers


def _attachments(items: list[dict] | None) -> list[tuple[str, str, bytes]]:
    out = []
    for a in items or []:
        raw = a.get("RawContent") or b""
        out.append((a.get("FileName") or "attachment", a.get("ContentType") or "application/octet-stream",
                    raw if isinstance(raw, bytes) else str(raw).encode()))
    return out


def _suppressed(row: tuple, full: bool = False) -> dict:
    email, reason, at, message_id, feedback_id = row
    out: dict[str, Any] = {"EmailAddress": email, "Reason": reason, "LastUpdateTime": at}
    if full:
        out["Attributes"] = {k: v for k, v in (("MessageId", message_id), ("FeedbackId", feedback_id)) if v}
    return out


def _v2_bulk_status(exc: ServiceError) -> str:
    v1 = _bulk_status(exc)
    return {"Success": "SUCCESS", "MessageRejected": "MESSAGE_REJECTED",
            "MailFromDomainNotVerified": "MAIL_FROM_DOMAIN_NOT_VERIFIED",
            "ConfigurationSetDoesNotExist": "CONFIGURATION_SET_NOT_FOUND",
            "TemplateDoesNotExist": "TEMPLATE_NOT_FOUND", "AccountSendingPaused": "ACCOUNT_SENDING_PAUSED",
            "AccountDailyQuotaExceeded": "ACCOUNT_DAILY_QUOTA_EXCEEDED", "AccountThrottled": "ACCOUNT_THROTTLED",
            "InvalidParameterValue": "INVALID_PARAMETER"}.get(v1, "FAILED")
