"""The model: user pools, app clients, groups, domains and resource servers, and
the tables the users, codes, refresh tokens and signing keys live in.

A pool and a client keep their settings as the JSON AWS describes them with
(``UserPoolType``, ``UserPoolClientType`` without ids and dates), so Describe
answers what Create and Update were given, plus AWS's defaults. A pool id holds its
region (``us-east-1_AbC123xyz``), so a pool is found by id alone: unsigned calls
(InitiateAuth, SignUp...) carry no region of their own.
"""

from __future__ import annotations

import copy
import json
import secrets
import string
from dataclasses import dataclass
from typing import Any

from unkai.services.cognito import errors

MIGRATIONS = [
    """
    CREATE TABLE cognito_pools (
        id TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        config TEXT NOT NULL,
        created REAL NOT NULL,
        modified REAL NOT NULL
    );
    CREATE INDEX cognito_pools_by_region ON cognito_pools(account, region, created);
    CREATE TABLE cognito_clients (
        id TEXT PRIMARY KEY,
        pool_id TEXT NOT NULL REFERENCES cognito_pools(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        secret TEXT,
        config TEXT NOT NULL,
        created REAL NOT NULL,
        modified REAL NOT NULL
    );
    CREATE INDEX cognito_clients_by_pool ON cognito_clients(pool_id, created);
    CREATE TABLE cognito_groups (
        pool_id TEXT NOT NULL REFERENCES cognito_pools(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        description TEXT,
        role_arn TEXT,
        precedence INTEGER,
        created REAL NOT NULL,
        modified REAL NOT NULL,
        PRIMARY KEY (pool_id, name)
    );
    CREATE TABLE cognito_domains (
        domain TEXT PRIMARY KEY,
        pool_id TEXT NOT NULL REFERENCES cognito_pools(id) ON DELETE CASCADE,
        config TEXT NOT NULL
    );
    CREATE TABLE cognito_resource_servers (
        pool_id TEXT NOT NULL REFERENCES cognito_pools(id) ON DELETE CASCADE,
        identifier TEXT NOT NULL,
        name TEXT NOT NULL,
        scopes TEXT NOT NULL,
        PRIMARY KEY (pool_id, identifier)
    );
    CREATE TABLE cognito_users (
        id INTEGER PRIMARY KEY,
        pool_id TEXT NOT NULL REFERENCES cognito_pools(id) ON DELETE CASCADE,
        username TEXT NOT NULL,
        username_key TEXT NOT NULL,
        sub TEXT NOT NULL,
        attributes TEXT NOT NULL,
        status TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        password TEXT,
        srp_salt TEXT,
        srp_verifier TEXT,
        temporary_until REAL,
        signed_out REAL NOT NULL DEFAULT 0,
        created REAL NOT NULL,
        modified REAL NOT NULL,
        UNIQUE (pool_id, username_key)
    );
    CREATE INDEX cognito_users_by_sub ON cognito_users(sub);
    CREATE TABLE cognito_user_attributes (
        user_id INTEGER NOT NULL REFERENCES cognito_users(id) ON DELETE CASCADE,
        pool_id TEXT NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (user_id, name)
    );
    CREATE INDEX cognito_user_attributes_lookup ON cognito_user_attributes(pool_id, name, value);
    CREATE TABLE cognito_memberships (
        pool_id TEXT NOT NULL,
        group_name TEXT NOT NULL,
        user_id INTEGER NOT NULL REFERENCES cognito_users(id) ON DELETE CASCADE,
        PRIMARY KEY (pool_id, group_name, user_id),
        FOREIGN KEY (pool_id, group_name) REFERENCES cognito_groups(pool_id, name) ON DELETE CASCADE
    );
    CREATE INDEX cognito_memberships_by_user ON cognito_memberships(user_id);
    CREATE TABLE cognito_codes (
        user_id INTEGER NOT NULL REFERENCES cognito_users(id) ON DELETE CASCADE,
        purpose TEXT NOT NULL,
        digest TEXT NOT NULL,
        expires REAL NOT NULL,
        PRIMARY KEY (user_id, purpose)
    );
    CREATE TABLE cognito_refresh_tokens (
        digest TEXT PRIMARY KEY,
        pool_id TEXT NOT NULL,
        client_id TEXT NOT NULL,
        user_id INTEGER NOT NULL REFERENCES cognito_users(id) ON DELETE CASCADE,
        origin_jti TEXT NOT NULL,
        auth_time INTEGER NOT NULL,
        expires REAL NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX cognito_refresh_by_jti ON cognito_refresh_tokens(origin_jti);
    CREATE TABLE cognito_keys (
        pool_id TEXT PRIMARY KEY,
        kid TEXT NOT NULL,
        public_jwk TEXT NOT NULL,
        private_key BLOB NOT NULL
    );
    """,
    # the OAuth endpoints' authorization codes (oauth.py)
    """
CREATE TABLE cognito_auth_codes (
    digest TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES cognito_users(id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    challenge TEXT,
    method TEXT,
    nonce TEXT,
    expires REAL NOT NULL
);
    """,
]

# AWS's standard attributes, in DescribeUserPool's order, with their types.
STANDARD = [
    ("sub", "String", False, True), ("name", "String", True, False), ("given_name", "String", True, False),
    ("family_name", "String", True, False), ("middle_name", "String", True, False),
    ("nickname", "String", True, False), ("preferred_username", "String", True, False),
    ("profile", "String", True, False), ("picture", "String", True, False), ("website", "String", True, False),
    ("email", "String", True, False), ("email_verified", "Boolean", True, False), ("gender", "String", True, False),
    ("birthdate", "String", True, False), ("zoneinfo", "String", True, False), ("locale", "String", True, False),
    ("phone_number", "String", True, False), ("phone_number_verified", "Boolean", True, False),
    ("address", "String", True, False), ("updated_at", "Number", True, False),
]
STANDARD_NAMES = {name for name, *_ in STANDARD}

DEFAULT_POLICY = {"MinimumLength": 8, "RequireUppercase": True, "RequireLowercase": True, "RequireNumbers": True,
                  "RequireSymbols": True, "TemporaryPasswordValidityDays": 7}
DEFAULT_FLOWS = ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_CUSTOM_AUTH"]
UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


def _standard_schema() -> list[dict]:
    out = []
    for name, kind, mutable, required in STANDARD:
        attr: dict[str, Any] = {"Name": name, "AttributeDataType": kind, "DeveloperOnlyAttribute": False,
                                "Mutable": mutable, "Required": required}
        if kind == "String":
            attr["StringAttributeConstraints"] = {"MinLength": "1" if name == "sub" else "0",
                                                  "MaxLength": "2048"}
        elif kind == "Number":
            attr["NumberAttributeConstraints"] = {"MinValue": "0"}
        out.append(attr)
    return out


@dataclass
class Pool:
    id: str
    account: str
    region: str
    name: str
    config: dict
    created: float
    modified: float

    @property
    def arn(self) -> str:
        return f"arn:aws:cognito-idp:{self.region}:{self.account}:userpool/{self.id}"

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.id}"

    @property
    def srp_name(self) -> str:
        """The pool's name in SRP's password hash: the id after the region."""
        return self.id.split("_", 1)[1]

    @property
    def username_attributes(self) -> list[str]:
        return self.config.get("UsernameAttributes") or []

    @property
    def alias_attributes(self) -> list[str]:
        return self.config.get("AliasAttributes") or []

    @property
    def case_sensitive(self) -> bool:
        return bool((self.config.get("UsernameConfiguration") or {}).get("CaseSensitive", True))

    @property
    def password_policy(self) -> dict:
        return {**DEFAULT_POLICY, **((self.config.get("Policies") or {}).get("PasswordPolicy") or {})}

    @property
    def auto_verified(self) -> list[str]:
        return self.config.get("AutoVerifiedAttributes") or []

    @property
    def triggers(self) -> dict:
        return self.config.get("LambdaConfig") or {}

    def schema(self) -> dict[str, dict]:
        return {a["Name"]: a for a in self.config.get("SchemaAttributes") or []}

    def key(self, username: str) -> str:
        return username if self.case_sensitive else username.lower()


@dataclass
class Client:
    id: str
    pool_id: str
    name: str
    secret: str | None
    config: dict
    created: float
    modified: float

    @property
    def flows(self) -> set[str]:
        flows = set(self.config.get("ExplicitAuthFlows") or DEFAULT_FLOWS)
        legacy = {"ADMIN_NO_SRP_AUTH": "ALLOW_ADMIN_USER_PASSWORD_AUTH", "USER_PASSWORD_AUTH":
                  "ALLOW_USER_PASSWORD_AUTH", "CUSTOM_AUTH_FLOW_ONLY": "ALLOW_CUSTOM_AUTH"}
        for old, new in legacy.items():
            if old in flows:
                flows.add(new)
        if flows & set(legacy):
            # Legacy flags imply SRP and refresh, as on AWS.
            flows |= {"ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}
        return flows

    def validity(self, kind: str) -> int:
        """Seconds an ``access``, ``id`` or ``refresh`` token stays valid."""
        field = {"access": "AccessTokenValidity", "id": "IdTokenValidity", "refresh": "RefreshTokenValidity"}[kind]
        default_unit = "days" if kind == "refresh" else "hours"
        value = self.config.get(field)
        if value is None:
            return 30 * 86400 if kind == "refresh" else 3600
        unit = (self.config.get("TokenValidityUnits") or {}).get(
            {"access": "AccessToken", "id": "IdToken", "refresh": "RefreshToken"}[kind], default_unit)
        return int(value) * UNITS[unit]

    @property
    def prevent_user_existence_errors(self) -> bool:
        return self.config.get("PreventUserExistenceErrors") == "ENABLED"


def new_pool_id(region: str) -> str:
    alphabet = string.ascii_letters + string.digits
    return f"{region}_" + "".join(secrets.choice(alphabet) for _ in range(9))


def new_client_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(26))


def new_client_secret() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(51))


POOL_KEYS = ("Policies", "DeletionProtection", "LambdaConfig", "AutoVerifiedAttributes", "AliasAttributes",
             "UsernameAttributes", "SmsVerificationMessage", "EmailVerificationMessage", "EmailVerificationSubject",
             "VerificationMessageTemplate", "SmsAuthenticationMessage", "UserAttributeUpdateSettings",
             "MfaConfiguration", "DeviceConfiguration", "EmailConfiguration", "SmsConfiguration", "UserPoolTags",
             "AdminCreateUserConfig", "UserPoolAddOns", "UsernameConfiguration", "AccountRecoverySetting",
             "UserPoolTier")
UPDATABLE_POOL_KEYS = tuple(k for k in POOL_KEYS if k not in ("AliasAttributes", "UsernameAttributes",
                                                                "UsernameConfiguration"))


def pool_config(params: dict) -> dict:
    """A new pool's settings: what was given over AWS's defaults."""
    config: dict[str, Any] = {
        "Policies": {"PasswordPolicy": dict(DEFAULT_POLICY), "SignInPolicy": {"AllowedFirstAuthFactors":
                                                                             ["PASSWORD"]}},
        "DeletionProtection": "INACTIVE", "LambdaConfig": {}, "MfaConfiguration": "OFF",
        "VerificationMessageTemplate": {"DefaultEmailOption": "CONFIRM_WITH_CODE"},
        "EmailConfiguration": {"EmailSendingAccount": "COGNITO_DEFAULT"},
        "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": False, "UnusedAccountValidityDays": 7},
        "UserPoolTags": {}, "UserPoolTier": "ESSENTIALS",
        "AccountRecoverySetting": {"RecoveryMechanisms": [
            {"Priority": 1, "Name": "verified_email"}, {"Priority": 2, "Name": "verified_phone_number"}]},
    }
    for key in POOL_KEYS:
        if params.get(key) is not None:
            config[key] = copy.deepcopy(params[key])
    if params.get("Policies", {}).get("PasswordPolicy") is not None:
        config["Policies"]["PasswordPolicy"] = {**DEFAULT_POLICY, **params["Policies"]["PasswordPolicy"]}
    config["SchemaAttributes"] = _schema(params.get("Schema") or [])
    return config


def _schema(given: list[dict]) -> list[dict]:
    schema = _standard_schema()
    by_name = {a["Name"]: a for a in schema}
    for attr in given:
        name = attr.get("Name") or ""
        if name in by_name:
            by_name[name].update({k: v for k, v in attr.items() if k != "Name"})
            continue
        if not name or len(name) > 20:
            raise errors.invalid(f"Invalid attribute name: {name}")
        kind = attr.get("AttributeDataType") or "String"
        if attr.get("Required"):
            raise errors.invalid("Required custom attributes are not supported currently.")
        custom: dict[str, Any] = {"Name": f"custom:{name}", "AttributeDataType": kind,
                                  "DeveloperOnlyAttribute": bool(attr.get("DeveloperOnlyAttribute", False)),
                                  "Mutable": bool(attr.get("Mutable", True)), "Required": False}
        if kind == "String":
            custom["StringAttributeConstraints"] = attr.get("StringAttributeConstraints") or {}
        elif kind == "Number":
            custom["NumberAttributeConstraints"] = attr.get("NumberAttributeConstraints") or {}
        if f"custom:{name}" in by_name:
            raise errors.invalid(f"Existing attribute already has name custom:{name}.")
        schema.append(custom)
        by_name[custom["Name"]] = custom
    return schema


def add_custom_attributes(pool: Pool, given: list[dict]) -> None:
    existing = pool.schema()
    for attr in given:
        if f"custom:{attr.get('Name')}" in existing:
            raise errors.invalid(f"Existing attribute already has name custom:{attr.get('Name')}.")
    pool.config["SchemaAttributes"] = pool.config["SchemaAttributes"] + _schema(given)[len(STANDARD):]


CLIENT_KEYS = ("RefreshTokenValidity", "AccessTokenValidity", "IdTokenValidity", "TokenValidityUnits",
               "ReadAttributes", "WriteAttributes", "ExplicitAuthFlows", "SupportedIdentityProviders",
               "CallbackURLs", "LogoutURLs", "DefaultRedirectURI", "AllowedOAuthFlows", "AllowedOAuthScopes",
               "AllowedOAuthFlowsUserPoolClient", "AnalyticsConfiguration", "PreventUserExistenceErrors",
               "EnableTokenRevocation", "EnablePropagateAdditionalUserContextData", "AuthSessionValidity",
               "RefreshTokenRotation")


def client_config(params: dict, old: dict | None = None) -> dict:
    config: dict[str, Any] = {"RefreshTokenValidity": 30, "TokenValidityUnits": {}, "AllowedOAuthFlowsUserPoolClient":
                              False, "EnableTokenRevocation": True, "EnablePropagateAdditionalUserContextData": False,
                              "AuthSessionValidity": 3}
    if old is not None:
        config = {k: v for k, v in old.items() if k in ("TokenValidityUnits",)} | config
    for key in CLIENT_KEYS:
        if params.get(key) is not None:
            config[key] = copy.deepcopy(params[key])
    flows = config.get("ExplicitAuthFlows")
    if flows:
        legacy = {"ADMIN_NO_SRP_AUTH", "CUSTOM_AUTH_FLOW_ONLY", "USER_PASSWORD_AUTH"}
        if set(flows) & legacy and set(flows) - legacy:
            raise errors.invalid("ExplicitAuthFlows can not have both ALLOW_XXX and legacy values.")
    for key, low, high in (("AccessTokenValidity", 300, 86400), ("IdTokenValidity", 300, 86400),
                           ("RefreshTokenValidity", 3600, 315360000)):
        value = config.get(key)
        if value is None:
            continue
        unit = (config.get("TokenValidityUnits") or {}).get(key.replace("Validity", ""),
                                                              "days" if key.startswith("Refresh") else "hours")
        seconds = int(value) * UNITS.get(unit, 1)
        if not low <= seconds <= high:
            what = {"AccessTokenValidity": "Access", "IdTokenValidity": "Id", "RefreshTokenValidity": "Refresh"}[key]
            raise errors.invalid(f"Invalid range for token validity. {what} token validity must be between "
                                 f"{_human(low)} and {_human(high)}.")
    return config


def _human(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400} days" if seconds != 86400 else "1 day"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hour" + ("s" if seconds != 3600 else "")
    return f"{seconds // 60} minutes"


class Pools:
    """Queries over pools, clients, groups and domains (inside the caller's transaction)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    # pools
    def get(self, pool_id: str) -> Pool:
        row = self.store.one("SELECT id, account, region, name, config, created, modified FROM cognito_pools "
                             "WHERE id=?", (pool_id or "",))
        if row is None:
            raise errors.pool_not_found(pool_id)
        return Pool(*row[:4], json.loads(row[4]), *row[5:])

    def list(self, account: str, region: str) -> list[Pool]:
        rows = self.store.all("SELECT id, account, region, name, config, created, modified FROM cognito_pools "
                              "WHERE account=? AND region=? ORDER BY created, id", (account, region))
        return [Pool(*r[:4], json.loads(r[4]), *r[5:]) for r in rows]

    def save(self, pool: Pool) -> None:
        self.store.execute(
            "INSERT INTO cognito_pools(id, account, region, name, config, created, modified) VALUES(?,?,?,?,?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET name=excluded.name, config=excluded.config, modified=excluded.modified",
            (pool.id, pool.account, pool.region, pool.name, json.dumps(pool.config), pool.created, pool.modified))

    def delete(self, pool_id: str) -> None:
        self.store.execute("DELETE FROM cognito_pools WHERE id=?", (pool_id,))

    # clients
    def client(self, client_id: str, pool_id: str | None = None) -> Client:
        row = self.store.one("SELECT id, pool_id, name, secret, config, created, modified FROM cognito_clients "
                             "WHERE id=?", (client_id or "",))
        if row is None or (pool_id is not None and row[1] != pool_id):
            raise errors.client_not_found(client_id)
        return Client(*row[:4], json.loads(row[4]), *row[5:])

    def clients(self, pool_id: str) -> list[Client]:
        rows = self.store.all("SELECT id, pool_id, name, secret, config, created, modified FROM cognito_clients "
                              "WHERE pool_id=? ORDER BY created, id", (pool_id,))
        return [Client(*r[:4], json.loads(r[4]), *r[5:]) for r in rows]

    def save_client(self, c: Client) -> None:
        self.store.execute(
            "INSERT INTO cognito_clients(id, pool_id, name, secret, config, created, modified) VALUES(?,?,?,?,?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET name=excluded.name, config=excluded.config, modified=excluded.modified",
            (c.id, c.pool_id, c.name, c.secret, json.dumps(c.config), c.created, c.modified))

    # groups
    def group(self, pool_id: str, name: str) -> dict:
        row = self.store.one("SELECT name, description, role_arn, precedence, created, modified FROM cognito_groups "
                             "WHERE pool_id=? AND name=?", (pool_id, name))
        if row is None:
            raise errors.group_not_found()
        return self._group(pool_id, row)

    @staticmethod
    def _group(pool_id: str, row: tuple) -> dict:
        out = {"GroupName": row[0], "UserPoolId": pool_id, "LastModifiedDate": row[5], "CreationDate": row[4]}
        if row[1] is not None:
            out["Description"] = row[1]
        if row[2] is not None:
            out["RoleArn"] = row[2]
        if row[3] is not None:
            out["Precedence"] = row[3]
        return out

    def groups(self, pool_id: str) -> list[dict]:
        rows = self.store.all("SELECT name, description, role_arn, precedence, created, modified FROM cognito_groups "
                              "WHERE pool_id=? ORDER BY name", (pool_id,))
        return [self._group(pool_id, r) for r in rows]

    def groups_of(self, user_id: int, pool_id: str) -> list[dict]:
        rows = self.store.all(
            "SELECT g.name, g.description, g.role_arn, g.precedence, g.created, g.modified FROM cognito_memberships m "
            "JOIN cognito_groups g ON g.pool_id=m.pool_id AND g.name=m.group_name WHERE m.user_id=? "
            "ORDER BY g.precedence IS NULL, g.precedence, g.name", (user_id,))
        return [self._group(pool_id, r) for r in rows]

    # domains
    def domain(self, domain: str) -> tuple[str, dict] | None:
        row = self.store.one("SELECT pool_id, config FROM cognito_domains WHERE domain=?", (domain,))
        return (row[0], json.loads(row[1])) if row else None

    def domain_of(self, pool_id: str) -> str | None:
        row = self.store.one("SELECT domain FROM cognito_domains WHERE pool_id=?", (pool_id,))
        return row[0] if row else None

    # resource servers
    def resource_servers(self, pool_id: str) -> list[dict]:
        rows = self.store.all("SELECT identifier, name, scopes FROM cognito_resource_servers WHERE pool_id=? "
                              "ORDER BY identifier", (pool_id,))
        return [{"UserPoolId": pool_id, "Identifier": r[0], "Name": r[1], "Scopes": json.loads(r[2])} for r in rows]
