"""REST, HTTP and WebSocket APIs in front of real Python handlers, from a SAM template
run by ``unkai up`` (tests/apigateway/stack)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from unkai.testing import UnkaiServer

pytest.importorskip("unkai.services.awslambda", reason="the Lambda service is not in this build yet")

STACK = Path(__file__).parent / "stack" / "template.yaml"
http = httpx.Client(timeout=60)  # a cold start on a busy machine takes seconds


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    server = UnkaiServer(tmp_path_factory.mktemp("apistack") / "state", str(STACK)).start(timeout=120)
    try:
        cfn = server.client("cloudformation")
        stacks = cfn.describe_stacks()["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        yield server, outputs
    finally:
        server.stop()


def url(server, api_id: str, path: str) -> str:
    return f"{server.endpoint}/_unkai/execute-api/{api_id}{path}"


def test_outputs_and_banner_show_local_urls(stack):
    server, out = stack
    port = server.endpoint.rsplit(":", 1)[1]
    base = f"127.0.0.1:{port}/_unkai/execute-api"
    assert out["RestUrl"] == f"http://{base}/{out['RestApiId']}/prod"
    assert out["WsUrl"] == f"ws://{base}/{out['SocketsId']}/live"
    assert out["HttpUrl"] == f"http://{base}/{out['HttpApiId']}"
    assert f"http://{out['RestApiId']}.execute-api.localhost:{port}/prod" in server.output()  # for browsers


def test_rest_proxy_event(stack):
    server, out = stack
    r = http.post(url(server, out["RestApiId"], "/prod/items/42?tag=a&tag=b&x=1"), content="name=Ann",
                   headers={"content-type": "application/x-www-form-urlencoded", "user-agent": "tester/1",
                            "x-multi": "v"})
    assert r.status_code == 200, r.text
    assert r.headers["x-handler"] == "echo"
    assert r.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert r.headers["x-amzn-requestid"] and r.headers["x-amz-apigw-id"] and r.headers["x-amzn-trace-id"]
    event = r.json()
    assert event["resource"] == "/items/{id}"
    assert event["path"] == "/items/42"
    assert event["httpMethod"] == "POST"
    assert event["pathParameters"] == {"id": "42"}
    assert event["queryStringParameters"] == {"tag": "b", "x": "1"}
    assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b"], "x": ["1"]}
    assert event["headers"]["User-Agent"] == "tester/1"
    assert event["multiValueHeaders"]["X-Multi"] == ["v"]
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert event["stageVariables"] == {"color": "red"}
    assert event["body"] == "name=Ann" and event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["stage"] == "prod" and ctx["resourcePath"] == "/items/{id}" and ctx["path"] == "/prod/items/42"
    assert ctx["identity"]["sourceIp"] == "127.0.0.1" and ctx["identity"]["userAgent"] == "tester/1"
    assert ctx["domainName"] == f"{out['RestApiId']}.execute-api.us-east-1.amazonaws.com"
    assert ctx["apiId"] == out["RestApiId"] and ctx["accountId"] == "000000000000"
    assert ctx["requestId"] == r.headers["x-amzn-requestid"]
    assert abs(ctx["requestTimeEpoch"] / 1000 - time.time()) < 60
    assert len(ctx["requestTime"]) == len("04/Mar/2020:19:15:17 +0000")


def test_greedy_paths_and_binary(stack):
    server, out = stack
    r = http.put(url(server, out["RestApiId"], "/prod/files/a/b/c.png"), content=b"\x89PNG\x00\xff",
                  headers={"content-type": "image/png"})
    event = r.json()
    assert event["pathParameters"] == {"proxy": "a/b/c.png"} and event["resource"] == "/files/{proxy+}"
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\x89PNG\x00\xff"
    r = http.get(url(server, out["RestApiId"], "/prod/image"), headers={"accept": "image/png"})
    assert r.content == b"\x89PNG\r\n\x1a\nbytes"


def test_rest_errors(stack):
    server, out = stack
    r = http.get(url(server, out["RestApiId"], "/prod/malformed"))
    assert (r.status_code, r.text) == (502, '{"message": "Internal server error"}')
    r = http.get(url(server, out["RestApiId"], "/prod/fails"))
    assert (r.status_code, r.text) == (502, '{"message": "Internal server error"}')
    started = time.monotonic()
    r = http.get(url(server, out["RestApiId"], "/prod/slow"))
    assert (r.status_code, r.json()) == (504, {"message": "Endpoint request timed out"})
    assert time.monotonic() - started < 2.9  # the 1 s integration timeout, not the handler's 3 s
    r = http.get(url(server, out["RestApiId"], "/prod/unknown"))
    assert (r.status_code, r.json()) == (403, {"message": "Missing Authentication Token"})


def test_token_authorizer_with_cache(stack):
    server, out = stack
    secret = url(server, out["RestApiId"], "/prod/secret")
    r = http.get(secret)
    assert (r.status_code, r.json()) == (401, {"message": "Unauthorized"})
    r = http.get(secret, headers={"authorization": "garbage"})
    assert (r.status_code, r.json()) == (401, {"message": "Unauthorized"})
    r = http.get(secret, headers={"authorization": "deny"})
    assert r.status_code == 403
    assert r.json() == {"message": "User is not authorized to access this resource with an explicit deny"}
    first = http.get(secret, headers={"authorization": "allow-1"}).json()["requestContext"]["authorizer"]
    assert first["principalId"] == "user-allow-1" and first["tier"] == "gold"
    again = http.get(secret, headers={"authorization": "allow-1"}).json()["requestContext"]["authorizer"]
    assert again["calls"] == first["calls"]  # cached: the authorizer did not run again
    server.advance(301)
    later = http.get(secret, headers={"authorization": "allow-1"}).json()["requestContext"]["authorizer"]
    assert later["calls"] > first["calls"]


def test_request_authorizer(stack):
    server, out = stack
    guarded = url(server, out["RestApiId"], "/prod/guarded")
    assert http.get(guarded, headers={"x-team": "blue"}).status_code == 401  # an identity source is missing
    assert http.get(guarded + "?token=bad", headers={"x-team": "blue"}).status_code == 403
    r = http.get(guarded + "?token=good", headers={"x-team": "blue"})
    assert r.status_code == 200, r.text
    authorizer = r.json()["requestContext"]["authorizer"]
    assert authorizer["principalId"] == "req-user"
    assert (authorizer["path"], authorizer["type"]) == ("/guarded", "REQUEST")


def test_client_vanishing_mid_request_leaves_the_server_serving(stack):
    import socket

    server, out = stack
    host, port = "127.0.0.1", int(server.endpoint.rsplit(":", 1)[1])
    for _ in range(5):  # a promised body that never comes, then the client is gone
        with socket.create_connection((host, port)) as s:
            s.sendall(f"POST /_unkai/execute-api/{out['RestApiId']}/prod/items/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Content-Length: 100000\r\n\r\npartial".encode())
    with socket.create_connection((host, port)) as s:  # a slow handler's caller hangs up
        s.sendall(f"GET /_unkai/execute-api/{out['RestApiId']}/prod/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    r = http.post(url(server, out["RestApiId"], "/prod/items/2"), content=b"\xff\xfe not utf-8")
    assert r.status_code == 200
    assert r.json()["isBase64Encoded"] is True  # a body that is not UTF-8 reaches the handler intact
    assert base64.b64decode(r.json()["body"]) == b"\xff\xfe not utf-8"


def test_non_proxy_lambda_with_mapping_templates(stack):
    server, out = stack
    form = url(server, out["FormApiId"], "/v1/questions")
    r = http.post(form, content="project_id=P1&contact_detail=%E8%B3%AA%E5%95%8Fnewline2",
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    received = r.json()["received"]
    assert received["project_id"] == "P1" and received["contact_detail"] == "質問newline2"
    assert received["source_ip"] == "127.0.0.1" and received["request_time"].endswith("+0000")
    r = http.post(form, content="project_id=bad&contact_detail=x",
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert (r.status_code, r.json()) == (400, {"error": "Bad input: project_id"})
    r = http.post(form, json={"project_id": "P1"})  # no template for JSON: WHEN_NO_TEMPLATES refuses
    assert (r.status_code, r.json()) == (415, {"message": "Unsupported Media Type"})


def test_http_api_payload_2(stack):
    server, out = stack
    r = http.get(url(server, out["HttpApiId"], "/v2/ann?a=1&a=2"), headers={"cookie": "c1=x; c2=y"})
    assert r.status_code == 201
    assert r.headers.get_list("set-cookie") == ["session=abc; Path=/", "theme=dark"]
    event = json.loads(r.text)
    assert event["version"] == "2.0" and event["routeKey"] == "GET /v2/{name}"
    assert event["rawPath"] == "/v2/ann" and event["rawQueryString"] == "a=1&a=2"
    assert event["queryStringParameters"] == {"a": "1,2"}
    assert event["cookies"] == ["c1=x", "c2=y"]
    assert event["pathParameters"] == {"name": "ann"}
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert event["requestContext"]["stage"] == "$default"
    assert "body" not in event and event["isBase64Encoded"] is False


def test_http_api_response_inference_and_v1(stack):
    server, out = stack
    r = http.get(url(server, out["HttpApiId"], "/bare"))
    assert (r.status_code, r.headers["content-type"], r.json()) == (200, "application/json", {"hello": "world"})
    r = http.get(url(server, out["HttpApiId"], "/text"))
    assert (r.status_code, r.text) == (200, "plain words")
    event = http.get(url(server, out["HttpApiId"], "/v1?q=1")).json()
    assert event["version"] == "1.0" and event["resource"] == "/v1"
    assert event["requestContext"]["routeKey"] == "GET /v1"
    r = http.get(url(server, out["HttpApiId"], "/fails"))
    assert (r.status_code, r.json()) == (500, {"message": "Internal Server Error"})
    r = http.get(url(server, out["HttpApiId"], "/nothing-here"))
    assert (r.status_code, r.json()) == (404, {"message": "Not Found"})


def test_http_api_simple_authorizer(stack):
    server, out = stack
    private = url(server, out["HttpApiId"], "/private")
    assert http.get(private).status_code == 401
    r = http.get(private, headers={"x-token": "wrong"})
    assert (r.status_code, r.json()) == (403, {"message": "Forbidden"})
    r = http.get(private, headers={"x-token": "open-sesame"})
    assert r.status_code == 201
    assert json.loads(r.text)["requestContext"]["authorizer"] == {"lambda": {"who": "tester"}}


def test_websocket_routes_and_push_back(stack):
    server, out = stack
    base = server.endpoint.replace("http://", "ws://") + f"/_unkai/execute-api/{out['SocketsId']}/live"
    with connect(base) as ws:
        ws.send(json.dumps({"action": "sendmessage", "text": "hello"}))
        notice = json.loads(ws.recv(timeout=15))
        assert notice["notice"] == "hello"
        cid = notice["from"]
        ws.send(json.dumps({"action": "echo", "n": 1}))  # a two-way route answers
        assert json.loads(ws.recv(timeout=15)) == {"echo": {"action": "echo", "n": 1}, "route": "echo"}
        ws.send("no action here")  # $default is one-way: nothing comes back, the socket stays
        ws.send(json.dumps({"action": "echo", "n": 2}))
        assert json.loads(ws.recv(timeout=15))["echo"]["n"] == 2
    with pytest.raises(InvalidStatus) as exc:
        connect(base + "?room=closed").close()
    assert exc.value.response.status_code == 403
    server.drain()
    logs = server.client("logs")
    events = logs.filter_log_events(logGroupName="/apigateway/tests")["events"]
    lines = [json.loads(e["message"]) for e in events]
    mine = [line for line in lines if line["routeKey"] in ("$connect", "sendmessage", "echo", "$disconnect")]
    assert {line["routeKey"] for line in mine} >= {"$connect", "sendmessage", "echo", "$disconnect"}
    assert set(mine[0]) == {"requestId", "ip", "requestTime", "httpMethod", "routeKey", "status", "protocol",
                            "responseLength"}
    assert cid


def test_websocket_connect_authorizer(stack):
    server, out = stack
    base = server.endpoint.replace("http://", "ws://") + f"/_unkai/execute-api/{out['GuardedSocketsId']}/live"
    with pytest.raises(InvalidStatus) as exc:
        connect(base).close()
    assert exc.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as exc:
        connect(base + "?token=nope").close()
    assert exc.value.response.status_code == 403
    with connect(base + "?token=letmein") as ws:
        ws.send("{}")  # no $default on this API
        assert json.loads(ws.recv(timeout=15))["message"] == "Forbidden"


def test_rest_access_log(stack):
    server, out = stack
    http.get(url(server, out["RestApiId"], "/prod/malformed"))
    logs = server.client("logs")
    events = logs.filter_log_events(logGroupName="/apigateway/tests")["events"]
    lines = [json.loads(e["message"]) for e in events]
    rest = [line for line in lines if line["routeKey"] == "/malformed"]
    assert rest and rest[-1]["status"] == "502" and rest[-1]["httpMethod"] == "GET"
    assert rest[-1]["ip"] == "127.0.0.1" and rest[-1]["protocol"] == "HTTP/1.1"



def test_cors_page_served_from_s3(stack):
    """A page on the stack's S3 website posts JSON to the HTTP API and the REST API
    (SAM's CorsConfiguration and Cors) from headless Chromium: preflights and all."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from browser import chromium

    server, out = stack
    script = f"""
    const show = (id, text) => {{ document.getElementById(id).textContent = text; }};
    const ask = (url, id) => fetch(url, {{method: "POST", body: JSON.stringify({{q: id}}),
                                         headers: {{"content-type": "application/json", "x-custom": "1"}}}})
      .then(r => r.json()).then(d => show(id, "got " + d.got.q)).catch(e => show(id, "blocked " + e));
    ask({json.dumps(out["CorsHttpUrl"] + "/questions")}, "http");
    ask({json.dumps(out["CorsRestUrl"] + "/questions")}, "rest");
    """
    s3 = server.client("s3")
    s3.put_object(Bucket=out["SiteBucket"], Key="index.html", ContentType="text/html",
                  Body=b'<!doctype html><p id="http">waiting</p><p id="rest">waiting</p><script src="app.js"></script>')
    s3.put_object(Bucket=out["SiteBucket"], Key="app.js", Body=script.encode(), ContentType="application/javascript")
    with chromium() as browser:
        page = browser.new_page()
        assert page.goto(out["SiteUrl"] + "/").status == 200
        page.wait_for_function("['http', 'rest'].every(id => document.getElementById(id).textContent !== 'waiting')",
                               timeout=30000)
        assert page.text_content("#http") == "got http"
        assert page.text_content("#rest") == "got rest"
