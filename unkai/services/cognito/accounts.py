"""What end users call with an app client or their access token: SignUp and its
confirmation, forgotten passwords, their own attributes and password, sign-out and
token revocation, and the unsigned sign-in operations (handed to ``flows.py``).
Handlers only; codes go to the local mailbox through ``messages.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from unkai.services import RequestContext
from unkai.services.cognito import errors, messages, tokens, triggers
from unkai.services.cognito.pools import Client, Pool
from unkai.services.cognito.users import (User, check_password, check_policy, new_code, required_missing,
                                          validate_attributes)

if TYPE_CHECKING:
    from unkai.services.cognito.service import CognitoIdp

SIGNUP_CODE_TTL = 86400.0
RESET_CODE_TTL = 3600.0


class Accounts:
    def _app(self: "CognitoIdp", client_id: str, secret_hash: str | None, username: str) -> tuple[Pool, Client]:
        pool, client = self.flows._client(client_id)
        self.flows._check_secret(client, {"SECRET_HASH": secret_hash}, [username])
        return pool, client

    # -- sign-up --------------------------------------------------------------------------

    async def sign_up(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool, client = self._app(params["ClientId"], params.get("SecretHash"), params["Username"])
        if (pool.config.get("AdminCreateUserConfig") or {}).get("AllowAdminCreateUserOnly"):
            raise errors.not_authorized("SignUp is not permitted for this user pool")
        password = params.get("Password")
        if not password:
            raise errors.invalid("1 validation error detected: Value null at 'password' failed to satisfy "
                                 "constraint: Member must not be null")
        attributes = validate_attributes(pool, params.get("UserAttributes"), creating=True)
        username = self._username_for(pool, params["Username"], attributes)
        if username and self.users.get(pool, username) is not None:
            raise errors.username_exists("User already exists")
        for attr in pool.username_attributes:
            value = attributes.get(attr)
            if value and self.users.by_attribute(pool, attr, value.lower() if attr == "email" else value):
                raise errors.username_exists(f"An account with the given {attr} already exists.")
        check_policy(pool, password)
        missing = required_missing(pool, attributes)
        if missing:
            raise errors.invalid(f"Attributes did not conform to the schema: {missing[0]}: The attribute is required")
        metadata = params.get("ClientMetadata") or {}
        answer = await triggers.run(
            self.cloud, pool, "PreSignUp", "PreSignUp_SignUp", username or params["Username"],
            {"userAttributes": attributes, "validationData": {v["Name"]: v["Value"] for v in
                                                              params.get("ValidationData") or []},
             "clientMetadata": metadata},
            {"autoConfirmUser": False, "autoVerifyEmail": False, "autoVerifyPhone": False}, client.id) or {}
        confirmed = bool(answer.get("autoConfirmUser"))
        if answer.get("autoVerifyEmail") and attributes.get("email"):
            attributes["email_verified"] = "true"
        if answer.get("autoVerifyPhone") and attributes.get("phone_number"):
            attributes["phone_number_verified"] = "true"
        dest = None
        if not confirmed:
            dest = messages.destination({k: v for k, v in attributes.items() if k in pool.auto_verified})
        code = new_code()
        message = await messages.compose(self.cloud, pool, "CustomMessage_SignUp", username or params["Username"],
                                         attributes, code, client.id, metadata) if dest else None
        with self.store.transaction():
            now = self.clock.now()
            user = self.users.create(pool, username or None, attributes, "CONFIRMED" if confirmed else
                                     "UNCONFIRMED", now)
            self.users.set_password(pool, user, password, user.status, now)
            if message is not None:
                self.users.store_code(user, "signup", code, now, SIGNUP_CODE_TTL)
                messages.deliver(self.cloud, pool, dest, message)
        out: dict[str, Any] = {"UserConfirmed": confirmed, "UserSub": user.sub}
        if dest is not None:
            out["CodeDeliveryDetails"] = messages.details(dest)
        return out

    async def confirm_sign_up(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool, client = self._app(params["ClientId"], params.get("SecretHash"), params["Username"])
        user = self._user(pool, params["Username"])
        if user.status != "UNCONFIRMED":
            raise errors.not_authorized(f"User cannot be confirmed. Current status is {user.status}")
        with self.store.transaction():
            now = self.clock.now()
            self.users.consume_code(user, "signup", params["ConfirmationCode"], now)
            verified = dict(user.attributes)
            dest = messages.destination({k: v for k, v in user.attributes.items() if k in pool.auto_verified})
            if dest is not None:
                attr = dest[2]
                if attr in pool.alias_attributes:
                    value = dest[0].lower() if attr == "email" else dest[0]
                    holders = [u for u in self.users.by_attribute(pool, attr, value, verified_only=True)
                               if u.id != user.id]
                    if holders and not params.get("ForceAliasCreation"):
                        raise errors.alias_exists()
                    for other in holders:  # the alias moves to the newly confirmed user
                        self.users.set_attributes(other, {**other.attributes, f"{attr}_verified": "false"}, now)
                verified[f"{attr}_verified"] = "true"
            self.users.set_attributes(user, verified, now)
            self.users.set_status(user, "CONFIRMED", now)
        await self.post_confirmation(pool, client, user, params.get("ClientMetadata"))
        return {}

    async def resend_confirmation_code(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool, client = self._app(params["ClientId"], params.get("SecretHash"), params["Username"])
        user = self._user(pool, params["Username"])
        if user.status != "UNCONFIRMED":
            raise errors.invalid("User is already confirmed.")
        dest = messages.destination({k: v for k, v in user.attributes.items() if k in pool.auto_verified}) or \
            messages.destination(user.attributes)
        if dest is None:
            raise errors.invalid("Cannot resend codes. Auto verification not turned on.")
        code = new_code()
        message = await messages.compose(self.cloud, pool, "CustomMessage_ResendCode", user.username,
                                         user.attributes, code, client.id, params.get("ClientMetadata"))
        with self.store.transaction():
            self.users.store_code(user, "signup", code, self.clock.now(), SIGNUP_CODE_TTL)
            messages.deliver(self.cloud, pool, dest, message)
        return {"CodeDeliveryDetails": messages.details(dest)}

    # -- forgotten passwords ------------------------------------------------------------------

    async def forgot_password(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool, client = self._app(params["ClientId"], params.get("SecretHash"), params["Username"])
        user = self.users.find(pool, params["Username"])
        if user is None:
            user = await self.migrate_user(pool, client, params["Username"], None, params.get("ClientMetadata") or {})
        if user is None:
            if client.prevent_user_existence_errors:
                return {"CodeDeliveryDetails": {"Destination": "u***@e***", "DeliveryMedium": "EMAIL",
                                                "AttributeName": "email"}}
            raise errors.user_not_found()
        if not user.enabled:
            raise errors.not_authorized("User is disabled.")
        verified = {k: v for k, v in user.attributes.items()
                    if k in ("email", "phone_number") and user.attributes.get(f"{k}_verified") == "true"}
        dest = messages.destination(verified)
        if dest is None:
            raise errors.invalid("Cannot reset password for the user as there is no registered/verified email or "
                                 "phone_number")
        code = new_code()
        message = await messages.compose(self.cloud, pool, "CustomMessage_ForgotPassword", user.username,
                                         user.attributes, code, client.id, params.get("ClientMetadata"))
        with self.store.transaction():
            self.users.store_code(user, "password", code, self.clock.now(), RESET_CODE_TTL)
            messages.deliver(self.cloud, pool, dest, message)
        return {"CodeDeliveryDetails": messages.details(dest)}

    async def confirm_forgot_password(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool, client = self._app(params["ClientId"], params.get("SecretHash"), params["Username"])
        user = self._user(pool, params["Username"])
        check_policy(pool, params["Password"])
        with self.store.transaction():
            now = self.clock.now()
            self.users.consume_code(user, "password", params["ConfirmationCode"], now)
            status = "UNCONFIRMED" if user.status == "UNCONFIRMED" else "CONFIRMED"
            self.users.set_password(pool, user, params["Password"], status, now)
        await self.post_confirmation(pool, client, user, params.get("ClientMetadata"),
                                     "PostConfirmation_ConfirmForgotPassword")
        return {}

    # -- the signed-in user -----------------------------------------------------------------

    def get_user(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool, user, claims = self._token_user(params["AccessToken"])
        client = self._claims_client(claims)
        readable = set(client.config.get("ReadAttributes") or []) if client else set()
        attributes = user.attribute_list(readable | {"sub"} if readable else None)
        return {"Username": user.username, "UserAttributes": attributes, "MFAOptions": [],
                "UserMFASettingList": []}

    def _claims_client(self: "CognitoIdp", claims: dict) -> Client | None:
        try:
            return self.pools.client(claims.get("client_id") or "")
        except Exception:  # noqa: BLE001 - a deleted client leaves the token's user readable
            return None

    async def update_user_attributes(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool, user, claims = self._token_user(params["AccessToken"])
        client = self._claims_client(claims)
        writable = set(client.config.get("WriteAttributes") or []) if client else set()
        changes = validate_attributes(pool, params["UserAttributes"], writable=writable or None)
        for name in ("email_verified", "phone_number_verified"):
            if name in changes:
                raise errors.not_authorized("A client attempted to write unauthorized attribute")
        sent = await self._update_attributes(pool, client, user, changes, params.get("ClientMetadata"), admin=False)
        return {"CodeDeliveryDetailsList": sent}

    def delete_user_attributes(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool, user, _ = self._token_user(params["AccessToken"])
        self._delete_attributes(pool, user, params["UserAttributeNames"])
        return {}

    async def get_user_attribute_verification_code(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool, user, claims = self._token_user(params["AccessToken"])
        attr = params["AttributeName"]
        if attr not in ("email", "phone_number") or not user.attributes.get(attr):
            raise errors.invalid(f"Invalid attribute name: {attr}" if attr not in ("email", "phone_number") else
                                 f"User has no {attr} to verify.")
        dest = (user.attributes[attr], "EMAIL" if attr == "email" else "SMS", attr)
        code = new_code()
        message = await messages.compose(self.cloud, pool, "CustomMessage_VerifyUserAttribute", user.username,
                                         user.attributes, code, claims.get("client_id"), params.get("ClientMetadata"))
        with self.store.transaction():
            self.users.store_code(user, f"verify:{attr}", code, self.clock.now(), 86400.0)
            messages.deliver(self.cloud, pool, dest, message)
        return {"CodeDeliveryDetails": messages.details(dest)}

    def verify_user_attribute(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool, user, _ = self._token_user(params["AccessToken"])
        attr = params["AttributeName"]
        now = self.clock.now()
        self.users.consume_code(user, f"verify:{attr}", params["Code"], now)
        if attr in pool.alias_attributes and user.attributes.get(attr):
            value = user.attributes[attr].lower() if attr == "email" else user.attributes[attr]
            if any(u.id != user.id for u in self.users.by_attribute(pool, attr, value, verified_only=True)):
                raise errors.alias_exists()
        self.users.set_attributes(user, {**user.attributes, f"{attr}_verified": "true"}, now)
        return {}

    def change_password(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool, user, _ = self._token_user(params["AccessToken"])
        if not check_password(user.password, params.get("PreviousPassword") or ""):
            raise errors.not_authorized()
        check_policy(pool, params["ProposedPassword"])
        self.users.set_password(pool, user, params["ProposedPassword"], user.status, self.clock.now())
        return {}

    def delete_user(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        _, user, _ = self._token_user(params["AccessToken"])
        self.users.delete(user)
        return {}

    def global_sign_out(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        _, user, _ = self._token_user(params["AccessToken"])
        self.users.sign_out(user, self.clock.now())
        return {}

    def revoke_token(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        client = self.pools.client(params["ClientId"])
        if client.secret and params.get("ClientSecret") != client.secret:
            raise errors.not_authorized(f"Unable to verify secret hash for client {client.id}" if
                                        params.get("ClientSecret") else f"Client {client.id} is configured with "
                                        "secret but ClientSecret was not received")
        if not client.config.get("EnableTokenRevocation", True):
            raise errors.unsupported_operation("Token revocation is not enabled for this client.")
        token = params["Token"]
        if not token.startswith(tokens.REFRESH_PREFIX):
            raise errors.unsupported_token("Unsupported token type. Only refresh tokens can be revoked.")
        row = self.store.one("SELECT origin_jti, client_id FROM cognito_refresh_tokens WHERE digest=?",
                             (tokens.refresh_digest(token),))
        if row is not None:
            if row[1] != client.id:
                raise errors.not_authorized("Invalid token")
            self.store.execute("UPDATE cognito_refresh_tokens SET revoked=1 WHERE origin_jti=?", (row[0],))
        return {}

    # -- sign-in --------------------------------------------------------------------------

    async def initiate_auth(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        return await self.flows.initiate(params, admin=False)

    async def respond_to_auth_challenge(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        return await self.flows.respond(params, admin=False)

