"""AWS::KinesisFirehose::DeliveryStream for templates, created through CreateDeliveryStream.

``Ref`` gives the delivery stream's name, ``GetAtt Arn`` its ARN. Any property change
replaces the stream here (AWS updates destinations in place; the buffered records of
the old stream are dropped on replacement).
"""

from __future__ import annotations

from typing import Any

from unkai.services import Provisioned, ResourceContext
from unkai.template.names import physical_name

TYPES = ("AWS::KinesisFirehose::DeliveryStream",)
_PASSED = ("DeliveryStreamType", "KinesisStreamSourceConfiguration", "S3DestinationConfiguration",
           "ExtendedS3DestinationConfiguration", "Tags")


def _ints(value: Any) -> Any:
    """Template scalars arrive as written ("300"); the API wants numbers where the model does."""
    if isinstance(value, dict):
        return {k: (int(v) if k in ("SizeInMBs", "IntervalInSeconds", "DurationInSeconds") and
                    str(v).isdigit() else _ints(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def create(firehose: Any, ctx: ResourceContext, logical_id: str, props: dict) -> Provisioned:
    name = props.get("DeliveryStreamName") or physical_name(ctx.stack_name, logical_id, 64)
    params = {k: _ints(props[k]) for k in _PASSED if k in props}
    for key in ("DeliveryStreamType",):
        if key in props:
            params[key] = props[key]
    params["DeliveryStreamName"] = name
    if props.get("DeliveryStreamEncryptionConfigurationInput"):
        params["DeliveryStreamEncryptionConfigurationInput"] = props["DeliveryStreamEncryptionConfigurationInput"]
    rctx = ctx.request_context("firehose", "CreateDeliveryStream")
    arn = firehose.create_delivery_stream(rctx, params)["DeliveryStreamARN"]
    return Provisioned(name, name, {"Arn": arn})


def delete(firehose: Any, ctx: ResourceContext, physical_id: str) -> None:
    rctx = ctx.request_context("firehose", "DeleteDeliveryStream")
    try:
        firehose.delete_delivery_stream(rctx, {"DeliveryStreamName": physical_id})
    except Exception as exc:  # already gone
        if getattr(exc, "code", "") != "ResourceNotFoundException":
            raise
