"""Cognito user pools through boto3: pools, clients, users and the admin API, the
sign-in flows (password, SRP with pycognito, refresh, NEW_PASSWORD_REQUIRED), and the
tokens verified with PyJWT against the JWKS unkai serves at the issuer's path."""

from __future__ import annotations

import json
import re
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


@pytest.fixture
def pool(idp):
    pool = idp.create_user_pool(PoolName=f"p{uuid.uuid4().hex[:8]}", AutoVerifiedAttributes=["email"],
                                Schema=[{"Name": "tenant", "AttributeDataType": "String", "Mutable": True}])
    return pool["UserPool"]["Id"]


@pytest.fixture
def client(idp, pool):
    return idp.create_user_pool_client(
        UserPoolId=pool, ClientName="app",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH",
                           "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]["ClientId"]


def confirmed_user(idp, pool, name="alice", email=None, password=PASSWORD):
    idp.admin_create_user(UserPoolId=pool, Username=name, MessageAction="SUPPRESS", UserAttributes=[
        {"Name": "email", "Value": email or f"{name}@example.com"}, {"Name": "email_verified", "Value": "true"}])
    idp.admin_set_user_password(UserPoolId=pool, Username=name, Password=password, Permanent=True)


def jwks(unkai, pool):
    region = pool.split("_")[0]
    request = urllib.request.Request(f"{unkai.endpoint}/{pool}/.well-known/jwks.json",
                                     headers={"Host": f"cognito-idp.{region}.amazonaws.com"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def verify(unkai, pool, token, audience=None):
    keys = jwks(unkai, pool)
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in keys["keys"] if k["kid"] == kid)).key
    return jwt.decode(token, key, algorithms=["RS256"], audience=audience,
                      issuer=f"https://cognito-idp.{pool.split('_')[0]}.amazonaws.com/{pool}",
                      # other tests may have moved unkai's clock ahead of this machine's
                      options={"verify_aud": audience is not None, "verify_iat": False, "verify_exp": False})


def test_a_pool_describes_its_settings_with_aws_defaults(idp, pool):
    described = idp.describe_user_pool(UserPoolId=pool)["UserPool"]
    assert described["Arn"].endswith(f":userpool/{pool}")
    assert described["Policies"]["PasswordPolicy"]["MinimumLength"] == 8
    assert described["MfaConfiguration"] == "OFF"
    names = [a["Name"] for a in described["SchemaAttributes"]]
    assert "email" in names and "custom:tenant" in names
    assert pool in [p["Id"] for p in idp.list_user_pools(MaxResults=60)["UserPools"]]
    with pytest.raises(ClientError) as exc:
        idp.describe_user_pool(UserPoolId="us-east-1_nothere00")
    assert code(exc) == "ResourceNotFoundException"
    assert message(exc) == "User pool us-east-1_nothere00 does not exist."


def test_deletion_protection_keeps_a_pool(idp):
    pool = idp.create_user_pool(PoolName="kept", DeletionProtection="ACTIVE")["UserPool"]["Id"]
    with pytest.raises(ClientError) as exc:
        idp.delete_user_pool(UserPoolId=pool)
    assert code(exc) == "InvalidParameterException"
    idp.update_user_pool(UserPoolId=pool, DeletionProtection="INACTIVE")
    idp.delete_user_pool(UserPoolId=pool)


def test_admin_create_user_mails_a_temporary_password_and_forces_a_new_one(unkai, idp, pool, client):
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    user = idp.admin_create_user(UserPoolId=pool, Username="bob", UserAttributes=[
        {"Name": "email", "Value": email}, {"Name": "custom:tenant", "Value": "東京"}],
        DesiredDeliveryMediums=["EMAIL"])["User"]
    assert user["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    mail = [m for m in unkai.mail() if email in json.dumps(m)][-1]
    temporary = re.search(r"temporary password is (\S+)\.", json.dumps(mail))[1]
    first = idp.initiate_auth(ClientId=client, AuthFlow="USER_PASSWORD_AUTH",
                              AuthParameters={"USERNAME": "bob", "PASSWORD": temporary})
    assert first["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    with pytest.raises(ClientError) as exc:
        idp.respond_to_auth_challenge(ClientId=client, ChallengeName="NEW_PASSWORD_REQUIRED", Session=first["Session"],
                                      ChallengeResponses={"USERNAME": "bob", "NEW_PASSWORD": "short"})
    assert code(exc) == "InvalidPasswordException"
    assert message(exc) == "Password did not conform with policy: Password not long enough"
    done = idp.respond_to_auth_challenge(ClientId=client, ChallengeName="NEW_PASSWORD_REQUIRED",
                                         Session=first["Session"],
                                         ChallengeResponses={"USERNAME": "bob", "NEW_PASSWORD": PASSWORD})
    claims = verify(unkai, pool, done["AuthenticationResult"]["IdToken"], audience=client)
    assert claims["cognito:username"] == "bob" and claims["custom:tenant"] == "東京"
    assert idp.admin_get_user(UserPoolId=pool, Username="bob")["UserStatus"] == "CONFIRMED"


def test_password_sign_in_gives_tokens_with_awss_claims(unkai, idp, pool, client):
    confirmed_user(idp, pool)
    idp.create_group(UserPoolId=pool, GroupName="admins", Precedence=1)
    idp.admin_add_user_to_group(UserPoolId=pool, Username="alice", GroupName="admins")
    result = idp.initiate_auth(ClientId=client, AuthFlow="USER_PASSWORD_AUTH",
                               AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD})["AuthenticationResult"]
    assert result["TokenType"] == "Bearer" and result["ExpiresIn"] == 3600
    id_claims = verify(unkai, pool, result["IdToken"], audience=client)
    access = verify(unkai, pool, result["AccessToken"])
    assert id_claims["token_use"] == "id" and access["token_use"] == "access"
    assert id_claims["email"] == "alice@example.com" and id_claims["email_verified"] is True
    assert access["client_id"] == client and access["username"] == "alice"
    assert id_claims["cognito:groups"] == ["admins"] == access["cognito:groups"]
    assert id_claims["origin_jti"] == access["origin_jti"]
    me = idp.get_user(AccessToken=result["AccessToken"])
    assert me["Username"] == "alice"
    refreshed = idp.initiate_auth(ClientId=client, AuthFlow="REFRESH_TOKEN_AUTH",
                                  AuthParameters={"REFRESH_TOKEN": result["RefreshToken"]})["AuthenticationResult"]
    assert "RefreshToken" not in refreshed
    assert verify(unkai, pool, refreshed["AccessToken"])["origin_jti"] == access["origin_jti"]
    admin = idp.admin_initiate_auth(UserPoolId=pool, ClientId=client, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                                    AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD})
    assert admin["AuthenticationResult"]["RefreshToken"]
    with pytest.raises(ClientError) as exc:  # no email alias in this pool
        idp.admin_initiate_auth(UserPoolId=pool, ClientId=client, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                                AuthParameters={"USERNAME": "alice@example.com", "PASSWORD": PASSWORD})
    assert code(exc) == "UserNotFoundException"


def test_wrong_passwords_unknown_users_and_disabled_users_are_refused(idp, pool, client):
    confirmed_user(idp, pool)
    with pytest.raises(ClientError) as exc:
        idp.initiate_auth(ClientId=client, AuthFlow="USER_PASSWORD_AUTH",
                          AuthParameters={"USERNAME": "alice", "PASSWORD": "Wrong0ne!"})
    assert code(exc) == "NotAuthorizedException" and message(exc) == "Incorrect username or password."
    with pytest.raises(ClientError) as exc:
        idp.initiate_auth(ClientId=client, AuthFlow="USER_PASSWORD_AUTH",
                          AuthParameters={"USERNAME": "nobody", "PASSWORD": PASSWORD})
    assert code(exc) == "UserNotFoundException"
    idp.admin_disable_user(UserPoolId=pool, Username="alice")
    with pytest.raises(ClientError) as exc:
        idp.initiate_auth(ClientId=client, AuthFlow="USER_PASSWORD_AUTH",
                          AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD})
    assert message(exc) == "User is disabled."
    srp_only = idp.create_user_pool_client(UserPoolId=pool, ClientName="spa")["UserPoolClient"]["ClientId"]
    with pytest.raises(ClientError) as exc:
        idp.initiate_auth(ClientId=srp_only, AuthFlow="USER_PASSWORD_AUTH",
                          AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD})
    assert code(exc) == "InvalidParameterException"
    assert message(exc) == "USER_PASSWORD_AUTH flow not enabled for this client"


def test_a_client_with_a_secret_needs_the_secret_hash(idp, pool):
    import base64
    import hashlib
    import hmac

    confirmed_user(idp, pool)
    made = idp.create_user_pool_client(UserPoolId=pool, ClientName="server", GenerateSecret=True,
                                       ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"])["UserPoolClient"]
    with pytest.raises(ClientError) as exc:
        idp.initiate_auth(ClientId=made["ClientId"], AuthFlow="USER_PASSWORD_AUTH",
                          AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD})
    assert message(exc) == f"Client {made['ClientId']} is configured with secret but SECRET_HASH was not received"
    digest = hmac.new(made["ClientSecret"].encode(), ("alice" + made["ClientId"]).encode(), hashlib.sha256).digest()
    result = idp.initiate_auth(ClientId=made["ClientId"], AuthFlow="USER_PASSWORD_AUTH", AuthParameters={
        "USERNAME": "alice", "PASSWORD": PASSWORD, "SECRET_HASH": base64.b64encode(digest).decode()})
    assert result["AuthenticationResult"]["IdToken"]


def test_pycognito_signs_in_with_srp_and_verifies_the_tokens(unkai, idp, pool, client, monkeypatch):
    import boto3
    from pycognito import Cognito

    confirmed_user(idp, pool, "carol")
    monkeypatch.setenv("COGNITO_JWKS", json.dumps(jwks(unkai, pool)))
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    user = Cognito(pool, client, username="carol", session=session)
    user.client = unkai.client("cognito-idp")
    user.authenticate(password=PASSWORD)  # SRP, then pycognito verifies both tokens with the JWKS
    assert user.id_claims["cognito:username"] == "carol"
    assert user.access_claims["token_use"] == "access"
    with pytest.raises(ClientError) as exc:
        Cognito(pool, client, username="carol", session=session).__class__  # noqa: B018 - just the class
        bad = Cognito(pool, client, username="carol", session=session)
        bad.client = unkai.client("cognito-idp")
        bad.authenticate(password="Wrong0ne!")
    assert code(exc) == "NotAuthorizedException"


def test_tokens_are_refused_after_sign_out_and_refresh_tokens_after_revocation(idp, pool, client):
    confirmed_user(idp, pool)
    first = idp.initiate_auth(ClientId=client, AuthFlow="USER_PASSWORD_AUTH",
                              AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD})["AuthenticationResult"]
    idp.revoke_token(Token=first["RefreshToken"], ClientId=client)
    with pytest.raises(ClientError) as exc:
        idp.initiate_auth(ClientId=client, AuthFlow="REFRESH_TOKEN_AUTH",
                          AuthParameters={"REFRESH_TOKEN": first["RefreshToken"]})
    assert message(exc) == "Invalid Refresh Token"
    with pytest.raises(ClientError) as exc:
        idp.get_user(AccessToken=first["AccessToken"])
    assert message(exc) == "Access Token has been revoked"
    tampered = first["IdToken"][:-4] + ("AAAA" if not first["IdToken"].endswith("AAAA") else "BBBB")
    with pytest.raises(ClientError) as exc:
        idp.get_user(AccessToken=tampered)
    assert code(exc) == "NotAuthorizedException"


def test_list_users_filters_and_pages(idp, pool):
    for i in range(5):
        idp.admin_create_user(UserPoolId=pool, Username=f"user{i}", MessageAction="SUPPRESS",
                              UserAttributes=[{"Name": "email", "Value": f"user{i}@{'a' if i < 3 else 'b'}.example"}])
    page = idp.list_users(UserPoolId=pool, Limit=2)
    assert len(page["Users"]) == 2 and "PaginationToken" in page
    rest = idp.list_users(UserPoolId=pool, Limit=10, PaginationToken=page["PaginationToken"])
    assert len(rest["Users"]) == 3
    found = idp.list_users(UserPoolId=pool, Filter='email ^= "user1"')["Users"]
    assert [u["Username"] for u in found] == ["user1"]
    found = idp.list_users(UserPoolId=pool, Filter='cognito:user_status = "FORCE_CHANGE_PASSWORD"')["Users"]
    assert len(found) == 5
    with pytest.raises(ClientError) as exc:
        idp.list_users(UserPoolId=pool, Filter="email is everything")
    assert code(exc) == "InvalidParameterException"


def test_malformed_sign_in_steps_are_refused_with_awss_errors(idp, pool, client):
    confirmed_user(idp, pool)
    start = idp.initiate_auth(ClientId=client, AuthFlow="USER_SRP_AUTH",
                              AuthParameters={"USERNAME": "alice", "SRP_A": "0"})
    params = start["ChallengeParameters"]
    bad_answers = [
        {"USERNAME": "alice", "TIMESTAMP": "Mon Jan 1 00:00:00 UTC 2026", "PASSWORD_CLAIM_SECRET_BLOCK": "!!",
         "PASSWORD_CLAIM_SIGNATURE": "AAAA"},
        {"USERNAME": "alice", "TIMESTAMP": "x", "PASSWORD_CLAIM_SECRET_BLOCK": params["SECRET_BLOCK"],
         "PASSWORD_CLAIM_SIGNATURE": "not base64 ☃"},
        {"USERNAME": "alice"},
    ]
    for answer in bad_answers:
        with pytest.raises(ClientError) as exc:
            idp.respond_to_auth_challenge(ClientId=client, ChallengeName="PASSWORD_VERIFIER",
                                          ChallengeResponses=answer)
        assert code(exc) in ("NotAuthorizedException", "InvalidParameterException")
    for session in ("garbage" * 4, "A" * 400):
        with pytest.raises(ClientError) as exc:
            idp.respond_to_auth_challenge(ClientId=client, ChallengeName="NEW_PASSWORD_REQUIRED", Session=session,
                                          ChallengeResponses={"USERNAME": "alice", "NEW_PASSWORD": PASSWORD})
        assert code(exc) == "NotAuthorizedException"
    with pytest.raises(ClientError) as exc:
        idp.initiate_auth(ClientId=client, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "alice"})
    assert code(exc) == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        idp.admin_create_user(UserPoolId=pool, Username="u\u0000\U0001f600", UserAttributes=[
            {"Name": "custom:nope", "Value": "x"}])
    assert code(exc) == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        idp.get_user(AccessToken="e30.e30.e30")
    assert code(exc) == "NotAuthorizedException"
