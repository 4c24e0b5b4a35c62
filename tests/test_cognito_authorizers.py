"""A pool made by a template (AWS::Cognito::* resources, read back through the API, and
SAM's ``Cognito`` event source wiring a function in as the pool's trigger), and API Gateway checking its tokens as it checks any issuer's: a REST API's
COGNITO_USER_POOLS authorizer and an HTTP API's JWT authorizer fetch the pool's JWKS
from the issuer URL, accept its tokens and refuse expired, tampered or wrong-audience
ones. This module moves the clock, so it has its own unkai."""

from __future__ import annotations

import httpx
import pytest

from unkai.testing import UnkaiServer

PASSWORD = "Passw0rd!"
TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  AutoConfirm:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      InlineCode: |
        def handler(event, context):
            if event["triggerSource"] == "PreSignUp_SignUp":
                if event["request"]["userAttributes"].get("email", "").endswith("@partner.example"):
                    event["response"]["autoConfirmUser"] = True
                    event["response"]["autoVerifyEmail"] = True
            return event
      Events:
        SignUp:
          Type: Cognito
          Properties:
            UserPool: !Ref Pool
            Trigger: [PreSignUp, CustomMessage]
  Pool:
    Type: AWS::Cognito::UserPool
    Properties:
      UserPoolName: api-users
      Schema:
        - Name: tenant
          AttributeDataType: String
          Mutable: true
          StringAttributeConstraints: {MinLength: 1, MaxLength: 32}
  Spa:
    Type: AWS::Cognito::UserPoolClient
    Properties:
      UserPoolId: !Ref Pool
      ExplicitAuthFlows: [ALLOW_USER_PASSWORD_AUTH, ALLOW_REFRESH_TOKEN_AUTH]
  Other:
    Type: AWS::Cognito::UserPoolClient
    Properties:
      UserPoolId: !Ref Pool
      ClientName: other
      ExplicitAuthFlows: [ALLOW_USER_PASSWORD_AUTH]
  Backend:
    Type: AWS::Cognito::UserPoolClient
    Properties:
      UserPoolId: !Ref Pool
      GenerateSecret: true
  Admins:
    Type: AWS::Cognito::UserPoolGroup
    Properties:
      UserPoolId: !Ref Pool
      GroupName: admins
      Precedence: 1
  Domain:
    Type: AWS::Cognito::UserPoolDomain
    Properties:
      UserPoolId: !Ref Pool
      Domain: unkai-template-test
  Api:
    Type: AWS::Cognito::UserPoolResourceServer
    Properties:
      UserPoolId: !Ref Pool
      Identifier: https://api.example.com
      Name: api
      Scopes: [{ScopeName: read, ScopeDescription: read things}]
  Op:
    Type: AWS::Cognito::UserPoolUser
    Properties:
      UserPoolId: !Ref Pool
      Username: op
      UserAttributes: [{Name: email, Value: op@example.com}, {Name: custom:tenant, Value: acme}]
  OpIsAdmin:
    Type: AWS::Cognito::UserPoolUserToGroupAttachment
    Properties:
      UserPoolId: !Ref Pool
      GroupName: !Ref Admins
      Username: !Ref Op
Outputs:
  PoolId: {Value: !Ref Pool}
  PoolArn: {Value: !GetAtt Pool.Arn}
  ProviderURL: {Value: !GetAtt Pool.ProviderURL}
  SpaId: {Value: !Ref Spa}
  OtherId: {Value: !GetAtt Other.ClientId}
  AutoConfirmArn: {Value: !GetAtt AutoConfirm.Arn}
  BackendSecret: {Value: !GetAtt Backend.ClientSecret}
  Group: {Value: !Ref Admins}
  Domain: {Value: !Ref Domain}
  User: {Value: !Ref Op}
"""


@pytest.fixture(scope="module")
def unkai(tmp_path_factory):
    base = tmp_path_factory.mktemp("cognito-template")
    (base / "template.yaml").write_text(TEMPLATE)
    server = UnkaiServer(base / "state", str(base / "template.yaml")).start(timeout=120)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def outputs(unkai):
    stack = unkai.client("cloudformation").describe_stacks()["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", unkai.output()
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


@pytest.fixture(scope="module")
def signed_in(unkai, outputs):
    idp = unkai.client("cognito-idp")
    pool = idp.describe_user_pool(UserPoolId=outputs["PoolId"])["UserPool"]
    idp.admin_set_user_password(UserPoolId=pool["Id"], Username="op", Password=PASSWORD, Permanent=True)

    def sign_in(client_id: str) -> dict:
        return idp.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={
            "USERNAME": "op", "PASSWORD": PASSWORD})["AuthenticationResult"]

    return pool, outputs["SpaId"], outputs["OtherId"], sign_in


def test_template_resources_are_the_apis_own(unkai, outputs):
    idp = unkai.client("cognito-idp")
    pool_id = outputs["PoolId"]
    pool = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert pool["Name"] == "api-users" and outputs["PoolArn"] == pool["Arn"]
    assert outputs["ProviderURL"] == f"https://cognito-idp.us-east-1.amazonaws.com/{pool_id}"
    tenant = next(a for a in pool["SchemaAttributes"] if a["Name"] == "custom:tenant")
    assert tenant["StringAttributeConstraints"] == {"MinLength": "1", "MaxLength": "32"}
    backend = [c for c in idp.list_user_pool_clients(UserPoolId=pool_id)["UserPoolClients"]
               if c["ClientId"] not in (outputs["SpaId"], outputs["OtherId"])][0]
    described = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=backend["ClientId"])["UserPoolClient"]
    assert described["ClientSecret"] == outputs["BackendSecret"]
    assert outputs["Group"] == "admins" and idp.get_group(UserPoolId=pool_id, GroupName="admins")["Group"][
        "Precedence"] == 1
    assert idp.describe_user_pool_domain(Domain=outputs["Domain"])["DomainDescription"]["UserPoolId"] == pool_id
    assert idp.describe_resource_server(UserPoolId=pool_id, Identifier="https://api.example.com")[
        "ResourceServer"]["Scopes"] == [{"ScopeName": "read", "ScopeDescription": "read things"}]
    user = idp.admin_get_user(UserPoolId=pool_id, Username=outputs["User"])
    assert {"Name": "custom:tenant", "Value": "acme"} in user["UserAttributes"]
    assert [g["GroupName"] for g in idp.admin_list_groups_for_user(UserPoolId=pool_id, Username="op")["Groups"]] \
        == ["admins"]
    invitation = [m for m in unkai.mail() if "op@example.com" in str(m)]
    assert invitation and "temporary password" in str(invitation[0])


def test_sams_cognito_event_wires_the_function_in_as_the_pools_trigger(unkai, outputs):
    idp = unkai.client("cognito-idp")
    config = idp.describe_user_pool(UserPoolId=outputs["PoolId"])["UserPool"]["LambdaConfig"]
    assert config == {"PreSignUp": outputs["AutoConfirmArn"], "CustomMessage": outputs["AutoConfirmArn"]}
    policy = unkai.client("lambda").get_policy(FunctionName=outputs["AutoConfirmArn"])["Policy"]
    assert "cognito-idp.amazonaws.com" in policy and outputs["PoolArn"] in policy  # SAM's permission for the pool
    partner = idp.sign_up(ClientId=outputs["OtherId"], Username="partner", Password=PASSWORD,
                          UserAttributes=[{"Name": "email", "Value": "p@partner.example"}])
    assert partner["UserConfirmed"] is True  # the trigger confirmed it
    stranger = idp.sign_up(ClientId=outputs["OtherId"], Username="stranger", Password=PASSWORD,
                           UserAttributes=[{"Name": "email", "Value": "s@elsewhere.example"}])
    assert stranger["UserConfirmed"] is False
    attributes = idp.admin_get_user(UserPoolId=outputs["PoolId"], Username="partner")["UserAttributes"]
    assert {"Name": "email_verified", "Value": "true"} in attributes


def test_a_rest_api_cognito_authorizer_accepts_the_pools_tokens_until_they_expire(unkai, signed_in):
    pool, client_id, _, sign_in = signed_in
    ag = unkai.client("apigateway")
    api = ag.create_rest_api(name="users")
    res = ag.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="me")
    auth = ag.create_authorizer(restApiId=api["id"], name="pool", type="COGNITO_USER_POOLS",
                                providerARNs=[pool["Arn"]], identitySource="method.request.header.Authorization")
    ag.put_method(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", authorizationType="COGNITO_USER_POOLS",
                  authorizerId=auth["id"])
    ag.put_integration(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", type="MOCK",
                       requestTemplates={"application/json": '{"statusCode": 200}'})
    ag.put_integration_response(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", statusCode="200",
                                responseTemplates={"application/json":
                                                   '{"user": "$context.authorizer.claims[\'cognito:username\']"}'})
    ag.put_method_response(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", statusCode="200")
    ag.create_deployment(restApiId=api["id"], stageName="prod")
    url = f"{unkai.endpoint}/_unkai/execute-api/{api['id']}/prod/me"
    tokens = sign_in(client_id)

    def get(token: str | None) -> httpx.Response:
        return httpx.get(url, headers={"Authorization": token} if token else {})

    ok = get(tokens["IdToken"])
    assert (ok.status_code, ok.json()) == (200, {"user": "op"})
    assert get(None).status_code == 401
    head, body, signature = tokens["IdToken"].split(".")
    assert get(f"{head}.{body}.{signature[::-1]}").status_code == 401
    unkai.advance(3601)  # ID tokens live an hour on unkai's clock
    assert get(tokens["IdToken"]).status_code == 401
    assert get(sign_in(client_id)["IdToken"]).status_code == 200


def test_an_http_api_jwt_authorizer_checks_the_pools_issuer_and_audience(unkai, signed_in):
    pool, client_id, other_id, sign_in = signed_in
    v2 = unkai.client("apigatewayv2")
    api = v2.create_api(Name="jwt", ProtocolType="HTTP")
    integ = v2.create_integration(ApiId=api["ApiId"], IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                                  IntegrationUri=f"{unkai.endpoint}/_unkai/inbox/cognito-jwt")
    issuer = f"https://cognito-idp.us-east-1.amazonaws.com/{pool['Id']}"
    auth = v2.create_authorizer(ApiId=api["ApiId"], Name="pool", AuthorizerType="JWT",
                                IdentitySource=["$request.header.Authorization"],
                                JwtConfiguration={"Issuer": issuer, "Audience": [client_id]})
    v2.create_route(ApiId=api["ApiId"], RouteKey="GET /me", Target=f"integrations/{integ['IntegrationId']}",
                    AuthorizationType="JWT", AuthorizerId=auth["AuthorizerId"])
    v2.create_stage(ApiId=api["ApiId"], StageName="$default", AutoDeploy=True)
    url = f"{unkai.endpoint}/_unkai/execute-api/{api['ApiId']}/me"

    def get(token: str) -> int:
        return httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code

    mine = sign_in(client_id)
    assert get(mine["AccessToken"]) == 200  # client_id is the access token's audience
    assert get(mine["IdToken"]) == 200  # aud is the ID token's
    assert get(sign_in(other_id)["IdToken"]) == 401
