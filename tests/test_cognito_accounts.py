"""What end users do themselves: sign up and confirm with the code mailed to the local
mailbox, reset a forgotten password, change and verify their attributes, change their
password, with AWS's errors for wrong, replayed and expired codes."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from botocore.exceptions import ClientError

PASSWORD = "Passw0rd!"


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def idp(unkai):
    return unkai.client("cognito-idp")


@pytest.fixture(scope="module")
def app(idp):
    """A pool whose users sign in with their email, as the talk's SPA does."""
    pool = idp.create_user_pool(PoolName="accounts", UsernameAttributes=["email"], AutoVerifiedAttributes=["email"],
                                UsernameConfiguration={"CaseSensitive": False})["UserPool"]["Id"]
    client = idp.create_user_pool_client(UserPoolId=pool, ClientName="spa", ExplicitAuthFlows=[
        "ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]["ClientId"]
    return pool, client


def last_code(unkai, address: str) -> str:
    mails = [m for m in unkai.mail() if address in json.dumps(m)]
    return re.search(r"\b(\d{6})\b", json.dumps(mails[-1]))[1]


def sign_in(idp, client, name, password=PASSWORD):
    return idp.initiate_auth(ClientId=client, AuthFlow="USER_PASSWORD_AUTH",
                             AuthParameters={"USERNAME": name, "PASSWORD": password})


def test_sign_up_is_confirmed_with_the_mailed_code(unkai, idp, app):
    pool, client = app
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    with pytest.raises(ClientError) as exc:
        idp.sign_up(ClientId=client, Username=email, Password="password")
    assert exc.value.response["Error"]["Message"] == \
        "Password did not conform with policy: Password must have uppercase characters"
    signed = idp.sign_up(ClientId=client, Username=email, Password=PASSWORD)
    assert signed["UserConfirmed"] is False
    assert signed["CodeDeliveryDetails"]["DeliveryMedium"] == "EMAIL"
    with pytest.raises(ClientError) as exc:
        idp.sign_up(ClientId=client, Username=email.upper(), Password=PASSWORD)
    assert code(exc) == "UsernameExistsException"
    with pytest.raises(ClientError) as exc:
        sign_in(idp, client, email)
    assert code(exc) == "UserNotConfirmedException"
    with pytest.raises(ClientError) as exc:
        idp.confirm_sign_up(ClientId=client, Username=email, ConfirmationCode="000000" if last_code(
            unkai, email) != "000000" else "111111")
    assert code(exc) == "CodeMismatchException"
    idp.confirm_sign_up(ClientId=client, Username=email, ConfirmationCode=last_code(unkai, email))
    with pytest.raises(ClientError) as exc:  # a code works once
        idp.confirm_sign_up(ClientId=client, Username=email, ConfirmationCode=last_code(unkai, email))
    assert code(exc) == "NotAuthorizedException"
    user = idp.admin_get_user(UserPoolId=pool, Username=email)
    assert user["Username"] == signed["UserSub"] and user["UserStatus"] == "CONFIRMED"
    assert {"Name": "email_verified", "Value": "true"} in user["UserAttributes"]
    tokens = sign_in(idp, client, email.upper())["AuthenticationResult"]
    assert idp.get_user(AccessToken=tokens["AccessToken"])["Username"] == signed["UserSub"]


def test_a_forgotten_password_is_reset_with_a_code_that_expires(unkai, idp, app):
    pool, client = app
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    idp.sign_up(ClientId=client, Username=email, Password=PASSWORD)
    idp.admin_confirm_sign_up(UserPoolId=pool, Username=email)
    idp.admin_update_user_attributes(UserPoolId=pool, Username=email,
                                     UserAttributes=[{"Name": "email_verified", "Value": "true"}])
    sent = idp.forgot_password(ClientId=client, Username=email)["CodeDeliveryDetails"]
    assert sent["Destination"].startswith(email[0] + "***@")
    unkai.advance(3601)
    with pytest.raises(ClientError) as exc:
        idp.confirm_forgot_password(ClientId=client, Username=email, ConfirmationCode=last_code(unkai, email),
                                    Password="N3w-password")
    assert code(exc) == "ExpiredCodeException"
    idp.forgot_password(ClientId=client, Username=email)
    idp.confirm_forgot_password(ClientId=client, Username=email, ConfirmationCode=last_code(unkai, email),
                                Password="N3w-password")
    with pytest.raises(ClientError) as exc:
        sign_in(idp, client, email)
    assert code(exc) == "NotAuthorizedException"
    assert sign_in(idp, client, email, "N3w-password")["AuthenticationResult"]["IdToken"]


def test_users_change_their_attributes_and_passwords_with_their_access_token(unkai, idp, app):
    pool, client = app
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    idp.admin_create_user(UserPoolId=pool, Username=email, MessageAction="SUPPRESS", TemporaryPassword=PASSWORD,
                          UserAttributes=[{"Name": "email_verified", "Value": "true"}])
    idp.admin_set_user_password(UserPoolId=pool, Username=email, Password=PASSWORD, Permanent=True)
    token = sign_in(idp, client, email)["AuthenticationResult"]["AccessToken"]
    new_email = f"new-{email}"
    sent = idp.update_user_attributes(AccessToken=token, UserAttributes=[
        {"Name": "email", "Value": new_email}, {"Name": "name", "Value": "Zoë 🌸"}])
    assert sent["CodeDeliveryDetailsList"][0]["AttributeName"] == "email"
    attributes = {a["Name"]: a["Value"] for a in idp.get_user(AccessToken=token)["UserAttributes"]}
    assert attributes["email_verified"] == "false" and attributes["name"] == "Zoë 🌸"
    idp.verify_user_attribute(AccessToken=token, AttributeName="email", Code=last_code(unkai, new_email))
    attributes = {a["Name"]: a["Value"] for a in idp.get_user(AccessToken=token)["UserAttributes"]}
    assert attributes["email_verified"] == "true"
    with pytest.raises(ClientError) as exc:
        idp.change_password(AccessToken=token, PreviousPassword="Wr0ng-password", ProposedPassword="N3w-password")
    assert code(exc) == "NotAuthorizedException"
    idp.change_password(AccessToken=token, PreviousPassword=PASSWORD, ProposedPassword="N3w-password")
    assert sign_in(idp, client, new_email, "N3w-password")["AuthenticationResult"]
    idp.global_sign_out(AccessToken=token)
    with pytest.raises(ClientError) as exc:
        idp.get_user(AccessToken=token)
    assert code(exc) == "NotAuthorizedException"
