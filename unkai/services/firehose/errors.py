"""Every error Amazon Data Firehose answers with, worded as AWS words them."""

from __future__ import annotations

from unkai.protocol import ServiceError


def not_found(name: str, account: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"Firehose {name} under account {account} not found.")


def exists(name: str, account: str) -> ServiceError:
    return ServiceError("ResourceInUseException", f"Firehose {name} under accountId {account} already exists")


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidArgumentException", message)


def concurrent(message: str) -> ServiceError:
    return ServiceError("ConcurrentModificationException", message)


def limit(message: str) -> ServiceError:
    return ServiceError("LimitExceededException", message)
