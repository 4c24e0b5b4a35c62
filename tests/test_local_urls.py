"""URLs that work from every client: a stack's URL outputs keep the ``*.localhost`` form
browsers resolve, and ``unkai up`` and ``unkai status`` print beside each its path form on
127.0.0.1, which Python resolves as it is (no DNS set-up); an HTTP API's ``$default``
stage answers on its path form with or without ``$default`` in the path."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request

import pytest

from unkai.testing import UnkaiServer

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      InlineCode: |
        import json
        def handler(event, context):
            return {"statusCode": 200, "body": json.dumps({"path": event["rawPath"]})}
      Events:
        Get:
          Type: HttpApi
          Properties: {Path: /hello, Method: GET}
Outputs:
  HelloUrl:
    Value: !Sub "https://${ServerlessHttpApi}.execute-api.${AWS::Region}.amazonaws.com/hello"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("urls")
    (root / "template.yaml").write_text(TEMPLATE)
    srv = UnkaiServer(root / "state", str(root / "template.yaml")).start(timeout=120)
    try:
        yield srv
    finally:
        srv.stop()


def get(url: str) -> tuple[int, dict]:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.status, json.loads(resp.read())


def test_url_outputs_keep_the_browser_form_and_the_banner_offers_a_path_form_python_calls(server):
    out = server.client("cloudformation").describe_stacks()["Stacks"][0]["Outputs"][0]["OutputValue"]
    assert re.fullmatch(r"http://[a-z0-9]{10}\.execute-api\.localhost:\d+/hello", out)
    with pytest.raises(OSError):  # what a script meets with the browser form
        urllib.request.urlopen(out, timeout=10)
    printed = server.output()
    path_form = re.search(r"(http://127\.0\.0\.1:\d+/_unkai/execute-api/\S+/hello)\s+\(path form", printed).group(1)
    assert get(path_form) == (200, {"path": "/hello"})


def test_status_prints_the_path_form_of_each_url_output(server, tmp_path):
    done = subprocess.run([sys.executable, "-m", "unkai", "status", "--json"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, UNKAI_ENDPOINT=server.endpoint))
    stack = json.loads(done.stdout)["stacks"][0]
    assert get(stack["path_forms"]["HelloUrl"]) == (200, {"path": "/hello"})


def test_the_default_stage_answers_on_its_path_form_with_or_without_its_name(server):
    api = server.client("apigatewayv2").get_apis()["Items"][0]
    assert "$default" not in api["ApiEndpoint"]
    banner = re.search(r"API\s+\S+\s+\(.*; or (\S+)\)", server.output()).group(1)
    assert banner == f"{server.endpoint}/_unkai/execute-api/{api['ApiId']}"
    assert get(banner + "/hello") == (200, {"path": "/hello"})
    assert get(f"{server.endpoint}/_unkai/execute-api/{api['ApiId']}/$default/hello") == (200, {"path": "/hello"})


def test_unkai_delivers_to_localhost_4566_on_its_own_port_whatever_its_port(server):
    """A template's local default such as ``http://localhost:4566/_unkai/inbox/NAME`` names
    unkai itself: an SNS HTTP subscription and an HTTP API's HTTP_PROXY integration reach
    this unkai's inbox although it runs on another port."""
    assert server.port != 4566
    sns = server.client("sns")
    topic = sns.create_topic(Name="hooks")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint="http://localhost:4566/_unkai/inbox/sns-hook")
    server.drain()
    assert [e["json"]["Type"] for e in server.inbox("sns-hook")] == ["SubscriptionConfirmation"]

    v2 = server.client("apigatewayv2")
    api = v2.create_api(Name="proxy", ProtocolType="HTTP", Target="http://127.0.0.1:4566/_unkai/inbox/proxied")
    req = urllib.request.Request(f"{server.endpoint}/_unkai/execute-api/{api['ApiId']}/anything", data=b'{"a": 1}',
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:  # (a GET to an inbox lists it; a POST is recorded)
        assert resp.status == 200
    assert [e["json"] for e in server.inbox("proxied")] == [{"a": 1}]
