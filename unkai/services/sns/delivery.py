"""Deliveries that leave the process: HTTP/S POSTs and email, run as durable jobs that
were written in the publish's (or subscribe's) transaction.

An HTTP/S delivery is retried on 5xx, 100-101, timeouts (15 s) and connection errors
by the delivery policy in effect (the retry phases in attributes.py), for at most an
hour; a 4xx is a permanent failure. A notification that cannot be delivered goes to the
subscription's dead-letter queue, if it has one. Retries wait on unkai's clock.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote


from unkai.jobs import Retry
from unkai.services.sns import attributes as attrs_mod
from unkai.services.sns import messages
from unkai.localurls import own_port_hooks

if TYPE_CHECKING:
    from unkai.services.sns.service import SNS, Subscription

log = logging.getLogger("unkai.sns")

HTTP_TIMEOUT = 15.0
USER_AGENT = "Amazon Simple Notification Service Agent"


class Delivery:
    def __init__(self, sns: "SNS") -> None:
        self.sns = sns
        self.client: Any = None  # an httpx.AsyncClient, made at the first HTTP delivery (httpx is slow to import)

    def start(self) -> None:
        jobs = self.sns.cloud.jobs
        jobs.register("sns.http", self.http)
        jobs.register("sns.email", self.email)

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    def enqueue(self, sub: "Subscription", base: str, fields: dict[str, Any],
                msg: messages.Outgoing | None = None) -> None:
        """A job for one HTTP/S or email delivery, in the current transaction."""
        payload: dict[str, Any] = {"sub": sub.arn, "protocol": sub.protocol, "endpoint": sub.endpoint,
                                   "topic": sub.topic.arn, "base": base, "fields": fields,
                                   "t0": self.sns.clock.now()}
        if msg is not None:
            payload.update(attrs=msg.sns_attributes(), seq=msg.sequence, group=msg.group, dedup=msg.dedup)
        kind = "sns.http" if sub.protocol in ("http", "https") else "sns.email"
        self.sns.cloud.jobs.enqueue(kind, payload)

    # -- shared -----------------------------------------------------------------------

    def _current(self, payload: dict) -> "Subscription | None":
        """For a notification: the subscription, if it is still there and confirmed."""
        sub = self.sns.subscription(payload["sub"])
        return None if sub is None or sub.pending else sub

    def _document(self, payload: dict, sub: "Subscription | None", signature_version: str) -> str:
        """The JSON an HTTP/S endpoint or email-json subscriber receives."""
        fields, base = payload["fields"], payload["base"]
        signature = self.sns.sign(fields, signature_version)
        cert_url = self.sns.cert_url(base)
        if fields["Type"] != "Notification":
            return messages.confirmation(fields, signature_version, signature, cert_url)
        msg = messages.Outgoing(message=fields["Message"], subject=fields.get("Subject"),
                                attributes=messages.from_sns_attributes(payload.get("attrs") or {}),
                                message_id=fields["MessageId"], timestamp=fields["Timestamp"],
                                sequence=payload.get("seq"))
        head = messages.notification_head(msg, fields["TopicArn"], fields["Message"], signature_version, signature,
                                          cert_url)
        return messages.notification(head, self.sns.unsubscribe_url(base, payload["sub"]), msg)

    def _signature_version(self, payload: dict) -> str:
        topic = self.sns.topic_by_arn(payload["topic"])
        return topic.signature_version if topic is not None else "1"

    def _dead_letter(self, sub: "Subscription | None", payload: dict, body: str, counted: bool = False) -> None:
        """Hand a notification given up on to the subscription's DLQ (``counted``: its failed
        attempts are already in NumberOfNotificationsFailed)."""
        if sub is None or payload["fields"]["Type"] != "Notification":
            return
        attrs = messages.from_sns_attributes(payload.get("attrs") or {}) if sub.raw else None
        with self.sns.store.transaction():
            self.sns.dead_letter(sub, body, attrs or None, payload.get("group"), payload.get("dedup"),
                                 counted=counted)

    # -- HTTP/S -----------------------------------------------------------------------

    async def http(self, payload: dict, attempt: int) -> None:
        fields = payload["fields"]
        kind = fields["Type"]
        if kind == "Notification":
            sub = self._current(payload)
            if sub is None:
                return
            policy = sub.http_policy()
        else:
            sub = self.sns.subscription(payload["sub"])
            topic = self.sns.topic_by_arn(payload["topic"])
            policy = sub.http_policy() if sub is not None else attrs_mod.http_policy(
                topic.attributes.get("DeliveryPolicy") if topic else None, None, payload["protocol"])
        headers = {
            "x-amz-sns-message-type": kind,
            "x-amz-sns-message-id": fields["MessageId"],
            "x-amz-sns-topic-arn": fields["TopicArn"],
            "x-amz-sns-subscription-arn": payload["sub"],
            "Content-Type": attrs_mod.DEFAULT_CONTENT_TYPE,
            "User-Agent": USER_AGENT,
        }
        if kind == "Notification" and sub is not None and sub.raw:
            body = fields["Message"]
            headers["x-amz-sns-rawdelivery"] = "true"
        else:
            body = self._document(payload, sub, self._signature_version(payload))
        if kind == "Notification":
            headers["Content-Type"] = policy.content_type
        status = await self._post(payload["endpoint"], body, headers)
        delivered = status is not None and not (100 <= status <= 101 or status >= 400)
        if kind == "Notification" and sub is not None:
            # AWS: for HTTP/S, NumberOfNotificationsFailed counts every failed attempt, retries included
            self.sns.delivery_metric(payload["topic"], delivered=delivered)
        if status is not None and not (100 <= status <= 101 or status >= 500):
            if 400 <= status <= 499:
                log.info("sns: %s answered %s to %s; not retried", payload["endpoint"], status, kind)
                self._dead_letter(sub, payload, body, counted=True)
            return
        delays = policy.delays
        elapsed = self.sns.clock.now() - payload["t0"]
        if attempt < len(delays) and elapsed + delays[attempt] <= attrs_mod.MAX_RETRY_TIME:
            raise Retry(delays[attempt], f"{payload['endpoint']} answered {status}")
        log.info("sns: gave up delivering %s to %s after %d attempts", fields["MessageId"], payload["endpoint"],
                 attempt + 1)
        self._dead_letter(sub, payload, body, counted=True)

    async def _post(self, url: str, body: str, headers: dict[str, str]) -> int | None:
        """The endpoint's status, or None when it could not be reached in time."""
        import httpx

        if self.client is None:
            config = self.sns.cloud.config
            self.client = httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False, verify=False,
                                            event_hooks=own_port_hooks(lambda: config.endpoint))
        started = time.monotonic()
        try:
            response = await self.client.post(url, content=body.encode(), headers=headers)
        except (httpx.HTTPError, ValueError) as exc:
            log.info("sns: POST %s failed after %.1fs: %s", url, time.monotonic() - started, exc)
            return None
        return response.status_code

    # -- email ------------------------------------------------------------------------

    async def email(self, payload: dict, attempt: int) -> None:
        fields, base = payload["fields"], payload["base"]
        kind = fields["Type"]
        sub = None
        if kind == "Notification":
            sub = self._current(payload)
            if sub is None:
                return
        topic = self.sns.topic_by_arn(payload["topic"])  # confirmations always come from "AWS Notifications"
        sender = messages.email_from(topic.display_name if topic and kind == "Notification" else "")
        endpoint, html = payload["endpoint"], None
        if kind == "Notification":
            subject = fields.get("Subject") or messages.EMAIL_SUBJECT
        else:
            subject = messages.CONFIRM_SUBJECT
        if payload["protocol"] == "email-json":
            text = self._document(payload, sub, self._signature_version(payload))
        elif kind == "Notification":
            link = (f"{base}/_unkai/sns/unsubscribe.html?SubscriptionArn={payload['sub']}"
                    f"&Endpoint={quote(endpoint, safe='@')}")
            text = messages.email_text(fields["Message"], link)
        else:
            link = (f"{base}/_unkai/sns/confirmation.html?TopicArn={fields['TopicArn']}&Token={fields['Token']}"
                    f"&Endpoint={quote(endpoint, safe='@')}")
            text, html = messages.confirm_email(fields["TopicArn"], link)
        with self.sns.store.transaction():
            self.sns.cloud.mailbox.deliver(sender, [endpoint], subject, text, html)
            if kind == "Notification":
                self.sns.delivery_metric(payload["topic"], delivered=True)
