"""EventBridge's template resources deployed by ``unkai up TEMPLATE`` and read back through
the API: a SAM function with an EventBridgeRule event on a custom bus, the bus with a policy, a rule on it, an archive of it, a connection and an
API destination, a pipe from a queue to the bus."""

from __future__ import annotations

import json

from unkai.testing import UnkaiServer, receive_all

ACCOUNT = "000000000000"

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  OnBusFunction:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.11
      Handler: index.handler
      InlineCode: "def handler(event, context): return event"
      Events:
        Paid:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref Bus
            Pattern: {source: [billing]}
  Bus:
    Type: AWS::Events::EventBus
    Properties:
      Name: !Sub "${AWS::StackName}-bus"
      Description: from a template
  BusPolicy:
    Type: AWS::Events::EventBusPolicy
    Properties:
      EventBusName: !Ref Bus
      StatementId: AllowOther
      Action: events:PutEvents
      Principal: "222222222222"
  Queue:
    Type: AWS::SQS::Queue
  OnBus:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref Bus
      EventPattern: {source: [tmpl]}
      Targets:
        - Id: q
          Arn: !GetAtt Queue.Arn
  Keep:
    Type: AWS::Events::Archive
    Properties:
      SourceArn: !GetAtt Bus.Arn
      RetentionDays: 7
      EventPattern: {source: [tmpl]}
  Conn:
    Type: AWS::Events::Connection
    Properties:
      AuthorizationType: API_KEY
      AuthParameters:
        ApiKeyAuthParameters: {ApiKeyName: x-api-key, ApiKeyValue: from-template}
  Hook:
    Type: AWS::Events::ApiDestination
    Properties:
      ConnectionArn: !GetAtt Conn.Arn
      InvocationEndpoint: http://127.0.0.1:1/hook
      HttpMethod: POST
      InvocationRateLimitPerSecond: 20
  Inbound:
    Type: AWS::SQS::Queue
  Piped:
    Type: AWS::Pipes::Pipe
    Properties:
      RoleArn: !Sub "arn:aws:iam::${AWS::AccountId}:role/pipe"
      Source: !GetAtt Inbound.Arn
      Target: !GetAtt Bus.Arn
      TargetParameters:
        EventBridgeEventBusParameters: {Source: tmpl, DetailType: piped}
Outputs:
  InboundUrl: {Value: !Ref Inbound}
  PipeName: {Value: !Ref Piped}
  PipeArn: {Value: !GetAtt Piped.Arn}
  ConnName: {Value: !Ref Conn}
  ConnArn: {Value: !GetAtt Conn.Arn}
  HookArn: {Value: !GetAtt Hook.Arn}
  HookName: {Value: !Ref Hook}
  BusArn: {Value: !GetAtt Bus.Arn}
  BusName: {Value: !GetAtt Bus.Name}
  QueueUrl: {Value: !Ref Queue}
  ArchiveName: {Value: !Ref Keep}
  ArchiveArn: {Value: !GetAtt Keep.Arn}
"""


def test_template_bus_policy_rule_and_archive(tmp_path):
    template = tmp_path / "app" / "template.yaml"
    template.parent.mkdir()
    template.write_text(TEMPLATE)
    with UnkaiServer(tmp_path / "state", str(template)) as server:
        cfn = server.client("cloudformation")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks()["Stacks"][0]["Outputs"]}
        name = "app-bus"
        assert outputs["BusName"] == name
        assert outputs["BusArn"] == f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/{name}"
        events = server.client("events")
        bus = events.describe_event_bus(Name=name)
        assert bus["Description"] == "from a template"
        assert [s["Sid"] for s in json.loads(bus["Policy"])["Statement"]] == ["AllowOther"]
        archive = events.describe_archive(ArchiveName=outputs["ArchiveName"])
        assert archive["ArchiveArn"] == outputs["ArchiveArn"] and archive["EventSourceArn"] == outputs["BusArn"]
        assert archive["RetentionDays"] == 7
        events.put_events(Entries=[{"Source": "tmpl", "DetailType": "t", "Detail": "{}", "EventBusName": name}])
        server.drain()
        assert len(receive_all(server.client("sqs"), outputs["QueueUrl"])) == 1
        assert events.describe_archive(ArchiveName=outputs["ArchiveName"])["EventCount"] == 1
        sam_rules = [r for r in events.list_rules(EventBusName=name)["Rules"] if "Paid" in r["Name"]]
        assert len(sam_rules) == 1 and json.loads(sam_rules[0]["EventPattern"]) == {"source": ["billing"]}
        sam_targets = events.list_targets_by_rule(Rule=sam_rules[0]["Name"], EventBusName=name)["Targets"]
        assert ":function:" in sam_targets[0]["Arn"] and "OnBusFunction" in sam_targets[0]["Arn"]
        pipe = server.client("pipes").describe_pipe(Name=outputs["PipeName"])
        assert pipe["Arn"] == outputs["PipeArn"] and pipe["CurrentState"] == "RUNNING"
        server.client("sqs").send_message(QueueUrl=outputs["InboundUrl"], MessageBody='{"via": "pipe"}')
        server.drain()
        piped = [json.loads(b) for b in receive_all(server.client("sqs"), outputs["QueueUrl"])]
        assert [(e["detail-type"], json.loads(e["detail"]["body"])) for e in piped] == [("piped", {"via": "pipe"})]
        conn = events.describe_connection(Name=outputs["ConnName"])
        assert conn["ConnectionArn"] == outputs["ConnArn"] and conn["AuthorizationType"] == "API_KEY"
        hook = events.describe_api_destination(Name=outputs["HookName"])
        assert hook["ApiDestinationArn"] == outputs["HookArn"] and hook["InvocationRateLimitPerSecond"] == 20
