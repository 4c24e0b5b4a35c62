"""The local mailbox: every email any service sends (SNS email subscriptions, SES)
lands here as a real RFC 5322 message, kept in the store and written to
``<state>/mail/*.eml``, listed by ``GET /_unkai/mail`` and ``unkai mail``."""

from __future__ import annotations

import json
import uuid
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from email.utils import format_datetime, make_msgid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from unkai.protocol.values import iso8601

if TYPE_CHECKING:
    from unkai.cloud import Cloud

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
    """
]


class Mailbox:
    def __init__(self, cloud: "Cloud") -> None:
        self.cloud = cloud
        self.store = cloud.store
        self.store.migrate("mail", MIGRATIONS)
        self.dir = cloud.config.state_dir / "mail"

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
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> str:
        """Store one message (in the caller's transaction) and return its id."""
        mail_id = str(uuid.uuid4())
        now = self.cloud.clock.now()
        if raw is None:
            msg = EmailMessage()
            msg["From"] = sender
            msg["To"] = ", ".join(to)
            if cc:
                msg["Cc"] = ", ".join(cc)
            if reply_to:
                msg["Reply-To"] = ", ".join(reply_to)
            msg["Subject"] = subject
            msg["Date"] = format_datetime(datetime.fromtimestamp(now, timezone.utc))
            msg["Message-ID"] = make_msgid(idstring=mail_id, domain="unkai.local")
            for k, v in (headers or {}).items():
                msg[k] = v
            if text is not None:
                msg.set_content(text)
            if html is not None:
                if text is None:
                    msg.set_content(html, subtype="html")
                else:
                    msg.add_alternative(html, subtype="html")
            if text is None and html is None:
                msg.set_content("")
            raw = msg.as_bytes()
        else:
            parsed = BytesParser(policy=default_policy).parsebytes(raw)
            text, html = _bodies(parsed)
            sender = sender or str(parsed.get("From", ""))
            subject = subject or str(parsed.get("Subject", ""))
            to = to or [a.strip() for a in str(parsed.get("To", "")).split(",") if a.strip()]
        recipients = list(to) + list(cc or []) + list(bcc or [])
        self.store.execute(
            "INSERT INTO mail_messages(id, sent_at, sender, recipients, subject, text, html, raw) "
            "VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
            (mail_id, now, sender, json.dumps(recipients), subject, text, html, raw),
        )
        self.store.after_commit(lambda: self._write_file(mail_id, now, raw))
        return mail_id

    def _write_file(self, mail_id: str, now: float, raw: bytes) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%dT%H%M%S")
        path = self.dir / f"{stamp}-{mail_id}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(raw)
        tmp.replace(path)

    def list(self, to: str | None = None) -> list[dict[str, Any]]:
        rows = self.store.all(
            "SELECT id, sender, recipients, subject, text, html, sent_at FROM mail_messages ORDER BY seq"
        )
        out = []
        for mail_id, sender, recipients, subject, text, html, sent_at in rows:
            rcpts = json.loads(recipients)
            if to and not any(to.lower() in r.lower() for r in rcpts):
                continue
            out.append({"id": mail_id, "from": sender, "to": rcpts, "subject": subject,
                        "text": text, "html": html, "sent_at": iso8601(sent_at)})
        return out

    def raw(self, mail_id: str) -> bytes | None:
        row = self.store.one("SELECT raw FROM mail_messages WHERE id=?", (mail_id,))
        return row[0] if row else None

    def clear(self) -> int:
        return self.store.execute("DELETE FROM mail_messages").rowcount


def _bodies(msg: Any) -> tuple[str | None, str | None]:
    text = html = None
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if ctype == "text/plain" and text is None:
            text = part.get_content()
        elif ctype == "text/html" and html is None:
            html = part.get_content()
    return text, html
