"""Running pipes on unkai's one poller.

``PipeMappings`` is Lambda's ``Mappings`` with the pipes table as its state: the same
``QueuePoller`` and ``StreamPoller`` read each running pipe's source (batch size, batching
window, starting position, retries, partial-batch bisecting, on-failure dead letters,
FilterCriteria all behave as for a Lambda mapping), and where they would invoke a function
they call ``Consumer.invoke``, which runs the pipe's enrichment and hands the batch to its
target. A batch that fails (the enrichment or a REQUEST_RESPONSE Lambda target answered an
error) fails as a Lambda mapping's does: SQS messages come back after the visibility
timeout, a stream's batch is retried, bisected and finally sent to the DeadLetterConfig.

Targets: a Lambda function gets the batch as a JSON array (synchronously, or as an
asynchronous invoke with FIRE_AND_FORGET); an event bus gets one PutEvents entry per event
(Source ``Pipe NAME``, DetailType ``Event from aws:sqs``... unless the target parameters
say otherwise); every other target (SQS, SNS, Kinesis, Firehose, API destinations) gets
one payload per event through the shared ``unkai.targets.deliver``."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unkai import targets
from unkai.pollers import Mappings
from unkai.protocol import ServiceError
from unkai.services.pipes.model import COLUMNS, Pipe, source_kind

if TYPE_CHECKING:
    from unkai.services.pipes.service import Pipes

log = logging.getLogger(__name__)

_VAR = re.compile(r"<(\$[^<>]*|aws\.pipes\.[a-z.\-]+)>")


@dataclass
class Outcome:
    """What the pollers read from an invocation (the fields of Lambda's InvokeResult they use)."""

    status_code: int = 200
    payload: bytes = b""
    function_error: str | None = None
    executed_version: str = "$LATEST"


def poller_config(pipe: Pipe) -> dict[str, Any]:
    """The pipe as the pollers read a Lambda mapping's configuration."""
    params = pipe.spec.get("SourceParameters") or {}
    kind = source_kind(pipe.source)
    source = params.get({"sqs": "SqsQueueParameters", "kinesis": "KinesisStreamParameters",
                         "dynamodb": "DynamoDBStreamParameters"}.get(kind, ""), {}) or {}
    config: dict[str, Any] = {"EventSourceArn": pipe.source, "FunctionArn": pipe.arn, "State": "Enabled",
                              "BatchSize": source.get("BatchSize") or (10 if kind == "sqs" else 100),
                              "MaximumBatchingWindowInSeconds": source.get("MaximumBatchingWindowInSeconds") or 0}
    if params.get("FilterCriteria"):
        config["FilterCriteria"] = params["FilterCriteria"]
    if kind != "sqs":
        config.update({"StartingPosition": source.get("StartingPosition"),
                       "StartingPositionTimestamp": source.get("StartingPositionTimestamp"),
                       "MaximumRetryAttempts": source.get("MaximumRetryAttempts", -1),
                       "MaximumRecordAgeInSeconds": source.get("MaximumRecordAgeInSeconds", -1),
                       "ParallelizationFactor": source.get("ParallelizationFactor") or 1,
                       "BisectBatchOnFunctionError": source.get("OnPartialBatchItemFailure") == "AUTOMATIC_BISECT",
                       "DestinationConfig": {"OnFailure": {"Destination": (source.get("DeadLetterConfig") or {})
                                                           .get("Arn")} if source.get("DeadLetterConfig") else {}}})
    return config


class Consumer:
    """Stands where the pollers expect the Lambda service: ``invoke`` runs a pipe's batch."""

    def __init__(self, pipes: "Pipes") -> None:
        self.pipes = pipes
        self.cloud = pipes.cloud

    def flush_records(self) -> None:
        """The pollers commit an invocation's records with their bookkeeping; a pipe's own Lambda
        calls (enrichment, targets) gathered theirs in the Lambda service."""
        lam = self.cloud.services.loaded().get("lambda")  # a pipe that never called Lambda need not load it
        if lam is not None:
            lam.flush_records()

    async def invoke(self, pipe_arn: str, payload: bytes, *, region: str, account: str | None = None,
                     wait_for_slot: bool = False, **_: Any) -> Outcome:
        pipe = self.pipes.pipe_by_arn(pipe_arn)
        if pipe is None or pipe.desired != "RUNNING":
            return Outcome(function_error="Unhandled")  # stopped meanwhile: the batch goes back
        records = json.loads(payload).get("Records") or []
        try:
            ok = await self.run(pipe, records)
        except ServiceError as exc:
            log.warning("pipe %s: %s: %s", pipe.name, exc.code, exc.message)
            ok = False
        return Outcome() if ok else Outcome(function_error="Unhandled")

    async def run(self, pipe: Pipe, events: list[Any]) -> bool:
        """Enrich, transform and deliver one batch; False when it must be retried."""
        spec = pipe.spec
        lam = self.cloud.services.get("lambda")
        if spec.get("Enrichment"):
            template = (spec.get("EnrichmentParameters") or {}).get("InputTemplate")
            inputs = [_as_json(fill(template, e, pipe)) for e in events] if template else events
            if ":api-destination/" in spec["Enrichment"] and "events" in self.cloud.services:
                http = (spec.get("EnrichmentParameters") or {}).get("HttpParameters")
                status, content = await self.cloud.service("events").invoke_api_destination(
                    spec["Enrichment"], json.dumps(inputs), http)
                if status is None or not 200 <= status < 300:
                    return False
                payload = content
            else:
                if lam is None:
                    return False
                result = await lam.invoke(spec["Enrichment"], json.dumps(inputs).encode(), region=pipe.region,
                                          account=pipe.account, wait_for_slot=True)
                if result.function_error:
                    return False
                payload = result.payload
            try:
                answer = json.loads(payload or b"null")
            except ValueError:
                answer = payload.decode("utf-8", "replace")
            events = answer if isinstance(answer, list) else ([] if answer is None else [answer])
            if not events:
                return True  # the enrichment filtered everything out
        params = spec.get("TargetParameters") or {}
        template = params.get("InputTemplate")
        target = spec["Target"]
        service = target.split(":")[2] if target.count(":") >= 5 else ""
        if service == "lambda":
            body = json.dumps([_as_json(fill(template, e, pipe)) for e in events] if template else events)
            fire = (params.get("LambdaFunctionParameters") or {}).get("InvocationType") == "FIRE_AND_FORGET"
            if fire:
                with self.cloud.store.transaction():
                    targets.deliver(self.cloud, {"Arn": target}, body, "pipes", "", pipe.arn,
                                    role_arn=spec.get("RoleArn") or "")
                return True
            if lam is None:
                return False
            if self.cloud.config.enforce_iam:
                from unkai.services.iam.enforcement import role_denied

                with self.cloud.store.transaction():
                    denied = role_denied(self.cloud, "pipes.amazonaws.com", spec.get("RoleArn") or "",
                                         "lambda:InvokeFunction", target, pipe.arn)
                if denied is not None:
                    log.warning("pipe %s cannot invoke %s: %s", pipe.name, target, denied)
                    return False
            result = await lam.invoke(target, body.encode(), region=pipe.region, account=pipe.account,
                                      wait_for_slot=True)
            return not result.function_error
        payloads = [fill(template, e, pipe) if template else json.dumps(e) for e in events]
        if service == "events" and ":event-bus/" in target:
            bus = params.get("EventBridgeEventBusParameters") or {}
            kind = source_kind(pipe.source)
            entries = [{"Source": bus.get("Source") or f"Pipe {pipe.name}",
                        "DetailType": bus.get("DetailType") or f"Event from aws:{kind}",
                        "Detail": p if _is_object(p) else json.dumps({"value": p}),
                        "Resources": bus.get("Resources") or [], "EventBusName": target} for p in payloads]
            for i in range(0, len(entries), 10):
                self.cloud.call("events", "PutEvents", {"Entries": entries[i:i + 10]}, pipe.region)
            return True
        shaped: dict[str, Any] = {"Arn": target}
        sqs = params.get("SqsQueueParameters") or {}
        if sqs.get("MessageGroupId"):
            shaped["SqsParameters"] = {"MessageGroupId": sqs["MessageGroupId"]}
        kinesis = params.get("KinesisStreamParameters") or {}
        if kinesis.get("PartitionKey"):
            shaped["KinesisParameters"] = {"PartitionKeyPath": kinesis["PartitionKey"]}
        if params.get("HttpParameters"):
            shaped["HttpParameters"] = params["HttpParameters"]
        with self.cloud.store.transaction():
            for payload, event in zip(payloads, events):
                event_id = (event.get("messageId") or event.get("eventID") or "") if isinstance(event, dict) else ""
                targets.deliver(self.cloud, shaped, payload, "pipes", event_id, pipe.arn,
                                role_arn=spec.get("RoleArn") or "")
        return True


class PipeMappings(Mappings):
    """Lambda's mappings machinery over the pipes table: one poller per running pipe."""

    def __init__(self, pipes: "Pipes") -> None:
        super().__init__(pipes.cloud, Consumer(pipes))  # type: ignore[arg-type]
        self.pipes = pipes

    def refresh(self) -> None:
        from unkai.pollers.sqs import QueuePoller
        from unkai.pollers.streams import SOURCES, StreamPoller

        wanted = {}
        for row in self.store.all(f"SELECT {COLUMNS} FROM pipes_pipes WHERE desired='RUNNING'"):
            pipe = Pipe.from_row(row)
            wanted[pipe.key] = (pipe, poller_config(pipe))
        for key in list(self.pollers):
            if key not in wanted or self.pollers[key].config != wanted[key][1]:
                self.pollers.pop(key).cancel()
        for key, (pipe, config) in wanted.items():
            if key in self.pollers:
                continue
            kind = source_kind(pipe.source)
            if kind == "sqs":
                poller = QueuePoller(self, key, config)
            elif kind in SOURCES:
                poller = StreamPoller(self, key, config, kind)
            else:
                continue
            self.pollers[key] = poller
            poller.start()

    def load_state(self, uid: str) -> dict:
        row = self.store.one("SELECT state FROM pipes_pipes WHERE account=? AND region=? AND name=?", _key(uid))
        return json.loads(row[0]) if row else {}

    def save_state(self, uid: str, state: dict) -> None:
        self.store.execute("UPDATE pipes_pipes SET state=? WHERE account=? AND region=? AND name=?",
                           (json.dumps(state), *_key(uid)))

    def set_result(self, uid: str, result: str) -> None:
        pass  # pipes have no LastProcessingResult


def _key(arn: str) -> tuple[str, str, str]:
    parts = arn.split(":")
    return parts[4], parts[3], parts[5].split("/", 1)[1]


def fill(template: str | None, event: Any, pipe: Pipe) -> str:
    """A pipe InputTemplate for one event: ``<$.json.path>`` values and the reserved
    ``<aws.pipes.*>`` variables; inside quotes a value goes in as text, outside as JSON
    (EventBridge's rule). SQS bodies that are JSON can be addressed as ``$.body.field``."""
    if template is None:
        return json.dumps(event)
    view = _view(event)
    reserved = {"aws.pipes.pipe-arn": pipe.arn, "aws.pipes.pipe-name": pipe.name,
                "aws.pipes.source-arn": pipe.source, "aws.pipes.enrichment-arn": pipe.spec.get("Enrichment") or "",
                "aws.pipes.target-arn": pipe.spec.get("Target"), "aws.pipes.event": event,
                "aws.pipes.event.json": event}

    def one(m: re.Match) -> str:
        name = m.group(1)
        value = _path(view, name) if name.startswith("$") else reserved.get(name)
        quoted = m.start() > 0 and template[m.start() - 1] == '"' and template[m.end():m.end() + 1] == '"'
        if quoted:
            text = value if isinstance(value, str) else json.dumps(value)
            return json.dumps(text)[1:-1]
        return "null" if value is None else json.dumps(value)

    return _VAR.sub(one, template)


def _view(event: Any) -> Any:
    if isinstance(event, dict) and isinstance(event.get("body"), str):
        try:
            return dict(event, body=json.loads(event["body"]))
        except ValueError:
            pass
    return event


def _path(document: Any, path: str) -> Any:
    value = document
    for part in re.findall(r"\.([^.\[\]]+)|\[(\d+)\]", path[1:]):
        key, index = part
        if index:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
        else:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            return None
    return value


def _as_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _is_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False
