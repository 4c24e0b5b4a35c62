"""AWS::ApiGateway::* and AWS::ApiGatewayV2::* resources written out by hand in a
CloudFormation template (no Lambda needed: MOCK and HTTP integrations)."""

from __future__ import annotations

import httpx
import pytest
from websockets.sync.client import connect

from unkai.testing import UnkaiServer

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Api:
    Type: AWS::ApiGateway::RestApi
    Properties:
      Name: handmade
      ApiKeySourceType: HEADER
  Orders:
    Type: AWS::ApiGateway::Resource
    Properties:
      RestApiId: !Ref Api
      ParentId: !GetAtt Api.RootResourceId
      PathPart: orders
  OrderModel:
    Type: AWS::ApiGateway::Model
    Properties:
      RestApiId: !Ref Api
      Name: Order
      ContentType: application/json
      Schema:
        type: object
        required: [qty]
        properties:
          qty: {type: integer}
  BodyValidator:
    Type: AWS::ApiGateway::RequestValidator
    Properties:
      RestApiId: !Ref Api
      ValidateRequestBody: true
  PostOrder:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref Orders
      HttpMethod: POST
      AuthorizationType: NONE
      ApiKeyRequired: true
      RequestValidatorId: !Ref BodyValidator
      RequestModels:
        application/json: !Ref OrderModel
      Integration:
        Type: MOCK
        RequestTemplates:
          application/json: '{"statusCode": 201}'
        IntegrationResponses:
          - StatusCode: "201"
            ResponseTemplates:
              application/json: '{"created": true, "stage": "$context.stage", "env": "$stageVariables.env"}'
      MethodResponses:
        - StatusCode: "201"
  NotFound:
    Type: AWS::ApiGateway::GatewayResponse
    Properties:
      RestApiId: !Ref Api
      ResponseType: MISSING_AUTHENTICATION_TOKEN
      StatusCode: "404"
      ResponseTemplates:
        application/json: '{"message": "no such route"}'
  Deployment:
    Type: AWS::ApiGateway::Deployment
    DependsOn: [PostOrder, NotFound]
    Properties:
      RestApiId: !Ref Api
  Stage:
    Type: AWS::ApiGateway::Stage
    Properties:
      RestApiId: !Ref Api
      DeploymentId: !Ref Deployment
      StageName: live
      Variables:
        env: test
  Key:
    Type: AWS::ApiGateway::ApiKey
    Properties:
      Enabled: true
      Value: handmade-key-0123456789abcdef
  Plan:
    Type: AWS::ApiGateway::UsagePlan
    DependsOn: Stage
    Properties:
      ApiStages:
        - ApiId: !Ref Api
          Stage: live
      Throttle:
        BurstLimit: 100
        RateLimit: 50
  PlanKey:
    Type: AWS::ApiGateway::UsagePlanKey
    Properties:
      KeyId: !Ref Key
      KeyType: API_KEY
      UsagePlanId: !Ref Plan

  Ws:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      Name: handmade-ws
      ProtocolType: WEBSOCKET
      RouteSelectionExpression: $request.body.action
  WsMock:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Ws
      IntegrationType: MOCK
  WsConnect:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Ws
      RouteKey: $connect
      Target: !Sub integrations/${WsMock}
  WsStage:
    Type: AWS::ApiGatewayV2::Stage
    Properties:
      ApiId: !Ref Ws
      StageName: live
      AutoDeploy: true
  WsCertificate:
    Type: AWS::CertificateManager::Certificate
    Properties:
      DomainName: ws.handmade.example.com
      ValidationMethod: DNS
  WsDomain:
    Type: AWS::ApiGatewayV2::DomainName
    Properties:
      DomainName: ws.handmade.example.com
      DomainNameConfigurations:
        - CertificateArn: !Ref WsCertificate
          EndpointType: REGIONAL
  WsMapping:
    Type: AWS::ApiGatewayV2::ApiMapping
    DependsOn: WsStage
    Properties:
      ApiId: !Ref Ws
      DomainName: !Ref WsDomain
      Stage: live

Outputs:
  ApiId:
    Value: !Ref Api
  Url:
    Value: !Sub https://${Api}.execute-api.${AWS::Region}.amazonaws.com/live
  WsId:
    Value: !Ref Ws
  WsUrl:
    Value: !Sub wss://${Ws}.execute-api.${AWS::Region}.amazonaws.com/live
  WsTarget:
    Value: !GetAtt WsDomain.RegionalDomainName
  WsZone:
    Value: !GetAtt WsDomain.RegionalHostedZoneId
  WsMappingId:
    Value: !Ref WsMapping
"""


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    root = tmp_path_factory.mktemp("handmade")
    (root / "template.yaml").write_text(TEMPLATE)
    server = UnkaiServer(root / "state", str(root / "template.yaml")).start(timeout=60)
    try:
        stacks = server.client("cloudformation").describe_stacks()["Stacks"]
        yield server, {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    finally:
        server.stop()


def test_rest_resources_from_a_template(deployed):
    server, out = deployed
    base = f"{server.endpoint}/_unkai/execute-api/{out['ApiId']}/live"
    assert out["Url"] == base
    key = {"x-api-key": "handmade-key-0123456789abcdef"}
    assert httpx.post(base + "/orders", json={"qty": 1}).status_code == 403
    assert httpx.post(base + "/orders", json={"qty": "x"}, headers=key).status_code == 400
    r = httpx.post(base + "/orders", json={"qty": 1}, headers=key)
    assert (r.status_code, r.json()) == (201, {"created": True, "stage": "live", "env": "test"})
    r = httpx.get(base + "/elsewhere")
    assert (r.status_code, r.json()) == (404, {"message": "no such route"})
    ag = server.client("apigateway")
    assert [s["stageName"] for s in ag.get_stages(restApiId=out["ApiId"])["item"]] == ["live"]
    assert ag.get_usage_plans()["items"][0]["apiStages"] == [{"apiId": out["ApiId"], "stage": "live"}]


def test_websocket_resources_from_a_template(deployed):
    server, out = deployed
    assert out["WsUrl"] == server.endpoint.replace("http", "ws") + f"/_unkai/execute-api/{out['WsId']}/live"
    with connect(out["WsUrl"]) as ws:
        ws.send("{}")
        assert "Forbidden" in ws.recv(timeout=5)


def test_a_custom_domain_and_its_api_mapping_from_a_template(deployed):
    server, out = deployed
    v2 = server.client("apigatewayv2")
    domain = v2.get_domain_name(DomainName="ws.handmade.example.com")
    config = domain["DomainNameConfigurations"][0]
    assert out["WsTarget"] == config["ApiGatewayDomainName"] and out["WsZone"] == config["HostedZoneId"]
    assert config["DomainNameStatus"] == "AVAILABLE"
    # its certificate, requested by the template from unkai's ACM and issued at once
    certificate = server.client("acm").describe_certificate(CertificateArn=config["CertificateArn"])["Certificate"]
    assert (certificate["DomainName"], certificate["Status"]) == ("ws.handmade.example.com", "ISSUED")
    mapping = v2.get_api_mapping(DomainName="ws.handmade.example.com", ApiMappingId=out["WsMappingId"])
    assert (mapping["ApiId"], mapping["Stage"], mapping["ApiMappingKey"]) == (out["WsId"], "live", "")
