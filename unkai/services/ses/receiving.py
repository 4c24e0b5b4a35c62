"""Receiving mail: SES v1's receipt rule sets and rules, and what happens to a message
delivered to unkai's SMTP listener (``smtp.py``) for a recipient an active rule matches.

A recipient is received when the region's active rule set has an enabled rule whose
``Recipients`` match it (an address, a domain, ``.domain`` for its subdomains, or none
for every recipient) and its address or domain is a verified identity, as AWS requires.
The message is stored in the local mailbox (origin ``ses-inbound``) and a durable
``ses.receive`` job runs each matching rule's actions in order, with AWS's event shapes:
``S3`` (the raw message at ``ObjectKeyPrefix + messageId``, optionally notifying a topic),
``SNS`` (``notificationType: Received`` with the content), ``Lambda`` (``Event``: the
asynchronous job; ``RequestResponse``: waits, and a returned ``disposition`` of
``STOP_RULE`` / ``STOP_RULE_SET`` is honoured), ``Bounce`` (a bounce mail to the sender),
``AddHeader`` and ``Stop``. Spam, virus, SPF, DKIM and DMARC verdicts are always PASS."""

from __future__ import annotations

import base64
import json
import logging
import re
from typing import Any

from unkai import targets
from unkai.protocol import ServiceError
from unkai.services import RequestContext
from unkai.services.ses import errors
from unkai.services.ses.sending import _iso, message_id

log = logging.getLogger(__name__)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# AWS's receiving quotas ("Service quotas in Amazon SES"): rule sets per account and region, rules per set
MAX_RULE_SETS = 40
MAX_RULES = 200


class ReceivingOps:
    """Mixed into the v1 service."""

    store: Any
    clock: Any
    cloud: Any
    config: Any

    async def start_receiving(self) -> None:
        import os

        self.cloud.jobs.register("ses.receive", self._receive_job)
        self._smtp = None
        port = os.environ.get("UNKAI_SMTP_PORT")
        if port is not None and port != "":
            from unkai.services.ses.smtp import SmtpServer

            self._smtp = SmtpServer(self)  # type: ignore[arg-type]
            await self._smtp.start(int(port))

            async def where(request: Any, m: Any) -> Any:
                from unkai.http import Response

                return Response.json({"host": self.config.host, "port": self._smtp.port if self._smtp else None})

            self.cloud.gateway.internal.route("GET", r"/_unkai/ses/smtp", where, access="local")

    async def stop_receiving(self) -> None:
        if getattr(self, "_smtp", None) is not None:
            await self._smtp.stop()

    def banner(self) -> list[str]:
        smtp = getattr(self, "_smtp", None)
        if smtp is None or not smtp.port:
            return []
        return [f"  SES SMTP   {self.config.host}:{smtp.port}   (smtplib, Django... STARTTLS optional)"]

    # -- the model ----------------------------------------------------------------------

    def _rule_set(self, ctx: RequestContext, name: str) -> tuple[list[dict], bool, float]:
        row = self.store.one("SELECT rules, active, created FROM ses_rule_sets WHERE account=? AND region=? AND "
                             "name=?", (ctx.account, ctx.region, name))
        if row is None:
            raise errors.rule_set_missing(name)
        return json.loads(row[0]), bool(row[1]), row[2]

    def _save_rules(self, ctx: RequestContext, name: str, rules: list[dict]) -> None:
        self.store.execute("UPDATE ses_rule_sets SET rules=? WHERE account=? AND region=? AND name=?",
                           (json.dumps(rules), ctx.account, ctx.region, name))

    # -- rule sets ----------------------------------------------------------------------

    def create_receipt_rule_set(self, ctx: RequestContext, params: dict) -> dict:
        name = params["RuleSetName"]
        _check_name(name)
        if self.store.one("SELECT 1 FROM ses_rule_sets WHERE account=? AND region=? AND name=?",
                          (ctx.account, ctx.region, name)):
            raise ServiceError("AlreadyExistsException", f"Rule set already exists: {name}", Name=name)
        count = self.store.one("SELECT COUNT(*) FROM ses_rule_sets WHERE account=? AND region=?",
                               (ctx.account, ctx.region))[0]
        if count >= MAX_RULE_SETS:
            raise errors.limit(f"Maximum number of receipt rule sets ({MAX_RULE_SETS}) exceeded.")
        self.store.execute("INSERT INTO ses_rule_sets(account, region, name, created) VALUES(?, ?, ?, ?)",
                           (ctx.account, ctx.region, name, self.clock.now()))
        return {}

    def clone_receipt_rule_set(self, ctx: RequestContext, params: dict) -> dict:
        rules, _, _ = self._rule_set(ctx, params["OriginalRuleSetName"])
        self.create_receipt_rule_set(ctx, {"RuleSetName": params["RuleSetName"]})
        self._save_rules(ctx, params["RuleSetName"], rules)
        return {}

    def delete_receipt_rule_set(self, ctx: RequestContext, params: dict) -> dict:
        name = params["RuleSetName"]
        row = self.store.one("SELECT active FROM ses_rule_sets WHERE account=? AND region=? AND name=?",
                             (ctx.account, ctx.region, name))
        if row is not None and row[0]:
            raise errors.cannot_delete(f"Cannot delete active rule set: {name}")
        self.store.execute("DELETE FROM ses_rule_sets WHERE account=? AND region=? AND name=?",
                           (ctx.account, ctx.region, name))
        return {}

    def list_receipt_rule_sets(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT name, created FROM ses_rule_sets WHERE account=? AND region=? ORDER BY name",
                              (ctx.account, ctx.region))
        return {"RuleSets": [{"Name": n, "CreatedTimestamp": c} for n, c in rows]}

    def describe_receipt_rule_set(self, ctx: RequestContext, params: dict) -> dict:
        rules, _, created = self._rule_set(ctx, params["RuleSetName"])
        return {"Metadata": {"Name": params["RuleSetName"], "CreatedTimestamp": created}, "Rules": rules}

    def set_active_receipt_rule_set(self, ctx: RequestContext, params: dict) -> dict:
        name = params.get("RuleSetName")
        if name:
            self._rule_set(ctx, name)
        self.store.execute("UPDATE ses_rule_sets SET active=(name=?) WHERE account=? AND region=?",
                           (name or "", ctx.account, ctx.region))
        return {}

    def describe_active_receipt_rule_set(self, ctx: RequestContext, params: dict) -> dict:
        row = self.store.one("SELECT name, created, rules FROM ses_rule_sets WHERE account=? AND region=? AND "
                             "active=1", (ctx.account, ctx.region))
        if row is None:
            return {}
        return {"Metadata": {"Name": row[0], "CreatedTimestamp": row[1]}, "Rules": json.loads(row[2])}

    def reorder_receipt_rule_set(self, ctx: RequestContext, params: dict) -> dict:
        name = params["RuleSetName"]
        rules, _, _ = self._rule_set(ctx, name)
        by_name = {r["Name"]: r for r in rules}
        order = params["RuleNames"]
        for n in order:
            if n not in by_name:
                raise errors.rule_missing(n)
        if len(order) != len(rules):
            raise errors.invalid("All the rules of the rule set must be listed.")
        self._save_rules(ctx, name, [by_name[n] for n in order])
        return {}

    # -- rules --------------------------------------------------------------------------

    def create_receipt_rule(self, ctx: RequestContext, params: dict) -> dict:
        name, rule = params["RuleSetName"], _rule(params["Rule"])
        rules, _, _ = self._rule_set(ctx, name)
        if any(r["Name"] == rule["Name"] for r in rules):
            raise ServiceError("AlreadyExistsException", f"Rule already exists: {rule['Name']}", Name=rule["Name"])
        if len(rules) >= MAX_RULES:
            raise errors.limit(f"Maximum number of receipt rules per rule set ({MAX_RULES}) exceeded.")
        self._insert(rules, rule, params.get("After"))
        self._save_rules(ctx, name, rules)
        return {}

    def update_receipt_rule(self, ctx: RequestContext, params: dict) -> dict:
        name, rule = params["RuleSetName"], _rule(params["Rule"])
        rules, _, _ = self._rule_set(ctx, name)
        for i, r in enumerate(rules):
            if r["Name"] == rule["Name"]:
                rules[i] = rule
                self._save_rules(ctx, name, rules)
                return {}
        raise errors.rule_missing(rule["Name"])

    def delete_receipt_rule(self, ctx: RequestContext, params: dict) -> dict:
        name = params["RuleSetName"]
        rules, _, _ = self._rule_set(ctx, name)
        self._save_rules(ctx, name, [r for r in rules if r["Name"] != params["RuleName"]])
        return {}

    def describe_receipt_rule(self, ctx: RequestContext, params: dict) -> dict:
        rules, _, _ = self._rule_set(ctx, params["RuleSetName"])
        for r in rules:
            if r["Name"] == params["RuleName"]:
                return {"Rule": r}
        raise errors.rule_missing(params["RuleName"])

    def set_receipt_rule_position(self, ctx: RequestContext, params: dict) -> dict:
        name = params["RuleSetName"]
        rules, _, _ = self._rule_set(ctx, name)
        moving = next((r for r in rules if r["Name"] == params["RuleName"]), None)
        if moving is None:
            raise errors.rule_missing(params["RuleName"])
        rules = [r for r in rules if r is not moving]
        self._insert(rules, moving, params.get("After"))
        self._save_rules(ctx, name, rules)
        return {}

    @staticmethod
    def _insert(rules: list[dict], rule: dict, after: str | None) -> None:
        if after:
            for i, r in enumerate(rules):
                if r["Name"] == after:
                    rules.insert(i + 1, rule)
                    return
            raise errors.rule_missing(after)
        rules.insert(0, rule)

    # -- receipt filters (stored; IP filtering does not apply to local mail) --------------

    def create_receipt_filter(self, ctx: RequestContext, params: dict) -> dict:
        spec = params["Filter"]
        _check_name(spec["Name"])
        self.store.execute("INSERT OR REPLACE INTO ses_receipt_filters(account, region, name, spec) VALUES(?, ?, ?, ?)",
                           (ctx.account, ctx.region, spec["Name"], json.dumps(spec)))
        return {}

    def delete_receipt_filter(self, ctx: RequestContext, params: dict) -> dict:
        self.store.execute("DELETE FROM ses_receipt_filters WHERE account=? AND region=? AND name=?",
                           (ctx.account, ctx.region, params["FilterName"]))
        return {}

    def list_receipt_filters(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT spec FROM ses_receipt_filters WHERE account=? AND region=? ORDER BY name",
                              (ctx.account, ctx.region))
        return {"Filters": [json.loads(r[0]) for r in rows]}

    # -- receiving ------------------------------------------------------------------------

    def receipt_recipients(self, account: str, region: str, recipients: list[str]) -> list[str]:
        """Those of ``recipients`` the active rule set receives (see the module docstring)."""
        row = self.store.one("SELECT rules FROM ses_rule_sets WHERE account=? AND region=? AND active=1",
                             (account, region))
        if row is None:
            return []
        rules = [r for r in json.loads(row[0]) if r.get("Enabled")]
        now = self.clock.now()
        found = []
        for rcpt in recipients:
            if any(_matches(r, rcpt) for r in rules) and self._model.verified_for(account, region, rcpt, now):
                found.append(rcpt)
        return found

    def schedule_receipt(self, account: str, region: str, sender: str, recipients: list[str], raw: bytes) -> str:
        """Store a received message and enqueue its rules' actions (in the caller's transaction)."""
        mid = message_id(self.clock.now())
        self.cloud.mailbox.deliver(sender, [], "", raw=raw, bcc=recipients, origin="ses-inbound", message_id=mid)
        self.cloud.jobs.enqueue("ses.receive", {"account": account, "region": region, "sender": sender,
                                                "recipients": recipients, "raw": base64.b64encode(raw).decode(),
                                                "message_id": mid, "at": self.clock.now()})
        return mid

    async def _receive_job(self, p: dict, attempt: int) -> None:
        raw = base64.b64decode(p["raw"])
        with self.store.transaction():
            row = self.store.one("SELECT rules FROM ses_rule_sets WHERE account=? AND region=? AND active=1",
                                 (p["account"], p["region"]))
        if row is None:
            return
        for rule in json.loads(row[0]):
            if not rule.get("Enabled"):
                continue
            rcpts = [r for r in p["recipients"] if _matches(rule, r)]
            if not rcpts:
                continue
            stop = None
            for action in rule.get("Actions") or []:
                stop, raw = await self._act(p, rule, action, rcpts, raw)
                if stop:
                    break
            if stop == "RuleSet":
                return

    async def _act(self, p: dict, rule: dict, action: dict, rcpts: list[str], raw: bytes) -> tuple[str | None, bytes]:
        """Run one action; returns (stop scope or None, the message for the next action)."""
        kind, spec = next(iter(action.items()))
        mail = _mail(p, raw, rcpts)
        receipt = {"timestamp": _iso(p["at"]), "processingTimeMillis": 200, "recipients": rcpts,
                   "spamVerdict": {"status": "PASS"}, "virusVerdict": {"status": "PASS"},
                   "spfVerdict": {"status": "PASS"}, "dkimVerdict": {"status": "PASS"},
                   "dmarcVerdict": {"status": "PASS"}}
        region = p["region"]
        if kind == "AddHeaderAction":
            return None, f"{spec['HeaderName']}: {spec['HeaderValue']}\r\n".encode() + raw
        if kind == "StopAction":
            if spec.get("TopicArn"):
                with self.store.transaction():
                    self._notify(spec["TopicArn"], {"notificationType": "Received", "mail": mail, "receipt": dict(
                        receipt, action={"type": "Stop", "topicArn": spec["TopicArn"]})}, region)
            return spec.get("Scope", "RuleSet"), raw
        if kind == "S3Action":
            key = (spec.get("ObjectKeyPrefix") or "") + p["message_id"]
            with self.store.transaction():
                self._put_object(spec["BucketName"], key, raw, region)
                if spec.get("TopicArn"):
                    self._notify(spec["TopicArn"], {"notificationType": "Received", "mail": mail, "receipt": dict(
                        receipt, action={"type": "S3", "topicArn": spec["TopicArn"], "bucketName": spec["BucketName"],
                                         "objectKeyPrefix": spec.get("ObjectKeyPrefix") or "", "objectKey": key})},
                                 region)
            return None, raw
        if kind == "SNSAction":
            encoding = spec.get("Encoding") or "UTF-8"
            content = base64.b64encode(raw).decode() if encoding == "Base64" else raw.decode("utf-8", "replace")
            with self.store.transaction():
                self._notify(spec["TopicArn"], {"notificationType": "Received", "mail": mail, "receipt": dict(
                    receipt, action={"type": "SNS", "topicArn": spec["TopicArn"],
                                     "encoding": "BASE64" if encoding == "Base64" else "UTF8"}), "content": content},
                             region)
            return None, raw
        if kind == "LambdaAction":
            invocation = spec.get("InvocationType") or "Event"
            event = {"Records": [{"eventSource": "aws:ses", "eventVersion": "1.0", "ses": {
                "mail": mail, "receipt": dict(receipt, action={"type": "Lambda", "functionArn": spec["FunctionArn"],
                                                               "invocationType": invocation})}}]}
            if invocation == "RequestResponse":
                try:
                    result = await self.cloud.service("lambda").invoke(
                        spec["FunctionArn"], json.dumps(event).encode(), region=region, wait_for_slot=True)
                    answer = json.loads(result.payload or b"null")
                except (ServiceError, ValueError) as exc:
                    log.warning("ses: receipt rule %s: Lambda failed: %s", rule["Name"], exc)
                    return None, raw
                disposition = (answer or {}).get("disposition") if isinstance(answer, dict) else None
                return {"STOP_RULE": "Rule", "STOP_RULE_SET": "RuleSet"}.get(disposition or ""), raw
            with self.store.transaction():
                targets.deliver(self.cloud, {"Arn": spec["FunctionArn"]}, json.dumps(event), "ses", p["message_id"])
            return None, raw
        if kind == "BounceAction":
            text = spec.get("Message") or "Mailbox does not exist"
            with self.store.transaction():
                self.cloud.mailbox.deliver(spec["Sender"], [p["sender"]], "Delivery Status Notification (Failure)",
                                           f"{spec.get('SmtpReplyCode', '550')} {spec.get('StatusCode', '5.1.1')} "
                                           f"{text}\r\n\r\nOriginal recipients: {', '.join(rcpts)}\r\n",
                                           origin="ses")
                if spec.get("TopicArn"):
                    self._notify(spec["TopicArn"], {"notificationType": "Received", "mail": mail, "receipt": dict(
                        receipt, action={"type": "Bounce", "topicArn": spec["TopicArn"],
                                         "smtpReplyCode": spec.get("SmtpReplyCode"),
                                         "statusCode": spec.get("StatusCode"), "message": text,
                                         "sender": spec["Sender"]})}, region)
            return None, raw
        log.info("ses: receipt rule %s: %s is not run locally", rule["Name"], kind)
        return None, raw

    def _notify(self, topic: str, message: dict, region: str) -> None:
        targets.deliver(self.cloud, {"Arn": topic}, json.dumps(message), "ses", "")

    def _put_object(self, bucket: str, key: str, raw: bytes, region: str) -> None:
        """S3's in-process write (its notifications fire as for any upload), in the caller's
        transaction."""
        s3 = self.cloud.services.get("s3")
        if s3 is None:
            return
        try:
            s3.put_object_bytes(bucket, key, raw, "application/octet-stream", region, principal="ses.amazonaws.com")
        except ServiceError as exc:
            log.warning("ses: receipt S3 action: cannot write s3://%s/%s: %s", bucket, key, exc.message)


def _check_name(name: str) -> None:
    if not NAME.match(name or ""):
        raise errors.invalid("Name must contain only ASCII letters, numbers, underscores, dashes and periods, "
                             "start with a letter or number, and be at most 64 characters.")


def _rule(spec: dict) -> dict:
    _check_name(spec.get("Name", ""))
    rule = {"Name": spec["Name"], "Enabled": bool(spec.get("Enabled", False)),
            "TlsPolicy": spec.get("TlsPolicy") or "Optional", "Recipients": list(spec.get("Recipients") or []),
            "Actions": list(spec.get("Actions") or []), "ScanEnabled": bool(spec.get("ScanEnabled", False))}
    for action in rule["Actions"]:
        if len(action) != 1:
            raise errors.invalid("Each action must have exactly one type.")
    return rule


def _matches(rule: dict, rcpt: str) -> bool:
    wanted = rule.get("Recipients") or []
    if not wanted:
        return True
    rcpt = rcpt.lower()
    domain = rcpt.rpartition("@")[2]
    for w in wanted:
        w = w.lower()
        if w == rcpt or w == domain or (w.startswith(".") and domain.endswith(w)):
            return True
    return False


def _mail(p: dict, raw: bytes, rcpts: list[str]) -> dict:
    from unkai.mail import parse

    parsed = parse(raw)
    heads = {k.lower(): v for k, v in parsed["headers"]}
    return {"timestamp": _iso(p["at"]), "source": p["sender"], "messageId": p["message_id"], "destination": rcpts,
            "headersTruncated": False, "headers": [{"name": k, "value": v} for k, v in parsed["headers"]],
            "commonHeaders": {"returnPath": p["sender"], "from": [heads.get("from", p["sender"])],
                              "date": heads.get("date", ""), "to": parsed["to"],
                              "messageId": heads.get("message-id", ""), "subject": parsed["subject"]}}
