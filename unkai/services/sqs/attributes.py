"""Queue attributes: defaults, validation and the values AWS reports."""

from __future__ import annotations

import json
import re
from typing import Any

from unkai.protocol import ServiceError

DEFAULTS = {
    "DelaySeconds": "0",
    "MaximumMessageSize": "1048576",
    "MessageRetentionPeriod": "345600",
    "ReceiveMessageWaitTimeSeconds": "0",
    "VisibilityTimeout": "30",
    "SqsManagedSseEnabled": "true",
}
FIFO_DEFAULTS = {
    "FifoQueue": "true",
    "ContentBasedDeduplication": "false",
    "DeduplicationScope": "queue",
    "FifoThroughputLimit": "perQueue",
}
RANGES = {
    "DelaySeconds": (0, 900),
    "MaximumMessageSize": (1024, 1048576),
    "MessageRetentionPeriod": (60, 1209600),
    "ReceiveMessageWaitTimeSeconds": (0, 20),
    "VisibilityTimeout": (0, 43200),
    "KmsDataKeyReusePeriodSeconds": (60, 86400),
}
SETTABLE = set(RANGES) | {
    "Policy", "RedrivePolicy", "RedriveAllowPolicy", "KmsMasterKeyId", "SqsManagedSseEnabled",
    "FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit",
}
COMPUTED = {
    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp", "LastModifiedTimestamp", "QueueArn",
}
ALL_NAMES = SETTABLE | COMPUTED
BOOLEANS = {"FifoQueue", "ContentBasedDeduplication", "SqsManagedSseEnabled"}
QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
QUEUE_ARN = re.compile(r"^arn:aws[a-z-]*:sqs:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_.-]{1,80})$")


def invalid(name: str, reason: str = "") -> ServiceError:
    message = f"Invalid value for the parameter {name}."
    if reason:
        message += f" Reason: {reason}"
    return ServiceError("InvalidAttributeValue", message)


def validate(attrs: dict[str, str], fifo: bool, creating: bool) -> dict[str, str]:
    """Check attributes a client sets; returns them normalised (booleans lower-case)."""
    out: dict[str, str] = {}
    for name, value in attrs.items():
        if name not in SETTABLE:
            raise ServiceError("InvalidAttributeName", f"Unknown Attribute {name}.")
        value = str(value)
        if name in RANGES:
            lo, hi = RANGES[name]
            if not re.fullmatch(r"-?\d+", value.strip()) or not lo <= int(value) <= hi:
                raise invalid(name)
            value = str(int(value))
        elif name in BOOLEANS:
            if value.lower() not in ("true", "false"):
                raise invalid(name)
            value = value.lower()
        elif name == "RedrivePolicy":
            value = _redrive_policy(value, fifo)
        elif name == "RedriveAllowPolicy":
            value = _redrive_allow_policy(value)
        elif name == "Policy" and value:
            try:
                json.loads(value)
            except ValueError:
                raise invalid(name, "Policy is not valid JSON.") from None
        elif name == "DeduplicationScope" and value not in ("queue", "messageGroup"):
            raise invalid(name)
        elif name == "FifoThroughputLimit" and value not in ("perQueue", "perMessageGroupId"):
            raise invalid(name)
        out[name] = value
    if "FifoQueue" in out:
        if not creating:
            raise invalid("FifoQueue", "Modifying queue type is not supported.")
        if out["FifoQueue"] == "false" and fifo:
            raise invalid("FifoQueue")
        if out["FifoQueue"] == "true" and not fifo:
            raise invalid("FifoQueue", "The queue name must end with the .fifo suffix for a FIFO queue.")
        if out["FifoQueue"] == "false":
            del out["FifoQueue"]
    if not fifo:
        for name in ("ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"):
            if name in out:
                raise ServiceError("InvalidAttributeName", f"Unknown Attribute {name}.")
    return out


def _redrive_policy(value: str, fifo: bool) -> str:
    if value == "":
        return ""
    try:
        policy = json.loads(value)
    except ValueError:
        raise invalid("RedrivePolicy", "Redrive policy is not a valid JSON map.") from None
    if not isinstance(policy, dict):
        raise invalid("RedrivePolicy", "Redrive policy is not a valid JSON map.")
    target = policy.get("deadLetterTargetArn")
    count = policy.get("maxReceiveCount")
    if not target or count is None:
        raise invalid("RedrivePolicy", "Redrive policy does not contain mandatory attribute: "
                      + ("deadLetterTargetArn." if not target else "maxReceiveCount."))
    if not isinstance(target, str) or not QUEUE_ARN.match(target):
        raise invalid("RedrivePolicy", "Invalid value for deadLetterTargetArn.")
    try:
        count = int(count)
    except (TypeError, ValueError):
        raise invalid("RedrivePolicy", "Invalid value for maxReceiveCount: must be an integer from 1 to 1000.") from None
    if not 1 <= count <= 1000:
        raise invalid("RedrivePolicy", f"Value {count} for parameter maxReceiveCount is invalid. "
                      "Reason: must be an integer from 1 to 1000.")
    if target.endswith(".fifo") != fifo:
        raise invalid("RedrivePolicy", "Dead-letter target must be the same type of queue (FIFO or standard) as the source.")
    return json.dumps({"deadLetterTargetArn": target, "maxReceiveCount": count}, separators=(",", ":"))


def _redrive_allow_policy(value: str) -> str:
    try:
        policy = json.loads(value)
    except ValueError:
        raise invalid("RedriveAllowPolicy", "Redrive allow policy is not a valid JSON map.") from None
    if not isinstance(policy, dict) or policy.get("redrivePermission") not in ("allowAll", "denyAll", "byQueue"):
        raise invalid("RedriveAllowPolicy", "Invalid value for redrivePermission.")
    queues = policy.get("sourceQueueArns")
    if policy["redrivePermission"] == "byQueue":
        if not isinstance(queues, list) or not 1 <= len(queues) <= 10:
            raise invalid("RedriveAllowPolicy", "sourceQueueArns must list 1 to 10 queue ARNs with byQueue.")
    elif queues:
        raise invalid("RedriveAllowPolicy", "sourceQueueArns is allowed only with redrivePermission byQueue.")
    return json.dumps(policy, separators=(",", ":"))


def differing(existing: dict[str, str], wanted: dict[str, str], fifo: bool) -> str | None:
    """The first attribute whose requested value differs from an existing queue's."""
    base = dict(DEFAULTS, **(FIFO_DEFAULTS if fifo else {}))
    for name, value in wanted.items():
        if existing.get(name, base.get(name, "")) != value:
            return name
    return None


def as_int(attrs: dict[str, Any], name: str) -> int:
    return int(attrs.get(name, DEFAULTS.get(name, "0")))
