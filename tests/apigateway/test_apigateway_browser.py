"""CORS as a browser enforces it: a page served from an S3 website calls an HTTP API
(CorsConfiguration) and a REST API (an OPTIONS method, as SAM's Cors makes) across
origins, at their ``*.execute-api.localhost`` URLs, in headless Chromium."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from browser import chromium  # noqa: E402


def test_cross_origin_calls_from_a_page(unkai):
    port = unkai.endpoint.rsplit(":", 1)[1]
    site = f"web-{uuid.uuid4().hex[:8]}"
    origin = f"http://{site}.s3-website-us-east-1.localhost:{port}"
    box = f"cors-{uuid.uuid4().hex[:6]}"
    v2 = unkai.client("apigatewayv2")
    http_api = v2.create_api(Name="cors-http", ProtocolType="HTTP", CorsConfiguration={
        "AllowOrigins": [origin], "AllowMethods": ["POST"], "AllowHeaders": ["content-type", "x-custom"]})
    integ = v2.create_integration(ApiId=http_api["ApiId"], IntegrationType="HTTP_PROXY", IntegrationMethod="POST",
                                  IntegrationUri=f"{unkai.endpoint}/_unkai/inbox/{box}")
    v2.create_route(ApiId=http_api["ApiId"], RouteKey="POST /questions",
                    Target=f"integrations/{integ['IntegrationId']}")
    v2.create_stage(ApiId=http_api["ApiId"], StageName="$default", AutoDeploy=True)
    closed = v2.create_api(Name="no-cors", ProtocolType="HTTP")
    v2.create_route(ApiId=closed["ApiId"], RouteKey="POST /questions",
                    Target=f"integrations/{v2.create_integration(ApiId=closed['ApiId'], IntegrationType='HTTP_PROXY', IntegrationMethod='POST', IntegrationUri=f'{unkai.endpoint}/_unkai/inbox/{box}')['IntegrationId']}")
    v2.create_stage(ApiId=closed["ApiId"], StageName="$default", AutoDeploy=True)

    ag = unkai.client("apigateway")
    rest = ag.create_rest_api(name="cors-rest")
    res = ag.create_resource(restApiId=rest["id"], parentId=rest["rootResourceId"], pathPart="hello")
    for verb, template, headers in (
            ("GET", '{"hello": "world"}', {"method.response.header.Access-Control-Allow-Origin": "'*'"}),
            ("OPTIONS", "", {"method.response.header.Access-Control-Allow-Origin": "'*'",
                             "method.response.header.Access-Control-Allow-Headers": "'x-custom'",
                             "method.response.header.Access-Control-Allow-Methods": "'GET,OPTIONS'"})):
        ag.put_method(restApiId=rest["id"], resourceId=res["id"], httpMethod=verb, authorizationType="NONE")
        ag.put_integration(restApiId=rest["id"], resourceId=res["id"], httpMethod=verb, type="MOCK",
                           requestTemplates={"application/json": '{"statusCode": 200}'})
        ag.put_method_response(restApiId=rest["id"], resourceId=res["id"], httpMethod=verb, statusCode="200",
                               responseParameters={k: False for k in headers})
        ag.put_integration_response(restApiId=rest["id"], resourceId=res["id"], httpMethod=verb, statusCode="200",
                                    responseParameters=headers, responseTemplates={"application/json": template})
    ag.create_deployment(restApiId=rest["id"], stageName="prod")

    http_url = f"http://{http_api['ApiId']}.execute-api.localhost:{port}/questions"
    closed_url = f"http://{closed['ApiId']}.execute-api.localhost:{port}/questions"
    rest_url = f"http://{rest['id']}.execute-api.localhost:{port}/prod/hello"
    script = f"""
    const show = (id, text) => {{ document.getElementById(id).textContent = text; }};
    const post = (url) => fetch(url, {{method: "POST", headers: {{"content-type": "application/json", "x-custom": "1"}},
                                      body: JSON.stringify({{project_id: "P1"}})}});
    post({json.dumps(http_url)}).then(r => show("http", "status " + r.status)).catch(e => show("http", "blocked"));
    post({json.dumps(closed_url)}).then(r => show("closed", "status " + r.status)).catch(e => show("closed", "blocked"));
    fetch({json.dumps(rest_url)}, {{headers: {{"x-custom": "1"}}}}).then(r => r.json())
      .then(d => show("rest", "hello " + d.hello)).catch(e => show("rest", "blocked"));
    """
    s3 = unkai.client("s3")
    s3.create_bucket(Bucket=site)
    s3.put_object(Bucket=site, Key="index.html", ContentType="text/html",
                  Body=b'<!doctype html><p id="http">waiting</p><p id="closed">waiting</p><p id="rest">waiting</p>'
                       b'<script src="app.js"></script>')
    s3.put_object(Bucket=site, Key="app.js", Body=script.encode(), ContentType="application/javascript")
    s3.put_bucket_website(Bucket=site, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})

    with chromium() as browser:
        page = browser.new_page()
        assert page.goto(origin + "/").status == 200
        page.wait_for_function("['http', 'closed', 'rest'].every(id => "
                               "document.getElementById(id).textContent !== 'waiting')", timeout=15000)
        assert page.text_content("#http") == "status 200"
        assert page.text_content("#closed") == "blocked"
        assert page.text_content("#rest") == "hello world"
    posted = unkai.inbox(box)
    assert len(posted) == 1 and posted[0]["json"] == {"project_id": "P1"}
    assert posted[0]["headers"]["origin"] == origin
