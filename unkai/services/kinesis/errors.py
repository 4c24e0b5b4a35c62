"""Every error Kinesis Data Streams answers with, worded as AWS words them."""

from __future__ import annotations

from unkai.protocol import ServiceError


def stream_not_found(name: str, account: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"Stream {name} under account {account} not found.")


def stream_exists(name: str, account: str) -> ServiceError:
    return ServiceError("ResourceInUseException", f"Stream {name} under account {account} already exists.")


def in_use(message: str) -> ServiceError:
    return ServiceError("ResourceInUseException", message)


def not_found(message: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", message)


def shard_not_found(shard: str, name: str, account: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException",
                        f"Could not find shard {shard} in stream {name} under account {account}.")


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidArgumentException", message)


def validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def limit(message: str) -> ServiceError:
    return ServiceError("LimitExceededException", message)


def expired_iterator(created_ms: int, now_ms: int) -> ServiceError:
    return ServiceError("ExpiredIteratorException",
                        f"Iterator expired. The iterator was created at time {created_ms} while right now it is "
                        f"{now_ms} which is further in the future than the tolerated delay of 300000 milliseconds.")


def throttled_message(shard: str, name: str, account: str) -> str:
    return f"Rate exceeded for shard {shard} in stream {name} under account {account}."


def throttled(shard: str, name: str, account: str) -> ServiceError:
    return ServiceError("ProvisionedThroughputExceededException", throttled_message(shard, name, account))
