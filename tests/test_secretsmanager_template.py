"""Template side of Secrets Manager and KMS: a generated secret, a key and its alias, and
``{{resolve:secretsmanager:...}}`` / ``{{resolve:ssm:...}}`` dynamic references resolved
when resources are created."""

from __future__ import annotations

import json
import textwrap

from unkai.testing import UnkaiServer

TEMPLATE = textwrap.dedent("""\
    AWSTemplateFormatVersion: '2010-09-09'
    Resources:
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
      Jobs:
        Type: AWS::SQS::Queue
        DependsOn: [DbSecret, Stage]
        Properties:
          Tags:
            - Key: user
              Value: '{{resolve:secretsmanager:app/db:SecretString:username}}'
            - Key: stage
              Value: '{{resolve:ssm:/app/stage}}'
    Outputs:
      SecretArn:
        Value: !Ref DbSecret
      KeyArn:
        Value: !GetAtt Key.Arn
      QueueUrl:
        Value: !Ref Jobs
    """)


def test_secrets_keys_and_dynamic_references_from_a_template(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "template.yaml").write_text(TEMPLATE)
    with UnkaiServer(tmp_path / "state", str(tmp_path / "app" / "template.yaml")) as server:
        stack = server.client("cloudformation").describe_stacks(StackName="app")["Stacks"][0]
        out = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        sm, kms, sqs = server.client("secretsmanager"), server.client("kms"), server.client("sqs")
        value = json.loads(sm.get_secret_value(SecretId=out["SecretArn"])["SecretString"])
        assert value["username"] == "admin" and len(value["password"]) == 24 and value["password"].isalnum()
        key_id = kms.describe_key(KeyId="alias/app-data")["KeyMetadata"]["KeyId"]
        assert out["KeyArn"].endswith(key_id)
        assert sm.describe_secret(SecretId="app/db")["KmsKeyId"] == key_id
        assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"]
        assert sqs.list_queue_tags(QueueUrl=out["QueueUrl"])["Tags"] == {"user": "admin", "stage": "blue"}
        assert value["password"] not in server.output()
