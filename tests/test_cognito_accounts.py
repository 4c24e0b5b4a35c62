"""What end users do themselves: sign up and confirm with the code mailed to the local
mailbox, reset a forgotten password, change and verify their attributes, change their
password, with AWS's errors for wrong, replayed and expired codes; and the Lambda
triggers that change what those operations do. Codes expire on the clock, which this
module moves, so it has its own unkai."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from botocore.exceptions import ClientError
from lambda_code import deploy, private_server

PASSWORD = "Passw0rd!"
unkai = private_server("cognito-accounts")


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


TRIGGERS = """
def handler(event, context):
    source, request, response = event["triggerSource"], event["request"], event["response"]
    if source == "PreSignUp_SignUp":
        if request["userAttributes"].get("email", "").endswith("@blocked.example"):
            raise Exception("Invalid email domain")
        response["autoConfirmUser"] = True
        response["autoVerifyEmail"] = True
    elif source == "CustomMessage_ForgotPassword":
        response["emailSubject"] = "Reset your password"
        response["emailMessage"] = "Hello " + event["userName"] + ", your code is " + request["codeParameter"]
    elif source.startswith("TokenGeneration_"):
        response["claimsOverrideDetails"] = {"claimsToAddOrOverride": {"tenant": "acme"},
                                             "claimsToSuppress": ["email"]}
    elif source == "DefineAuthChallenge_Authentication":
        session = request["session"]
        response["issueTokens"] = bool(session) and session[-1]["challengeResult"]
        response["failAuthentication"] = len(session) >= 2 and not session[-1]["challengeResult"]
        response["challengeName"] = "CUSTOM_CHALLENGE"
    elif source == "CreateAuthChallenge_Authentication":
        response["publicChallengeParameters"] = {"question": "2 + 2"}
        response["privateChallengeParameters"] = {"answer": "4"}
    elif source == "VerifyAuthChallengeResponse_Authentication":
        response["answerCorrect"] = request["challengeAnswer"] == request["privateChallengeParameters"]["answer"]
    return event
"""


@pytest.fixture(scope="module")
def triggered(unkai, idp):
    arn = unkai.client("lambda").get_function(FunctionName=deploy(unkai.client("lambda"), TRIGGERS))[
        "Configuration"]["FunctionArn"]
    config = {name: arn for name in ("PreSignUp", "CustomMessage", "PreTokenGeneration", "DefineAuthChallenge",
                                     "CreateAuthChallenge", "VerifyAuthChallengeResponse")}
    pool = idp.create_user_pool(PoolName="triggered", LambdaConfig=config,
                                AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
    client = idp.create_user_pool_client(UserPoolId=pool, ClientName="app", ExplicitAuthFlows=[
        "ALLOW_USER_PASSWORD_AUTH", "ALLOW_CUSTOM_AUTH"])["UserPoolClient"]["ClientId"]
    return pool, client


def test_triggers_decide_sign_up_messages_tokens_and_custom_challenges(unkai, idp, triggered):
    import jwt

    pool, client = triggered
    with pytest.raises(ClientError) as exc:
        idp.sign_up(ClientId=client, Username="eve", Password=PASSWORD,
                    UserAttributes=[{"Name": "email", "Value": "eve@blocked.example"}])
    assert code(exc) == "UserLambdaValidationException"
    assert exc.value.response["Error"]["Message"] == "PreSignUp failed with error Invalid email domain."
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    assert idp.sign_up(ClientId=client, Username="dan", Password=PASSWORD,
                       UserAttributes=[{"Name": "email", "Value": email}])["UserConfirmed"] is True
    tokens = sign_in(idp, client, "dan")["AuthenticationResult"]
    claims = jwt.decode(tokens["IdToken"], options={"verify_signature": False})
    assert claims["tenant"] == "acme" and "email" not in claims and claims["email_verified"] is True
    idp.forgot_password(ClientId=client, Username="dan")
    mail = [m for m in unkai.mail() if email in json.dumps(m)][-1]
    assert mail["subject"] == "Reset your password" and "Hello dan, your code is" in json.dumps(mail)
    started = idp.initiate_auth(ClientId=client, AuthFlow="CUSTOM_AUTH", AuthParameters={"USERNAME": "dan"})
    assert started["ChallengeName"] == "CUSTOM_CHALLENGE"
    assert started["ChallengeParameters"]["question"] == "2 + 2"
    again = idp.respond_to_auth_challenge(ClientId=client, ChallengeName="CUSTOM_CHALLENGE",
                                          Session=started["Session"],
                                          ChallengeResponses={"USERNAME": "dan", "ANSWER": "5"})
    assert again["ChallengeName"] == "CUSTOM_CHALLENGE"
    done = idp.respond_to_auth_challenge(ClientId=client, ChallengeName="CUSTOM_CHALLENGE", Session=again["Session"],
                                         ChallengeResponses={"USERNAME": "dan", "ANSWER": "4"})
    assert done["AuthenticationResult"]["IdToken"]


MIGRATING = """
import json

OLD_DIRECTORY = {"legacy": ("Legacy-pass1", "legacy@old.example"), "forgetful": (None, "forgetful@old.example")}


def handler(event, context):
    source, request, response = event["triggerSource"], event["request"], event["response"]
    print("TRIGGER " + json.dumps({"source": source, "user": event["userName"], "request": request}))
    if source.startswith("UserMigration_"):
        known = OLD_DIRECTORY.get(event["userName"])
        if known is None or (source == "UserMigration_Authentication" and request["password"] != known[0]):
            raise Exception("Bad password")
        response["userAttributes"] = {"email": known[1], "email_verified": "true"}
        response["finalUserStatus"] = "CONFIRMED"
        response["messageAction"] = "SUPPRESS"
    elif source == "PreAuthentication_Authentication":
        if request["userAttributes"].get("email", "").startswith("blocked"):
            raise Exception("Account is on hold")
    elif source.startswith("TokenGeneration_"):
        assert event["version"] == "2"
        response["claimsAndScopeOverrideDetails"] = {
            "idTokenGeneration": {"claimsToAddOrOverride": {"plan": "gold"}},
            "accessTokenGeneration": {"claimsToAddOrOverride": {"tier": "1"}, "scopesToAdd": ["reports/read"]}}
    return event
"""


def test_migration_authentication_and_confirmation_triggers(unkai, idp):
    import jwt

    lam = unkai.client("lambda")
    name = deploy(lam, MIGRATING)
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    pool = idp.create_user_pool(PoolName="migrating", AutoVerifiedAttributes=["email"], LambdaConfig={
        "UserMigration": arn, "PreAuthentication": arn, "PostAuthentication": arn, "PostConfirmation": arn,
        "PreTokenGenerationConfig": {"LambdaVersion": "V2_0", "LambdaArn": arn}})["UserPool"]["Id"]
    client = idp.create_user_pool_client(UserPoolId=pool, ClientName="app", ExplicitAuthFlows=[
        "ALLOW_USER_PASSWORD_AUTH"])["UserPoolClient"]["ClientId"]
    # at sign-in: the old directory vouches for the password, the user is created CONFIRMED
    with pytest.raises(ClientError) as exc:
        sign_in(idp, client, "legacy", "Wrong-pass1")
    assert code(exc) == "UserLambdaValidationException"
    assert exc.value.response["Error"]["Message"] == "UserMigration failed with error Bad password."
    tokens = sign_in(idp, client, "legacy", "Legacy-pass1")["AuthenticationResult"]
    user = idp.admin_get_user(UserPoolId=pool, Username="legacy")
    assert user["UserStatus"] == "CONFIRMED"
    assert {"Name": "email", "Value": "legacy@old.example"} in user["UserAttributes"]
    id_claims = jwt.decode(tokens["IdToken"], options={"verify_signature": False})
    access = jwt.decode(tokens["AccessToken"], options={"verify_signature": False})
    assert id_claims["plan"] == "gold" and access["tier"] == "1"  # PreTokenGeneration's v2 event
    assert "reports/read" in access["scope"].split()
    # in the forgotten-password flow: no password, the user waits for the mailed code
    after = len(unkai.mail("forgetful@old.example"))
    delivery = idp.forgot_password(ClientId=client, Username="forgetful")["CodeDeliveryDetails"]
    assert delivery["DeliveryMedium"] == "EMAIL"
    assert idp.admin_get_user(UserPoolId=pool, Username="forgetful")["UserStatus"] == "RESET_REQUIRED"
    assert len(unkai.mail("forgetful@old.example")) == after + 1
    idp.confirm_forgot_password(ClientId=client, Username="forgetful", Password="N3w-password",
                                ConfirmationCode=last_code(unkai, "forgetful@old.example"))
    assert idp.admin_get_user(UserPoolId=pool, Username="forgetful")["UserStatus"] == "CONFIRMED"
    assert sign_in(idp, client, "forgetful", "N3w-password")["AuthenticationResult"]
    with pytest.raises(ClientError) as exc:
        idp.forgot_password(ClientId=client, Username="stranger")
    assert code(exc) == "UserLambdaValidationException"
    # PreAuthentication refuses, before the password is even looked at
    idp.admin_create_user(UserPoolId=pool, Username="held", MessageAction="SUPPRESS", UserAttributes=[
        {"Name": "email", "Value": "blocked@new.example"}])
    idp.admin_set_user_password(UserPoolId=pool, Username="held", Password=PASSWORD, Permanent=True)
    with pytest.raises(ClientError) as exc:
        sign_in(idp, client, "held")
    assert exc.value.response["Error"]["Message"] == "PreAuthentication failed with error Account is on hold."
    # a user who signs up and confirms with the mailed code: PostConfirmation_ConfirmSignUp
    idp.sign_up(ClientId=client, Username="newcomer", Password=PASSWORD,
                UserAttributes=[{"Name": "email", "Value": "newcomer@new.example"}])
    idp.confirm_sign_up(ClientId=client, Username="newcomer",
                        ConfirmationCode=last_code(unkai, "newcomer@new.example"))
    unkai.drain()
    seen = [json.loads(e["message"].split("TRIGGER ", 1)[1]) for e in unkai.client("logs").filter_log_events(
        logGroupName=f"/aws/lambda/{name}", filterPattern="TRIGGER")["events"]]
    sources = [(s["source"], s["user"]) for s in seen]
    assert ("UserMigration_ForgotPassword", "forgetful") in sources
    assert "password" not in next(s["request"] for s in seen if s["source"] == "UserMigration_ForgotPassword")
    assert ("PostAuthentication_Authentication", "legacy") in sources
    assert ("PostConfirmation_ConfirmForgotPassword", "forgetful") in sources
    confirmed = next(s["request"] for s in seen if s["source"] == "PostConfirmation_ConfirmSignUp")
    assert confirmed["userAttributes"]["email"] == "newcomer@new.example"
    assert confirmed["userAttributes"]["cognito:user_status"] == "CONFIRMED"
    assert ("PreAuthentication_Authentication", "held") in sources
    assert ("PostAuthentication_Authentication", "held") not in sources
