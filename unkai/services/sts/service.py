"""STS (query protocol, regional and global endpoints): who a caller is, and temporary
credentials that unkai itself then accepts.

Every credential unkai knows resolves to an ``Identity``: the configured key (or any
key when signatures are not verified) is the account's root user, an IAM access key is
its user, a key handed out by AssumeRole, GetSessionToken or GetFederationToken is that
session, and each function's workers get a session of its execution role
(``function_credentials``). Sessions live in ``sts_sessions`` (secrets sealed) and expire
on unkai's clock; the gateway's signature check asks ``credential(access_key)``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
from dataclasses import dataclass
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext, Service

log = logging.getLogger(__name__)

MIGRATIONS = [
    """
    CREATE TABLE sts_sessions (
        access_key TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        secret BLOB NOT NULL,
        token TEXT NOT NULL,
        kind TEXT NOT NULL,
        arn TEXT NOT NULL,
        user_id TEXT NOT NULL,
        role_arn TEXT,
        policy TEXT,
        expires REAL NOT NULL
    );
    """
]

SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")
FUNCTION_SESSION = 12 * 3600  # how long a function's role credentials last; renewed well before


@dataclass
class Identity:
    """A credential and who it stands for."""

    kind: str  # "root", "user", "assumed-role", "federated-user"
    account: str
    arn: str  # the caller ARN GetCallerIdentity reports
    user_id: str
    secret: str = ""
    token: str = ""
    expires: float | None = None  # on unkai's clock; None: long-term
    active: bool = True
    role_arn: str = ""  # for assumed-role sessions: the role (what policies are read from)
    policy: str | None = None  # a session policy

    @property
    def principal_arn(self) -> str:
        """The ARN policies are evaluated for (the role, not the session)."""
        return self.role_arn or self.arn


def _error(code: str, message: str) -> ServiceError:
    return ServiceError(code, message)


def _validation(value: Any, member: str, constraint: str) -> ServiceError:
    return ServiceError("ValidationError", f"1 validation error detected: Value '{value}' at '{member}' failed to "
                        f"satisfy constraint: {constraint}")


def _token() -> str:
    return "IQoJb3JpZ2luX2VjE" + base64.b64encode(os.urandom(96)).decode()


def _key_id() -> str:
    return "ASIA" + base64.b32encode(os.urandom(10)).decode()[:16]


def _secret() -> str:
    return base64.b64encode(os.urandom(30)).decode().replace("/", "+")[:40]


class STS(Service):
    name = "sts"
    migrations = MIGRATIONS
    anonymous_operations = frozenset({"AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"})  # unsigned, as on AWS

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self._cache: dict[str, Identity | None] = {}
        self._functions: dict[tuple[str, str, str], Identity] = {}
        self._jwks: dict[str, tuple[float, dict]] = {}  # issuer -> (until, its JWKS)

    async def start(self) -> None:
        gateway = getattr(self.cloud, "gateway", None)
        if gateway is not None and getattr(gateway, "authorizer", None) is not None:
            gateway.authorizer.credentials = self.credential

    async def resetting(self) -> None:
        # Function credentials live only in memory and survive: the workers holding them may too.
        self._cache = {k: v for k, v in self._cache.items() if v is not None and v in self._functions.values()}

    # -- identities ---------------------------------------------------------------------------

    def root(self, account: str | None = None) -> Identity:
        account = account or self.config.account_id
        return Identity("root", account, f"arn:aws:iam::{account}:root", account,
                        self.config.secret_key or "")

    def credential(self, access_key: str) -> Identity | None:
        """Who ``access_key`` is and its secret, or None when unkai never issued it."""
        if access_key == self.config.access_key:
            return self.root()
        if access_key in self._cache:
            return self._cache[access_key]
        found = None
        if access_key.startswith("AKIA"):
            key = self.cloud.service("iam").access_key(access_key)
            if key is not None:
                account, user_arn, user_id, secret, status = key
                found = Identity("user", account, user_arn, user_id, secret, active=status == "Active")
        elif access_key.startswith("ASIA"):
            row = self.store.one("SELECT account, secret, token, kind, arn, user_id, role_arn, policy, expires "
                                 "FROM sts_sessions WHERE access_key=?", (access_key,))
            if row is not None:
                secret = self.cloud.sealer.unseal(row[1], access_key.encode()).decode()
                found = Identity(row[3], row[0], row[4], row[5], secret, row[2], row[8], True, row[6] or "", row[7])
        if found is not None or len(self._cache) < 10000:
            self._cache[access_key] = found
        return found

    def forget(self) -> None:
        """Drop cached credentials (an access key was changed or deleted in IAM)."""
        self._cache = {k: v for k, v in self._cache.items() if k.startswith("ASIA")}

    def identity_of(self, ctx: RequestContext) -> Identity:
        """The caller of a request: a known credential, else the account's root user
        (signatures are not verified, so any key is the account's)."""
        cached = ctx.extra.get("identity")
        if cached is not None:
            return cached
        found = self.credential(ctx.access_key) if ctx.access_key else None
        return found or self.root(ctx.account)

    def _issue(self, account: str, kind: str, arn: str, user_id: str, duration: int, role_arn: str = "",
               policy: str | None = None) -> tuple[Identity, str]:
        key_id, secret, token = _key_id(), _secret(), _token()
        expires = self.clock.now() + duration
        self.store.execute(
            "INSERT INTO sts_sessions (access_key, account, secret, token, kind, arn, user_id, role_arn, policy, "
            "expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key_id, account, self.cloud.sealer.seal(secret.encode(), key_id.encode()), token, kind, arn, user_id,
             role_arn, policy, expires))
        self.store.execute("DELETE FROM sts_sessions WHERE expires < ?", (self.clock.now() - 86400,))
        identity = Identity(kind, account, arn, user_id, secret, token, expires, True, role_arn, policy)
        self._cache.pop(key_id, None)
        return identity, key_id

    @staticmethod
    def _credentials(identity: Identity, key_id: str) -> dict:
        return {"AccessKeyId": key_id, "SecretAccessKey": identity.secret, "SessionToken": identity.token,
                "Expiration": identity.expires}

    def function_credentials(self, account: str, role_arn: str, function_name: str) -> dict[str, str]:
        """Temporary credentials of a function's execution role, as its workers get them on
        AWS (session name = the function's name). The same ones are handed out until a
        third of their life is left, then fresh ones (new workers pick them up)."""
        key = (account, role_arn, function_name)
        found = self._functions.get(key)
        if found is None or (found.expires or 0) - self.clock.now() < FUNCTION_SESSION / 3:
            role_name = role_arn.rsplit("/", 1)[-1]
            arn = f"arn:aws:sts::{account}:assumed-role/{role_name}/{function_name}"
            role = self.cloud.service("iam").role(account, role_name)
            role_id = role["RoleId"] if role else _role_id(role_arn)
            key_id, secret, token = _key_id(), _secret(), _token()
            found = Identity("assumed-role", account, arn, f"{role_id}:{function_name}", secret, token,
                             self.clock.now() + FUNCTION_SESSION, True, role_arn)
            found.key_id = key_id  # type: ignore[attr-defined]
            self._functions[key] = found
            self._cache[key_id] = found
        return {"AWS_ACCESS_KEY_ID": found.key_id, "AWS_SECRET_ACCESS_KEY": found.secret,  # type: ignore[attr-defined]
                "AWS_SESSION_TOKEN": found.token}

    def stale(self, env: dict[str, str]) -> bool:
        """Whether the function credentials in a worker environment are due for renewal."""
        found = self._cache.get(env.get("AWS_ACCESS_KEY_ID", ""))
        return found is None or (found.expires or 0) - self.clock.now() < FUNCTION_SESSION / 3

    # -- operations ------------------------------------------------------------------------------

    def get_caller_identity(self, ctx: RequestContext, params: dict) -> dict:
        who = self.identity_of(ctx)
        return {"UserId": who.user_id, "Account": who.account, "Arn": who.arn}

    def get_access_key_info(self, ctx: RequestContext, params: dict) -> dict:
        key = params["AccessKeyId"]
        if len(key) < 16:
            raise _validation(key, "accessKeyId", "Member must have length greater than or equal to 16")
        found = self.credential(key)
        return {"Account": found.account if found else self.config.account_id}

    def assume_role(self, ctx: RequestContext, params: dict) -> dict:
        role_arn, session = params["RoleArn"], params["RoleSessionName"]
        if not SESSION_NAME.match(session or ""):
            raise _validation(session, "roleSessionName", "Member must satisfy regular expression pattern: "
                              "[\\w+=,.@-]*")
        match = re.match(r"^arn:aws[a-z-]*:iam::(\d{12}):role/(?:.*/)?([\w+=,.@-]+)$", role_arn or "")
        if match is None:
            raise _validation(role_arn, "roleArn", "Member must have length greater than or equal to 20")
        account, role_name = match.groups()
        caller = self.identity_of(ctx)
        role = self.cloud.service("iam").role(account, role_name)
        duration = params.get("DurationSeconds") or 3600
        maximum = (role or {}).get("MaxSessionDuration", 3600)
        if duration < 900:
            raise _validation(duration, "durationSeconds", "Member must have value greater than or equal to 900")
        if duration > maximum:
            raise _error("ValidationError", f"The requested DurationSeconds exceeds the MaxSessionDuration set for "
                         f"this role.")
        if caller.kind == "assumed-role" and duration > 3600:
            raise _error("ValidationError", "The requested DurationSeconds exceeds the 1 hour session limit for "
                         "roles assumed by role chaining.")
        enforce = self.cloud.service("iam").enforcing
        if enforce and not self._trusted(role, caller, "sts:AssumeRole", params):
            self.cloud.service("iam").denied(
                caller, "sts:AssumeRole", role_arn, "because the role's trust policy does not allow it"
                if role else "because the role does not exist")
            if enforce == "on":
                raise _error("AccessDenied", f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on "
                             f"resource: {role_arn}")
        policy = self._session_policy(params)
        role_id = role["RoleId"] if role else _role_id(role_arn)
        arn = f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}"
        identity, key_id = self._issue(account, "assumed-role", arn, f"{role_id}:{session}", duration,
                                       role["Arn"] if role else role_arn, policy)
        out: dict[str, Any] = {"Credentials": self._credentials(identity, key_id),
                               "AssumedRoleUser": {"AssumedRoleId": identity.user_id, "Arn": arn},
                               "PackedPolicySize": min(100, len(policy or "") // 20) if policy else 0}
        if params.get("SourceIdentity"):
            out["SourceIdentity"] = params["SourceIdentity"]
        return out

    def _session_policy(self, params: dict) -> str | None:
        from unkai.services.iam import policies

        statements = []
        if params.get("Policy"):
            if len(params["Policy"]) > 2048:
                raise _error("PackedPolicyTooLarge", "Packed policy consumes 100% of allotted space, please use "
                             "smaller policy.")
            try:
                doc = policies.parse(params["Policy"], "identity")
            except policies.PolicyError as exc:
                raise _error("MalformedPolicyDocument", str(exc)) from None
            statements += doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
        iam = self.cloud.service("iam")
        for ref in params.get("PolicyArns") or []:
            policy = iam.entities.policy(self.config.account_id, ref.get("arn", ""))
            if policy is not None:
                doc = json.loads(iam.entities.default_document(policy))
                statements += doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
        if not params.get("Policy") and not params.get("PolicyArns"):
            return None
        return json.dumps({"Version": "2012-10-17", "Statement": statements})

    def _trusted(self, role: dict | None, caller: Identity, action: str, params: dict,
                 extra: dict | None = None) -> bool:
        from unkai.services.iam import policies

        if role is None:
            return False
        context = {"aws:PrincipalArn": caller.principal_arn, "unkai:SessionArn": caller.arn,
                   "aws:PrincipalAccount": caller.account, "sts:ExternalId": params.get("ExternalId"),
                   "sts:RoleSessionName": params.get("RoleSessionName"), **(extra or {})}
        compiled = policies.compile_text(role["AssumeRolePolicyDocument"])
        context["unkai:AccountMatches"] = caller.kind == "root"
        if policies.evaluate(action, role["Arn"], context, [], [compiled]).allowed:
            return True  # the trust policy names the caller itself (or it is the account's root)
        if caller.kind not in ("user", "assumed-role") or action != "sts:AssumeRole":
            return False
        # A trust policy naming the caller's account delegates to the caller's own policies.
        context["unkai:AccountMatches"] = True
        if not policies.evaluate(action, role["Arn"], context, [], [compiled]).allowed:
            return False
        found = self.cloud.service("iam").principal_policies(caller.account, caller.principal_arn)
        if found is None:
            return False
        session = [policies.compile_text(caller.policy)] if caller.policy else None
        return policies.evaluate(action, role["Arn"], context, found[0], None, found[1], session).allowed

    def get_session_token(self, ctx: RequestContext, params: dict) -> dict:
        caller = self.identity_of(ctx)
        if caller.kind == "assumed-role":
            raise _error("AccessDenied", "Cannot call GetSessionToken with session credentials")
        duration = params.get("DurationSeconds") or 43200
        if not 900 <= duration <= 129600:
            raise _validation(duration, "durationSeconds", "Member must have value less than or equal to 129600")
        identity, key_id = self._issue(caller.account, caller.kind, caller.arn, caller.user_id, duration)
        return {"Credentials": self._credentials(identity, key_id)}

    def get_federation_token(self, ctx: RequestContext, params: dict) -> dict:
        caller = self.identity_of(ctx)
        name = params["Name"]
        if not re.match(r"^[\w+=,.@-]{2,32}$", name or ""):
            raise _validation(name, "name", "Member must satisfy regular expression pattern: [\\w+=,.@-]*")
        duration = params.get("DurationSeconds") or 43200
        arn = f"arn:aws:sts::{caller.account}:federated-user/{name}"
        identity, key_id = self._issue(caller.account, "federated-user", arn, f"{caller.account}:{name}", duration,
                                       caller.principal_arn, self._session_policy(params))
        return {"Credentials": self._credentials(identity, key_id),
                "FederatedUser": {"FederatedUserId": identity.user_id, "Arn": arn}, "PackedPolicySize": 0}

    async def assume_role_with_web_identity(self, ctx: RequestContext, params: dict) -> dict:
        import jwt

        role_arn, session = params["RoleArn"], params["RoleSessionName"]
        if not SESSION_NAME.match(session or ""):
            raise _validation(session, "roleSessionName", "Member must satisfy regular expression pattern: "
                              "[\\w+=,.@-]*")
        try:
            claims = jwt.decode(params["WebIdentityToken"], options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _error("InvalidIdentityToken", "Couldn't parse the incoming token.") from None
        await self._verify_web_identity(params["WebIdentityToken"], str(claims.get("iss", "")))
        if claims.get("exp") is not None and float(claims["exp"]) < self.clock.now():
            raise _error("ExpiredTokenException", "Token is expired.")
        issuer = str(claims.get("iss", "")).removeprefix("https://").removeprefix("http://").rstrip("/")
        match = re.match(r"^arn:aws[a-z-]*:iam::(\d{12}):role/(?:.*/)?([\w+=,.@-]+)$", role_arn or "")
        if match is None:
            raise _validation(role_arn, "roleArn", "Member must have length greater than or equal to 20")
        account, role_name = match.groups()
        iam = self.cloud.service("iam")
        role = iam.role(account, role_name)
        provider = f"arn:aws:iam::{account}:oidc-provider/{issuer}"
        if iam.enforcing:
            if iam.entities.get(account, "oidc", provider) is None:
                raise _error("InvalidIdentityToken", f"No OpenIDConnect provider found in your account for "
                             f"https://{issuer}")
            caller = Identity("federated-user", account, provider, provider)
            aud = claims.get("aud")
            extra = {"unkai:Federated": provider, f"{issuer}:aud": aud, f"{issuer}:sub": claims.get("sub")}
            if not self._trusted(role, caller, "sts:AssumeRoleWithWebIdentity", params, extra) \
                    and iam.enforcing == "on":
                raise _error("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
        duration = params.get("DurationSeconds") or 3600
        role_id = role["RoleId"] if role else _role_id(role_arn)
        arn = f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}"
        identity, key_id = self._issue(account, "assumed-role", arn, f"{role_id}:{session}", duration,
                                       role["Arn"] if role else role_arn, self._session_policy(params))
        return {"Credentials": self._credentials(identity, key_id), "SubjectFromWebIdentityToken":
                str(claims.get("sub", "")), "AssumedRoleUser": {"AssumedRoleId": identity.user_id, "Arn": arn},
                "PackedPolicySize": 0, "Provider": str(claims.get("iss", "")),
                "Audience": claims["aud"][0] if isinstance(claims.get("aud"), list) else str(claims.get("aud", ""))}

    async def _verify_web_identity(self, token: str, issuer: str) -> None:
        """The token's signature, checked against its issuer's published keys as AWS does: a
        Cognito pool's straight from unkai, any other issuer's from its OpenID configuration."""
        import jwt

        keys = await self._issuer_keys(issuer)
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            jwk = next((k for k in keys.get("keys", []) if kid is None or k.get("kid") == kid), None)
            if jwk is None:
                raise jwt.InvalidTokenError("no key")
            key = jwt.PyJWK(jwk)
            jwt.decode(token, key.key, algorithms=[jwk.get("alg") or key.algorithm_name],
                       options={"verify_aud": False, "verify_exp": False, "verify_iat": False, "verify_nbf": False})
        except (jwt.PyJWTError, ValueError, TypeError):
            raise _error("InvalidIdentityToken", "The web identity token that was passed could not be validated by "
                         "Amazon Web Services. Get a new identity token from the identity provider and then retry "
                         "the request.") from None

    async def _issuer_keys(self, issuer: str) -> dict:
        pool = re.match(r"^https://cognito-idp\.[a-z0-9-]+\.amazonaws\.com/([\w-]+)$", issuer)
        if pool is not None and "cognito-idp" in self.cloud.services:
            keys = self.cloud.services["cognito-idp"].keys.jwks(pool.group(1))
            if keys is not None:
                return keys
        cached = self._jwks.get(issuer)
        if cached is not None and cached[0] > self.clock.now():
            return cached[1]
        import httpx

        unreachable = _error("IDPCommunicationError", "The request could not be fulfilled because the identity "
                             "provider (IDP) that was asked to verify the incoming identity token could not be "
                             "reached.")
        if not issuer.startswith(("https://", "http://")):
            raise unreachable
        try:
            async with httpx.AsyncClient(timeout=5.0) as http:
                config = (await http.get(issuer.rstrip("/") + "/.well-known/openid-configuration")).json()
                keys = (await http.get(config["jwks_uri"])).json()
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            raise unreachable from None
        self._jwks[issuer] = (self.clock.now() + 600, keys)
        return keys

    def decode_authorization_message(self, ctx: RequestContext, params: dict) -> dict:
        text = params["EncodedMessage"]
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            mac, body = raw[:16], raw[16:]
            if not hmac.compare_digest(mac, self._mac(body)):
                raise ValueError
            json.loads(body)
        except ValueError:
            raise _error("InvalidAuthorizationMessageException", "The encoded message is invalid.") from None
        return {"DecodedMessage": body.decode()}

    def encode_authorization_message(self, message: dict) -> str:
        """An opaque message only DecodeAuthorizationMessage opens (denials carry one)."""
        body = json.dumps(message).encode()
        return base64.urlsafe_b64encode(self._mac(body) + body).decode().rstrip("=")

    def _mac(self, body: bytes) -> bytes:
        key = self.store.get_meta("sts_message_key")
        if key is None:
            key = os.urandom(16).hex()
            with self.store.transaction():
                self.store.set_meta("sts_message_key", key)
        return hmac.new(key.encode(), body, hashlib.sha256).digest()[:16]


def _user_id(account: str, user_arn: str) -> str:
    return "AIDA" + base64.b32encode(hashlib.sha1(user_arn.encode()).digest()).decode()[:17]


def _role_id(role_arn: str) -> str:
    return "AROA" + base64.b32encode(hashlib.sha1(role_arn.encode()).digest()).decode()[:17]
