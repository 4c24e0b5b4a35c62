"""Sign-in: InitiateAuth / AdminInitiateAuth and RespondToAuthChallenge /
AdminRespondToAuthChallenge, and the tokens they end with.

Flows: USER_PASSWORD_AUTH, ADMIN_USER_PASSWORD_AUTH (ADMIN_NO_SRP_AUTH), USER_SRP_AUTH
with PASSWORD_VERIFIER (``srp.py``), REFRESH_TOKEN_AUTH, CUSTOM_AUTH with the
Define/Create/VerifyAuthChallenge triggers, and the NEW_PASSWORD_REQUIRED challenge.
Between steps nothing is stored: the ``Session`` (and SRP's ``SECRET_BLOCK``) is the
step's state sealed with ``cloud.sealer``, so it cannot be forged or read, and
expires after the client's AuthSessionValidity on unkai's clock.

Everything here is async because triggers are Lambda invocations: state is read
outside a transaction, triggers are awaited, then each write is its own transaction.
"""

from __future__ import annotations

import base64
import hmac
import json
import uuid
from typing import TYPE_CHECKING, Any

from unkai.services.cognito import errors, srp, tokens, triggers
from unkai.services.cognito.pools import Client, Pool
from unkai.services.cognito.users import User, check_password, check_policy, secret_hash, validate_attributes

if TYPE_CHECKING:
    from unkai.services.cognito.service import CognitoIdp

ADMIN_FLOWS = {"ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"}
FLOW_PERMISSION = {"USER_PASSWORD_AUTH": "ALLOW_USER_PASSWORD_AUTH", "ADMIN_USER_PASSWORD_AUTH":
                   "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH": "ALLOW_ADMIN_USER_PASSWORD_AUTH",
                   "USER_SRP_AUTH": "ALLOW_USER_SRP_AUTH", "REFRESH_TOKEN_AUTH": "ALLOW_REFRESH_TOKEN_AUTH",
                   "REFRESH_TOKEN": "ALLOW_REFRESH_TOKEN_AUTH", "CUSTOM_AUTH": "ALLOW_CUSTOM_AUTH"}


class Flows:
    def __init__(self, service: "CognitoIdp") -> None:
        self.service = service
        self.cloud = service.cloud
        self.store = service.store
        self.clock = service.clock
        self.pools = service.pools
        self.users = service.users
        self.keys = service.keys

    # -- sessions -------------------------------------------------------------------

    def _seal(self, data: dict, client: Client) -> str:
        data = {**data, "exp": self.clock.now() + int(client.config.get("AuthSessionValidity") or 3) * 60,
                "n": uuid.uuid4().hex}
        return base64.b64encode(self.cloud.sealer.seal(json.dumps(data).encode(), b"cognito-session")).decode()

    def _unseal(self, text: str | None, client: Client, kind: str) -> dict:
        try:
            data = json.loads(self.cloud.sealer.unseal(base64.b64decode(text or "", validate=True),
                                                       b"cognito-session"))
        except (ValueError, TypeError):
            raise errors.not_authorized("Invalid session for the user.") from None
        if data.get("c") != client.id or data.get("k") != kind:
            raise errors.not_authorized("Invalid session for the user.")
        if data["exp"] <= self.clock.now():
            raise errors.not_authorized("Invalid session for the user, session is expired.")
        return data

    # -- checks ---------------------------------------------------------------------

    def _check_secret(self, client: Client, params: dict, usernames: list[str]) -> None:
        if not client.secret:
            return
        given = params.get("SECRET_HASH")
        if not given:
            raise errors.not_authorized(f"Client {client.id} is configured with secret but SECRET_HASH was not "
                                        "received")
        if not any(hmac.compare_digest(given, secret_hash(u, client.id, client.secret)) for u in usernames if u):
            raise errors.not_authorized(f"Unable to verify secret hash for client {client.id}")

    def _client(self, client_id: str, pool_id: str | None = None) -> tuple[Pool, Client]:
        client = self.pools.client(client_id, pool_id)
        return self.pools.get(client.pool_id), client

    def _user_or_fail(self, pool: Pool, client: Client, name: str) -> User:
        user = self.users.find(pool, name)
        if user is None:
            raise errors.not_authorized() if client.prevent_user_existence_errors else errors.user_not_found()
        return user

    # -- InitiateAuth -----------------------------------------------------------------

    async def initiate(self, params: dict, admin: bool) -> dict:
        pool_id = params.get("UserPoolId") if admin else None
        if admin:
            self.pools.get(pool_id)
        pool, client = self._client(params["ClientId"], pool_id)
        flow = params["AuthFlow"]
        auth = params.get("AuthParameters") or {}
        metadata = params.get("ClientMetadata") or {}
        if flow in ADMIN_FLOWS and not admin:
            raise errors.invalid("Initiate Auth method not supported.")
        if flow == "USER_PASSWORD_AUTH" and admin:
            raise errors.invalid("Initiate Auth method not supported.")
        permission = FLOW_PERMISSION.get(flow)
        if permission is None:
            raise errors.invalid(f"Initiate Auth method not supported.")
        if permission not in client.flows:
            raise errors.invalid(f"{flow} flow not enabled for this client" if flow != "CUSTOM_AUTH" else
                                 "Custom auth flow not enabled for this client")
        if flow in ("REFRESH_TOKEN_AUTH", "REFRESH_TOKEN"):
            return await self._refresh(pool, client, auth, metadata)
        name = auth.get("USERNAME")
        if not name:
            raise errors.invalid("Missing required parameter USERNAME")
        if flow == "USER_SRP_AUTH":
            if not auth.get("SRP_A"):
                raise errors.invalid("Missing required parameter SRP_A")
            self._check_secret(client, auth, [name])
            user = self._user_or_fail(pool, client, name)
            self._check_secret(client, auth, [name, user.username])
            await self._pre_authentication(pool, client, user, metadata)
            if not user.srp_verifier:
                raise errors.not_authorized()
            b = srp.private_b()
            big_b = srp.public_b(b, user.srp_verifier)
            block = self.cloud.sealer.seal(json.dumps({
                "k": "srp", "c": client.id, "u": user.id, "b": f"{b:x}", "A": auth["SRP_A"],
                "exp": self.clock.now() + 300}).encode(), b"cognito-srp")
            return {"ChallengeName": "PASSWORD_VERIFIER", "ChallengeParameters": {
                "SALT": user.srp_salt, "SECRET_BLOCK": base64.b64encode(block).decode(), "SRP_B": f"{big_b:x}",
                "USERNAME": user.username, "USER_ID_FOR_SRP": user.username}}
        if flow == "CUSTOM_AUTH":
            self._check_secret(client, auth, [name])
            user = self._user_or_fail(pool, client, name)
            return await self._custom_step(pool, client, user, [], metadata)
        password = auth.get("PASSWORD")
        if password is None:
            raise errors.invalid("Missing required parameter PASSWORD")
        self._check_secret(client, auth, [name])
        user = self.users.find(pool, name)
        if user is None:
            user = await self.service.migrate_user(pool, client, name, password, metadata)
        if user is None:
            raise errors.not_authorized() if client.prevent_user_existence_errors else errors.user_not_found()
        await self._pre_authentication(pool, client, user, metadata)
        if not check_password(user.password, password):
            raise errors.not_authorized()
        return await self.after_password(pool, client, user, metadata)

    async def _pre_authentication(self, pool: Pool, client: Client, user: User, metadata: dict) -> None:
        if not user.enabled:
            raise errors.not_authorized("User is disabled.")
        await triggers.run(self.cloud, pool, "PreAuthentication", "PreAuthentication_Authentication", user.username,
                           {"userAttributes": self._attributes(user), "validationData": {},
                            "userNotFound": False}, {}, client.id)

    @staticmethod
    def _attributes(user: User) -> dict[str, str]:
        return {"sub": user.sub, **user.attributes, "cognito:user_status": user.status}

    async def after_password(self, pool: Pool, client: Client, user: User, metadata: dict) -> dict:
        """The password was right: a challenge or tokens, by the user's status."""
        if user.status == "UNCONFIRMED":
            raise errors.not_confirmed()
        if user.status == "RESET_REQUIRED":
            raise errors.reset_required()
        if user.status == "FORCE_CHANGE_PASSWORD":
            if user.temporary_until is not None and user.temporary_until <= self.clock.now():
                raise errors.not_authorized("Temporary password has expired and must be reset by an administrator.")
            shown = {k: v for k, v in user.attributes.items() if k not in ("email_verified", "phone_number_verified")}
            return {"ChallengeName": "NEW_PASSWORD_REQUIRED", "Session": self._seal({"k": "np", "c": client.id,
                                                                                    "u": user.id}, client),
                    "ChallengeParameters": {"USER_ID_FOR_SRP": user.username, "requiredAttributes": "[]",
                                            "userAttributes": json.dumps(shown)}}
        return await self.sign_in(pool, client, user, metadata, "Authentication")

    async def sign_in(self, pool: Pool, client: Client, user: User, metadata: dict, source: str) -> dict:
        result = await self.issue(pool, client, user, metadata, source, int(self.clock.now()), None)
        await triggers.run(self.cloud, pool, "PostAuthentication", "PostAuthentication_Authentication",
                           user.username, {"userAttributes": self._attributes(user), "newDeviceUsed": False,
                                           "clientMetadata": metadata}, {}, client.id)
        self.cloud.feed.publish("cognito.sign_in", pool=pool.id, client=client.id, username=user.username,
                                source=source)
        return {"ChallengeParameters": {}, "AuthenticationResult": result}

    async def issue(self, pool: Pool, client: Client, user: User, metadata: dict, source: str, auth_time: int,
                    origin_jti: str | None, scope: str | None = None, nonce: str | None = None) -> dict:
        """ID and access tokens (and a refresh token for a new sign-in), after PreTokenGeneration.
        ``scope`` (the OAuth endpoints') replaces the API's aws.cognito.signin.user.admin and
        adds the ID token's ``at_hash`` (and ``nonce``), as the hosted UI's tokens have."""
        now = int(self.clock.now())
        new_session = origin_jti is None
        origin_jti = origin_jti or str(uuid.uuid4())
        event_id = str(uuid.uuid4())
        groups = self.pools.groups_of(user.id, pool.id)
        id_claims = tokens.id_claims(pool, client, user, groups, auth_time, origin_jti, event_id, now)
        access = tokens.access_claims(pool, client, user, groups, auth_time, origin_jti, event_id, now,
                                      **({"scope": scope} if scope else {}))
        await self._pre_token(pool, client, user, groups, metadata, source, id_claims, access)
        access_token = self.keys.sign(pool.id, access)
        if scope:
            id_claims["at_hash"] = tokens.at_hash(access_token)
            if nonce:
                id_claims["nonce"] = nonce
        result: dict[str, Any] = {"AccessToken": access_token, "ExpiresIn": client.validity("access"),
                                  "TokenType": "Bearer", "IdToken": self.keys.sign(pool.id, id_claims)}
        if new_session:
            refresh = tokens.new_refresh_token()
            with self.store.transaction():
                self.store.execute(
                    "INSERT INTO cognito_refresh_tokens(digest, pool_id, client_id, user_id, origin_jti, auth_time, "
                    "expires) VALUES(?,?,?,?,?,?,?)", (tokens.refresh_digest(refresh), pool.id, client.id, user.id,
                                                       origin_jti, auth_time, now + client.validity("refresh")))
            result["RefreshToken"] = refresh
        return result

    async def _pre_token(self, pool: Pool, client: Client, user: User, groups: list[dict], metadata: dict,
                         source: str, id_claims: dict, access: dict) -> None:
        arn, version = triggers.function_of(pool, "PreTokenGeneration")
        if not arn:
            return
        group_config = {"groupsToOverride": [g["GroupName"] for g in groups],
                        "iamRolesToOverride": [g["RoleArn"] for g in groups if g.get("RoleArn")],
                        "preferredRole": next((g["RoleArn"] for g in groups if g.get("RoleArn")), None)}
        request: dict[str, Any] = {"userAttributes": self._attributes(user), "groupConfiguration": group_config,
                                   "clientMetadata": metadata}
        if version != "1":
            request["scopes"] = access["scope"].split()
        answer = await triggers.run(self.cloud, pool, "PreTokenGeneration", f"TokenGeneration_{source}",
                                    user.username, request, {"claimsOverrideDetails": None} if version == "1"
                                    else {"claimsAndScopeOverrideDetails": None}, client.id) or {}
        if version == "1":
            details = answer.get("claimsOverrideDetails") or {}
            _apply(id_claims, details.get("claimsToAddOrOverride"), details.get("claimsToSuppress"))
            _groups(details.get("groupOverrideDetails"), id_claims, access)
            return
        details = answer.get("claimsAndScopeOverrideDetails") or {}
        idt = details.get("idTokenGeneration") or {}
        _apply(id_claims, idt.get("claimsToAddOrOverride"), idt.get("claimsToSuppress"))
        act = details.get("accessTokenGeneration") or {}
        _apply(access, act.get("claimsToAddOrOverride"), act.get("claimsToSuppress"))
        scopes = [s for s in access["scope"].split() if s not in (act.get("scopesToSuppress") or [])]
        scopes += [s for s in act.get("scopesToAdd") or [] if s not in scopes]
        access["scope"] = " ".join(scopes)
        _groups(details.get("groupOverrideDetails"), id_claims, access)

    # -- refresh --------------------------------------------------------------------

    async def _refresh(self, pool: Pool, client: Client, auth: dict, metadata: dict) -> dict:
        user, row = self.refresh_session(client, auth.get("REFRESH_TOKEN") or "")
        self._check_secret(client, auth, [auth.get("USERNAME") or "", user.username, user.sub])
        result = await self.issue(pool, client, user, metadata, "RefreshTokens", row[3], row[2])
        return {"ChallengeParameters": {}, "AuthenticationResult": result}

    def refresh_session(self, client: Client, token: str) -> tuple[User, tuple]:
        """The user of a live refresh token of this client, and its row."""
        row = self.store.one("SELECT client_id, user_id, origin_jti, auth_time, expires, revoked FROM "
                             "cognito_refresh_tokens WHERE digest=?", (tokens.refresh_digest(token),))
        if row is None or row[0] != client.id or row[5] or row[4] <= self.clock.now():
            raise errors.not_authorized("Invalid Refresh Token")
        user = self.users.by_id(row[1])
        if user is None:
            raise errors.not_authorized("Invalid Refresh Token")
        if not user.enabled:
            raise errors.not_authorized("User is disabled.")
        return user, row

    # -- RespondToAuthChallenge ------------------------------------------------------------

    async def respond(self, params: dict, admin: bool) -> dict:
        pool_id = params.get("UserPoolId") if admin else None
        if admin:
            self.pools.get(pool_id)
        pool, client = self._client(params["ClientId"], pool_id)
        name = params["ChallengeName"]
        answers = params.get("ChallengeResponses") or {}
        metadata = params.get("ClientMetadata") or {}
        if name == "PASSWORD_VERIFIER":
            return await self._password_verifier(pool, client, answers, metadata)
        if name == "NEW_PASSWORD_REQUIRED":
            state = self._unseal(params.get("Session"), client, "np")
            user = self.users.by_id(state["u"])
            if user is None or user.status != "FORCE_CHANGE_PASSWORD":
                raise errors.not_authorized("Invalid session for the user.")
            self._check_secret(client, answers, [answers.get("USERNAME") or "", user.username])
            new = answers.get("NEW_PASSWORD")
            if not new:
                raise errors.invalid("Missing required parameter NEW_PASSWORD")
            check_policy(pool, new)
            given = [{"Name": k[len("userAttributes."):], "Value": v} for k, v in answers.items()
                     if k.startswith("userAttributes.")]
            attributes = validate_attributes(pool, given) if given else {}
            with self.store.transaction():
                now = self.clock.now()
                if attributes:
                    self.users.set_attributes(user, {**user.attributes, **attributes}, now)
                self.users.set_password(pool, user, new, "CONFIRMED", now)
            return await self.sign_in(pool, client, user, metadata, "NewPasswordChallenge")
        if name == "CUSTOM_CHALLENGE":
            state = self._unseal(params.get("Session"), client, "cc")
            user = self.users.by_id(state["u"])
            if user is None:
                raise errors.not_authorized("Invalid session for the user.")
            self._check_secret(client, answers, [answers.get("USERNAME") or "", user.username])
            answer = await triggers.run(
                self.cloud, pool, "VerifyAuthChallengeResponse", "VerifyAuthChallengeResponse_Authentication",
                user.username, {"userAttributes": self._attributes(user), "privateChallengeParameters":
                                state.get("private") or {}, "challengeAnswer": answers.get("ANSWER"),
                                "clientMetadata": metadata, "userNotFound": False},
                {"answerCorrect": None}, client.id)
            correct = bool((answer or {}).get("answerCorrect"))
            history = state.get("h", []) + [{"challengeName": "CUSTOM_CHALLENGE", "challengeResult": correct,
                                             "challengeMetadata": state.get("meta")}]
            return await self._custom_step(pool, client, user, history, metadata)
        raise errors.invalid(f"Invalid challenge name: {name}" if name else "Missing required parameter "
                             "ChallengeName")

    async def _password_verifier(self, pool: Pool, client: Client, answers: dict, metadata: dict) -> dict:
        for needed in ("PASSWORD_CLAIM_SIGNATURE", "PASSWORD_CLAIM_SECRET_BLOCK", "TIMESTAMP", "USERNAME"):
            if not answers.get(needed):
                raise errors.invalid(f"Missing required parameter {needed}")
        try:
            block = base64.b64decode(answers["PASSWORD_CLAIM_SECRET_BLOCK"], validate=True)
            state = json.loads(self.cloud.sealer.unseal(block, b"cognito-srp"))
        except (ValueError, TypeError):
            raise errors.not_authorized("Incorrect username or password.") from None
        if state.get("c") != client.id or state["exp"] <= self.clock.now():
            raise errors.not_authorized("Incorrect username or password.")
        user = self.users.by_id(state["u"])
        if user is None or not user.srp_verifier:
            raise errors.not_authorized()
        self._check_secret(client, answers, [answers["USERNAME"], user.username])
        b = int(state["b"], 16)
        key = srp.session_key(state["A"], b, srp.public_b(b, user.srp_verifier), user.srp_verifier)
        try:
            claimed = base64.b64decode(answers["PASSWORD_CLAIM_SIGNATURE"], validate=True)
        except ValueError:
            claimed = b""
        if key is None or not hmac.compare_digest(
                claimed, srp.claim_signature(key, pool.srp_name, user.username, block, answers["TIMESTAMP"])):
            raise errors.not_authorized()
        if not user.enabled:
            raise errors.not_authorized("User is disabled.")
        return await self.after_password(pool, client, user, metadata)

    # -- custom auth ------------------------------------------------------------------

    async def _custom_step(self, pool: Pool, client: Client, user: User, history: list[dict],
                           metadata: dict) -> dict:
        if not user.enabled:
            raise errors.not_authorized("User is disabled.")
        attributes = self._attributes(user)
        decision = await triggers.run(
            self.cloud, pool, "DefineAuthChallenge", "DefineAuthChallenge_Authentication", user.username,
            {"userAttributes": attributes, "session": history, "clientMetadata": metadata, "userNotFound": False},
            {"challengeName": None, "issueTokens": None, "failAuthentication": None}, client.id)
        if decision is None:
            raise errors.invalid_configuration("DefineAuthChallenge is not configured.")
        if decision.get("failAuthentication"):
            raise errors.not_authorized()
        if decision.get("issueTokens"):
            if user.status == "UNCONFIRMED":
                raise errors.not_confirmed()
            return await self.sign_in(pool, client, user, metadata, "Authentication")
        challenge = decision.get("challengeName") or "CUSTOM_CHALLENGE"
        if challenge != "CUSTOM_CHALLENGE":
            raise errors.invalid_lambda_response(f"Unsupported challenge name {challenge} from "
                                                 "DefineAuthChallenge")
        created = await triggers.run(
            self.cloud, pool, "CreateAuthChallenge", "CreateAuthChallenge_Authentication", user.username,
            {"userAttributes": attributes, "challengeName": challenge, "session": history,
             "clientMetadata": metadata, "userNotFound": False},
            {"publicChallengeParameters": None, "privateChallengeParameters": None, "challengeMetadata": None},
            client.id)
        if created is None:
            raise errors.invalid_configuration("CreateAuthChallenge is not configured.")
        session = self._seal({"k": "cc", "c": client.id, "u": user.id, "h": history,
                              "private": created.get("privateChallengeParameters") or {},
                              "meta": created.get("challengeMetadata")}, client)
        public = {k: str(v) for k, v in (created.get("publicChallengeParameters") or {}).items()}
        return {"ChallengeName": challenge, "Session": session,
                "ChallengeParameters": {"USERNAME": user.username, **public}}


def _apply(claims: dict, add: dict | None, suppress: list | None) -> None:
    protected = {"iss", "aud", "sub", "token_use", "exp", "iat", "auth_time", "jti", "origin_jti", "event_id",
                 "client_id", "cognito:username", "username"}
    for k, v in (add or {}).items():
        if k not in protected:
            claims[k] = v
    for k in suppress or []:
        if k not in protected:
            claims.pop(k, None)


def _groups(override: dict | None, id_claims: dict, access: dict) -> None:
    if not override:
        return
    groups = override.get("groupsToOverride")
    if groups is not None:
        for claims in (id_claims, access):
            if groups:
                claims["cognito:groups"] = list(groups)
            else:
                claims.pop("cognito:groups", None)
    roles = override.get("iamRolesToOverride")
    if roles is not None:
        if roles:
            id_claims["cognito:roles"] = list(roles)
        else:
            id_claims.pop("cognito:roles", None)
    if override.get("preferredRole"):
        id_claims["cognito:preferred_role"] = override["preferredRole"]
