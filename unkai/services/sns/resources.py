"""AWS::SNS::* template resources, created through the service's own operations so a
template's topic behaves exactly like an API-created one. Ref and Fn::GetAtt follow
CloudFormation: a Topic's Ref is its ARN (GetAtt TopicArn, TopicName), a
Subscription's Ref is its ARN (GetAtt Arn), a TopicPolicy's Ref is its id."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from unkai.protocol import ServiceError
from unkai.services import Provisioned, ResourceContext
from unkai.template.names import physical_name

if TYPE_CHECKING:
    from unkai.services.sns.service import SNS

TYPES = ("AWS::SNS::Topic", "AWS::SNS::Subscription", "AWS::SNS::TopicPolicy", "AWS::SNS::TopicInlinePolicy")
TOPIC_ATTRIBUTES = ("DisplayName", "KmsMasterKeyId", "SignatureVersion", "TracingConfig", "ContentBasedDeduplication",
                    "ArchivePolicy", "FifoThroughputScope")
SUBSCRIPTION_ATTRIBUTES = ("DeliveryPolicy", "FilterPolicy", "FilterPolicyScope", "RawMessageDelivery",
                           "RedrivePolicy", "ReplayPolicy", "SubscriptionRoleArn")
_FEEDBACK_PROTOCOL = {"http/s": "HTTP", "sqs": "SQS", "lambda": "Lambda", "firehose": "Firehose",
                      "application": "Application"}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _is_true(value: Any) -> bool:
    return _text(value).lower() == "true"


def topic_attributes(props: dict[str, Any]) -> dict[str, str]:
    out = {name: _text(props[name]) for name in TOPIC_ATTRIBUTES if props.get(name) is not None}
    for logging in props.get("DeliveryStatusLogging") or []:
        prefix = _FEEDBACK_PROTOCOL.get(str(logging.get("Protocol", "")).lower())
        if prefix is None:
            continue
        for key in ("SuccessFeedbackRoleArn", "SuccessFeedbackSampleRate", "FailureFeedbackRoleArn"):
            if logging.get(key) is not None:
                out[f"{prefix}{key}"] = _text(logging[key])
    return out


def subscription_attributes(props: dict[str, Any]) -> dict[str, str]:
    return {name: _text(props[name]) for name in SUBSCRIPTION_ATTRIBUTES if props.get(name) is not None}


def create(sns: "SNS", ctx: ResourceContext, resource_type: str, logical_id: str, props: dict) -> Provisioned:
    rctx = ctx.request_context("sns")
    if resource_type == "AWS::SNS::Topic":
        fifo = _is_true(props.get("FifoTopic", False))
        name = props.get("TopicName") or physical_name(ctx.stack_name, logical_id, 256, ".fifo" if fifo else "")
        attributes = topic_attributes(props)
        if fifo:
            attributes["FifoTopic"] = "true"
        params: dict[str, Any] = {"Name": name, "Attributes": attributes, "Tags": props.get("Tags") or []}
        if props.get("DataProtectionPolicy"):
            params["DataProtectionPolicy"] = _text(props["DataProtectionPolicy"])
        arn = sns.create_topic(rctx, params)["TopicArn"]
        for item in props.get("Subscription") or []:
            sns.subscribe(rctx, {"TopicArn": arn, "Protocol": item["Protocol"], "Endpoint": item["Endpoint"],
                                 "ReturnSubscriptionArn": True})
        return Provisioned(arn, arn, {"TopicArn": arn, "TopicName": name})
    if resource_type == "AWS::SNS::Subscription":
        arn = sns.subscribe(rctx, {"TopicArn": props["TopicArn"], "Protocol": props["Protocol"],
                                   "Endpoint": props.get("Endpoint"), "ReturnSubscriptionArn": True,
                                   "Attributes": subscription_attributes(props)})["SubscriptionArn"]
        return Provisioned(arn, arn, {"Arn": arn})
    if resource_type == "AWS::SNS::TopicPolicy":
        policy_id = physical_name(ctx.stack_name, logical_id, 256)
        _set_policy(sns, rctx, props.get("Topics") or [], props.get("PolicyDocument"))
        return Provisioned(policy_id, policy_id, {"Id": policy_id})
    _set_policy(sns, rctx, [props["TopicArn"]], props.get("PolicyDocument"))
    return Provisioned(props["TopicArn"])


def update(sns: "SNS", ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
           old: dict, new: dict) -> Provisioned | None:
    """Update in place where CloudFormation does; None when the change needs a replacement."""
    rctx = ctx.request_context("sns")
    if resource_type == "AWS::SNS::Topic":
        if old.get("TopicName") != new.get("TopicName") or _is_true(old.get("FifoTopic", False)) != _is_true(
                new.get("FifoTopic", False)):
            return None
        topic = sns._topic(physical_id)
        for name, value in _changes(topic_attributes(old), topic_attributes(new), "ContentBasedDeduplication"):
            sns.set_topic_attributes(rctx, {"TopicArn": physical_id, "AttributeName": name, "AttributeValue": value})
        sns._save_tags(topic, {t["Key"]: t["Value"] for t in new.get("Tags") or []})
        wanted = {(s["Protocol"], s["Endpoint"]) for s in new.get("Subscription") or []}
        had = {(s["Protocol"], s["Endpoint"]) for s in old.get("Subscription") or []}
        for sub in list(sns.subscriptions(topic)):
            if (sub.protocol, sub.endpoint) in had - wanted:
                sns.remove_subscription(sub, ctx.base_url)
        for protocol, endpoint in wanted - had:
            sns.subscribe(rctx, {"TopicArn": physical_id, "Protocol": protocol, "Endpoint": endpoint,
                                 "ReturnSubscriptionArn": True})
        return Provisioned(physical_id, physical_id, {"TopicArn": physical_id, "TopicName": topic.name})
    if resource_type == "AWS::SNS::Subscription":
        if any(old.get(k) != new.get(k) for k in ("Protocol", "Endpoint", "TopicArn", "Region")):
            return None
        for name, value in _changes(subscription_attributes(old), subscription_attributes(new), "RawMessageDelivery"):
            sns.set_subscription_attributes(rctx, {"SubscriptionArn": physical_id, "AttributeName": name,
                                                   "AttributeValue": value})
        return Provisioned(physical_id, physical_id, {"Arn": physical_id})
    if resource_type == "AWS::SNS::TopicPolicy":
        removed = set(old.get("Topics") or []) - set(new.get("Topics") or [])
        _set_policy(sns, rctx, sorted(removed), None)
        _set_policy(sns, rctx, new.get("Topics") or [], new.get("PolicyDocument"))
        return Provisioned(physical_id, physical_id, {"Id": physical_id})
    if old.get("TopicArn") != new.get("TopicArn"):
        return None
    _set_policy(sns, rctx, [new["TopicArn"]], new.get("PolicyDocument"))
    return Provisioned(physical_id)


def delete(sns: "SNS", ctx: ResourceContext, resource_type: str, physical_id: str, props: dict) -> None:
    rctx = ctx.request_context("sns")
    if resource_type == "AWS::SNS::Topic":
        sns.delete_topic(rctx, {"TopicArn": physical_id})
    elif resource_type == "AWS::SNS::Subscription":
        sub = sns.subscription(physical_id)
        if sub is not None:
            sns.remove_subscription(sub, ctx.base_url)
    elif resource_type == "AWS::SNS::TopicPolicy":
        _set_policy(sns, rctx, props.get("Topics") or [], None)
    else:
        _set_policy(sns, rctx, [props.get("TopicArn")], None)


def _changes(before: dict[str, str], after: dict[str, str], boolean: str) -> list[tuple[str, str]]:
    """Attributes to set for an in-place update; a removed one goes back to its default."""
    return [(name, after.get(name, "false" if name == boolean else "")) for name in sorted(set(before) | set(after))
            if before.get(name) != after.get(name)]


def _set_policy(sns: "SNS", rctx: Any, topics: list, document: Any) -> None:
    """Set (or, with no document, reset to the default) the access policy of each topic."""
    value = "" if document is None else (document if isinstance(document, str) else _text(document))
    for arn in topics:
        try:
            sns.set_topic_attributes(rctx, {"TopicArn": arn, "AttributeName": "Policy", "AttributeValue": value})
        except ServiceError:
            if document is not None:
                raise  # a policy for a topic that does not exist is an error; removing one is not
