"""Invitations and verification codes, "sent" to the local mailbox.

AWS emails (or texts) temporary passwords and codes; unkai composes the same message
from the pool's templates (or the CustomMessage trigger's answer) and hands it to
``cloud.mailbox.deliver`` in the transaction of the change that caused it, so
``unkai mail``, ``GET /_unkai/mail`` and tests read the code. A user with only a phone
number gets the SMS text as a mail addressed to that number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from unkai.services.cognito import triggers
from unkai.services.cognito.pools import Pool

if TYPE_CHECKING:
    from unkai.cloud import Cloud

SENDER = "no-reply@verificationemail.com"


def mask(value: str, medium: str) -> str:
    """How AWS shows a destination in CodeDeliveryDetails (``a***@e***``, ``+*******0123``)."""
    if medium == "EMAIL":
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain[:1]}***"
    return "+" + "*" * max(len(value) - 5, 0) + value[-4:]


def destination(attributes: dict[str, str], prefer: list[str] | None = None) -> tuple[str, str, str] | None:
    """(address, medium, attribute) a code goes to, or None when the user has neither."""
    order = prefer or ["email", "phone_number"]
    for attr in order:
        if attributes.get(attr):
            return attributes[attr], "EMAIL" if attr == "email" else "SMS", attr
    return None


def details(dest: tuple[str, str, str] | None) -> dict[str, str]:
    if dest is None:
        return {}
    return {"Destination": mask(dest[0], dest[1]), "DeliveryMedium": dest[1], "AttributeName": dest[2]}


def _templates(pool: Pool, kind: str) -> tuple[str, str, str]:
    """(email subject, email message, sms message) with {####} and {username} placeholders."""
    c = pool.config
    if kind == "AdminCreateUser":
        t = (c.get("AdminCreateUserConfig") or {}).get("InviteMessageTemplate") or {}
        return (t.get("EmailSubject") or "Your temporary password",
                t.get("EmailMessage") or "Your username is {username} and temporary password is {####}.",
                t.get("SMSMessage") or "Your username is {username} and temporary password is {####}.")
    t = c.get("VerificationMessageTemplate") or {}
    return (t.get("EmailSubject") or c.get("EmailVerificationSubject") or "Your verification code",
            t.get("EmailMessage") or c.get("EmailVerificationMessage") or "Your verification code is {####}.",
            t.get("SmsMessage") or c.get("SmsVerificationMessage") or "Your verification code is {####}.")


async def compose(cloud: "Cloud", pool: Pool, source: str, username: str, attributes: dict[str, str], code: str,
                  client_id: str | None = None, metadata: dict | None = None) -> tuple[str, str, str]:
    """(subject, email text, sms text) for one code, after the CustomMessage trigger."""
    kind = source.split("_", 1)[1]
    subject, email, sms = _templates(pool, kind)
    request: dict[str, Any] = {"userAttributes": {**attributes}, "codeParameter": "{####}",
                               "linkParameter": "{##Click Here##}", "clientMetadata": metadata or {}}
    if kind == "AdminCreateUser":
        request["usernameParameter"] = "{username}"
    answer = await triggers.run(cloud, pool, "CustomMessage", source, username, request,
                                {"smsMessage": None, "emailMessage": None, "emailSubject": None}, client_id)
    if answer:
        subject = answer.get("emailSubject") or subject
        email = answer.get("emailMessage") or email
        sms = answer.get("smsMessage") or sms

    return _fill((subject, email, sms), code, username)


def default(pool: Pool, kind: str, username: str, code: str) -> tuple[str, str, str]:
    """The pool's own message, without the CustomMessage trigger (template-created users)."""
    return _fill(_templates(pool, kind), code, username)


def _fill(texts: tuple[str, str, str], code: str, username: str) -> tuple[str, str, str]:
    subject, email, sms = (t.replace("{####}", code).replace("{username}", username) for t in texts)
    return subject, email, sms


def deliver(cloud: "Cloud", pool: Pool, dest: tuple[str, str, str] | None, message: tuple[str, str, str]) -> None:
    """Hand a composed message to the mailbox (inside the caller's transaction)."""
    if dest is None:
        return
    subject, email, sms = message
    source = ((pool.config.get("EmailConfiguration") or {}).get("From")) or SENDER
    if dest[1] == "EMAIL":
        cloud.mailbox.deliver(source, [dest[0]], subject, email)
    else:
        cloud.mailbox.deliver(source, [dest[0]], "SMS message", sms)
    cloud.store.after_commit(lambda: cloud.feed.publish("cognito.message", pool=pool.id, medium=dest[1],
                                                        to=dest[0], subject=subject))
