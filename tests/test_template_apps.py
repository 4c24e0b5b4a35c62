"""What public SAM applications do and unkai once refused (issue 21): one small app brought
up once with `unkai up`, each part reproducing one failure, checked through real clients."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.config import Config
from template_helpers import make_wheel

from unkai.testing import UnkaiServer

APP = textwrap.dedent("""\
    Transform: AWS::Serverless-2016-10-31
    Parameters:
      Port:
        Type: Number
        Default: 8080
    Resources:
      Uploads:                       # item 1: no Properties at all
        Type: AWS::S3::Bucket
      Api:
        Type: AWS::Serverless::HttpApi
      Table:
        Type: AWS::DynamoDB::Table
        Properties:
          AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
          KeySchema: [{AttributeName: pk, KeyType: HASH}]
          BillingMode: PAY_PER_REQUEST
          StreamSpecification: {StreamViewType: NEW_IMAGE}
      Echo:
        Type: AWS::Serverless::Function
        Properties:
          FunctionName: echo
          Runtime: python3.12
          Handler: app.handler
          CodeUri: src/app.py        # item 6: a single file
          Layers: [!Ref Common]
          Environment:
            Variables:               # item 2: not strings
              PORT: 8080
              DEBUG: false
              P: !Ref Port
              BUCKET: !Ref Uploads
              LABEL: !Select [3, !Split ["/", !GetAtt Table.StreamArn]]   # item 4
          Events:
            Root:                    # item 5: no Path/Method is the $default route
              Type: HttpApi
              Properties:
                ApiId: !Ref Api
      Included:                      # item 3: an OpenAPI definition from AWS::Include
        Type: AWS::Serverless::HttpApi
        Properties:
          DefinitionBody:
            Fn::Transform:
              Name: AWS::Include
              Parameters:
                Location: api/openapi.yaml
      IncludedPermission:
        Type: AWS::Lambda::Permission
        Properties:
          FunctionName: !Ref Echo
          Action: lambda:InvokeFunction
          Principal: apigateway.amazonaws.com
      Rest:                          # item 10: an integration response overriding status and a header
        Type: AWS::Serverless::Api
        Properties:
          StageName: prod
          DefinitionBody:
            swagger: "2.0"
            info: {title: rest, version: "1"}
            paths:
              /teapot:
                get:
                  responses: {"200": {description: ok}}
                  x-amazon-apigateway-integration:
                    type: mock
                    requestTemplates: {application/json: '{"statusCode": 200}'}
                    responses:
                      default:
                        statusCode: "200"
                        responseTemplates:
                          application/json: |
                            #set($context.responseOverride.status = 418)
                            #set($context.responseOverride.header.X-Brew = "tea")
                            {"brewing": true}
      Old:                           # item 19: python3.9 gets an SDK that runs on it
        Type: AWS::Serverless::Function
        Properties:
          FunctionName: old
          Runtime: python3.9
          Handler: index.handler
          Timeout: 60
          InlineCode: |
            import sys, boto3
            def handler(event, context):
                sqs = boto3.client("sqs")
                return ["%d.%d" % sys.version_info[:2], sqs.list_queues().get("QueueUrls", [])[:1] != []]
      Drops:                         # item 13: S3 events to EventBridge
        Type: AWS::S3::Bucket
        Properties:
          NotificationConfiguration:
            EventBridgeConfiguration:
              EventBridgeEnabled: true
      Seen:
        Type: AWS::SQS::Queue
      OnDrop:
        Type: AWS::Events::Rule
        Properties:
          EventPattern:
            source: [aws.s3]
            detail-type: [Object Created, Object Deleted]
            detail:
              bucket:
                name: [!Ref Drops]
          Targets:
            - Id: seen
              Arn: !GetAtt Seen.Arn
      Inbox:
        Type: AWS::SQS::Queue
      ServiceApi:                    # item 9: a first-class SQS integration from OpenAPI
        Type: AWS::Serverless::HttpApi
        Properties:
          DefinitionBody:
            openapi: "3.0.1"
            info: {title: service, version: "1"}
            paths:
              /send:
                post:
                  x-amazon-apigateway-integration:
                    type: aws_proxy
                    integrationSubtype: SQS-SendMessage
                    credentials: !Sub arn:aws:iam::${AWS::AccountId}:role/api-sqs
                    connectionType: INTERNET
                    payloadFormatVersion: "1.0"
                    requestParameters:
                      QueueUrl: !Ref Inbox
                      MessageBody: $request.body.message
      Items:                         # the kinds of apps public SAM repositories hold
        Type: AWS::Serverless::SimpleTable
      ItemsFn:                       # API -> Lambda -> DynamoDB
        Type: AWS::Serverless::Function
        Properties:
          Runtime: python3.12
          Handler: index.handler
          Timeout: 60
          Policies: [DynamoDBCrudPolicy: {TableName: !Ref Items}]
          Environment: {Variables: {TABLE: !Ref Items}}
          InlineCode: |
            import json, os, boto3
            table = boto3.resource("dynamodb").Table(os.environ["TABLE"])
            def handler(event, context):
                if event["httpMethod"] == "POST":
                    table.put_item(Item=json.loads(event["body"]))
                    return {"statusCode": 201, "body": "{}"}
                item = table.get_item(Key={"id": event["pathParameters"]["id"]}).get("Item")
                return {"statusCode": 200 if item else 404, "body": json.dumps(item)}
          Events:
            Put: {Type: Api, Properties: {Path: /items, Method: post}}
            Get: {Type: Api, Properties: {Path: "/items/{id}", Method: get}}
      Photos:
        Type: AWS::S3::Bucket
      Work:
        Type: AWS::SQS::Queue
        Properties:
          VisibilityTimeout: 60
          RedrivePolicy: {deadLetterTargetArn: !GetAtt WorkDlq.Arn, maxReceiveCount: 1}
      WorkDlq:
        Type: AWS::SQS::Queue
      Fanout:
        Type: AWS::SNS::Topic
      FanoutCopy:
        Type: AWS::SQS::Queue
      FanoutCopySubscription:
        Type: AWS::SNS::Subscription
        Properties:
          TopicArn: !Ref Fanout
          Protocol: sqs
          Endpoint: !GetAtt FanoutCopy.Arn
          RawMessageDelivery: true
      Sink:                          # S3, SQS (partial batch failures), SNS and a schedule -> Lambda
        Type: AWS::Serverless::Function
        Properties:
          Runtime: python3.12
          Handler: index.handler
          Timeout: 60
          Environment: {Variables: {TABLE: !Ref Items}}
          InlineCode: |
            import os, boto3
            table = boto3.resource("dynamodb").Table(os.environ["TABLE"])
            def handler(event, context):
                if event.get("source") == "aws.events":
                    table.put_item(Item={"id": "schedule:" + event["time"]})
                    return
                failures = []
                for record in event["Records"]:
                    if "s3" in record:
                        table.put_item(Item={"id": "s3:" + record["s3"]["object"]["key"]})
                    elif "Sns" in record:
                        table.put_item(Item={"id": "sns:" + record["Sns"]["Message"]})
                    elif record["body"] == "bad":
                        failures.append({"itemIdentifier": record["messageId"]})
                    else:
                        table.put_item(Item={"id": "sqs:" + record["body"]})
                return {"batchItemFailures": failures}
          Events:
            Upload: {Type: S3, Properties: {Bucket: !Ref Photos, Events: "s3:ObjectCreated:*"}}
            Queue:
              Type: SQS
              Properties: {Queue: !GetAtt Work.Arn, BatchSize: 10, FunctionResponseTypes: [ReportBatchItemFailures]}
            Topic: {Type: SNS, Properties: {Topic: !Ref Fanout}}
            Hourly: {Type: Schedule, Properties: {Schedule: rate(1 hour)}}
      Common:                        # item 7: a layer built from requirements.txt
        Type: AWS::Serverless::LayerVersion
        Properties:
          ContentUri: layer/
          CompatibleRuntimes: [python3.12]
        Metadata:
          BuildMethod: python3.12
      Inline:                        # item 8: cfnresponse for inline code
        Type: AWS::Serverless::Function
        Properties:
          FunctionName: inline
          Runtime: python3.12
          Handler: index.handler
          InlineCode: |
            import cfnresponse
            def handler(event, context):
                if event.get("fail"):
                    raise ValueError("asked to fail")
                if event.get("id"):
                    return context.aws_request_id
                return [cfnresponse.SUCCESS, cfnresponse.FAILED]
    Outputs:
      Url:
        Value: !Sub "https://${Api}.execute-api.${AWS::Region}.amazonaws.com/"
      IncludedId:
        Value: !Ref Included
      RestId:
        Value: !Ref Rest
      Uploads:
        Value: !Ref Uploads
      Drops:
        Value: !Ref Drops
      Seen:
        Value: !Ref Seen
      Inbox:
        Value: !Ref Inbox
      ItemsApi:
        Value: !Sub "https://${ServerlessRestApi}.execute-api.${AWS::Region}.amazonaws.com/Prod/items"
      Items:
        Value: !Ref Items
      TableName:
        Value: !Ref Table
      Photos:
        Value: !Ref Photos
      Work:
        Value: !Ref Work
      WorkDlq:
        Value: !Ref WorkDlq
      Fanout:
        Value: !Ref Fanout
      FanoutCopy:
        Value: !Ref FanoutCopy
      ServiceApiId:
        Value: !Ref ServiceApi
    """)

OPENAPI = textwrap.dedent("""    openapi: "3.0.1"
    info: {title: included, version: "1"}
    paths:
      /hello:
        get:
          x-amazon-apigateway-integration:
            type: aws_proxy
            httpMethod: POST
            payloadFormatVersion: "2.0"
            uri: !Sub "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Echo.Arn}/invocations"
    """)

HANDLER = textwrap.dedent("""\
    import json, os
    import common, tinypkg

    def handler(event, context):
        env = {k: os.environ[k] for k in ("PORT", "DEBUG", "P", "BUCKET", "LABEL")}
        return {"statusCode": 200, "body": json.dumps({"env": env, "route": event.get("routeKey"),
                                                       "layer": [common.NAME, tinypkg.VALUE],
                                                       "files": sorted(os.listdir(os.path.dirname(__file__)))})}
    """)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("apps")
    app = root / "app"
    (app / "src").mkdir(parents=True)
    (app / "layer").mkdir()
    (app / "template.yaml").write_text(APP)
    (app / "api").mkdir()
    (app / "api" / "openapi.yaml").write_text(OPENAPI)
    (app / "src" / "app.py").write_text(HANDLER)
    (app / "src" / "other.py").write_text("raise SystemExit('not part of the function')\n")
    (app / "layer" / "common.py").write_text("NAME = 'common'\n")
    make_wheel(app / "layer", value=7)
    (app / "layer" / "requirements.txt").write_text("./tinypkg-1.0-py3-none-any.whl\n")
    server = UnkaiServer(root / "state", str(app)).start(timeout=120)  # pip installs the layer's requirements
    try:
        yield server
    finally:
        server.stop()


def _outputs(server: UnkaiServer) -> dict[str, str]:
    stack = server.client("cloudformation").describe_stacks(StackName="app")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", server.output()
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def test_the_app_comes_up_and_its_api_answers_on_the_default_route(app):
    with urllib.request.urlopen(_outputs(app)["Url"] + "/any/path") as response:  # the output as it is
        body = json.loads(response.read())
    assert body["route"] == "$default"
    table = app.client("dynamodb").describe_table(TableName=_outputs(app)["TableName"])
    label = table["Table"]["LatestStreamArn"].split("/")[3]
    bucket = _outputs(app)["Uploads"]
    assert body["env"] == {"PORT": "8080", "DEBUG": "false", "P": "8080", "BUCKET": bucket, "LABEL": label}
    assert body["layer"] == ["common", 7]


def test_an_included_openapi_definition_is_read_and_served(app):
    api_id = _outputs(app)["IncludedId"]
    with urllib.request.urlopen(f"{app.endpoint}/_unkai/execute-api/{api_id}/hello") as response:
        assert json.loads(response.read())["route"] == "GET /hello"


def test_an_integration_response_template_overrides_status_and_headers(app):
    api_id = _outputs(app)["RestId"]
    with pytest.raises(urllib.error.HTTPError) as got:
        urllib.request.urlopen(f"{app.endpoint}/_unkai/execute-api/{api_id}/prod/teapot")
    assert got.value.code == 418
    assert got.value.headers["X-Brew"] == "tea"
    assert json.loads(got.value.read()) == {"brewing": True}


def test_bucket_events_reach_eventbridge(app):
    out = _outputs(app)
    s3, sqs = app.client("s3"), app.client("sqs")
    s3.put_object(Bucket=out["Drops"], Key="in/a.txt", Body=b"hello")
    s3.delete_object(Bucket=out["Drops"], Key="in/a.txt")
    app.drain(timeout=120)
    events = []
    while len(events) < 2:
        got = sqs.receive_message(QueueUrl=out["Seen"], MaxNumberOfMessages=10, WaitTimeSeconds=5)["Messages"]
        events += [json.loads(m["Body"]) for m in got]
    created, deleted = sorted(events, key=lambda e: e["detail-type"])
    assert created["source"] == "aws.s3" and created["detail-type"] == "Object Created"
    assert created["resources"] == [f"arn:aws:s3:::{out['Drops']}"]
    assert created["detail"]["object"]["key"] == "in/a.txt" and created["detail"]["object"]["size"] == 5
    assert created["detail"]["reason"] == "PutObject" and created["detail"]["bucket"] == {"name": out["Drops"]}
    assert deleted["detail-type"] == "Object Deleted"
    assert deleted["detail"]["deletion-type"] == "Permanently Deleted"


def test_an_http_api_sends_to_sqs_through_a_service_integration(app):
    out = _outputs(app)
    request = urllib.request.Request(f"{app.endpoint}/_unkai/execute-api/{out['ServiceApiId']}/send",
                                     data=b'{"message": "hello queue"}', method="POST",
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request) as response:
        answer = json.loads(response.read())
    message_id = answer["SendMessageResponse"]["SendMessageResult"]["MessageId"]
    got = app.client("sqs").receive_message(QueueUrl=out["Inbox"], WaitTimeSeconds=5)["Messages"]
    assert [(m["MessageId"], m["Body"]) for m in got] == [(message_id, "hello queue")]


def test_api_lambda_dynamodb_app(app):
    items = _outputs(app)["ItemsApi"]
    request = urllib.request.Request(items, data=b'{"id": "a1", "name": "apple"}', method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.status == 201
    with urllib.request.urlopen(items + "/a1") as response:
        assert json.loads(response.read()) == {"id": "a1", "name": "apple"}


def test_s3_sqs_sns_and_schedule_events_reach_one_function(app):
    out = _outputs(app)
    app.client("s3").put_object(Bucket=out["Photos"], Key="cat.jpg", Body=b"meow")
    sqs = app.client("sqs")
    sqs.send_message_batch(QueueUrl=out["Work"], Entries=[{"Id": "1", "MessageBody": "good"},
                                                          {"Id": "2", "MessageBody": "bad"}])
    app.client("sns").publish(TopicArn=out["Fanout"], Message="fan")
    app.drain(timeout=120)  # before moving the clock: in-flight messages would come back at once
    app.advance(3600)
    app.drain(timeout=120)
    table = app.client("dynamodb")
    ids = {i["id"]["S"] for i in table.scan(TableName=out["Items"])["Items"]}
    assert {"s3:cat.jpg", "sqs:good", "sns:fan"} <= ids
    assert any(i.startswith("schedule:") for i in ids)
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=out["FanoutCopy"], WaitTimeSeconds=5)["Messages"]] == \
        ["fan"]
    app.advance(61)  # the failed item comes back after the visibility timeout, past maxReceiveCount: to the DLQ
    app.drain(timeout=120)
    dead = sqs.receive_message(QueueUrl=out["WorkDlq"], WaitTimeSeconds=5, MaxNumberOfMessages=10).get("Messages", [])
    assert [m["Body"] for m in dead] == ["bad"]


def test_a_macro_is_refused_by_name(tmp_path):
    (tmp_path / "template.yaml").write_text(textwrap.dedent("""\
        Resources:
          Q:
            Type: AWS::SQS::Queue
            Properties:
              Fn::Transform:
                Name: MyTagger
        """))
    result = _validate(tmp_path / "template.yaml")
    assert result.returncode == 1
    assert "template.yaml:5: Resources.Q: Fn::Transform of the macro 'MyTagger'" in result.stderr


def test_a_single_file_code_uri_is_the_whole_package(app):
    code = app.client("lambda").get_function(FunctionName="echo")["Configuration"]
    assert code["CodeSize"] > 0
    out = app.client("lambda").invoke(FunctionName="echo", Payload=b"{}")
    assert json.loads(json.loads(out["Payload"].read())["body"])["files"] == ["app.py"]  # not other.py


def test_inline_code_can_import_cfnresponse(app):
    out = app.client("lambda").invoke(FunctionName="inline", Payload=b"{}")
    assert json.loads(out["Payload"].read()) == ["SUCCESS", "FAILED"]


def _validate(template: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unkai", "validate", *args], cwd=template.parent,
                          capture_output=True, text=True, timeout=60)


OVERRIDES = textwrap.dedent("""\
    Parameters:
      A: {Type: String}
      B: {Type: String}
      C: {Type: String, Default: c}
    Conditions:
      Match: !And [!Equals [!Ref A, "1"], !Equals [!Ref B, "two words"], !Equals [!Ref C, "3"]]
    Resources:
      Q:
        Type: AWS::SQS::Queue
        Condition: Match
    """)


@pytest.mark.parametrize("args", [
    ["--parameter-overrides", "A=1", "B=two words", "ParameterKey=C,ParameterValue=3"],
    ["--parameter-overrides", "A=1 'B=two words' C=3"],
    ["--parameter-overrides", "A=1", "--parameter-overrides", 'B="two words"', "C=3"],
])
def test_parameter_overrides_in_every_form_sam_cli_takes(tmp_path, args):
    (tmp_path / "template.yaml").write_text(OVERRIDES)
    result = _validate(tmp_path / "template.yaml", *args)
    assert result.returncode == 0, result.stderr
    assert "1 resources" in result.stdout


def test_samconfig_yaml_and_global_parameters(tmp_path):
    (tmp_path / "template.yaml").write_text(OVERRIDES)
    (tmp_path / "samconfig.yaml").write_text(
        "version: 0.1\ndefault:\n  global:\n    parameters:\n      stack_name: shop\n"
        "  deploy:\n    parameters:\n      parameter_overrides:\n        - A=1\n        - B=two words\n        - C=3\n")
    result = _validate(tmp_path / "template.yaml")
    assert result.returncode == 0, result.stderr
    assert "stack shop in us-east-1, 1 resources" in result.stdout


def test_a_python39_function_imports_boto3_and_calls_unkai(app):
    from unkai.runtime.interpreters import interpreter_for

    if interpreter_for("python3.9") == sys.executable:
        pytest.skip("no Python 3.9 on this machine")
    out = app.client("lambda", config=Config(read_timeout=300, retries={"max_attempts": 1})).invoke(FunctionName="old", Payload=b"{}")
    assert json.loads(out["Payload"].read()) == ["3.9", True]
    assert "Runtime python3.9 was deprecated by AWS on 2025-12-15" in app.output()


def test_the_invoke_request_id_is_the_invocations_own(app):
    lam = app.client("lambda")
    out = lam.invoke(FunctionName="inline", Payload=b'{"id": true}', LogType="Tail")
    request_id = out["ResponseMetadata"]["RequestId"]
    assert json.loads(out["Payload"].read()) == request_id
    assert f"START RequestId: {request_id}" in base64.b64decode(out["LogResult"]).decode()
    failed = lam.invoke(FunctionName="inline", Payload=b'{"fail": true}')
    assert json.loads(failed["Payload"].read())["requestId"] == failed["ResponseMetadata"]["RequestId"]


@pytest.mark.parametrize("body, message", [
    ("  Q:\n    Type: AWS::SQS::Queue\n  R:\n    Type: AWS::SSM::Parameter\n    Properties:\n"
     "      Type: String\n      Value: !GetAtt Q.Arnn\n",
     "template.yaml:8: Resources.R: Template error: resource Q does not support attribute type Arnn in Fn::GetAtt"),
    ("  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      VisibilityTimeout: lots\n",
     "template.yaml:4: Resources.Q: Properties validation failed for resource Q with message: "
     "#/VisibilityTimeout: expected type: Integer, found: String"),
    ("  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      VisibilityTimout: 30\n",
     "#: extraneous key [VisibilityTimout] is not permitted"),
    ("  P:\n    Type: AWS::Lambda::Permission\n    Properties:\n      Action: lambda:InvokeFunction\n"
     "      Principal: s3.amazonaws.com\n", "#: required key [FunctionName] not found"),
])
def test_validate_runs_the_resource_schema_checks_deployment_runs(tmp_path, body, message):
    (tmp_path / "template.yaml").write_text("Resources:\n" + body)
    result = _validate(tmp_path / "template.yaml")
    assert result.returncode == 1, result.stdout
    assert message in result.stderr


ROLLBACK = textwrap.dedent("""\
    Resources:
      First:
        Type: AWS::SQS::Queue
        Properties:
          QueueName: first
          VisibilityTimeout: 30
      Second:
        Type: AWS::SQS::Queue
        Properties:
          QueueName: second
    Outputs:
      Timeout:
        Value: "30"
    """)


def test_a_failed_live_edit_is_rolled_back_leaving_the_stack_as_it_was(tmp_path):
    from template_helpers import wait_for

    (tmp_path / "app").mkdir()
    template = tmp_path / "app" / "template.yaml"
    template.write_text(ROLLBACK)
    with UnkaiServer(tmp_path / "state", str(template)) as server:
        sqs, cfn = server.client("sqs"), server.client("cloudformation")
        first = sqs.get_queue_url(QueueName="first")["QueueUrl"]
        sqs.send_message(QueueUrl=first, MessageBody="kept")
        edited = ROLLBACK.replace("VisibilityTimeout: 30", "VisibilityTimeout: 40").replace('"30"', '"40"')
        edited = edited.replace("  Second:", "  Added:\n    Type: AWS::SQS::Queue\n    Properties:\n"
                                "      QueueName: added\n  Second:")
        edited = edited.replace("QueueName: second", "QueueName: second\n      MessageRetentionPeriod: 5")
        template.write_text(edited)
        wait_for(lambda: cfn.describe_stacks(StackName="app")["Stacks"][0]["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE")
        stack = cfn.describe_stacks(StackName="app")["Stacks"][0]
        assert stack["Outputs"] == [{"OutputKey": "Timeout", "OutputValue": "30"}]
        assert "[Second]" in stack["StackStatusReason"]
        attrs = sqs.get_queue_attributes(QueueUrl=first, AttributeNames=["VisibilityTimeout"])["Attributes"]
        assert attrs["VisibilityTimeout"] == "30"
        assert [q.rsplit("/", 1)[1] for q in sqs.list_queues()["QueueUrls"]] == ["first", "second"]
        resources = {r["LogicalResourceId"]: r["ResourceStatus"]
                     for r in cfn.list_stack_resources(StackName="app")["StackResourceSummaries"]}
        assert resources == {"First": "UPDATE_COMPLETE", "Second": "UPDATE_FAILED"}
        assert [m["Body"] for m in sqs.receive_message(QueueUrl=first)["Messages"]] == ["kept"]
        assert "the edit was not applied" in server.output()
