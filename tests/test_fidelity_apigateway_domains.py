"""Custom domain names served on unkai's port by their Host, as API Gateway serves them (issue 23,
item 3: API Gateway): a REST API's base path mappings (with a stage, and without one, where the
caller names the stage) and an HTTP API's API mappings, the longest matching key first.

Its own server: a custom domain's Host is foreign to unkai unless allowed (``--allow-host``), the
DNS-rebinding rule of docs/security.md."""

from __future__ import annotations

import http.client
import time

import pytest

from unkai.testing import UnkaiServer

CERT = "arn:aws:acm:us-east-1:000000000000:certificate/0d3c1f52-5b7a-4a5e-9a55-5f0f0d2b7a11"


TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  ShopApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: live
      Domain:
        DomainName: shop.example.com
        CertificateArn: %s
        BasePath: [catalog]
      DefinitionBody:
        openapi: "3.0.1"
        info: {title: shop, version: "1"}
        paths:
          /items:
            get:
              x-amazon-apigateway-integration:
                type: mock
                requestTemplates: {application/json: '{"statusCode": 200}'}
                responses:
                  default:
                    statusCode: "200"
                    responseTemplates: {application/json: 'items of the shop'}
              responses:
                "200": {description: ok}
""" % CERT


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("domains")
    (folder / "template.yaml").write_text(TEMPLATE)
    started = UnkaiServer(folder / "state", "--allow-host", "*.example.com", str(folder / "template.yaml")).start(
        timeout=120)
    try:
        yield started
    finally:
        started.stop()


def get(server, host: str, path: str) -> tuple[int, str]:
    port = int(server.endpoint.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def rest_api(ag, text: str) -> str:
    api = ag.create_rest_api(name=f"dom-{time.time_ns()}", endpointConfiguration={"types": ["REGIONAL"]})
    res = ag.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="pets")
    ag.put_method(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", authorizationType="NONE")
    ag.put_integration(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", type="MOCK",
                       requestTemplates={"application/json": '{"statusCode": 200}'})
    ag.put_method_response(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", statusCode="200")
    ag.put_integration_response(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", statusCode="200",
                                responseTemplates={"application/json": text})
    ag.create_deployment(restApiId=api["id"], stageName="prod")
    ag.create_deployment(restApiId=api["id"], stageName="beta")
    return api["id"]


def test_rest_base_path_mappings_answer_on_the_custom_domain_host(server):
    ag = server.client("apigateway")
    v1, v2 = rest_api(ag, "from v1"), rest_api(ag, "from v2")
    ag.create_domain_name(domainName="api.example.com", regionalCertificateArn=CERT,
                          endpointConfiguration={"types": ["REGIONAL"]})
    ag.create_base_path_mapping(domainName="api.example.com", restApiId=v1, stage="prod")
    ag.create_base_path_mapping(domainName="api.example.com", restApiId=v2, basePath="v2")
    assert sorted((m["basePath"], m.get("stage")) for m in
                  ag.get_base_path_mappings(domainName="api.example.com")["items"]) == [("(none)", "prod"),
                                                                                         ("v2", None)]
    assert get(server, "api.example.com", "/pets") == (200, "from v1")
    # "v2" is the longer matching base path; it has no stage, so the caller names one after it
    assert get(server, "api.example.com", "/v2/beta/pets") == (200, "from v2")
    assert get(server, "API.example.com:443", "/v2/prod/pets") == (200, "from v2")
    ag.delete_base_path_mapping(domainName="api.example.com", basePath="(none)")
    assert get(server, "api.example.com", "/pets")[0] in (403, 404)


def test_http_api_mappings_answer_on_the_custom_domain_host(server):
    v2 = server.client("apigatewayv2")
    api = v2.create_api(Name=f"dom-{time.time_ns()}", ProtocolType="HTTP")
    integration = v2.create_integration(ApiId=api["ApiId"], IntegrationType="HTTP_PROXY", IntegrationMethod="GET",
                                        IntegrationUri=f"{server.endpoint}/_unkai/health",
                                        PayloadFormatVersion="1.0")
    v2.create_route(ApiId=api["ApiId"], RouteKey="GET /health", Target=f"integrations/{integration['IntegrationId']}")
    v2.create_stage(ApiId=api["ApiId"], StageName="$default", AutoDeploy=True)
    v2.create_domain_name(DomainName="orders.example.com", DomainNameConfigurations=[{"CertificateArn": CERT}])
    v2.create_api_mapping(DomainName="orders.example.com", ApiId=api["ApiId"], Stage="$default",
                          ApiMappingKey="orders/v1")
    status, body = get(server, "orders.example.com", "/orders/v1/health")
    assert status == 200 and "ready" in body
    assert get(server, "orders.example.com", "/elsewhere/health")[0] in (403, 404)


def test_sams_domain_on_an_api_is_served_by_its_host_and_base_path(server):
    # SAM's Domain expands to AWS::ApiGateway::DomainName and a BasePathMapping per base path
    ag = server.client("apigateway")
    domain = ag.get_domain_name(domainName="shop.example.com")
    assert domain["endpointConfiguration"]["types"] == ["REGIONAL"] and domain["regionalCertificateArn"] == CERT
    assert domain["regionalDomainName"].endswith(".execute-api.us-east-1.amazonaws.com")
    assert [(m["basePath"], m["stage"]) for m in ag.get_base_path_mappings(domainName="shop.example.com")[
        "items"]] == [("catalog", "live")]
    assert get(server, "shop.example.com", "/catalog/items") == (200, "items of the shop")
