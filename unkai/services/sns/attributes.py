"""Topic and subscription attributes: which exist, their validation with AWS's error
texts, the values AWS reports by default, and the HTTP/S delivery policy (its four
retry phases and backoff functions, and how topic and subscription policies combine)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from unkai.protocol import ServiceError

TOPIC_NAME = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
FIFO_TOPIC_NAME = re.compile(r"^[A-Za-z0-9_-]{1,251}\.fifo$")
FEEDBACK = tuple(f"{p}{kind}" for p in ("Application", "HTTP", "Lambda", "SQS", "Firehose")
                 for kind in ("SuccessFeedbackRoleArn", "SuccessFeedbackSampleRate", "FailureFeedbackRoleArn"))
TOPIC_SETTABLE = {"DeliveryPolicy", "DisplayName", "Policy", "KmsMasterKeyId", "SignatureVersion", "TracingConfig",
                  "MaximumMessageSize",
                  "ContentBasedDeduplication", "FifoTopic", "ArchivePolicy", "FifoThroughputScope", *FEEDBACK}
FIFO_ONLY = {"ContentBasedDeduplication", "ArchivePolicy", "FifoThroughputScope"}
SUBSCRIPTION_SETTABLE = {"DeliveryPolicy", "FilterPolicy", "FilterPolicyScope", "RawMessageDelivery",
                         "RedrivePolicy", "SubscriptionRoleArn", "ReplayPolicy"}
PROTOCOLS = ("http", "https", "email", "email-json", "sms", "sqs", "application", "lambda", "firehose")
RAW_PROTOCOLS = ("sqs", "http", "https", "firehose")
QUEUE_ARN = re.compile(r"^arn:aws[a-z-]*:sqs:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_.-]{1,80})$")

DEFAULT_RETRY = {"minDelayTarget": 20, "maxDelayTarget": 20, "numRetries": 3, "numMaxDelayRetries": 0,
                 "numNoDelayRetries": 0, "numMinDelayRetries": 0, "backoffFunction": "linear"}
DEFAULT_CONTENT_TYPE = "text/plain; charset=UTF-8"
CONTENT_TYPES = ("application/json", "application/xml", "text/plain", "text/xml", "text/html", "text/css",
                 "text/csv", "text/javascript", "text/markdown", "text/xml; charset=UTF-8",
                 "text/plain; charset=UTF-8", "application/json; charset=UTF-8",
                 "application/xml; charset=UTF-8", "text/html; charset=UTF-8")
BACKOFF = ("linear", "arithmetic", "geometric", "exponential")
MAX_RETRY_TIME = 3600
MIN_SIZE, DEFAULT_SIZE, MAX_SIZE = 1024, 262144, 1048576
LARGE_PROTOCOLS = ("sqs", "firehose", "lambda")  # the only subscribers of topics over 256 KiB
MAX_LARGE_SUBSCRIPTIONS = 100


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameter", f"Invalid parameter: {message}")


def default_policy(topic_arn: str, account: str) -> str:
    return json.dumps({
        "Version": "2008-10-17", "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID", "Effect": "Allow", "Principal": {"AWS": "*"},
            "Action": ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission",
                       "SNS:RemovePermission", "SNS:DeleteTopic", "SNS:Subscribe", "SNS:ListSubscriptionsByTopic",
                       "SNS:Publish"],
            "Resource": topic_arn, "Condition": {"StringEquals": {"AWS:SourceOwner": account}},
        }],
    }, separators=(",", ":"))


# -- topics -----------------------------------------------------------------------------

def check_topic_name(name: str, fifo: bool) -> None:
    if fifo:
        if not FIFO_TOPIC_NAME.match(name):
            raise invalid("Fifo Topic names must end with .fifo and must be made up of only uppercase and lowercase "
                          "ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 "
                          "characters long.")
    elif not TOPIC_NAME.match(name):
        raise invalid("Topic Name")


def check_topic_attribute(name: str, value: Any, fifo: bool, creating: bool) -> str:
    """One topic attribute as a client sets it; returns the value to keep."""
    if name not in TOPIC_SETTABLE:
        raise invalid("AttributeName")
    value = "" if value is None else str(value)
    if name == "FifoTopic":
        if not creating:
            raise invalid("AttributeName")
        if value.lower() not in ("true", "false"):
            raise invalid("FifoTopic Reason: FifoTopic must be true or false")
        return value.lower()
    if name in FIFO_ONLY and not fifo:
        raise invalid(f"{name} Reason: {name} is only valid for FIFO topics")
    if name == "ContentBasedDeduplication":
        if value.lower() not in ("true", "false"):
            raise invalid("ContentBasedDeduplication Reason: must be true or false")
        return value.lower()
    if name == "DisplayName":
        if len(value) > 100:
            raise invalid("DisplayName Reason: DisplayName must be at most 100 characters")
        return value
    if name == "MaximumMessageSize":
        if not value.isdigit() or not MIN_SIZE <= int(value) <= MAX_SIZE:
            raise invalid(f"MaximumMessageSize Reason: must be an integer from {MIN_SIZE} to {MAX_SIZE}")
        return str(int(value))
    if name == "SignatureVersion":
        if value not in ("1", "2"):
            raise invalid("SignatureVersion")
        return value
    if name == "TracingConfig":
        if value not in ("PassThrough", "Active"):
            raise invalid(f"TracingConfig: Invalid value [{value}]. Please use either Active or PassThrough")
        return value
    if name == "FifoThroughputScope":
        if value not in ("Topic", "MessageGroup"):
            raise invalid(f"FifoThroughputScope: Invalid value [{value}]. Please use either Topic or "
                          "MessageGroup")
        return value
    if name == "Policy":
        if value:
            doc = _json(value, "Policy Error: ")
            if not isinstance(doc, dict):
                raise invalid("Policy Error: null")
        return value
    if name == "DeliveryPolicy":
        if value:
            check_topic_delivery_policy(_json(value, "DeliveryPolicy: "))
        return value
    if name == "ArchivePolicy":
        if value:
            doc = _json(value, "ArchivePolicy: ")
            days = doc.get("MessageRetentionPeriod") if isinstance(doc, dict) else None
            try:
                ok = days is not None and 1 <= int(days) <= 365
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise invalid("ArchivePolicy: MessageRetentionPeriod must be between 1 and 365 days")
        return value
    if name.endswith("SampleRate"):
        if not value.isdigit() or not 0 <= int(value) <= 100:
            raise invalid(name)
    return value


def _json(value: str, where: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        raise invalid(f"{where}failed to parse JSON.") from None


def topic_defaults(fifo: bool) -> dict[str, str]:
    base = {"DisplayName": ""}
    if fifo:
        base.update({"FifoTopic": "true", "ContentBasedDeduplication": "false", "FifoThroughputScope": "Topic"})
    return base


# -- delivery policies ------------------------------------------------------------------

def check_topic_delivery_policy(doc: Any) -> None:
    if not isinstance(doc, dict):
        raise invalid("DeliveryPolicy: failed to parse JSON.")
    for protocol, section in doc.items():
        where = f"DeliveryPolicy: {protocol}"
        if not isinstance(section, dict):
            raise invalid(f"{where} must be an object")
        for key, value in section.items():
            if key == "defaultHealthyRetryPolicy":
                check_retry_policy(value, f"{where}.{key}")
            elif key == "defaultThrottlePolicy":
                _check_throttle(value, f"{where}.{key}")
            elif key == "defaultRequestPolicy":
                _check_request(value, f"{where}.{key}")
            elif key == "disableSubscriptionOverrides":
                if not isinstance(value, bool):
                    raise invalid(f"{where}.disableSubscriptionOverrides must be a boolean")
            elif key != "defaultSicklyRetryPolicy":
                raise invalid(f"{where}: Unknown key: {key}")


def check_subscription_delivery_policy(doc: Any, prefix: str = "") -> None:
    if not isinstance(doc, dict):
        raise invalid(f"{prefix}DeliveryPolicy: failed to parse JSON.")
    for key, value in doc.items():
        where = f"{prefix}DeliveryPolicy: {key}"
        if key == "healthyRetryPolicy":
            check_retry_policy(value, where)
        elif key == "throttlePolicy":
            _check_throttle(value, where)
        elif key == "requestPolicy":
            _check_request(value, where)
        elif key not in ("sicklyRetryPolicy", "guaranteed"):
            raise invalid(f"{prefix}DeliveryPolicy: Unknown key: {key}")


def check_retry_policy(policy: Any, where: str) -> None:
    if policy is None:
        return
    if not isinstance(policy, dict):
        raise invalid(f"{where} must be an object")
    for key, value in policy.items():
        if key == "backoffFunction":
            if value not in BACKOFF:
                raise invalid(f"{where}.backoffFunction must be one of linear, arithmetic, geometric or exponential")
        elif key in DEFAULT_RETRY:
            if not isinstance(value, int) or isinstance(value, bool):
                raise invalid(f"{where}.{key} must be an integer")
        else:
            raise invalid(f"{where}: Unknown key: {key}")
    p = dict(DEFAULT_RETRY, **policy)
    if not 0 <= p["numRetries"] <= 100:
        raise invalid(f"{where}.numRetries must be between 0 and 100")
    if not 1 <= p["minDelayTarget"] <= MAX_RETRY_TIME:
        raise invalid(f"{where}.minDelayTarget must be between 1 and 3600")
    if not p["minDelayTarget"] <= p["maxDelayTarget"] <= MAX_RETRY_TIME:
        raise invalid(f"{where}.maxDelayTarget must be between minDelayTarget and 3600")
    for key in ("numNoDelayRetries", "numMinDelayRetries", "numMaxDelayRetries"):
        if p[key] < 0:
            raise invalid(f"{where}.{key} must be greater than or equal to 0")
    if p["numNoDelayRetries"] + p["numMinDelayRetries"] + p["numMaxDelayRetries"] > p["numRetries"]:
        raise invalid(f"{where}: numNoDelayRetries + numMinDelayRetries + numMaxDelayRetries must not exceed "
                      "numRetries")
    if sum(retry_delays(p)) > MAX_RETRY_TIME:
        raise invalid(f"{where}: the total retry time must not exceed 3600 seconds")


def _check_throttle(policy: Any, where: str) -> None:
    if policy is None:
        return
    rate = policy.get("maxReceivesPerSecond") if isinstance(policy, dict) else None
    if not isinstance(rate, int) or isinstance(rate, bool) or rate < 1:
        raise invalid(f"{where}.maxReceivesPerSecond must be an integer greater than or equal to 1")


def _check_request(policy: Any, where: str) -> None:
    if policy is None:
        return
    content_type = policy.get("headerContentType") if isinstance(policy, dict) else None
    if content_type not in CONTENT_TYPES:
        raise invalid(f"{where}.headerContentType: Invalid value [{content_type}]")


def retry_delays(policy: dict) -> list[float]:
    """The delay before each retry: no-delay, pre-backoff (min), backoff (min -> max), post-backoff (max)."""
    p = dict(DEFAULT_RETRY, **policy)
    low, high = p["minDelayTarget"], p["maxDelayTarget"]
    n0, n1, n3 = p["numNoDelayRetries"], p["numMinDelayRetries"], p["numMaxDelayRetries"]
    nb = max(0, p["numRetries"] - n0 - n1 - n3)
    return [0.0] * n0 + [float(low)] * n1 + _backoff(p["backoffFunction"], low, high, nb) + [float(high)] * n3


def _backoff(function: str, low: float, high: float, n: int) -> list[float]:
    """Delays for the backoff phase: the first is the minimum, the last the maximum."""
    if n <= 0:
        return []
    if n == 1 or low == high:
        return [float(low)] * n
    out = []
    for i in range(n):
        t = i / (n - 1)
        if function == "arithmetic":
            share = i * (i + 1) / ((n - 1) * n)
        elif function == "geometric":
            share = (math.pow(high / low, t) - 1) / (high / low - 1)
        elif function == "exponential":
            share = (2 ** i - 1) / (2 ** (n - 1) - 1)
        else:
            share = t
        out.append(round(low + (high - low) * share, 3))
    return out


class HttpPolicy:
    """The delivery policy in effect for one HTTP/S subscription."""

    __slots__ = ("retry", "throttle", "content_type", "delays")

    def __init__(self, retry: dict, throttle: dict | None, content_type: str) -> None:
        self.retry = retry
        self.throttle = throttle
        self.content_type = content_type
        self.delays = retry_delays(retry)

    def subscription_view(self) -> str:
        """EffectiveDeliveryPolicy as GetSubscriptionAttributes shows it."""
        doc: dict[str, Any] = {"healthyRetryPolicy": self.retry, "sicklyRetryPolicy": None,
                               "throttlePolicy": self.throttle, "guaranteed": False}
        if self.content_type != DEFAULT_CONTENT_TYPE:
            doc["requestPolicy"] = {"headerContentType": self.content_type}
        return json.dumps(doc, separators=(",", ":"))


def topic_http_section(topic_policy: str | None, protocol: str = "http") -> dict:
    doc = json.loads(topic_policy) if topic_policy else {}
    return doc.get(protocol) or doc.get("http") or {}


def effective_topic_policy(topic_policy: str | None) -> str:
    section = topic_http_section(topic_policy)
    http: dict[str, Any] = {
        "defaultHealthyRetryPolicy": dict(DEFAULT_RETRY, **(section.get("defaultHealthyRetryPolicy") or {})),
        "disableSubscriptionOverrides": bool(section.get("disableSubscriptionOverrides", False)),
    }
    if section.get("defaultThrottlePolicy"):
        http["defaultThrottlePolicy"] = section["defaultThrottlePolicy"]
    http["defaultRequestPolicy"] = {"headerContentType": (section.get("defaultRequestPolicy") or {}).get(
        "headerContentType", DEFAULT_CONTENT_TYPE)}
    return json.dumps({"http": http}, separators=(",", ":"))


def http_policy(topic_policy: str | None, subscription_policy: str | None, protocol: str) -> HttpPolicy:
    section = topic_http_section(topic_policy, protocol)
    retry = dict(DEFAULT_RETRY, **(section.get("defaultHealthyRetryPolicy") or {}))
    throttle = section.get("defaultThrottlePolicy")
    content_type = (section.get("defaultRequestPolicy") or {}).get("headerContentType", DEFAULT_CONTENT_TYPE)
    if subscription_policy and not section.get("disableSubscriptionOverrides"):
        sub = json.loads(subscription_policy)
        if sub.get("healthyRetryPolicy"):
            retry = dict(DEFAULT_RETRY, **sub["healthyRetryPolicy"])
        throttle = sub.get("throttlePolicy") or throttle
        content_type = (sub.get("requestPolicy") or {}).get("headerContentType", content_type)
    return HttpPolicy(retry, throttle, content_type)


# -- subscriptions ----------------------------------------------------------------------

def check_subscription_attribute(name: str, value: Any, protocol: str, topic_fifo: bool, endpoint: str,
                                 subscribe_call: bool = False) -> str:
    """One subscription attribute; returns the value to keep ("" removes it)."""
    prefix = "Attributes Reason: " if subscribe_call else ""
    if name not in SUBSCRIPTION_SETTABLE:
        raise invalid(f"{prefix}AttributeName")
    value = "" if value is None else str(value)
    if name == "RawMessageDelivery":
        if value.lower() not in ("true", "false"):
            raise invalid(f"{prefix}RawMessageDelivery: Invalid value [{value}]. Must be true or false.")
        if protocol not in RAW_PROTOCOLS:
            raise invalid(f"{prefix}Delivery protocol [{protocol}] does not support raw message delivery.")
        return value.lower()
    if name == "FilterPolicyScope":
        if value not in ("MessageAttributes", "MessageBody"):
            raise invalid(f"{prefix}FilterPolicyScope: Invalid value [{value}]. Please use either MessageBody "
                          "or MessageAttributes")
        return value
    if name == "DeliveryPolicy":
        if value:  # kept for any protocol; only HTTP/S deliveries follow it, as on AWS
            check_subscription_delivery_policy(_json(value, f"{prefix}DeliveryPolicy: "), prefix)
        return value
    if name == "RedrivePolicy":
        if value:
            doc = _json(value, f"{prefix}RedrivePolicy: ")
            target = doc.get("deadLetterTargetArn") if isinstance(doc, dict) else None
            if not isinstance(target, str) or not QUEUE_ARN.match(target):
                raise invalid(f"{prefix}RedrivePolicy: deadLetterTargetArn is an invalid arn")
            if topic_fifo and endpoint.endswith(".fifo") and not target.endswith(".fifo"):
                raise invalid(f"{prefix}RedrivePolicy: must use a FIFO queue as DLQ for a FIFO Subscription to a "
                              "FIFO Topic.")
        return value
    if name == "ReplayPolicy":
        if value:
            _json(value, f"{prefix}ReplayPolicy: ")
        return value
    if name == "SubscriptionRoleArn":
        if value and not value.startswith("arn:"):
            raise invalid(f"{prefix}SubscriptionRoleArn")
        return value
    return value  # FilterPolicy: validated by the caller, which knows the scope
