"""IAM through boto3: roles, users, groups, managed and inline policies, access keys,
instance profiles, AWS managed policies, the grammar checks and the policy simulator."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def _doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _error(exc: pytest.ExceptionInfo) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


@pytest.fixture
def iam(unkai):
    return unkai.client("iam")


@pytest.fixture
def name() -> str:
    return f"n{uuid.uuid4().hex[:10]}"


def test_role_with_trust_policy_tags_and_policies_reads_back_as_created(iam, name):
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST, Description="fn", MaxSessionDuration=7200,
                           Tags=[{"Key": "team", "Value": "qa"}])["Role"]
    assert role["Arn"] == f"arn:aws:iam::000000000000:role/{name}" and role["RoleId"].startswith("AROA")
    got = iam.get_role(RoleName=name)["Role"]
    assert got["AssumeRolePolicyDocument"] == json.loads(TRUST)  # botocore decodes IAM's URL-encoded documents
    assert (got["MaxSessionDuration"], got["Description"], got["Tags"]) == (7200, "fn", [{"Key": "team", "Value": "qa"}])
    iam.attach_role_policy(RoleName=name, PolicyArn=BASIC)
    iam.put_role_policy(RoleName=name, PolicyName="q", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}))
    assert iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == [
        {"PolicyName": "AWSLambdaBasicExecutionRole", "PolicyArn": BASIC}]
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["q"]
    assert iam.get_role_policy(RoleName=name, PolicyName="q")["PolicyDocument"]["Statement"][0]["Action"] == \
        "sqs:SendMessage"
    with pytest.raises(ClientError) as exc:
        iam.delete_role(RoleName=name)
    assert _error(exc) == ("DeleteConflict", "Cannot delete entity, must detach all policies first.")
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
    assert _error(exc) == ("EntityAlreadyExists", f"Role with name {name} already exists.")
    iam.detach_role_policy(RoleName=name, PolicyArn=BASIC)
    iam.delete_role_policy(RoleName=name, PolicyName="q")
    iam.delete_role(RoleName=name)
    with pytest.raises(ClientError) as exc:
        iam.get_role(RoleName=name)
    assert _error(exc) == ("NoSuchEntity", f"The role with name {name} cannot be found.")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_policy_documents_are_checked_with_iams_messages(iam, name):
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
    cases = {
        "{not json": "Syntax errors in policy.",
        _doc({"Effect": "Allow", "Action": "s3:GetObject"}): "Policy statement must contain resources.",
        _doc({"Effect": "Allow", "Resource": "*"}): "Policy statement must contain actions.",
        _doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Principal": "*"}):
            "Policy document should not specify a principal.",
        json.dumps({"Version": "2020-01-01", "Statement": []}): "The policy failed legacy parsing",
    }
    for document, message in cases.items():
        with pytest.raises(ClientError) as exc:
            iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=document)
        assert _error(exc) == ("MalformedPolicyDocument", message), document
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName=name + "x", AssumeRolePolicyDocument=_doc(
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}))
    assert _error(exc) == ("MalformedPolicyDocument", "Has prohibited field Resource")
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName="bad name!", AssumeRolePolicyDocument=TRUST)
    assert _error(exc)[0] == "ValidationError" and "[\\w+=,.@-]+" in _error(exc)[1]


def test_managed_policy_versions_default_and_attachments(iam, name):
    arn = iam.create_policy(PolicyName=name, Path="/app/", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}))["Policy"]["Arn"]
    assert arn == f"arn:aws:iam::000000000000:policy/app/{name}"
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}), SetAsDefault=True)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v2"
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert [(v["VersionId"], v["IsDefaultVersion"]) for v in versions] == [("v2", True), ("v1", False)]
    assert iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]["Document"]["Statement"][0][
        "Action"] == "s3:GetObject"
    for _ in range(3):
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=_doc(
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}))
    with pytest.raises(ClientError) as exc:
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=_doc(
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}))
    assert _error(exc)[0] == "LimitExceeded"
    iam.create_user(UserName=name)
    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    assert iam.list_entities_for_policy(PolicyArn=arn)["PolicyUsers"][0]["UserName"] == name
    with pytest.raises(ClientError) as exc:
        iam.delete_policy(PolicyArn=arn)
    assert _error(exc) == ("DeleteConflict", "Cannot delete a policy attached to entities.")
    with pytest.raises(ClientError) as exc:
        iam.attach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/NoSuchPolicy")
    assert _error(exc) == ("NoSuchEntity", "Policy arn:aws:iam::aws:policy/NoSuchPolicy does not exist or is not "
                                           "attachable.")
    aws = iam.list_policies(Scope="AWS", MaxItems=1000)["Policies"]
    assert {"AWSLambdaBasicExecutionRole", "AmazonDynamoDBFullAccess", "AdministratorAccess"} <= \
        {p["PolicyName"] for p in aws}


def test_users_groups_access_keys_and_authorization_details(iam, name):
    iam.create_user(UserName=name, Path="/devs/")
    iam.create_group(GroupName=name)
    iam.add_user_to_group(GroupName=name, UserName=name)
    iam.put_group_policy(GroupName=name, PolicyName="read", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"}))
    assert [u["UserName"] for u in iam.get_group(GroupName=name)["Users"]] == [name]
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName=name)["Groups"]] == [name]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    assert key["AccessKeyId"].startswith("AKIA") and len(key["SecretAccessKey"]) == 40
    iam.create_access_key(UserName=name)
    with pytest.raises(ClientError) as exc:
        iam.create_access_key(UserName=name)
    assert _error(exc) == ("LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2")
    listed = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert len(listed) == 2 and "SecretAccessKey" not in listed[0]
    with pytest.raises(ClientError) as exc:
        iam.delete_user(UserName=name)
    assert _error(exc)[0] == "DeleteConflict"
    details = iam.get_account_authorization_details(Filter=["User", "Group"])
    user = next(u for u in details["UserDetailList"] if u["UserName"] == name)
    assert user["GroupList"] == [name] and user["Path"] == "/devs/"
    group = next(g for g in details["GroupDetailList"] if g["GroupName"] == name)
    assert group["GroupPolicyList"][0]["PolicyName"] == "read"
    simulated = iam.simulate_principal_policy(
        PolicySourceArn=f"arn:aws:iam::000000000000:user/devs/{name}",
        ActionNames=["dynamodb:GetItem", "dynamodb:PutItem"])["EvaluationResults"]
    assert [r["EvalDecision"] for r in simulated] == ["allowed", "implicitDeny"]


def test_instance_profiles_and_service_linked_roles(iam, name):
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
    profile = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    assert profile["Arn"] == f"arn:aws:iam::000000000000:instance-profile/{name}"
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    assert iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Roles"][0]["RoleName"] == name
    assert iam.list_instance_profiles_for_role(RoleName=name)["InstanceProfiles"][0]["InstanceProfileName"] == name
    with pytest.raises(ClientError) as exc:
        iam.delete_instance_profile(InstanceProfileName=name)
    assert _error(exc)[0] == "DeleteConflict"
    role = iam.create_service_linked_role(AWSServiceName="elasticbeanstalk.amazonaws.com",
                                          CustomSuffix=name)["Role"]
    assert role["Path"] == "/aws-service-role/elasticbeanstalk.amazonaws.com/"
    assert role["RoleName"] == f"AWSServiceRoleForElasticbeanstalk_{name}"


def test_simulate_custom_policy_explicit_deny_wildcards_and_conditions(iam):
    allow_all = _doc({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::data/*"},
                     {"Effect": "Deny", "NotAction": "s3:Get*", "Resource": "arn:aws:s3:::data/secret/*"},
                     {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*",
                      "Condition": {"StringEquals": {"aws:SourceAccount": "111122223333"}}})
    results = iam.simulate_custom_policy(
        PolicyInputList=[allow_all], ActionNames=["s3:GetObject", "s3:PutObject"],
        ResourceArns=["arn:aws:s3:::data/secret/x", "arn:aws:s3:::data/open/x", "arn:aws:s3:::other/x"]
    )["EvaluationResults"]
    decisions = {(r["EvalActionName"], r["EvalResourceName"].rsplit(":", 1)[-1]): r["EvalDecision"] for r in results}
    assert decisions == {
        ("s3:GetObject", "data/secret/x"): "allowed", ("s3:GetObject", "data/open/x"): "allowed",
        ("s3:GetObject", "other/x"): "implicitDeny", ("s3:PutObject", "data/secret/x"): "explicitDeny",
        ("s3:PutObject", "data/open/x"): "allowed", ("s3:PutObject", "other/x"): "implicitDeny"}
    for account, decision in (("111122223333", "allowed"), ("999999999999", "implicitDeny")):
        result = iam.simulate_custom_policy(PolicyInputList=[allow_all], ActionNames=["sqs:SendMessage"], ContextEntries=[
            {"ContextKeyName": "aws:SourceAccount", "ContextKeyValues": [account], "ContextKeyType": "string"}])
        assert result["EvaluationResults"][0]["EvalDecision"] == decision


def test_aws_managed_policies_carry_awss_current_documents(iam):
    """AWS managed policies answer GetPolicy / GetPolicyVersion with AWS's policy id, default
    version and full document (not an abbreviation), and the simulator evaluates them."""
    policy = iam.get_policy(PolicyArn="arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess")["Policy"]
    assert (policy["PolicyId"], policy["DefaultVersionId"], policy["Path"]) == ("ANPAINUGF2JSOSUY76KYA", "v15", "/")
    doc = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId="v15")["PolicyVersion"]["Document"]
    assert doc["Statement"][1] == {"Action": "cloudwatch:GetInsightRuleReport", "Effect": "Allow",
                                   "Resource": "arn:aws:cloudwatch:*:*:insight-rule/DynamoDBContributorInsights*"}
    assert doc["Statement"][2]["Condition"]["StringLike"]["iam:PassedToService"][-1] == "dax.amazonaws.com"
    read_only = iam.get_policy(PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")["Policy"]
    text = json.dumps(iam.get_policy_version(PolicyArn=read_only["Arn"], VersionId=read_only["DefaultVersionId"])[
        "PolicyVersion"]["Document"])
    assert "dynamodb:Query" in text and "kms:Describe*" in text and "sqs:ReceiveMessage" not in text
    assert len(text) > 50_000  # the whole document, thousands of actions
    role = iam.create_role(RoleName=f"reader-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument=TRUST)["Role"]
    iam.attach_role_policy(RoleName=role["RoleName"], PolicyArn=read_only["Arn"])
    results = iam.simulate_principal_policy(PolicySourceArn=role["Arn"], ActionNames=[
        "dynamodb:Query", "s3:GetObject", "sqs:DeleteMessage"])["EvaluationResults"]
    assert {r["EvalActionName"]: r["EvalDecision"] for r in results} == {
        "dynamodb:Query": "allowed", "s3:GetObject": "allowed", "sqs:DeleteMessage": "implicitDeny"}
    names = {p["PolicyName"] for p in iam.list_policies(Scope="AWS", MaxItems=1000)["Policies"]}
    assert {"AWSLambdaBasicExecutionRole", "AmazonEventBridgeSchedulerFullAccess", "AWSIoTRuleActions",
            "AmazonKinesisFirehoseFullAccess", "AmazonAPIGatewayInvokeFullAccess"} <= names


def test_the_aws_cli_asks_sts_iam_secrets_manager_and_kms(unkai, name, tmp_path):
    """The issue's first check, with the AWS CLI itself: ``aws sts get-caller-identity``,
    ``aws iam create-role``, ``aws secretsmanager`` and ``aws kms`` against unkai."""
    import base64
    import os
    import subprocess
    import sys

    from unkai.testing import CREDENTIALS

    env = dict(os.environ, AWS_ACCESS_KEY_ID=CREDENTIALS["aws_access_key_id"],
               AWS_SECRET_ACCESS_KEY=CREDENTIALS["aws_secret_access_key"], AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))

    def aws(*args: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "awscli", "--endpoint-url", unkai.endpoint, "--output", "json",
                              *args], capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else {}

    assert aws("sts", "get-caller-identity")["Account"] == "000000000000"
    role = aws("iam", "create-role", "--role-name", name, "--assume-role-policy-document", TRUST)["Role"]
    assert role["Arn"] == f"arn:aws:iam::000000000000:role/{name}"
    aws("secretsmanager", "create-secret", "--name", name, "--secret-string", "pw")
    assert aws("secretsmanager", "get-secret-value", "--secret-id", name)["SecretString"] == "pw"
    key = aws("kms", "create-key")["KeyMetadata"]["KeyId"]
    (tmp_path / "plain").write_bytes(b"hello")
    blob = aws("kms", "encrypt", "--key-id", key, "--plaintext", f"fileb://{tmp_path / 'plain'}")["CiphertextBlob"]
    (tmp_path / "blob").write_bytes(base64.b64decode(blob))
    plain = aws("kms", "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'blob'}")["Plaintext"]
    assert base64.b64decode(plain) == b"hello"


def test_oidc_providers_are_created_read_changed_and_deleted(iam, name):
    url = f"https://oidc.{name}.example.com/id"
    arn = iam.create_open_id_connect_provider(Url=url, ClientIDList=["sts.amazonaws.com"],
                                              ThumbprintList=["a" * 40])["OpenIDConnectProviderArn"]
    assert arn == f"arn:aws:iam::000000000000:oidc-provider/oidc.{name}.example.com/id"
    with pytest.raises(ClientError) as exc:
        iam.create_open_id_connect_provider(Url=url, ThumbprintList=["a" * 40])
    assert _error(exc)[0] == "EntityAlreadyExists"
    with pytest.raises(ClientError) as exc:
        iam.create_open_id_connect_provider(Url=f"http://plain.{name}.example.com", ThumbprintList=["a" * 40])
    assert _error(exc)[0] == "ValidationError"
    iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="my-app")
    iam.update_open_id_connect_provider_thumbprint(OpenIDConnectProviderArn=arn, ThumbprintList=["b" * 40])
    got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert got["Url"] == f"oidc.{name}.example.com/id"
    assert got["ClientIDList"] == ["sts.amazonaws.com", "my-app"] and got["ThumbprintList"] == ["b" * 40]
    assert arn in [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]]
    iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    with pytest.raises(ClientError) as exc:
        iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert _error(exc)[0] == "NoSuchEntity"
