"""Template resources of IAM, Secrets Manager and KMS, and dynamic references. AWS::IAM::*
template resources are real IAM records: SAM's generated execution role
with its policy templates' expansion, managed policies, users with access keys, groups
and instance profiles, read back through IAM's API."""

from __future__ import annotations

import json
import textwrap

import pytest

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
          Runtime: python3.12
          Handler: index.handler
          InlineCode: "def handler(event, context):\\n    return 1\\n"
          Policies:
            - SQSSendMessagePolicy:
                QueueName: !GetAtt Jobs.QueueName
      ReadJobs:
        Type: AWS::IAM::ManagedPolicy
        Properties:
          PolicyDocument:
            Version: '2012-10-17'
            Statement:
              - Effect: Allow
                Action: sqs:ReceiveMessage
                Resource: !GetAtt Jobs.Arn
          Roles: [!Ref SenderRole]
      Ops:
        Type: AWS::IAM::Group
        Properties:
          ManagedPolicyArns: [arn:aws:iam::aws:policy/ReadOnlyAccess]
      Deployer:
        Type: AWS::IAM::User
        Properties:
          Groups: [!Ref Ops]
      DeployerKey:
        Type: AWS::IAM::AccessKey
        Properties:
          UserName: !Ref Deployer
      Profile:
        Type: AWS::IAM::InstanceProfile
        Properties:
          Roles: [!Ref SenderRole]
      Key:
        Type: AWS::KMS::Key
        Properties:
          Description: app data
          EnableKeyRotation: true
      KeyAlias:
        Type: AWS::KMS::Alias
        Properties:
          AliasName: alias/app-data
          TargetKeyId: !Ref Key
      DbSecret:
        Type: AWS::SecretsManager::Secret
        Properties:
          Name: app/db
          KmsKeyId: !Ref Key
          GenerateSecretString:
            SecretStringTemplate: '{"username": "admin"}'
            GenerateStringKey: password
            PasswordLength: 24
            ExcludePunctuation: true
      Stage:
        Type: AWS::SSM::Parameter
        Properties:
          Name: /app/stage
          Type: String
          Value: blue
      Tagged:
        Type: AWS::SQS::Queue
        DependsOn: [DbSecret, Stage]
        Properties:
          Tags:
            - Key: user
              Value: '{{resolve:secretsmanager:app/db:SecretString:username}}'
            - Key: stage
              Value: '{{resolve:ssm:/app/stage}}'
    Outputs:
      RoleArn:
        Value: !GetAtt SenderRole.Arn
      PolicyArn:
        Value: !Ref ReadJobs
      KeyId:
        Value: !Ref DeployerKey
      ProfileArn:
        Value: !GetAtt Profile.Arn
      SecretArn:
        Value: !Ref DbSecret
      KeyArn:
        Value: !GetAtt Key.Arn
      TaggedUrl:
        Value: !Ref Tagged
    """)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("iam-template")
    (root / "app").mkdir()
    (root / "app" / "template.yaml").write_text(TEMPLATE)
    with UnkaiServer(root / "state", str(root / "app" / "template.yaml")) as srv:
        yield srv


def test_template_iam_resources_are_created_as_real_records(server):
    iam = server.client("iam")
    out = {o["OutputKey"]: o["OutputValue"] for o in
           server.client("cloudformation").describe_stacks(StackName="app")["Stacks"][0]["Outputs"]}
    role_name = out["RoleArn"].rsplit("/", 1)[-1]
    role = iam.get_role(RoleName=role_name)["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": ["lambda.amazonaws.com"]}
    attached = {p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]}
    assert attached == {"arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole", out["PolicyArn"]}
    [inline] = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    statement = iam.get_role_policy(RoleName=role_name, PolicyName=inline)["PolicyDocument"]["Statement"][0]
    assert statement["Action"] == ["sqs:SendMessage*"]
    assert statement["Resource"].endswith(":app-Jobs-" + statement["Resource"].rsplit("-", 1)[-1])
    user_name = iam.list_access_keys(UserName=next(
        u["UserName"] for u in iam.list_users()["Users"] if "Deployer" in u["UserName"]))["AccessKeyMetadata"][0]
    assert user_name["AccessKeyId"] == out["KeyId"]
    groups = iam.list_groups_for_user(UserName=user_name["UserName"])["Groups"]
    assert len(groups) == 1 and "Ops" in groups[0]["GroupName"]
    profile = iam.list_instance_profiles_for_role(RoleName=role_name)["InstanceProfiles"][0]
    assert profile["Arn"] == out["ProfileArn"]
    fn = server.client("lambda").get_function(FunctionName=next(
        f["FunctionName"] for f in server.client("lambda").list_functions()["Functions"]))
    assert fn["Configuration"]["Role"] == out["RoleArn"]


def test_secrets_keys_and_dynamic_references_from_a_template(server):
    stack = server.client("cloudformation").describe_stacks(StackName="app")["Stacks"][0]
    out = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    sm, kms, sqs = server.client("secretsmanager"), server.client("kms"), server.client("sqs")
    value = json.loads(sm.get_secret_value(SecretId=out["SecretArn"])["SecretString"])
    assert value["username"] == "admin" and len(value["password"]) == 24 and value["password"].isalnum()
    key_id = kms.describe_key(KeyId="alias/app-data")["KeyMetadata"]["KeyId"]
    assert out["KeyArn"].endswith(key_id)
    assert sm.describe_secret(SecretId="app/db")["KmsKeyId"] == key_id
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"]
    assert sqs.list_queue_tags(QueueUrl=out["TaggedUrl"])["Tags"] == {"user": "admin", "stage": "blue"}
    assert value["password"] not in server.output()
