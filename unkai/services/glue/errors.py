"""Glue Data Catalog errors, worded as Glue words them."""

from __future__ import annotations

from unkai.protocol import ServiceError


def not_found(message: str) -> ServiceError:
    return ServiceError("EntityNotFoundException", message)


def exists(message: str) -> ServiceError:
    return ServiceError("AlreadyExistsException", message)


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidInputException", message)
