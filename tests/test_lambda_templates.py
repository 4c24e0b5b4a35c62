"""Lambda resources from a SAM template under `unkai up`: local code, SQS events,
aliases, URLs, inline code, and editing handler code while unkai runs."""

from __future__ import annotations

import json
import textwrap
import urllib.request
from pathlib import Path

import pytest

from unkai.testing import UnkaiServer

TEMPLATE = textwrap.dedent("""\
    AWSTemplateFormatVersion: '2010-09-09'
    Transform: AWS::Serverless-2016-10-31
    Globals:
      Function:
        Runtime: python3.12
        Timeout: 10
    Resources:
      Jobs:
        Type: AWS::SQS::Queue
      Results:
        Type: AWS::SQS::Queue
      Worker:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: src/
          Handler: app.handler
          AutoPublishAlias: live
          Environment:
            Variables:
              RESULTS_URL: !Ref Results
          FunctionUrlConfig:
            AuthType: NONE
          Events:
            FromJobs:
              Type: SQS
              Properties:
                Queue: !GetAtt Jobs.Arn
                BatchSize: 5
      Inline:
        Type: AWS::Lambda::Function
        Properties:
          Runtime: python3.12
          Handler: index.handler
          Role: !Sub arn:aws:iam::${AWS::AccountId}:role/inline
          Code:
            ZipFile: |
              def handler(event, context):
                  return {'inline': event}
      InlineLogs:
        Type: AWS::Logs::LogGroup
        Properties:
          LogGroupName: !Sub /aws/lambda/${Inline}
          RetentionInDays: 14
    Outputs:
      WorkerArn:
        Value: !GetAtt Worker.Arn
      WorkerUrl:
        Value: !GetAtt WorkerUrl.FunctionUrl
      AliasArn:
        Value: !Ref Worker.Alias
""")

APP = textwrap.dedent("""\
    import json, os, boto3
    import helper
    sqs = boto3.client('sqs')
    def handler(event, context):
        for record in event.get('Records', []):
            sqs.send_message(QueueUrl=os.environ['RESULTS_URL'], MessageBody=helper.shout(record['body']))
        return {'version': helper.VERSION}
""")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("lambda-stack")
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text(APP)
    (root / "src" / "helper.py").write_text("VERSION = 1\ndef shout(s):\n    return s.upper()\n")
    (root / "template.yaml").write_text(TEMPLATE)
    server = UnkaiServer(root / "state", str(root / "template.yaml")).start(timeout=90)
    try:
        yield server, root
    finally:
        server.stop()


def outputs(server) -> dict:
    stack = server.client("cloudformation").describe_stacks()["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def test_sqs_event_runs_the_local_handler(stack):
    server, _ = stack
    sqs = server.client("sqs")
    urls = sqs.list_queues()["QueueUrls"]
    jobs = next(u for u in urls if "-Jobs-" in u)
    results = next(u for u in urls if "-Results-" in u)
    sqs.send_message(QueueUrl=jobs, MessageBody="hello")
    server.drain()
    got = sqs.receive_message(QueueUrl=results, MaxNumberOfMessages=10).get("Messages", [])
    assert [m["Body"] for m in got] == ["HELLO"]


def test_alias_url_and_inline_code(stack):
    server, _ = stack
    out = outputs(server)
    lam = server.client("lambda")
    resp = lam.invoke(FunctionName=out["AliasArn"], Payload=b"{}")
    assert resp["ExecutedVersion"] == "1"
    assert json.loads(resp["Payload"].read())["version"] in (1, 2)
    assert out["WorkerUrl"].startswith(server.endpoint + "/_unkai/lambda-url/")
    with urllib.request.urlopen(out["WorkerUrl"]) as r:
        assert json.loads(r.read())["version"] in (1, 2)
    inline = next(f["FunctionName"] for f in lam.list_functions()["Functions"] if "-Inline-" in f["FunctionName"])
    resp = lam.invoke(FunctionName=inline, Payload=b'{"a": 1}')
    assert json.loads(resp["Payload"].read()) == {"inline": {"a": 1}}
    groups = server.client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{inline}")["logGroups"]
    assert groups[0]["retentionInDays"] == 14


def test_editing_handler_code_takes_effect_without_restart(stack):
    server, root = stack
    lam = server.client("lambda")
    worker = outputs(server)["WorkerArn"]
    assert json.loads(lam.invoke(FunctionName=worker, Payload=b"{}")["Payload"].read()) == {"version": 1}
    (root / "src" / "helper.py").write_text("VERSION = 2\ndef shout(s):\n    return s.upper()\n")
    assert json.loads(lam.invoke(FunctionName=worker, Payload=b"{}")["Payload"].read()) == {"version": 2}
    assert Path(root / "src" / "app.py").exists()
