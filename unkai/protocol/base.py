"""The contract every wire protocol implements, and the shared error lookup."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from unkai.http import Request, Response
from unkai.protocol import models
from unkai.protocol.errors import ServiceError

if TYPE_CHECKING:  # botocore.model is imported with the first model (it pulls in awscrt and urllib3)
    from botocore.model import OperationModel, ServiceModel


class Protocol:
    """Parses one protocol's requests into dicts and serializes dicts back."""

    name: str = ""

    def find_operation(self, model: ServiceModel, request: Request, body: bytes | None) -> OperationModel | None:
        """Which operation the request asks for, or None when it is not ours to answer."""
        raise NotImplementedError

    def needs_body_to_route(self) -> bool:
        return False

    def parse(self, op: OperationModel, request: Request, body: bytes | None) -> dict[str, Any]:
        raise NotImplementedError

    def serialize(self, op: OperationModel, result: dict[str, Any] | None, request_id: str) -> Response:
        raise NotImplementedError

    def serialize_error(self, model: ServiceModel, error: ServiceError, request_id: str,
                        op: OperationModel | None = None) -> Response:
        raise NotImplementedError


class ResolvedError:
    """An error with its wire code, status and fault settled from the model."""

    __slots__ = ("name", "code", "status", "sender_fault", "shape")

    def __init__(self, model: ServiceModel | None, error: ServiceError) -> None:
        shape = models.error_shape(model, error.code) if model is not None else None
        self.shape = shape
        self.name = shape.name if shape is not None else error.code
        meta = shape.metadata.get("error", {}) if shape is not None else {}
        self.code = meta.get("code", self.name)
        self.status = error.status or meta.get("httpStatusCode") or 400
        self.sender_fault = meta.get("senderFault", error.sender_fault) if meta else error.sender_fault
        if self.status >= 500 and not meta:
            self.sender_fault = False


def streaming_input(op: OperationModel) -> bool:
    """Whether the operation's request body is a stream the service reads itself."""
    shape = op.input_shape
    if shape is None:
        return False
    payload = shape.serialization.get("payload")
    return bool(payload and shape.members[payload].type_name == "blob"
                and shape.members[payload].serialization.get("streaming"))
