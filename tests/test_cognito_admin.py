"""The rest of Cognito's user-pool settings and admin API as an operator meets them:
aliases and AliasExistsException, account recovery, a client's token validity and its
read/write attributes, groups with IAM roles in the ID token, the user lifecycle
(invitation resent, disabled and enabled, password reset by an admin, deleted), the
admin challenge flow, a resent confirmation code, the OpenID configuration document,
and what the state directory keeps (no plain-text password, owner-only files)."""

from __future__ import annotations

import json
import os
import re
import stat
import urllib.request
import uuid

import jwt
import pytest
from botocore.exceptions import ClientError

PASSWORD = "Passw0rd!"


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def message(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Message"]


@pytest.fixture(scope="module")
def idp(unkai):
    return unkai.client("cognito-idp")


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def mails_to(unkai, address: str) -> list[dict]:
    return [m for m in unkai.mail() if address in json.dumps(m)]


def sign_in(idp, client: str, name: str, password: str = PASSWORD) -> dict:
    return idp.initiate_auth(ClientId=client, AuthFlow="USER_PASSWORD_AUTH",
                             AuthParameters={"USERNAME": name, "PASSWORD": password})


def test_aliases_recovery_token_validity_and_client_attributes(idp):
    pool = idp.create_user_pool(
        PoolName=f"alias{uuid.uuid4().hex[:6]}", AliasAttributes=["email", "preferred_username"],
        AutoVerifiedAttributes=["email"],
        AccountRecoverySetting={"RecoveryMechanisms": [{"Priority": 1, "Name": "verified_email"}]},
        Schema=[{"Name": "tier", "AttributeDataType": "String", "Mutable": True}])["UserPool"]
    idp.set_user_pool_mfa_config(UserPoolId=pool["Id"], MfaConfiguration="OPTIONAL",
                                 SoftwareTokenMfaConfiguration={"Enabled": True})
    mfa = idp.get_user_pool_mfa_config(UserPoolId=pool["Id"])
    assert mfa["MfaConfiguration"] == "OPTIONAL" and mfa["SoftwareTokenMfaConfiguration"] == {"Enabled": True}
    described = idp.describe_user_pool(UserPoolId=pool["Id"])["UserPool"]
    assert described["MfaConfiguration"] == "OPTIONAL"
    assert described["AliasAttributes"] == ["email", "preferred_username"]
    assert described["AccountRecoverySetting"] == {"RecoveryMechanisms": [{"Priority": 1, "Name": "verified_email"}]}
    client = idp.create_user_pool_client(
        UserPoolId=pool["Id"], ClientName="app", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"],
        AccessTokenValidity=2, IdTokenValidity=30, TokenValidityUnits={"AccessToken": "hours", "IdToken": "minutes"},
        ReadAttributes=["email", "preferred_username"], WriteAttributes=["preferred_username"])["UserPoolClient"]
    assert client["AccessTokenValidity"] == 2 and client["TokenValidityUnits"]["IdToken"] == "minutes"
    cid = client["ClientId"]

    def user(name: str, email: str, **kwargs) -> None:
        idp.admin_create_user(UserPoolId=pool["Id"], Username=name, MessageAction="SUPPRESS", UserAttributes=[
            {"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"},
            {"Name": "custom:tier", "Value": "gold"}], **kwargs)
        idp.admin_set_user_password(UserPoolId=pool["Id"], Username=name, Password=PASSWORD, Permanent=True)

    user("ann", "ann@alias.example")
    tokens = sign_in(idp, cid, "ann@alias.example")["AuthenticationResult"]  # the verified email is an alias
    access, id_token = claims(tokens["AccessToken"]), claims(tokens["IdToken"])
    assert access["username"] == "ann" and access["exp"] - access["iat"] == 7200
    assert id_token["exp"] - id_token["iat"] == 1800 and id_token["auth_time"] == id_token["iat"]
    with pytest.raises(ClientError) as exc:
        user("ann2", "ann@alias.example")
    assert code(exc) == "AliasExistsException" and message(exc) == "An account with the given email already exists."
    # ForceAliasCreation moves the alias to the new user
    user("ann3", "ann@alias.example", ForceAliasCreation=True)
    assert claims(sign_in(idp, cid, "ann@alias.example")["AuthenticationResult"]["AccessToken"])["username"] == \
        "ann3"
    # the client reads only its ReadAttributes and writes only its WriteAttributes
    token = sign_in(idp, cid, "ann3")["AuthenticationResult"]["AccessToken"]
    names = {a["Name"] for a in idp.get_user(AccessToken=token)["UserAttributes"]}
    assert names == {"sub", "email"}
    with pytest.raises(ClientError) as exc:
        idp.update_user_attributes(AccessToken=token, UserAttributes=[{"Name": "custom:tier", "Value": "free"}])
    assert code(exc) == "NotAuthorizedException"
    idp.update_user_attributes(AccessToken=token, UserAttributes=[{"Name": "preferred_username", "Value": "annie"}])
    assert claims(sign_in(idp, cid, "annie")["AuthenticationResult"]["AccessToken"])["username"] == "ann3"


def test_groups_put_their_roles_in_the_id_token_and_list_their_members(idp):
    pool = idp.create_user_pool(PoolName=f"groups{uuid.uuid4().hex[:6]}")["UserPool"]["Id"]
    cid = idp.create_user_pool_client(UserPoolId=pool, ClientName="app", ExplicitAuthFlows=[
        "ALLOW_USER_PASSWORD_AUTH"])["UserPoolClient"]["ClientId"]
    admin_role, reader_role = "arn:aws:iam::000000000000:role/admins", "arn:aws:iam::000000000000:role/readers"
    idp.create_group(UserPoolId=pool, GroupName="readers", Precedence=5, RoleArn=reader_role)
    idp.create_group(UserPoolId=pool, GroupName="admins", Precedence=1, RoleArn=admin_role, Description="ops")
    assert idp.get_group(UserPoolId=pool, GroupName="admins")["Group"]["RoleArn"] == admin_role
    idp.admin_create_user(UserPoolId=pool, Username="gil", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool, Username="gil", Password=PASSWORD, Permanent=True)
    for group in ("readers", "admins"):
        idp.admin_add_user_to_group(UserPoolId=pool, Username="gil", GroupName=group)
    id_token = claims(sign_in(idp, cid, "gil")["AuthenticationResult"]["IdToken"])
    assert id_token["cognito:groups"] == ["admins", "readers"]  # by precedence
    assert id_token["cognito:roles"] == [admin_role, reader_role]
    assert id_token["cognito:preferred_role"] == admin_role  # the lowest precedence wins
    assert [u["Username"] for u in idp.list_users_in_group(UserPoolId=pool, GroupName="admins")["Users"]] == ["gil"]
    idp.admin_remove_user_from_group(UserPoolId=pool, Username="gil", GroupName="admins")
    assert idp.list_users_in_group(UserPoolId=pool, GroupName="admins")["Users"] == []
    assert claims(sign_in(idp, cid, "gil")["AuthenticationResult"]["IdToken"])["cognito:groups"] == ["readers"]


def test_an_admin_resends_disables_enables_resets_and_deletes_a_user(unkai, idp):
    pool = idp.create_user_pool(PoolName=f"life{uuid.uuid4().hex[:6]}", AutoVerifiedAttributes=["email"])[
        "UserPool"]["Id"]
    cid = idp.create_user_pool_client(UserPoolId=pool, ClientName="app", ExplicitAuthFlows=[
        "ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH"])["UserPoolClient"]["ClientId"]
    email = f"{uuid.uuid4().hex[:8]}@life.example"
    idp.admin_create_user(UserPoolId=pool, Username="hal", UserAttributes=[
        {"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}])
    idp.admin_create_user(UserPoolId=pool, Username="hal", MessageAction="RESEND")
    invitations = mails_to(unkai, email)
    assert len(invitations) == 2
    temporary = [re.search(r"temporary password is (\S+)\.", json.dumps(m))[1] for m in invitations]
    assert temporary[0] != temporary[1]  # a new temporary password; the first no longer works
    with pytest.raises(ClientError) as exc:
        sign_in(idp, cid, "hal", temporary[0])
    assert code(exc) == "NotAuthorizedException"
    # the admin flow and its challenge
    first = idp.admin_initiate_auth(UserPoolId=pool, ClientId=cid, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                                    AuthParameters={"USERNAME": "hal", "PASSWORD": temporary[1]})
    assert first["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    done = idp.admin_respond_to_auth_challenge(UserPoolId=pool, ClientId=cid, ChallengeName="NEW_PASSWORD_REQUIRED",
                                               Session=first["Session"],
                                               ChallengeResponses={"USERNAME": "hal", "NEW_PASSWORD": PASSWORD})
    assert done["AuthenticationResult"]["AccessToken"]
    idp.admin_disable_user(UserPoolId=pool, Username="hal")
    with pytest.raises(ClientError) as exc:
        sign_in(idp, cid, "hal")
    assert code(exc) == "NotAuthorizedException" and message(exc) == "User is disabled."
    idp.admin_enable_user(UserPoolId=pool, Username="hal")
    assert sign_in(idp, cid, "hal")["AuthenticationResult"]
    # an admin reset: the password stops working and a code is mailed
    idp.admin_reset_user_password(UserPoolId=pool, Username="hal")
    assert idp.admin_get_user(UserPoolId=pool, Username="hal")["UserStatus"] == "RESET_REQUIRED"
    with pytest.raises(ClientError) as exc:
        sign_in(idp, cid, "hal")
    assert code(exc) == "PasswordResetRequiredException"
    reset_code = re.search(r"\b(\d{6})\b", json.dumps(mails_to(unkai, email)[-1]))[1]
    idp.confirm_forgot_password(ClientId=cid, Username="hal", ConfirmationCode=reset_code, Password="N3w-password")
    assert sign_in(idp, cid, "hal", "N3w-password")["AuthenticationResult"]
    idp.admin_delete_user(UserPoolId=pool, Username="hal")
    with pytest.raises(ClientError) as exc:
        idp.admin_get_user(UserPoolId=pool, Username="hal")
    assert code(exc) == "UserNotFoundException"


def test_a_resent_confirmation_code_confirms_and_users_delete_themselves(unkai, idp):
    pool = idp.create_user_pool(PoolName=f"resend{uuid.uuid4().hex[:6]}", AutoVerifiedAttributes=["email"])[
        "UserPool"]["Id"]
    cid = idp.create_user_pool_client(UserPoolId=pool, ClientName="app", ExplicitAuthFlows=[
        "ALLOW_USER_PASSWORD_AUTH"])["UserPoolClient"]["ClientId"]
    email = f"{uuid.uuid4().hex[:8]}@resend.example"
    idp.sign_up(ClientId=cid, Username="ivy", Password=PASSWORD, UserAttributes=[{"Name": "email", "Value": email}])
    delivery = idp.resend_confirmation_code(ClientId=cid, Username="ivy")["CodeDeliveryDetails"]
    assert delivery["DeliveryMedium"] == "EMAIL" and delivery["AttributeName"] == "email"
    mails = mails_to(unkai, email)
    assert len(mails) == 2
    fresh = re.search(r"\b(\d{6})\b", json.dumps(mails[-1]))[1]
    idp.confirm_sign_up(ClientId=cid, Username="ivy", ConfirmationCode=fresh)
    token = sign_in(idp, cid, "ivy")["AuthenticationResult"]["AccessToken"]
    idp.delete_user(AccessToken=token)
    with pytest.raises(ClientError) as exc:
        idp.admin_get_user(UserPoolId=pool, Username="ivy")
    assert code(exc) == "UserNotFoundException"


def test_the_openid_configuration_names_the_issuer_and_its_keys(unkai, idp):
    pool = idp.create_user_pool(PoolName=f"oidc{uuid.uuid4().hex[:6]}")["UserPool"]["Id"]
    region = pool.split("_")[0]
    issuer = f"https://cognito-idp.{region}.amazonaws.com/{pool}"
    request = urllib.request.Request(f"{unkai.endpoint}/{pool}/.well-known/openid-configuration",
                                     headers={"Host": f"cognito-idp.{region}.amazonaws.com"})
    with urllib.request.urlopen(request, timeout=10) as response:
        doc = json.loads(response.read())
    assert doc["issuer"] == issuer and doc["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert "RS256" in doc["id_token_signing_alg_values_supported"]


def test_the_state_keeps_no_plain_password_and_only_its_owner_may_read_it(unkai, idp):
    pool = idp.create_user_pool(PoolName=f"secret{uuid.uuid4().hex[:6]}")["UserPool"]["Id"]
    cid = idp.create_user_pool_client(UserPoolId=pool, ClientName="app", ExplicitAuthFlows=[
        "ALLOW_USER_PASSWORD_AUTH"])["UserPoolClient"]["ClientId"]
    password = f"Unmistakable-{uuid.uuid4().hex}-9!"
    idp.admin_create_user(UserPoolId=pool, Username="jo", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool, Username="jo", Password=password, Permanent=True)
    tokens = sign_in(idp, cid, "jo", password)["AuthenticationResult"]  # a key pair now exists for the pool
    assert tokens["IdToken"]
    state = unkai.state_dir
    assert stat.S_IMODE(os.stat(state).st_mode) & 0o077 == 0
    for name in ("unkai.db", "unkai.db-wal", "sealing.key"):  # where the users and the sealed keys live
        path = os.path.join(state, name)
        if os.path.exists(path):
            assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0, f"{path} may be read by others"
    for root, _, files in os.walk(state):
        for name in files:
            path = os.path.join(root, name)
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except (FileNotFoundError, PermissionError):  # another test's file came and went meanwhile
                continue
            assert password.encode() not in data, f"{path} holds the password in plain text"
    # the pool's signing key is kept sealed (cloud.sealer), never as a readable PEM
    import sqlite3

    db = sqlite3.connect(f"file:{os.path.join(state, 'unkai.db')}?mode=ro", uri=True)
    try:
        (sealed,) = db.execute("SELECT private_key FROM cognito_keys WHERE pool_id=?", (pool,)).fetchone()
    finally:
        db.close()
    sealed = sealed if isinstance(sealed, bytes) else str(sealed).encode()
    assert b"PRIVATE KEY" not in sealed and not sealed.startswith(b"-----")
