"""What SES serves to people under ``/_unkai/ses/``: the link in the verification mail
(AWS's email-verification page), which verifies the address as clicking it does on AWS."""

from __future__ import annotations

import re
from html import escape
from typing import TYPE_CHECKING

from unkai.http import Request, Response

if TYPE_CHECKING:
    from unkai.services.ses.service import SES


def register(ses: "SES") -> None:
    async def verify(request: Request, m: re.Match) -> Response:
        token = request.query_dict().get("Context", "")
        with ses.store.transaction():
            ident = ses._model.by_token(token) if token else None
            if ident is None or ident.kind != "EmailAddress":
                return _page("Verification failed", "This verification link is not valid.", 400)
            status = ident.status(ses.clock.now())
            if status == "Failed":
                return _page("Verification failed", "This verification link has expired. Request a new "
                             "verification email.", 400)
            if status != "Success":
                ses._model.update(ident, verified_at=ses.clock.now())
                ses.cloud.feed.publish("ses.verified", identity=ident.identity, region=ident.region)
        return _page("Congratulations!", "You have successfully verified an email address. You can now start "
                     f"sending email from this address.<br>{escape(ident.identity)} ({escape(ident.region)})")

    # it stands for AWS's public email-verification page: anyone holding the link may follow it
    ses.cloud.gateway.internal.route("GET", r"/_unkai/ses/verify", verify, access="public")


def _page(title: str, body: str, status: int = 200) -> Response:
    html = (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
            f"<body><h1>{escape(title)}</h1><p>{body}</p></body></html>")
    return Response(status, [("content-type", "text/html; charset=utf-8")], html.encode())
