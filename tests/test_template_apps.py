"""What public SAM applications do and unkai once refused (issue 21): one small app brought
up once with `unkai up`, each part reproducing one failure, checked through real clients."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest
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
                return [cfnresponse.SUCCESS, cfnresponse.FAILED]
    Outputs:
      Url:
        Value: !Sub "https://${Api}.execute-api.${AWS::Region}.amazonaws.com/"
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
    (app / "src" / "app.py").write_text(HANDLER)
    (app / "src" / "other.py").write_text("raise SystemExit('not part of the function')\n")
    (app / "layer" / "common.py").write_text("NAME = 'common'\n")
    make_wheel(app / "layer", value=7)
    (app / "layer" / "requirements.txt").write_text("./tinypkg-1.0-py3-none-any.whl\n")
    with UnkaiServer(root / "state", str(app)) as server:
        yield server


def _outputs(server: UnkaiServer) -> dict[str, str]:
    stack = server.client("cloudformation").describe_stacks(StackName="app")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", server.output()
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def test_the_app_comes_up_and_its_api_answers_on_the_default_route(app):
    api_id = _outputs(app)["Url"].split("//")[1].split(".")[0]
    with urllib.request.urlopen(f"{app.endpoint}/_unkai/execute-api/{api_id}/any/path") as response:
        body = json.loads(response.read())
    assert body["route"] == "$default"
    table = app.client("dynamodb").describe_table(TableName=app.client("dynamodb").list_tables()["TableNames"][0])
    label = table["Table"]["LatestStreamArn"].split("/")[3]
    bucket = app.client("s3").list_buckets()["Buckets"][0]["Name"]
    assert body["env"] == {"PORT": "8080", "DEBUG": "false", "P": "8080", "BUCKET": bucket, "LABEL": label}
    assert body["layer"] == ["common", 7]


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
