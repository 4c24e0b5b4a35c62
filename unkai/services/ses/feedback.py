"""What SES reports after a send, from the durable ``ses.feedback`` job: identity
notifications (Bounce, Complaint, Delivery) published to the identity's SNS topics with
AWS's JSON, or forwarded by email when no topic is set; configuration-set events (Send,
Delivery, Bounce, Complaint, Rendering Failure, Open, Click...) to SNS, EventBridge, Firehose
and CloudWatch destinations;
and the mailbox simulator's own mail (out-of-office replies, bounce messages).

Shapes are AWS's, from "Amazon SES notification contents" and "Contents of event data
that Amazon SES publishes to Amazon SNS": notifications carry ``notificationType``,
events ``eventType``; ``mail.headers`` appear in a notification only when
SetIdentityHeadersInNotificationsEnabled is on for that type, and always in events."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from unkai import targets
from unkai.services.ses.identities import Model, SIMULATOR_DOMAIN
from unkai.services.ses.sending import _iso, feedback_id

if TYPE_CHECKING:
    from unkai.cloud import Cloud

log = logging.getLogger(__name__)

REPORTING_MTA = "dsn; a27-23.smtp-out.{region}.amazonses.com"
DIAGNOSTIC = {
    "bounce": ("General", "smtp; 550 5.1.1 user unknown"),
    "suppressionlist": ("Suppressed", "Amazon SES has suppressed sending to this address because it has a recent "
                        "history of bouncing as an invalid address. For more information about how to remove an "
                        "address from the suppression list, see the Amazon SES Developer Guide: "
                        "http://docs.aws.amazon.com/ses/latest/DeveloperGuide/remove-from-suppressionlist.html "),
    "suppressed": ("OnAccountSuppressionList", "Amazon SES did not send the message to this address because it is "
                   "on the suppression list for your account. For more information about removing addresses from "
                   "the suppression list, see the Amazon SES Developer Guide at "
                   "https://docs.aws.amazon.com/ses/latest/DeveloperGuide/sending-email-suppression-list.html"),
    # list management: the contact opted out of the list or topic the send named
    "unsubscribed": ("UnsubscribedRecipient", "Amazon SES did not send the message to this address because the "
                     "recipient unsubscribed from the contact list or topic the message was sent for."),
}
# event types: v2's MatchingEventTypes name -> eventType in the JSON, EventBridge detail-type
EVENT_TYPES = {
    "SEND": ("Send", "Email Sent"), "DELIVERY": ("Delivery", "Email Delivered"),
    "BOUNCE": ("Bounce", "Email Bounced"), "COMPLAINT": ("Complaint", "Email Complaint Received"),
    "REJECT": ("Reject", "Email Rejected"), "RENDERING_FAILURE": ("Rendering Failure", "Email Rendering Failed"),
    "OPEN": ("Open", "Email Opened"), "CLICK": ("Click", "Email Clicked"),
    "DELIVERY_DELAY": ("DeliveryDelay", "Email Delivery Delayed"),
    "SUBSCRIPTION": ("Subscription", "Email Subscribed"),
}


class Feedback:
    def __init__(self, cloud: "Cloud", model: Model) -> None:
        self.cloud = cloud
        self.model = model
        self.store = cloud.store
        self.clock = cloud.clock

    async def run(self, payload: dict[str, Any], attempt: int) -> None:
        with self.store.transaction():
            self.report(payload)

    def report(self, p: dict[str, Any]) -> None:
        now = self.clock.now()
        account, region, mail = p["account"], p["region"], p["mail"]
        if p.get("failure"):
            message, template = p["failure"]
            self.metric(p, "RenderingFailure", 1)
            self.event(p, "RENDERING_FAILURE", {"failure": {"errorMessage": message, "templateName": template}})
            return
        self.metric(p, "Send", 1)
        self.event(p, "SEND", {"send": {}})
        groups: dict[str, list[str]] = {}
        for rcpt, kind in p["outcomes"].items():
            groups.setdefault(kind, []).append(rcpt)
        if groups.get("reject"):
            # "Amazon SES accepted the email, determined that it contained a virus, and
            # rejected it. Amazon SES didn't attempt to deliver the email" (event publishing)
            self.event(p, "REJECT", {"reject": {"reason": "Bad content"}})
            return
        delivered = groups.get("delivery", []) + groups.get("ooto", []) + groups.get("complaint", [])
        self.metric(p, "Delivery", len(delivered))
        self.metric(p, "Bounce", sum(len(groups.get(k, [])) for k in ("bounce", "suppressionlist", "suppressed",
                                                                              "unsubscribed")))
        self.metric(p, "Complaint", len(groups.get("complaint", [])))
        if delivered:
            body = {"timestamp": _iso(now), "processingTimeMillis": max(1, int((now - p["at"]) * 1000)),
                    "recipients": delivered, "smtpResponse": "250 2.6.0 Message received",
                    "remoteMtaIp": "127.0.0.1", "reportingMTA": f"a8-70.smtp-out.{region}.amazonses.com"}
            self.notify(p, "Delivery", {"delivery": body})
            self.event(p, "DELIVERY", {"delivery": body})
        for kind in ("bounce", "suppressionlist", "suppressed", "unsubscribed"):
            if not groups.get(kind):
                continue
            sub, diagnostic = DIAGNOSTIC[kind]
            body = {"feedbackId": feedback_id(now), "bounceType": "Permanent", "bounceSubType": sub,
                    "bouncedRecipients": [{"emailAddress": r, "action": "failed", "status": "5.1.1",
                                           "diagnosticCode": diagnostic} for r in groups[kind]],
                    "timestamp": _iso(now),
                    "reportingMTA": "dns; amazonses.com" if kind != "bounce" else REPORTING_MTA.format(region=region)}
            if kind == "bounce":
                body["remoteMtaIp"] = "127.0.2.0"
            self.model.record(account, region, now, "bounce", sum(1 for r in groups[kind]
                                                                  if not r.lower().endswith(SIMULATOR_DOMAIN)))
            if not self.notify(p, "Bounce", {"bounce": body}):
                self.forward_bounce(p, groups[kind], diagnostic)
            self.event(p, "BOUNCE", {"bounce": body})
        if groups.get("complaint"):
            body = {"feedbackId": feedback_id(now), "complaintSubType": None,
                    "complainedRecipients": [{"emailAddress": r} for r in groups["complaint"]],
                    "timestamp": _iso(now), "userAgent": "Amazon SES Mailbox Simulator",
                    "complaintFeedbackType": "abuse", "arrivalDate": _iso(p["at"])}
            if not self.notify(p, "Complaint", {"complaint": body}):
                self.forward_complaint(p, groups["complaint"])
            self.event(p, "COMPLAINT", {"complaint": body})
        for rcpt in groups.get("ooto", []):
            self.cloud.mailbox.deliver(rcpt, [p["feedback_to"]], f"Automatic reply: {p['subject']}",
                                       "I am out of the office and will reply when I am back.\n",
                                       origin="ses", headers={"Auto-Submitted": "auto-replied",
                                                              "In-Reply-To": mail["messageId"]})

    def metric(self, p: dict[str, Any], name: str, recipients: int) -> None:
        """AWS/SES's account-wide ``name`` (Send per message; Delivery, Bounce, Complaint per
        recipient), through CloudWatch's ``count`` contract; nothing when there were none."""
        cw = self.cloud.services.get("cloudwatch")
        if cw is not None and recipients:
            cw.count(p["account"], p["region"], "AWS/SES", name, None, float(recipients))

    # -- identity notifications -----------------------------------------------------------

    def notify(self, p: dict[str, Any], kind: str, body: dict[str, Any]) -> bool:
        """Publish a Bounce/Complaint/Delivery notification to the identity's topic; False
        when it has none (then AWS forwards bounces and complaints by email)."""
        identity = self.model.sending_identity(p["account"], p["region"], p["sender"])
        topic = identity.notify.get(kind) if identity else None
        if not topic:
            return False
        mail = dict(p["mail"])
        if not (identity and identity.headers_in.get(kind)):
            mail.pop("headers", None)
            mail.pop("headersTruncated", None)
        message = {"notificationType": kind, **body, "mail": mail}
        self.publish(topic, json.dumps(message), p["region"])
        return True

    def publish(self, topic: str, message: str, region: str) -> None:
        """Through the shared target path (a missing topic is logged as dropped)."""
        targets.deliver(self.cloud, {"Arn": topic}, message, "ses", "")

    def forward_bounce(self, p: dict[str, Any], recipients: list[str], diagnostic: str) -> None:
        identity = self.model.sending_identity(p["account"], p["region"], p["sender"])
        if identity is not None and not identity.forwarding:
            return
        text = ("An error occurred while trying to deliver the mail to the following recipients:\r\n"
                + "\r\n".join(recipients) + f"\r\n\r\n{diagnostic}\r\n")
        self.cloud.mailbox.deliver("MAILER-DAEMON@amazonses.com", [p["feedback_to"]],
                                   "Delivery Status Notification (Failure)", text, origin="ses")

    def forward_complaint(self, p: dict[str, Any], recipients: list[str]) -> None:
        identity = self.model.sending_identity(p["account"], p["region"], p["sender"])
        if identity is not None and not identity.forwarding:
            return
        text = ("This is an email abuse report for an email message received from "
                f"{p['sender']} on {p['mail']['timestamp']}.\r\nComplained: " + ", ".join(recipients) + "\r\n")
        self.cloud.mailbox.deliver("complaints@email-abuse.amazonses.com", [p["feedback_to"]],
                                   f"Complaint: {p['subject']}", text, origin="ses")

    # -- configuration-set events -----------------------------------------------------------

    def event(self, p: dict[str, Any], kind: str, body: dict[str, Any]) -> None:
        name = p.get("config_set")
        if not name:
            return
        event_type, detail_type = EVENT_TYPES[kind]
        mail = dict(p["mail"], tags=p["tags"])
        message = {"eventType": event_type, "mail": mail, **body}
        text = json.dumps(message)
        for dest in self.model.destinations(p["account"], p["region"], name):
            if not dest.get("Enabled", False) or kind not in (dest.get("MatchingEventTypes") or []):
                continue
            sns = (dest.get("SnsDestination") or {}).get("TopicArn")
            bus = (dest.get("EventBridgeDestination") or {}).get("EventBusArn")
            firehose = (dest.get("KinesisFirehoseDestination") or {}).get("DeliveryStreamArn")
            cloudwatch = dest.get("CloudWatchDestination")
            if sns:
                self.publish(sns, text, p["region"])
            if bus:
                self.put_event(bus, detail_type, message, p)
            if firehose:
                # "Amazon SES follows each JSON record with a newline character" (AWS's
                # "Contents of event data that Amazon SES publishes to Firehose")
                targets.deliver(self.cloud, {"Arn": firehose}, text + "\n", "ses", "")
            if cloudwatch is not None:
                self.put_metric(cloudwatch, event_type, message, p)
            if not (sns or bus or firehose or cloudwatch is not None):
                log.info("ses: event destination %s of %s: Pinpoint destinations are not delivered",
                         dest["Name"], name)

    def put_metric(self, spec: dict[str, Any], event_type: str, message: dict[str, Any],
                   p: dict[str, Any]) -> None:
        """One data point in ``AWS/SES`` named for the event (``RenderingFailure`` without
        its space), with the destination's dimensions: each takes its value from the
        message's tag, header or link tag, or else its DefaultDimensionValue, as AWS's
        "Retrieving Amazon SES event data from CloudWatch" describes."""
        if "cloudwatch" not in self.cloud.services:
            return
        tags = message["mail"].get("tags") or {}
        headers = {h["name"].lower(): h["value"] for h in message["mail"].get("headers") or []}
        link_tags = (message.get("click") or {}).get("linkTags") or {}
        dims = []
        for conf in spec.get("DimensionConfigurations") or []:
            source = str(conf.get("DimensionValueSource", "")).replace("_", "").lower()
            name = conf.get("DimensionName", "")
            if source == "messagetag":
                value = (tags.get(name) or [None])[0]
            elif source == "emailheader":
                value = headers.get(name.lower())
            else:
                value = (link_tags.get(name) or [None])[0]
            dims.append({"Name": name, "Value": value or conf.get("DefaultDimensionValue", "")})
        self.cloud.service("cloudwatch").record(p["account"], p["region"], "AWS/SES", event_type.replace(" ", ""),
                                                dims, 1.0, "Count")

    def put_event(self, bus: str, detail_type: str, message: dict[str, Any], p: dict[str, Any]) -> None:
        from unkai.protocol import ServiceError

        if "events" not in self.cloud.services:
            return
        region = bus.split(":")[3] if bus.count(":") >= 5 else p["region"]
        arn = f"arn:aws:ses:{p['region']}:{p['account']}:configuration-set/{p['config_set']}"
        entry = {"Source": "aws.ses", "DetailType": detail_type, "Detail": json.dumps(message),
                 "Resources": [arn], "EventBusName": bus.rpartition("/")[2] or "default"}
        try:
            self.cloud.call("events", "PutEvents", {"Entries": [entry]}, region)
        except ServiceError as exc:
            log.warning("ses: cannot put an event on %s: %s", bus, exc.message)

