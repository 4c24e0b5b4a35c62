"""examples/websocket-terraform end to end, applied by ``unkai up`` from its .tf files
with no terraform binary: the same assertions as the SAM re-statement
(tests/test_example_websocket_notify.py) - the connection table follows connects and
disconnects, sendmessage reaches every open connection and prunes the gone ones, the
stage has the seed's throttling and access-log format - plus the seed's custom domain,
answered on unkai's port by its Host name."""

from __future__ import annotations

import json
import socket
import sys
import uuid
from pathlib import Path

import pytest
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))

from examples_support import EXAMPLES, eventually, run_readme_websockets_line  # noqa: E402
from unkai.testing import UnkaiServer  # noqa: E402

REGION = "ap-northeast-1"  # the provider block's region, where the resources are made


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    server = UnkaiServer(tmp_path_factory.mktemp("wstf") / "state", str(EXAMPLES / "websocket-terraform/envs/dev"),
                         "--allow-host", "example.com")
    server.start(timeout=120)
    try:
        api = server.client("apigatewayv2", region=REGION).get_apis()["Items"]
        assert [a["Name"] for a in api] == ["example"], server.output()
        yield server, api[0]["ApiId"]
    finally:
        server.stop()


def url(server, api_id: str) -> str:
    return f"{server.endpoint.replace('http://', 'ws://')}/_unkai/execute-api/{api_id}/example"


def connection_ids(server) -> set[str]:
    table = server.resource("dynamodb", region=REGION).Table("connection")
    return {i["ws_connection_id"] for i in table.scan()["Items"]}


def test_the_plan_and_outputs_are_printed(stack):
    server, api_id = stack
    out = server.output()
    assert 'backend "s3" ignored' in out
    assert "+ module.websocket.aws_apigatewayv2_deployment.example will be created" in out
    assert "Plan: 24 to add, 0 to change, 0 to destroy." in out
    assert f"websocket_url  {server.endpoint.replace('http', 'ws')}/_unkai/execute-api/{api_id}" in out
    assert "custom_domain  example.com" in out
    fn = server.client("lambda", region=REGION).get_function_configuration(FunctionName="connect_handler")
    assert (fn["Runtime"], fn["Timeout"], fn["MemorySize"], fn["TracingConfig"]["Mode"]) == \
        ("python3.9", 300, 128, "Active")


def test_notices_reach_every_open_connection(stack):
    server, api_id = stack
    table = server.resource("dynamodb", region=REGION).Table("connection")
    with connect(url(server, api_id)) as alice, connect(url(server, api_id)) as bob, \
            connect(url(server, api_id)) as carol:
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
    server, api_id = stack
    stage = server.client("apigatewayv2", region=REGION).get_stage(ApiId=api_id, StageName="example")
    settings = stage["DefaultRouteSettings"]
    assert (settings["ThrottlingBurstLimit"], settings["ThrottlingRateLimit"]) == (5000, 10000.0)
    assert (settings["LoggingLevel"], settings["DataTraceEnabled"], settings["DetailedMetricsEnabled"]) == \
        ("INFO", True, True)

    with connect(url(server, api_id)) as ws:
        ws.send(json.dumps({"action": "sendmessage", "message": "logged"}))
        ws.recv(timeout=10)
    logs = server.client("logs", region=REGION)

    def entries() -> list[dict]:
        events = logs.filter_log_events(logGroupName="/aws/apigateway/example")["events"]
        return [json.loads(e["message"]) for e in events]

    found = eventually(lambda: [e for e in entries() if e["routeKey"] == "sendmessage"])
    entry = found[-1]
    assert set(entry) == {"requestId", "ip", "requestTime", "httpMethod", "routeKey", "status", "protocol",
                          "responseLength"}
    assert entry["ip"] == "127.0.0.1" and entry["status"] == "200"
    assert eventually(lambda: {"$connect", "$disconnect"} <= {e["routeKey"] for e in entries()})


def test_the_custom_domain_is_answered_by_its_host_name(stack):
    server, api_id = stack
    v2 = server.client("apigatewayv2", region=REGION)
    mappings = v2.get_api_mappings(DomainName="example.com")["Items"]
    assert [(m["ApiId"], m["Stage"], m.get("ApiMappingKey", "")) for m in mappings] == [(api_id, "example", "")]
    port = int(server.endpoint.rsplit(":", 1)[1])
    # wss://example.com/ in AWS; here the same Host on unkai's port
    sock = socket.create_connection(("127.0.0.1", port))
    with connect(f"ws://example.com:{port}/", sock=sock) as ws, connect(url(server, api_id)) as other:
        eventually(lambda: len(connection_ids(server)) == 2)
        ws.send(json.dumps({"action": "sendmessage", "message": "via example.com"}))
        assert json.loads(other.recv(timeout=10))["message"] == "via example.com"
        assert json.loads(ws.recv(timeout=10))["message"] == "via example.com"


def test_the_readme_websocket_command_works_as_written(stack):
    """The README's `python -m websockets` line with the API id filled in: the websocket_url
    output, and the sender receives its own notice."""
    server, api_id = stack
    assert f"websocket_url  {url(server, api_id)}\n" in server.output()
    run_readme_websockets_line("websocket-terraform", server, api_id, url(server, api_id))
