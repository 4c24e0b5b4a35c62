"""Errors of Lambda's durable execution API (durable.py), named by botocore's error shapes,
with AWS's messages where AWS documents them. (The rest of the Lambda service still raises
through ``functions.not_found`` / ``functions.invalid``.)"""

from __future__ import annotations

from unkai.protocol import ServiceError
from unkai.services.awslambda.functions import invalid

__all__ = ["already_started", "callback_closed", "callback_not_found", "conflict", "execution_not_found", "invalid",
           "validation"]


def validation(value: str, field: str, pattern: str) -> ServiceError:
    """A parameter that does not match the model's pattern."""
    return ServiceError("ValidationException", f"1 validation error detected: Value '{value}' at '{field}' failed to "
                        f"satisfy constraint: Member must satisfy regular expression pattern: {pattern}")


def execution_not_found(arn: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"Durable execution not found: {arn}", Type="User")


def callback_not_found(callback_id: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"Callback not found: {callback_id}", Type="User")


def callback_closed() -> ServiceError:
    """CallbackTimeoutException, as botocore's model documents it."""
    return ServiceError("CallbackTimeoutException", "The callback ID token has either expired or the callback "
                        "associated with the token has already been closed.", Type="User")


def already_started(name: str) -> ServiceError:
    return ServiceError("DurableExecutionAlreadyStartedException", f"Durable execution with name {name} already "
                        "exists with a different input.", status=409, Type="User")


def conflict(message: str) -> ServiceError:
    return ServiceError("ResourceConflictException", message, Type="User")
