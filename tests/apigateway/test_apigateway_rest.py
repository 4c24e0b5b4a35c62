"""REST APIs through boto3's apigateway client and real HTTP requests to the stage."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def ag(unkai):
    return unkai.client("apigateway")


def stage_url(unkai, api_id: str, stage: str = "prod") -> str:
    return f"{unkai.endpoint}/_unkai/execute-api/{api_id}/{stage}"


def mock_api(ag, path: str = "items", method: str = "POST", request_template: str = '{"statusCode": 200}',
             response_template: str = '{"ok": true}', status: str = "200", **method_kwargs):
    api = ag.create_rest_api(name=f"api-{uuid.uuid4().hex[:6]}")
    res = ag.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart=path)
    ag.put_method(restApiId=api["id"], resourceId=res["id"], httpMethod=method,
                  authorizationType=method_kwargs.pop("authorizationType", "NONE"), **method_kwargs)
    ag.put_integration(restApiId=api["id"], resourceId=res["id"], httpMethod=method, type="MOCK",
                       requestTemplates={"application/json": request_template})
    ag.put_method_response(restApiId=api["id"], resourceId=res["id"], httpMethod=method, statusCode=status)
    ag.put_integration_response(restApiId=api["id"], resourceId=res["id"], httpMethod=method, statusCode=status,
                                responseTemplates={"application/json": response_template})
    return api, res


def test_control_plane_reads(ag):
    api, res = mock_api(ag)
    assert ag.get_rest_api(restApiId=api["id"])["name"] == api["name"]
    assert api["id"] in [a["id"] for a in ag.get_rest_apis(limit=500)["items"]]
    paths = {r["path"]: r for r in ag.get_resources(restApiId=api["id"])["items"]}
    assert set(paths) == {"/", "/items"}
    assert paths["/items"]["resourceMethods"] == {"POST": {}}
    full = ag.get_resources(restApiId=api["id"], embed=["methods"])["items"]
    method = next(r for r in full if r["path"] == "/items")["resourceMethods"]["POST"]
    assert method["methodIntegration"]["type"] == "MOCK"
    dep = ag.create_deployment(restApiId=api["id"], stageName="prod", description="first")
    assert [d["id"] for d in ag.get_deployments(restApiId=api["id"])["items"]] == [dep["id"]]
    stages = ag.get_stages(restApiId=api["id"])["item"]
    assert [(s["stageName"], s["deploymentId"]) for s in stages] == [("prod", dep["id"])]
    updated = ag.update_stage(restApiId=api["id"], stageName="prod", patchOperations=[
        {"op": "replace", "path": "/variables/color", "value": "blue"},
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "7"}])
    assert updated["variables"] == {"color": "blue"}
    assert updated["methodSettings"]["*/*"]["throttlingRateLimit"] == 7.0


def test_control_plane_errors(ag):
    with pytest.raises(ClientError) as exc:
        ag.get_rest_api(restApiId="nosuchapi0")
    assert exc.value.response["Error"]["Code"] == "NotFoundException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    api = ag.create_rest_api(name="errs")
    with pytest.raises(ClientError) as exc:
        ag.create_deployment(restApiId=api["id"], stageName="prod")
    assert exc.value.response["Error"]["Code"] == "BadRequestException"
    assert "doesn't contain any methods" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        ag.create_resource(restApiId=api["id"], parentId="nosuchres0", pathPart="x")
    assert exc.value.response["Error"]["Code"] == "NotFoundException"
    ag.delete_rest_api(restApiId=api["id"])
    with pytest.raises(ClientError):
        ag.get_resources(restApiId=api["id"])


def test_mock_integration_with_mapping_templates(ag, unkai):
    # a MOCK integration's response has no body: templates see the method request's parameters
    template = """{"ip": "$context.identity.sourceIp", "q": "$input.params('q')", "stage": "$context.stage",
 "resource": "$context.resourcePath", "name": "$util.escapeJavaScript($input.params('name'))", "body": "$input.body",
 "color": "$stageVariables.color", "agent": "$input.params('User-Agent')"}"""
    api, _ = mock_api(ag, response_template=template)
    ag.create_deployment(restApiId=api["id"], stageName="prod", variables={"color": "red"})
    r = httpx.post(stage_url(unkai, api["id"]) + "/items", params={"q": "hello", "name": 'Ann "A"'},
                   json={"ignored": True}, headers={"user-agent": "tester/1"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-amzn-requestid"] and r.headers["x-amz-apigw-id"]
    assert r.json() == {"ip": "127.0.0.1", "q": "hello", "stage": "prod", "resource": "/items",
                        "name": 'Ann "A"', "body": "", "color": "red", "agent": "tester/1"}


def test_addressing_forms(ag, unkai):
    api, _ = mock_api(ag)
    ag.create_deployment(restApiId=api["id"], stageName="prod")
    for host in (f"{api['id']}.execute-api.localhost:4566", f"{api['id']}.execute-api.us-east-1.amazonaws.com"):
        r = httpx.post(unkai.endpoint + "/prod/items", headers={"host": host}, json={})
        assert (r.status_code, r.json()) == (200, {"ok": True})
    assert httpx.post(stage_url(unkai, api["id"]) + "/items", json={}).json() == {"ok": True}


def test_missing_routes_and_stages(ag, unkai):
    api, _ = mock_api(ag)
    ag.create_deployment(restApiId=api["id"], stageName="prod")
    for url in (stage_url(unkai, api["id"]) + "/nope", stage_url(unkai, api["id"], "nostage") + "/items",
                stage_url(unkai, "zzzzzzzzzz") + "/items"):
        r = httpx.post(url, json={})
        assert r.status_code == 403
        assert r.json() == {"message": "Missing Authentication Token"}
    # a method the resource does not have
    r = httpx.get(stage_url(unkai, api["id"]) + "/items")
    assert r.status_code == 403 and r.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"


def test_changes_need_a_deployment(ag, unkai):
    api, res = mock_api(ag)
    ag.create_deployment(restApiId=api["id"], stageName="prod")
    ag.put_integration_response(restApiId=api["id"], resourceId=res["id"], httpMethod="POST", statusCode="200",
                                responseTemplates={"application/json": '{"version": 2}'})
    assert httpx.post(stage_url(unkai, api["id"]) + "/items", json={}).json() == {"ok": True}
    ag.create_deployment(restApiId=api["id"], stageName="prod")
    assert httpx.post(stage_url(unkai, api["id"]) + "/items", json={}).json() == {"version": 2}


def test_body_over_10_mb_is_refused(ag, unkai):
    api, _ = mock_api(ag)
    ag.create_deployment(restApiId=api["id"], stageName="prod")
    r = httpx.post(stage_url(unkai, api["id"]) + "/items", content=b"x" * (10 * 1024 * 1024 + 1))
    assert r.status_code == 413
    assert r.json() == {"message": "Request Too Long"}
    # and the server keeps serving
    assert httpx.post(stage_url(unkai, api["id"]) + "/items", json={}).status_code == 200


def test_mock_status_selection_and_response_parameters(ag, unkai):
    api = ag.create_rest_api(name="sel")
    res = ag.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="{id}")
    ag.put_method(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", authorizationType="NONE")
    ag.put_integration(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", type="MOCK",
                       requestTemplates={"application/json":
                                         '{"statusCode": #if($input.params("id") == "missing")404#{else}200#end}'})
    for code, pattern in (("200", None), ("404", "404")):
        ag.put_method_response(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", statusCode=code,
                               responseParameters={"method.response.header.X-Thing": False})
        kwargs = {"selectionPattern": pattern} if pattern else {}
        ag.put_integration_response(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", statusCode=code,
                                    responseParameters={"method.response.header.X-Thing": "'static'"},
                                    responseTemplates={"application/json": f'{{"code": {code}, '
                                                                           '"id": "$input.params(\'id\')"}'},
                                    **kwargs)
    ag.create_deployment(restApiId=api["id"], stageName="prod")
    r = httpx.get(stage_url(unkai, api["id"]) + "/abc")
    assert (r.status_code, r.json(), r.headers["x-thing"]) == (200, {"code": 200, "id": "abc"}, "static")
    r = httpx.get(stage_url(unkai, api["id"]) + "/missing")
    assert (r.status_code, r.json()) == (404, {"code": 404, "id": "missing"})


def test_http_integrations_reach_the_inbox(ag, unkai):
    name = f"rest-{uuid.uuid4().hex[:6]}"
    api = ag.create_rest_api(name="http")
    form = ag.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="form")
    ag.put_method(restApiId=api["id"], resourceId=form["id"], httpMethod="POST", authorizationType="NONE")
    template = """#set($pairs = {})
#foreach($kv in $input.body.split('&'))#set($p = $kv.split('='))#set($ok = $pairs.put($util.urlDecode($p[0]), $util.urlDecode($p[1])))#end
{"project_id": "$pairs.project_id", "detail": "$util.escapeJavaScript($pairs.contact_detail)", "ip": "$context.identity.sourceIp"}"""
    ag.put_integration(restApiId=api["id"], resourceId=form["id"], httpMethod="POST", type="HTTP",
                       integrationHttpMethod="POST", uri=f"{unkai.endpoint}/_unkai/inbox/{name}",
                       requestTemplates={"application/x-www-form-urlencoded": template})
    ag.put_method_response(restApiId=api["id"], resourceId=form["id"], httpMethod="POST", statusCode="200")
    ag.put_integration_response(restApiId=api["id"], resourceId=form["id"], httpMethod="POST", statusCode="200",
                                responseTemplates={"application/json": '{"stored": $input.json(\'$.id\')}'})
    proxy = ag.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="{proxy+}")
    ag.put_method(restApiId=api["id"], resourceId=proxy["id"], httpMethod="ANY", authorizationType="NONE",
                  requestParameters={"method.request.path.proxy": True})
    ag.put_integration(restApiId=api["id"], resourceId=proxy["id"], httpMethod="ANY", type="HTTP_PROXY",
                       integrationHttpMethod="ANY", uri=f"{unkai.endpoint}/_unkai/inbox/{name}/{{proxy}}",
                       requestParameters={"integration.request.path.proxy": "method.request.path.proxy"})
    ag.create_deployment(restApiId=api["id"], stageName="prod")
    r = httpx.post(stage_url(unkai, api["id"]) + "/form", content="project_id=P1&contact_detail=line1newline%E5%B1%B1",
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["stored"], int)  # the inbox's id for the entry, through the response template
    r = httpx.put(stage_url(unkai, api["id"]) + "/a/b?x=1", content=b"raw")
    assert r.status_code == 200
    entries = unkai.inbox(name)
    assert entries[0]["json"] == {"project_id": "P1", "detail": "line1newline山", "ip": "127.0.0.1"}
    assert (entries[1]["method"], entries[1]["path"], entries[1]["query"], entries[1]["body"]) == \
        ("PUT", f"/_unkai/inbox/{name}/a/b", "x=1", "raw")
    assert entries[1]["headers"]["x-forwarded-for"] == "127.0.0.1"


def test_api_keys_usage_plans_and_quota(ag, unkai):
    api, _ = mock_api(ag, apiKeyRequired=True)
    ag.create_deployment(restApiId=api["id"], stageName="prod")
    key = ag.create_api_key(name="k", enabled=True)
    plan = ag.create_usage_plan(name="p", apiStages=[{"apiId": api["id"], "stage": "prod"}],
                                quota={"limit": 2, "period": "DAY"})
    ag.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    url = stage_url(unkai, api["id"]) + "/items"
    r = httpx.post(url, json={})
    assert (r.status_code, r.json()) == (403, {"message": "Forbidden"})
    assert httpx.post(url, json={}, headers={"x-api-key": "wrong" * 5}).status_code == 403
    ok = {"x-api-key": key["value"]}
    assert [httpx.post(url, json={}, headers=ok).status_code for _ in range(2)] == [200, 200]
    r = httpx.post(url, json={}, headers=ok)
    assert (r.status_code, r.json()) == (429, {"message": "Limit Exceeded"})
    usage = ag.get_usage(usagePlanId=plan["id"], startDate="2020-01-01", endDate="2100-01-01")
    assert usage["items"][key["id"]][0][0] == 2


def test_stage_throttling(ag, unkai):
    api, _ = mock_api(ag)
    ag.create_deployment(restApiId=api["id"], stageName="prod")
    ag.update_stage(restApiId=api["id"], stageName="prod", patchOperations=[
        {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "2"},
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "0.001"}])
    url = stage_url(unkai, api["id"]) + "/items"
    codes = [httpx.post(url, json={}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert httpx.post(url, json={}).json() == {"message": "Too Many Requests"}
    unkai.advance(1000)  # the bucket refills on unkai's clock
    assert httpx.post(url, json={}).status_code == 200


def test_request_validation(ag, unkai):
    api = ag.create_rest_api(name="valid")
    ag.create_model(restApiId=api["id"], name="Order", contentType="application/json", schema=json.dumps({
        "type": "object", "required": ["qty"], "properties": {"qty": {"type": "integer", "minimum": 1}}}))
    validator = ag.create_request_validator(restApiId=api["id"], name="all", validateRequestBody=True,
                                            validateRequestParameters=True)
    res = ag.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="orders")
    ag.put_method(restApiId=api["id"], resourceId=res["id"], httpMethod="POST", authorizationType="NONE",
                  requestValidatorId=validator["id"], requestModels={"application/json": "Order"},
                  requestParameters={"method.request.querystring.shop": True})
    ag.put_integration(restApiId=api["id"], resourceId=res["id"], httpMethod="POST", type="MOCK",
                       requestTemplates={"application/json": '{"statusCode": 200}'})
    ag.put_integration_response(restApiId=api["id"], resourceId=res["id"], httpMethod="POST", statusCode="200",
                                responseTemplates={"application/json": '{"ok": true}'})
    ag.create_deployment(restApiId=api["id"], stageName="prod")
    url = stage_url(unkai, api["id"]) + "/orders"
    r = httpx.post(url, json={"qty": 1})
    assert (r.status_code, r.json()) == (400, {"message": "Missing required request parameters: [shop]"})
    r = httpx.post(url + "?shop=1", json={"qty": 0})
    assert (r.status_code, r.json()) == (400, {"message": "Invalid request body"})
    assert httpx.post(url + "?shop=1", content=b"{not json", headers={"content-type": "application/json"}
                      ).status_code == 400
    assert httpx.post(url + "?shop=1", json={"qty": 3}).json() == {"ok": True}


def test_gateway_responses_are_customisable(ag, unkai):
    api, _ = mock_api(ag)
    ag.put_gateway_response(restApiId=api["id"], responseType="MISSING_AUTHENTICATION_TOKEN", statusCode="404",
                            responseParameters={"gatewayresponse.header.Access-Control-Allow-Origin": "'*'"},
                            responseTemplates={"application/json": '{"error": $context.error.messageString, '
                                                                   '"type": "$context.error.responseType"}'})
    ag.create_deployment(restApiId=api["id"], stageName="prod")
    r = httpx.get(stage_url(unkai, api["id"]) + "/nothing")
    assert r.status_code == 404
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.json() == {"error": "Missing Authentication Token", "type": "MISSING_AUTHENTICATION_TOKEN"}
    assert ag.get_gateway_response(restApiId=api["id"], responseType="THROTTLED")["statusCode"] == "429"


def test_import_openapi_with_cors_preflight(ag, unkai):
    spec = {
        "openapi": "3.0.1", "info": {"title": "imported", "version": "1"},
        "paths": {"/things/{id}": {
            "get": {"parameters": [{"name": "id", "in": "path", "required": True}],
                    "responses": {"200": {"description": "ok"}},
                    "x-amazon-apigateway-integration": {
                        "type": "mock", "requestTemplates": {"application/json": '{"statusCode": 200}'},
                        "responses": {"default": {"statusCode": "200", "responseTemplates": {
                            "application/json": '{"id": "$input.params(\'id\')"}'}}}}},
            "options": {"responses": {"200": {"description": "cors", "headers": {
                "Access-Control-Allow-Origin": {"schema": {"type": "string"}}}}},
                "x-amazon-apigateway-integration": {
                    "type": "mock", "requestTemplates": {"application/json": '{"statusCode": 200}'},
                    "responses": {"default": {"statusCode": "200", "responseParameters": {
                        "method.response.header.Access-Control-Allow-Origin": "'https://site.example'"},
                        "responseTemplates": {"application/json": ""}}}}}}},
    }
    api = ag.import_rest_api(body=json.dumps(spec).encode())
    assert api["name"] == "imported"
    ag.create_deployment(restApiId=api["id"], stageName="v1")
    url = stage_url(unkai, api["id"], "v1") + "/things/42"
    assert httpx.get(url).json() == {"id": "42"}
    r = httpx.options(url, headers={"origin": "https://site.example", "access-control-request-method": "GET"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://site.example"


def test_apis_and_quotas_survive_kill_9(tmp_path):
    from unkai.testing import UnkaiServer

    server = UnkaiServer(tmp_path / "state").start()
    try:
        ag = server.client("apigateway")
        api, _ = mock_api(ag, apiKeyRequired=True)
        ag.create_deployment(restApiId=api["id"], stageName="prod")
        key = ag.create_api_key(name="k", enabled=True)
        plan = ag.create_usage_plan(name="p", apiStages=[{"apiId": api["id"], "stage": "prod"}],
                                    quota={"limit": 2, "period": "MONTH"})
        ag.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
        headers = {"x-api-key": key["value"]}
        assert httpx.post(stage_url(server, api["id"]) + "/items", json={}, headers=headers).status_code == 200
        server.kill()  # SIGKILL: nothing flushed on the way out
        server.start()  # a new port: a new client
        ag = server.client("apigateway")
        assert ag.get_rest_api(restApiId=api["id"])["name"] == api["name"]
        assert httpx.post(stage_url(server, api["id"]) + "/items", json={}, headers=headers).status_code == 200
        r = httpx.post(stage_url(server, api["id"]) + "/items", json={}, headers=headers)
        assert (r.status_code, r.json()) == (429, {"message": "Limit Exceeded"})  # the count survived
    finally:
        server.stop()


def test_aws_integrations_with_sqs_sns_and_dynamodb(ag, unkai):
    sqs = unkai.client("sqs")
    queue = sqs.create_queue(QueueName=f"from-api-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    ddb = unkai.client("dynamodb")
    table = f"from-api-{uuid.uuid4().hex[:6]}"
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    api = ag.create_rest_api(name="services")
    account, name = queue.rsplit("/", 2)[-2:]
    routes = {
        "enqueue": {"uri": f"arn:aws:apigateway:us-east-1:sqs:path/{account}/{name}",
                    "requestParameters": {"integration.request.header.Content-Type":
                                          "'application/x-www-form-urlencoded'"},
                    "requestTemplates": {"application/json": "Action=SendMessage&MessageBody=$util.urlEncode($input.body)"}},
        "save": {"uri": "arn:aws:apigateway:us-east-1:dynamodb:action/PutItem",
                 "requestTemplates": {"application/json": json.dumps({
                     "TableName": table, "Item": {"id": {"S": "$input.path('$.id')"},
                                                  "ip": {"S": "$context.identity.sourceIp"}}})}},
        "broken": {"uri": "arn:aws:apigateway:us-east-1:dynamodb:action/PutItem",
                   "requestTemplates": {"application/json": json.dumps({
                       "TableName": "no-such-table", "Item": {"id": {"S": "x"}}})}},
    }
    for part, conf in routes.items():
        res = ag.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart=part)
        ag.put_method(restApiId=api["id"], resourceId=res["id"], httpMethod="POST", authorizationType="NONE")
        ag.put_integration(restApiId=api["id"], resourceId=res["id"], httpMethod="POST", type="AWS",
                           integrationHttpMethod="POST", credentials="arn:aws:iam::000000000000:role/apigw", **conf)
        ag.put_integration_response(restApiId=api["id"], resourceId=res["id"], httpMethod="POST", statusCode="200",
                                    responseTemplates={"application/json": '{"done": true}'})
        ag.put_integration_response(restApiId=api["id"], resourceId=res["id"], httpMethod="POST", statusCode="400",
                                    selectionPattern="4\\d\\d",
                                    responseTemplates={"application/json": '{"failed": $input.json(\'$\')}'})
    ag.create_deployment(restApiId=api["id"], stageName="prod")
    base = stage_url(unkai, api["id"])
    r = httpx.post(base + "/enqueue", json={"order": 1})
    assert (r.status_code, r.json()) == (200, {"done": True})
    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    assert json.loads(messages[0]["Body"]) == {"order": 1}
    r = httpx.post(base + "/save", json={"id": "a1"})
    assert (r.status_code, r.json()) == (200, {"done": True})
    assert ddb.get_item(TableName=table, Key={"id": {"S": "a1"}})["Item"]["ip"] == {"S": "127.0.0.1"}
    r = httpx.post(base + "/broken", json={})  # DynamoDB's 400 picks the error response
    assert r.status_code == 400
    assert r.json()["failed"]["__type"].endswith("ResourceNotFoundException")
