"""Functions deployed by `unkai up`: schedules invoking them with AWS's Scheduled
Event (the book's scheduler chapter), and requirements.txt installed for them and
reinstalled when it changes."""

from __future__ import annotations

import json
import textwrap

import pytest
from template_helpers import make_wheel, wait_for

from unkai.testing import UnkaiServer

# These run real functions: they need the Lambda runtime (and run as soon as it is in the build).
pytest.importorskip("unkai.services.awslambda", reason="the Lambda service is not in this build yet")

SCHEDULED = textwrap.dedent("""\
    Transform: AWS::Serverless-2016-10-31
    Globals:
      Function:
        Runtime: python3.12
        CodeUri: src/
        Handler: app.lambda_handler
    Resources:
      Hello:
        Type: AWS::Serverless::Function
        Properties:
          FunctionName: hello
          Events:
            MyScheduleRule:
              Type: Schedule
              Properties:
                Schedule: cron(0/5 * * * ? *)
      Constant:
        Type: AWS::Serverless::Function
        Properties:
          FunctionName: constant
          Events:
            Every5:
              Type: Schedule
              Properties:
                Schedule: rate(5 minutes)
                Input: '{"action":"0001","eventname":"foobar"}'
      Disabled:
        Type: AWS::Serverless::Function
        Properties:
          FunctionName: disabled
          Events:
            Never:
              Type: Schedule
              Properties:
                Schedule: rate(1 minute)
                Enabled: false
      Later:
        Type: AWS::Serverless::Function
        Properties:
          FunctionName: later
          Events:
            Hourly:
              Type: ScheduleV2
              Properties:
                ScheduleExpression: rate(1 hour)
                Input: '{"from": "scheduler"}'
    """)

HANDLER = textwrap.dedent("""\
    import json

    def lambda_handler(event, context):
        print('Hello')
        print(json.dumps(event))
    """)


def logged(server: UnkaiServer, function: str) -> list[str]:
    logs = server.client("logs")
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{function}")["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [e["message"].rstrip("\n") for e in events]


def test_schedules_invoke_functions_with_the_scheduled_event(tmp_path):
    app = tmp_path / "app"
    (app / "src").mkdir(parents=True)
    (app / "template.yaml").write_text(SCHEDULED)
    (app / "src" / "app.py").write_text(HANDLER)
    with UnkaiServer(tmp_path / "state", str(app)) as server:
        events = server.client("events")
        rule = server.client("cloudformation").describe_stack_resource(
            StackName="app", LogicalResourceId="HelloMyScheduleRule")["StackResourceDetail"]["PhysicalResourceId"]
        rule_arn = events.describe_rule(Name=rule)["Arn"]
        server.advance(300)
        server.drain(timeout=60)  # the first invocation starts a worker: slow on a loaded machine
        hello = logged(server, "hello")
        assert "Hello" in hello
        event = json.loads(next(line for line in hello if line.startswith("{")))
        assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
        assert event["resources"] == [rule_arn]
        assert event["detail"] == {} and event["account"] == "000000000000" and event["region"] == "us-east-1"
        constant = [line for line in logged(server, "constant") if line.startswith("{")]
        assert constant == ['{"action": "0001", "eventname": "foobar"}']
        assert logged(server, "disabled") == []
        server.advance(3600)
        server.drain()
        later = [json.loads(line) for line in logged(server, "later") if line.startswith("{")]
        assert later == [{"from": "scheduler"}]


REQUIREMENTS = textwrap.dedent("""\
    Transform: AWS::Serverless-2016-10-31
    Resources:
      Uses:
        Type: AWS::Serverless::Function
        Properties:
          FunctionName: uses-tinypkg
          Runtime: python3.12
          CodeUri: fn/
          Handler: app.handler
    """)


def test_requirements_are_importable_and_reinstalled_when_they_change(tmp_path):
    app = tmp_path / "app"
    (app / "fn").mkdir(parents=True)
    (app / "template.yaml").write_text(REQUIREMENTS)
    (app / "fn" / "app.py").write_text("import tinypkg\n\ndef handler(event, context):\n    return tinypkg.VALUE\n")
    make_wheel(app / "fn", version="1.0", value=42)
    (app / "fn" / "requirements.txt").write_text("./tinypkg-1.0-py3-none-any.whl\n")
    with UnkaiServer(tmp_path / "state", str(app)) as server:
        lam = server.client("lambda")
        assert json.loads(lam.invoke(FunctionName="uses-tinypkg")["Payload"].read()) == 42
        make_wheel(app / "fn", version="2.0", value=43)
        (app / "fn" / "requirements.txt").write_text("./tinypkg-2.0-py3-none-any.whl\n")
        wait_for(lambda: server.output().count("Uses: installing") == 2, timeout=60)
        wait_for(lambda: "stack app UPDATE_COMPLETE" in server.output(), timeout=60)
        assert json.loads(lam.invoke(FunctionName="uses-tinypkg")["Payload"].read()) == 43
