"""WebSocket APIs with the websockets library, and @connections through boto3."""

from __future__ import annotations

import json
import uuid

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect


@pytest.fixture(scope="module")
def ws_api(unkai):
    v2 = unkai.client("apigatewayv2")
    api = v2.create_api(Name=f"ws-{uuid.uuid4().hex[:6]}", ProtocolType="WEBSOCKET",
                        RouteSelectionExpression="$request.body.action")
    mock = v2.create_integration(ApiId=api["ApiId"], IntegrationType="MOCK",
                                 RequestTemplates={"$default": '{"statusCode": 200}'})
    v2.create_route(ApiId=api["ApiId"], RouteKey="$connect", Target=f"integrations/{mock['IntegrationId']}")
    v2.create_route(ApiId=api["ApiId"], RouteKey="ping", Target=f"integrations/{mock['IntegrationId']}")
    v2.create_stage(ApiId=api["ApiId"], StageName="prod", AutoDeploy=True)
    url = f"{unkai.endpoint.replace('http://', 'ws://')}/_unkai/execute-api/{api['ApiId']}/prod"
    management = unkai.client("apigatewaymanagementapi",
                              endpoint_url=f"{unkai.endpoint}/_unkai/execute-api/{api['ApiId']}/prod")
    return api, url, management


def connection_id(ws) -> str:
    """AWS answers a message no route takes with an error naming the connection."""
    ws.send(json.dumps({"action": "nobody-handles-this"}))
    reply = json.loads(ws.recv(timeout=5))
    assert reply["message"] == "Forbidden"
    return reply["connectionId"]


def test_api_endpoint_is_a_local_websocket_url(unkai, ws_api):
    api, _, _ = ws_api
    assert api["ApiEndpoint"] == unkai.endpoint.replace("http", "ws") + f"/_unkai/execute-api/{api['ApiId']}"


def test_post_get_and_delete_connection(ws_api):
    api, url, management = ws_api
    with connect(url) as ws:
        cid = connection_id(ws)
        management.post_to_connection(ConnectionId=cid, Data=b'{"notice": "hello"}')
        assert json.loads(ws.recv(timeout=5)) == {"notice": "hello"}
        info = management.get_connection(ConnectionId=cid)
        assert info["Identity"]["SourceIp"] == "127.0.0.1"
        assert info["ConnectedAt"] <= info["LastActiveAt"]
        management.delete_connection(ConnectionId=cid)
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    with pytest.raises(management.exceptions.GoneException) as exc:
        management.post_to_connection(ConnectionId=cid, Data=b"late")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410
    with pytest.raises(management.exceptions.GoneException):
        management.get_connection(ConnectionId="nosuchconnection=")


def test_routed_messages_and_many_clients(ws_api):
    api, url, management = ws_api
    with connect(url) as a, connect(url) as b:
        ids = {connection_id(a), connection_id(b)}
        assert len(ids) == 2
        a.send(json.dumps({"action": "ping"}))  # a MOCK route: nothing comes back
        for cid in ids:
            management.post_to_connection(ConnectionId=cid, Data=cid.encode())
        assert a.recv(timeout=5) in ids and b.recv(timeout=5) in ids
        a.send("not json at all")  # no $default route: Forbidden, the connection stays
        assert json.loads(a.recv(timeout=5))["message"] == "Forbidden"


def test_idle_timeout_on_unkais_clock(unkai, ws_api):
    api, url, management = ws_api
    with connect(url) as ws:
        cid = connection_id(ws)
        unkai.advance(300)
        management.post_to_connection(ConnectionId=cid, Data=b"still here")
        assert ws.recv(timeout=5) == "still here"
        unkai.advance(601)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd.code == 1001
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId=cid, Data=b"x")


def test_two_hour_limit(unkai, ws_api):
    api, url, _ = ws_api
    with connect(url) as ws:
        connection_id(ws)
        sent = 0
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(14):  # active every 9 minutes 20 seconds, so never idle, until two hours pass
                unkai.advance(560)
                ws.send(json.dumps({"action": "ping"}))
                sent += 1
            ws.recv(timeout=5)
        assert closed.value.rcvd.code == 1001
        assert sent >= 12  # open through 12 x 560 s = 6720 s (never idle), closed once past 7200 s


def test_messages_over_128_kb_close_the_connection(ws_api):
    api, url, management = ws_api
    with connect(url, max_size=None) as ws:
        ws.send("x" * (128 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd.code == 1009
    with connect(url) as ws:  # others are still served
        assert connection_id(ws)


def test_unknown_api_or_stage_is_refused(unkai, ws_api):
    api, url, _ = ws_api
    base = unkai.endpoint.replace("http://", "ws://")
    for bad in (f"{base}/_unkai/execute-api/{api['ApiId']}/nostage", f"{base}/_unkai/execute-api/zzzzzzzzzz/prod"):
        with pytest.raises(InvalidStatus) as exc:
            connect(bad).close()
        assert exc.value.response.status_code == 403


def test_route_throttling(unkai, ws_api):
    api, url, _ = ws_api
    v2 = unkai.client("apigatewayv2")
    v2.update_stage(ApiId=api["ApiId"], StageName="prod",
                    RouteSettings={"ping": {"ThrottlingBurstLimit": 1, "ThrottlingRateLimit": 0.001}})
    try:
        with connect(url) as ws:
            ws.send(json.dumps({"action": "ping"}))  # within the burst: a MOCK route, nothing comes back
            ws.send(json.dumps({"action": "ping"}))
            reply = json.loads(ws.recv(timeout=5))
            assert reply["message"] == "Too Many Requests" and reply["connectionId"]
            assert connection_id(ws)  # other routes are not throttled; the connection stays
    finally:
        v2.update_stage(ApiId=api["ApiId"], StageName="prod", RouteSettings={})
