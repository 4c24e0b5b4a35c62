"""Handing a payload to a target ARN: the one path every service uses to deliver "to an
ARN" (EventBridge rules, Scheduler schedules, S3 notifications, and whatever comes next:
SES event destinations, alarm actions, IoT rules, Pipes).

It runs inside the caller's transaction, so the hand-off commits with its cause: Lambda
through the durable ``lambda.invoke`` job, SQS, SNS, Kinesis and Firehose directly (an
SNS publish is a savepoint whose fan-out commits with the caller; a Kinesis record or a
Firehose record is buffered in the caller's transaction). A target that cannot take the payload
sends it to the target's ``DeadLetterConfig`` queue with EventBridge's attributes, or is
logged as dropped, the same way for every caller.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from unkai.protocol import ServiceError

if TYPE_CHECKING:
    from unkai.cloud import Cloud

log = logging.getLogger(__name__)

RESOURCE_POLICY_SOURCES = ("events", "s3")  # services whose deliveries a target's own policy must allow


def deliver(cloud: "Cloud", target: dict[str, Any], payload: str, source: str, event_id: str,
            rule_arn: str = "", *, subject: str | None = None, sender: str | None = None,
            source_arn: str = "", strict: bool = False, role_arn: str | None = None) -> None:
    """Hand ``payload`` to ``target["Arn"]``'s service, in the current transaction.

    ``source`` names the caller (``events``, ``scheduler``, ``s3``...): the Lambda job's
    source and, unless ``sender`` is given, the SQS SenderId ``{source}.amazonaws.com``.
    ``subject`` is the SNS Subject. A target that cannot take the payload sends it to the
    target's DeadLetterConfig queue, as AWS does, or is logged as dropped; with ``strict``
    it raises the ``ServiceError`` instead (IoT rules hand it to their error action). With
    ``--enforce-iam``, an EventBridge rule's or a bucket's (``source_arn``) delivery must be
    let in by the target's resource policy, as on AWS; a delivery made with a role the user
    gave (``role_arn``: Scheduler, Pipes, IoT rules) needs the role to trust the service and
    allow the action on the target."""
    arn = target.get("Arn") or ""
    parts = arn.split(":")
    service = parts[2] if len(parts) > 5 else ""
    region = parts[3] if len(parts) > 5 else cloud.config.region
    if source in RESOURCE_POLICY_SOURCES and cloud.config.enforce_iam:
        from unkai.services.iam.enforcement import service_denied

        denied = service_denied(cloud, f"{source}.amazonaws.com", arn, source_arn or rule_arn)
        if denied is not None:
            _dead_letter(cloud, target, payload, source, rule_arn, "AccessDenied", denied)
            return
    if role_arn is not None and cloud.config.enforce_iam:
        from unkai.services.iam.enforcement import role_denied, target_action

        action = target_action(arn)
        denied = role_denied(cloud, f"{source}.amazonaws.com", role_arn, action, arn, source_arn or rule_arn) \
            if action else None
        if denied is not None:
            if strict:
                raise ServiceError("AccessDeniedException", denied, status=403)
            _dead_letter(cloud, target, payload, source, rule_arn, "AccessDenied", denied)
            return
    if service == "lambda":
        cloud.jobs.enqueue("lambda.invoke", {"function": arn, "payload": payload, "source": source})
    elif service == "sqs":
        sqs = cloud.services.get("sqs")
        queue = sqs.queue_by_arn(arn) if sqs else None
        if queue is None:
            if strict:
                raise ServiceError("AWS.SimpleQueueService.NonExistentQueue",
                                   f"The specified queue does not exist: {arn}")
            _dead_letter(cloud, target, payload, source, rule_arn, "SQS.NonExistentQueue",
                         f"The specified queue does not exist: {arn}")
            return
        group = (target.get("SqsParameters") or {}).get("MessageGroupId")
        sqs.enqueue(queue, payload, group=group if queue.fifo else None,
                    dedup=event_id if queue.fifo else None, sender=sender or f"{source}.amazonaws.com")
    elif service == "sns" and "sns" in cloud.services:
        params = {"TopicArn": arn, "Message": payload}
        if subject:
            params["Subject"] = subject
        try:
            cloud.call("sns", "Publish", params, region)
        except ServiceError as exc:
            if strict:
                raise
            _dead_letter(cloud, target, payload, source, rule_arn, exc.code, exc.message)
    elif service == "kinesis" and "kinesis" in cloud.services:
        key = (target.get("KinesisParameters") or {}).get("PartitionKeyPath") or event_id or "-"
        if key.startswith("$."):  # a JSON path into the event
            key = _json_path(payload, key) or event_id or "-"
        try:
            cloud.service("kinesis").append(arn, payload.encode(), key)
        except ServiceError as exc:
            if strict:
                raise
            _dead_letter(cloud, target, payload, source, rule_arn, exc.code, exc.message)
    elif service == "firehose" and "firehose" in cloud.services:
        try:
            cloud.service("firehose").deliver(arn, payload.encode())
        except ServiceError as exc:
            if strict:
                raise
            _dead_letter(cloud, target, payload, source, rule_arn, exc.code, exc.message)
    elif service == "logs" and "logs" in cloud.services:  # a log group: one stream per event, named by its id
        group = arn.split(":log-group:", 1)[-1].removesuffix(":*")
        cloud.service("logs").append(parts[4], region, group, event_id or source,
                                     [(int(cloud.clock.now() * 1000), payload)])
    elif service == "execute-api" and "apigateway" in cloud.services:  # a REST or HTTP API stage's route
        cloud.service("apigateway").deliver_event(target, payload, event_id, rule_arn)
    elif service == "events" and "events" in cloud.services:  # another event bus, or an API destination
        cloud.service("events").accept(target, payload, event_id, rule_arn)
    else:
        log.warning("unkai does not deliver %s events to %s targets yet (%s)", source, service or "unknown", arn)


def deliver_all(cloud: "Cloud", deliveries: list[tuple[dict[str, Any], str, str, str]], source: str) -> None:
    """``deliver`` each (target, payload, event_id, rule_arn), in order, in the current
    transaction: the deliveries of one PutEvents. Payloads bound for one standard SQS queue
    go in as one batch insert (``enqueue_many``); anything else, or any delivery that needs
    more (FIFO, a missing queue and its dead-letter queue, ``--enforce-iam``), goes through
    ``deliver`` after the batches before it, so every queue sees the same order as before."""
    sqs = cloud.services.get("sqs") if len(deliveries) > 1 and not cloud.config.enforce_iam else None
    if sqs is None:
        for target, payload, event_id, rule_arn in deliveries:
            deliver(cloud, target, payload, source, event_id, rule_arn)
        return
    sender = f"{source}.amazonaws.com"
    queues: dict[str, Any] = {}  # ARN -> its queue, or None: not batched
    batches: dict[str, list[str]] = {}  # ARN -> bodies not yet written, in order
    for target, payload, event_id, rule_arn in deliveries:
        arn = target.get("Arn") or ""
        queue = queues.get(arn, False)
        if queue is False:
            queue = queues[arn] = sqs.queue_by_arn(arn) if arn.startswith("arn:aws:sqs:") else None
            if queue is not None and queue.fifo:
                queue = queues[arn] = None
        if queue is not None:
            bodies = batches.get(arn)
            if bodies is None:
                batches[arn] = [payload]
            else:
                bodies.append(payload)
            continue
        for batch_arn, bodies in batches.items():
            sqs.enqueue_many(queues[batch_arn], bodies, sender=sender)
        batches.clear()
        deliver(cloud, target, payload, source, event_id, rule_arn)
    for batch_arn, bodies in batches.items():
        sqs.enqueue_many(queues[batch_arn], bodies, sender=sender)


def _json_path(payload: str, path: str) -> str | None:
    """The value at a simple ``$.a.b`` path of a JSON payload, as text (Kinesis partition keys)."""
    import json

    try:
        value: Any = json.loads(payload)
        for part in path[2:].split("."):
            value = value[part]
    except (ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _dead_letter(cloud: "Cloud", target: dict[str, Any], payload: str, source: str, rule_arn: str, code: str,
                 message: str) -> None:
    dlq_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
    sqs = cloud.services.get("sqs")
    dlq = sqs.queue_by_arn(dlq_arn) if sqs and dlq_arn else None
    cloud.feed.publish("delivery.failed", source=source, target=target.get("Arn"), error_code=code,
                       error_message=message, dlq=dlq.name if dlq else None)
    if dlq is None:
        log.warning("%s target %s failed (%s: %s); no dead-letter queue, the event is dropped",
                    source, target.get("Arn"), code, message)
        return
    retries = (target.get("RetryPolicy") or {}).get("MaximumRetryAttempts", 185)
    attributes = {"RULE_ARN": rule_arn, "TARGET_ARN": target.get("Arn") or "", "ERROR_CODE": code,
                  "ERROR_MESSAGE": message, "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
                  "RETRY_ATTEMPTS": str(retries)}
    sqs.enqueue(dlq, payload, {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items() if v},
                sender=f"{source}.amazonaws.com")


dead_letter = _dead_letter  # for deliveries that fail later, in a job (EventBridge API destinations)
