"""The local mailbox: every email any service sends (SNS email subscriptions, SES) lands
here as a real RFC 5322 message.

The raw MIME is the record: it is stored in the caller's transaction (so a mail is never
lost once the send that made it answered, even on ``kill -9``), with the parts a reader
wants parsed out once at delivery (text, HTML, attachments, headers). The store is its
only copy: ``GET /_unkai/mail`` lists messages (long-polls with ``?after=SEQ&wait=S``),
``/_unkai/mail/{id}`` shows one (``.eml`` raw, ``.html`` its HTML body,
``/attachments/{n}`` a part); ``unkai mail`` and ``unkai.testing`` read them there. With
``UNKAI_SMTP_RELAY=host:port`` every message is also relayed to that SMTP server (a
Mailpit or MailHog the user already runs), best effort, after the commit.
"""

from __future__ import annotations

import asyncio
import functools
import html as htmllib
import json
import logging
import os
import re
import sys
from datetime import datetime, timezone
from email.utils import format_datetime, getaddresses, make_msgid
from typing import TYPE_CHECKING, Any

from unkai.ids import uuid4
from unkai.protocol.values import iso8601

if TYPE_CHECKING:
    from unkai.cloud import Cloud

log = logging.getLogger(__name__)

MIGRATIONS = [
    """
    CREATE TABLE mail_messages (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        sent_at REAL NOT NULL,
        sender TEXT NOT NULL,
        recipients TEXT NOT NULL,
        subject TEXT NOT NULL,
        text TEXT,
        html TEXT,
        raw BLOB NOT NULL
    );
    """,
    # parsed once at delivery: headers and attachments (JSON), who sent it and its id there
    """
    ALTER TABLE mail_messages ADD COLUMN headers TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE mail_messages ADD COLUMN attachments TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE mail_messages ADD COLUMN origin TEXT NOT NULL DEFAULT '';
    ALTER TABLE mail_messages ADD COLUMN message_id TEXT;
    CREATE INDEX mail_messages_message_id ON mail_messages(message_id);
    """,
]

SIGNAL = ("mail",)


class Mailbox:
    def __init__(self, cloud: "Cloud") -> None:
        self.cloud = cloud
        self.store = cloud.store
        self.store.migrate("mail", MIGRATIONS)
        self.relay = os.environ.get("UNKAI_SMTP_RELAY", "")

    def deliver(
        self,
        sender: str,
        to: list[str],
        subject: str,
        text: str | None = None,
        html: str | None = None,
        *,
        cc: list[str] | None = None,
        bcc: list[str] | None = None,
        reply_to: list[str] | None = None,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        raw: bytes | None = None,
        attachments: list[tuple[str, str, bytes]] | None = None,
        origin: str = "",
        message_id: str | None = None,
        parsed: dict[str, Any] | None = None,
    ) -> str:
        """Store one message (in the caller's transaction) and return its mailbox id.

        Either ``raw`` (a MIME message, kept byte for byte) or the parts to build one from.
        ``to``/``cc``/``bcc`` are the envelope recipients (Bcc never appears in headers).
        ``attachments`` are ``(filename, content_type, data)``. ``origin`` names the sending
        service (``ses``, ``sns``) and ``message_id`` its id for the message there.
        ``parsed`` is ``parse(raw)`` when the caller already has it (a send parses once)."""
        mail_id = uuid4()
        now = self.cloud.clock.now()
        if raw is None:
            raw = build_message(sender, to, subject, text, html, cc=cc, reply_to=reply_to, headers=headers,
                                attachments=attachments, date=now,
                                msg_id=make_msgid(idstring=mail_id, domain="unkai.local"))
        if parsed is None:
            parsed = parse(raw)
        sender = sender or parsed["from"]
        subject = subject or parsed["subject"]
        if not to and not cc and not bcc:
            to = parsed["to"] + parsed["cc"]
        recipients = list(to) + list(cc or []) + list(bcc or [])
        self.store.execute(
            "INSERT INTO mail_messages(id, sent_at, sender, recipients, subject, text, html, raw, headers, "
            "attachments, origin, message_id) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (mail_id, now, sender, json.dumps(recipients), subject, parsed["text"], parsed["html"], raw,
             json.dumps(parsed["headers"]), json.dumps(parsed["attachments"]) if parsed["attachments"] else "[]",
             origin, message_id),
        )
        self.store.after_commit(lambda: self._committed(mail_id, raw, sender, recipients, subject))
        return mail_id

    def _committed(self, mail_id: str, raw: bytes, sender: str, recipients: list[str], subject: str) -> None:
        self.cloud.signals.notify(SIGNAL)
        self.cloud.feed.publish("mail.delivered", mail_id=mail_id, sender=sender, to=recipients, subject=subject)
        if self.relay:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop: a CLI command's own cloud, which relays nothing
                return
            loop.run_in_executor(None, self._relay, sender, recipients, raw)

    def _relay(self, sender: str, recipients: list[str], raw: bytes) -> None:
        import smtplib

        host, _, port = self.relay.rpartition(":") if ":" in self.relay else (self.relay, "", "25")
        envelope_from = getaddresses([sender])[0][1] if sender else ""
        try:
            with smtplib.SMTP(host or "127.0.0.1", int(port or 25), timeout=10) as smtp:
                smtp.sendmail(envelope_from, [getaddresses([r])[0][1] or r for r in recipients], raw)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("mail: relaying to %s failed: %s", self.relay, exc)

    _SUMMARY = "seq, id, sender, recipients, subject, text, html, sent_at, attachments, origin, message_id"

    def list(self, to: str | None = None, after: int = 0) -> list[dict[str, Any]]:
        """Messages in arrival order (those newer than ``seq`` ``after``; to ``to`` when given)."""
        rows = self.store.all(f"SELECT {self._SUMMARY} FROM mail_messages WHERE seq > ? ORDER BY seq", (after,))
        out = []
        for row in rows:
            msg = _summary(row)
            if to and not any(to.lower() in r.lower() for r in msg["to"]):
                continue
            out.append(msg)
        return out

    def last_seq(self) -> int:
        row = self.store.one("SELECT MAX(seq) FROM mail_messages")
        return (row[0] or 0) if row else 0

    def get(self, mail_id: str) -> dict[str, Any] | None:
        """One message with everything parsed: headers, cc, attachments' descriptions."""
        row = self.store.one(f"SELECT {self._SUMMARY}, headers FROM mail_messages WHERE id=? OR message_id=?",
                             (mail_id, mail_id))
        if row is None:
            return None
        msg = _summary(row[:-1])
        msg["headers"] = json.loads(row[-1])
        heads = {}
        for name, value in msg["headers"]:
            heads.setdefault(name.lower(), value)
        msg["header_to"] = [a for _, a in getaddresses([heads.get("to", "")]) if a]
        msg["cc"] = [a for _, a in getaddresses([heads.get("cc", "")]) if a]
        msg["reply_to"] = [a for _, a in getaddresses([heads.get("reply-to", "")]) if a]
        return msg

    def raw(self, mail_id: str) -> bytes | None:
        row = self.store.one("SELECT raw FROM mail_messages WHERE id=? OR message_id=?", (mail_id, mail_id))
        return row[0] if row else None

    def attachment(self, mail_id: str, index: int) -> tuple[str, str, bytes] | None:
        """The ``index``-th attachment (as listed): its filename, content type and bytes."""
        raw = self.raw(mail_id)
        if raw is None:
            return None
        from email import message_from_bytes
        from email.policy import compat32

        parts = _attachment_parts(message_from_bytes(raw, policy=compat32))
        if not 0 <= index < len(parts):
            return None
        part = parts[index]
        return (_decoded(part.get_filename() or f"part-{index}"), part.get_content_type(),
                part.get_payload(decode=True) or b"")

    def clear(self) -> int:
        return self.store.execute("DELETE FROM mail_messages").rowcount


def build_message(sender: str, to: list[str], subject: str, text: str | None, html: str | None, *,
                  cc: list[str] | None = None, reply_to: list[str] | None = None,
                  headers: dict[str, str] | list[tuple[str, str]] | None = None,
                  attachments: list[tuple[str, str, bytes]] | None = None, date: float | None = None,
                  msg_id: str | None = None) -> bytes:
    """A MIME message from its parts, as a mail client would build it (UTF-8 where needed).
    Built with the compat32 classes: several times faster than ``EmailMessage``, which
    matters on every send."""
    if not attachments:
        fast = _build_simple(sender, to, subject, text, html, cc, reply_to, headers, date, msg_id)
        if fast is not None:
            return fast[0]
    return _build_mime(sender, to, subject, text, html, cc=cc, reply_to=reply_to, headers=headers,
                       attachments=attachments, date=date, msg_id=msg_id)


def build_parsed(sender: str, to: list[str], subject: str, text: str | None, html: str | None, *,
                 cc: list[str] | None = None, reply_to: list[str] | None = None,
                 headers: dict[str, str] | list[tuple[str, str]] | None = None,
                 attachments: list[tuple[str, str, bytes]] | None = None, date: float | None = None,
                 msg_id: str | None = None) -> tuple[bytes, dict[str, Any]]:
    """``build_message`` and ``parse`` of its result in one go: what a send needs. A message
    without attachments whose headers need no folding is written by hand (the same bytes
    the ``email`` package writes, a tenth of the CPU) and its parse is known without
    reading it back; anything else goes through the ``email`` package both ways."""
    if not attachments:
        fast = _build_simple(sender, to, subject, text, html, cc, reply_to, headers, date, msg_id)
        if fast is not None:
            return fast
    raw = _build_mime(sender, to, subject, text, html, cc=cc, reply_to=reply_to, headers=headers,
                      attachments=attachments, date=date, msg_id=msg_id)
    return raw, parse(raw)


_NEWLINES = re.compile(r"\r\n|\r|\n")
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.+_-]+@[A-Za-z0-9.-]+")


def _build_simple(sender: str, to: list[str], subject: str, text: str | None, html: str | None,
                  cc: list[str] | None, reply_to: list[str] | None,
                  headers: dict[str, str] | list[tuple[str, str]] | None, date: float | None,
                  msg_id: str | None) -> tuple[bytes, dict[str, Any]] | None:
    """The common message (text and/or HTML, no attachments) written directly, byte for
    byte what ``_build_mime`` writes, with its ``parse``; None when a header would need
    folding or re-spacing (the ``email`` package then does it)."""
    heads = _envelope_heads(sender, to, subject, cc, reply_to, headers, date, msg_id)
    unfolded = list(heads)  # the values as parse() reads them back (folding undone)
    for i, (name, value) in enumerate(heads):
        if "\n" in value or "\r" in value or "  " in value or "\t" in value or value != value.strip():
            return None  # the email package re-spaces it
        if len(name) + len(value) > 76:
            if " " in value or ";" in value or "," in value:
                return None  # the email package would fold it at one of these
            heads[i] = (name, "\r\n " + value)  # one long word (a Message-ID, a URL) goes on its own line
    heads.append(("MIME-Version", "1.0"))
    unfolded.append(("MIME-Version", "1.0"))
    parsed_text = parsed_html = None
    if html is not None and text is not None:
        import random

        (text_heads, text_wire, parsed_text), (html_heads, html_wire, parsed_html) = (
            _simple_body(text, "plain"), _simple_body(html, "html"))
        boundary = "=" * 15 + f"{random.randrange(sys.maxsize):019d}" + "=="
        if boundary in text_wire or boundary in html_wire:
            return None
        heads.append(("Content-Type", f'multipart/alternative;\r\n boundary="{boundary}"'))
        unfolded.append(("Content-Type", f'multipart/alternative; boundary="{boundary}"'))
        wire = (f"{_head_lines(heads)}\r\n--{boundary}\r\n{_head_lines(text_heads)}\r\n{text_wire}\r\n"
                f"--{boundary}\r\n{_head_lines(html_heads)}\r\n{html_wire}\r\n--{boundary}--\r\n")
    else:
        if html is not None:
            part_heads, part_wire, parsed_html = _simple_body(html, "html")
        else:
            part_heads, part_wire, parsed_text = _simple_body(text or "", "plain")
        heads += part_heads
        unfolded += part_heads
        wire = f"{_head_lines(heads)}\r\n{part_wire}"
    raw = wire.encode("ascii")
    # as parse() reads them: unfolded (above), encoded words decoded (only they need it)
    headers_out = [[k, _decoded(v) if "=?" in v else v] for k, v in unfolded]
    found: dict[str, str] = {}
    for k, v in headers_out:
        found[k.lower()] = v
    return raw, {"from": found.get("from", ""), "to": _parsed_addresses(found.get("to")),
                 "cc": _parsed_addresses(found.get("cc")), "subject": found.get("subject", ""),
                 "text": parsed_text, "html": parsed_html, "headers": headers_out, "attachments": []}


def _simple_body(content: str, subtype: str) -> tuple[list[tuple[str, str]], str, str]:
    """A text part's headers, its wire form and what ``parse`` reads back from it."""
    if content.isascii():
        heads = [("Content-Type", f'text/{subtype}; charset="us-ascii"'), ("Content-Transfer-Encoding", "7bit")]
        if "\r" not in content:
            return heads, content.replace("\n", "\r\n") if "\n" in content else content, content
        return heads, _NEWLINES.sub("\r\n", content), _NEWLINES.sub("\n", content)
    from email.base64mime import body_encode

    return ([("Content-Type", f'text/{subtype}; charset="utf-8"'), ("Content-Transfer-Encoding", "base64")],
            body_encode(content.encode("utf-8"), 76, "\r\n"), content.replace("\r\n", "\n"))


def _head_lines(items: list[tuple[str, str]]) -> str:
    return "".join([f"{k}: {v}\r\n" for k, v in items])


def _parsed_addresses(value: str | None) -> list[str]:
    """What ``getaddresses`` reads from a header the send wrote."""
    if not value:
        return []
    plain = value.split(", ")
    for a in plain:
        if not _PLAIN_ADDRESS.fullmatch(a):
            return [a for _, a in getaddresses([value]) if a]
    return plain  # bare addresses: what getaddresses() gives, without its cost


@functools.lru_cache(maxsize=4)  # the sends of one second share their Date
def _date_header(second: int) -> str:
    return format_datetime(datetime.fromtimestamp(second, timezone.utc))


def _envelope_heads(sender: str, to: list[str], subject: str, cc: list[str] | None, reply_to: list[str] | None,
                    headers: dict[str, str] | list[tuple[str, str]] | None, date: float | None,
                    msg_id: str | None) -> list[tuple[str, str]]:
    heads: list[tuple[str, str]] = []
    if sender:
        heads.append(("From", _addresses([sender])))
    if to:
        heads.append(("To", _addresses(to)))
    if cc:
        heads.append(("Cc", _addresses(cc)))
    if reply_to:
        heads.append(("Reply-To", _addresses(reply_to)))
    heads.append(("Subject", _header(subject)))
    if date is not None:
        heads.append(("Date", _date_header(int(date))))
    if msg_id:
        heads.append(("Message-ID", msg_id))
    for k, v in (headers.items() if isinstance(headers, dict) else headers or []):
        heads.append((k, _header(v)))
    return heads


def _build_mime(sender: str, to: list[str], subject: str, text: str | None, html: str | None, *,
                cc: list[str] | None = None, reply_to: list[str] | None = None,
                headers: dict[str, str] | list[tuple[str, str]] | None = None,
                attachments: list[tuple[str, str, bytes]] | None = None, date: float | None = None,
                msg_id: str | None = None) -> bytes:
    """``build_message`` through the ``email`` package: attachments, folded headers."""
    from email.mime.base import MIMEBase
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    def body(content: str, subtype: str) -> MIMEText:
        charset = "us-ascii" if content.isascii() else "utf-8"
        return MIMEText(content, subtype, charset)

    if html is not None and text is not None:
        main: Any = MIMEMultipart("alternative")
        main.attach(body(text, "plain"))
        main.attach(body(html, "html"))
    elif html is not None:
        main = body(html, "html")
    else:
        main = body(text or "", "plain")
    if attachments:
        outer: Any = MIMEMultipart("mixed")
        outer.attach(main)
        for filename, ctype, data in attachments:
            maintype, _, subtype = (ctype or "application/octet-stream").partition("/")
            part = MIMEBase(maintype, subtype or "octet-stream")
            part.set_payload(data)
            from email import encoders

            encoders.encode_base64(part)
            part.add_header("Content-Disposition", "attachment", filename=_header(filename))
            outer.attach(part)
        main = outer
    heads = _envelope_heads(sender, to, subject, cc, reply_to, headers, date, msg_id)
    for part in main.walk():
        if part is not main:
            del part["MIME-Version"]  # only the message itself says it
    # the envelope headers first, as mail clients write them; MIME-Version and the
    # content headers the MIME classes made follow
    existing = list(main.items())
    for k in list(main.keys()):
        del main[k]
    for k, v in heads + [("MIME-Version", "1.0")] + [(k, v) for k, v in existing if k != "MIME-Version"]:
        main[k] = v
    # CRLF, as every message on the wire (RFC 5322 2.1): the raw .eml, SendRawEmail's
    # readers and an SMTP relay all see what an SES recipient would
    from email.policy import compat32

    return main.as_bytes(policy=compat32.clone(linesep="\r\n"))


def _header(value: str) -> str:
    if value.isascii():
        return value
    from email.header import Header

    return Header(value, "utf-8").encode()


def _addresses(values: list[str]) -> str:
    out = []
    for v in values:
        if v.isascii():
            out.append(v)
        else:
            from email.utils import formataddr, parseaddr

            name, addr = parseaddr(v)
            out.append(formataddr((name, addr), charset="utf-8"))
    return ", ".join(out)


def parse(raw: bytes) -> dict[str, Any]:
    """What a reader wants from a MIME message: sender, recipients, subject, the first
    text and HTML bodies, every header (RFC 2047 decoded) and the attachments (described,
    not copied). Parsed with compat32 and decoded by hand: the default policy's header
    objects cost milliseconds per message."""
    from email import message_from_bytes
    from email.policy import compat32

    msg = message_from_bytes(raw, policy=compat32)
    text = html = None
    for part in msg.walk():
        if part.is_multipart() or _disposition(part) == "attachment":
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html") or (ctype == "text/plain" and text is not None) or (
                ctype == "text/html" and html is not None):
            continue
        payload = part.get_payload(decode=True) or b""
        charset = part.get_content_charset() or "us-ascii"
        try:
            content = payload.decode(charset, "replace")
        except LookupError:  # an unknown charset: keep the bytes as well as we can
            content = payload.decode("utf-8", "replace")
        content = content.replace("\r\n", "\n")  # a reader's lines: the wire's CRLF is the raw's business
        if ctype == "text/plain":
            text = content
        else:
            html = content
    attachments = []
    for i, part in enumerate(_attachment_parts(msg)):
        payload = part.get_payload(decode=True) or b""
        attachments.append({"index": i, "filename": _decoded(part.get_filename() or f"part-{i}"),
                            "content_type": part.get_content_type(), "size": len(payload),
                            "inline": _disposition(part) == "inline",
                            "content_id": (str(part.get("Content-ID") or "")).strip().strip("<>") or None})
    headers = [[name, _decoded(str(value))] for name, value in msg.items()]

    def _addrs(name: str) -> list[str]:
        try:
            return [a for _, a in getaddresses([_decoded(str(v)) for v in msg.get_all(name, [])]) if a]
        except Exception:
            return []

    return {"from": _decoded(str(msg.get("From", "") or "")), "to": _addrs("To"), "cc": _addrs("Cc"),
            "subject": _decoded(str(msg.get("Subject", "") or "")), "text": text, "html": html,
            "headers": headers, "attachments": attachments}


def _decoded(value: str) -> str:
    """A header value with its RFC 2047 encoded words decoded and folding undone."""
    value = value.replace("\r\n", "\n").replace("\n ", " ").replace("\n\t", " ").strip()
    if "=?" not in value:
        return value
    from email.header import decode_header, make_header

    try:
        return str(make_header(decode_header(value)))
    except Exception:  # a malformed encoded word is shown as sent
        return value


def _disposition(part: Any) -> str | None:
    value = part.get("Content-Disposition")
    return str(value).split(";", 1)[0].strip().lower() if value else None


def _attachment_parts(msg: Any) -> list[Any]:
    """Parts that are files: attachments, and inline parts that are not the message's bodies."""
    found = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        disposition = _disposition(part)
        ctype = part.get_content_type()
        if disposition == "attachment" or (part.get_filename() and ctype not in ("text/plain", "text/html")) or (
                disposition == "inline" and ctype not in ("text/plain", "text/html")) or (
                part.get("Content-ID") and ctype not in ("text/plain", "text/html")):
            found.append(part)
    return found


def _summary(row: tuple) -> dict[str, Any]:
    seq, mail_id, sender, recipients, subject, text, html, sent_at, attachments, origin, message_id = row
    return {"seq": seq, "id": mail_id, "from": sender, "to": json.loads(recipients), "subject": subject,
            "text": text, "html": html, "sent_at": iso8601(sent_at), "attachments": json.loads(attachments),
            "origin": origin, "message_id": message_id}


_TAG = re.compile(r"<[^>]+>")
_BLOCK = re.compile(r"<\s*(br|/p|/div|/h[1-6]|/li|/tr|p|div|h[1-6]|li|tr)\b[^>]*>", re.I)
_DROP = re.compile(r"<\s*(script|style|head)\b.*?<\s*/\s*\1\s*>", re.I | re.S)
_LINK = re.compile(r"<a\s[^>]*href\s*=\s*[\"']([^\"']+)[\"'][^>]*>(.*?)</a\s*>", re.I | re.S)


def html_to_text(html: str) -> str:
    """HTML as a terminal shows it: paragraphs on their own lines, links as ``text <url>``."""
    text = _DROP.sub("", html)
    text = _LINK.sub(lambda m: f"{m[2]} &lt;{m[1]}&gt;" if m[1] not in m[2] else m[2], text)
    text = _BLOCK.sub("\n", text)
    text = htmllib.unescape(_TAG.sub("", text))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
