"""Issue 21 item 17: external extensions from layers (``/opt/extensions/*``) run beside the
handler with the Extensions API lifecycle (register, INVOKE and SHUTDOWN events) and can
subscribe to the Telemetry API (platform, function and extension records POSTed to their
HTTP listener), as log-shipping and monitoring extensions do. The extension here is a small
Python program using only the standard library; what it sees, it prints, and its output
is the function's log (as extension output is on AWS)."""

from __future__ import annotations

import io
import json
import sys
import time
import zipfile

import pytest
from lambda_code import deploy

EXTENSION = """#!{python}
import http.client, http.server, json, os, sys, threading

api = os.environ["AWS_LAMBDA_RUNTIME_API"]
host, port = api.split(":")

class Listener(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        batch = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        for item in batch:
            if item["type"] == "function" and "hello from handler" in item["record"]:
                print("TELEMETRY function", item["record"], flush=True)
            elif item["type"] in ("platform.start", "platform.report", "platform.initStart", "platform.runtimeDone"):
                print("TELEMETRY", item["type"], item["record"].get("requestId", ""),
                      item["record"].get("status", ""), "time" in item, flush=True)
            elif item["type"] == "extension" and "registered" in item["record"]:
                print("TELEMETRY extension-record seen", flush=True)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", 0), Listener)
threading.Thread(target=server.serve_forever, daemon=True).start()

conn = http.client.HTTPConnection(host, int(port))
conn.request("POST", "/2020-01-01/extension/register", json.dumps({{"events": ["INVOKE", "SHUTDOWN"]}}),
             {{"Lambda-Extension-Name": "shipper"}})
resp = conn.getresponse()
info = json.loads(resp.read())
ext_id = resp.getheader("Lambda-Extension-Identifier")
print("EXT registered", info["functionName"], info["handler"], flush=True)
conn.request("PUT", "/2022-07-01/telemetry", json.dumps({{
    "schemaVersion": "2022-12-13", "types": ["platform", "function", "extension"],
    "buffering": {{"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 100}},
    "destination": {{"protocol": "HTTP", "URI": "http://sandbox.localdomain:%d" % server.server_port}}}}),
    {{"Lambda-Extension-Identifier": ext_id}})
answer = conn.getresponse()
answer.read()
print("EXT subscribed", answer.status, flush=True)
while True:
    conn.request("GET", "/2020-01-01/extension/event/next", headers={{"Lambda-Extension-Identifier": ext_id}})
    event = json.loads(conn.getresponse().read())
    if event["eventType"] == "INVOKE":
        print("EXT got INVOKE", event["requestId"], event["invokedFunctionArn"].rsplit(":", 1)[-1], flush=True)
    else:
        print("EXT got SHUTDOWN", event["shutdownReason"], flush=True)
        sys.exit(0)
"""

HANDLER = """
import os
def handler(event, context):
    print("hello from handler", context.aws_request_id)
    return {"api": os.environ["AWS_LAMBDA_RUNTIME_API"], "listed": sorted(os.listdir(os.path.dirname(
        os.environ["EXT_PATH"]))) if os.environ.get("EXT_PATH") else None}
"""


@pytest.fixture(scope="module")
def lam(unkai):
    return unkai.client("lambda")


@pytest.fixture(scope="module")
def layer(lam):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        info = zipfile.ZipInfo("extensions/shipper")
        info.external_attr = 0o755 << 16
        archive.writestr(info, EXTENSION.format(python=sys.executable))
    return lam.publish_layer_version(LayerName="shipper", Content={"ZipFile": buf.getvalue()})["LayerVersionArn"]


def log_text(unkai, name: str) -> str:
    events = unkai.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    return "".join(e["message"] for e in events)


def wait_for_log(unkai, name: str, *needles: str, timeout: float = 20.0) -> str:
    """The function's log once it holds every needle (the extension prints as telemetry arrives)."""
    deadline = time.monotonic() + timeout
    while True:
        text = log_text(unkai, name)
        if all(n in text for n in needles) or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def test_an_extension_registers_gets_invoke_events_and_telemetry(lam, unkai, layer):
    name = deploy(lam, HANDLER, Layers=[layer], Runtime="python3.12")
    resp = lam.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in resp
    body = json.loads(resp["Payload"].read())
    assert body["api"].startswith("127.0.0.1:")  # a real Runtime API, which the extension uses
    rid = resp["ResponseMetadata"]["RequestId"]
    text = wait_for_log(unkai, name, f"EXT got INVOKE {rid}", f"TELEMETRY platform.report {rid}",
                        "TELEMETRY function hello from handler")
    assert f"EXT registered {name} app.handler" in text
    assert "EXT subscribed 200" in text
    assert f"EXT got INVOKE {rid} {name}" in text
    assert f"TELEMETRY function hello from handler {rid}" in text
    assert f"TELEMETRY platform.start {rid}" in text
    assert f"TELEMETRY platform.runtimeDone {rid} success True" in text
    assert f"TELEMETRY platform.report {rid} success True" in text
    assert "TELEMETRY platform.initStart" in text  # init telemetry reaches a subscriber of the init phase
    assert "TELEMETRY extension-record seen" in text  # its own output, as extension records

    # the next invocation reuses the environment: the extension is still there, no second init
    second = lam.invoke(FunctionName=name, Payload=b"{}")["ResponseMetadata"]["RequestId"]
    text = wait_for_log(unkai, name, f"EXT got INVOKE {second}")
    assert text.count("EXT registered") == 1

    # a configuration change retires the environment: the extension gets SHUTDOWN first
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"V": "2"}})
    lam.invoke(FunctionName=name, Payload=b"{}")
    text = wait_for_log(unkai, name, "EXT got SHUTDOWN spindown")
    assert "EXT got SHUTDOWN spindown" in text
    assert text.count("EXT registered") == 2  # the new environment started the extension again


def test_a_function_without_extensions_keeps_the_plain_runtime(lam):
    name = deploy(lam, HANDLER, Runtime="python3.12")
    body = json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
    assert body["api"] == "127.0.0.1:9001"  # AWS's address for the Python runtime's own API
