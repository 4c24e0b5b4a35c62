"""Amazon Cognito user pools (botocore's ``cognito-idp``, JSON protocol): the
handlers for pools, app clients, groups, domains and resource servers, put together
with the admin user operations (``admin.py``) and the end users' own operations and
sign-in (``accounts.py``)."""

from __future__ import annotations

import functools
import json
from typing import Any

from unkai.paging import paged
from unkai.protocol import ServiceError
from unkai.services import RequestContext, Service
from unkai.services.cognito import errors, pools, resources, tokens, triggers
from unkai.services.cognito.accounts import Accounts
from unkai.services.cognito.admin import Admin
from unkai.services.cognito.flows import Flows
from unkai.services.cognito.oauth import OAuth
from unkai.services.cognito.pools import Client, Pool, Pools
from unkai.services.cognito.users import User, Users, check_password, validate_attributes


def _unsigned() -> list[str]:
    from unkai.protocol import models

    model = models.load_model("cognito-idp")
    names = []
    for name in model.operation_names:
        op = model.operation_model(name)
        if op.auth_type == "none" or "smithy.api#noAuth" in (getattr(op, "auth", None) or []):
            names.append(name)
    return names


class CognitoIdp(Admin, Accounts, resources.Resources, Service):
    name = "cognito-idp"
    serves_routes = True  # JWKS, the hosted UI and OAuth endpoints
    migrations = pools.MIGRATIONS
    resource_types = resources.TYPES
    def check_unimplemented(self, ctx: RequestContext, operation: str, params: dict) -> None:
        """An operation unkai does not serve still answers ResourceNotFoundException for a missing user pool first, as AWS does."""
        if isinstance(params.get("UserPoolId"), str):
            self._pool(params["UserPoolId"])

    @functools.cached_property
    def anonymous_operations(self) -> frozenset[str]:  # type: ignore[override]
        """The operations botocore sends unsigned (sign-up, sign-in, the user's own calls),
        read from the model at the first request, not at start-up."""
        return frozenset(_unsigned())

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.pools = Pools(self.store)
        self.users = Users(self.store)
        self.keys = tokens.Keys(cloud)
        self.flows = Flows(self)
        self.oauth = OAuth(self)

    async def start(self) -> None:
        tokens.mount(self.cloud, self.keys)
        self.oauth.mount()

    async def resetting(self) -> None:
        self.keys.clear()

    def param_error(self, error: Any, protocol: str) -> ServiceError:
        if error.kind == "missing":
            return errors.invalid(f"1 validation error detected: Value null at '{_camel(error.name)}' failed to "
                                  "satisfy constraint: Member must not be null")
        return errors.invalid(error.message)

    # -- helpers shared by the mixins ---------------------------------------------------

    def _pool(self, pool_id: str) -> Pool:
        return self.pools.get(pool_id)

    def _user(self, pool: Pool, username: str) -> User:
        user = self.users.get(pool, username) or self.users.find(pool, username)
        if user is None:
            raise errors.user_not_found()
        return user

    def _token_user(self, access_token: str) -> tuple[Pool, User, dict]:
        """The pool and user of a valid, unrevoked access token (GetUser, ChangePassword...)."""
        pool_id = tokens.unverified_pool(access_token or "")
        try:
            pool = self.pools.get(pool_id or "")
        except ServiceError:
            raise errors.not_authorized("Invalid Access Token") from None
        claims = tokens.verify(self.keys, pool, access_token, self.clock.now())
        row = self.store.one("SELECT revoked FROM cognito_refresh_tokens WHERE origin_jti=?",
                             (claims.get("origin_jti") or "",))
        if row is not None and row[0]:
            raise errors.not_authorized("Access Token has been revoked")
        user = self.users.find(pool, claims.get("username") or "")
        if user is None:
            raise errors.user_not_found()
        if user.sub != claims.get("sub"):  # a new user under the old name
            raise errors.not_authorized("Access Token has been revoked")
        if user.signed_out and float(claims.get("iat", 0)) <= user.signed_out:
            raise errors.not_authorized("Access Token has been revoked")
        if not user.enabled:
            raise errors.not_authorized("User is disabled.")
        return pool, user, claims

    def _describe_pool(self, pool: Pool) -> dict:
        out = {"Id": pool.id, "Name": pool.name, "Arn": pool.arn, "CreationDate": pool.created,
               "LastModifiedDate": pool.modified, "EstimatedNumberOfUsers": self.users.count(pool.id),
               **{k: v for k, v in pool.config.items() if v is not None}}
        domain = self.pools.domain_of(pool.id)
        if domain:
            out["Domain"] = domain
        return out

    @staticmethod
    def _describe_client(client: Client, pool: Pool | None = None) -> dict:
        out = {"UserPoolId": client.pool_id, "ClientName": client.name, "ClientId": client.id,
               "LastModifiedDate": client.modified, "CreationDate": client.created, **client.config}
        if client.secret:
            out["ClientSecret"] = client.secret
        return out

    # -- pools ------------------------------------------------------------------------

    def create_user_pool(self, ctx: RequestContext, params: dict) -> dict:
        name = params["PoolName"]
        if not 1 <= len(name) <= 128:
            raise errors.validation("poolName", name, "Member must have length less than or equal to 128")
        if params.get("UsernameAttributes") and params.get("AliasAttributes"):
            raise errors.invalid("Only one of the aliasAttributes or usernameAttributes can be set in a User Pool.")
        now = self.clock.now()
        pool = Pool(pools.new_pool_id(ctx.region), ctx.account, ctx.region, name, pools.pool_config(params), now, now)
        self.pools.save(pool)
        self.keys.create(pool.id)
        return {"UserPool": self._describe_pool(pool)}

    def describe_user_pool(self, ctx: RequestContext, params: dict) -> dict:
        return {"UserPool": self._describe_pool(self._pool(params["UserPoolId"]))}

    def list_user_pools(self, ctx: RequestContext, params: dict) -> dict:
        limit = params["MaxResults"]
        if not 1 <= limit <= 60:
            raise errors.validation("maxResults", limit, "Member must have value less than or equal to 60")
        items = [{"Id": p.id, "Name": p.name, "LambdaConfig": p.config.get("LambdaConfig") or {},
                  "LastModifiedDate": p.modified, "CreationDate": p.created}
                 for p in self.pools.list(ctx.account, ctx.region)]
        return paged("UserPools", items, params.get("NextToken"), limit)

    def update_user_pool(self, ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        for key in pools.UPDATABLE_POOL_KEYS:
            # UpdateUserPool resets what is not given to its default, as AWS documents.
            if key in params:
                pool.config[key] = params[key]
            elif key in ("LambdaConfig", "AutoVerifiedAttributes", "UserPoolTags"):
                pool.config[key] = {} if key != "AutoVerifiedAttributes" else []
        if "Policies" in params and (params["Policies"] or {}).get("PasswordPolicy") is not None:
            pool.config["Policies"]["PasswordPolicy"] = {**pools.DEFAULT_POLICY, **params["Policies"]["PasswordPolicy"]}
        pool.modified = self.clock.now()
        self.pools.save(pool)
        return {}

    def delete_user_pool(self, ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        if pool.config.get("DeletionProtection") == "ACTIVE":
            raise errors.invalid("The user pool cannot be deleted because deletion protection is activated. "
                                 "Deletion protection must be inactivated first.")
        self.pools.delete(pool.id)
        self.store.execute("DELETE FROM cognito_keys WHERE pool_id=?", (pool.id,))
        self.keys.forget(pool.id)
        return {}

    def add_custom_attributes(self, ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        pools.add_custom_attributes(pool, params["CustomAttributes"])
        pool.modified = self.clock.now()
        self.pools.save(pool)
        return {}

    def get_user_pool_mfa_config(self, ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        out = {"MfaConfiguration": pool.config.get("MfaConfiguration") or "OFF"}
        for key in ("SmsMfaConfiguration", "SoftwareTokenMfaConfiguration", "EmailMfaConfiguration",
                    "WebAuthnConfiguration"):
            if pool.config.get(key) is not None:
                out[key] = pool.config[key]
        return out

    def set_user_pool_mfa_config(self, ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        for key in ("MfaConfiguration", "SmsMfaConfiguration", "SoftwareTokenMfaConfiguration",
                    "EmailMfaConfiguration", "WebAuthnConfiguration"):
            if key in params:
                pool.config[key] = params[key]
        self.pools.save(pool)
        return self.get_user_pool_mfa_config(ctx, {"UserPoolId": pool.id})

    def _by_arn(self, arn: str) -> Pool:
        return self._pool(arn.rsplit("/", 1)[-1])

    def tag_resource(self, ctx: RequestContext, params: dict) -> dict:
        pool = self._by_arn(params["ResourceArn"])
        pool.config["UserPoolTags"] = {**(pool.config.get("UserPoolTags") or {}), **params["Tags"]}
        self.pools.save(pool)
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict) -> dict:
        pool = self._by_arn(params["ResourceArn"])
        pool.config["UserPoolTags"] = {k: v for k, v in (pool.config.get("UserPoolTags") or {}).items()
                                       if k not in params["TagKeys"]}
        self.pools.save(pool)
        return {}

    def list_tags_for_resource(self, ctx: RequestContext, params: dict) -> dict:
        return {"Tags": self._by_arn(params["ResourceArn"]).config.get("UserPoolTags") or {}}

    # -- app clients --------------------------------------------------------------------

    def create_user_pool_client(self, ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        now = self.clock.now()
        config = pools.client_config(params)
        self._check_client(pool, config)
        client = Client(pools.new_client_id(), pool.id, params["ClientName"],
                        pools.new_client_secret() if params.get("GenerateSecret") else None, config, now, now)
        self.pools.save_client(client)
        return {"UserPoolClient": self._describe_client(client)}

    def _check_client(self, pool: Pool, config: dict) -> None:
        schema = pool.schema()
        for key in ("ReadAttributes", "WriteAttributes"):
            for name in config.get(key) or []:
                if name not in schema:
                    raise errors.invalid(f"Invalid {'read' if key == 'ReadAttributes' else 'write'} attributes "
                                         f"specified while creating a client")
        flows = config.get("AllowedOAuthFlows") or []
        if flows and not config.get("AllowedOAuthFlowsUserPoolClient"):
            raise errors.invalid("AllowedOAuthFlows and AllowedOAuthScopes are allowed only when "
                                 "AllowedOAuthFlowsUserPoolClient is true.")
        if config.get("AllowedOAuthFlowsUserPoolClient") and ("code" in flows or "implicit" in flows) \
                and not config.get("CallbackURLs"):
            raise errors.invalid("CallbackURLs can not be empty when code or implicit flows are allowed.")
        known = {"openid", "email", "phone", "profile", "aws.cognito.signin.user.admin"}
        known |= {f"{rs['Identifier']}/{s['ScopeName']}" for rs in self.pools.resource_servers(pool.id)
                  for s in rs["Scopes"]}
        for scope in config.get("AllowedOAuthScopes") or []:
            if scope not in known:
                raise errors.scope_does_not_exist(f"Invalid scope requested: {scope}")

    def describe_user_pool_client(self, ctx: RequestContext, params: dict) -> dict:
        self._pool(params["UserPoolId"])
        return {"UserPoolClient": self._describe_client(self.pools.client(params["ClientId"], params["UserPoolId"]))}

    def list_user_pool_clients(self, ctx: RequestContext, params: dict) -> dict:
        self._pool(params["UserPoolId"])
        items = [{"ClientId": c.id, "UserPoolId": c.pool_id, "ClientName": c.name}
                 for c in self.pools.clients(params["UserPoolId"])]
        return paged("UserPoolClients", items, params.get("NextToken"), params.get("MaxResults"), 60)

    def update_user_pool_client(self, ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        client = self.pools.client(params["ClientId"], pool.id)
        client.config = pools.client_config(params)
        self._check_client(pool, client.config)
        client.name = params.get("ClientName") or client.name
        client.modified = self.clock.now()
        self.pools.save_client(client)
        return {"UserPoolClient": self._describe_client(client)}

    def delete_user_pool_client(self, ctx: RequestContext, params: dict) -> dict:
        self._pool(params["UserPoolId"])
        client = self.pools.client(params["ClientId"], params["UserPoolId"])
        self.store.execute("DELETE FROM cognito_clients WHERE id=?", (client.id,))
        return {}

    # -- groups ---------------------------------------------------------------------------

    def create_group(self, ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        name = params["GroupName"]
        if self.store.one("SELECT 1 FROM cognito_groups WHERE pool_id=? AND name=?", (pool.id, name)):
            raise errors.group_exists(name)
        precedence = params.get("Precedence")
        if precedence is not None and precedence < 0:
            raise errors.validation("precedence", precedence, "Member must have value greater than or equal to 0")
        now = self.clock.now()
        self.store.execute("INSERT INTO cognito_groups(pool_id, name, description, role_arn, precedence, created, "
                           "modified) VALUES(?,?,?,?,?,?,?)", (pool.id, name, params.get("Description"),
                                                               params.get("RoleArn"), precedence, now, now))
        return {"Group": self.pools.group(pool.id, name)}

    def get_group(self, ctx: RequestContext, params: dict) -> dict:
        self._pool(params["UserPoolId"])
        return {"Group": self.pools.group(params["UserPoolId"], params["GroupName"])}

    def list_groups(self, ctx: RequestContext, params: dict) -> dict:
        self._pool(params["UserPoolId"])
        return paged("Groups", self.pools.groups(params["UserPoolId"]), params.get("NextToken"),
                     params.get("Limit"), 60)

    def update_group(self, ctx: RequestContext, params: dict) -> dict:
        self._pool(params["UserPoolId"])
        group = self.pools.group(params["UserPoolId"], params["GroupName"])
        for key, column in (("Description", "description"), ("RoleArn", "role_arn"), ("Precedence", "precedence")):
            if key in params:
                self.store.execute(f"UPDATE cognito_groups SET {column}=? WHERE pool_id=? AND name=?",
                                   (params[key], group["UserPoolId"], group["GroupName"]))
        self.store.execute("UPDATE cognito_groups SET modified=? WHERE pool_id=? AND name=?",
                           (self.clock.now(), group["UserPoolId"], group["GroupName"]))
        return {"Group": self.pools.group(params["UserPoolId"], params["GroupName"])}

    def delete_group(self, ctx: RequestContext, params: dict) -> dict:
        self._pool(params["UserPoolId"])
        self.pools.group(params["UserPoolId"], params["GroupName"])
        self.store.execute("DELETE FROM cognito_groups WHERE pool_id=? AND name=?",
                           (params["UserPoolId"], params["GroupName"]))
        return {}

    def admin_add_user_to_group(self, ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        self.pools.group(pool.id, params["GroupName"])
        user = self._user(pool, params["Username"])
        self.store.execute("INSERT OR IGNORE INTO cognito_memberships(pool_id, group_name, user_id) VALUES(?,?,?)",
                           (pool.id, params["GroupName"], user.id))
        return {}

    def admin_remove_user_from_group(self, ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        self.pools.group(pool.id, params["GroupName"])
        user = self._user(pool, params["Username"])
        self.store.execute("DELETE FROM cognito_memberships WHERE pool_id=? AND group_name=? AND user_id=?",
                           (pool.id, params["GroupName"], user.id))
        return {}

    def admin_list_groups_for_user(self, ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        user = self._user(pool, params["Username"])
        return paged("Groups", self.pools.groups_of(user.id, pool.id), params.get("NextToken"),
                     params.get("Limit"), 60)

    def list_users_in_group(self, ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        self.pools.group(pool.id, params["GroupName"])
        return self._user_page(pool, None, params.get("Limit"), params.get("NextToken"), "NextToken",
                               group=params["GroupName"])

    def _user_page(self, pool: Pool, filter_text: str | None, limit: int | None, token: str | None, token_key: str,
                   group: str | None = None, attributes: list[str] | None = None) -> dict:
        limit = 60 if limit is None else limit
        if not 0 <= limit <= 60:
            raise errors.validation("limit", limit, "Member must have value less than or equal to 60")
        after = int(token) if str(token or "").isdigit() else 0
        if token and not str(token).isdigit():
            raise errors.invalid("Invalid pagination token")
        users, next_id = self.users.page(pool, filter_text, limit, after, group)
        wanted = set(attributes) if attributes is not None else None
        items = []
        for u in users:
            item = u.describe()
            if wanted is not None:
                item["Attributes"] = u.attribute_list(wanted)
            items.append(item)
        out: dict[str, Any] = {"Users": items}
        if next_id is not None:
            out[token_key] = str(next_id)
        return out

    # -- domains --------------------------------------------------------------------------

    def create_user_pool_domain(self, ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        domain = params["Domain"]
        if self.pools.domain(domain) is not None:
            raise errors.invalid("Domain already associated with another user pool.")
        if self.pools.domain_of(pool.id) is not None and not params.get("CustomDomainConfig"):
            raise errors.invalid(f"User pool {pool.id} already has a domain configured.")
        config = {"CustomDomainConfig": params.get("CustomDomainConfig"),
                  "ManagedLoginVersion": params.get("ManagedLoginVersion") or 1}
        self.store.execute("INSERT INTO cognito_domains(domain, pool_id, config) VALUES(?,?,?)",
                           (domain, pool.id, json.dumps(config)))
        out: dict[str, Any] = {"ManagedLoginVersion": config["ManagedLoginVersion"]}
        if params.get("CustomDomainConfig"):
            out["CloudFrontDomain"] = f"{domain.replace('.', '-')}.cloudfront.net"
        return out

    def describe_user_pool_domain(self, ctx: RequestContext, params: dict) -> dict:
        found = self.pools.domain(params["Domain"])
        if found is None:
            return {"DomainDescription": {}}
        pool = self.pools.get(found[0])
        out = {"UserPoolId": pool.id, "AWSAccountId": pool.account, "Domain": params["Domain"],
               "S3Bucket": "aws-cognito-prod-" + pool.region + "-assets", "CloudFrontDistribution":
               f"{params['Domain']}.cloudfront.net", "Version": "1", "Status": "ACTIVE",
               "ManagedLoginVersion": found[1].get("ManagedLoginVersion") or 1}
        if found[1].get("CustomDomainConfig"):
            out["CustomDomainConfig"] = found[1]["CustomDomainConfig"]
        return {"DomainDescription": out}

    def update_user_pool_domain(self, ctx: RequestContext, params: dict) -> dict:
        found = self.pools.domain(params["Domain"])
        if found is None or found[0] != params["UserPoolId"]:
            raise errors.invalid("Domain does not exist for this user pool.")
        config = {**found[1], **{k: params[k] for k in ("CustomDomainConfig", "ManagedLoginVersion") if k in params}}
        self.store.execute("UPDATE cognito_domains SET config=? WHERE domain=?", (json.dumps(config),
                                                                                  params["Domain"]))
        return {"ManagedLoginVersion": config.get("ManagedLoginVersion") or 1}

    def delete_user_pool_domain(self, ctx: RequestContext, params: dict) -> dict:
        found = self.pools.domain(params["Domain"])
        if found is None or found[0] != params["UserPoolId"]:
            raise errors.invalid("No such domain or user pool exists.")
        self.store.execute("DELETE FROM cognito_domains WHERE domain=?", (params["Domain"],))
        return {}

    # -- resource servers -------------------------------------------------------------------

    def create_resource_server(self, ctx: RequestContext, params: dict) -> dict:
        pool = self._pool(params["UserPoolId"])
        identifier = params["Identifier"]
        if self.store.one("SELECT 1 FROM cognito_resource_servers WHERE pool_id=? AND identifier=?",
                          (pool.id, identifier)):
            raise errors.invalid(f"{identifier} already exists in user pool {pool.id}.")
        self.store.execute("INSERT INTO cognito_resource_servers(pool_id, identifier, name, scopes) VALUES(?,?,?,?)",
                           (pool.id, identifier, params["Name"], json.dumps(params.get("Scopes") or [])))
        return {"ResourceServer": self._resource_server(pool.id, identifier)}

    def _resource_server(self, pool_id: str, identifier: str) -> dict:
        for rs in self.pools.resource_servers(pool_id):
            if rs["Identifier"] == identifier:
                return rs
        raise errors.resource_not_found(f"Resource server {identifier} does not exist.")

    def describe_resource_server(self, ctx: RequestContext, params: dict) -> dict:
        self._pool(params["UserPoolId"])
        return {"ResourceServer": self._resource_server(params["UserPoolId"], params["Identifier"])}

    def list_resource_servers(self, ctx: RequestContext, params: dict) -> dict:
        self._pool(params["UserPoolId"])
        return paged("ResourceServers", self.pools.resource_servers(params["UserPoolId"]), params.get("NextToken"),
                     params.get("MaxResults"), 50)

    def update_resource_server(self, ctx: RequestContext, params: dict) -> dict:
        self._resource_server(params["UserPoolId"], params["Identifier"])
        self.store.execute("UPDATE cognito_resource_servers SET name=?, scopes=? WHERE pool_id=? AND identifier=?",
                           (params["Name"], json.dumps(params.get("Scopes") or []), params["UserPoolId"],
                            params["Identifier"]))
        return {"ResourceServer": self._resource_server(params["UserPoolId"], params["Identifier"])}

    def delete_resource_server(self, ctx: RequestContext, params: dict) -> dict:
        self._resource_server(params["UserPoolId"], params["Identifier"])
        self.store.execute("DELETE FROM cognito_resource_servers WHERE pool_id=? AND identifier=?",
                           (params["UserPoolId"], params["Identifier"]))
        return {}


def _camel(path: str) -> str:
    return ".".join(p[:1].lower() + p[1:] for p in path.split("."))
