"""SMS: Publish to a ``PhoneNumber`` and topic subscriptions with the ``sms`` protocol, the
account's SMS attributes and the opt-out list.

No text leaves the machine: an SMS is put in the local mailbox addressed to the phone number
(subject "SMS message"), the outbox Cognito's texted codes already use, so ``unkai mail``,
``GET /_unkai/mail?to=+15555550100`` and tests read it. It is written in the publish's
transaction. A number on the opt-out list gets nothing, as on AWS (a number is opted out
locally with ``POST /_unkai/sns/sms/opt-out?phoneNumber=...``, the local stand-in for a
recipient replying STOP)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext

MIGRATION = """
CREATE TABLE sns_sms_settings (account TEXT NOT NULL, region TEXT NOT NULL, attributes TEXT NOT NULL,
                               PRIMARY KEY (account, region));
CREATE TABLE sns_sms_opted_out (account TEXT NOT NULL, region TEXT NOT NULL, phone TEXT NOT NULL,
                                PRIMARY KEY (account, region, phone));
"""

E164 = re.compile(r"^\+?[1-9]\d{1,14}$")
ATTRIBUTES = ("MonthlySpendLimit", "DeliveryStatusIAMRole", "DeliveryStatusSuccessSamplingRate", "DefaultSenderID",
              "DefaultSMSType", "UsageReportS3Bucket")
MAX_SMS = 1600  # AWS: an SMS publish is at most 1,600 characters (split into parts beyond 140 bytes)


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameter", f"Invalid parameter: {message}")


class SmsOps:
    """Mixed into the SNS service."""

    cloud: Any
    store: Any

    def start_sms(self) -> None:
        self.cloud.gateway.internal.route("POST", r"/_unkai/sns/sms/opt-out", self._opt_out_route, access="local")

    def _sms_attributes(self, account: str, region: str) -> dict[str, str]:
        row = self.store.one("SELECT attributes FROM sns_sms_settings WHERE account=? AND region=?", (account, region))
        return json.loads(row[0]) if row else {}

    def _opted_out(self, account: str, region: str, phone: str) -> bool:
        return self.store.one("SELECT 1 FROM sns_sms_opted_out WHERE account=? AND region=? AND phone=?",
                              (account, region, phone)) is not None

    def send_sms(self, account: str, region: str, phone: str, text: str, sender_id: str | None = None) -> bool:
        """Put one SMS in the local outbox (the caller's transaction); False when the number opted out."""
        if self._opted_out(account, region, phone):
            return False
        sender = sender_id or self._sms_attributes(account, region).get("DefaultSenderID") or "SNS"
        self.cloud.mailbox.deliver(f"{sender}@sms.sns.amazonaws.com", [phone], "SMS message", text)
        self.store.after_commit(lambda: self.cloud.feed.publish("sns.sms", to=phone, sender=sender))
        return True

    def publish_sms(self, ctx: RequestContext, params: dict) -> dict:
        phone = params["PhoneNumber"]
        if not E164.match(phone):
            raise _invalid(f"PhoneNumber Reason: {phone} is not valid to publish to")
        message = params.get("Message") or ""
        if not message:
            raise _invalid("Empty message")
        if len(message) > MAX_SMS:
            raise _invalid("Message too long")
        attrs = params.get("MessageAttributes") or {}
        sender = (attrs.get("AWS.SNS.SMS.SenderID") or {}).get("StringValue")
        self.send_sms(ctx.account, ctx.region, phone, message, sender)
        return {"MessageId": str(uuid.uuid4())}

    def get_sms_attributes(self, ctx: RequestContext, params: dict) -> dict:
        stored = self._sms_attributes(ctx.account, ctx.region)
        wanted = params.get("attributes")
        return {"attributes": {k: v for k, v in stored.items() if not wanted or k in wanted}}

    def set_sms_attributes(self, ctx: RequestContext, params: dict) -> dict:
        given = params.get("attributes") or {}
        for key, value in given.items():
            if key not in ATTRIBUTES:
                raise _invalid(f"{key}")
            if key == "DefaultSMSType" and value not in ("Promotional", "Transactional"):
                raise _invalid(f"DefaultSMSType Reason: {value} is not a valid SMS type")
        stored = {**self._sms_attributes(ctx.account, ctx.region), **given}
        self.store.execute("INSERT OR REPLACE INTO sns_sms_settings(account, region, attributes) VALUES(?,?,?)",
                           (ctx.account, ctx.region, json.dumps(stored)))
        return {}

    def _check_phone(self, phone: str) -> str:
        if not E164.match(phone or ""):
            raise _invalid("PhoneNumber Reason: input incorrectly formatted")
        return phone

    def check_if_phone_number_is_opted_out(self, ctx: RequestContext, params: dict) -> dict:
        phone = self._check_phone(params["phoneNumber"])
        return {"isOptedOut": self._opted_out(ctx.account, ctx.region, phone)}

    def list_phone_numbers_opted_out(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT phone FROM sns_sms_opted_out WHERE account=? AND region=? ORDER BY phone",
                              (ctx.account, ctx.region))
        return {"phoneNumbers": [r[0] for r in rows]}

    def opt_in_phone_number(self, ctx: RequestContext, params: dict) -> dict:
        phone = self._check_phone(params["phoneNumber"])
        self.store.execute("DELETE FROM sns_sms_opted_out WHERE account=? AND region=? AND phone=?",
                           (ctx.account, ctx.region, phone))
        return {}

    async def _opt_out_route(self, request: Any, match: Any) -> Any:
        from unkai.http import Response

        phone = request.query_param("phoneNumber") if hasattr(request, "query_param") else None
        if phone is None:
            from urllib.parse import parse_qs

            phone = (parse_qs(request.query_string).get("phoneNumber") or [""])[0]
        if not E164.match(phone):
            return Response(400, [("content-type", "application/json")], b'{"error": "phoneNumber is not E.164"}')
        with self.store.transaction():
            self.store.execute("INSERT OR IGNORE INTO sns_sms_opted_out(account, region, phone) VALUES(?,?,?)",
                               (self.cloud.config.account_id, self.cloud.config.region, phone))
        return Response(200, [("content-type", "application/json")], json.dumps({"optedOut": phone}).encode())
