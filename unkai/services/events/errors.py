"""Every error EventBridge raises, with AWS's code and message text (moto's AWS-verified
tests and the EventBridge API reference are the sources for the wording)."""

from __future__ import annotations

import re

from unkai.protocol import ServiceError


def validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def not_found(message: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", message)


def already_exists(message: str) -> ServiceError:
    return ServiceError("ResourceAlreadyExistsException", message)


def rule_not_found(name: str, bus: str) -> ServiceError:
    return not_found(f"Rule {name} does not exist on EventBus {bus}.")


def bus_not_found(name: str) -> ServiceError:
    return not_found(f"Event bus {name} does not exist.")


def invalid_pattern(reason: str) -> ServiceError:
    return ServiceError("InvalidEventPatternException", reason)


def illegal_status(message: str) -> ServiceError:
    return ServiceError("IllegalStatusException", message)


def limit_exceeded(message: str = "The requested resource exceeds the maximum number allowed.") -> ServiceError:
    return ServiceError("LimitExceededException", message)


def invalid_parameter(message: str) -> ServiceError:
    return ServiceError("InvalidParameterValue", message)


NAME_PATTERN = "[\\.\\-_A-Za-z0-9]+"


def check_name(value: str, field: str, longest: int = 64) -> None:
    """AWS's constraint messages for a rule name, target id...: ``[\\.\\-_A-Za-z0-9]+``, 1 to ``longest``."""
    if len(value) > longest:
        raise validation(f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: "
                         f"Member must have length less than or equal to {longest}")
    if not re.fullmatch(r"[\.\-_A-Za-z0-9]+", value):
        raise validation(f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: "
                         f"Member must satisfy regular expression pattern: {NAME_PATTERN}")
