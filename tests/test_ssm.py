"""SSM Parameter Store through boto3, and the template side: AWS::SSM::Parameter
resources and AWS::SSM::Parameter::Value<...> template parameters."""

from __future__ import annotations

import textwrap
import uuid

import pytest
from botocore.exceptions import ClientError

from unkai.testing import UnkaiServer


@pytest.fixture
def ssm(unkai):
    return unkai.client("ssm")


@pytest.fixture
def env() -> str:
    return f"/t{uuid.uuid4().hex[:8]}"


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def ssm_parameters(ssm, env: str) -> dict[str, str]:
    """The seed's E2E fixture, verbatim in spirit: every parameter under /{env}, ten at a time."""
    found: dict[str, str] = {}
    kwargs = {"Path": env, "Recursive": True, "WithDecryption": True, "MaxResults": 10}
    while True:
        page = ssm.get_parameters_by_path(**kwargs)
        for p in page["Parameters"]:
            found[p["Name"]] = p["Value"]
        if "NextToken" not in page:
            return found
        kwargs["NextToken"] = page["NextToken"]


def test_put_get_overwrite_and_history(ssm, env):
    name = f"{env}/lambda/Env"
    put = ssm.put_parameter(Name=name, Value="dev", Type="String")
    assert (put["Version"], put["Tier"]) == (1, "Standard")
    got = ssm.get_parameter(Name=name)["Parameter"]
    assert got["Value"] == "dev" and got["Version"] == 1 and got["Type"] == "String"
    assert got["ARN"] == f"arn:aws:ssm:us-east-1:000000000000:parameter{name}"
    assert got["DataType"] == "text"
    with pytest.raises(ClientError) as exc:
        ssm.put_parameter(Name=name, Value="prd", Type="String")
    assert code(exc) == "ParameterAlreadyExists"
    assert ssm.put_parameter(Name=name, Value="prd", Overwrite=True)["Version"] == 2
    assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == "prd"
    assert ssm.get_parameter(Name=f"{name}:1")["Parameter"]["Value"] == "dev"
    assert ssm.get_parameter(Name=f"{name}:1")["Parameter"]["Selector"] == ":1"
    history = ssm.get_parameter_history(Name=name)["Parameters"]
    assert [(h["Version"], h["Value"]) for h in history] == [(1, "dev"), (2, "prd")]
    labelled = ssm.label_parameter_version(Name=name, ParameterVersion=1, Labels=["stable", "1bad"])
    assert labelled["InvalidLabels"] == ["1bad"] and labelled["ParameterVersion"] == 1
    assert ssm.get_parameter(Name=f"{name}:stable")["Parameter"]["Value"] == "dev"
    ssm.label_parameter_version(Name=name, Labels=["stable"])  # moves to the latest version
    assert ssm.get_parameter(Name=f"{name}:stable")["Parameter"]["Version"] == 2
    with pytest.raises(ClientError) as exc:
        ssm.get_parameter(Name=f"{name}:9")
    assert code(exc) == "ParameterVersionNotFound"


def test_secure_string_and_string_list(ssm, env, unkai):
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    ssm.put_parameter(Name=f"{env}/secret", Value=secret, Type="SecureString")
    ssm.put_parameter(Name=f"{env}/secret", Value=secret + "-v2", Type="SecureString", Overwrite=True)
    sealed = ssm.get_parameter(Name=f"{env}/secret")["Parameter"]["Value"]
    assert secret not in sealed
    assert ssm.get_parameter(Name=f"{env}/secret", WithDecryption=True)["Parameter"]["Value"] == secret + "-v2"
    assert ssm.get_parameter(Name=f"{env}/secret:1", WithDecryption=True)["Parameter"]["Value"] == secret
    history = ssm.get_parameter_history(Name=f"{env}/secret", WithDecryption=True)["Parameters"]
    assert [h["Value"] for h in history] == [secret, secret + "-v2"]
    # at rest the value is sealed (issue 11, finding 10): not in the database's files, WAL included
    for path in unkai.state_dir.glob("unkai.db*"):
        assert secret.encode() not in path.read_bytes(), path.name
    meta = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [f"{env}/secret"]}])["Parameters"]
    assert meta[0]["KeyId"] == "alias/aws/ssm" and meta[0]["Type"] == "SecureString"
    ssm.put_parameter(Name=f"{env}/list", Value="a,b", Type="StringList")
    both = ssm.get_parameters(Names=[f"{env}/list", f"{env}/nope"])
    assert [p["Value"] for p in both["Parameters"]] == ["a,b"]
    assert both["InvalidParameters"] == [f"{env}/nope"]


def test_get_parameters_by_path_pages_like_the_seed_fixture(ssm, env):
    expected = {}
    for i in range(23):
        name = f"{env}/lambda/p{i:02d}" if i % 2 else f"{env}/deep/er/p{i:02d}"
        ssm.put_parameter(Name=name, Value=f"v{i}", Type="SecureString" if i == 5 else "String")
        expected[name] = f"v{i}"
    ssm.put_parameter(Name=f"{env}x/outside", Value="no", Type="String")
    assert ssm_parameters(ssm, env) == expected
    first = ssm.get_parameters_by_path(Path=env, Recursive=True, MaxResults=10)
    assert len(first["Parameters"]) == 10 and "NextToken" in first
    top = ssm.get_parameters_by_path(Path=f"{env}/lambda")["Parameters"]
    assert len(top) == 10  # the default page
    direct = ssm.get_parameters_by_path(Path=env)["Parameters"]
    assert direct == []  # nothing sits directly under /env
    with pytest.raises(ClientError) as exc:
        ssm.get_parameters_by_path(Path=env, MaxResults=11)
    assert code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ssm.get_parameters_by_path(Path=env, NextToken="garbage!")
    assert code(exc) == "InvalidNextToken"


def test_delete_and_errors(ssm, env):
    ssm.put_parameter(Name=f"{env}/a", Value="1", Type="String")
    ssm.put_parameter(Name=f"{env}/b", Value="2", Type="String")
    ssm.delete_parameter(Name=f"{env}/a")
    with pytest.raises(ClientError) as exc:
        ssm.get_parameter(Name=f"{env}/a")
    assert code(exc) == "ParameterNotFound"
    with pytest.raises(ClientError) as exc:
        ssm.delete_parameter(Name=f"{env}/a")
    assert code(exc) == "ParameterNotFound"
    gone = ssm.delete_parameters(Names=[f"{env}/b", f"{env}/zz"])
    assert gone["DeletedParameters"] == [f"{env}/b"] and gone["InvalidParameters"] == [f"{env}/zz"]
    for bad in ("aws-thing", "no/leading/slash", "/has space"):
        with pytest.raises(ClientError) as exc:
            ssm.put_parameter(Name=bad, Value="x", Type="String")
        assert code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        ssm.put_parameter(Name=f"{env}/p", Value="abc", Type="String", AllowedPattern=r"^\d+$")
    assert code(exc) == "ParameterPatternMismatchException"
    with pytest.raises(ClientError) as exc:
        ssm.put_parameter(Name=f"{env}/notype", Value="abc")
    assert code(exc) == "ValidationException"


def test_tags_and_describe_filters(ssm, env):
    ssm.put_parameter(Name=f"{env}/tagged", Value="x", Type="String", Tags=[{"Key": "team", "Value": "a"}])
    ssm.put_parameter(Name=f"{env}/plain", Value="y", Type="String", Description="plain one")
    ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=f"{env}/plain", Tags=[{"Key": "team", "Value": "b"}])
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=f"{env}/plain")["TagList"]
    assert tags == [{"Key": "team", "Value": "b"}]
    found = ssm.describe_parameters(ParameterFilters=[{"Key": "tag:team", "Values": ["a"]},
                                                      {"Key": "Path", "Values": [env]}])["Parameters"]
    assert [p["Name"] for p in found] == [f"{env}/tagged"]
    begins = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Option": "BeginsWith",
                                                        "Values": [f"{env}/p"]}])["Parameters"]
    assert [(p["Name"], p.get("Description")) for p in begins] == [(f"{env}/plain", "plain one")]


TEMPLATE = textwrap.dedent("""\
    Parameters:
      Env:
        Type: AWS::SSM::Parameter::Value<String>
        Default: /prd/lambda/Env
      Hosts:
        Type: AWS::SSM::Parameter::Value<List<String>>
        Default: /prd/lambda/Hosts
      CommitId:
        Type: String
        Default: '000000000'
    Resources:
      Endpoint:
        Type: AWS::SSM::Parameter
        Properties:
          Name: !Sub "/${Env}/lambda/DynamoDBEndpoint"
          Type: String
          Value: !Select [1, !Ref Hosts]
          Tags:
            owner: unkai
      Generated:
        Type: AWS::SSM::Parameter
        Properties:
          Type: StringList
          Value: !Join [",", !Ref Hosts]
    Outputs:
      EndpointName:
        Value: !Ref Endpoint
      EndpointValue:
        Value: !GetAtt Endpoint.Value
      Generated:
        Value: !Ref Generated
      Commit:
        Value: !Sub "${Env}-${CommitId}"
    """)


def test_template_parameters_from_parameter_store_and_ssm_resources(tmp_path):
    template = tmp_path / "app" / "template.yaml"
    template.parent.mkdir()
    template.write_text(TEMPLATE)
    state = tmp_path / "state"
    with UnkaiServer(state) as server:
        ssm = server.client("ssm")
        ssm.put_parameter(Name="/prd/lambda/Env", Value="prd", Type="String")
    with pytest.raises(RuntimeError) as exc:  # /prd/lambda/Hosts is missing
        UnkaiServer(state, str(template)).start()
    assert "template.yaml:5: Parameters.Hosts: Parameters [Hosts] referenced by the template could not be " \
           "resolved: Unable to fetch parameters [/prd/lambda/Hosts] from parameter store for this account." \
           in str(exc.value)
    with UnkaiServer(state) as server:
        server.client("ssm").put_parameter(Name="/prd/lambda/Hosts", Value="h1, h2", Type="StringList")
    with UnkaiServer(state, str(template)) as server:
        ssm = server.client("ssm")
        cfn = server.client("cloudformation")
        stack = cfn.describe_stacks(StackName="app")["Stacks"][0]
        out = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        assert out["EndpointName"] == "/prd/lambda/DynamoDBEndpoint"
        assert out["EndpointValue"] == "h2"
        assert out["Commit"] == "prd-000000000"
        assert out["Generated"].startswith("CFN-Generated-")
        assert ssm.get_parameter(Name="/prd/lambda/DynamoDBEndpoint")["Parameter"]["Value"] == "h2"
        assert ssm.get_parameter(Name=out["Generated"])["Parameter"]["Value"] == "h1,h2"
        tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=out["EndpointName"])["TagList"]
        assert tags == [{"Key": "owner", "Value": "unkai"}]
        params = {p["ParameterKey"]: p for p in stack["Parameters"]}
        assert params["Env"]["ParameterValue"] == "/prd/lambda/Env"
        assert params["Env"]["ResolvedValue"] == "prd"
