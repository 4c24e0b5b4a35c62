"""The Lambda control plane through boto3: functions, versions, aliases, permissions,
concurrency, event invoke configs, layers and function URLs."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError
from lambda_code import ROLE, call, deploy, zip_of


@pytest.fixture(scope="module")
def lam(unkai):
    return unkai.client("lambda")


def code_of(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def test_create_get_list_update_delete(lam):
    name = deploy(lam, "def handler(e, c):\n    return 'v1'\n", Description="first", Timeout=5,
                  Environment={"Variables": {"A": "1"}}, Tags={"team": "x"})
    config = lam.get_function_configuration(FunctionName=name)
    assert config["FunctionArn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    assert (config["Runtime"], config["Handler"], config["Timeout"], config["MemorySize"]) == \
        ("python3.11", "app.handler", 5, 128)
    assert config["State"] == "Active" and config["Version"] == "$LATEST" and config["PackageType"] == "Zip"
    assert config["Environment"] == {"Variables": {"A": "1"}}
    assert config["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"}
    got = lam.get_function(FunctionName=config["FunctionArn"])
    assert got["Configuration"]["CodeSha256"] == config["CodeSha256"] and got["Tags"] == {"team": "x"}
    assert name in [f["FunctionName"] for f in lam.get_paginator("list_functions").paginate().build_full_result()
                    ["Functions"]]
    with pytest.raises(lam.exceptions.ResourceConflictException):
        deploy(lam, "x = 1\n", name=name)
    updated = lam.update_function_configuration(FunctionName=name, MemorySize=256,
                                                Environment={"Variables": {"A": "2"}})
    assert updated["MemorySize"] == 256 and updated["RevisionId"] != config["RevisionId"]
    lam.update_function_code(FunctionName=name, ZipFile=zip_of({"app.py": "def handler(e, c):\n    return 'v2'\n"}))
    assert call(lam, name)[1] == "v2"
    lam.delete_function(FunctionName=name)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=name)


def test_validation_errors(lam):
    with pytest.raises(ClientError) as exc:
        lam.create_function(FunctionName=f"v-{time.time_ns()}", Runtime="python3.11", Role=ROLE, Handler="a.b",
                            Code={"ZipFile": b"not a zip"})
    assert code_of(exc) == "InvalidParameterValueException"
    with pytest.raises(ClientError) as exc:
        deploy(lam, "x = 1\n", Timeout=901)
    assert code_of(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        deploy(lam, "x = 1\n", Environment={"Variables": {"AWS_REGION": "x"}})
    assert code_of(exc) == "InvalidParameterValueException"
    with pytest.raises(ClientError) as exc:
        lam.create_function(FunctionName="has space", Runtime="python3.11", Role=ROLE, Handler="a.b",
                            Code={"ZipFile": zip_of({"a.py": ""})})
    assert code_of(exc) == "ValidationException"


def test_versions_and_aliases(lam):
    name = deploy(lam, "import os\ndef handler(e, c):\n    return os.environ['AWS_LAMBDA_FUNCTION_VERSION']\n")
    v1 = lam.publish_version(FunctionName=name)
    assert v1["Version"] == "1" and v1["FunctionArn"].endswith(f":{name}:1")
    assert lam.publish_version(FunctionName=name)["Version"] == "1"  # nothing changed
    lam.update_function_configuration(FunctionName=name, Timeout=9)
    v2 = lam.publish_version(FunctionName=name)
    assert v2["Version"] == "2"
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]] == ["$LATEST", "1", "2"]
    alias = lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    assert alias["AliasArn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{name}:live"
    resp, payload = call(lam, name, Qualifier="live")
    assert (payload, resp["ExecutedVersion"]) == ("1", "1")
    resp, payload = call(lam, f"{name}:2")
    assert (payload, resp["ExecutedVersion"]) == ("2", "2")
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion="2")
    assert call(lam, name, Qualifier="live")[0]["ExecutedVersion"] == "2"
    assert [a["Name"] for a in lam.list_aliases(FunctionName=name)["Aliases"]] == ["live"]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        call(lam, name, Qualifier="nope")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.create_alias(FunctionName=name, Name="bad", FunctionVersion="9")
    lam.delete_alias(FunctionName=name, Name="live")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_alias(FunctionName=name, Name="live")


def test_permissions_policy(lam):
    name = deploy(lam, "x = 1\n")
    statement = json.loads(lam.add_permission(FunctionName=name, StatementId="sns", Action="lambda:InvokeFunction",
                                              Principal="sns.amazonaws.com",
                                              SourceArn="arn:aws:sns:us-east-1:000000000000:t")["Statement"])
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Condition"] == {"ArnLike": {"AWS:SourceArn": "arn:aws:sns:us-east-1:000000000000:t"}}
    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.add_permission(FunctionName=name, StatementId="sns", Action="lambda:InvokeFunction",
                           Principal="sns.amazonaws.com")
    policy = json.loads(lam.get_policy(FunctionName=name)["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["sns"]
    lam.remove_permission(FunctionName=name, StatementId="sns")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName=name)


def test_event_invoke_config_api(lam):
    name = deploy(lam, "x = 1\n")
    dest = "arn:aws:sqs:us-east-1:000000000000:somewhere"
    config = lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1,
                                                  DestinationConfig={"OnFailure": {"Destination": dest}})
    assert config["MaximumRetryAttempts"] == 1 and config["DestinationConfig"]["OnFailure"]["Destination"] == dest
    updated = lam.update_function_event_invoke_config(FunctionName=name, MaximumEventAgeInSeconds=120)
    assert updated["MaximumRetryAttempts"] == 1 and updated["MaximumEventAgeInSeconds"] == 120
    assert lam.get_function_event_invoke_config(FunctionName=name)["MaximumEventAgeInSeconds"] == 120
    with pytest.raises(ClientError) as exc:
        lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=3)
    assert code_of(exc) == "ValidationException"
    lam.delete_function_event_invoke_config(FunctionName=name)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_event_invoke_config(FunctionName=name)


def test_layers_are_on_the_path(lam):
    layer = lam.publish_layer_version(LayerName=f"util-{time.time_ns()}", CompatibleRuntimes=["python3.11"],
                                      Content={"ZipFile": zip_of({"python/shared_util.py": "WORD = 'from layer'\n"})})
    assert layer["Version"] == 1 and layer["LayerVersionArn"].endswith(":1")
    name = deploy(lam, "import shared_util\ndef handler(e, c):\n    return shared_util.WORD\n",
                  Layers=[layer["LayerVersionArn"]])
    assert call(lam, name)[1] == "from layer"
    assert lam.get_function_configuration(FunctionName=name)["Layers"][0]["Arn"] == layer["LayerVersionArn"]
    versions = lam.list_layer_versions(LayerName=layer["LayerArn"].split(":")[-1])["LayerVersions"]
    assert [v["Version"] for v in versions] == [1]


def test_function_url_serves_payload_format_2(lam, unkai):
    code = """
    import json
    def handler(event, context):
        if event['rawPath'] == '/plain':
            return {'hello': 'world'}
        return {'statusCode': 201, 'headers': {'x-echo': event['requestContext']['http']['method']},
                'body': json.dumps({'path': event['rawPath'], 'query': event.get('queryStringParameters'),
                                    'body': event.get('body'), 'version': event['version'],
                                    'domain': event['requestContext']['domainName']})}
    """
    name = deploy(lam, code)
    url = lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    url_id = url.split("/")[-2]
    assert url == f"{unkai.endpoint}/_unkai/lambda-url/{url_id}/"
    assert lam.get_function_url_config(FunctionName=name)["FunctionUrl"] == url
    req = urllib.request.Request(f"{url}items?a=1&a=2", data=b'{"k": 1}',
                                 headers={"content-type": "application/json"}, method="POST")
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 201 and resp.headers["x-echo"] == "POST"
        body = json.loads(resp.read())
    assert body == {"path": "/items", "query": {"a": "1,2"}, "body": '{"k": 1}', "version": "2.0",
                    "domain": f"{url_id}.lambda-url.us-east-1.on.aws"}
    # the AWS host name in the Host header reaches it too
    req = urllib.request.Request(f"{unkai.endpoint}/plain",
                                 headers={"host": f"{url_id}.lambda-url.us-east-1.on.aws"})
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 200 and json.loads(resp.read()) == {"hello": "world"}
    with pytest.raises(lam.exceptions.ResourceConflictException):
        lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    lam.delete_function_url_config(FunctionName=name)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_url_config(FunctionName=name)


def test_account_settings(lam):
    settings = lam.get_account_settings()
    assert settings["AccountLimit"]["ConcurrentExecutions"] == 1000
