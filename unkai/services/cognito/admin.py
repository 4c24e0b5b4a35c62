"""The administrators' user operations (``Admin*`` and ListUsers): handlers only,
over ``users.py``, ``messages.py`` and ``triggers.py``. Those that can run a trigger
or send a message are async: the trigger is awaited outside any transaction, then
the change and its mail commit together."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from unkai.services import RequestContext
from unkai.services.cognito import errors, messages, triggers
from unkai.services.cognito.pools import Client, Pool
from unkai.services.cognito.users import (User, check_policy, new_code, required_missing, temporary_password,
                                          validate_attributes)

if TYPE_CHECKING:
    from unkai.services.cognito.service import CognitoIdp

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_PHONE = re.compile(r"\+[0-9]{4,15}")
RESET_CODE_TTL = 3600.0
VERIFY_CODE_TTL = 86400.0


class Admin:
    def _username_for(self: "CognitoIdp", pool: Pool, username: str, attributes: dict[str, str]) -> str:
        """The stored username: pools that sign in by email or phone number keep the sub-like
        UUID as the username and the given name as that attribute, as AWS does."""
        if not pool.username_attributes:
            if _EMAIL.fullmatch(username) and pool.alias_attributes and "email" in pool.alias_attributes:
                raise errors.invalid("Username cannot be of email format, since user pool is configured for "
                                     "email alias.")
            return username
        if _EMAIL.fullmatch(username) and "email" in pool.username_attributes:
            attributes.setdefault("email", username)
        elif _PHONE.fullmatch(username) and "phone_number" in pool.username_attributes:
            attributes.setdefault("phone_number", username)
        else:
            raise errors.invalid("Username should be either an email or a phone number.")
        return ""

    async def admin_create_user(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        given = params["Username"]
        attributes = validate_attributes(pool, params.get("UserAttributes"), creating=True)
        action = params.get("MessageAction")
        mediums = params.get("DesiredDeliveryMediums") or []
        password = params.get("TemporaryPassword")
        if password is not None:
            check_policy(pool, password)
        metadata = params.get("ClientMetadata") or {}
        if action == "RESEND":
            user = self.users.find(pool, given)
            if user is None:
                raise errors.user_not_found()
            if user.status != "FORCE_CHANGE_PASSWORD":
                raise errors.unsupported_state("Resend not possible. " + user.username + " status is not "
                                               "FORCE_CHANGE_PASSWORD")
        else:
            user = None
            username = self._username_for(pool, given, attributes)
            if username and self.users.get(pool, username) is not None:
                raise errors.username_exists()
            missing = required_missing(pool, attributes)
            if missing:
                raise errors.invalid(f"Attributes did not conform to the schema: {missing[0]}: "
                                     "The attribute is required")
            if self._alias_holders(pool, attributes) and not params.get("ForceAliasCreation"):
                raise errors.alias_exists()
            await triggers.run(self.cloud, pool, "PreSignUp", "PreSignUp_AdminCreateUser", username or given,
                               {"userAttributes": attributes, "validationData": {
                                   v["Name"]: v["Value"] for v in params.get("ValidationData") or []},
                                "clientMetadata": metadata},
                               {"autoConfirmUser": False, "autoVerifyEmail": False, "autoVerifyPhone": False})
        password = password or temporary_password(pool)
        attrs_for_message = attributes if user is None else user.attributes
        prefer = ["phone_number" if m == "SMS" else "email" for m in mediums] or None
        dest = messages.destination(attrs_for_message, prefer) if action != "SUPPRESS" else None
        if mediums and action != "SUPPRESS" and dest is None:
            raise errors.invalid("User has no attribute matching desired delivery mediums")
        shown_name = user.username if user is not None else (self._username_for(pool, given, dict(attributes))
                                                             or given)
        message = await messages.compose(self.cloud, pool, "CustomMessage_AdminCreateUser", shown_name,
                                         attrs_for_message, password, None, metadata) if dest else None
        with self.store.transaction():
            user = self.create_invited(pool, given, attributes, password, user, dest, message)
        return {"User": user.describe()}

    def create_invited(self: "CognitoIdp", pool: Pool, given: str, attributes: dict[str, str], password: str,
                       user: User | None, dest: tuple[str, str, str] | None,
                       message: tuple[str, str, str] | None) -> User:
        """AdminCreateUser's write (inside a transaction): a new (or re-invited) user in
        FORCE_CHANGE_PASSWORD with a temporary password, and the invitation."""
        now = self.clock.now()
        days = int(pool.password_policy.get("TemporaryPasswordValidityDays") or 7)
        if user is None:
            username = self._username_for(pool, given, attributes)
            for other in self._alias_holders(pool, attributes):  # ForceAliasCreation moves the alias
                attr = "email" if other.attributes.get("email_verified") == "true" and other.email and \
                    other.email.lower() == (attributes.get("email") or "").lower() else "phone_number"
                self.users.set_attributes(other, {**other.attributes, f"{attr}_verified": "false"}, now)
            user = self.users.create(pool, username or None, attributes, "FORCE_CHANGE_PASSWORD", now)
        self.users.set_password(pool, user, password, "FORCE_CHANGE_PASSWORD", now, now + days * 86400)
        if message is not None:
            messages.deliver(self.cloud, pool, dest, message)
        return user

    def _alias_holders(self: "CognitoIdp", pool: Pool, attributes: dict[str, str]) -> list[User]:
        """Users already holding, verified, an email or phone alias these attributes claim verified."""
        holders = []
        for attr in ("email", "phone_number"):
            if attr in pool.alias_attributes and attributes.get(attr) and \
                    attributes.get(f"{attr}_verified") == "true":
                value = attributes[attr].lower() if attr == "email" else attributes[attr]
                holders += self.users.by_attribute(pool, attr, value, verified_only=True)
        return holders

    def admin_get_user(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        user = self._user(pool, params["Username"])
        out = user.describe("UserAttributes")
        out["MFAOptions"] = []
        out["UserMFASettingList"] = []
        return out

    def admin_delete_user(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        self.users.delete(self._user(pool, params["Username"]))
        return {}

    def admin_disable_user(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        user = self._user(pool, params["Username"])
        self.users.set_enabled(user, False, self.clock.now())
        self.users.sign_out(user, self.clock.now())
        return {}

    def admin_enable_user(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        self.users.set_enabled(self._user(pool, params["Username"]), True, self.clock.now())
        return {}

    def admin_set_user_password(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        user = self._user(pool, params["Username"])
        check_policy(pool, params["Password"])
        now = self.clock.now()
        if params.get("Permanent"):
            self.users.set_password(pool, user, params["Password"], "CONFIRMED", now)
        else:
            days = int(pool.password_policy.get("TemporaryPasswordValidityDays") or 7)
            self.users.set_password(pool, user, params["Password"], "FORCE_CHANGE_PASSWORD", now, now + days * 86400)
        return {}

    async def admin_reset_user_password(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        user = self._user(pool, params["Username"])
        if user.status == "FORCE_CHANGE_PASSWORD":
            raise errors.not_authorized("User password cannot be reset in the current state.")
        dest = self._verified_destination(user)
        code = new_code()
        message = await messages.compose(self.cloud, pool, "CustomMessage_ForgotPassword", user.username,
                                         user.attributes, code, None, params.get("ClientMetadata")) if dest else None
        with self.store.transaction():
            now = self.clock.now()
            if user.status != "UNCONFIRMED":
                self.users.set_status(user, "RESET_REQUIRED", now)
            self.users.store_code(user, "password", code, now, RESET_CODE_TTL)
            if message is not None:
                messages.deliver(self.cloud, pool, dest, message)
        return {}

    @staticmethod
    def _verified_destination(user: User) -> tuple[str, str, str] | None:
        verified = {k: v for k, v in user.attributes.items()
                    if k in ("email", "phone_number") and user.attributes.get(f"{k}_verified") == "true"}
        return messages.destination(verified) or messages.destination(user.attributes)

    async def admin_confirm_sign_up(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        user = self._user(pool, params["Username"])
        if user.status != "UNCONFIRMED":
            raise errors.not_authorized(f"User cannot be confirmed. Current status is {user.status}")
        with self.store.transaction():
            self.users.set_status(user, "CONFIRMED", self.clock.now())
        await self.post_confirmation(pool, None, user, params.get("ClientMetadata"))
        return {}

    async def post_confirmation(self: "CognitoIdp", pool: Pool, client: Client | None, user: User,
                                metadata: dict | None, source: str = "PostConfirmation_ConfirmSignUp") -> None:
        await triggers.run(self.cloud, pool, "PostConfirmation", source, user.username,
                           {"userAttributes": {"sub": user.sub, **user.attributes, "cognito:user_status":
                                               user.status}, "clientMetadata": metadata or {}}, {},
                           client.id if client else None)

    async def admin_update_user_attributes(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        user = self._user(pool, params["Username"])
        changes = validate_attributes(pool, params["UserAttributes"])
        await self._update_attributes(pool, None, user, changes, params.get("ClientMetadata"), admin=True)
        return {}

    async def _update_attributes(self: "CognitoIdp", pool: Pool, client: Client | None, user: User,
                                 changes: dict[str, str], metadata: dict | None, admin: bool) -> list[dict]:
        """Apply attribute changes; a changed email or phone number becomes unverified and, when
        the pool auto-verifies it, gets a code. Returns CodeDeliveryDetailsList."""
        schema = pool.schema()
        for name in changes:
            spec = schema.get(name) or {}
            if not spec.get("Mutable", True) and user.attributes.get(name) not in (None, changes[name]):
                raise errors.invalid(f"Cannot modify an already provided value for immutable attribute {name}")
        merged = {**user.attributes, **changes}
        pending: list[tuple[str, str]] = []
        for attr in ("email", "phone_number"):
            if attr in changes and changes[attr] != user.attributes.get(attr):
                if f"{attr}_verified" not in changes:
                    merged[f"{attr}_verified"] = "false"
                if attr in pool.auto_verified and merged.get(f"{attr}_verified") != "true":
                    pending.append((attr, changes[attr]))
            if merged.get(f"{attr}_verified") == "true" and attr in pool.alias_attributes and merged.get(attr):
                others = [u for u in self.users.by_attribute(pool, attr, merged[attr].lower() if attr == "email"
                                                             else merged[attr], verified_only=True) if u.id != user.id]
                if others:
                    raise errors.alias_exists()
        if pool.username_attributes:
            for attr in pool.username_attributes:
                if attr in changes:
                    others = [u for u in self.users.by_attribute(pool, attr, changes[attr].lower() if attr == "email"
                                                                 else changes[attr]) if u.id != user.id]
                    if others:
                        raise errors.alias_exists()
        composed = []
        for attr, value in pending:
            code = new_code()
            dest = (value, "EMAIL" if attr == "email" else "SMS", attr)
            message = await messages.compose(self.cloud, pool, "CustomMessage_UpdateUserAttribute", user.username,
                                             merged, code, client.id if client else None, metadata)
            composed.append((attr, code, dest, message))
        with self.store.transaction():
            now = self.clock.now()
            self.users.set_attributes(user, merged, now)
            for attr, code, dest, message in composed:
                self.users.store_code(user, f"verify:{attr}", code, now, VERIFY_CODE_TTL)
                messages.deliver(self.cloud, pool, dest, message)
        return [messages.details(dest) for _, _, dest, _ in composed]

    def admin_delete_user_attributes(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        user = self._user(pool, params["Username"])
        self._delete_attributes(pool, user, params["UserAttributeNames"])
        return {}

    def _delete_attributes(self: "CognitoIdp", pool: Pool, user: User, names: list[str]) -> None:
        schema = pool.schema()
        for name in names:
            if name not in schema:
                raise errors.invalid(f"Invalid user attributes: {name}: Attribute does not exist in the schema.")
            if schema[name].get("Required") or name == "sub":
                raise errors.invalid(f"Invalid user attributes: {name}: The attribute is required")
        self.users.set_attributes(user, {k: v for k, v in user.attributes.items() if k not in names},
                                  self.clock.now())

    def admin_user_global_sign_out(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        self.users.sign_out(self._user(pool, params["Username"]), self.clock.now())
        return {}

    def list_users(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        return self._user_page(pool, params.get("Filter"), params.get("Limit"), params.get("PaginationToken"),
                               "PaginationToken", attributes=params.get("AttributesToGet"))

    async def admin_initiate_auth(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        return await self.flows.initiate(params, admin=True)

    async def admin_respond_to_auth_challenge(self: "CognitoIdp", ctx: RequestContext, params: dict) -> dict:
        return await self.flows.respond(params, admin=True)

    async def migrate_user(self: "CognitoIdp", pool: Pool, client: Client, name: str, password: str | None,
                           metadata: dict) -> User | None:
        """A user the pool lacks, brought in by the UserMigration trigger: at sign-in
        (``UserMigration_Authentication``, with the password the user typed) or, without a
        password, when they ask for a reset code (``UserMigration_ForgotPassword``); then
        the user has no password until ConfirmForgotPassword sets one (RESET_REQUIRED)."""
        if not triggers.function_of(pool, "UserMigration")[0]:
            return None
        forgot = password is None
        request = {"validationData": {}, "clientMetadata": metadata}
        if not forgot:
            request["password"] = password
        answer = await triggers.run(self.cloud, pool, "UserMigration",
                                    "UserMigration_ForgotPassword" if forgot else "UserMigration_Authentication",
                                    name, request,
                                    {"userAttributes": None, "finalUserStatus": None, "messageAction": None,
                                     "desiredDeliveryMediums": None, "forceAliasCreation": None}, client.id)
        attributes = {k: str(v) for k, v in ((answer or {}).get("userAttributes") or {}).items()
                      if k not in ("sub", "username")}
        attributes = validate_attributes(pool, [{"Name": k, "Value": v} for k, v in attributes.items()])
        status = "RESET_REQUIRED" if forgot else (answer or {}).get("finalUserStatus") or "RESET_REQUIRED"
        with self.store.transaction():
            now = self.clock.now()
            username = self._username_for(pool, name, attributes)
            user = self.users.create(pool, username or None, attributes, status, now)
            if not forgot:
                self.users.set_password(pool, user, password, status, now)
        return user
