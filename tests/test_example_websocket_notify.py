"""examples/websocket-notify end to end with real WebSocket clients: the connection
table follows connects and disconnects, sendmessage reaches every open connection and
prunes the gone ones, and the stage writes the seed's access-log format."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))

from examples_support import eventually, outputs, run_readme_websockets_line, start_example  # noqa: E402


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    server = start_example(tmp_path_factory.mktemp("ws") / "state", "websocket-notify")
    try:
        yield server, outputs(server, "websocket-notify")
    finally:
        server.stop()


def connection_ids(server) -> set[str]:
    return {i["ws_connection_id"] for i in server.resource("dynamodb").Table("connection").scan()["Items"]}


def test_notices_reach_every_open_connection(stack):
    server, out = stack
    url = out["WebSocketUrl"]
    table = server.resource("dynamodb").Table("connection")
    with connect(url) as alice, connect(url) as bob, connect(url) as carol:
        assert len(connection_ids(server)) == 3
        # A connection that closed without its $disconnect reaching us: the broadcast prunes it.
        table.put_item(Item={"id": str(uuid.uuid4()), "ws_connection_id": "Gone0000000000="})
        alice.send(json.dumps({"action": "sendmessage", "message": "授業を始めます"}))
        notices = [json.loads(ws.recv(timeout=10)) for ws in (alice, bob, carol)]
        assert {n["message"] for n in notices} == {"授業を始めます"}
        sender = notices[0]["from"]
        assert {n["from"] for n in notices} == {sender} and sender in connection_ids(server)
        assert "Gone0000000000=" not in connection_ids(server)
        carol.close()
        eventually(lambda: len(connection_ids(server)) == 2)
        bob.send(json.dumps({"action": "sendmessage", "message": "second"}))
        assert json.loads(alice.recv(timeout=10))["message"] == "second"
        assert json.loads(bob.recv(timeout=10))["message"] == "second"
    eventually(lambda: connection_ids(server) == set())


def test_stage_settings_and_access_logs(stack):
    server, out = stack
    api_id = out["WebSocketUrl"].split("/")[-2]
    stage = server.client("apigatewayv2").get_stage(ApiId=api_id, StageName="example")
    settings = stage["DefaultRouteSettings"]
    assert (settings["ThrottlingBurstLimit"], settings["ThrottlingRateLimit"]) == (5000, 10000.0)

    with connect(out["WebSocketUrl"]) as ws:
        ws.send(json.dumps({"action": "sendmessage", "message": "logged"}))
        ws.recv(timeout=10)
    logs = server.client("logs")

    def entries() -> list[dict]:
        events = logs.filter_log_events(logGroupName="/aws/apigateway/example")["events"]
        return [json.loads(e["message"]) for e in events]

    found = eventually(lambda: [e for e in entries() if e["routeKey"] == "sendmessage"])
    entry = found[-1]
    assert set(entry) == {"requestId", "ip", "requestTime", "httpMethod", "routeKey", "status", "protocol",
                          "responseLength"}
    assert entry["ip"] == "127.0.0.1" and entry["status"] == "200"
    assert eventually(lambda: {"$connect", "$disconnect"} <= {e["routeKey"] for e in entries()})


def test_the_readme_websocket_command_works_as_written(stack):
    """The README's `python -m websockets` line, with the API id (and the port this test's
    unkai runs on) filled in: the sender receives its own notice."""
    server, out = stack
    api_id = server.client("apigatewayv2").get_apis()["Items"][0]["ApiId"]
    run_readme_websockets_line("websocket-notify", server, api_id, out["WebSocketUrl"])
