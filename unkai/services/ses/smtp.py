"""SES's SMTP interface (``email-smtp.REGION.amazonaws.com``) on a local port, so code
that sends mail with smtplib, Django or any mail library works unchanged.

Started when ``UNKAI_SMTP_PORT`` is set (``0``: any free port; the port is shown in the
banner and at ``GET /_unkai/ses/smtp``). aiosmtpd's protocol runs on unkai's own event
loop (not aiosmtpd's threaded Controller), so a message is handled like an API call: in
one store transaction through ``Sender.send``, with the same sandbox, quota,
notification and mailbox rules, answered ``250 Ok <MessageId>`` or, as SES's SMTP
endpoint does, ``554 Message rejected: ...``. STARTTLS is offered with a self-signed
certificate kept in the state directory. When unkai verifies signatures
(``--access-key``/``--secret-key``), AUTH is required and the password must be the SES
SMTP password AWS derives from that secret key for the region; otherwise any AUTH, or
none, is accepted. A message for a recipient that an active receipt rule matches is
received (``receiving.py``) instead of sent."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import ssl
from typing import TYPE_CHECKING, Any

from unkai.protocol import ServiceError
from unkai.services.ses.sending import Outgoing

if TYPE_CHECKING:
    from unkai.services.ses.service import SES

log = logging.getLogger(__name__)


def smtp_password(secret_key: str, region: str) -> str:
    """The SES SMTP password for a secret access key, as AWS documents its derivation
    ("Obtaining Amazon SES SMTP credentials", version 4)."""
    def sign(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()

    signature = sign(("AWS4" + secret_key).encode("utf-8"), "11111111")
    for part in (region, "ses", "aws4_request", "SendRawEmail"):
        signature = sign(signature, part)
    return base64.b64encode(bytes([0x04]) + signature).decode("utf-8")


class SmtpServer:
    def __init__(self, ses: "SES") -> None:
        self.ses = ses
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self, port: int) -> None:
        from aiosmtpd.smtp import SMTP, AuthResult  # lazy: only when SMTP is wanted

        ses, config = self.ses, self.ses.config
        tls = self._tls_context()
        secret = config.secret_key if config.verify_signatures else None

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            login = getattr(data, "login", b"") or b""
            password = getattr(data, "password", b"") or b""
            if secret is None:
                return AuthResult(success=True, handled=False)
            ok = (login.decode(errors="replace") == config.access_key and
                  hmac.compare_digest(password.decode(errors="replace"), smtp_password(secret, config.region)))
            return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 235 / 535

        handler = _Handler(ses)
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: SMTP(handler, hostname=f"email-smtp.{config.region}.amazonaws.com", ident="unkai SES SMTP",
                         tls_context=tls, require_starttls=False, auth_required=secret is not None,
                         auth_require_tls=False, authenticator=authenticator, data_size_limit=10 * 1024 * 1024,
                         enable_SMTPUTF8=True, timeout=300),
            host=config.host, port=port)
        self.port = self.server.sockets[0].getsockname()[1]
        log.info("ses: SMTP on %s:%s", config.host, self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    def _tls_context(self) -> ssl.SSLContext | None:
        """A self-signed certificate for STARTTLS, made once per state directory."""
        path = self.ses.config.state_dir / "ses-smtp.pem"
        try:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(_self_signed(f"email-smtp.{self.ses.config.region}.amazonaws.com"))
                os.chmod(path, 0o600)
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(str(path))
            return ctx
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.warning("ses: no STARTTLS for SMTP: %s", exc)
            return None


class _Handler:
    def __init__(self, ses: "SES") -> None:
        self.ses = ses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's API
        ses = self.ses
        config = ses.config
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        rcpts = list(envelope.rcpt_tos)
        try:
            with ses.store.transaction():
                inbound = ses.receipt_recipients(config.account_id, config.region, rcpts)
                if inbound:
                    ses.schedule_receipt(config.account_id, config.region, envelope.mail_from, inbound, raw)
                outbound = [r for r in rcpts if r not in inbound]
                mid = None
                if outbound:
                    out = Outgoing(config.account_id, config.region, False, source="", bcc=outbound, raw=raw,
                                   return_path=envelope.mail_from or None, via="smtp")
                    out.source_ip = (session.peer or ("127.0.0.1",))[0]
                    out.caller = "smtp"
                    mid = ses._sender.send(out)
        except ServiceError as exc:
            return f"554 Message rejected: {exc.message}"
        except Exception:  # never take the listener down with one bad message
            log.exception("ses: SMTP message failed")
            return "451 Temporary service failure"
        return f"250 Ok {mid}" if mid else "250 Ok"


def _self_signed(host: str) -> bytes:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host), x509.DNSName("localhost")]), False)
            .sign(key, hashes.SHA256()))
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM))
