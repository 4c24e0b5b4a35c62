"""EventBridge custom event buses through boto3: their lifecycle, rules and targets on
them, events routed by bus (and from one bus to another), resource policies, tags,
PutEvents entry errors with AWS's texts. Templates: test_events_template.py."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from unkai.testing import new_queue, receive_all

ACCOUNT = "000000000000"


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error(exc: pytest.ExceptionInfo) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def test_custom_bus_lifecycle_as_aws_describes_it(unkai):
    events = unkai.client("events")
    name = uid("orders")
    created = events.create_event_bus(Name=name, Description="orders bus", Tags=[{"Key": "team", "Value": "a"}])
    arn = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/{name}"
    assert created["EventBusArn"] == arn
    assert created["Description"] == "orders bus"
    described = events.describe_event_bus(Name=name)
    assert described["Name"] == name and described["Arn"] == arn and described["Description"] == "orders bus"
    assert "CreationTime" in described and "LastModifiedTime" in described
    assert "Policy" not in described
    assert events.describe_event_bus(Name=arn)["Name"] == name  # an ARN names the bus too
    default = events.describe_event_bus()
    assert default["Name"] == "default" and default["Arn"] == f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"
    names = [b["Name"] for b in events.list_event_buses()["EventBuses"]]
    assert "default" in names and name in names
    assert [b["Name"] for b in events.list_event_buses(NamePrefix=name)["EventBuses"]] == [name]
    assert events.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "team", "Value": "a"}]

    updated = events.update_event_bus(Name=name, Description="renamed")
    assert updated["Arn"] == arn and updated["Description"] == "renamed"

    with pytest.raises(ClientError) as exc:
        events.create_event_bus(Name=name)
    assert error(exc) == ("ResourceAlreadyExistsException", f"Event bus {name} already exists.")
    with pytest.raises(ClientError) as exc:
        events.delete_event_bus(Name="default")
    assert error(exc) == ("ValidationException", "Cannot delete event bus default.")
    with pytest.raises(ClientError) as exc:
        events.create_event_bus(Name="a/b")
    assert error(exc) == ("ValidationException", "Event bus name must not contain '/'.")

    events.put_rule(Name="r1", EventBusName=name, EventPattern='{"source": ["x"]}')
    events.delete_event_bus(Name=name)
    with pytest.raises(ClientError) as exc:
        events.describe_event_bus(Name=name)
    assert error(exc) == ("ResourceNotFoundException", f"Event bus {name} does not exist.")
    events.delete_event_bus(Name=name)  # deleting a bus that is gone succeeds, as on AWS


def test_rules_live_on_their_bus_and_events_reach_only_that_bus(unkai):
    events, sqs = unkai.client("events"), unkai.client("sqs")
    bus = uid("shop")
    events.create_event_bus(Name=bus)
    url, queue_arn = new_queue(sqs)
    rule = uid("paid")
    rule_arn = events.put_rule(Name=rule, EventBusName=bus, EventPattern='{"source": ["shop"]}')["RuleArn"]
    assert rule_arn == f"arn:aws:events:us-east-1:{ACCOUNT}:rule/{bus}/{rule}"
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    assert [r["Name"] for r in events.list_rules(EventBusName=bus)["Rules"]] == [rule]
    assert rule not in [r["Name"] for r in events.list_rules()["Rules"]]
    assert events.describe_rule(Name=rule, EventBusName=bus)["EventBusName"] == bus
    with pytest.raises(ClientError) as exc:
        events.describe_rule(Name=rule)
    assert error(exc) == ("ResourceNotFoundException", f"Rule {rule} does not exist on EventBus default.")
    assert events.list_rule_names_by_target(TargetArn=queue_arn, EventBusName=bus)["RuleNames"] == [rule]
    assert events.list_rule_names_by_target(TargetArn=queue_arn)["RuleNames"] == []

    entry = {"Source": "shop", "DetailType": "paid", "Detail": '{"n": 1}'}
    events.put_events(Entries=[entry])  # the default bus: no rule of ours there
    sent = events.put_events(Entries=[dict(entry, EventBusName=bus),
                                      dict(entry, EventBusName=f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/{bus}")])
    unkai.drain()
    bodies = [json.loads(b) for b in receive_all(sqs, url)]
    assert sorted(b["id"] for b in bodies) == sorted(e["EventId"] for e in sent["Entries"])

    with pytest.raises(ClientError) as exc:
        events.put_rule(Name="r", EventBusName="no-such-bus", EventPattern='{"source": ["x"]}')
    assert error(exc) == ("ResourceNotFoundException", "Event bus no-such-bus does not exist.")
    with pytest.raises(ClientError) as exc:
        events.put_rule(Name="r", EventBusName=bus, ScheduleExpression="rate(1 minute)")
    assert error(exc) == ("ValidationException", "ScheduleExpression is supported only on the default event bus.")
    # an event for a bus that does not exist is accepted (and goes nowhere), as AWS answers it
    assert events.put_events(Entries=[dict(entry, EventBusName="no-such-bus")])["FailedEntryCount"] == 0


def test_a_rule_can_target_another_bus(unkai):
    events, sqs = unkai.client("events"), unkai.client("sqs")
    central = uid("central")
    events.create_event_bus(Name=central)
    central_arn = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/{central}"
    url, queue_arn = new_queue(sqs)
    forward = uid("forward")
    events.put_rule(Name=forward, EventPattern='{"source": ["billing"]}')
    events.put_targets(Rule=forward, Targets=[{"Id": "bus", "Arn": central_arn}])
    collect = uid("collect")
    events.put_rule(Name=collect, EventBusName=central, EventPattern='{"detail-type": ["invoice"]}')
    events.put_targets(Rule=collect, EventBusName=central, Targets=[{"Id": "q", "Arn": queue_arn}])
    sent = events.put_events(Entries=[{"Source": "billing", "DetailType": "invoice", "Detail": '{"total": 3}'},
                                      {"Source": "billing", "DetailType": "refund", "Detail": '{"total": 3}'}])
    unkai.drain()
    bodies = [json.loads(b) for b in receive_all(sqs, url)]
    assert len(bodies) == 1
    assert bodies[0]["id"] == sent["Entries"][0]["EventId"] and bodies[0]["detail"] == {"total": 3}
    events.delete_rule(Name=forward, Force=True)


def test_put_permission_builds_the_bus_policy_and_remove_permission_takes_it_back(unkai):
    events = unkai.client("events")
    bus = uid("shared")
    events.create_event_bus(Name=bus)
    arn = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/{bus}"
    events.put_permission(EventBusName=bus, Action="events:PutEvents", Principal="111111111111",
                          StatementId="AllowAccount1")
    events.put_permission(EventBusName=bus, Action="events:PutEvents", Principal="*", StatementId="AllowOrg",
                          Condition={"Type": "StringEquals", "Key": "aws:PrincipalOrgID", "Value": "o-1234"})
    policy = json.loads(events.describe_event_bus(Name=bus)["Policy"])
    assert policy["Version"] == "2012-10-17"
    assert policy["Statement"] == [
        {"Sid": "AllowAccount1", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
         "Action": "events:PutEvents", "Resource": arn},
        {"Sid": "AllowOrg", "Effect": "Allow", "Principal": "*", "Action": "events:PutEvents", "Resource": arn,
         "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1234"}}}]
    listed = [b for b in events.list_event_buses(NamePrefix=bus)["EventBuses"]]
    assert json.loads(listed[0]["Policy"]) == policy

    with pytest.raises(ClientError) as exc:
        events.put_permission(EventBusName=bus, Action="events:PutRule", Principal="111111111111", StatementId="x")
    assert error(exc) == ("ValidationException", "Provided value in parameter 'action' is not supported.")
    with pytest.raises(ClientError) as exc:
        events.put_permission(EventBusName=bus, Action="events:PutEvents", Principal="123", StatementId="x")
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as exc:
        events.remove_permission(EventBusName=bus, StatementId="nope")
    assert error(exc) == ("ResourceNotFoundException", "Statement with the provided id does not exist.")

    events.remove_permission(EventBusName=bus, StatementId="AllowAccount1")
    assert [s["Sid"] for s in json.loads(events.describe_event_bus(Name=bus)["Policy"])["Statement"]] == ["AllowOrg"]
    events.remove_permission(EventBusName=bus, RemoveAllPermissions=True)
    assert "Policy" not in events.describe_event_bus(Name=bus)
    with pytest.raises(ClientError) as exc:
        events.remove_permission(EventBusName=bus, StatementId="AllowOrg")
    assert error(exc) == ("ResourceNotFoundException", "EventBus does not have a policy.")
    whole = {"Version": "2012-10-17", "Statement": [{"Sid": "All", "Effect": "Allow", "Principal": "*",
                                                     "Action": "events:PutEvents", "Resource": arn}]}
    events.put_permission(EventBusName=bus, Policy=json.dumps(whole))
    assert json.loads(events.describe_event_bus(Name=bus)["Policy"]) == whole
    events.delete_event_bus(Name=bus)


def test_tags_on_rules_and_buses(unkai):
    events = unkai.client("events")
    bus = uid("tagged")
    bus_arn = events.create_event_bus(Name=bus)["EventBusArn"]
    rule_arn = events.put_rule(Name="t", EventBusName=bus, EventPattern='{"source": ["x"]}',
                               Tags=[{"Key": "a", "Value": "1"}])["RuleArn"]
    events.tag_resource(ResourceARN=rule_arn, Tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "3"}])
    assert events.list_tags_for_resource(ResourceARN=rule_arn)["Tags"] == [{"Key": "a", "Value": "3"},
                                                                         {"Key": "b", "Value": "2"}]
    events.untag_resource(ResourceARN=rule_arn, TagKeys=["a"])
    assert events.list_tags_for_resource(ResourceARN=rule_arn)["Tags"] == [{"Key": "b", "Value": "2"}]
    events.tag_resource(ResourceARN=bus_arn, Tags=[{"Key": "env", "Value": "dev"}])
    assert events.list_tags_for_resource(ResourceARN=bus_arn)["Tags"] == [{"Key": "env", "Value": "dev"}]
    with pytest.raises(ClientError) as exc:
        events.list_tags_for_resource(ResourceARN=f"arn:aws:events:us-east-1:{ACCOUNT}:rule/{bus}/nope")
    assert error(exc) == ("ResourceNotFoundException", f"Rule nope does not exist on EventBus {bus}.")
    events.delete_event_bus(Name=bus)


@pytest.mark.parametrize("missing", ["Source", "DetailType", "Detail"])
def test_put_events_names_the_missing_argument_as_aws_does(unkai, missing):
    events = unkai.client("events")
    entry = {"Source": "s", "DetailType": "t", "Detail": "{}"}
    del entry[missing]
    result = events.put_events(Entries=[entry, {"Source": "s", "DetailType": "t", "Detail": "[1]"}])
    assert result["FailedEntryCount"] == 2
    assert result["Entries"] == [
        {"ErrorCode": "InvalidArgument",
         "ErrorMessage": f"Parameter {missing} is not valid. Reason: {missing} is a required argument."},
        {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}]

