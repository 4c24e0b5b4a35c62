"""HTTP APIs through boto3's apigatewayv2 client and real HTTP requests."""

from __future__ import annotations

import json
import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa


@pytest.fixture(scope="module")
def v2(unkai):
    return unkai.client("apigatewayv2")


def host(api_id: str) -> dict[str, str]:
    return {"host": f"{api_id}.execute-api.localhost"}


def proxy_api(v2, unkai, inbox: str, route: str = "ANY /{proxy+}", **api_kwargs):
    api = v2.create_api(Name=f"h-{uuid.uuid4().hex[:6]}", ProtocolType="HTTP", **api_kwargs)
    integ = v2.create_integration(ApiId=api["ApiId"], IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                                  IntegrationUri=f"{unkai.endpoint}/_unkai/inbox/{inbox}/{{proxy}}")
    v2.create_route(ApiId=api["ApiId"], RouteKey=route, Target=f"integrations/{integ['IntegrationId']}")
    v2.create_stage(ApiId=api["ApiId"], StageName="$default", AutoDeploy=True)
    return api, integ


def test_control_plane_reads(v2, unkai):
    api, integ = proxy_api(v2, unkai, "reads")
    found = [a for a in v2.get_apis()["Items"] if a["ApiId"] == api["ApiId"]]
    assert found[0]["ApiEndpoint"] == f"{unkai.endpoint}/_unkai/execute-api/{api['ApiId']}"
    assert [r["RouteKey"] for r in v2.get_routes(ApiId=api["ApiId"])["Items"]] == ["ANY /{proxy+}"]
    assert [s["StageName"] for s in v2.get_stages(ApiId=api["ApiId"])["Items"]] == ["$default"]
    assert v2.get_integrations(ApiId=api["ApiId"])["Items"][0]["IntegrationId"] == integ["IntegrationId"]
    with pytest.raises(v2.exceptions.NotFoundException):
        v2.get_api(ApiId="nosuchapi0")
    with pytest.raises(v2.exceptions.BadRequestException):
        v2.create_route(ApiId=api["ApiId"], RouteKey="FETCH /x")


def test_http_proxy_and_not_found(v2, unkai):
    box = f"h-{uuid.uuid4().hex[:6]}"
    api, _ = proxy_api(v2, unkai, box, route="POST /things/{proxy+}")
    r = httpx.post(f"{unkai.endpoint}/things/a/b?x=1&x=2", content=b"payload", headers=host(api["ApiId"]))
    assert r.status_code == 200, r.text
    assert r.headers["apigw-requestid"]
    entry = unkai.inbox(box)[0]
    assert (entry["path"], entry["query"], entry["body"]) == (f"/_unkai/inbox/{box}/a/b", "x=1&x=2", "payload")
    r = httpx.get(f"{unkai.endpoint}/things/a", headers=host(api["ApiId"]))
    assert (r.status_code, r.json()) == (404, {"message": "Not Found"})
    r = httpx.get(f"{unkai.endpoint}/_unkai/execute-api/{api['ApiId']}/other")
    assert (r.status_code, r.json()) == (404, {"message": "Not Found"})


def test_named_stage_and_default_route(v2, unkai):
    box = f"h-{uuid.uuid4().hex[:6]}"
    api = v2.create_api(Name="staged", ProtocolType="HTTP")
    integ = v2.create_integration(ApiId=api["ApiId"], IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                                  IntegrationUri=f"{unkai.endpoint}/_unkai/inbox/{box}")
    v2.create_route(ApiId=api["ApiId"], RouteKey="$default", Target=f"integrations/{integ['IntegrationId']}")
    v2.create_stage(ApiId=api["ApiId"], StageName="dev", AutoDeploy=True)
    assert httpx.patch(f"{unkai.endpoint}/dev/anything", headers=host(api["ApiId"])).status_code == 200
    assert unkai.inbox(box)[0]["method"] == "PATCH"
    assert httpx.get(f"{unkai.endpoint}/prod/anything", headers=host(api["ApiId"])).status_code == 404


def test_cors_configuration(v2, unkai):
    box = f"h-{uuid.uuid4().hex[:6]}"
    api, _ = proxy_api(v2, unkai, box, CorsConfiguration={
        "AllowOrigins": ["https://app.example"], "AllowMethods": ["GET", "POST"], "AllowHeaders": ["content-type"],
        "MaxAge": 300, "ExposeHeaders": ["x-total"]})
    r = httpx.options(f"{unkai.endpoint}/x", headers={**host(api["ApiId"]), "origin": "https://app.example",
                                                      "access-control-request-method": "POST"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert r.headers["access-control-allow-methods"] == "GET,POST"
    assert r.headers["access-control-max-age"] == "300"
    assert unkai.inbox(box) == []  # the preflight never reached the backend
    r = httpx.get(f"{unkai.endpoint}/x", headers={**host(api["ApiId"]), "origin": "https://app.example"})
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert r.headers["access-control-expose-headers"] == "x-total"
    r = httpx.get(f"{unkai.endpoint}/x", headers={**host(api["ApiId"]), "origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_route_throttling(v2, unkai):
    api, _ = proxy_api(v2, unkai, f"h-{uuid.uuid4().hex[:6]}")
    v2.update_stage(ApiId=api["ApiId"], StageName="$default",
                    DefaultRouteSettings={"ThrottlingBurstLimit": 1, "ThrottlingRateLimit": 0.001})
    codes = [httpx.get(f"{unkai.endpoint}/x", headers=host(api["ApiId"])).status_code for _ in range(2)]
    assert codes == [200, 429]
    unkai.advance(2000)
    assert httpx.get(f"{unkai.endpoint}/x", headers=host(api["ApiId"])).status_code == 200


@pytest.fixture(scope="module")
def issuer(unkai):
    """An OpenID issuer whose JWKS is served by a MOCK REST API on unkai itself."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="k1", alg="RS256", use="sig")
    ag = unkai.client("apigateway")
    api = ag.create_rest_api(name="issuer")
    well = ag.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart=".well-known")
    res = ag.create_resource(restApiId=api["id"], parentId=well["id"], pathPart="jwks.json")
    ag.put_method(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", authorizationType="NONE")
    ag.put_integration(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", type="MOCK",
                       requestTemplates={"application/json": '{"statusCode": 200}'})
    ag.put_integration_response(restApiId=api["id"], resourceId=res["id"], httpMethod="GET", statusCode="200",
                                responseTemplates={"application/json": json.dumps({"keys": [jwk]})})
    ag.create_deployment(restApiId=api["id"], stageName="prod")
    url = f"https://{api['id']}.execute-api.us-east-1.amazonaws.com/prod"

    def token(claims: dict, **extra) -> str:
        body = {"iss": url, "aud": "my-app", "sub": "user-1", "exp": now() + 600, **claims}
        return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"}, **extra)

    def now() -> float:  # unkai's clock, which tests move forward
        return unkai.get("/_unkai/clock")["epoch"]

    return url, token, now


def test_jwt_authorizer(v2, unkai, issuer):
    url, token, now = issuer
    box = f"h-{uuid.uuid4().hex[:6]}"
    api = v2.create_api(Name="jwt", ProtocolType="HTTP")
    integ = v2.create_integration(ApiId=api["ApiId"], IntegrationType="HTTP_PROXY", IntegrationMethod="ANY",
                                  IntegrationUri=f"{unkai.endpoint}/_unkai/inbox/{box}")
    auth = v2.create_authorizer(ApiId=api["ApiId"], Name="jwt", AuthorizerType="JWT",
                                IdentitySource=["$request.header.Authorization"],
                                JwtConfiguration={"Issuer": url, "Audience": ["my-app"]})
    v2.create_route(ApiId=api["ApiId"], RouteKey="GET /me", Target=f"integrations/{integ['IntegrationId']}",
                    AuthorizationType="JWT", AuthorizerId=auth["AuthorizerId"])
    v2.create_route(ApiId=api["ApiId"], RouteKey="GET /admin", Target=f"integrations/{integ['IntegrationId']}",
                    AuthorizationType="JWT", AuthorizerId=auth["AuthorizerId"], AuthorizationScopes=["admin"])
    v2.create_stage(ApiId=api["ApiId"], StageName="$default", AutoDeploy=True)

    def get(path: str, tok: str | None) -> httpx.Response:
        headers = host(api["ApiId"])
        if tok:
            headers["authorization"] = f"Bearer {tok}"
        return httpx.get(f"{unkai.endpoint}{path}", headers=headers)

    r = get("/me", None)
    assert (r.status_code, r.json()) == (401, {"message": "Unauthorized"})
    assert get("/me", token({})).status_code == 200
    r = get("/me", token({"exp": now() - 5}))
    assert r.status_code == 401 and "expired" in r.headers["www-authenticate"]
    assert get("/me", token({"aud": "someone-else"})).status_code == 401
    assert get("/me", token({"iss": "https://elsewhere.example"})).status_code == 401
    assert get("/me", "not-a-jwt").status_code == 401
    r = get("/admin", token({"scope": "read"}))
    assert (r.status_code, r.json()) == (403, {"message": "Forbidden"})
    assert get("/admin", token({"scope": "read admin"})).status_code == 200
    # expiry follows unkai's clock
    soon = token({"exp": now() + 60})
    assert get("/me", soon).status_code == 200
    unkai.advance(120)
    assert get("/me", soon).status_code == 401


def test_import_openapi_http_api(v2, unkai):
    box = f"h-{uuid.uuid4().hex[:6]}"
    spec = {"openapi": "3.0.1", "info": {"title": "imported-http", "version": "1"},
            "x-amazon-apigateway-cors": {"allowOrigins": ["*"], "allowMethods": ["*"]},
            "paths": {"/hooks/{name}": {"post": {"x-amazon-apigateway-integration": {
                "type": "http_proxy", "httpMethod": "POST", "payloadFormatVersion": "1.0",
                "uri": f"{unkai.endpoint}/_unkai/inbox/{box}"}}}}}
    api = v2.import_api(Body=json.dumps(spec))
    assert api["Name"] == "imported-http"
    assert [r["RouteKey"] for r in v2.get_routes(ApiId=api["ApiId"])["Items"]] == ["POST /hooks/{name}"]
    v2.create_stage(ApiId=api["ApiId"], StageName="$default", AutoDeploy=True)
    r = httpx.post(f"{unkai.endpoint}/hooks/a", content=b"x", headers={**host(api["ApiId"]), "origin": "https://a.b"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    assert unkai.inbox(box)[0]["body"] == "x"
