"""AWS::Cognito::* template resources, created through the service's own operations
(so a template's pool is the same row as an API-created one).

- ``UserPool``: Ref the pool id; GetAtt ``Arn``, ``ProviderName``
  (``cognito-idp.{region}.amazonaws.com/{id}``), ``ProviderURL`` (``https://`` + that),
  ``UserPoolId``. Changing ``AliasAttributes``, ``UsernameAttributes`` or ``Schema``...
  replaces it on AWS only for some; here ``UserPoolName``, ``AliasAttributes``,
  ``UsernameAttributes`` and ``UsernameConfiguration`` replace, the rest updates in place.
- ``UserPoolClient``: Ref the client id; GetAtt ``ClientId``, ``ClientSecret``, ``Name``.
  ``UserPoolId`` and ``GenerateSecret`` replace.
- ``UserPoolGroup``: Ref the group name. ``UserPoolDomain``: Ref the domain; GetAtt
  ``CloudFrontDistribution``. ``UserPoolResourceServer``: Ref the identifier.
- ``UserPoolUser``: Ref the username (the invitation is mailed as AdminCreateUser does,
  with the pool's template: template-created users skip the Lambda triggers).
- ``UserPoolUserToGroupAttachment``: Ref a generated id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from unkai.protocol import ServiceError
from unkai.services import Provisioned, ResourceContext
from unkai.services.cognito import messages
from unkai.services.cognito.users import temporary_password, validate_attributes
from unkai.template.names import physical_name

if TYPE_CHECKING:
    from unkai.services.cognito.service import CognitoIdp

TYPES = ("AWS::Cognito::UserPool", "AWS::Cognito::UserPoolClient", "AWS::Cognito::UserPoolGroup",
         "AWS::Cognito::UserPoolDomain", "AWS::Cognito::UserPoolUser", "AWS::Cognito::UserPoolUserToGroupAttachment",
         "AWS::Cognito::UserPoolResourceServer")

POOL_PROPS = ("Policies", "DeletionProtection", "LambdaConfig", "AutoVerifiedAttributes", "AliasAttributes",
              "UsernameAttributes", "SmsVerificationMessage", "EmailVerificationMessage", "EmailVerificationSubject",
              "VerificationMessageTemplate", "SmsAuthenticationMessage", "UserAttributeUpdateSettings",
              "MfaConfiguration", "DeviceConfiguration", "EmailConfiguration", "SmsConfiguration", "UserPoolTags",
              "AdminCreateUserConfig", "UserPoolAddOns", "UsernameConfiguration", "AccountRecoverySetting",
              "UserPoolTier", "Schema")
CLIENT_PROPS = ("ClientName", "GenerateSecret", "RefreshTokenValidity", "AccessTokenValidity", "IdTokenValidity",
                "TokenValidityUnits", "ReadAttributes", "WriteAttributes", "ExplicitAuthFlows",
                "SupportedIdentityProviders", "CallbackURLs", "LogoutURLs", "DefaultRedirectURI", "AllowedOAuthFlows",
                "AllowedOAuthScopes", "AllowedOAuthFlowsUserPoolClient", "AnalyticsConfiguration",
                "PreventUserExistenceErrors", "EnableTokenRevocation", "EnablePropagateAdditionalUserContextData",
                "AuthSessionValidity", "RefreshTokenRotation")


def _bools(value: Any) -> Any:
    """Template scalars arrive as written: "true"/"false" strings become booleans."""
    if isinstance(value, dict):
        return {k: _bools(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_bools(v) for v in value]
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _pool_params(props: dict, name: str) -> dict:
    params = {k: _bools(props[k]) for k in POOL_PROPS if props.get(k) is not None}
    for attr in params.get("Schema") or []:
        for key in ("StringAttributeConstraints", "NumberAttributeConstraints"):
            if key in attr:
                attr[key] = {k: str(v) for k, v in attr[key].items()}
    params["PoolName"] = name
    if props.get("EnabledMfas"):
        params["EnabledMfas"] = props["EnabledMfas"]
    return params


class Resources:
    def create_resource(self: "CognitoIdp", ctx: ResourceContext, resource_type: str, logical_id: str,
                        props: dict[str, Any]) -> Provisioned:
        rctx = ctx.request_context("cognito-idp")
        kind = resource_type.rsplit("::", 1)[1]
        if kind == "UserPool":
            name = props.get("UserPoolName") or physical_name(ctx.stack_name, logical_id, 128)
            pool = self.create_user_pool(rctx, _pool_params(props, name))["UserPool"]
            return self._pool_provisioned(pool["Id"], ctx.region)
        if kind == "UserPoolClient":
            params = {k: _bools(props[k]) for k in CLIENT_PROPS if props.get(k) is not None}
            params["UserPoolId"] = props["UserPoolId"]
            params.setdefault("ClientName", physical_name(ctx.stack_name, logical_id, 128))
            client = self.create_user_pool_client(rctx, params)["UserPoolClient"]
            return Provisioned(client["ClientId"], client["ClientId"],
                               {"ClientId": client["ClientId"], "Name": client["ClientName"],
                                "ClientSecret": client.get("ClientSecret")})
        if kind == "UserPoolGroup":
            name = props.get("GroupName") or physical_name(ctx.stack_name, logical_id, 128)
            self.create_group(rctx, {"UserPoolId": props["UserPoolId"], "GroupName": name,
                                     **{k: props[k] for k in ("Description", "RoleArn") if props.get(k)},
                                     **({"Precedence": int(props["Precedence"])}
                                        if props.get("Precedence") is not None else {})})
            return Provisioned(f"{props['UserPoolId']}|{name}", name)
        if kind == "UserPoolDomain":
            self.create_user_pool_domain(rctx, {k: props[k] for k in ("Domain", "UserPoolId", "CustomDomainConfig",
                                                                      "ManagedLoginVersion") if props.get(k)})
            return Provisioned(props["Domain"], props["Domain"], {
                "CloudFrontDistribution": f"{props['Domain']}.cloudfront.net"})
        if kind == "UserPoolResourceServer":
            self.create_resource_server(rctx, {k: props[k] for k in ("Identifier", "Name", "Scopes", "UserPoolId")
                                               if props.get(k) is not None})
            return Provisioned(f"{props['UserPoolId']}|{props['Identifier']}", props["Identifier"])
        if kind == "UserPoolUser":
            pool = self._pool(props["UserPoolId"])
            given = props.get("Username") or physical_name(ctx.stack_name, logical_id, 128)
            attributes = validate_attributes(pool, props.get("UserAttributes"), creating=True)
            password = temporary_password(pool)
            mediums = props.get("DesiredDeliveryMediums") or []
            prefer = ["phone_number" if m == "SMS" else "email" for m in mediums] or None
            dest = messages.destination(attributes, prefer) if props.get("MessageAction") != "SUPPRESS" else None
            message = messages.default(pool, "AdminCreateUser", given, password) if dest else None
            user = self.create_invited(pool, given, attributes, password, None, dest, message)
            return Provisioned(f"{pool.id}|{user.username}", user.username)
        if kind == "UserPoolUserToGroupAttachment":
            self.admin_add_user_to_group(rctx, {k: props[k] for k in ("UserPoolId", "Username", "GroupName")})
            return Provisioned(f"{props['UserPoolId']}|{props['GroupName']}|{props['Username']}")
        raise NotImplementedError(resource_type)

    def _pool_provisioned(self: "CognitoIdp", pool_id: str, region: str) -> Provisioned:
        pool = self._pool(pool_id)
        provider = f"cognito-idp.{region}.amazonaws.com/{pool_id}"
        return Provisioned(pool_id, pool_id, {"Arn": pool.arn, "ProviderName": provider,
                                              "ProviderURL": f"https://{provider}", "UserPoolId": pool_id})

    def update_resource(self: "CognitoIdp", ctx: ResourceContext, resource_type: str, logical_id: str,
                        physical_id: str, old_props: dict[str, Any], props: dict[str, Any]) -> Provisioned:
        rctx = ctx.request_context("cognito-idp")
        if resource_type == "AWS::Cognito::UserPool" and all(
                old_props.get(k) == props.get(k) for k in ("UserPoolName", "AliasAttributes", "UsernameAttributes",
                                                           "UsernameConfiguration")):
            params = _pool_params(props, "")
            params.pop("PoolName")
            schema = params.pop("Schema", None) or []
            for key in ("AliasAttributes", "UsernameAttributes", "UsernameConfiguration"):
                params.pop(key, None)
            self.update_user_pool(rctx, {"UserPoolId": physical_id, **params})
            pool = self._pool(physical_id)
            existing = pool.schema()
            new = [a for a in schema if a.get("Name") not in existing and f"custom:{a.get('Name')}" not in existing]
            if new:
                self.add_custom_attributes(rctx, {"UserPoolId": physical_id, "CustomAttributes": new})
            return self._pool_provisioned(physical_id, ctx.region)
        if resource_type == "AWS::Cognito::UserPoolClient" and old_props.get("UserPoolId") == props.get(
                "UserPoolId") and old_props.get("GenerateSecret") == props.get("GenerateSecret"):
            params = {k: _bools(props[k]) for k in CLIENT_PROPS if props.get(k) is not None and k != "GenerateSecret"}
            client = self.update_user_pool_client(rctx, {**params, "UserPoolId": props["UserPoolId"],
                                                         "ClientId": physical_id})["UserPoolClient"]
            return Provisioned(physical_id, physical_id, {"ClientId": physical_id, "Name": client["ClientName"],
                                                          "ClientSecret": client.get("ClientSecret")})
        self.delete_resource(ctx, resource_type, physical_id, old_props)
        return self.create_resource(ctx, resource_type, logical_id, props)

    def delete_resource(self: "CognitoIdp", ctx: ResourceContext, resource_type: str, physical_id: str,
                        props: dict[str, Any]) -> None:
        rctx = ctx.request_context("cognito-idp")
        kind = resource_type.rsplit("::", 1)[1]
        try:
            if kind == "UserPool":
                pool = self._pool(physical_id)
                pool.config["DeletionProtection"] = "INACTIVE"
                self.pools.save(pool)
                self.delete_user_pool(rctx, {"UserPoolId": physical_id})
            elif kind == "UserPoolClient":
                self.delete_user_pool_client(rctx, {"UserPoolId": props["UserPoolId"], "ClientId": physical_id})
            elif kind == "UserPoolGroup":
                pool_id, name = physical_id.split("|", 1)
                self.delete_group(rctx, {"UserPoolId": pool_id, "GroupName": name})
            elif kind == "UserPoolDomain":
                self.delete_user_pool_domain(rctx, {"UserPoolId": props["UserPoolId"], "Domain": physical_id})
            elif kind == "UserPoolResourceServer":
                pool_id, identifier = physical_id.split("|", 1)
                self.delete_resource_server(rctx, {"UserPoolId": pool_id, "Identifier": identifier})
            elif kind == "UserPoolUser":
                pool_id, username = physical_id.split("|", 1)
                self.admin_delete_user(rctx, {"UserPoolId": pool_id, "Username": username})
            elif kind == "UserPoolUserToGroupAttachment":
                pool_id, group, username = physical_id.split("|", 2)
                self.admin_remove_user_from_group(rctx, {"UserPoolId": pool_id, "GroupName": group,
                                                         "Username": username})
        except ServiceError:
            pass  # already gone with its pool
