"""Event-source wiring between services: Lambda's event source mappings (the pollers
that read SQS queues, DynamoDB streams and Kinesis streams and invoke functions with
batches; ``streams.py`` is the one poller for every stream source).

A mapping's configuration and its durable state (stream positions, retry counts) are
rows in the Lambda service's ``lambda_mappings`` table; each enabled mapping has a
poller task that sleeps on the source's signal, so delivery starts within
milliseconds of a send and nothing polls on an interval.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from unkai.protocol import ServiceError
from unkai import patterns  # Lambda's FilterCriteria are EventBridge patterns

if TYPE_CHECKING:
    from unkai.cloud import Cloud
    from unkai.services import RequestContext
    from unkai.services.awslambda.service import Lambda

STREAM_DEFAULTS = {"BatchSize": 100, "MaximumBatchingWindowInSeconds": 0, "ParallelizationFactor": 1,
                   "MaximumRecordAgeInSeconds": -1, "BisectBatchOnFunctionError": False,
                   "MaximumRetryAttempts": -1, "TumblingWindowInSeconds": 0, "DestinationConfig": {"OnFailure": {}}}
SQS_DEFAULTS = {"BatchSize": 10, "MaximumBatchingWindowInSeconds": 0}
UPDATABLE = ("BatchSize", "MaximumBatchingWindowInSeconds", "FilterCriteria", "FunctionResponseTypes",
             "ScalingConfig", "ParallelizationFactor", "MaximumRecordAgeInSeconds", "BisectBatchOnFunctionError",
             "MaximumRetryAttempts", "DestinationConfig", "TumblingWindowInSeconds")


def describe(config: dict) -> dict:
    """An event source mapping as AWS describes it: ``FunctionResponseTypes`` always listed; for
    streams ``StateTransitionReason`` "User action" and a ``LastProcessingResult``; for SQS
    "USER_INITIATED" and no ``LastProcessingResult`` (AWS's create/get answers for each kind)."""
    out = dict(config)
    out.setdefault("FunctionResponseTypes", [])
    if kind_of(out.get("EventSourceArn") or "") == "sqs":
        out.pop("LastProcessingResult", None)
        out["StateTransitionReason"] = "USER_INITIATED"
    else:
        out["StateTransitionReason"] = "User action"
    return out


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterValueException", message)


def kind_of(source_arn: str) -> str:
    if source_arn.startswith("arn:aws:sqs:"):
        return "sqs"
    if source_arn.startswith("arn:aws:dynamodb:") and "/stream/" in source_arn:
        return "dynamodb"
    if source_arn.startswith("arn:aws:kinesis:"):
        return "kinesis"
    return "unknown"


class Mappings:
    def __init__(self, cloud: "Cloud", service: "Lambda") -> None:
        self.cloud = cloud
        self.service = service
        self.store = cloud.store
        self.pollers: dict[str, Any] = {}

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self.refresh()

    async def stop(self) -> None:
        for poller in list(self.pollers.values()):
            await poller.stop()
        self.pollers.clear()

    def refresh(self) -> None:
        """Start pollers for enabled mappings, stop the rest (after any change)."""
        from unkai.pollers.sqs import QueuePoller
        from unkai.pollers.streams import SOURCES, StreamPoller

        rows = self.store.all("SELECT uuid, config FROM lambda_mappings")
        wanted = {}
        for uid, config in rows:
            config = json.loads(config)
            if config.get("State") == "Enabled":
                wanted[uid] = config
        for uid in list(self.pollers):
            poller = self.pollers[uid]
            if uid not in wanted or poller.config != wanted[uid]:
                self.pollers.pop(uid).cancel()
        for uid, config in wanted.items():
            if uid in self.pollers:
                continue
            kind = kind_of(config["EventSourceArn"])
            if kind == "sqs":
                poller = self.pollers[uid] = QueuePoller(self, uid, config)
            elif kind in SOURCES:
                poller = self.pollers[uid] = StreamPoller(self, uid, config, kind)
            else:
                continue
            poller.start()

    def pending(self) -> dict[str, int]:
        total = interrupted = 0
        for poller in self.pollers.values():
            total += poller.pending()
            interrupted += poller.interrupted()
        found = {"event_source_batches": total}
        if interrupted:  # received before a crash; back after their visibility timeout
            found["messages_interrupted_by_a_restart"] = interrupted
        return found

    # -- state ------------------------------------------------------------------------------

    def load_state(self, uid: str) -> dict:
        row = self.store.one("SELECT state FROM lambda_mappings WHERE uuid=?", (uid,))
        return json.loads(row[0]) if row else {}

    def save_state(self, uid: str, state: dict) -> None:
        self.store.execute("UPDATE lambda_mappings SET state=? WHERE uuid=?", (json.dumps(state), uid))

    def set_result(self, uid: str, result: str) -> None:
        poller = self.pollers.get(uid)
        if poller is not None and poller.config.get("LastProcessingResult") == result:
            return  # the running poller's config is the stored one (refresh restarts it on any change)
        row = self.store.one("SELECT config FROM lambda_mappings WHERE uuid=?", (uid,))
        if row is None:
            return
        config = json.loads(row[0])
        if config.get("LastProcessingResult") != result:
            config["LastProcessingResult"] = result
            self.store.execute("UPDATE lambda_mappings SET config=? WHERE uuid=?", (json.dumps(config), uid))
            self.store.after_commit(lambda: self._adopt(uid, config))

    def _adopt(self, uid: str, config: dict) -> None:
        poller = self.pollers.get(uid)
        if poller is not None:
            poller.config = config

    # -- the API ------------------------------------------------------------------------------

    def _function_arn(self, ctx: "RequestContext", name: str) -> str:
        try:
            target = self.service.resolve(ctx.account, ctx.region, name)
        except ServiceError:
            raise ServiceError("ResourceNotFoundException", "Function does not exist", Type="User") from None
        return target.invoked_arn

    def _check_role(self, kind: str, source: str, function_arn: str, ctx: "RequestContext") -> None:
        """``--enforce-iam``: the function's execution role must be able to read the source,
        as AWS checks when a mapping is created."""
        if not self.cloud.config.enforce_iam:
            return
        from unkai.services.iam.enforcement import role_cannot_read

        role = self.service.resolve(ctx.account, ctx.region, function_arn).config.get("Role") or ""
        missing = role_cannot_read(self.cloud, role, kind, source)
        if missing is None:
            return
        if kind == "sqs":
            message = f"The provided execution role does not have permissions to call {missing.split(':')[1]} on SQS"
        else:
            message = (f"Cannot access stream {source}. Please ensure the role can perform the GetRecords, "
                       "GetShardIterator, DescribeStream, and ListStreams Actions on your stream in IAM.")
        raise ServiceError("InvalidParameterValueException", message, Type="User")

    def _validate(self, kind: str, config: dict, source: str, function_arn: str, ctx: "RequestContext") -> None:
        batch = config["BatchSize"]
        window = config.get("MaximumBatchingWindowInSeconds") or 0
        if kind == "sqs":
            sqs = self.cloud.service("sqs")
            queue = sqs.queue_by_arn(source)
            if queue is None:
                raise _invalid("Error occurred while ReceiveMessage. SQS Error Code: "
                               "AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: The specified queue does "
                               "not exist for this wsdl version.")
            top = 10 if queue.fifo else 10000
            if not 1 <= batch <= top:
                raise _invalid(f"BatchSize must be between 1 and {top}.")
            if batch > 10 and window < 1:
                raise _invalid("Maximum batch window in seconds must be greater than 0 if maximum batch size is "
                               "greater than 10")
            timeout = self.service.resolve(ctx.account, ctx.region, function_arn).config.get("Timeout", 3)
            visibility = queue.attr_int("VisibilityTimeout")
            if visibility < timeout:
                raise _invalid(f"Queue visibility timeout: {visibility} seconds is less than Function timeout: "
                               f"{timeout} seconds")
        elif kind == "dynamodb":
            if not 1 <= batch <= 10000:
                raise _invalid("BatchSize must be between 1 and 10000.")
            if config.get("StartingPosition") not in ("TRIM_HORIZON", "LATEST"):
                raise _invalid("1 validation error detected: Value null at 'startingPosition' failed to satisfy "
                               "constraint: Member must not be null" if not config.get("StartingPosition") else
                               f"Unsupported starting position {config['StartingPosition']} for DynamoDB streams.")
            streams = self.cloud.services.get("dynamodbstreams")
            if streams is not None and hasattr(streams, "latest_sequence"):
                try:
                    streams.latest_sequence(source)
                except ServiceError:
                    raise _invalid(f"Stream not found: {source}") from None
        elif kind == "kinesis":
            if not 1 <= batch <= 10000:
                raise _invalid("BatchSize must be between 1 and 10000.")
            if config.get("StartingPosition") not in ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"):
                raise _invalid("1 validation error detected: Value null at 'startingPosition' failed to satisfy "
                               "constraint: Member must not be null" if not config.get("StartingPosition") else
                               f"Unsupported starting position {config['StartingPosition']} for Kinesis streams.")
            if config["StartingPosition"] == "AT_TIMESTAMP" and config.get("StartingPositionTimestamp") is None:
                raise _invalid("StartingPositionTimestamp must be set when StartingPosition is AT_TIMESTAMP.")
            kinesis = self.cloud.services.get("kinesis")
            if kinesis is None or kinesis.stream_by_arn(source.split("/consumer/")[0]) is None:
                raise _invalid(f"Stream not found: {source}")
        else:
            raise _invalid(f"Unrecognized event source, must be kinesis, dynamodb stream or sqs. Unsupported source "
                           f"arn : {source}")
        if kind != "sqs":
            if not 1 <= (config.get("ParallelizationFactor") or 1) <= 10:
                raise _invalid("ParallelizationFactor must be between 1 and 10.")
            if not 0 <= (config.get("TumblingWindowInSeconds") or 0) <= 900:
                raise _invalid("TumblingWindowInSeconds must be between 0 and 900.")
            retries = config.get("MaximumRetryAttempts", -1)
            if retries is not None and not -1 <= retries <= 10000:
                raise _invalid("MaximumRetryAttempts must be between -1 and 10000.")
            age = config.get("MaximumRecordAgeInSeconds", -1)
            if age is not None and age != -1 and not 60 <= age <= 604800:
                raise _invalid("MaximumRecordAgeInSeconds must be -1 or between 60 and 604800.")
        if not 0 <= window <= 300:
            raise _invalid("MaximumBatchingWindowInSeconds must be between 0 and 300.")
        for item in (config.get("FilterCriteria") or {}).get("Filters") or []:
            try:
                patterns.parse(item.get("Pattern") or "")
            except patterns.InvalidPattern:
                raise _invalid("Invalid filter pattern definition.") from None
        max_concurrency = (config.get("ScalingConfig") or {}).get("MaximumConcurrency")
        if max_concurrency is not None and not 2 <= max_concurrency <= 1000:
            raise _invalid("MaximumConcurrency must be between 2 and 1000.")

    def create(self, ctx: "RequestContext", params: dict) -> dict:
        source = params.get("EventSourceArn") or ""
        kind = kind_of(source)
        function_arn = self._function_arn(ctx, params["FunctionName"])
        for uid, config in self.store.all("SELECT uuid, config FROM lambda_mappings WHERE source_arn=? AND "
                                          "function_arn=?", (source, function_arn)):
            what = "SQS" if kind == "sqs" else "event source"
            raise ServiceError("ResourceConflictException", f"An event source mapping with {what} arn (\" {source} "
                               f"\") and function (\" {params['FunctionName']} \") already exists. Please update or "
                               f"delete the existing mapping with UUID {uid}", Type="User")
        uid = str(uuid.uuid4())
        config: dict[str, Any] = dict(SQS_DEFAULTS if kind == "sqs" else STREAM_DEFAULTS)
        for key in UPDATABLE + ("StartingPosition", "StartingPositionTimestamp"):
            if params.get(key) is not None:
                config[key] = params[key]
        self._validate(kind, config, source, function_arn, ctx)
        self._check_role(kind, source, function_arn, ctx)
        config.update({
            "UUID": uid, "EventSourceArn": source, "FunctionArn": function_arn,
            "LastModified": self.service.clock.now(), "LastProcessingResult": "No records processed",
            "State": "Enabled" if params.get("Enabled", True) else "Disabled",
            "StateTransitionReason": "USER_INITIATED",
            "EventSourceMappingArn": f"arn:aws:lambda:{ctx.region}:{ctx.account}:event-source-mapping:{uid}",
        })
        if kind in ("dynamodb", "kinesis") and "StartingPosition" in config:
            config["StartingPosition"] = params["StartingPosition"]
        state = self._initial_state(kind, config)
        self.store.execute("INSERT INTO lambda_mappings(uuid, account, region, function_arn, source_arn, config, state) "
                           "VALUES(?,?,?,?,?,?,?)", (uid, ctx.account, ctx.region, function_arn, source,
                                                     json.dumps(config), json.dumps(state)))
        self.store.after_commit(self.refresh)
        return describe(dict(config, State="Creating"))

    def _initial_state(self, kind: str, config: dict) -> dict:
        from unkai.pollers.streams import SOURCES, initial_state

        if kind not in SOURCES:
            return {}
        try:
            return initial_state(self.cloud, kind, config)
        except ServiceError:
            return {"positions": {}, "finished": []}

    def _row(self, ctx: "RequestContext", uid: str) -> dict:
        row = self.store.one("SELECT config FROM lambda_mappings WHERE uuid=? AND account=? AND region=?",
                             (uid, ctx.account, ctx.region))
        if row is None:
            raise ServiceError("ResourceNotFoundException", "The resource you requested does not exist.", Type="User")
        return json.loads(row[0])

    def get(self, ctx: "RequestContext", uid: str) -> dict:
        return describe(self._row(ctx, uid))

    def update(self, ctx: "RequestContext", params: dict) -> dict:
        config = self._row(ctx, params["UUID"])
        kind = kind_of(config["EventSourceArn"])
        for key in UPDATABLE:
            if key in params:
                config[key] = params[key]
        if params.get("FunctionName"):
            config["FunctionArn"] = self._function_arn(ctx, params["FunctionName"])
        self._validate(kind, config, config["EventSourceArn"], config["FunctionArn"], ctx)
        if "Enabled" in params:
            config["State"] = "Enabled" if params["Enabled"] else "Disabled"
        config["LastModified"] = self.service.clock.now()
        self.store.execute("UPDATE lambda_mappings SET config=?, function_arn=? WHERE uuid=?",
                           (json.dumps(config), config["FunctionArn"], params["UUID"]))
        self.store.after_commit(self.refresh)
        return describe(dict(config, State="Updating"))

    def delete(self, ctx: "RequestContext", uid: str) -> dict:
        config = self._row(ctx, uid)
        self.store.execute("DELETE FROM lambda_mappings WHERE uuid=?", (uid,))
        self.store.after_commit(self.refresh)
        return describe(dict(config, State="Deleting"))

    def list(self, ctx: "RequestContext", params: dict) -> dict:
        where, args = "account=? AND region=?", [ctx.account, ctx.region]
        if params.get("EventSourceArn"):
            where += " AND source_arn=?"
            args.append(params["EventSourceArn"])
        if params.get("FunctionName"):
            arn = self._function_arn(ctx, params["FunctionName"])
            where += " AND (function_arn=? OR function_arn LIKE ?)"
            args += [arn, arn + ":%"]
        rows = self.store.all(f"SELECT config FROM lambda_mappings WHERE {where} ORDER BY uuid", args)
        start = int(params.get("Marker") or 0)
        limit = params.get("MaxItems") or 100
        result: dict[str, Any] = {"EventSourceMappings": [describe(json.loads(c))
                                                                 for (c,) in rows[start:start + limit]]}
        if start + limit < len(rows):
            result["NextMarker"] = str(start + limit)
        return result

    # -- shared by the pollers -------------------------------------------------------------------

    @staticmethod
    def compile_filters(config: dict) -> list[dict]:
        return [json.loads(f["Pattern"]) for f in (config.get("FilterCriteria") or {}).get("Filters") or []
                if f.get("Pattern")]

    @staticmethod
    def passes(filters: list[dict], record: dict) -> bool:
        return not filters or any(patterns.matches(f, record) for f in filters)
