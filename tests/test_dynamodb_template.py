"""DynamoDB template resources through `unkai up TEMPLATE`: AWS::DynamoDB::Table and SAM's
AWS::Serverless::SimpleTable, CloudFormation's Ref (the table name) and GetAtt (Arn,
StreamArn), and in-place updates when the template is edited."""

from __future__ import annotations

import textwrap

from unkai.testing import UnkaiServer

from test_templates import outputs, wait_for, write

TEMPLATE = textwrap.dedent("""\
    Transform: AWS::Serverless-2016-10-31
    Resources:
      Users:
        Type: AWS::DynamoDB::Table
        Properties:
          BillingMode: PAY_PER_REQUEST
          AttributeDefinitions:
            - {AttributeName: email, AttributeType: S}
            - {AttributeName: haserror, AttributeType: N}
          KeySchema:
            - {AttributeName: email, KeyType: HASH}
          GlobalSecondaryIndexes:
            - IndexName: haserror-index
              KeySchema: [{AttributeName: haserror, KeyType: HASH}]
              Projection: {ProjectionType: ALL}
          StreamSpecification: {StreamViewType: NEW_IMAGE}
          TimeToLiveSpecification: {AttributeName: expires, Enabled: true}
          Tags:
            - {Key: team, Value: mail}
      Sequence:
        Type: AWS::DynamoDB::Table
        Properties:
          TableName: sequence
          AttributeDefinitions: [{AttributeName: tablename, AttributeType: S}]
          KeySchema: [{AttributeName: tablename, KeyType: HASH}]
          ProvisionedThroughput: {ReadCapacityUnits: "1", WriteCapacityUnits: "1"}
      Simple:
        Type: AWS::Serverless::SimpleTable
        Properties:
          PrimaryKey: {Name: id, Type: Number}
    Outputs:
      UsersName: {Value: !Ref Users}
      UsersArn: {Value: !GetAtt Users.Arn}
      UsersStream: {Value: !GetAtt Users.StreamArn}
      SequenceName: {Value: !Ref Sequence}
      SimpleName: {Value: !Ref Simple}
    """)


def test_tables_from_a_template_with_refs_and_in_place_updates(tmp_path):
    template = write(tmp_path, TEMPLATE)
    with UnkaiServer(tmp_path / "state", str(template)) as server:
        ddb = server.client("dynamodb")
        out = outputs(server)
        users = out["UsersName"]
        assert users.startswith("app-Users-")
        assert out["UsersArn"] == f"arn:aws:dynamodb:us-east-1:000000000000:table/{users}"
        table = ddb.describe_table(TableName=users)["Table"]
        assert out["UsersStream"] == table["LatestStreamArn"]
        assert table["GlobalSecondaryIndexes"][0]["IndexName"] == "haserror-index"
        assert ddb.describe_time_to_live(TableName=users)["TimeToLiveDescription"]["AttributeName"] == "expires"
        assert ddb.list_tags_of_resource(ResourceArn=out["UsersArn"])["Tags"] == [{"Key": "team", "Value": "mail"}]
        assert out["SequenceName"] == "sequence"
        assert ddb.describe_table(TableName="sequence")["Table"]["ProvisionedThroughput"]["ReadCapacityUnits"] == 1
        simple = ddb.describe_table(TableName=out["SimpleName"])["Table"]
        assert simple["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
        assert simple["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "N"}]
        ddb.put_item(TableName=users, Item={"email": {"S": "a@example.com"}, "haserror": {"N": "0"}})

        edited = (TEMPLATE.replace("{StreamViewType: NEW_IMAGE}", "{StreamViewType: KEYS_ONLY}")
                  .replace("{Key: team, Value: mail}", "{Key: team, Value: ops}")
                  .replace('ReadCapacityUnits: "1"', 'ReadCapacityUnits: "3"'))
        template.write_text(edited)
        cfn = server.client("cloudformation")
        wait_for(lambda: cfn.describe_stacks(StackName="app")["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE")
        after = outputs(server)
        assert after["UsersName"] == users  # updated in place: the data is still there
        assert ddb.get_item(TableName=users, Key={"email": {"S": "a@example.com"}})["Item"]
        assert after["UsersStream"] != out["UsersStream"]
        assert ddb.describe_table(TableName=users)["Table"]["StreamSpecification"]["StreamViewType"] == "KEYS_ONLY"
        assert ddb.list_tags_of_resource(ResourceArn=out["UsersArn"])["Tags"] == [{"Key": "team", "Value": "ops"}]
        assert ddb.describe_table(TableName="sequence")["Table"]["ProvisionedThroughput"]["ReadCapacityUnits"] == 3
