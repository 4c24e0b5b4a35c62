"""SNS template resources through `unkai up TEMPLATE`: AWS::SNS::Topic (with its inline
subscriptions), Subscription, TopicPolicy and TopicInlinePolicy, CloudFormation's Ref and
GetAtt values, and in-place updates when the template is edited."""

from __future__ import annotations

import json
import textwrap

from unkai.testing import UnkaiServer

from sns_support import bodies, drain_queue
from template_helpers import wait_for
from test_templates import outputs, write

TEMPLATE = textwrap.dedent("""\
    Resources:
      Everything:
        Type: AWS::SQS::Queue
      Important:
        Type: AWS::SQS::Queue
      Events:
        Type: AWS::SNS::Topic
        Properties:
          DisplayName: Events
          Tags:
            - {Key: team, Value: shop}
          Subscription:
            - Protocol: sqs
              Endpoint: !GetAtt Everything.Arn
      Ordered:
        Type: AWS::SNS::Topic
        Properties:
          FifoTopic: true
          ContentBasedDeduplication: true
      OnlyImportant:
        Type: AWS::SNS::Subscription
        Properties:
          TopicArn: !Ref Events
          Protocol: sqs
          Endpoint: !GetAtt Important.Arn
          RawMessageDelivery: true
          FilterPolicyScope: MessageAttributes
          FilterPolicy:
            kind: [important]
      Policy:
        Type: AWS::SNS::TopicPolicy
        Properties:
          Topics: [!Ref Events]
          PolicyDocument:
            Version: '2012-10-17'
            Statement:
              - Sid: shop
                Effect: Allow
                Principal: {Service: events.amazonaws.com}
                Action: sns:Publish
                Resource: !Ref Events
      Inline:
        Type: AWS::SNS::TopicInlinePolicy
        Properties:
          TopicArn: !Ref Ordered
          PolicyDocument:
            Version: '2012-10-17'
            Statement:
              - {Sid: inline, Effect: Allow, Principal: '*', Action: sns:Publish, Resource: !Ref Ordered}
    Outputs:
      TopicArn: {Value: !Ref Events}
      TopicArnAtt: {Value: !GetAtt Events.TopicArn}
      TopicName: {Value: !GetAtt Events.TopicName}
      OrderedName: {Value: !GetAtt Ordered.TopicName}
      Subscription: {Value: !Ref OnlyImportant}
      SubscriptionAtt: {Value: !GetAtt OnlyImportant.Arn}
      PolicyId: {Value: !Ref Policy}
      Everything: {Value: !Ref Everything}
      Important: {Value: !Ref Important}
    """)


def statement_ids(sns, arn: str) -> list[str]:
    policy = json.loads(sns.get_topic_attributes(TopicArn=arn)["Attributes"]["Policy"])
    return [s["Sid"] for s in policy["Statement"]]


def test_sns_resources_refs_and_in_place_updates(tmp_path):
    template = write(tmp_path, TEMPLATE)
    with UnkaiServer(tmp_path / "state", str(template)) as server:
        sns, sqs = server.client("sns"), server.client("sqs")
        out = outputs(server)
        arn = out["TopicArn"]
        assert arn == out["TopicArnAtt"] == f"arn:aws:sns:us-east-1:000000000000:{out['TopicName']}"
        assert out["TopicName"].startswith("app-Events-")
        assert out["OrderedName"].startswith("app-Ordered-") and out["OrderedName"].endswith(".fifo")
        assert out["Subscription"] == out["SubscriptionAtt"] and out["Subscription"].startswith(arn + ":")
        assert out["PolicyId"].startswith("app-Policy-")
        attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
        assert attrs["DisplayName"] == "Events" and attrs["SubscriptionsConfirmed"] == "2"
        assert statement_ids(sns, arn) == ["shop"]
        ordered = arn.rsplit(":", 1)[0] + ":" + out["OrderedName"]
        ordered_attrs = sns.get_topic_attributes(TopicArn=ordered)["Attributes"]
        assert ordered_attrs["ContentBasedDeduplication"] == "true" and statement_ids(sns, ordered) == ["inline"]
        assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "shop"}]

        sns.publish(TopicArn=arn, Message="routine")
        sns.publish(TopicArn=arn, Message="urgent",
                    MessageAttributes={"kind": {"DataType": "String", "StringValue": "important"}})
        assert [b["Message"] for b in bodies(sqs, out["Everything"])] == ["routine", "urgent"]
        assert [m["Body"] for m in drain_queue(sqs, out["Important"])] == ["urgent"]

        edited = (TEMPLATE.replace("DisplayName: Events", "DisplayName: Shop events")
                  .replace("RawMessageDelivery: true", "RawMessageDelivery: false")
                  .replace("Sid: shop", "Sid: shop2"))
        template.write_text(edited)
        cfn = server.client("cloudformation")
        wait_for(lambda: cfn.describe_stacks(StackName="app")["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE")
        assert outputs(server)["Subscription"] == out["Subscription"]  # updated in place
        assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "Shop events"
        assert statement_ids(sns, arn) == ["shop2"]
        sub = sns.get_subscription_attributes(SubscriptionArn=out["Subscription"])["Attributes"]
        assert sub["RawMessageDelivery"] == "false" and json.loads(sub["FilterPolicy"]) == {"kind": ["important"]}
