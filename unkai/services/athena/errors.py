"""Athena's errors, as the API words them."""

from __future__ import annotations

from unkai.protocol import ServiceError


def invalid(message: str, code: str | None = None) -> ServiceError:
    """InvalidRequestException (with AthenaErrorCode when AWS sends one)."""
    fields = {"AthenaErrorCode": code} if code else {}
    return ServiceError("InvalidRequestException", message, **fields)


def not_found(message: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", message)


def not_running(qid: str, state: str) -> ServiceError:
    return invalid(f"Query has not yet finished. Current state: {state}")
