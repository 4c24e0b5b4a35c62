"""SES v1 (botocore ``ses``, the query protocol): identities and their verification,
sending, templates, configuration sets, quotas and statistics. The operations only read
parameters and shape replies; the model is ``identities.py``, every send goes through
``sending.Sender`` and what follows a send through ``feedback.Feedback``."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from unkai.protocol import ParamError, ServiceError
from unkai.services import RequestContext, Service
from unkai.services.ses import errors, pages, templates, tracking
from unkai.services.ses.feedback import Feedback
from unkai.services.ses.identities import (MIGRATIONS, Identity, Model, check_address)
from unkai.services.ses.receiving import ReceivingOps
from unkai.services.ses.resources import ResourceOps
from unkai.services.ses.contacts import Contacts
from unkai.services.ses.sending import SEND_JOB, Outgoing, Sender

log = logging.getLogger(__name__)

REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)", "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)", "ap-northeast-1": "Asia Pacific (Tokyo)", "ap-northeast-2":
    "Asia Pacific (Seoul)", "ap-northeast-3": "Asia Pacific (Osaka)", "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)", "ap-south-1": "Asia Pacific (Mumbai)", "eu-west-1":
    "Europe (Ireland)", "eu-west-2": "Europe (London)", "eu-west-3": "Europe (Paris)", "eu-central-1":
    "Europe (Frankfurt)", "eu-north-1": "Europe (Stockholm)", "ca-central-1": "Canada (Central)", "sa-east-1":
    "South America (São Paulo)",
}
V1_EVENT_TYPES = {"send": "SEND", "reject": "REJECT", "bounce": "BOUNCE", "complaint": "COMPLAINT",
                  "delivery": "DELIVERY", "open": "OPEN", "click": "CLICK", "renderingFailure": "RENDERING_FAILURE",
                  "deliveryDelay": "DELIVERY_DELAY", "subscription": "SUBSCRIPTION"}
NOTIFICATION_TYPES = ("Bounce", "Complaint", "Delivery")
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class SesBase(Service):
    """What v1 and v2 share: the one model, the sender and the verification mail."""

    v2 = False

    def check_unimplemented(self, ctx: RequestContext, operation: str, params: dict) -> None:
        """An operation unkai does not serve still answers ConfigurationSetDoesNotExist (v1) or NotFoundException (v2) for a missing configuration set first, as AWS does."""
        if isinstance(params.get("ConfigurationSetName"), str):
            self._config_set(ctx, params["ConfigurationSetName"])

    @property
    def model(self) -> Model:
        return self.cloud.services["ses"]._model

    @property
    def contacts(self) -> Contacts:
        return self.cloud.services["ses"]._contacts

    @property
    def sender(self) -> Sender:
        return self.cloud.services["ses"]._sender

    def _send(self, ctx: RequestContext, out: Outgoing) -> str:
        out.source_ip = ctx.source_ip or "127.0.0.1"
        out.caller = ctx.access_key or "root"
        return self.sender.send(out)

    def _identity_or_none(self, ctx: RequestContext, name: str) -> Identity | None:
        return self.model.identity(ctx.account, ctx.region, name)

    def _verify_email(self, ctx: RequestContext, address: str) -> Identity:
        ident = self.model.add_identity(ctx.account, ctx.region, address, "EmailAddress", self.clock.now())
        if ident.verified_at is None:
            if ident.status(self.clock.now()) == "Failed":  # a new request restarts the 24 hours
                self.model.update(ident, created=self.clock.now())
            self._verification_mail(ctx, address, ident.token)
        return ident

    def _verification_mail(self, ctx: RequestContext, address: str, token: str) -> None:
        region = REGION_NAMES.get(ctx.region, ctx.region)
        link = f"{self.config.endpoint}/_unkai/ses/verify?Context={token}&Namespace=SES&Region={ctx.region}"
        text = (
            "Dear Amazon Web Services Customer,\n\n"
            "We have received a request to authorize this email address for use with Amazon SES and Amazon "
            f"Pinpoint in region {region}. If you requested this verification, please go to the following URL to "
            "confirm that you are authorized to use this email address:\n\n"
            f"{link}\n\n"
            "Your request will not be processed unless you confirm the address using this URL. This link expires "
            "24 hours after your original verification request.\n\n"
            "If you did NOT request to verify this email address, do not click on the link. Please note that many "
            "times, the situation isn't a phishing attempt, but either a misunderstanding of how to use our "
            "service, or someone imagining that they are being helpful. If you are concerned or have any "
            "questions about the security of your email address, please contact Amazon Web Services.\n\n"
            "Sincerely,\n\nThe Amazon Web Services Team\n")
        self.cloud.mailbox.deliver(
            "Amazon Web Services <no-reply-aws@amazon.com>", [address],
            f"Amazon Web Services \u2013 Email Address Verification Request in region {region}", text,
            origin="ses")

    def _paged(self, items: list[Any], token: str | None, size: int | None, v2: bool = False) -> tuple[list, str | None]:
        try:
            start = int(token) if token else 0
        except ValueError:
            if v2:
                raise ServiceError("BadRequestException", "Invalid NextToken.") from None
            raise errors.invalid("Invalid NextToken.") from None
        size = size or 1000
        page = items[start:start + size]
        return page, (str(start + size) if start + size < len(items) else None)

# The mail a reputation rate is computed over: AWS uses "a representative volume" it does not
# define; unkai takes the two weeks GetSendStatistics reports.
REPUTATION_WINDOW = 14 * 86400


class SES(ResourceOps, ReceivingOps, SesBase):
    name = "ses"
    serves_routes = True  # verification and tracking pages
    start_env = ("UNKAI_SMTP_PORT",)
    migrations = MIGRATIONS
    resource_types = ("AWS::SES::EmailIdentity", "AWS::SES::ConfigurationSet",
                      "AWS::SES::ConfigurationSetEventDestination", "AWS::SES::Template",
                      "AWS::SES::ReceiptRuleSet", "AWS::SES::ReceiptRule", "AWS::SES::ContactList")

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self._model = Model(self.store)
        self._contacts = Contacts(self.store)
        self._sender = Sender(cloud, self._model, self._contacts)
        self.feedback = Feedback(cloud, self._model)

    async def start(self) -> None:
        self.cloud.jobs.register("ses.feedback", self.feedback.run)
        # a send no callback delivered; dropped, logged, after 185 failed attempts (as PutEvents' events)
        self.cloud.jobs.register_soon(SEND_JOB, self._sender.run_job, max_attempts=185)
        pages.register(self)
        tracking.register(self)
        await self.start_receiving()

    async def stop(self) -> None:
        self.cloud.jobs.forget_soon(SEND_JOB)  # sends accepted but not delivered yet are the runner's
        await self.stop_receiving()

    async def resetting(self) -> None:
        self.cloud.jobs.forget_soon(SEND_JOB)
        self._model.forget()  # the identity and account rows it kept are from before the reset

    def metric_samples(self, when: float) -> list[tuple[str, str, str, str, list[dict], float, str]]:
        """AWS/SES Reputation.BounceRate and Reputation.ComplaintRate (fractions: 0.05 is 5%)
        of each account that sent mail, over the last REPUTATION_WINDOW of delivery attempts."""
        out: list[tuple[str, str, str, str, list[dict], float, str]] = []
        for account, region, sent, bounced, complained in self._model.reputation(when - REPUTATION_WINDOW, when):
            if sent:
                out.append((account, region, "AWS/SES", "Reputation.BounceRate", [], bounced / sent, "None"))
                out.append((account, region, "AWS/SES", "Reputation.ComplaintRate", [], complained / sent, "None"))
        return out

    def param_error(self, error: ParamError, protocol: str) -> ServiceError:
        if error.kind == "missing":
            return ServiceError("ValidationError", f"1 validation error detected: Value null at "
                                f"'{error.name[:1].lower() + error.name[1:]}' failed to satisfy constraint: "
                                "Member must not be null")
        return errors.invalid(error.message)

    # -- identities -----------------------------------------------------------------------

    def verify_email_identity(self, ctx: RequestContext, params: dict) -> dict:
        self._verify_email(ctx, check_address(params["EmailAddress"]))
        return {}

    def verify_email_address(self, ctx: RequestContext, params: dict) -> dict:
        self._verify_email(ctx, check_address(params["EmailAddress"]))
        return {}

    def verify_domain_identity(self, ctx: RequestContext, params: dict) -> dict:
        domain = _domain(params["Domain"])
        ident = self.model.add_identity(ctx.account, ctx.region, domain, "Domain", self.clock.now())
        return {"VerificationToken": ident.token}

    def verify_domain_dkim(self, ctx: RequestContext, params: dict) -> dict:
        domain = _domain(params["Domain"])
        ident = self.model.add_identity(ctx.account, ctx.region, domain, "Domain", self.clock.now(), dkim=True)
        return {"DkimTokens": ident.dkim_tokens}

    def list_identities(self, ctx: RequestContext, params: dict) -> dict:
        kind = params.get("IdentityType")
        if kind not in (None, "EmailAddress", "Domain"):
            raise errors.invalid(f"Invalid identity type: {kind}")
        names = [i.identity for i in self.model.identities(ctx.account, ctx.region, kind)]
        page, token = self._paged(names, params.get("NextToken"), params.get("MaxItems"))
        return {"Identities": page, **({"NextToken": token} if token else {})}

    def list_verified_email_addresses(self, ctx: RequestContext, params: dict) -> dict:
        now = self.clock.now()
        return {"VerifiedEmailAddresses": [i.identity for i in self.model.identities(ctx.account, ctx.region,
                                                                                     "EmailAddress")
                                           if i.status(now) == "Success"]}

    def delete_identity(self, ctx: RequestContext, params: dict) -> dict:
        self.model.delete_identity(ctx.account, ctx.region, params["Identity"])
        return {}

    def delete_verified_email_address(self, ctx: RequestContext, params: dict) -> dict:
        self.model.delete_identity(ctx.account, ctx.region, params["EmailAddress"])
        return {}

    def get_identity_verification_attributes(self, ctx: RequestContext, params: dict) -> dict:
        out, now = {}, self.clock.now()
        for name in params["Identities"]:
            ident = self._identity_or_none(ctx, name)
            if ident is None:
                continue
            entry = {"VerificationStatus": ident.status(now)}
            if ident.kind == "Domain":
                entry["VerificationToken"] = ident.token
            out[name] = entry
        return {"VerificationAttributes": out}

    def get_identity_dkim_attributes(self, ctx: RequestContext, params: dict) -> dict:
        out, now = {}, self.clock.now()
        for name in params["Identities"]:
            ident = self._identity_or_none(ctx, name)
            if ident is None:
                continue
            domain = ident if ident.kind == "Domain" else self._identity_or_none(ctx, name.rpartition("@")[2])
            tokens = domain.dkim_tokens if domain else []
            entry: dict[str, Any] = {"DkimEnabled": bool(domain and domain.dkim_enabled and tokens),
                                     "DkimVerificationStatus": domain.dkim_status(now) if domain else "NotStarted"}
            if ident.kind == "Domain" and tokens:
                entry["DkimTokens"] = tokens
            out[name] = entry
        return {"DkimAttributes": out}

    def set_identity_dkim_enabled(self, ctx: RequestContext, params: dict) -> dict:
        ident = self._known(ctx, params["Identity"])
        self.model.update(ident, dkim_enabled=int(bool(params["DkimEnabled"])))
        return {}

    def get_identity_notification_attributes(self, ctx: RequestContext, params: dict) -> dict:
        out = {}
        for name in params["Identities"]:
            ident = self._identity_or_none(ctx, name)
            if ident is None:
                continue
            entry: dict[str, Any] = {"ForwardingEnabled": ident.forwarding}
            for kind in NOTIFICATION_TYPES:
                entry[f"{kind}Topic"] = ident.notify.get(kind) or ""
                entry[f"HeadersIn{kind}NotificationsEnabled"] = bool(ident.headers_in.get(kind))
            for kind in NOTIFICATION_TYPES:
                if not entry[f"{kind}Topic"]:
                    del entry[f"{kind}Topic"]
            out[name] = entry
        return {"NotificationAttributes": out}

    def set_identity_notification_topic(self, ctx: RequestContext, params: dict) -> dict:
        ident = self._known(ctx, params["Identity"])
        kind = params["NotificationType"]
        if kind not in NOTIFICATION_TYPES:
            raise errors.invalid(f"Invalid notification type: {kind}")
        topic = params.get("SnsTopic")
        notify = dict(ident.notify)
        if topic:
            if not re.match(r"^arn:aws[\w-]*:sns:[\w-]+:\d{12}:[\w.-]+$", topic):
                raise errors.invalid_topic(topic)
            notify[kind] = topic
        else:
            if kind != "Delivery" and not ident.forwarding:
                raise errors.invalid("Feedback notification topic is not set for the identity, so email "
                                     "feedback forwarding cannot be disabled.")
            notify.pop(kind, None)
        self.model.update(ident, notify=notify)
        return {}

    def set_identity_feedback_forwarding_enabled(self, ctx: RequestContext, params: dict) -> dict:
        ident = self._known(ctx, params["Identity"])
        enabled = bool(params["ForwardingEnabled"])
        if not enabled and not (ident.notify.get("Bounce") and ident.notify.get("Complaint")):
            raise errors.invalid("Feedback notification topic not set for identity, so email feedback "
                                 "forwarding cannot be disabled.")
        self.model.update(ident, forwarding=int(enabled))
        return {}

    def set_identity_headers_in_notifications_enabled(self, ctx: RequestContext, params: dict) -> dict:
        ident = self._known(ctx, params["Identity"])
        kind = params["NotificationType"]
        if kind not in NOTIFICATION_TYPES:
            raise errors.invalid(f"Invalid notification type: {kind}")
        self.model.update(ident, headers_in=dict(ident.headers_in, **{kind: bool(params["Enabled"])}))
        return {}

    def set_identity_mail_from_domain(self, ctx: RequestContext, params: dict) -> dict:
        ident = self._known(ctx, params["Identity"])
        domain = params.get("MailFromDomain")
        if domain:
            parent = ident.identity.rpartition("@")[2].lower()
            if not domain.lower().endswith("." + parent):
                raise errors.invalid(f"Provided MAIL-FROM domain '{domain}' is not subdomain of the domain of "
                                     f"the identity '{ident.identity}'.")
            self.model.update(ident, mail_from={"MailFromDomain": domain, "SetAt": self.clock.now(),
                                                "BehaviorOnMxFailure": params.get("BehaviorOnMXFailure")
                                                or "UseDefaultValue"})
        else:
            self.model.update(ident, mail_from={})
        return {}

    def get_identity_mail_from_domain_attributes(self, ctx: RequestContext, params: dict) -> dict:
        out, now = {}, self.clock.now()
        for name in params["Identities"]:
            ident = self._identity_or_none(ctx, name)
            if ident is None:
                continue
            mf = ident.mail_from
            entry: dict[str, Any] = {"BehaviorOnMXFailure": mf.get("BehaviorOnMxFailure", "UseDefaultValue")}
            if mf.get("MailFromDomain"):
                entry["MailFromDomain"] = mf["MailFromDomain"]
                entry["MailFromDomainStatus"] = "Success" if now >= mf["SetAt"] + 60 else "Pending"
            out[name] = entry
        return {"MailFromDomainAttributes": out}

    def put_identity_policy(self, ctx: RequestContext, params: dict) -> dict:
        ident = self._known(ctx, params["Identity"])
        try:
            json.loads(params["Policy"])
        except ValueError:
            raise ServiceError("InvalidPolicyException", "Policy is not valid JSON.") from None
        self.model.update(ident, policies=dict(ident.policies, **{params["PolicyName"]: params["Policy"]}))
        return {}

    def get_identity_policies(self, ctx: RequestContext, params: dict) -> dict:
        ident = self._known(ctx, params["Identity"])
        return {"Policies": {n: ident.policies[n] for n in params["PolicyNames"] if n in ident.policies}}

    def list_identity_policies(self, ctx: RequestContext, params: dict) -> dict:
        return {"PolicyNames": sorted(self._known(ctx, params["Identity"]).policies)}

    def delete_identity_policy(self, ctx: RequestContext, params: dict) -> dict:
        ident = self._known(ctx, params["Identity"])
        self.model.update(ident, policies={k: v for k, v in ident.policies.items() if k != params["PolicyName"]})
        return {}

    def _known(self, ctx: RequestContext, name: str) -> Identity:
        ident = self._identity_or_none(ctx, name)
        if ident is None:
            raise errors.invalid(f"Identity <{name}> does not exist.")
        return ident

    # -- the account --------------------------------------------------------------------

    def get_send_quota(self, ctx: RequestContext, params: dict) -> dict:
        acct = self.model.account(ctx.account, ctx.region)
        return {"Max24HourSend": acct.max24, "MaxSendRate": acct.rate,
                "SentLast24Hours": float(self.model.sent_since(ctx.account, ctx.region, self.clock.now() - 86400))}

    def get_send_statistics(self, ctx: RequestContext, params: dict) -> dict:
        points = self.model.statistics(ctx.account, ctx.region, self.clock.now() - 14 * 86400)
        return {"SendDataPoints": points}

    def get_account_sending_enabled(self, ctx: RequestContext, params: dict) -> dict:
        return {"Enabled": self.model.account(ctx.account, ctx.region).sending}

    def update_account_sending_enabled(self, ctx: RequestContext, params: dict) -> dict:
        self.model.update_account(ctx.account, ctx.region, sending=bool(params.get("Enabled", False)))
        return {}

    # -- sending --------------------------------------------------------------------------

    def send_email(self, ctx: RequestContext, params: dict) -> dict:
        msg, dest = params["Message"], params["Destination"]
        body = msg.get("Body") or {}
        out = self._outgoing(ctx, params, dest)
        out.subject = (msg.get("Subject") or {}).get("Data", "")
        out.text = (body.get("Text") or {}).get("Data")
        out.html = (body.get("Html") or {}).get("Data")
        return {"MessageId": self._send(ctx, out)}

    def send_raw_email(self, ctx: RequestContext, params: dict) -> dict:
        data = (params.get("RawMessage") or {}).get("Data")
        if not data:
            raise errors.invalid("Empty message")
        out = self._outgoing(ctx, params, {"ToAddresses": params.get("Destinations") or []})
        out.raw = data if isinstance(data, bytes) else str(data).encode()
        return {"MessageId": self._send(ctx, out)}

    def send_templated_email(self, ctx: RequestContext, params: dict) -> dict:
        out = self._outgoing(ctx, params, params["Destination"])
        self._template(ctx, out, params.get("Template"), params.get("TemplateArn"), params["TemplateData"])
        return {"MessageId": self._send(ctx, out)}

    def send_bulk_templated_email(self, ctx: RequestContext, params: dict) -> dict:
        destinations = params["Destinations"]
        if len(destinations) > 50:
            raise errors.too_many_recipients()
        default = templates.parse_data(params.get("DefaultTemplateData") or "{}")
        status = []
        for dest in destinations:
            out = self._outgoing(ctx, params, dest["Destination"])
            out.tags.update({t["Name"]: t["Value"] for t in params.get("DefaultTags") or []})
            out.tags.update({t["Name"]: t["Value"] for t in dest.get("ReplacementTags") or []})
            try:
                data = dict(default, **templates.parse_data(dest.get("ReplacementTemplateData") or "{}"))
                self._template(ctx, out, params["Template"], params.get("TemplateArn"), json.dumps(data))
                with self.store.transaction():  # one entry's failure leaves the others sent
                    status.append({"Status": "Success", "MessageId": self._send(ctx, out)})
            except ServiceError as exc:
                status.append({"Status": _bulk_status(exc), "Error": exc.message})
        return {"Status": status}

    def _outgoing(self, ctx: RequestContext, params: dict, dest: dict) -> Outgoing:
        return Outgoing(
            ctx.account, ctx.region, False, source=params.get("Source") or "",
            to=list(dest.get("ToAddresses") or []), cc=list(dest.get("CcAddresses") or []),
            bcc=list(dest.get("BccAddresses") or []), reply_to=list(params.get("ReplyToAddresses") or []),
            tags={t["Name"]: t["Value"] for t in params.get("Tags") or []},
            config_set=params.get("ConfigurationSetName"), return_path=params.get("ReturnPath"))

    def _template(self, ctx: RequestContext, out: Outgoing, name: str | None, arn: str | None, data: str) -> None:
        name = name or (arn or "").rpartition("/")[2]
        t = templates.get(self.store, ctx.account, ctx.region, name)
        if t is None:
            raise errors.template_missing(name)
        out.template = name
        out.template_parts = (t.subject, t.text, t.html)
        out.template_data = templates.parse_data(data)

    # -- templates ------------------------------------------------------------------------

    def create_template(self, ctx: RequestContext, params: dict) -> dict:
        t = self._template_from(params["Template"])
        if templates.get(self.store, ctx.account, ctx.region, t.name) is not None:
            raise errors.template_exists(t.name)
        templates.put(self.store, ctx.account, ctx.region, t)
        return {}

    def update_template(self, ctx: RequestContext, params: dict) -> dict:
        t = self._template_from(params["Template"])
        old = templates.get(self.store, ctx.account, ctx.region, t.name)
        if old is None:
            raise errors.template_missing(t.name)
        t.created = old.created
        templates.put(self.store, ctx.account, ctx.region, t)
        return {}

    def _template_from(self, spec: dict) -> templates.Template:
        name = spec.get("TemplateName") or ""
        if not NAME.match(name):
            raise errors.invalid("Template name must be less than 64 characters and contain only letters, "
                                 "numbers, dashes and underscores." if name else "Template name cannot be empty.")
        for part in ("SubjectPart", "TextPart", "HtmlPart"):
            try:
                templates.validate(spec.get(part))
            except templates.BadTemplate as exc:
                raise errors.invalid_template(name, f"Invalid template {part}: {exc}") from None
        return templates.Template(name, spec.get("SubjectPart"), spec.get("TextPart"), spec.get("HtmlPart"),
                                  self.clock.now())

    def get_template(self, ctx: RequestContext, params: dict) -> dict:
        t = templates.get(self.store, ctx.account, ctx.region, params["TemplateName"])
        if t is None:
            raise errors.template_missing(params["TemplateName"])
        spec = {"TemplateName": t.name, "SubjectPart": t.subject, "TextPart": t.text, "HtmlPart": t.html}
        return {"Template": {k: v for k, v in spec.items() if v is not None}}

    def delete_template(self, ctx: RequestContext, params: dict) -> dict:
        templates.delete(self.store, ctx.account, ctx.region, params["TemplateName"])
        return {}

    def list_templates(self, ctx: RequestContext, params: dict) -> dict:
        items = [{"Name": n, "CreatedTimestamp": c} for n, c in templates.names(self.store, ctx.account, ctx.region)]
        page, token = self._paged(items, params.get("NextToken"), params.get("MaxItems"))
        return {"TemplatesMetadata": page, **({"NextToken": token} if token else {})}

    def test_render_template(self, ctx: RequestContext, params: dict) -> dict:
        name = params["TemplateName"]
        t = templates.get(self.store, ctx.account, ctx.region, name)
        if t is None:
            raise errors.template_missing(name)
        return {"RenderedTemplate": render_mime(t, templates.parse_data(params["TemplateData"]), name)}

    # -- configuration sets -----------------------------------------------------------------

    def create_configuration_set(self, ctx: RequestContext, params: dict) -> dict:
        name = (params.get("ConfigurationSet") or {}).get("Name") or ""
        if not NAME.match(name):
            raise ServiceError("InvalidConfigurationSetException", "Configuration set name must contain only "
                               "letters, numbers, dashes and underscores, and be at most 64 characters.")
        if self.model.config_set(ctx.account, ctx.region, name) is not None:
            raise errors.config_set_exists(name)
        self.model.put_config_set(ctx.account, ctx.region, name, {"SendingOptions": {"SendingEnabled": True}},
                                  self.clock.now(), tags=[])
        return {}

    def delete_configuration_set(self, ctx: RequestContext, params: dict) -> dict:
        if not self.model.delete_config_set(ctx.account, ctx.region, params["ConfigurationSetName"]):
            raise errors.config_set_missing(params["ConfigurationSetName"])
        return {}

    def describe_configuration_set(self, ctx: RequestContext, params: dict) -> dict:
        name = params["ConfigurationSetName"]
        spec = self._config_set(ctx, name)
        wanted = params.get("ConfigurationSetAttributeNames") or []
        out: dict[str, Any] = {"ConfigurationSet": {"Name": name}}
        if "eventDestinations" in wanted:
            out["EventDestinations"] = [_v1_destination(d) for d in self.model.destinations(ctx.account, ctx.region,
                                                                                           name)]
        if "trackingOptions" in wanted and spec.get("TrackingOptions"):
            out["TrackingOptions"] = {"CustomRedirectDomain": spec["TrackingOptions"].get("CustomRedirectDomain")}
        if "deliveryOptions" in wanted and spec.get("DeliveryOptions"):
            out["DeliveryOptions"] = {"TlsPolicy": spec["DeliveryOptions"].get("TlsPolicy", "Optional")}
        if "reputationOptions" in wanted:
            rep = spec.get("ReputationOptions") or {}
            out["ReputationOptions"] = {"SendingEnabled": (spec.get("SendingOptions") or {}).get("SendingEnabled",
                                                                                               True),
                                        "ReputationMetricsEnabled": rep.get("ReputationMetricsEnabled", False)}
        return out

    def list_configuration_sets(self, ctx: RequestContext, params: dict) -> dict:
        items = [{"Name": n} for n in self.model.config_sets(ctx.account, ctx.region)]
        page, token = self._paged(items, params.get("NextToken"), params.get("MaxItems"))
        return {"ConfigurationSets": page, **({"NextToken": token} if token else {})}

    def update_configuration_set_sending_enabled(self, ctx: RequestContext, params: dict) -> dict:
        name = params["ConfigurationSetName"]
        spec = self._config_set(ctx, name)
        spec["SendingOptions"] = {"SendingEnabled": bool(params["Enabled"])}
        self.model.put_config_set(ctx.account, ctx.region, name, spec, self.clock.now())
        return {}

    def update_configuration_set_reputation_metrics_enabled(self, ctx: RequestContext, params: dict) -> dict:
        name = params["ConfigurationSetName"]
        spec = self._config_set(ctx, name)
        spec["ReputationOptions"] = {"ReputationMetricsEnabled": bool(params["Enabled"])}
        self.model.put_config_set(ctx.account, ctx.region, name, spec, self.clock.now())
        return {}

    def create_configuration_set_event_destination(self, ctx: RequestContext, params: dict) -> dict:
        name = params["ConfigurationSetName"]
        self._config_set(ctx, name)
        dest = params["EventDestination"]
        if any(d["Name"] == dest["Name"] for d in self.model.destinations(ctx.account, ctx.region, name)):
            raise errors.destination_exists(name, dest["Name"])
        self.model.put_destination(ctx.account, ctx.region, name, dest["Name"], _v2_destination(dest, name))
        return {}

    def update_configuration_set_event_destination(self, ctx: RequestContext, params: dict) -> dict:
        name = params["ConfigurationSetName"]
        self._config_set(ctx, name)
        dest = params["EventDestination"]
        if not any(d["Name"] == dest["Name"] for d in self.model.destinations(ctx.account, ctx.region, name)):
            raise errors.destination_missing(name, dest["Name"])
        self.model.put_destination(ctx.account, ctx.region, name, dest["Name"], _v2_destination(dest, name))
        return {}

    def delete_configuration_set_event_destination(self, ctx: RequestContext, params: dict) -> dict:
        name = params["ConfigurationSetName"]
        self._config_set(ctx, name)
        if not self.model.delete_destination(ctx.account, ctx.region, name, params["EventDestinationName"]):
            raise errors.destination_missing(name, params["EventDestinationName"])
        return {}

    def _config_set(self, ctx: RequestContext, name: str) -> dict:
        spec = self.model.config_set(ctx.account, ctx.region, name)
        if spec is None:
            raise errors.config_set_missing(name)
        return spec


def render_mime(t: templates.Template, data: dict, name: str, v2: bool = False) -> str:
    """TestRenderTemplate's answer: the whole MIME message the template gives."""
    from unkai.mail import build_message

    try:
        subject = templates.render(t.subject, data) or ""
        text = templates.render(t.text, data)
        html = templates.render(t.html, data)
    except templates.MissingAttribute as exc:
        if v2:
            raise ServiceError("BadRequestException",
                               f"Attribute '{exc.name}' is not present in the rendering data.") from None
        raise errors.missing_attribute(exc.name, name) from None
    except templates.BadTemplate as exc:
        if v2:
            raise ServiceError("BadRequestException", str(exc)) from None
        raise errors.invalid_template(name, str(exc)) from None
    return build_message("", [], subject, text, html).decode("utf-8", "replace")


def _domain(value: str) -> str:
    value = (value or "").strip().rstrip(".").lower()
    if not re.match(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$", value):
        raise errors.invalid(f"Invalid domain name {value}.")
    return value


def _v2_destination(dest: dict, config_set: str) -> dict:
    """A v1 EventDestination as the model keeps it (v2's shape)."""
    types = []
    for t in dest.get("MatchingEventTypes") or []:
        if t not in V1_EVENT_TYPES:
            raise errors.invalid(f"Invalid event type: {t}")
        types.append(V1_EVENT_TYPES[t])
    spec: dict[str, Any] = {"Enabled": bool(dest.get("Enabled", False)), "MatchingEventTypes": types}
    if dest.get("SNSDestination"):
        arn = dest["SNSDestination"].get("TopicARN", "")
        if not re.match(r"^arn:aws[\w-]*:sns:[\w-]+:\d{12}:[\w.-]+$", arn):
            raise errors.invalid_sns_destination(config_set, dest["Name"], arn)
        spec["SnsDestination"] = {"TopicArn": arn}
    if dest.get("CloudWatchDestination"):
        spec["CloudWatchDestination"] = dest["CloudWatchDestination"]
    if dest.get("KinesisFirehoseDestination"):
        fh = dest["KinesisFirehoseDestination"]
        spec["KinesisFirehoseDestination"] = {"IamRoleArn": fh.get("IAMRoleARN"),
                                              "DeliveryStreamArn": fh.get("DeliveryStreamARN")}
    return spec


def _v1_destination(spec: dict) -> dict:
    back = {v: k for k, v in V1_EVENT_TYPES.items()}
    out: dict[str, Any] = {"Name": spec["Name"], "Enabled": spec.get("Enabled", False),
                           "MatchingEventTypes": [back[t] for t in spec.get("MatchingEventTypes") or [] if t in back]}
    if spec.get("SnsDestination"):
        out["SNSDestination"] = {"TopicARN": spec["SnsDestination"]["TopicArn"]}
    if spec.get("CloudWatchDestination"):
        out["CloudWatchDestination"] = spec["CloudWatchDestination"]
    if spec.get("KinesisFirehoseDestination"):
        fh = spec["KinesisFirehoseDestination"]
        out["KinesisFirehoseDestination"] = {"IAMRoleARN": fh.get("IamRoleArn"),
                                             "DeliveryStreamARN": fh.get("DeliveryStreamArn")}
    return out


def _bulk_status(exc: ServiceError) -> str:
    return {"MessageRejected": "MessageRejected", "MailFromDomainNotVerifiedException": "MailFromDomainNotVerified",
            "ConfigurationSetDoesNotExistException": "ConfigurationSetDoesNotExist",
            "TemplateDoesNotExistException": "TemplateDoesNotExist",
            "AccountSendingPausedException": "AccountSendingPaused",
            "ConfigurationSetSendingPausedException": "ConfigurationSetSendingPaused",
            "Throttling": "AccountThrottled", "TooManyRequestsException": "AccountThrottled",
            "InvalidParameterValue": "InvalidParameterValue"}.get(
        exc.code, "Failed") if exc.message != "Daily message quota exceeded." else "AccountDailyQuotaExceeded"
