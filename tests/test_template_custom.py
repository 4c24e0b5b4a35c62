"""Custom resources: the stack's own function is sent CloudFormation's Create, Update
and Delete requests and answers at the ResponseURL, as on AWS."""

from __future__ import annotations

import json
import textwrap

import pytest
from template_helpers import wait_for

from unkai.testing import UnkaiServer, receive_all

pytest.importorskip("unkai.services.awslambda", reason="the Lambda service is not in this build yet")

TEMPLATE = textwrap.dedent("""\
    Transform: AWS::Serverless-2016-10-31
    Resources:
      Requests:
        Type: AWS::SQS::Queue
        Properties:
          QueueName: requests
      Handler:
        Type: AWS::Serverless::Function
        Properties:
          Runtime: python3.12
          CodeUri: src/
          Handler: app.handler
          Environment:
            Variables:
              QUEUE_URL: !Ref Requests
      Thing:
        Type: Custom::Thing
        Properties:
          ServiceToken: !GetAtt Handler.Arn
          Color: blue
          Count: 3
          Site: !Sub "https://abc123defg.execute-api.${AWS::Region}.amazonaws.com/Prod/page"
    Outputs:
      Greeting:
        Value: !GetAtt Thing.Greeting
      ThingId:
        Value: !Ref Thing
    """)

HANDLER = textwrap.dedent("""\
    import json, os, urllib.request
    import boto3

    sqs = boto3.client("sqs")

    def handler(event, context):
        sqs.send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody=json.dumps(event))
        color = event["ResourceProperties"]["Color"]
        if color == "crash":
            raise RuntimeError("boom")
        status = "FAILED" if color == "red" else "SUCCESS"
        body = json.dumps({
            "Status": status, "Reason": "red is not allowed" if status == "FAILED" else "",
            "PhysicalResourceId": f"thing-{color}", "StackId": event["StackId"],
            "RequestId": event["RequestId"], "LogicalResourceId": event["LogicalResourceId"],
            "Data": {"Greeting": f"hello {color}"},
        }).encode()
        request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT",
                                         headers={"Content-Type": ""})
        urllib.request.urlopen(request).read()
    """)


def requests(server: UnkaiServer) -> list[dict]:
    url = server.client("sqs").get_queue_url(QueueName="requests")["QueueUrl"]
    return [json.loads(body) for body in receive_all(server.client("sqs"), url)]


def outputs(server: UnkaiServer) -> dict[str, str]:
    stack = server.client("cloudformation").describe_stacks()["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def test_custom_resource_lifecycle(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(HANDLER)
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE)
    with UnkaiServer(tmp_path / "state", str(template)) as server:
        assert outputs(server) == {"Greeting": "hello blue", "ThingId": "thing-blue"}
        (create,) = requests(server)
        assert create["RequestType"] == "Create"
        assert create["ResourceType"] == "Custom::Thing" and create["LogicalResourceId"] == "Thing"
        props = create["ResourceProperties"]
        assert props["Color"] == "blue" and props["Count"] == "3"  # scalars arrive as strings, as from CloudFormation
        assert props["ServiceToken"].startswith("arn:aws:lambda:us-east-1:000000000000:function:")
        assert props["Site"] == f"{server.endpoint}/_unkai/execute-api/abc123defg/Prod/page"
        assert create["ResponseURL"].startswith(server.endpoint + "/")
        assert create["StackId"].startswith("arn:aws:cloudformation:us-east-1:000000000000:stack/")

        cfn = server.client("cloudformation")
        template.write_text(TEMPLATE.replace("Color: blue", "Color: green"))
        wait_for(lambda: outputs(server).get("Greeting") == "hello green", timeout=120)
        update, delete = requests(server)
        assert update["RequestType"] == "Update" and update["PhysicalResourceId"] == "thing-blue"
        assert update["OldResourceProperties"]["Color"] == "blue"
        assert delete["RequestType"] == "Delete" and delete["PhysicalResourceId"] == "thing-blue"

        template.write_text(TEMPLATE.replace("Color: blue", "Color: red"))
        wait_for(lambda: cfn.describe_stacks()["Stacks"][0]["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE", timeout=120)
        thing = cfn.describe_stack_resource(StackName=cfn.describe_stacks()["Stacks"][0]["StackName"],
                                            LogicalResourceId="Thing")["StackResourceDetail"]
        assert thing["ResourceStatus"] == "UPDATE_FAILED"
        assert "red is not allowed" in thing["ResourceStatusReason"]
        assert thing["PhysicalResourceId"] == "thing-green"  # the old resource is kept

        template.write_text(TEMPLATE.replace("Color: blue", "Color: crash"))
        wait_for(lambda: "boom" in server.output(), timeout=120)

        template.write_text(TEMPLATE.split("  Thing:")[0] + "\n")
        wait_for(lambda: any(r["RequestType"] == "Delete" and r["PhysicalResourceId"] == "thing-green"
                             for r in requests(server)), timeout=120)
