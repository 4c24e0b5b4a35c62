"""SES's model: identities (addresses and domains) and how they verify, the account
(sandbox, quotas, sending switch, suppression list), configuration sets and their event
destinations, and the log of sends that quotas and statistics are counted from.

v1 and v2 are two APIs over one account, as on AWS: an address verified through
VerifyEmailIdentity is the identity GetEmailIdentity shows, so both API classes share this
one ``Model`` (it belongs to the v1 service, which owns the tables).

Verification follows AWS: an address stays ``Pending`` until the link in the
verification mail (sent into the local mailbox) is followed, and fails after 24 hours; a
domain verifies ``DOMAIN_DELAY`` seconds after it was added on unkai's clock, as AWS does
once its DNS records are in place (there is no DNS here to wait for)."""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from unkai.ids import uuid4

if TYPE_CHECKING:
    from unkai.store import Store

MIGRATIONS = [
    """
    CREATE TABLE ses_identities (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        identity TEXT NOT NULL,
        kind TEXT NOT NULL,
        token TEXT NOT NULL,
        created REAL NOT NULL,
        verified_at REAL,
        dkim_tokens TEXT NOT NULL DEFAULT '[]',
        dkim_enabled INTEGER NOT NULL DEFAULT 0,
        notify TEXT NOT NULL DEFAULT '{}',
        forwarding INTEGER NOT NULL DEFAULT 1,
        headers_in TEXT NOT NULL DEFAULT '{}',
        mail_from TEXT NOT NULL DEFAULT '{}',
        config_set TEXT,
        tags TEXT NOT NULL DEFAULT '[]',
        policies TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (account, region, identity)
    );
    CREATE UNIQUE INDEX ses_identities_token ON ses_identities(token);
    CREATE TABLE ses_templates (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        subject TEXT,
        text TEXT,
        html TEXT,
        created REAL NOT NULL,
        tags TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (account, region, name)
    );
    CREATE TABLE ses_config_sets (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        created REAL NOT NULL,
        tags TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (account, region, name)
    );
    CREATE TABLE ses_destinations (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        config_set TEXT NOT NULL,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        PRIMARY KEY (account, region, config_set, name)
    );
    CREATE TABLE ses_account (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        production INTEGER NOT NULL,
        sending INTEGER NOT NULL DEFAULT 1,
        details TEXT NOT NULL DEFAULT '{}',
        suppressed_reasons TEXT NOT NULL DEFAULT '["BOUNCE","COMPLAINT"]',
        PRIMARY KEY (account, region)
    );
    CREATE TABLE ses_sends (
        id INTEGER PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        recipients INTEGER NOT NULL
    );
    CREATE INDEX ses_sends_at ON ses_sends(account, region, at);
    CREATE TABLE ses_suppressed (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        email TEXT NOT NULL,
        reason TEXT NOT NULL,
        at REAL NOT NULL,
        message_id TEXT,
        feedback_id TEXT,
        PRIMARY KEY (account, region, email)
    );
    """,
    # receiving: receipt rule sets, each with its ordered rules (JSON); one active per region
    """
    CREATE TABLE ses_rule_sets (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        created REAL NOT NULL,
        rules TEXT NOT NULL DEFAULT '[]',
        active INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (account, region, name)
    );
    CREATE TABLE ses_receipt_filters (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        PRIMARY KEY (account, region, name)
    );
    """,
    # v2 list management (one contact list per account and region, as on AWS), and what a
    # sent message's open pixel, click links and unsubscribe link need to report events
    """
    CREATE TABLE ses_contact_lists (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '[]',
        created REAL NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (account, region, name)
    );
    CREATE TABLE ses_contacts (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        list TEXT NOT NULL,
        email TEXT NOT NULL,
        spec TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (account, region, list, email)
    );
    CREATE TABLE ses_tracked (
        message_id TEXT PRIMARY KEY,
        payload TEXT NOT NULL,
        created REAL NOT NULL
    );
    """,
    # domains are case-insensitive: a send finds its sender's domain (and own) identity by
    # lower(identity) in one indexed query, not by a scan of the account's identities
    """
    CREATE INDEX ses_identities_lower ON ses_identities(account, region, lower(identity));
    """,
]

DOMAIN_DELAY = 60.0  # seconds on unkai's clock until a new domain (and its DKIM) verifies
VERIFY_WINDOW = 24 * 3600.0  # AWS's verification links expire after 24 hours
SIMULATOR_DOMAIN = "simulator.amazonses.com"
SANDBOX_QUOTA = (200.0, 1.0)  # per 24 hours, per second: AWS's sandbox
PRODUCTION_QUOTA = (50000.0, 14.0)  # what AWS typically grants first

_ANGLED = re.compile(r"<([^<>]*)>\s*$")
_LOCAL_BAD = re.compile(r"[\s\x00-\x1f\x7f]")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{1,63}$")


def address_of(value: str) -> str:
    """The bare address of ``Name <a@b>`` or ``a@b`` (RFC 2047 names allowed)."""
    value = value.strip()
    if "<" not in value:
        return value
    m = _ANGLED.search(value)
    return (m.group(1) if m else value).strip()


def check_address(value: str, v2: bool = False) -> str:
    """The bare address, or SES's InvalidParameterValue for one it would not accept."""
    addr, problem = _address_problem(value or "")
    if problem:
        from unkai.services.ses import errors

        raise errors.invalid(problem, v2)
    return addr


@functools.lru_cache(maxsize=4096)  # every send checks its sender and recipients: the same few addresses
def _address_problem(value: str) -> tuple[str, str | None]:
    """``check_address``'s verdict: the bare address and None, or SES's message for it."""
    addr = address_of(value)
    if "@" not in addr:
        return addr, "Missing final '@domain'"
    local, _, domain = addr.rpartition("@")
    if not local:
        return addr, "Missing local name"
    if _LOCAL_BAD.search(local):
        return addr, "Local address contains control or whitespace"
    if not _DOMAIN.match(domain):
        return addr, ("Domain contains illegal character" if re.search(r"[^A-Za-z0-9.-]", domain)
                      else "Domain ends with dot" if domain.endswith(".") else "Domain name is invalid")
    return addr, None


def is_simulator(address: str) -> bool:
    return address.lower().endswith("@" + SIMULATOR_DOMAIN)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


@dataclass
class Identity:
    account: str
    region: str
    identity: str
    kind: str  # EmailAddress | Domain
    token: str
    created: float
    verified_at: float | None
    dkim_tokens: list[str]
    dkim_enabled: bool
    notify: dict[str, str]  # Bounce/Complaint/Delivery -> topic ARN
    forwarding: bool
    headers_in: dict[str, bool]
    mail_from: dict[str, str]
    config_set: str | None
    tags: list[dict]
    policies: dict[str, str] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        return f"arn:aws:ses:{self.region}:{self.account}:identity/{self.identity}"

    def status(self, now: float) -> str:
        """AWS's VerificationStatus: Pending, Success, Failed."""
        if self.kind == "Domain":
            return "Success" if now >= self.created + DOMAIN_DELAY else "Pending"
        if self.verified_at is not None:
            return "Success"
        return "Failed" if now > self.created + VERIFY_WINDOW else "Pending"

    def dkim_status(self, now: float) -> str:
        if not self.dkim_tokens:
            return "NotStarted"
        return "Success" if now >= self.created + DOMAIN_DELAY else "Pending"


_ID_COLUMNS = ("account, region, identity, kind, token, created, verified_at, dkim_tokens, dkim_enabled, notify, "
               "forwarding, headers_in, mail_from, config_set, tags, policies")


_PARSED: dict[tuple, Identity] = {}  # a row's Identity, for the sends that read the same row again
_PARSED_MAX = 1024


def _identity(row: tuple) -> Identity:
    """The row as an Identity. A row is parsed once (six JSON columns, about a tenth of a
    send's handler) and its Identity shared: callers never change one in place (updates go
    through ``Model.update``, which writes a new row, hence a new key here)."""
    found = _PARSED.get(row)
    if found is None:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        found = _PARSED[row] = _parse_identity(row)
    return found


def _parse_identity(row: tuple) -> Identity:
    v = list(row)
    return Identity(v[0], v[1], v[2], v[3], v[4], v[5], v[6], json.loads(v[7]), bool(v[8]), json.loads(v[9]),
                    bool(v[10]), json.loads(v[11]), json.loads(v[12]), v[13], json.loads(v[14]), json.loads(v[15]))


@dataclass
class Account:
    production: bool
    sending: bool
    details: dict[str, Any]
    suppressed_reasons: list[str]
    max24: float
    rate: float


_GENERATION = "ses.identities.generation"  # unkai_meta: changed by every identity or account write
_ROWS_MAX = 4096
_NONE = ()  # a cached "no row"


class Model:
    """The identities, the account, the send log, the suppression list and configuration
    sets. The identity and account rows a send reads (three queries a send, a fifth of its
    handler) are kept in memory: every write to them goes through this class, which forgets
    them and, until the write commits, reads the store (a rolled back write is noticed as
    the DynamoDB catalog notices one: the generation it wrote is gone)."""

    def __init__(self, store: "Store") -> None:
        self.store = store
        self._rows: dict[tuple, Any] = {}  # committed rows by query
        self._pending: str | None = None  # the generation a not yet committed write set
        # read once: `unkai up` sets them before the server starts (every send reads the account)
        self._production = _env_flag("UNKAI_SES_PRODUCTION")
        self._max24 = float(os.environ.get("UNKAI_SES_MAX_24H") or PRODUCTION_QUOTA[0])
        self._rate = float(os.environ.get("UNKAI_SES_MAX_RATE") or PRODUCTION_QUOTA[1])

    # -- the row cache -----------------------------------------------------------------

    def _cache(self) -> dict[tuple, Any] | None:
        """The committed rows, or None while a write to them has not committed."""
        if self._pending is not None:
            if self.store.get_meta(_GENERATION, "") == self._pending:
                return None
            self._pending = None  # the write was rolled back: the store is as the cache knew it
            self._rows.clear()
        if len(self._rows) >= _ROWS_MAX:
            self._rows.clear()
        return self._rows

    def _changed(self) -> None:
        """Before every write to identities or the account."""
        self._rows.clear()
        self._pending = uuid4()
        self.store.set_meta(_GENERATION, self._pending)
        self.store.after_commit(self.forget)

    def forget(self) -> None:
        """Drop the cached rows (a write committed; the store was reset)."""
        self._pending = None
        self._rows.clear()

    # -- identities -------------------------------------------------------------------

    def identity(self, account: str, region: str, identity: str) -> Identity | None:
        cache = self._cache()
        key = ("identity", account, region, identity)
        row = cache.get(key) if cache is not None else None
        if row is None:
            row = self._identity_row(account, region, identity) or _NONE
            if cache is not None:
                cache[key] = row
        return _identity(row) if row else None

    def _identity_row(self, account: str, region: str, identity: str) -> tuple | None:
        row = self.store.one(f"SELECT {_ID_COLUMNS} FROM ses_identities WHERE account=? AND region=? AND "
                             "identity=?", (account, region, identity))
        if row is None and "@" not in identity:  # domains are case-insensitive
            row = self.store.one(f"SELECT {_ID_COLUMNS} FROM ses_identities WHERE account=? AND region=? AND "
                                 "lower(identity)=lower(?)", (account, region, identity))
        return row

    def own_and_domain(self, account: str, region: str, address: str) -> tuple[Identity | None, Identity | None]:
        """``identity(address)`` and ``identity(domain_of(address))`` read in one query: a
        send needs both (whose settings apply, and whether it may send)."""
        domain = domain_of(address)
        own = dom = None
        cache = self._cache()
        key = ("sender", account, region, address)
        rows = cache.get(key) if cache is not None else None
        if rows is None:
            rows = tuple(self.store.all(f"SELECT {_ID_COLUMNS} FROM ses_identities WHERE account=? AND region=? AND "
                                        "lower(identity) IN (lower(?), lower(?))", (account, region, address, domain)))
            if cache is not None:
                cache[key] = rows
        for row in rows:
            name = row[2]
            if name == address:
                own = _identity(row)
            elif "@" not in name and (dom is None or name == domain):  # domains are case-insensitive
                dom = _identity(row)
        return own, dom

    def identities(self, account: str, region: str, kind: str | None = None) -> list[Identity]:
        rows = self.store.all(f"SELECT {_ID_COLUMNS} FROM ses_identities WHERE account=? AND region=? "
                              "ORDER BY created, identity", (account, region))
        found = [_identity(r) for r in rows]
        return [i for i in found if kind is None or i.kind == kind]

    def by_token(self, token: str) -> Identity | None:
        row = self.store.one(f"SELECT {_ID_COLUMNS} FROM ses_identities WHERE token=?", (token,))
        return _identity(row) if row else None

    def add_identity(self, account: str, region: str, identity: str, kind: str, now: float,
                     dkim: bool = False) -> Identity:
        """Add (or restart verification of) an identity; keeps an existing one's settings."""
        found = self.identity(account, region, identity)
        if found is not None:
            if kind == "Domain" and dkim and not found.dkim_tokens:
                self.update(found, dkim_tokens=_dkim_tokens(), dkim_enabled=True)
                found = self.identity(account, region, identity)
            return found  # type: ignore[return-value]
        tokens = _dkim_tokens() if kind == "Domain" and dkim else []
        self._changed()
        self.store.execute(
            "INSERT INTO ses_identities(account, region, identity, kind, token, created, dkim_tokens, dkim_enabled) "
            "VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
            (account, region, identity, kind, secrets.token_urlsafe(32) if kind == "EmailAddress"
             else _domain_token(), now, json.dumps(tokens), int(bool(tokens))),
        )
        return self.identity(account, region, identity)  # type: ignore[return-value]

    def update(self, ident: Identity, **changes: Any) -> None:
        cols, values = [], []
        for k, v in changes.items():
            cols.append(f"{k}=?")
            values.append(json.dumps(v) if isinstance(v, (dict, list)) else v)
        self._changed()
        self.store.execute(f"UPDATE ses_identities SET {', '.join(cols)} WHERE account=? AND region=? AND "
                           "identity=?", (*values, ident.account, ident.region, ident.identity))

    def delete_identity(self, account: str, region: str, identity: str) -> bool:
        self._changed()
        return self.store.execute("DELETE FROM ses_identities WHERE account=? AND region=? AND identity=?",
                                  (account, region, identity)).rowcount > 0

    def verified_for(self, account: str, region: str, address: str, now: float) -> Identity | None:
        """The verified identity that lets ``address`` send or, in the sandbox, receive: the
        address itself, else its domain (AWS checks both)."""
        own = self.identity(account, region, address)
        if own is not None and own.status(now) == "Success":
            return own
        dom = self.identity(account, region, domain_of(address))
        if dom is not None and dom.status(now) == "Success":
            return dom
        return None

    def sending_identity(self, account: str, region: str, address: str) -> Identity | None:
        """Whose notification settings apply to mail from ``address``: the address's own
        identity when there is one, else its domain's (AWS's rule)."""
        return self.identity(account, region, address) or self.identity(account, region, domain_of(address))

    # -- the account ------------------------------------------------------------------

    def account(self, account: str, region: str) -> Account:
        cache = self._cache()
        key = ("account", account, region)
        row = cache.get(key) if cache is not None else None
        if row is None:
            row = self.store.one("SELECT production, sending, details, suppressed_reasons FROM ses_account "
                                 "WHERE account=? AND region=?", (account, region)) or _NONE
            if cache is not None:
                cache[key] = row
        production = bool(row[0]) if row else self._production
        max24, rate = (self._max24, self._rate) if production else SANDBOX_QUOTA
        if not row:
            return Account(production, True, {}, ["BOUNCE", "COMPLAINT"], max24, rate)
        return Account(production, bool(row[1]), json.loads(row[2]), json.loads(row[3]), max24, rate)

    def update_account(self, account: str, region: str, **changes: Any) -> None:
        current = self.account(account, region)
        values = {"production": int(current.production), "sending": int(current.sending),
                  "details": json.dumps(current.details), "suppressed_reasons": json.dumps(current.suppressed_reasons)}
        for k, v in changes.items():
            values[k] = json.dumps(v) if isinstance(v, (dict, list)) else int(v) if isinstance(v, bool) else v
        self._changed()
        self.store.execute(
            "INSERT INTO ses_account(account, region, production, sending, details, suppressed_reasons) "
            "VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(account, region) DO UPDATE SET production=excluded.production, "
            "sending=excluded.sending, details=excluded.details, suppressed_reasons=excluded.suppressed_reasons",
            (account, region, values["production"], values["sending"], values["details"],
             values["suppressed_reasons"]))

    # -- the send log -----------------------------------------------------------------

    def record(self, account: str, region: str, at: float, kind: str, recipients: int) -> None:
        """``kind``: sent (delivery attempts), bounce, complaint, reject. Nothing for none
        (a send only to the mailbox simulator): every reader sums recipients."""
        if not recipients:
            return
        self.store.execute("INSERT INTO ses_sends(account, region, at, kind, recipients) VALUES(?, ?, ?, ?, ?)",
                           (account, region, at, kind, recipients))

    def sent_in_windows(self, account: str, region: str, now: float) -> tuple[int, int]:
        """Recipients sent to in the last 24 hours and in the last second, in one pass over
        the send log (a send to real recipients checks both quotas)."""
        row = self.store.one("SELECT COALESCE(SUM(recipients), 0), COALESCE(SUM(CASE WHEN at > ? THEN recipients "
                             "ELSE 0 END), 0) FROM ses_sends WHERE account=? AND region=? AND at > ? AND kind='sent'",
                             (now - 1, account, region, now - 86400))
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def sent_since(self, account: str, region: str, since: float) -> int:
        row = self.store.one("SELECT COALESCE(SUM(recipients), 0) FROM ses_sends WHERE account=? AND region=? "
                             "AND at > ? AND kind='sent'", (account, region, since))
        return int(row[0]) if row else 0

    def reputation(self, since: float, until: float) -> list[tuple[str, str, int, int, int]]:
        """Per account and region that sent mail in ``(since, until]``: delivery attempts,
        bounces and complaints (the mailbox simulator's excluded, as on AWS)."""
        return self.store.all(
            "SELECT account, region, SUM(CASE WHEN kind='sent' THEN recipients ELSE 0 END), "
            "SUM(CASE WHEN kind='bounce' THEN recipients ELSE 0 END), "
            "SUM(CASE WHEN kind='complaint' THEN recipients ELSE 0 END) FROM ses_sends WHERE at > ? AND at <= ? "
            "GROUP BY account, region", (since, until))

    def statistics(self, account: str, region: str, since: float) -> list[dict[str, Any]]:
        """GetSendStatistics' data points: 15-minute buckets of the last two weeks."""
        buckets: dict[int, dict[str, Any]] = {}
        names = {"sent": "DeliveryAttempts", "bounce": "Bounces", "complaint": "Complaints", "reject": "Rejects"}
        for at, kind, n in self.store.all("SELECT at, kind, recipients FROM ses_sends WHERE account=? AND "
                                          "region=? AND at > ? ORDER BY at", (account, region, since)):
            key = int(at // 900) * 900
            point = buckets.setdefault(key, {"Timestamp": float(key), "DeliveryAttempts": 0, "Bounces": 0,
                                             "Complaints": 0, "Rejects": 0})
            point[names[kind]] += n
        return list(buckets.values())

    # -- the suppression list ---------------------------------------------------------

    def suppressed(self, account: str, region: str, email: str) -> tuple | None:
        return self.store.one("SELECT email, reason, at, message_id, feedback_id FROM ses_suppressed WHERE "
                              "account=? AND region=? AND lower(email)=lower(?)", (account, region, email))

    def suppress(self, account: str, region: str, email: str, reason: str, at: float,
                 message_id: str | None = None, feedback_id: str | None = None) -> None:
        self.store.execute(
            "INSERT INTO ses_suppressed(account, region, email, reason, at, message_id, feedback_id) "
            "VALUES(?, ?, ?, ?, ?, ?, ?) ON CONFLICT(account, region, email) DO UPDATE SET reason=excluded.reason, "
            "at=excluded.at, message_id=excluded.message_id, feedback_id=excluded.feedback_id",
            (account, region, email.lower(), reason, at, message_id, feedback_id))

    def unsuppress(self, account: str, region: str, email: str) -> bool:
        return self.store.execute("DELETE FROM ses_suppressed WHERE account=? AND region=? AND lower(email)=lower(?)",
                                  (account, region, email)).rowcount > 0

    def suppressed_list(self, account: str, region: str) -> list[tuple]:
        return self.store.all("SELECT email, reason, at, message_id, feedback_id FROM ses_suppressed WHERE "
                              "account=? AND region=? ORDER BY email", (account, region))

    # -- configuration sets and event destinations --------------------------------------

    def config_set(self, account: str, region: str, name: str) -> dict[str, Any] | None:
        row = self.store.one("SELECT spec, tags FROM ses_config_sets WHERE account=? AND region=? AND name=?",
                             (account, region, name))
        if row is None:
            return None
        spec = json.loads(row[0])
        spec["Tags"] = json.loads(row[1])
        return spec

    def config_sets(self, account: str, region: str) -> list[str]:
        return [r[0] for r in self.store.all("SELECT name FROM ses_config_sets WHERE account=? AND region=? "
                                             "ORDER BY name", (account, region))]

    def put_config_set(self, account: str, region: str, name: str, spec: dict[str, Any], now: float,
                       tags: list[dict] | None = None) -> None:
        spec = {k: v for k, v in spec.items() if k != "Tags"}
        if tags is None:
            self.store.execute(
                "INSERT INTO ses_config_sets(account, region, name, spec, created) VALUES(?, ?, ?, ?, ?) "
                "ON CONFLICT(account, region, name) DO UPDATE SET spec=excluded.spec",
                (account, region, name, json.dumps(spec), now))
        else:
            self.store.execute(
                "INSERT INTO ses_config_sets(account, region, name, spec, created, tags) VALUES(?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(account, region, name) DO UPDATE SET spec=excluded.spec, tags=excluded.tags",
                (account, region, name, json.dumps(spec), now, json.dumps(tags)))

    def delete_config_set(self, account: str, region: str, name: str) -> bool:
        self.store.execute("DELETE FROM ses_destinations WHERE account=? AND region=? AND config_set=?",
                           (account, region, name))
        return self.store.execute("DELETE FROM ses_config_sets WHERE account=? AND region=? AND name=?",
                                  (account, region, name)).rowcount > 0

    def destinations(self, account: str, region: str, config_set: str) -> list[dict[str, Any]]:
        """Event destinations in v2's shape plus ``Name`` (``MatchingEventTypes`` in v2's
        upper-case spelling; v1 translates)."""
        rows = self.store.all("SELECT name, spec FROM ses_destinations WHERE account=? AND region=? AND "
                              "config_set=? ORDER BY name", (account, region, config_set))
        return [dict(json.loads(spec), Name=name) for name, spec in rows]

    def put_destination(self, account: str, region: str, config_set: str, name: str, spec: dict[str, Any]) -> None:
        spec = {k: v for k, v in spec.items() if k != "Name"}
        self.store.execute(
            "INSERT INTO ses_destinations(account, region, config_set, name, spec) VALUES(?, ?, ?, ?, ?) "
            "ON CONFLICT(account, region, config_set, name) DO UPDATE SET spec=excluded.spec",
            (account, region, config_set, name, json.dumps(spec)))

    def delete_destination(self, account: str, region: str, config_set: str, name: str) -> bool:
        return self.store.execute("DELETE FROM ses_destinations WHERE account=? AND region=? AND config_set=? AND "
                                  "name=?", (account, region, config_set, name)).rowcount > 0


def _dkim_tokens() -> list[str]:
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return ["".join(secrets.choice(alphabet) for _ in range(32)) for _ in range(3)]


def _domain_token() -> str:
    """A TXT verification token as AWS shows them (44 characters of base64)."""
    import base64

    return base64.b64encode(secrets.token_bytes(33)).decode()


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes", "on")
