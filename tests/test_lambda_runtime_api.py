"""Issue 21 item 18: what AWS's runtimes provide. Custom runtimes (``provided.al2023``: a
``bootstrap`` executable speaking the Lambda Runtime API over ``AWS_LAMBDA_RUNTIME_API``),
response streaming (InvokeWithResponseStream, function URLs in RESPONSE_STREAM mode), and
the Python runtime's ``pip``, boto3 and ``AWS_LAMBDA_*`` variables. Real boto3 against a real
unkai; the bootstraps are small Python programs using only http.client."""

from __future__ import annotations

import io
import json
import sys
import textwrap
import urllib.request
import uuid
import zipfile

import pytest
from botocore.exceptions import ClientError
from lambda_code import ROLE, call, deploy

# A custom runtime, as AWS's tutorial writes one: loop on invocation/next and answer.
BOOTSTRAP = """#!{python}
import http.client, json, os, sys

api = os.environ["AWS_LAMBDA_RUNTIME_API"]
host, port = api.split(":")
conn = http.client.HTTPConnection(host, int(port))
{init}
print("bootstrap started with handler", os.environ.get("_HANDLER"), flush=True)
while True:
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    resp = conn.getresponse()
    event = json.loads(resp.read() or b"{{}}")
    rid = resp.getheader("Lambda-Runtime-Aws-Request-Id")
    base = "/2018-06-01/runtime/invocation/%s/" % rid
    if event.get("rawPath") == "/streamed" or event.get("path") == "/streamed":
        prelude = json.dumps({{"statusCode": 201, "headers": {{"x-made-by": "stream"}}, "cookies": ["a=1"]}})
        event = {{"stream": [prelude, "\\x00" * 8, "hello ", "world"],
                 "type": "application/vnd.awslambda.http-integration-response"}}
    if event.get("fail"):
        body = json.dumps({{"errorMessage": "told to fail", "errorType": "Custom.Failure"}})
        conn.request("POST", base + "error", body, {{"Lambda-Runtime-Function-Error-Type": "Custom.Failure"}})
        conn.getresponse().read()
        continue
    if event.get("exit"):
        sys.exit(3)
    if "stream" in event:
        conn.putrequest("POST", base + "response")
        conn.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.putheader("Content-Type", event.get("type", "text/plain"))
        conn.putheader("Trailer", "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body")
        conn.endheaders()
        for part in event["stream"]:
            data = part.encode("latin-1")
            conn.send(b"%x\\r\\n%s\\r\\n" % (len(data), data))
        if event.get("stream_error"):
            import base64
            err = base64.b64encode(json.dumps({{"errorMessage": "broke mid-stream", "errorType": "Stream.Broke"}}).encode())
            conn.send(b"0\\r\\nLambda-Runtime-Function-Error-Type: Stream.Broke\\r\\n"
                      b"Lambda-Runtime-Function-Error-Body: " + err + b"\\r\\n\\r\\n")
        else:
            conn.send(b"0\\r\\n\\r\\n")
        conn.getresponse().read()
        continue
    print("handling", rid, flush=True)
    answer = {{"echo": event, "request_id": rid,
              "arn": resp.getheader("Lambda-Runtime-Invoked-Function-Arn"),
              "deadline": resp.getheader("Lambda-Runtime-Deadline-Ms"),
              "env": {{k: v for k, v in os.environ.items() if k.startswith(("AWS_LAMBDA_", "_HANDLER", "LAMBDA_"))}},
              "execution_env": os.environ.get("AWS_EXECUTION_ENV"), "cwd": os.getcwd()}}
    conn.request("POST", base + "response", json.dumps(answer))
    conn.getresponse().read()
"""

INIT_FAILS = """
conn.request("POST", "/2018-06-01/runtime/init/error",
             json.dumps({"errorMessage": "no config", "errorType": "Custom.InitFailed"}),
             {"Lambda-Runtime-Function-Error-Type": "Custom.InitFailed"})
conn.getresponse().read()
sys.exit(1)
"""


def bootstrap_zip(init: str = "", extra: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        archive.writestr(info, BOOTSTRAP.format(python=sys.executable, init=init))
        for name, text in (extra or {}).items():
            archive.writestr(name, text)
    return buf.getvalue()


def custom(lam, code: bytes, **config) -> str:
    name = f"custom-{uuid.uuid4().hex[:8]}"
    lam.create_function(FunctionName=name, Runtime="provided.al2023", Role=ROLE, Handler="my.handler",
                        Code={"ZipFile": code}, **config)
    return name


@pytest.fixture(scope="module")
def lam(unkai):
    return unkai.client("lambda")


@pytest.fixture(scope="module")
def echo(lam):
    return custom(lam, bootstrap_zip())


def test_a_custom_runtime_takes_events_from_the_runtime_api_and_answers(lam, unkai, echo):
    resp, payload = call(lam, echo, {"hello": "world"})
    assert "FunctionError" not in resp, payload
    assert payload["echo"] == {"hello": "world"}
    # the Runtime API's request id is the invocation's: the Invoke answer's x-amzn-RequestId
    assert payload["request_id"] == resp["ResponseMetadata"]["RequestId"]
    assert payload["arn"].endswith(f":function:{echo}")
    assert int(payload["deadline"]) > 0
    env = payload["env"]
    host, port = env["AWS_LAMBDA_RUNTIME_API"].split(":")
    assert host == "127.0.0.1" and int(port) > 0
    assert env["_HANDLER"] == "my.handler" and env["AWS_LAMBDA_FUNCTION_NAME"] == echo
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128" and env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{echo}"
    assert payload["execution_env"] is None  # an OS-only runtime has no AWS_EXECUTION_ENV
    assert payload["cwd"] == env["LAMBDA_TASK_ROOT"]
    # warm: the same bootstrap process takes the next event
    _, again = call(lam, echo, {"n": 2})
    assert again["env"]["AWS_LAMBDA_LOG_STREAM_NAME"] == env["AWS_LAMBDA_LOG_STREAM_NAME"]
    logs = unkai.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{echo}")["events"]
    text = "".join(e["message"] for e in logs)
    assert "bootstrap started with handler my.handler" in text
    assert f"handling {payload['request_id']}" in text
    assert f"REPORT RequestId: {payload['request_id']}" in text


def test_a_custom_runtime_error_is_the_function_error(lam, echo):
    resp, payload = call(lam, echo, {"fail": True})
    assert resp["FunctionError"] == "Unhandled"
    assert payload == {"errorMessage": "told to fail", "errorType": "Custom.Failure"}


def test_a_runtime_that_exits_mid_invocation_is_a_runtime_exit_error(lam, echo):
    resp, payload = call(lam, echo, {"exit": True})
    assert resp["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in payload["errorMessage"]
    _, fine = call(lam, echo, {"after": "exit"})  # a new environment takes the next event
    assert fine["echo"] == {"after": "exit"}


def test_an_init_error_fails_the_invocation_with_its_type(lam):
    name = custom(lam, bootstrap_zip(init=textwrap.dedent(INIT_FAILS)))
    resp, payload = call(lam, name, {})
    assert resp["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Custom.InitFailed" and payload["errorMessage"] == "no config"


def test_a_package_without_bootstrap_is_an_invalid_entrypoint(lam):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("main.sh", "echo hi")
    name = custom(lam, buf.getvalue())
    resp, payload = call(lam, name, {})
    assert resp["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.InvalidEntrypoint"
    assert "Couldn't find valid bootstrap(s)" in payload["errorMessage"]


def stream_of(resp) -> tuple[bytes, dict]:
    chunks, complete = [], None
    for event in resp["EventStream"]:
        if "PayloadChunk" in event:
            chunks.append(event["PayloadChunk"]["Payload"])
        if "InvokeComplete" in event:
            complete = event["InvokeComplete"]
    return b"".join(chunks), complete


def test_invoke_with_response_stream_passes_each_chunk_of_a_streaming_runtime(lam, echo):
    resp = lam.invoke_with_response_stream(FunctionName=echo, Payload=json.dumps({"stream": ["one ", "two ", "three"]}))
    assert resp["StatusCode"] == 200 and resp["ExecutedVersion"] == "$LATEST"
    chunks = [e["PayloadChunk"]["Payload"] for e in resp["EventStream"] if "PayloadChunk" in e]
    assert b"".join(chunks) == b"one two three"
    assert len(chunks) >= 1


def test_an_error_in_the_stream_trailers_ends_it_with_invoke_complete(lam, echo):
    resp = lam.invoke_with_response_stream(FunctionName=echo, Payload=json.dumps(
        {"stream": ["partial"], "stream_error": True}))
    body, complete = stream_of(resp)
    assert body == b"partial"
    assert complete["ErrorCode"] == "Stream.Broke" and complete["ErrorDetails"] == "broke mid-stream"


def test_a_python_function_streams_its_whole_answer_as_one_chunk(lam):
    name = deploy(lam, "def handler(event, context):\n    return {'got': event}\n")
    resp = lam.invoke_with_response_stream(FunctionName=name, Payload=b'{"a": 1}', LogType="Tail")
    body, complete = stream_of(resp)
    assert json.loads(body) == {"got": {"a": 1}}
    assert "ErrorCode" not in complete and complete["LogResult"]
    failing = deploy(lam, "def handler(event, context):\n    raise ValueError('nope')\n")
    body, complete = stream_of(lam.invoke_with_response_stream(FunctionName=failing))
    assert complete["ErrorCode"] == "ValueError" and complete["ErrorDetails"] == "nope"


def test_invoke_with_response_stream_of_a_missing_function_is_not_found(lam):
    with pytest.raises(ClientError) as err:
        lam.invoke_with_response_stream(FunctionName="no-such-function-here")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


@pytest.fixture(scope="module")
def stream_url(lam, echo, unkai):
    url = lam.create_function_url_config(FunctionName=echo, AuthType="NONE", InvokeMode="RESPONSE_STREAM")
    assert url["InvokeMode"] == "RESPONSE_STREAM"
    return url["FunctionUrl"]  # unkai's address: any client calls it as it is


def test_a_response_stream_function_url_answers_a_buffered_response_as_usual(stream_url):
    with urllib.request.urlopen(stream_url + "plain?x=1") as resp:
        data = json.loads(resp.read())
    assert data["echo"]["rawPath"] == "/plain" and data["echo"]["rawQueryString"] == "x=1"


def test_a_streamed_http_integration_response_sets_status_headers_and_body(stream_url):
    # the bootstrap streams the prelude (statusCode, headers, cookies) and eight NUL bytes, then
    # the body, as awslambda.HttpResponseStream.from writes them
    with urllib.request.urlopen(stream_url + "streamed") as resp:
        assert resp.status == 201
        assert resp.headers["x-made-by"] == "stream"
        assert resp.headers["set-cookie"] == "a=1"
        assert resp.read() == b"hello world"


def test_the_python_runtime_has_pip_boto3_and_aws_variables(lam):
    name = deploy(lam, """
import os, pip, boto3, botocore
def handler(event, context):
    return {"pip": pip.__version__, "boto3": boto3.__version__, "botocore": botocore.__version__,
            "env": {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "LAMBDA_", "_HANDLER"))}}
""")
    _, payload = call(lam, name)
    import boto3 as ours

    assert payload["pip"]
    assert payload["boto3"] == ours.__version__  # the boto3 unkai runs: docs/lambda.md says so
    env = payload["env"]
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
                "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_RUNTIME_API",
                "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "LAMBDA_TASK_ROOT",
                "LAMBDA_RUNTIME_DIR", "_HANDLER"):
        assert env.get(key), key
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"


CFN_TEMPLATE = textwrap.dedent("""\
    Resources:
      Role:
        Type: AWS::IAM::Role
        Properties:
          AssumeRolePolicyDocument:
            Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}]
      Greeter:
        Type: AWS::Lambda::Function
        Properties:
          Runtime: python3.12
          Handler: index.handler
          Role: !GetAtt Role.Arn
          Code:
            ZipFile: |
              import cfnresponse
              def handler(event, context):
                  name = event["ResourceProperties"].get("Name", "nobody")
                  cfnresponse.send(event, context, cfnresponse.SUCCESS, {"Greeting": "hello " + name},
                                   "greeting-" + name)
      Greeting:
        Type: Custom::Greeting
        Properties:
          ServiceToken: !GetAtt Greeter.Arn
          Name: world
      Custom:                       # a custom runtime from a code directory beside the template
        Type: AWS::Lambda::Function
        Properties:
          FunctionName: custom-from-template
          Runtime: provided.al2023
          Handler: my.handler
          Role: !GetAtt Role.Arn
          Code: ./custom
          TenancyConfig:
            TenantIsolationMode: PER_TENANT
      CustomUrl:
        Type: AWS::Lambda::Url
        Properties:
          TargetFunctionArn: !GetAtt Custom.Arn
          AuthType: NONE
          InvokeMode: RESPONSE_STREAM
    Outputs:
      Greeting:
        Value: !GetAtt Greeting.Greeting
      GreetingId:
        Value: !Ref Greeting
    """)


def test_a_template_with_cfnresponse_inline_code_and_a_custom_runtime(tmp_path):
    from unkai.testing import UnkaiServer

    template = tmp_path / "template.yaml"
    template.write_text(CFN_TEMPLATE)
    (tmp_path / "custom").mkdir()
    bootstrap = tmp_path / "custom" / "bootstrap"
    bootstrap.write_text(BOOTSTRAP.format(python=sys.executable, init=""))
    bootstrap.chmod(0o755)
    with UnkaiServer(tmp_path / "state", str(template)) as server:
        stack = server.client("cloudformation").describe_stacks()["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        assert outputs["Greeting"] == "hello world" and outputs["GreetingId"] == "greeting-world"
        # the template's custom runtime, tenant-isolated, behind a RESPONSE_STREAM URL
        lam = server.client("lambda")
        config = lam.get_function_configuration(FunctionName="custom-from-template")
        assert config["TenancyConfig"] == {"TenantIsolationMode": "PER_TENANT"}
        resp, payload = call(lam, "custom-from-template", {"from": "template"}, TenantId="t1")
        assert payload["echo"] == {"from": "template"} and payload["cwd"] == str(tmp_path / "custom")
        url = lam.get_function_url_config(FunctionName="custom-from-template")
        assert url["InvokeMode"] == "RESPONSE_STREAM"


def test_a_plain_invoke_of_a_streaming_runtime_gets_the_whole_answer_or_its_error(lam, echo):
    resp, _ = lam.invoke(FunctionName=echo, Payload=json.dumps({"stream": ["a", "b", "c"]})), None
    assert "FunctionError" not in resp and resp["Payload"].read() == b"abc"
    resp, payload = call(lam, echo, {"stream": ["partial"], "stream_error": True})
    assert resp["FunctionError"] == "Unhandled"
    assert payload == {"errorMessage": "broke mid-stream", "errorType": "Stream.Broke"}


def test_a_rest_api_streams_a_lambda_proxy_response(lam, unkai, echo):
    apigw = unkai.client("apigateway")
    api = apigw.create_rest_api(name="streaming")["id"]
    root = apigw.get_resources(restApiId=api)["items"][0]["id"]
    res = apigw.create_resource(restApiId=api, parentId=root, pathPart="streamed")["id"]
    arn = lam.get_function_configuration(FunctionName=echo)["FunctionArn"]
    apigw.put_method(restApiId=api, resourceId=res, httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(
        restApiId=api, resourceId=res, httpMethod="GET", type="AWS_PROXY", integrationHttpMethod="POST",
        uri=f"arn:aws:apigateway:us-east-1:lambda:path/2021-11-15/functions/{arn}/response-streaming-invocations",
        responseTransferMode="STREAM")
    lam.add_permission(FunctionName=echo, StatementId="apigw-stream", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com")
    apigw.create_deployment(restApiId=api, stageName="prod")
    with urllib.request.urlopen(f"{unkai.endpoint}/_unkai/execute-api/{api}/prod/streamed") as resp:
        assert resp.status == 201
        assert resp.headers["x-made-by"] == "stream"
        assert resp.read() == b"hello world"


def test_json_log_format_sets_aws_variables_and_writes_json_records(lam, unkai):
    name = deploy(lam, """
import logging, os
logger = logging.getLogger("app")
def handler(event, context):
    logger.info("filtered out at WARN")
    logger.warning("something to see")
    return {k: os.environ.get(k) for k in ("AWS_LAMBDA_LOG_FORMAT", "AWS_LAMBDA_LOG_LEVEL")}
""", LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "WARN"})
    resp, payload = call(lam, name)
    assert payload == {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "WARN"}
    events = unkai.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    records = [json.loads(e["message"]) for e in events if e["message"].startswith("{")]
    assert [(r["level"], r["message"], r["logger"]) for r in records] == [("WARN", "something to see", "app")]
    assert records[0]["requestId"] == resp["ResponseMetadata"]["RequestId"]
    assert records[0]["timestamp"].endswith("Z")
