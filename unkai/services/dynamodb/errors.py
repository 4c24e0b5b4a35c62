"""The errors DynamoDB answers with, worded as AWS words them."""

from __future__ import annotations

from unkai.protocol import ServiceError


def validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def invalid(message: str) -> ServiceError:
    """'One or more parameter values were invalid: ...', AWS's most common prefix."""
    return ServiceError("ValidationException", f"One or more parameter values were invalid: {message}")


def not_found(message: str = "Requested resource not found") -> ServiceError:
    return ServiceError("ResourceNotFoundException", message)


def in_use(message: str) -> ServiceError:
    return ServiceError("ResourceInUseException", message)


def condition_failed(item: dict | None = None) -> ServiceError:
    fields = {"Item": item} if item is not None else {}
    return ServiceError("ConditionalCheckFailedException", "The conditional request failed", **fields)


def table_not_found(name: str) -> ServiceError:
    """What the backup operations answer for a table that does not exist."""
    return ServiceError("TableNotFoundException", f"Table not found: {name}")
