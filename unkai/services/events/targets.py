"""Delivering an event to a rule's or a schedule's target: what the target receives
(``Input``, ``InputPath``, ``InputTransformer``) and the hand-off to the service
that owns it, inside the caller's transaction (Lambda through the durable
``lambda.invoke`` job; SQS and SNS directly)."""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any

from unkai.protocol import ServiceError

if TYPE_CHECKING:
    from unkai.cloud import Cloud

log = logging.getLogger("unkai.events")
_PATH_PART = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\['([^']+)'\]|\[\"([^\"]+)\"\]")
_VAR = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_MISSING = object()


def json_path(document: Any, path: str) -> Any:
    """The value at a simple JSONPath (``$``, ``$.detail.id``, ``$.resources[0]``), or None."""
    path = path.strip()
    if not path.startswith("$"):
        raise ValueError(f"invalid JSON path {path}")
    value = document
    rest = path[1:]
    pos = 0
    while pos < len(rest):
        m = _PATH_PART.match(rest, pos)
        if not m:
            raise ValueError(f"invalid JSON path {path}")
        pos = m.end()
        key, index = m.group(1) or m.group(3) or m.group(4), m.group(2)
        if index is not None:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else _MISSING
        else:
            value = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
        if value is _MISSING:
            return None
    return value


def check_target_input(target: dict[str, Any]) -> str | None:
    """Why a target's input settings are invalid, or None."""
    given = [k for k in ("Input", "InputPath", "InputTransformer") if target.get(k) is not None]
    if len(given) > 1:
        return "Only one of Input, InputPath, or InputTransformer must be provided."
    if target.get("Input") is not None:
        try:
            json.loads(target["Input"])
        except ValueError:
            return "Input must be valid JSON."
    transformer = target.get("InputTransformer")
    if transformer is not None:
        for name, path in (transformer.get("InputPathsMap") or {}).items():
            try:
                json_path({}, path)
            except ValueError:
                return f"Target {target.get('Id')} has an invalid InputPathsMap path for {name}: {path}"
    return None


def render(target: dict[str, Any], event: dict[str, Any], rule_arn: str, rule_name: str) -> str:
    """The text the target receives for ``event``."""
    if target.get("Input") is not None:
        return target["Input"]
    if target.get("InputPath"):
        return json.dumps(json_path(event, target["InputPath"]))
    transformer = target.get("InputTransformer")
    if transformer:
        values = {name: json_path(event, path) for name, path in (transformer.get("InputPathsMap") or {}).items()}
        values.update({"aws.events.rule-arn": rule_arn, "aws.events.rule-name": rule_name,
                       "aws.events.event": event, "aws.events.event.json": event,
                       "aws.events.event.ingestion-time": event.get("time")})
        return _fill(transformer.get("InputTemplate", ""), values)
    return json.dumps(event)


def _fill(template: str, values: dict[str, Any]) -> str:
    """InputTemplate: inside quotes a value goes in as text, outside as JSON (AWS's rule)."""
    def one(m: re.Match) -> str:
        name = m.group(1)
        if name not in values:
            return m.group(0)
        value = values[name]
        quoted = m.start() > 0 and template[m.start() - 1] == '"' and template[m.end():m.end() + 1] == '"'
        if quoted:
            text = value if isinstance(value, str) else json.dumps(value)
            return json.dumps(text)[1:-1]
        if isinstance(value, str) and not _is_json_template(template):
            return value
        return "null" if value is None else json.dumps(value)

    return _VAR.sub(one, template)


def _is_json_template(template: str) -> bool:
    return template.lstrip().startswith(("{", "["))


def deliver(cloud: "Cloud", target: dict[str, Any], payload: str, source: str, event_id: str,
            rule_arn: str = "") -> None:
    """Hand ``payload`` to the target's service, in the current transaction. A target that
    cannot take it sends it to the target's DeadLetterConfig queue, as AWS does."""
    arn = target.get("Arn") or ""
    parts = arn.split(":")
    service = parts[2] if len(parts) > 5 else ""
    region = parts[3] if len(parts) > 5 else cloud.config.region
    if service == "lambda":
        cloud.jobs.enqueue("lambda.invoke", {"function": arn, "payload": payload, "source": source})
    elif service == "sqs":
        sqs = cloud.services.get("sqs")
        queue = sqs.queue_by_arn(arn) if sqs else None
        if queue is None:
            _dead_letter(cloud, target, payload, source, rule_arn, "SQS.NonExistentQueue",
                         f"The specified queue does not exist: {arn}")
            return
        group = (target.get("SqsParameters") or {}).get("MessageGroupId")
        sqs.enqueue(queue, payload, group=group if queue.fifo else None,
                    dedup=event_id if queue.fifo else None, sender=f"{source}.amazonaws.com")
    elif service == "sns" and "sns" in cloud.services:
        try:
            cloud.call("sns", "Publish", {"TopicArn": arn, "Message": payload}, region)
        except ServiceError as exc:
            _dead_letter(cloud, target, payload, source, rule_arn, exc.code, exc.message)
    else:
        log.warning("unkai does not deliver %s events to %s targets yet (%s)", source, service or "unknown", arn)


def _dead_letter(cloud: "Cloud", target: dict[str, Any], payload: str, source: str, rule_arn: str, code: str,
                 message: str) -> None:
    dlq_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
    sqs = cloud.services.get("sqs")
    dlq = sqs.queue_by_arn(dlq_arn) if sqs and dlq_arn else None
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
