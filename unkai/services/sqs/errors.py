"""The generic SQS parameter errors, in the words AWS uses."""

from __future__ import annotations

from unkai.protocol import ServiceError


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterValue", message)


def missing(name: str) -> ServiceError:
    return ServiceError("MissingParameter", f"The request must contain the parameter {name}.")
