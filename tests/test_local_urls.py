"""URLs that work from every client: a stack's URL outputs, ``ApiEndpoint``,
``FunctionUrl`` and ``WebsiteURL`` are path forms on 127.0.0.1 that a script calls as
they are (Python does not resolve ``*.localhost``), and ``unkai up`` and ``unkai status``
print beside each the AWS-shaped ``*.localhost`` form browsers resolve; an HTTP API's
``$default`` stage answers on its path form with or without ``$default`` in the path."""

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
      FunctionUrlConfig: {AuthType: NONE}
      Events:
        Get:
          Type: HttpApi
          Properties: {Path: /hello, Method: GET}
  Site:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: local-urls-site
      WebsiteConfiguration: {IndexDocument: index.html}
Outputs:
  HelloUrl:
    Value: !Sub "https://${ServerlessHttpApi}.execute-api.${AWS::Region}.amazonaws.com/hello"
  FunctionUrl:
    Value: !GetAtt HelloUrl.FunctionUrl
  SiteUrl:
    Value: !GetAtt Site.WebsiteURL
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


def outputs(server: UnkaiServer) -> dict[str, str]:
    described = server.client("cloudformation").describe_stacks()["Stacks"][0]["Outputs"]
    return {o["OutputKey"]: o["OutputValue"] for o in described}


def test_a_script_calls_the_url_outputs_as_they_are_and_the_banner_adds_the_browser_form(server):
    out = outputs(server)
    endpoint = re.escape(server.endpoint)
    assert re.fullmatch(rf"{endpoint}/_unkai/execute-api/[a-z0-9]{{10}}/hello", out["HelloUrl"])
    assert get(out["HelloUrl"]) == (200, {"path": "/hello"})
    assert re.fullmatch(rf"{endpoint}/_unkai/lambda-url/[a-z0-9]{{32}}/", out["FunctionUrl"])
    assert get(out["FunctionUrl"]) == (200, {"path": "/"})
    server.client("s3").put_object(Bucket="local-urls-site", Key="index.html", Body=b'{"path": "site"}')
    assert out["SiteUrl"] == f"{server.endpoint}/_unkai/website/local-urls-site"
    assert get(out["SiteUrl"]) == (200, {"path": "site"})  # a 302 to the bucket's root, then its index
    printed = server.output()
    for key, value in out.items():
        browser = re.search(rf"{key}\s+{re.escape(value)}\n\s+(\S+)\s+\(in a browser\)", printed).group(1)
        host, _, path = browser.split("//", 1)[1].partition("/")
        assert host.split(":")[0].endswith(".localhost")
        with pytest.raises(OSError):  # what a script meets with the browser form
            urllib.request.urlopen(browser, timeout=10)
        # what a browser does with it: loopback, with the name in the Host header
        request = urllib.request.Request(f"{server.endpoint}/{path}", headers={"Host": host})
        with urllib.request.urlopen(request, timeout=30) as resp:
            assert resp.status == 200


def test_status_prints_the_browser_form_of_each_url_output(server, tmp_path):
    done = subprocess.run([sys.executable, "-m", "unkai", "status", "--json"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, UNKAI_ENDPOINT=server.endpoint))
    stack = json.loads(done.stdout)["stacks"][0]
    assert get(stack["outputs"]["HelloUrl"]) == (200, {"path": "/hello"})
    api_id = stack["outputs"]["HelloUrl"].split("/")[-2]
    port = server.endpoint.rsplit(":", 1)[1]
    assert stack["browser_forms"]["HelloUrl"] == f"http://{api_id}.execute-api.localhost:{port}/hello"
    assert stack["browser_forms"]["SiteUrl"] == f"http://local-urls-site.s3-website-us-east-1.localhost:{port}/"


def test_the_default_stage_answers_on_its_path_form_with_or_without_its_name(server):
    api = server.client("apigatewayv2").get_apis()["Items"][0]
    assert api["ApiEndpoint"] == f"{server.endpoint}/_unkai/execute-api/{api['ApiId']}"
    banner = re.search(r"API\s+(\S+)\s+\(.*; in a browser also (\S+)\)", server.output())
    assert banner.group(1) == api["ApiEndpoint"]
    port = server.endpoint.rsplit(":", 1)[1]
    assert banner.group(2) == f"http://{api['ApiId']}.execute-api.localhost:{port}"
    assert get(api["ApiEndpoint"] + "/hello") == (200, {"path": "/hello"})
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
