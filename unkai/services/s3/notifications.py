"""Event notifications: the bucket's NotificationConfiguration (validated as S3
does, overlapping filters included), and the event records S3 sends to SQS, SNS
and Lambda. Records are written in the same transaction as the change that
caused them, so an acknowledged write's event is never lost: SQS messages and SNS
publishes (with their fan-out) commit with the object; Lambda invocations are
durable ``lambda.invoke`` jobs."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from typing import Any
from urllib.parse import quote_plus

from unkai.protocol import ServiceError
from unkai.targets import deliver
from unkai.protocol.values import iso8601
from unkai.services import RequestContext
from unkai.services.s3.state import Bucket, Obj, invalid_argument

log = logging.getLogger("unkai.s3")

EVENTS = (
    "s3:TestEvent", "s3:ObjectCreated:*", "s3:ObjectCreated:Put", "s3:ObjectCreated:Post", "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload", "s3:ObjectRemoved:*", "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated", "s3:ObjectRestore:*", "s3:ObjectRestore:Post",
    "s3:ObjectRestore:Completed", "s3:ObjectRestore:Delete", "s3:ReducedRedundancyLostObject", "s3:Replication:*",
    "s3:Replication:OperationFailedReplication", "s3:Replication:OperationNotTracked",
    "s3:Replication:OperationMissedThreshold", "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:ObjectTagging:*", "s3:ObjectTagging:Put", "s3:ObjectTagging:Delete", "s3:ObjectAcl:Put",
    "s3:LifecycleExpiration:*", "s3:LifecycleExpiration:Delete", "s3:LifecycleExpiration:DeleteMarkerCreated",
    "s3:LifecycleTransition", "s3:IntelligentTiering",
)
# S3 event -> (EventBridge detail-type, detail.reason), as S3 sends them to EventBridge
EVENTBRIDGE = {
    "ObjectCreated:Put": ("Object Created", "PutObject"), "ObjectCreated:Post": ("Object Created", "POST Object"),
    "ObjectCreated:Copy": ("Object Created", "CopyObject"),
    "ObjectCreated:CompleteMultipartUpload": ("Object Created", "CompleteMultipartUpload"),
    "ObjectRemoved:Delete": ("Object Deleted", "DeleteObject"),
    "ObjectRemoved:DeleteMarkerCreated": ("Object Deleted", "DeleteObject"),
    "ObjectTagging:Put": ("Object Tags Added", None), "ObjectTagging:Delete": ("Object Tags Deleted", None),
    "ObjectAcl:Put": ("Object ACL Updated", None),
}
KINDS = (("QueueConfigurations", "QueueArn", "sqs"), ("TopicConfigurations", "TopicArn", "sns"),
         ("LambdaFunctionConfigurations", "LambdaFunctionArn", "lambda"))


def _event_matches(pattern: str, event: str) -> bool:
    """Whether a configured event name (maybe a ``:*`` wildcard) covers ``s3:<event>``."""
    if pattern.endswith(":*"):
        return f"s3:{event}".startswith(pattern[:-1])
    return pattern == f"s3:{event}"


def _events_overlap(a: str, b: str) -> bool:
    """Whether two configured event names (either maybe a wildcard) share an event type."""
    return a == b or (a.endswith("*") and b.startswith(a[:-1])) or (b.endswith("*") and a.startswith(b[:-1]))


def _filter(config: dict) -> tuple[str, str]:
    rules = ((config.get("Filter") or {}).get("Key") or {}).get("FilterRules") or []
    prefix = suffix = ""
    seen: set[str] = set()
    for rule in rules:
        name = (rule.get("Name") or "").lower()
        if name not in ("prefix", "suffix"):
            raise invalid_argument("filter rule name must be either prefix or suffix", "FilterRule.Name",
                                   rule.get("Name") or "")
        if name in seen:
            raise invalid_argument(f"Cannot specify more than one {name} rule in a filter.", "FilterRule.Name",
                                   rule.get("Name") or "")
        seen.add(name)
        value = rule.get("Value") or ""
        if len(value.encode()) > 1024:
            raise invalid_argument("The filter rule value is too long", "FilterRule.Value", value)
        if name == "prefix":
            prefix = value
        else:
            suffix = value
    return prefix, suffix


def _overlap(a: tuple[str, str], b: tuple[str, str]) -> bool:
    (pa, sa), (pb, sb) = a, b
    return (pa.startswith(pb) or pb.startswith(pa)) and (sa.endswith(sb) or sb.endswith(sa))


def encode_key(key: str) -> str:
    """Object keys in event records are URL-encoded the way S3 does it (spaces as ``+``)."""
    return quote_plus(key, safe="/")


class NotificationOps:
    """Mixed into the S3 service."""

    store: Any
    clock: Any
    cloud: Any

    # -- configuration ------------------------------------------------------------------

    def put_bucket_notification_configuration(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])  # type: ignore[attr-defined]
        config = params.get("NotificationConfiguration") or {}
        checked: list[tuple[str, tuple[str, str]]] = []
        stored: dict[str, Any] = {}
        for section, arn_field, service in KINDS:
            items = []
            for item in config.get(section) or []:
                arn = item.get(arn_field) or ""
                events = item.get("Events") or []
                if not events:
                    raise invalid_argument("A specified event is not supported for notifications.", "Event", "")
                for event in events:
                    if event not in EVENTS or event == "s3:TestEvent":
                        raise invalid_argument("The event is not supported for notifications", event, event)
                flt = _filter(item)
                for event in events:
                    for other_event, other_filter in checked:
                        if _events_overlap(event, other_event) and _overlap(flt, other_filter):
                            raise invalid_argument("Configurations overlap. Configurations on the same bucket "
                                                   "cannot share a common event type.", "Event", event)
                checked.extend((event, flt) for event in events)
                if not params.get("SkipDestinationValidation"):
                    self._check_destination(service, arn, bucket.name)
                items.append(dict(item, Id=item.get("Id") or str(uuid.uuid4())))
            if items:
                stored[section] = items
        if "EventBridgeConfiguration" in config:
            stored["EventBridgeConfiguration"] = config["EventBridgeConfiguration"] or {}
        bucket.config["Notification"] = stored
        self._save_config(bucket)  # type: ignore[attr-defined]
        if not params.get("SkipDestinationValidation"):
            for section, arn_field, service in KINDS[:2]:
                for item in stored.get(section) or []:
                    self._deliver(service, item[arn_field], self._test_event(ctx, bucket), bucket.region,
                                  bucket.name)
        return {}

    def _check_destination(self, service: str, arn: str, bucket: str) -> None:
        parts = arn.split(":")
        if len(parts) < 6 or parts[0] != "arn" or parts[2] != service:
            raise invalid_argument("The ARN is not well formed", arn, arn)
        if service == "sqs":
            sqs = self.cloud.services.get("sqs")
            queue = sqs.queue_by_arn(arn) if sqs else None
            if queue is None or queue.fifo:
                raise invalid_argument("Unable to validate the following destination configurations", arn,
                                       "Error: The destination queue does not exist" if queue is None else
                                       "Error: FIFO SQS queues are not supported as S3 event destinations")
        elif service in ("sns", "lambda") and service in self.cloud.services:
            operation, param = ("GetTopicAttributes", "TopicArn") if service == "sns" else \
                ("GetFunction", "FunctionName")
            try:
                self.cloud.call(service, operation, {param: arn}, parts[3])
            except (ServiceError, ValueError):
                what = "topic" if service == "sns" else "function"
                raise invalid_argument("Unable to validate the following destination configurations", arn,
                                       f"Error: The destination {what} does not exist") from None
        if self.cloud.config.enforce_iam:  # the destination's own policy must let S3 in, as on AWS
            from unkai.services.iam.enforcement import service_denied

            if service_denied(self.cloud, "s3.amazonaws.com", arn, f"arn:aws:s3:::{bucket}") is not None:
                error = f"Not authorized to invoke function [{arn}]" if service == "lambda" else \
                    f"Error: Permissions on the destination {'queue' if service == 'sqs' else 'topic'} do not " \
                    "allow S3 to publish notifications from this bucket"
                raise invalid_argument("Unable to validate the following destination configurations", arn, error)

    def get_bucket_notification_configuration(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])  # type: ignore[attr-defined]
        return dict(bucket.config.get("Notification") or {})

    # -- events -------------------------------------------------------------------------

    def emit(self, ctx: RequestContext, bucket: Bucket, event: str, obj: Obj) -> None:
        """Send ``event`` (e.g. ``ObjectCreated:Put``) for ``obj`` to every matching destination,
        inside the caller's transaction."""
        config = bucket.config.get("Notification")
        if not config:
            return
        if "EventBridgeConfiguration" in config:
            self._to_eventbridge(ctx, bucket, event, obj)
        for section, arn_field, service in KINDS:
            for item in config.get(section) or []:
                if not any(_event_matches(p, event) for p in item.get("Events") or []):
                    continue
                prefix, suffix = _filter(item)
                if not (obj.key.startswith(prefix) and obj.key.endswith(suffix)):
                    continue
                record = self._record(ctx, bucket, event, obj, item["Id"])
                self._deliver(service, item[arn_field], json.dumps({"Records": [record]}), bucket.region,
                              bucket.name)

    def _to_eventbridge(self, ctx: RequestContext, bucket: Bucket, event: str, obj: Obj) -> None:
        """The event S3 sends to the default event bus when EventBridge is on for the bucket
        ("Object Created", "Object Deleted", ...), with AWS's ``detail``; in the caller's transaction."""
        kind = EVENTBRIDGE.get(event) or EVENTBRIDGE.get(event.split(":")[0])
        if kind is None or "events" not in self.cloud.services:
            return
        detail_type, reason = kind
        now = self.clock.now()
        thing: dict[str, Any] = {"key": obj.key}
        if event.startswith(("ObjectCreated", "ObjectTagging", "ObjectRestore")):
            thing.update(size=obj.size, etag=obj.etag.strip('"'))
        if bucket.versioned and obj.version_id:
            thing["version-id"] = obj.version_id
        thing["sequencer"] = f"{int(now * 1_000_000):016X}{obj.id % 65536:04X}"
        detail: dict[str, Any] = {"version": "0", "bucket": {"name": bucket.name}, "object": thing,
                                  "request-id": ctx.request_id.replace("-", "")[:16].upper(),
                                  "requester": ctx.account, "source-ip-address": ctx.source_ip}
        if reason:
            detail["reason"] = reason
        if event.startswith("ObjectRemoved"):
            detail["deletion-type"] = "Delete Marker Created" if event.endswith("DeleteMarkerCreated") \
                else "Permanently Deleted"
        self.cloud.call("events", "PutEvents", {"Entries": [{
            "Source": "aws.s3", "DetailType": detail_type, "Detail": json.dumps(detail), "Time": now,
            "Resources": [bucket.arn]}]}, bucket.region)

    def _principal(self, account: str) -> str:
        return "A" + hashlib.sha256(account.encode()).hexdigest()[:13].upper()

    def _record(self, ctx: RequestContext, bucket: Bucket, event: str, obj: Obj, config_id: str) -> dict:
        now = self.clock.now()
        detail: dict[str, Any] = {"key": encode_key(obj.key)}
        if event.startswith(("ObjectCreated", "ObjectTagging", "ObjectRestore")):
            detail["size"] = obj.size
            detail["eTag"] = obj.etag.strip('"')
        if bucket.versioned:
            detail["versionId"] = obj.version_id
        detail["sequencer"] = f"{int(now * 1_000_000):016X}{obj.id % 65536:04X}"
        caller = f"AWS:{ctx.access_key}" if ctx.access_key else "ANONYMOUS_PRINCIPAL"
        return {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": bucket.region,
            "eventTime": iso8601(now),
            "eventName": event,
            "userIdentity": {"principalId": caller},
            "requestParameters": {"sourceIPAddress": ctx.source_ip},
            "responseElements": {"x-amz-request-id": ctx.request_id.replace("-", "")[:16].upper(),
                                 "x-amz-id-2": ctx.request_id},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": config_id,
                "bucket": {"name": bucket.name, "ownerIdentity": {"principalId": self._principal(bucket.account)},
                           "arn": bucket.arn},
                "object": detail,
            },
        }

    def _test_event(self, ctx: RequestContext, bucket: Bucket) -> str:
        return json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": iso8601(self.clock.now()),
                           "Bucket": bucket.name, "RequestId": ctx.request_id.replace("-", "")[:16].upper(),
                           "HostId": ctx.request_id})

    def _deliver(self, service: str, arn: str, body: str, region: str, bucket: str) -> None:
        sender = None
        if service == "sqs":
            sqs = self.cloud.services.get("sqs")
            queue = sqs.queue_by_arn(arn) if sqs else None
            sender = self._principal(queue.account) if queue is not None else None
        deliver(self.cloud, {"Arn": arn}, body, "s3", "", subject="Amazon S3 Notification", sender=sender,
                source_arn=f"arn:aws:s3:::{bucket}")
