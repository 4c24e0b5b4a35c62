"""``unkai up --enforce-iam``: a template's function whose role lacks a permission is denied
as AWS would deny it (the service's AccessDenied, AWS's message, one readable log line),
and works once the permission is added; resource policies, explicit denies, boundaries,
session policies and trust policies count; ``--enforce-iam=log`` only reports."""

from __future__ import annotations

import json
import textwrap

import boto3
import pytest
from botocore.exceptions import ClientError

from unkai.testing import UnkaiServer

TEMPLATE = textwrap.dedent("""\
    AWSTemplateFormatVersion: '2010-09-09'
    Transform: AWS::Serverless-2016-10-31
    Resources:
      Jobs:
        Type: AWS::SQS::Queue
      Sender:
        Type: AWS::Serverless::Function
        Properties:
          FunctionName: sender
          Runtime: python3.12
          Handler: index.handler
          Environment:
            Variables:
              QUEUE_URL: !Ref Jobs
          InlineCode: |
            import os, boto3
            def handler(event, context):
                boto3.client("sqs").send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody="hi")
                return "sent"
    Outputs:
      RoleName:
        Value: !Ref SenderRole
      QueueArn:
        Value: !GetAtt Jobs.Arn
    """)
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"}, "Action": "sts:AssumeRole"}]})


def _doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("enforce")
    (root / "app").mkdir()
    (root / "app" / "template.yaml").write_text(TEMPLATE)
    with UnkaiServer(root / "state", str(root / "app" / "template.yaml"), "--enforce-iam") as srv:
        yield srv


def _outputs(server) -> dict:
    stack = server.client("cloudformation").describe_stacks(StackName="app")["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def test_a_function_lacking_a_permission_is_denied_until_the_policy_is_added(server):
    lam, iam = server.client("lambda"), server.client("iam")
    out = _outputs(server)
    denied = lam.invoke(FunctionName="sender")
    body = json.loads(denied["Payload"].read())
    assert denied.get("FunctionError") == "Unhandled"
    role = out["RoleName"]
    assert f"User: arn:aws:sts::000000000000:assumed-role/{role}/sender is not authorized to perform: " \
           f"sqs:SendMessage on resource: {out['QueueArn']} because no identity-based policy allows the " \
           "sqs:SendMessage action" in body["errorMessage"]
    assert f"IAM denied: arn:aws:sts::000000000000:assumed-role/{role}/sender -> sqs:SendMessage on " \
           f"{out['QueueArn']}" in server.output()
    iam.put_role_policy(RoleName=role, PolicyName="send", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": out["QueueArn"]}))
    allowed = lam.invoke(FunctionName="sender")
    assert json.loads(allowed["Payload"].read()) == "sent"


def _session(server, role_name: str, policy: str | None = None) -> dict:
    iam, sts = server.client("iam"), server.client("sts")
    arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    kwargs = {"Policy": policy} if policy else {}
    creds = sts.assume_role(RoleArn=arn, RoleSessionName="tt", **kwargs)["Credentials"]
    return {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"]}


def _client(server, service: str, creds: dict):
    return boto3.client(service, endpoint_url=server.endpoint, region_name="us-east-1", **creds)


def _code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def test_explicit_deny_boundaries_session_and_resource_policies(server):
    iam = server.client("iam")
    sm = server.client("secretsmanager")
    secret = sm.create_secret(Name="enforced/db", SecretString="pw")["ARN"]
    creds = _session(server, "reader")
    iam.put_role_policy(RoleName="reader", PolicyName="p", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"},
        {"Sid": "NoDelete", "Effect": "Deny", "Action": "secretsmanager:DeleteSecret", "Resource": "*"}))
    reader = _client(server, "secretsmanager", creds)
    assert reader.get_secret_value(SecretId="enforced/db")["SecretString"] == "pw"
    with pytest.raises(ClientError) as exc:
        reader.delete_secret(SecretId="enforced/db")
    assert _code(exc) == "AccessDeniedException"
    assert "with an explicit deny in an identity-based policy" in exc.value.response["Error"]["Message"]
    # a permissions boundary limits what the identity policy allows
    boundary = iam.create_policy(PolicyName="only-describe", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "secretsmanager:DescribeSecret", "Resource": "*"}))["Policy"]["Arn"]
    iam.put_role_permissions_boundary(RoleName="reader", PermissionsBoundary=boundary)
    reader.describe_secret(SecretId="enforced/db")
    with pytest.raises(ClientError) as exc:
        reader.get_secret_value(SecretId="enforced/db")
    assert "permissions boundary" in exc.value.response["Error"]["Message"]
    # a resource policy alone grants access to a principal it names
    other = _session(server, "outsider")
    outsider = _client(server, "secretsmanager", other)
    with pytest.raises(ClientError):
        outsider.get_secret_value(SecretId=secret)
    sm.put_resource_policy(SecretId=secret, ResourcePolicy=_doc(
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:role/outsider"},
         "Action": "secretsmanager:GetSecretValue", "Resource": "*"}))
    assert outsider.get_secret_value(SecretId=secret)["SecretString"] == "pw"
    # a session policy narrows the role's permissions
    iam.create_role(RoleName="wide", AssumeRolePolicyDocument=TRUST)
    iam.attach_role_policy(RoleName="wide", PolicyArn="arn:aws:iam::aws:policy/AmazonSQSFullAccess")
    creds = server.client("sts").assume_role(
        RoleArn="arn:aws:iam::000000000000:role/wide", RoleSessionName="narrow",
        Policy=_doc({"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"}))["Credentials"]
    narrow = _client(server, "sqs", {"aws_access_key_id": creds["AccessKeyId"],
                                     "aws_secret_access_key": creds["SecretAccessKey"],
                                     "aws_session_token": creds["SessionToken"]})
    narrow.list_queues()
    with pytest.raises(ClientError) as exc:
        narrow.create_queue(QueueName="not-allowed")
    assert "session policy" in exc.value.response["Error"]["Message"]


def test_trust_policies_decide_who_may_assume_a_role(server):
    iam, sts = server.client("iam"), server.client("sts")
    iam.create_role(RoleName="lambda-only", AssumeRolePolicyDocument=_doc(
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}))
    creds = _session(server, "caller")
    iam.put_role_policy(RoleName="caller", PolicyName="assume", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}))
    with pytest.raises(ClientError) as exc:
        _client(server, "sts", creds).assume_role(RoleArn="arn:aws:iam::000000000000:role/lambda-only",
                                                  RoleSessionName="xx")
    assert _code(exc) == "AccessDenied"
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn="arn:aws:iam::000000000000:role/never-created", RoleSessionName="xx")
    assert _code(exc) == "AccessDenied"
