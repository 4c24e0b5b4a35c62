"""AWS's CBOR flavour of the JSON protocol (``application/x-amz-cbor-1.1``), which the
AWS SDK for Java and the Kinesis Client Library use for Kinesis by default.

Operations are routed by ``X-Amz-Target`` exactly as for JSON; only the body codec
differs: CBOR maps with botocore's member names, blobs as CBOR byte strings (not
base64) and timestamps as epoch milliseconds (integers), as the Java SDK writes and
reads them. A CBOR tag-1 datetime is accepted too. Errors keep JSON's ``__type`` and
``message`` keys, encoded in CBOR.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from unkai.http import Request, Response
from unkai.protocol import awsjson
from unkai.protocol.base import ResolvedError
from unkai.protocol.errors import SerializationError, ServiceError

if TYPE_CHECKING:  # botocore.model is imported with the first model (it pulls in awscrt and urllib3)
    from botocore.model import OperationModel, ServiceModel, Shape

CONTENT_TYPE = "application/x-amz-cbor-1.1"


def is_cbor(request: Request) -> bool:
    return (request.headers.get("content-type") or "").startswith("application/x-amz-cbor")


def _to_json_ready(shape: Shape, value: Any) -> Any:
    """A decoded CBOR value in the form ``awsjson.decode`` checks (blobs as base64 text,
    timestamps as epoch seconds)."""
    if value is None:
        return None
    t = shape.type_name
    if t == "structure" and isinstance(value, dict):
        members = shape.members
        return {k: _to_json_ready(members[k], v) if k in members else v for k, v in value.items()}
    if t == "list" and isinstance(value, list):
        return [_to_json_ready(shape.member, v) for v in value]
    if t == "map" and isinstance(value, dict):
        return {k: _to_json_ready(shape.value, v) for k, v in value.items()}
    if t == "blob" and isinstance(value, (bytes, bytearray)):
        import base64

        return base64.b64encode(value).decode()
    if t == "timestamp":
        if isinstance(value, dt.datetime):
            return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).timestamp()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value / 1000.0  # the Java SDK writes epoch milliseconds
    return value


def _to_cbor(shape: Shape, value: Any) -> Any:
    if value is None:
        return None
    t = shape.type_name
    if t == "structure":
        members = shape.members
        return {k: _to_cbor(members[k], v) for k, v in value.items() if k in members and v is not None}
    if t == "list":
        return [_to_cbor(shape.member, v) for v in value]
    if t == "map":
        return {k: _to_cbor(shape.value, v) for k, v in value.items()}
    if t == "blob":
        return bytes(value) if isinstance(value, (bytes, bytearray)) else str(value).encode()
    if t == "timestamp":
        if isinstance(value, dt.datetime):
            value = value.timestamp()
        return int(round(float(value) * 1000))
    return value


def loads(body: bytes) -> Any:
    import cbor2

    if not body:
        return {}
    try:
        return cbor2.loads(body)
    except Exception as exc:  # cbor2 raises several types for malformed input
        raise SerializationError(f"Could not parse request body into cbor: {exc}") from None


def dumps(data: Any) -> bytes:
    import cbor2

    return cbor2.dumps(data)


class CborProtocol(awsjson.JsonProtocol):
    name = "cbor"

    def parse(self, op: OperationModel, request: Request, body: bytes | None) -> dict[str, Any]:
        data = loads(body or b"")
        shape = op.input_shape
        if shape is None:
            return {}
        if not isinstance(data, dict):
            raise SerializationError("Request body must be a CBOR map.")
        return awsjson.decode(shape, _to_json_ready(shape, data))

    def content_type(self, model: ServiceModel) -> str:
        return CONTENT_TYPE

    def serialize(self, op: OperationModel, result: dict[str, Any] | None, request_id: str) -> Response:
        shape = op.output_shape
        data = _to_cbor(shape, result or {}) if shape is not None else {}
        return Response(200, [("content-type", CONTENT_TYPE), ("x-amzn-requestid", request_id)], dumps(data))

    def serialize_error(self, model: ServiceModel, error: ServiceError, request_id: str,
                        op: OperationModel | None = None) -> Response:
        resolved = ResolvedError(model, error)
        body: dict[str, Any] = {"__type": resolved.name, "message": error.message}
        body.update(error.fields)
        headers = [("content-type", CONTENT_TYPE), ("x-amzn-requestid", request_id)]
        headers += list(error.headers.items())
        return Response(resolved.status, headers, dumps(body))
