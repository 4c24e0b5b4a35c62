"""`unkai up TEMPLATE` and `unkai validate` through real subprocesses: intrinsics,
conditions, parameters and their errors, dependency order, unsupported types,
re-applying an edited template, and the CloudFormation read APIs."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from template_helpers import make_wheel, wait_for
from unkai.testing import UnkaiServer

STACK = textwrap.dedent("""\
    AWSTemplateFormatVersion: '2010-09-09'
    Description: intrinsics and conditions
    Parameters:
      Env:
        Type: String
        Default: dev
        AllowedValues: [dev, prd]
      Names:
        Type: CommaDelimitedList
        Default: "a,b,c"
      Retention:
        Type: Number
        Default: 345600
        MinValue: 60
    Conditions:
      IsPrd: !Equals [!Ref Env, prd]
      NotPrd: !Not [!Condition IsPrd]
      Both: !And [!Condition NotPrd, !Or [!Equals [a, b], !Equals [!Select [1, !Ref Names], b]]]
    Mappings:
      Visibility:
        dev: {Seconds: 40}
        prd: {Seconds: 60}
    Resources:
      Jobs:
        Type: AWS::SQS::Queue
        Properties:
          VisibilityTimeout: !FindInMap [Visibility, !Ref Env, Seconds]
          MessageRetentionPeriod: !Ref Retention
          RedrivePolicy:
            deadLetterTargetArn: !GetAtt Dlq.Arn
            maxReceiveCount: 3
          Tags:
            - Key: env
              Value: !If [IsPrd, production, development]
            - !If [IsPrd, {Key: pager, Value: "on"}, !Ref AWS::NoValue]
      Dlq:
        Type: AWS::SQS::Queue
        DependsOn: Role
        Properties:
          QueueName: !Sub "${AWS::StackName}-${Env}-dlq"
      OnlyInPrd:
        Type: AWS::SQS::Queue
        Condition: IsPrd
      Role:
        Type: AWS::IAM::Role
        Properties:
          AssumeRolePolicyDocument: {Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: "sts:AssumeRole"}]}
      Alarm:
        Type: AWS::EC2::Instance
        Properties:
          AlarmActions: [!GetAtt Jobs.Arn]
      Dashboard:
        Type: AWS::EC2::Instance
    Outputs:
      JobsUrl:
        Description: the jobs queue
        Value: !Ref Jobs
      DlqArn:
        Value: !GetAtt Dlq.Arn
      Sub:
        Value: !Sub
          - "${AWS::Region}/${AWS::AccountId}/${AWS::Partition}/${AWS::URLSuffix}/${Dlq.QueueName}/${X}/${!Literal}"
          - X: !Join ["+", !Split [",", "p,q"]]
      Zones:
        Value: !Join [",", !GetAZs ""]
      Encoded:
        Value: !Base64 hello
      Cidrs:
        Value: !Join [" ", !Cidr ["10.0.0.0/16", 2, 8]]
      BothHolds:
        Value: !If [Both, yes-both, no-both]
      Names:
        Value: !Join ["|", !Ref Names]
      RoleArn:
        Value: !GetAtt Role.Arn
      StackName:
        Value: !Ref AWS::StackName
      PrdOnly:
        Condition: IsPrd
        Value: !Ref OnlyInPrd
    """)


def write(tmp_path: Path, text: str, name: str = "template.yaml") -> Path:
    path = tmp_path / "app" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def outputs(server: UnkaiServer, stack: str = "app") -> dict[str, str]:
    described = server.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def unkai_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unkai", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stack")
    template = write(tmp, STACK)
    server = UnkaiServer(tmp / "state", str(template)).start()
    try:
        yield server
    finally:
        server.stop()


def test_intrinsics_conditions_and_outputs(stack):
    out = outputs(stack)
    dlq = stack.client("sqs").get_queue_url(QueueName="app-dev-dlq")["QueueUrl"]
    assert out["DlqArn"] == "arn:aws:sqs:us-east-1:000000000000:app-dev-dlq"
    assert out["Sub"] == "us-east-1/000000000000/aws/amazonaws.com/app-dev-dlq/p+q/${Literal}"
    assert out["Zones"] == "us-east-1a,us-east-1b,us-east-1c"
    assert base64.b64decode(out["Encoded"]) == b"hello"
    assert out["Cidrs"] == "10.0.0.0/24 10.0.1.0/24"
    assert out["BothHolds"] == "yes-both"
    assert out["Names"] == "a|b|c"
    assert out["StackName"] == "app"
    assert out["RoleArn"].startswith("arn:aws:iam::000000000000:role/app-Role-")
    assert "PrdOnly" not in out  # its condition is false
    sqs = stack.client("sqs")
    assert out["JobsUrl"].startswith(stack.endpoint + "/000000000000/app-Jobs-")
    attrs = sqs.get_queue_attributes(QueueUrl=out["JobsUrl"], AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "40"
    assert attrs["MessageRetentionPeriod"] == "345600"
    assert json.loads(attrs["RedrivePolicy"]) == {"deadLetterTargetArn": out["DlqArn"], "maxReceiveCount": 3}
    assert sqs.list_queue_tags(QueueUrl=out["JobsUrl"])["Tags"] == {"env": "development"}
    assert dlq.endswith("/app-dev-dlq")
    names = [u.rsplit("/", 1)[1] for u in sqs.list_queues(QueueNamePrefix="app-")["QueueUrls"]]
    assert not any("OnlyInPrd" in n for n in names)


def test_unsupported_types_are_reported_once_and_skipped(stack):
    log = stack.output()
    assert log.count("AWS::EC2::Instance is not supported by unkai yet") == 1
    assert "skipped Alarm (line 48), Dashboard (line 52)" in log
    cfn = stack.client("cloudformation")
    summaries = {r["LogicalResourceId"]: r for r in cfn.list_stack_resources(StackName="app")["StackResourceSummaries"]}
    assert set(summaries) == {"Jobs", "Dlq", "Role", "Alarm", "Dashboard"}
    assert "not support" in summaries["Alarm"]["ResourceStatusReason"]


def test_describe_stacks_through_the_aws_cli(stack):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1")
    result = subprocess.run(
        [sys.executable, "-m", "awscli", "--endpoint-url", stack.endpoint, "cloudformation", "describe-stacks",
         "--query", "Stacks[0].Outputs"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    shown = {o["OutputKey"]: o for o in json.loads(result.stdout)}
    assert shown["JobsUrl"]["Description"] == "the jobs queue"
    assert shown["DlqArn"]["OutputValue"] == "arn:aws:sqs:us-east-1:000000000000:app-dev-dlq"


def test_cloudformation_read_apis(stack):
    cfn = stack.client("cloudformation")
    described = cfn.describe_stacks()["Stacks"]
    assert [s["StackName"] for s in described] == ["app"]
    s = described[0]
    assert s["StackStatus"] == "CREATE_COMPLETE"
    assert s["StackId"].startswith("arn:aws:cloudformation:us-east-1:000000000000:stack/app/")
    assert s["Description"] == "intrinsics and conditions"
    assert {p["ParameterKey"]: p["ParameterValue"] for p in s["Parameters"]} == {
        "Env": "dev", "Names": "a,b,c", "Retention": "345600"}
    assert cfn.describe_stacks(StackName=s["StackId"])["Stacks"][0]["StackName"] == "app"
    summaries = cfn.list_stacks(StackStatusFilter=["CREATE_COMPLETE"])["StackSummaries"]
    assert [x["StackName"] for x in summaries] == ["app"]
    detail = cfn.describe_stack_resource(StackName="app", LogicalResourceId="Dlq")["StackResourceDetail"]
    assert detail["PhysicalResourceId"].endswith("/000000000000/app-dev-dlq")
    assert detail["ResourceType"] == "AWS::SQS::Queue"
    by_physical = cfn.describe_stack_resources(PhysicalResourceId=detail["PhysicalResourceId"])["StackResources"]
    assert [r["LogicalResourceId"] for r in by_physical] == ["Dlq"]
    assert len(cfn.describe_stack_resources(StackName="app")["StackResources"]) == 5
    body = cfn.get_template(StackName="app")["TemplateBody"]
    assert body == STACK
    processed = cfn.get_template(StackName="app", TemplateStage="Processed")["TemplateBody"]  # botocore parses JSON
    assert set(processed["Resources"]) >= {"Jobs", "Dlq"}
    with pytest.raises(ClientError) as exc:
        cfn.describe_stacks(StackName="nope")
    assert exc.value.response["Error"]["Code"] == "ValidationError"
    assert exc.value.response["Error"]["Message"] == "Stack with id nope does not exist"
    with pytest.raises(ClientError) as exc:
        cfn.describe_stack_resource(StackName="app", LogicalResourceId="Nope")
    assert exc.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as exc:
        cfn.delete_stack(StackName="app")
    assert "unkai deploys stacks from `unkai up TEMPLATE`" in exc.value.response["Error"]["Message"]


def test_validate_template_api(stack):
    cfn = stack.client("cloudformation")
    checked = cfn.validate_template(TemplateBody=STACK)
    assert [p["ParameterKey"] for p in checked["Parameters"]] == ["Env", "Names", "Retention"]
    assert checked["Description"] == "intrinsics and conditions"
    assert checked["Capabilities"] == ["CAPABILITY_IAM"]
    summary = cfn.get_template_summary(StackName="app")
    assert summary["ResourceTypes"] == ["AWS::EC2::Instance", "AWS::IAM::Role", "AWS::SQS::Queue"]
    assert summary["Parameters"][0]["ParameterConstraints"]["AllowedValues"] == ["dev", "prd"]
    with pytest.raises(ClientError) as exc:
        cfn.validate_template(TemplateBody="Resources:\n  A:\n    Type: AWS::SQS::Queue\n    Properties:\n"
                                           "      X: !GetAtt Missing.Arn\n")
    assert exc.value.response["Error"]["Code"] == "ValidationError"
    assert "Missing" in exc.value.response["Error"]["Message"]


def test_parameter_overrides_and_conditions(tmp_path):
    template = write(tmp_path, STACK)
    with UnkaiServer(tmp_path / "state", str(template), "--parameter-overrides", "Env=prd Names=x,y",
                     "--stack-name", "prod") as server:
        out = outputs(server, "prod")
        assert out["BothHolds"] == "no-both"
        assert out["Names"] == "x|y"
        assert out["PrdOnly"].startswith(server.endpoint + "/000000000000/prod-OnlyInPrd-")
        sqs = server.client("sqs")
        tags = sqs.list_queue_tags(QueueUrl=out["JobsUrl"])["Tags"]
        assert tags == {"env": "production", "pager": "on"}
        attrs = sqs.get_queue_attributes(QueueUrl=out["JobsUrl"], AttributeNames=["VisibilityTimeout"])
        assert attrs["Attributes"]["VisibilityTimeout"] == "60"


@pytest.mark.parametrize("args, message", [
    (["--parameter-overrides", "Env=qa"], "template.yaml:4: Parameters.Env: Parameter 'Env' must be one of AllowedValues"),
    (["--parameter-overrides", "Retention=5"],
     "template.yaml:11: Parameters.Retention: Parameter 'Retention' must be a number not less than 60"),
    (["--parameter-overrides", "Retention=many"],
     "template.yaml:11: Parameters.Retention: Parameter 'Retention' must be a number not many"),
    (["--parameter-overrides", "Colour=red"], "Parameters: [Colour] do not exist in the template"),
])
def test_validate_reports_parameter_errors_with_file_and_line(tmp_path, args, message):
    template = write(tmp_path, STACK)
    result = unkai_cli("validate", str(template), *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_samconfig_gives_the_stack_name_and_parameter_defaults(tmp_path):
    template = write(tmp_path, STACK)
    (template.parent / "samconfig.toml").write_text(
        'version = 0.1\n[default.deploy.parameters]\nstack_name = "shop"\n'
        'parameter_overrides = "Env=prd Names=\\"x,y\\""\n')
    result = unkai_cli("validate", str(template))
    assert result.returncode == 0, result.stderr
    assert "stack shop in us-east-1, 6 resources" in result.stdout  # OnlyInPrd is in
    result = unkai_cli("validate", str(template), "--parameter-overrides", "Env=dev")
    assert "stack shop in us-east-1, 5 resources" in result.stdout  # the command line wins


def test_validate_lists_what_would_be_deployed(tmp_path):
    template = write(tmp_path, STACK)
    result = unkai_cli("validate", cwd=template.parent)
    assert result.returncode == 0, result.stderr
    assert "is a valid template: stack app in us-east-1, 5 resources" in result.stdout
    assert "Alarm" in result.stdout and "not supported by unkai" in result.stdout


@pytest.mark.parametrize("body, message", [
    ("Parameters:\n  Size:\n    Type: Number\nResources:\n  Q:\n    Type: AWS::SQS::Queue\n",
     "template.yaml:2: Parameters.Size: Parameters: [Size] must have values"),
    ("Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      DelaySeconds: !GetAtt Nope.Arn\n",
     "template.yaml:5: Resources.Q: Template error: instance of Fn::GetAtt references undefined resource Nope"),
    ("Resources:\n  A:\n    Type: AWS::SQS::Queue\n    DependsOn: B\n  B:\n    Type: AWS::SQS::Queue\n"
     "    DependsOn: A\n", "Circular dependency between resources: [A, B]"),
    ("Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !ImportValue shared\n",
     "template.yaml:5: Resources.Q: Fn::ImportValue is not supported"),
    ("Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Bogus x\n",
     "template.yaml:5: unknown tag !Bogus"),
    ("Resources:\n  Q:\n    Type: AWS::SQS::Queue\n  Q:\n    Type: AWS::SQS::Queue\n",
     "template.yaml:4: duplicate key 'Q'"),
    ("Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      Handler: x.y\n",
     "needs the SAM transform"),
    ("Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n"
     "    Properties:\n      CodeUri: ./missing\n      Handler: app.handler\n      Runtime: python3.12\n",
     "template.yaml:6: Resources.Fn: CodeUri ./missing does not exist"),
    ("Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n"
     "    Properties:\n      InlineCode: x\n      Handler: app.handler\n      Runtime: python3.12\n"
     "      Events:\n        Tick:\n          Type: Schedule\n",
     "template.yaml:10: Resources.Fn: Resource with id [FnTick] is invalid. Missing required property 'Schedule'."),
])
def test_template_errors_name_file_resource_and_line(tmp_path, body, message):
    template = write(tmp_path, body)
    result = unkai_cli("validate", str(template))
    assert result.returncode == 1
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_up_refuses_a_broken_template(tmp_path):
    template = write(tmp_path, "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n"
                               "      QueueName: !Ref Missing\n")
    with pytest.raises(RuntimeError) as exc:
        UnkaiServer(tmp_path / "state", str(template)).start()
    assert "template.yaml:5: Resources.Q: Template format error: Unresolved resource dependencies [Missing]" \
        in str(exc.value)
    assert "Traceback" not in str(exc.value)


EDITABLE = textwrap.dedent("""\
    Resources:
      Keep:
        Type: AWS::SQS::Queue
        Properties:
          QueueName: keep
          VisibilityTimeout: 30
      Drop:
        Type: AWS::SQS::Queue
        Properties:
          QueueName: drop
    Outputs:
      Keep:
        Value: !GetAtt Keep.Arn
    """)


def test_editing_the_template_reapplies_it_keeping_data(tmp_path):
    template = write(tmp_path, EDITABLE)
    with UnkaiServer(tmp_path / "state", str(template)) as server:
        sqs = server.client("sqs")
        keep = sqs.get_queue_url(QueueName="keep")["QueueUrl"]
        sqs.send_message(QueueUrl=keep, MessageBody="still here")
        edited = EDITABLE.replace("VisibilityTimeout: 30", "VisibilityTimeout: 45").replace(
            "QueueName: drop", "QueueName: added").replace("  Drop:", "  Added:")
        template.write_text(edited)
        cfn = server.client("cloudformation")
        wait_for(lambda: cfn.describe_stacks(StackName="app")["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE")
        server.drain()
        names = {u.rsplit("/", 1)[1] for u in sqs.list_queues()["QueueUrls"]}
        assert names == {"keep", "added"}
        attrs = sqs.get_queue_attributes(QueueUrl=keep, AttributeNames=["VisibilityTimeout"])["Attributes"]
        assert attrs["VisibilityTimeout"] == "45"
        got = sqs.receive_message(QueueUrl=keep)["Messages"]
        assert [m["Body"] for m in got] == ["still here"]
        resources = {r["LogicalResourceId"]: r["ResourceStatus"]
                     for r in cfn.list_stack_resources(StackName="app")["StackResourceSummaries"]}
        assert resources == {"Keep": "UPDATE_COMPLETE", "Added": "CREATE_COMPLETE"}
        # a broken edit is reported and changes nothing
        template.write_text(edited.replace("!GetAtt Keep.Arn", "!GetAtt Gone.Arn"))
        wait_for(lambda: "the edited template was not applied" in server.output())
        assert "Gone" in server.output()
        assert {u.rsplit("/", 1)[1] for u in sqs.list_queues()["QueueUrls"]} == {"keep", "added"}
    # a restart on the same state re-applies the template: nothing else changes, the message is kept
    template.write_text(edited)
    with UnkaiServer(tmp_path / "state", str(template.parent)) as server:
        before = server.client("cloudformation").describe_stacks(StackName="app")["Stacks"][0]
    with UnkaiServer(tmp_path / "state", str(template.parent)) as server:
        after = server.client("cloudformation").describe_stacks(StackName="app")["Stacks"][0]
        assert (after["StackStatus"], after["LastUpdatedTime"]) == ("UPDATE_COMPLETE", before["LastUpdatedTime"])
        sqs = server.client("sqs")
        keep = sqs.get_queue_url(QueueName="keep")["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=keep, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
        assert attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"


SAM_EDITABLE = textwrap.dedent("""\
    Transform: AWS::Serverless-2016-10-31
    Resources:
      Hello:
        Type: AWS::Serverless::Function
        Properties:
          FunctionName: edited-hello
          Runtime: python3.12
          Handler: index.handler
          Timeout: 3
          InlineCode: |
            import json, os
            def handler(event, context):
                return {"statusCode": 200, "body": json.dumps([event["rawPath"], os.environ.get("GREETING")])}
          Events:
            Get:
              Type: HttpApi
              Properties: {Path: /hello, Method: GET}
      Other:
        Type: AWS::Serverless::Function
        Properties:
          FunctionName: edited-other
          Runtime: python3.12
          Handler: index.handler
          InlineCode: "def handler(event, context):\\n    return {'statusCode': 200, 'body': event['path']}\\n"
          Events:
            Get:
              Type: HttpApi
              Properties: {Path: /other, Method: GET}
            Rest:
              Type: Api
              Properties: {Path: /rest, Method: GET}
    Outputs:
      Url:
        Value: !Sub "https://${ServerlessHttpApi}.execute-api.${AWS::Region}.amazonaws.com"
      RestUrl:
        Value: !Sub "https://${ServerlessRestApi}.execute-api.${AWS::Region}.amazonaws.com/Prod"
    """)


def test_sam_edits_of_a_functions_settings_and_of_its_events_both_reach_the_stack(tmp_path):
    """An edit of only a function's settings re-uses the last SAM translation (unkai/template/sam.py);
    the result must be what translating again gives, and any other edit still translates again."""
    template = write(tmp_path, SAM_EDITABLE)
    with UnkaiServer(tmp_path / "state", str(template)) as server:
        lam = server.client("lambda")
        url, rest_url = outputs(server)["Url"], outputs(server)["RestUrl"]

        def apply(text: str) -> None:
            applied = server.output().count("unkai: stack app UPDATE_COMPLETE")
            template.write_text(text)
            wait_for(lambda: server.output().count("unkai: stack app UPDATE_COMPLETE") > applied)
            server.drain()

        settings = SAM_EDITABLE.replace("Timeout: 3", "Timeout: 7\n      Environment: {Variables: {GREETING: hi}}")
        apply(settings)
        config = lam.get_function_configuration(FunctionName="edited-hello")
        assert (config["Timeout"], config["Environment"]["Variables"]) == (7, {"GREETING": "hi"})
        assert lam.get_function_configuration(FunctionName="edited-other")["Timeout"] == 3  # SAM's default
        with urllib.request.urlopen(url + "/hello") as resp:
            assert json.loads(resp.read()) == ["/hello", "hi"]
        moved = settings.replace("Path: /hello", "Path: /greeting").replace("Path: /rest", "Path: /moved")
        apply(moved)  # events: SAM runs again; the APIs are re-imported in place, their URLs kept
        assert outputs(server) == {"Url": url, "RestUrl": rest_url}
        with urllib.request.urlopen(url + "/greeting") as resp:
            assert json.loads(resp.read()) == ["/greeting", "hi"]
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url + "/hello")
        with urllib.request.urlopen(rest_url + "/moved") as resp:
            assert resp.read() == b"/moved"
        apply(moved.replace("Timeout: 7\n      Environment: {Variables: {GREETING: hi}}", "Timeout: 3"))  # removed again
        config = lam.get_function_configuration(FunctionName="edited-hello")
        assert config["Timeout"] == 3 and not (config.get("Environment") or {}).get("Variables")


FUNCTIONS = textwrap.dedent("""\
    Transform: AWS::Serverless-2016-10-31
    Globals:
      Function:
        Runtime: python3.12
        Handler: app.handler
    Resources:
      Good:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: good/
      Bad:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: bad/
      Queue:
        Type: AWS::SQS::Queue
        Properties:
          QueueName: still-created
    """)


def test_requirements_are_installed_once_per_change(tmp_path):
    template = write(tmp_path, FUNCTIONS)
    for name in ("good", "bad"):
        (template.parent / name).mkdir()
        (template.parent / name / "app.py").write_text("def handler(event, context):\n    return 1\n")
    make_wheel(template.parent / "good")
    (template.parent / "good" / "requirements.txt").write_text("./tinypkg-1.0-py3-none-any.whl\n")
    (template.parent / "bad" / "requirements.txt").write_text("./no-such-1.0-py3-none-any.whl\n")
    state = tmp_path / "state"
    with UnkaiServer(state, str(template)) as server:
        log = server.output()
        assert "unkai: Good: installing " in log and "good/requirements.txt with " in log
        assert "Resources.Bad: requirements not installed, function not created: pip install -r" in log
        assert server.client("sqs").get_queue_url(QueueName="still-created")  # the rest of the stack is up
        cfn = server.client("cloudformation")
        bad = cfn.describe_stack_resource(StackName="app", LogicalResourceId="Bad")["StackResourceDetail"]
        assert bad["ResourceStatus"] == "CREATE_FAILED"
        assert "no-such-1.0-py3-none-any.whl" in bad["ResourceStatusReason"]
    installed = list((state / "build" / "app" / "Good").glob("*/tinypkg/__init__.py"))
    assert len(installed) == 1 and installed[0].read_text() == "VALUE = 42\n"
    before = installed[0].stat().st_mtime_ns
    with UnkaiServer(state, str(template)) as server:  # unchanged: taken from the cache
        assert server.output().count("Good: installing") == 1  # only the first run's line
    assert installed[0].stat().st_mtime_ns == before


def test_a_refused_update_keeps_the_resource_and_its_dependents(tmp_path):
    good = textwrap.dedent("""\
        Resources:
          Dlq:
            Type: AWS::SQS::Queue
            Properties:
              QueueName: dead
              VisibilityTimeout: 30
          Jobs:
            Type: AWS::SQS::Queue
            Properties:
              QueueName: jobs
              RedrivePolicy: {deadLetterTargetArn: !GetAtt Dlq.Arn, maxReceiveCount: 2}
        Outputs:
          DlqArn:
            Value: !GetAtt Dlq.Arn
        """)
    template = write(tmp_path, good)
    state = tmp_path / "state"
    with UnkaiServer(state, str(template)):
        pass
    template.write_text(good.replace("VisibilityTimeout: 30", "VisibilityTimeout: 99999"))
    with UnkaiServer(state, str(template)) as server:
        assert "Resources.Dlq" in server.output() and "VisibilityTimeout" in server.output()
        cfn = server.client("cloudformation")
        stack = cfn.describe_stacks(StackName="app")["Stacks"][0]
        assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
        assert stack["Outputs"] == [{"OutputKey": "DlqArn", "OutputValue": "arn:aws:sqs:us-east-1:000000000000:dead"}]
        statuses = {r["LogicalResourceId"]: r["ResourceStatus"]
                    for r in cfn.list_stack_resources(StackName="app")["StackResourceSummaries"]}
        assert statuses == {"Dlq": "UPDATE_FAILED", "Jobs": "CREATE_COMPLETE"}
        sqs = server.client("sqs")
        url = sqs.get_queue_url(QueueName="dead")["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
        assert attrs["VisibilityTimeout"] == "30"
    template.write_text(good.replace("VisibilityTimeout: 30", "VisibilityTimeout: 60"))
    with UnkaiServer(state, str(template)) as server:
        cfn = server.client("cloudformation")
        assert cfn.describe_stacks(StackName="app")["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
        sqs = server.client("sqs")
        url = sqs.get_queue_url(QueueName="dead")["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
        assert attrs["VisibilityTimeout"] == "60"
