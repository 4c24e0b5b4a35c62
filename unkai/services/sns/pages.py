"""What SNS serves to people and verifiers under ``/_unkai/sns/``: the signing
certificate (SigningCertURL), and the confirm and unsubscribe links of the emails
(AWS's confirmation.html and unsubscribe.html)."""

from __future__ import annotations

import re
from html import escape
from typing import TYPE_CHECKING

from unkai.http import Request, Response
from unkai.protocol import ServiceError

if TYPE_CHECKING:
    from unkai.services.sns.service import SNS


def register(sns: "SNS") -> None:
    internal = sns.cloud.gateway.internal

    async def certificate(request: Request, m: re.Match) -> Response:
        name, pem = sns.signer.certificate()
        if m["name"] != name:
            return Response.text("no such certificate", 404)
        return Response(200, [("content-type", "application/x-pem-file")], pem)

    async def confirmation(request: Request, m: re.Match) -> Response:
        q = request.query_dict()
        try:
            with sns.store.transaction():
                arn = sns.confirm(q.get("TopicArn"), q.get("Token"))
        except ServiceError as exc:
            return _page("Subscription not confirmed", escape(exc.message), 400)
        return _page("Subscription confirmed!",
                     f"You have successfully subscribed.<br>Your subscription's id is:<br>{escape(arn)}<br>"
                     "If it was not your intention to subscribe, use the unsubscribe link in the notifications.")

    async def unsubscribe(request: Request, m: re.Match) -> Response:
        arn = request.query_dict().get("SubscriptionArn", "")
        with sns.store.transaction():
            sub = sns.subscription(arn)
            if sub is not None:
                sns.remove_subscription(sub, f"{request.scheme}://{request.host}")
        return _page("Subscription removed!",
                     f"Your subscription to the topic below has been deactivated.<br>{escape(arn)}")

    internal.route("GET", r"/_unkai/sns/(?P<name>SimpleNotificationService-[0-9a-f]+\.pem)", certificate, access="public")
    internal.route("GET", r"/_unkai/sns/confirmation\.html", confirmation, access="public")
    internal.route("GET", r"/_unkai/sns/unsubscribe\.html", unsubscribe, access="public")


def _page(title: str, body: str, status: int = 200) -> Response:
    html = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
            f"<body><h1>{escape(title)}</h1><p>{body}</p></body></html>")
    return Response.text(html, status, "text/html; charset=utf-8")
