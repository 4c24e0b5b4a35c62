"""Errors a service raises; the serializer turns them into each protocol's error shape."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """An AWS error response.

    ``code`` is the error shape's name in the service model (``QueueDoesNotExist``)
    or, for errors the model does not list, the wire code (``InvalidParameterValue``).
    ``status`` defaults to the model's ``httpStatusCode`` for the shape, else 400.
    Extra keyword ``fields`` become members of the error body (``BucketName``,
    ``CancellationReasons``...).
    """

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        status: int | None = None,
        sender_fault: bool = True,
        headers: dict[str, str] | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.sender_fault = sender_fault
        self.headers = headers or {}
        self.fields = fields

    def __repr__(self) -> str:
        return f"ServiceError({self.code!r}, {self.message!r})"


class ParamError(ServiceError):
    """A request parameter is missing or malformed.

    Services choose the wire code for their protocol family through
    ``Service.param_error``; ``kind`` is ``missing`` or ``invalid``.
    """

    def __init__(self, kind: str, name: str, message: str) -> None:
        super().__init__("ValidationException", message)
        self.kind = kind
        self.name = name


class SerializationError(ServiceError):
    """The request body cannot be decoded (malformed JSON, XML, base64...)."""

    def __init__(self, message: str) -> None:
        super().__init__("SerializationException", message)


class UnknownOperation(ServiceError):
    def __init__(self, message: str = "") -> None:
        super().__init__("UnknownOperationException", message)
