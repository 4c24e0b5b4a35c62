"""Users of a pool: their attributes, passwords, statuses, one-time codes, and the
lookups sign-in needs (username, username attributes, aliases).

Passwords are never stored: a user row keeps a PBKDF2-SHA256 hash (salted) for the
password flows and the SRP salt and verifier for USER_SRP_AUTH. Attributes live twice:
as JSON on the user row (one read answers AdminGetUser) and one row per attribute in
``cognito_user_attributes``, indexed by (pool, name, value), so sign-in by email and
ListUsers' ``email ^= "..."`` filters are index lookups however many users there are.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from unkai.services.cognito import errors, srp
from unkai.services.cognito.pools import Pool

PBKDF2_ROUNDS = 10_000  # a local emulator: enough to keep the state file from showing a password
FILTERABLE = {"username", "email", "phone_number", "name", "given_name", "family_name", "preferred_username",
              "cognito:user_status", "status", "sub"}
_FILTER = re.compile(r'^\s*"?([\w:]+)"?\s*(\^?=)\s*"((?:[^"\\]|\\.)*)"\s*$')
SYMBOLS = set("^$*.[]{}()?\"!@#%&/\\,><':;|_~`=+- ")


@dataclass
class User:
    id: int
    pool_id: str
    username: str
    sub: str
    attributes: dict[str, str]
    status: str
    enabled: bool
    password: str | None
    srp_salt: str | None
    srp_verifier: str | None
    temporary_until: float | None
    signed_out: float
    created: float
    modified: float

    def attribute_list(self, only: set[str] | None = None) -> list[dict[str, str]]:
        items = [("sub", self.sub)] + [(k, v) for k, v in self.attributes.items() if k != "sub"]
        return [{"Name": k, "Value": v} for k, v in items if only is None or k in only]

    def describe(self, attributes_key: str = "Attributes") -> dict[str, Any]:
        return {"Username": self.username, attributes_key: self.attribute_list(),
                "UserCreateDate": self.created, "UserLastModifiedDate": self.modified,
                "Enabled": self.enabled, "UserStatus": self.status}

    @property
    def email(self) -> str | None:
        return self.attributes.get("email")


_COLUMNS = ("id, pool_id, username, sub, attributes, status, enabled, password, srp_salt, srp_verifier, "
            "temporary_until, signed_out, created, modified")


def _user(row: tuple) -> User:
    return User(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], bool(row[6]), *row[7:])


# -- passwords ---------------------------------------------------------------------

def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PBKDF2_ROUNDS)
    return f"pbkdf2_sha256${PBKDF2_ROUNDS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_password(stored: str | None, password: str) -> bool:
    if not stored:
        return False
    _, rounds, salt, digest = stored.split("$")
    actual = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(rounds))
    return hmac.compare_digest(actual, base64.b64decode(digest))


def check_policy(pool: Pool, password: str) -> None:
    """InvalidPasswordException with AWS's reason for the first rule the password breaks."""
    policy = pool.password_policy
    if len(password) < int(policy.get("MinimumLength") or 8):
        raise errors.invalid_password("Password not long enough")
    if policy.get("RequireLowercase") and not any(c.islower() for c in password):
        raise errors.invalid_password("Password must have lowercase characters")
    if policy.get("RequireUppercase") and not any(c.isupper() for c in password):
        raise errors.invalid_password("Password must have uppercase characters")
    if policy.get("RequireNumbers") and not any(c.isdigit() for c in password):
        raise errors.invalid_password("Password must have numeric characters")
    if policy.get("RequireSymbols") and not any(c in SYMBOLS for c in password):
        raise errors.invalid_password("Password must have symbol characters")


def temporary_password(pool: Pool) -> str:
    """A generated temporary password that satisfies the pool's policy."""
    length = max(int(pool.password_policy.get("MinimumLength") or 8), 12)
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    body = "".join(secrets.choice(alphabet) for _ in range(length - 4))
    return body + secrets.choice("abcdefghjk") + secrets.choice("ABCDEFGH") + secrets.choice("23456789") + "!"


def secret_hash(username: str, client_id: str, client_secret: str) -> str:
    digest = hmac.new(client_secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


# -- attributes --------------------------------------------------------------------

def validate_attributes(pool: Pool, given: list[dict] | None, *, writable: set[str] | None = None,
                        creating: bool = False) -> dict[str, str]:
    """Attributes as a dict, checked against the pool's schema as AWS checks them."""
    schema = pool.schema()
    out: dict[str, str] = {}
    for attr in given or []:
        name, value = attr.get("Name") or "", attr.get("Value")
        if value is None:
            value = ""
        if name == "sub":
            raise errors.invalid("Cannot modify an already provided value for immutable attribute sub" if not creating
                                 else "Attributes did not conform to the schema: sub: Attribute cannot be updated. "
                                      "(changing an immutable attribute)")
        spec = schema.get(name)
        if spec is None:
            raise errors.invalid(f"Attributes did not conform to the schema: Type for attribute {{{name}}} could "
                                 "not be determined")
        if writable is not None and name not in writable:
            raise errors.not_authorized(f"A client attempted to write unauthorized attribute")
        kind = spec.get("AttributeDataType")
        if kind == "Boolean" and value.lower() not in ("true", "false"):
            raise errors.invalid(f"Attributes did not conform to the schema: {name}: Value must be a boolean")
        if kind == "Number":
            try:
                float(value)
            except ValueError:
                raise errors.invalid(f"Attributes did not conform to the schema: {name}: Number must be a "
                                     "number") from None
        limits = spec.get("StringAttributeConstraints") or {}
        if kind == "String" and limits.get("MaxLength") and len(value) > int(limits["MaxLength"]):
            raise errors.invalid(f"Attributes did not conform to the schema: {name}: String must be no longer than "
                                 f"{limits['MaxLength']} characters")
        if kind == "String" and limits.get("MinLength") and len(value) < int(limits["MinLength"]):
            raise errors.invalid(f"Attributes did not conform to the schema: {name}: String must be no shorter "
                                 f"than {limits['MinLength']} characters")
        if name == "email" and value and not re.fullmatch(r"[^@\s]+@[^@\s]+", value):
            raise errors.invalid("Invalid email address format.")
        if name == "phone_number" and value and not re.fullmatch(r"\+[0-9]{4,15}", value):
            raise errors.invalid("Invalid phone number format.")
        if kind == "Boolean":
            value = value.lower()
        out[name] = value
    return out


def required_missing(pool: Pool, attributes: dict[str, str]) -> list[str]:
    return [name for name, spec in pool.schema().items()
            if spec.get("Required") and name != "sub" and not attributes.get(name)]


# -- the table ---------------------------------------------------------------------

class Users:
    def __init__(self, store: Any) -> None:
        self.store = store

    def by_id(self, user_id: int) -> User | None:
        row = self.store.one(f"SELECT {_COLUMNS} FROM cognito_users WHERE id=?", (user_id,))
        return _user(row) if row else None

    def get(self, pool: Pool, username: str) -> User | None:
        row = self.store.one(f"SELECT {_COLUMNS} FROM cognito_users WHERE pool_id=? AND username_key=?",
                             (pool.id, pool.key(username or "")))
        return _user(row) if row else None

    def by_attribute(self, pool: Pool, name: str, value: str, verified_only: bool = False) -> list[User]:
        rows = self.store.all(f"SELECT {', '.join('u.' + c for c in _COLUMNS.split(', '))} FROM "
                              "cognito_user_attributes a JOIN cognito_users u ON u.id=a.user_id "
                              "WHERE a.pool_id=? AND a.name=? AND a.value=?", (pool.id, name, value))
        users = [_user(r) for r in rows]
        if verified_only:
            users = [u for u in users if u.attributes.get(f"{name}_verified") == "true"]
        return users

    def find(self, pool: Pool, name: str) -> User | None:
        """The user a sign-in name means: the username (or sub), then a username
        attribute, then a verified alias, as AWS resolves them."""
        if not name:
            return None
        user = self.get(pool, name)
        if user is not None:
            return user
        for attr in pool.username_attributes:
            value = name.lower() if attr == "email" else name
            found = self.by_attribute(pool, attr, value) or self.by_attribute(pool, attr, name)
            if found:
                return found[0]
        for attr in pool.alias_attributes:
            if attr == "preferred_username":
                found = self.by_attribute(pool, attr, name)
            else:
                found = self.by_attribute(pool, attr, name, verified_only=True)
            if found:
                return found[0]
        if pool.username_attributes:
            row = self.store.one(f"SELECT {_COLUMNS} FROM cognito_users WHERE pool_id=? AND sub=?", (pool.id, name))
            if row:
                return _user(row)
        return None

    def create(self, pool: Pool, username: str | None, attributes: dict[str, str], status: str, now: float) -> User:
        """A new user; without a username (pools signing in by email or phone) the sub is its username."""
        sub = str(uuid.uuid4())
        username = username or sub
        if self.get(pool, username) is not None:
            raise errors.username_exists()
        for attr in pool.username_attributes:
            if attributes.get(attr) and self.by_attribute(pool, attr, attributes[attr]):
                raise errors.username_exists(f"An account with the given {'email' if attr == 'email' else 'phone_number'}"
                                             " already exists.")
        cursor = self.store.execute(
            "INSERT INTO cognito_users(pool_id, username, username_key, sub, attributes, status, created, modified) "
            "VALUES(?,?,?,?,?,?,?,?)", (pool.id, username, pool.key(username), sub, "{}", status, now, now))
        user = self.by_id(cursor.lastrowid)
        self.set_attributes(user, attributes, now)
        return user

    def set_attributes(self, user: User, attributes: dict[str, str], now: float) -> None:
        user.attributes = {k: v for k, v in attributes.items() if k != "sub"}
        user.modified = now
        self.store.execute("UPDATE cognito_users SET attributes=?, modified=? WHERE id=?",
                           (json.dumps(user.attributes, ensure_ascii=False), now, user.id))
        self.store.execute("DELETE FROM cognito_user_attributes WHERE user_id=?", (user.id,))
        for name, value in user.attributes.items():
            stored = value.lower() if name == "email" else value
            self.store.execute("INSERT INTO cognito_user_attributes(user_id, pool_id, name, value) VALUES(?,?,?,?)",
                               (user.id, user.pool_id, name, stored))

    def set_password(self, pool: Pool, user: User, password: str, status: str, now: float,
                     temporary_until: float | None = None) -> None:
        salt, verifier = srp.verifier(pool.srp_name, user.username, password)
        user.password, user.srp_salt, user.srp_verifier = hash_password(password), salt, verifier
        user.status, user.temporary_until, user.modified = status, temporary_until, now
        self.store.execute("UPDATE cognito_users SET password=?, srp_salt=?, srp_verifier=?, status=?, "
                           "temporary_until=?, modified=? WHERE id=?",
                           (user.password, salt, verifier, status, temporary_until, now, user.id))

    def set_status(self, user: User, status: str, now: float) -> None:
        user.status, user.modified = status, now
        self.store.execute("UPDATE cognito_users SET status=?, modified=? WHERE id=?", (status, now, user.id))

    def set_enabled(self, user: User, enabled: bool, now: float) -> None:
        self.store.execute("UPDATE cognito_users SET enabled=?, modified=? WHERE id=?", (int(enabled), now, user.id))

    def sign_out(self, user: User, now: float) -> None:
        self.store.execute("UPDATE cognito_users SET signed_out=? WHERE id=?", (now, user.id))
        self.store.execute("UPDATE cognito_refresh_tokens SET revoked=1 WHERE user_id=?", (user.id,))

    def delete(self, user: User) -> None:
        self.store.execute("DELETE FROM cognito_users WHERE id=?", (user.id,))

    def count(self, pool_id: str) -> int:
        return self.store.one("SELECT COUNT(*) FROM cognito_users WHERE pool_id=?", (pool_id,))[0]

    def page(self, pool: Pool, filter_text: str | None, limit: int, after: int,
             group: str | None = None) -> tuple[list[User], int | None]:
        """A page of users in creation order, after user id ``after``; the next page's start."""
        where, args = ["u.pool_id=?", "u.id>?"], [pool.id, after]
        joins, join_args = "", []
        if group is not None:
            joins += " JOIN cognito_memberships m ON m.user_id=u.id AND m.group_name=?"
            join_args.append(group)
        if filter_text:
            m = _FILTER.match(filter_text)
            if m is None:
                raise errors.invalid("Error while parsing filter.")
            name, op, value = m[1], m[2], m[3].replace('\\"', '"')
            if name not in FILTERABLE:
                raise errors.invalid(f"Invalid search attribute: {name}")
            if name in ("username", "cognito:user_status", "status", "sub"):
                column = {"username": "u.username", "cognito:user_status": "u.status", "sub": "u.sub",
                          "status": "u.enabled"}[name]
                if name == "status":
                    value = {"Enabled": 1, "Disabled": 0}.get(value, -1)
                    op = "="
                if op == "=":
                    where.append(f"{column}=?")
                    args.append(value)
                else:
                    where.append(f"substr({column}, 1, ?)=?")
                    args += [len(value), value]
            else:
                # the pool named too, so the (pool_id, name, value) index finds the matches:
                # a filter's cost follows the users it matches, not the pool's size
                joins += " JOIN cognito_user_attributes a ON a.user_id=u.id AND a.pool_id=u.pool_id AND a.name=?"
                join_args.append(name)
                if name == "email":
                    value = value.lower()
                if op == "=":
                    where.append("a.value=?")
                    args.append(value)
                else:
                    where.append("a.value>=? AND a.value<?")
                    args += [value, value + "\U0010ffff"]
        rows = self.store.all(f"SELECT {', '.join('u.' + c for c in _COLUMNS.split(', '))} FROM cognito_users u"
                              f"{joins} WHERE {' AND '.join(where)} ORDER BY u.id LIMIT ?",
                              (*join_args, *args, limit + 1))
        users = [_user(r) for r in rows[:limit]]
        return users, (users[-1].id if len(rows) > limit else None)

    # -- one-time codes ------------------------------------------------------------

    def store_code(self, user: User, purpose: str, code: str, now: float, ttl: float) -> None:
        self.store.execute("INSERT INTO cognito_codes(user_id, purpose, digest, expires) VALUES(?,?,?,?) "
                           "ON CONFLICT(user_id, purpose) DO UPDATE SET digest=excluded.digest, "
                           "expires=excluded.expires", (user.id, purpose, _code_digest(user, code), now + ttl))

    def consume_code(self, user: User, purpose: str, code: str, now: float) -> None:
        """The code is right and fresh (then it is spent), or CodeMismatch/ExpiredCode."""
        row = self.store.one("SELECT digest, expires FROM cognito_codes WHERE user_id=? AND purpose=?",
                             (user.id, purpose))
        if row is None:
            raise errors.expired_code()
        if not hmac.compare_digest(row[0], _code_digest(user, code or "")):
            raise errors.code_mismatch()
        if row[1] <= now:
            raise errors.expired_code()
        self.store.execute("DELETE FROM cognito_codes WHERE user_id=? AND purpose=?", (user.id, purpose))


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def _code_digest(user: User, code: str) -> str:
    return hashlib.sha256(f"{user.sub}:{code}".encode()).hexdigest()
