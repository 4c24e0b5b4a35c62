"""One path for every message SES sends: SendEmail, SendRawEmail, the templated and bulk
sends of v1 and v2, and mail submitted over SMTP all become an ``Outgoing`` and go through
``Sender.send``.

``send`` checks what AWS checks, in AWS's order (addresses, the 50-recipient limit, the
account and configuration-set switches, verified identities and the sandbox, the daily
quota and the send rate, the size limit): everything that can fail the call happens before
it answers. Then, as SES accepts a message and delivers it asynchronously, a message built
from parts (no attachments, a size its parts bound below the limit) is accepted as one small
durable ``ses.send`` job in the caller's transaction (``unkai.jobs.Jobs.soon``) and
delivered by the loop callback that claims it right after the answer, before the loop reads
a later request, so a client reading the mailbox after the call finds it; after kill -9 the
jobs runner delivers it. A raw message (API or SMTP) or one with attachments is delivered in
the caller's transaction, as is any send off the event loop. Delivering is ``_complete``:
the message built and stored in the local mailbox (its raw MIME), the recipients' outcomes,
and one durable ``ses.feedback`` job that later publishes what happened to each recipient
(delivery, bounce, complaint...) to the identity's SNS topics and the configuration set's
event destinations, as AWS does a few seconds after the send. The send log the quotas read
is written before the answer either way."""

from __future__ import annotations

import json
import logging
import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from unkai.ids import uuid4
from unkai.mail import build_parsed, parse
from unkai.services.ses import errors, templates, tracking
from unkai.services.ses.identities import (DOMAIN_DELAY, Model, address_of, check_address, domain_of,
                                           is_simulator)

if TYPE_CHECKING:
    from unkai.cloud import Cloud
    from unkai.services.ses.contacts import Contacts

log = logging.getLogger(__name__)

V1_MAX_BYTES = 10 * 1024 * 1024
V2_MAX_BYTES = 40 * 1024 * 1024
MAX_RECIPIENTS = 50
SEND_JOB = "ses.send"  # a send accepted, delivered right after the answer (unkai.jobs.Jobs.soon)

# The EICAR anti-virus test string: a message carrying it is rejected after the call was
# accepted ("Reject" event, nothing delivered), as SES does with a message it finds a virus in.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

# The mailbox simulator's local parts and what each does (AWS's "Using the mailbox simulator").
SIMULATED = {"success": "delivery", "bounce": "bounce", "ooto": "ooto", "complaint": "complaint",
             "suppressionlist": "suppressionlist"}


@dataclass
class Outgoing:
    account: str
    region: str
    v2: bool
    source: str = ""  # the From as given ("Name <a@b>" or "a@b")
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    raw: bytes | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    config_set: str | None = None
    return_path: str | None = None
    feedback_to: str | None = None
    template: str | None = None  # its name, for events
    template_parts: tuple[str | None, str | None, str | None] | None = None  # subject, text, html
    template_data: dict[str, Any] | None = None
    source_ip: str = "127.0.0.1"
    caller: str = "root"
    via: str = "api"  # api | smtp
    list_management: dict[str, Any] | None = None  # v2's ListManagementOptions


def message_id(now: float) -> str:
    """An id shaped like SES's: ``0100`` + 12 hex digits of milliseconds, a UUID, ``-000000``."""
    return f"0100{int(now * 1000):012x}-{uuid4()}-000000"


class Sender:
    def __init__(self, cloud: "Cloud", model: Model, contacts: "Contacts") -> None:
        self.cloud = cloud
        self.model = model
        self.contacts = contacts
        self.store = cloud.store
        self.clock = cloud.clock

    def send(self, out: Outgoing) -> str:
        """Check, store and schedule the feedback of one message; its SES MessageId.
        Runs in the caller's transaction."""
        v2, now, model = out.v2, self.clock.now(), self.model
        limit = V2_MAX_BYTES if v2 else V1_MAX_BYTES
        mid = message_id(now)
        msg_header = f"<{mid}@email.amazonses.com>"
        from_raw: tuple[bytes, dict[str, Any]] | None = None
        if out.raw is not None:
            if len(out.raw) > limit:  # the message as the caller sent it, refused before it is parsed
                raise errors.too_large(limit, len(out.raw), v2)
            from_raw = self._from_raw(out, msg_header)
        if not out.source:
            raise errors.invalid("Missing required header 'From'." if out.raw is not None
                                 else "Missing final '@domain'", v2)
        sender = check_address(out.source, v2)
        for a in out.reply_to:
            check_address(a, v2)
        recipients = [check_address(a, v2) for a in out.to + out.cc + out.bcc]
        if not recipients:
            raise errors.invalid("Missing required header 'To'." if out.raw is not None
                                 else "Missing final '@domain'", v2)
        if len(recipients) > MAX_RECIPIENTS:
            raise errors.too_many_recipients(v2)
        account = model.account(out.account, out.region)
        if not account.sending:
            raise errors.account_paused(v2)
        # the sender's own identity and its domain's, each read once: they decide both whose
        # settings apply (the address's own when it has one) and whether it may send
        own, dom = model.own_and_domain(out.account, out.region, sender)
        identity = own or dom
        if not out.config_set and identity is not None and identity.config_set:
            out.config_set = identity.config_set  # v2's default configuration set of an identity
        if out.config_set:
            spec = model.config_set(out.account, out.region, out.config_set)
            if spec is None:
                raise errors.config_set_missing(out.config_set, v2)
            if (spec.get("SendingOptions") or {}).get("SendingEnabled") is False:
                raise errors.config_set_paused(out.config_set, v2)
        verified = any(i is not None and i.status(now) == "Success" for i in (own, dom))
        failed = [] if verified else [sender]
        if not account.production:
            failed += [r for r in dict.fromkeys(recipients)
                       if not is_simulator(r) and not model.verified_for(out.account, out.region, r, now)]
        if failed:
            raise errors.not_verified(failed, out.region)
        if identity is not None and identity.mail_from.get("MailFromDomain"):
            pending = now < float(identity.mail_from.get("SetAt", 0)) + DOMAIN_DELAY
            if pending and identity.mail_from.get("BehaviorOnMxFailure") == "RejectMessage":
                raise errors.mail_from_not_verified(identity.mail_from["MailFromDomain"])
        counted = sum(1 for r in recipients if not is_simulator(r))  # the simulator is free, as on AWS
        if counted:
            last_day, last_second = model.sent_in_windows(out.account, out.region, now)
            if last_day + counted > account.max24:
                raise errors.daily_quota()
            if last_second and last_second + counted > account.rate:
                raise errors.throttled(v2)
        opted_out: set[str] = set()
        if out.list_management:
            opted_out = {r.lower() for r in self.contacts.opted_out(out.account, out.region, out.list_management,
                                                                    list(dict.fromkeys(recipients)))}
        if out.template_parts is not None:
            try:
                self._render(out)
            except templates.MissingAttribute as exc:
                # AWS accepts the call and reports a Rendering Failure event instead of a mail
                model.record(out.account, out.region, now, "sent", counted)
                self._feedback(out, mid, sender, recipients, now, {}, failure=(
                    f"Attribute '{exc.name}' is not present in the rendering data.", out.template or ""))
                return mid
            except templates.BadTemplate as exc:
                model.record(out.account, out.region, now, "sent", counted)
                self._feedback(out, mid, sender, recipients, now, {}, failure=(str(exc), out.template or ""))
                return mid
        links: list[dict[str, Any]] = []
        tracked = self._tracked_types(out)
        if out.raw is None and (tracked or out.list_management):
            base = f"{self.cloud.config.endpoint}/_unkai/ses"
            unsubscribe = f"{base}/unsubscribe/{mid}" if out.list_management else None
            out.html, out.text, links = tracking.rewrite(
                out.html, out.text, f"{base}/open/{mid}" if "OPEN" in tracked else None,
                f"{base}/click/{mid}" if "CLICK" in tracked else None, unsubscribe)
            if unsubscribe:
                out.headers = out.headers + [("List-Unsubscribe", f"<{unsubscribe}>"),
                                             ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")]
        if out.raw is None and not out.attachments and _fits(out, limit):
            # Accepted now, delivered right after the answer (as SES delivers asynchronously):
            # one small durable job in this transaction, the message built and stored by
            # the loop callback that claims it (or by the jobs runner after a restart). Its
            # size is bounded by its parts' (_fits), so it cannot turn out too large then.
            model.record(out.account, out.region, now, "sent", counted)  # the quotas' log: read by the next send
            self.cloud.jobs.soon(SEND_JOB, mid, _job(out, mid, now, opted_out, links, tracked),
                                 lambda: self._complete(out, mid, now, sender, recipients, opted_out, counted,
                                                        links, tracked, identity))
            return mid
        if out.raw is None:  # built and parsed at once: the mailbox stores its parts, the feedback its headers
            raw, parsed = build_parsed(out.source, out.to, out.subject or "", out.text, out.html, cc=out.cc,
                                       reply_to=out.reply_to, headers=out.headers, attachments=out.attachments,
                                       date=now, msg_id=msg_header)
            if len(raw) > limit:
                raise errors.too_large(limit, len(raw), v2)
        else:
            raw, parsed = from_raw  # type: ignore[misc]
        model.record(out.account, out.region, now, "sent", counted)
        self._complete(out, mid, now, sender, recipients, opted_out, counted, links, tracked, identity, raw, parsed)
        return mid

    def run_job(self, p: dict[str, Any], attempt: int) -> None:
        """A ``ses.send`` job no loop callback claimed (unkai stopped between the answer and
        the delivery): the message delivered from the job's parts, in the claim's transaction."""
        out = outgoing_of(p)
        sender = check_address(out.source, out.v2)
        recipients = [check_address(a, out.v2) for a in out.to + out.cc + out.bcc]
        own, dom = self.model.own_and_domain(out.account, out.region, sender)
        self._complete(out, p["t"], p["n"], sender, recipients, set(p.get("x") or ()),
                       sum(1 for r in recipients if not is_simulator(r)), p.get("l") or [], set(p.get("k") or ()),
                       own or dom)

    def _complete(self, out: Outgoing, mid: str, now: float, sender: str, recipients: list[str],
                  opted_out: set[str], counted: int, links: list[dict[str, Any]], tracked: set[str],
                  identity: Any, raw: bytes | None = None, parsed: dict[str, Any] | None = None) -> None:
        """What follows an accepted send, in the current transaction: the message built (when
        not yet), each recipient's outcome, the mail in the mailbox, and the feedback."""
        model = self.model
        if raw is None:
            raw, parsed = build_parsed(out.source, out.to, out.subject or "", out.text, out.html, cc=out.cc,
                                       reply_to=out.reply_to, headers=out.headers, attachments=out.attachments,
                                       date=now, msg_id=f"<{mid}@email.amazonses.com>")
        outcomes: dict[str, str] = {}
        reasons = model.account(out.account, out.region).suppressed_reasons
        # what SES's virus scan finds in tests: the EICAR file in the message or an attachment
        virus = EICAR in raw or any(EICAR in data for _, _, data in out.attachments)
        for r in dict.fromkeys(recipients):
            if virus:
                outcomes[r] = "reject"
                continue
            if r.lower() in opted_out:
                outcomes[r] = "unsubscribed"
                continue
            if is_simulator(r):
                outcomes[r] = SIMULATED.get(r.partition("@")[0].lower().split("+")[0], "delivery")
                continue
            row = model.suppressed(out.account, out.region, r)
            outcomes[r] = "suppressed" if row is not None and row[1] in reasons else "delivery"
        delivered = {r for r, kind in outcomes.items() if kind not in ("suppressed", "unsubscribed", "reject")}
        if parsed is None:
            parsed = parse(raw)  # once: the mailbox stores its parts, the feedback names its headers
        if delivered:
            lowered = _lower(delivered)
            self.cloud.mailbox.deliver(
                out.source, [a for a in out.to if address_of(a).lower() in lowered],
                out.subject or "", raw=raw, origin="ses", message_id=mid,
                cc=[a for a in out.cc if address_of(a).lower() in lowered],
                bcc=[a for a in out.bcc if address_of(a).lower() in lowered], parsed=parsed)
        if virus:
            model.record(out.account, out.region, now, "reject", counted)
        if tracked or out.list_management:
            payload = self._feedback(out, mid, sender, recipients, now, outcomes, parsed=parsed, identity=identity)
            first = address_of(out.to[0]) if out.to else recipients[0]
            self.store.execute("INSERT OR REPLACE INTO ses_tracked(message_id, payload, created) VALUES(?,?,?)",
                               (mid, json.dumps({"feedback": payload, "links": links, "list": out.list_management,
                                                 "recipient": first}), now))
        else:
            self._feedback(out, mid, sender, recipients, now, outcomes, parsed=parsed, identity=identity,
                           payload_needed=False)
        self.cloud.feed.publish("ses.send", message_id=mid, source=sender, destination=recipients,
                                subject=out.subject, region=out.region)

    # -- pieces -------------------------------------------------------------------------

    def _from_raw(self, out: Outgoing, msg_header: str) -> tuple[bytes, dict[str, Any]]:
        """Fill sender and recipients from a raw message's headers, as SES does when the
        call leaves them out; malformed MIME is SES's InvalidParameterValue. The message as
        sent (with SES's Message-ID when it had none) and its parse, made once."""
        raw = out.raw or b""
        head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        if not raw.strip() or not re.match(rb"^[!-9;-~]+:", head):
            raise errors.invalid("Illegal header line in the message: no header before the body.", out.v2)
        raw = _with_message_id(raw, msg_header)
        try:
            parsed = parse(raw)
        except Exception as exc:  # the standard library parser gave up: SES refuses it too
            raise errors.invalid(f"Malformed MIME message: {exc}", out.v2) from None
        if not out.source:
            out.source = parsed["from"]
        if not (out.to or out.cc or out.bcc):
            out.to = parsed["to"] + parsed["cc"]
            bcc = [v for k, v in parsed["headers"] if k.lower() == "bcc"]
            if bcc:
                from email.utils import getaddresses

                out.bcc = [a for _, a in getaddresses(bcc) if a]
        out.subject = out.subject or parsed["subject"]
        return raw, parsed

    def _render(self, out: Outgoing) -> None:
        subject, text, html = out.template_parts  # type: ignore[misc]
        data = out.template_data or {}
        out.subject = templates.render(subject, data) or ""
        out.text = templates.render(text, data)
        out.html = templates.render(html, data)

    def _feedback(self, out: Outgoing, mid: str, sender: str, recipients: list[str], now: float,
                  outcomes: dict[str, str], parsed: dict[str, Any] | None = None,
                  failure: tuple[str, str] | None = None, identity: Any = False,
                  payload_needed: bool = True) -> dict[str, Any] | None:
        """Enqueue the ``ses.feedback`` job that reports what happened, and return its
        payload (None when the caller needs no payload and no job is needed)."""
        if identity is False:  # not looked up by the caller yet
            identity = self.model.sending_identity(out.account, out.region, sender)
        if (failure is None and not out.config_set and outcomes and all(k == "delivery" for k in outcomes.values())
                and not (identity and identity.notify.get("Delivery"))):
            # Delivered to every recipient, with no Delivery topic and no configuration set:
            # the feedback would only count Send and Delivery, so count them now (after the
            # commit, in memory) and spare the send a durable job and its transaction.
            cw = self.cloud.services.get("cloudwatch")
            if cw is not None:
                cw.count(out.account, out.region, "AWS/SES", "Send", None, 1.0)
                cw.count(out.account, out.region, "AWS/SES", "Delivery", None, float(len(outcomes)))
            if not payload_needed:
                return None
            enqueue = False
        else:
            enqueue = True
        headers: list[dict[str, str]] = []
        common: dict[str, Any] = {"from": [out.source], "to": out.to, "messageId": mid,
                                  "subject": out.subject or ""}
        if parsed is not None:
            headers = [{"name": k, "value": v} for k, v in parsed["headers"]]
            heads = {k.lower(): v for k, v in parsed["headers"]}
            common = {"from": [heads.get("from", out.source)], "date": heads.get("date", ""),
                      "to": parsed["to"], "messageId": mid, "subject": parsed["subject"]}
            if parsed["cc"]:
                common["cc"] = parsed["cc"]
            if out.reply_to:
                common["replyTo"] = out.reply_to
        mail = {"timestamp": _iso(now), "source": out.source,
                "sourceArn": (identity.arn if identity else
                              f"arn:aws:ses:{out.region}:{out.account}:identity/{sender}"),
                "sourceIp": out.source_ip, "callerIdentity": out.caller, "sendingAccountId": out.account,
                "messageId": mid, "destination": recipients, "headersTruncated": False, "headers": headers,
                "commonHeaders": common}
        tags = {k: [v] for k, v in out.tags.items()}
        if out.config_set:
            tags["ses:configuration-set"] = [out.config_set]
        tags.update({"ses:source-ip": [out.source_ip], "ses:from-domain": [domain_of(sender)],
                     "ses:caller-identity": [out.caller], "ses:operation": ["SendEmail"]})
        payload = {"account": out.account, "region": out.region, "mail": mail, "tags": tags,
                   "config_set": out.config_set, "sender": sender,
                   "feedback_to": out.feedback_to or out.return_path or sender, "outcomes": outcomes,
                   "subject": out.subject or "", "at": now, "failure": list(failure) if failure else None}
        if enqueue:
            self.cloud.jobs.enqueue("ses.feedback", payload)
        return payload

    def _tracked_types(self, out: Outgoing) -> set[str]:
        """OPEN and/or CLICK when the configuration set has an enabled destination for them."""
        if not out.config_set:
            return set()
        return {t for d in self.model.destinations(out.account, out.region, out.config_set) if d.get("Enabled")
                for t in d.get("MatchingEventTypes") or [] if t in ("OPEN", "CLICK")}


def _fits(out: Outgoing, limit: int) -> bool:
    """Whether the message built from ``out``'s parts is surely within ``limit`` bytes: a
    character takes at most 4 bytes of UTF-8, base64 makes those 5.5 with its line breaks,
    an encoded word's delimiters at most 8 (and a bare LF becomes CRLF: 2); the MIME
    headers, boundaries, Date and Message-ID take far less than 4096 bytes."""
    chars = len(out.source) + len(out.subject or "") + len(out.text or "") + len(out.html or "")
    for a in out.to + out.cc + out.reply_to:
        chars += len(a) + 2
    for k, v in out.headers:
        chars += len(k) + len(v) + 4
    return 10 * chars + 4096 <= limit


_OPTIONAL = ("cc", "bcc", "reply_to", "headers", "tags", "config_set", "return_path", "feedback_to", "template",
             "list_management")  # in a job only when set: each element costs its encoding on the send's path


def _job(out: Outgoing, mid: str, now: float, opted_out: set[str], links: list[dict[str, Any]],
         tracked: set[str]) -> dict[str, Any]:
    """A ``ses.send`` job's payload: what delivering the message needs, flat and without
    what is unset (cheap to encode; the sender and recipients are checked again from it)."""
    job: dict[str, Any] = {"t": mid, "n": now, "o": [out.account, out.region, out.v2, out.source, out.to,
                                                     out.subject, out.text, out.html, out.source_ip, out.caller]}
    extra = {name: value for name in _OPTIONAL if (value := getattr(out, name))}
    if out.via != "api":
        extra["via"] = out.via
    if extra:
        job["e"] = extra
    if opted_out:
        job["x"] = sorted(opted_out)
    if links:
        job["l"] = links
    if tracked:
        job["k"] = sorted(tracked)
    return job


def outgoing_of(job: dict[str, Any]) -> Outgoing:
    """The ``Outgoing`` a ``ses.send`` job holds (``_job``'s inverse, JSON in between)."""
    account, region, v2, source, to, subject, text, html, source_ip, caller = job["o"]
    out = Outgoing(account, region, v2, source=source, to=to, subject=subject, text=text, html=html,
                   source_ip=source_ip, caller=caller, **(job.get("e") or {}))
    out.headers = [(k, v) for k, v in out.headers]
    return out


def _lower(values: set[str]) -> set[str]:
    return {v.lower() for v in values}


def _with_message_id(raw: bytes, header: str) -> bytes:
    """SES gives every message its own Message-ID; a raw message keeps the rest byte for byte."""
    sep = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
    head_end = raw.find(sep + sep)
    head = raw[:head_end] if head_end >= 0 else raw
    if re.search(rb"(?im)^message-id:", head):
        return raw
    return b"Message-ID: " + header.encode() + sep + raw


def _iso(t: float) -> str:
    from datetime import datetime, timezone

    d = datetime.fromtimestamp(t, timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def feedback_id(now: float) -> str:
    return f"0100{int(now * 1000):012x}-{secrets.token_hex(4)}-{uuid.uuid4()}-000000"
