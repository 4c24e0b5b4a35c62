"""AWS::Kinesis::Stream and AWS::Kinesis::StreamConsumer for templates, created through
the service's own operations.

``Ref`` gives the stream name (a consumer: its ARN); ``GetAtt`` gives ``Arn`` (a
consumer: ``ConsumerARN``, ``ConsumerName``, ``StreamARN``...). Changing ``Name`` or
``StreamModeDetails`` replaces nothing here but ``Name``: a new name is a new stream, as
on AWS; shard count, retention, encryption and tags are updated in place.
"""

from __future__ import annotations

from typing import Any

from unkai.services import Provisioned, ResourceContext
from unkai.template.names import physical_name

TYPES = ("AWS::Kinesis::Stream", "AWS::Kinesis::StreamConsumer")


def _tags(props: dict) -> dict:
    return {t["Key"]: t["Value"] for t in props.get("Tags") or []}


def create(kinesis: Any, ctx: ResourceContext, logical_id: str, props: dict) -> Provisioned:
    if "ConsumerName" in props:
        rctx = ctx.request_context("kinesis", "RegisterStreamConsumer")
        out = kinesis.register_stream_consumer(rctx, {"StreamARN": props["StreamARN"],
                                                      "ConsumerName": props["ConsumerName"]})["Consumer"]
        return Provisioned(out["ConsumerARN"], out["ConsumerARN"], {
            "ConsumerARN": out["ConsumerARN"], "ConsumerName": out["ConsumerName"], "StreamARN": props["StreamARN"],
            "ConsumerStatus": "ACTIVE", "ConsumerCreationTimestamp": str(int(out["ConsumerCreationTimestamp"]))})
    name = props.get("Name") or physical_name(ctx.stack_name, logical_id, 128)
    rctx = ctx.request_context("kinesis", "CreateStream")
    mode = (props.get("StreamModeDetails") or {}).get("StreamMode") or "PROVISIONED"
    params: dict[str, Any] = {"StreamName": name, "StreamModeDetails": {"StreamMode": mode}, "Tags": _tags(props)}
    if mode == "PROVISIONED":
        params["ShardCount"] = int(props.get("ShardCount") or 1)
    kinesis.create_stream(rctx, params)
    _settings(kinesis, ctx, name, props, 24)
    return _provisioned(kinesis, ctx, name)


def _settings(kinesis: Any, ctx: ResourceContext, name: str, props: dict, current_hours: int) -> None:
    rctx = ctx.request_context("kinesis")
    hours = int(props.get("RetentionPeriodHours") or 24)
    if hours > current_hours:
        kinesis.increase_stream_retention_period(rctx, {"StreamName": name, "RetentionPeriodHours": hours})
    elif hours < current_hours:
        kinesis.decrease_stream_retention_period(rctx, {"StreamName": name, "RetentionPeriodHours": hours})
    encryption = props.get("StreamEncryption")
    if encryption:
        kinesis.start_stream_encryption(rctx, {"StreamName": name, "EncryptionType": encryption["EncryptionType"],
                                               "KeyId": encryption["KeyId"]})
    else:
        kinesis.stop_stream_encryption(rctx, {"StreamName": name, "EncryptionType": "KMS", "KeyId": "-"})


def _provisioned(kinesis: Any, ctx: ResourceContext, name: str) -> Provisioned:
    stream = kinesis.streams.find(ctx.account, ctx.region, name)
    return Provisioned(name, name, {"Arn": stream.arn})


def update(kinesis: Any, ctx: ResourceContext, logical_id: str, physical_id: str, old: dict,
           props: dict) -> Provisioned:
    if "ConsumerName" in props or (props.get("Name") or physical_id) != physical_id:
        delete(kinesis, ctx, physical_id)
        return create(kinesis, ctx, logical_id, props)
    stream = kinesis.streams.find(ctx.account, ctx.region, physical_id)
    rctx = ctx.request_context("kinesis")
    mode = (props.get("StreamModeDetails") or {}).get("StreamMode") or "PROVISIONED"
    if mode != stream.mode:
        kinesis.update_stream_mode(rctx, {"StreamARN": stream.arn, "StreamModeDetails": {"StreamMode": mode}})
    count = int(props.get("ShardCount") or 1)
    if mode == "PROVISIONED" and count != len(kinesis.streams.open_shards(stream.id)):
        kinesis.update_shard_count(rctx, {"StreamName": physical_id, "TargetShardCount": count,
                                          "ScalingType": "UNIFORM_SCALING"})
    _settings(kinesis, ctx, physical_id, props, stream.retention_hours)
    kinesis.streams.update(kinesis.streams.find(ctx.account, ctx.region, physical_id), tags=_tags(props))
    return _provisioned(kinesis, ctx, physical_id)


def delete(kinesis: Any, ctx: ResourceContext, physical_id: str) -> None:
    rctx = ctx.request_context("kinesis")
    try:
        if physical_id.startswith("arn:"):
            kinesis.deregister_stream_consumer(rctx, {"ConsumerARN": physical_id})
        else:
            kinesis.delete_stream(rctx, {"StreamName": physical_id, "EnforceConsumerDeletion": True})
    except Exception as exc:  # already gone
        if getattr(exc, "code", "") != "ResourceNotFoundException":
            raise
