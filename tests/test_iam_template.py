"""AWS::IAM::* template resources are real IAM records: SAM's generated execution role
with its policy templates' expansion, managed policies, users with access keys, groups
and instance profiles, read back through IAM's API."""

from __future__ import annotations

import textwrap

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
    Outputs:
      RoleArn:
        Value: !GetAtt SenderRole.Arn
      PolicyArn:
        Value: !Ref ReadJobs
      KeyId:
        Value: !Ref DeployerKey
      ProfileArn:
        Value: !GetAtt Profile.Arn
    """)


def test_template_iam_resources_are_created_as_real_records(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "template.yaml").write_text(TEMPLATE)
    with UnkaiServer(tmp_path / "state", str(tmp_path / "app" / "template.yaml")) as server:
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
