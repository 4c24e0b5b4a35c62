"""AWS::SQS::* template resources, created through the service's own operations."""

from __future__ import annotations

import json
from typing import Any

from unkai.services import Provisioned, ResourceContext
from unkai.template.names import physical_name

ATTRIBUTE_PROPS = (
    "DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled",
    "FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit",
    "RedrivePolicy", "RedriveAllowPolicy",
)


def queue_attributes(props: dict[str, Any]) -> dict[str, str]:
    attrs = {}
    for name in ATTRIBUTE_PROPS:
        if name in props and props[name] is not None:
            value = props[name]
            if isinstance(value, (dict, list)):
                value = json.dumps(value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            attrs[name] = str(value)
    return attrs


def create_queue(sqs: Any, ctx: ResourceContext, logical_id: str, props: dict[str, Any]) -> Provisioned:
    fifo = str(props.get("FifoQueue", "")).lower() == "true"
    name = props.get("QueueName") or physical_name(ctx.stack_name, logical_id, 80, ".fifo" if fifo else "")
    tags = {t["Key"]: t["Value"] for t in props.get("Tags") or []}
    rctx = ctx.request_context("sqs", "CreateQueue")
    url = sqs.create_queue(rctx, {"QueueName": name, "Attributes": queue_attributes(props), "tags": tags})["QueueUrl"]
    queue = sqs.find(ctx.account, ctx.region, name)
    return Provisioned(url, url, {"Arn": queue.arn, "QueueName": name, "QueueUrl": url})


def update_queue(sqs: Any, ctx: ResourceContext, logical_id: str, url: str, old: dict, new: dict) -> Provisioned | None:
    """Update in place, or None when the change needs a replacement."""
    if old.get("QueueName") != new.get("QueueName") or old.get("FifoQueue") != new.get("FifoQueue"):
        return None
    rctx = ctx.request_context("sqs", "SetQueueAttributes")
    attrs = queue_attributes(new)
    for name in queue_attributes(old):
        if name not in attrs and name in ("RedrivePolicy", "RedriveAllowPolicy", "KmsMasterKeyId"):
            attrs[name] = ""
    attrs.pop("FifoQueue", None)
    if attrs:
        sqs.set_queue_attributes(rctx, {"QueueUrl": url, "Attributes": attrs})
    queue = sqs._queue(rctx, url)
    tags = {t["Key"]: t["Value"] for t in new.get("Tags") or []}
    sqs._save_tags(queue, tags)
    return Provisioned(url, url, {"Arn": queue.arn, "QueueName": queue.name, "QueueUrl": url})


def set_policy(sqs: Any, ctx: ResourceContext, props: dict[str, Any], remove: bool = False) -> None:
    rctx = ctx.request_context("sqs", "SetQueueAttributes")
    document = props.get("PolicyDocument") or {}
    for url in props.get("Queues") or []:
        policy = "" if remove else (document if isinstance(document, str) else json.dumps(document))
        sqs.set_queue_attributes(rctx, {"QueueUrl": url, "Attributes": {"Policy": policy}})
