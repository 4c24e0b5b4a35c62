"""CloudWatch's errors, with the codes and messages AWS answers (query-compatible:
the JSON protocol also sends them in ``x-amzn-query-error``)."""

from __future__ import annotations

from unkai.protocol import ServiceError


def invalid(message: str) -> ServiceError:
    """InvalidParameterValue: a value is bad or out of range."""
    return ServiceError("InvalidParameterValueException", message)


def combination(message: str) -> ServiceError:
    """InvalidParameterCombination: parameters that may not be used together."""
    return ServiceError("InvalidParameterCombinationException", message)


def missing(name: str) -> ServiceError:
    return ServiceError("MissingRequiredParameterException", f"The parameter {name} is required.")


def not_found(message: str) -> ServiceError:
    return ServiceError("ResourceNotFound", message)


def invalid_format(message: str) -> ServiceError:
    return ServiceError("InvalidFormatFault", message)


def invalid_token() -> ServiceError:
    return ServiceError("InvalidNextToken", "The service cannot process the token.")


def limit_exceeded(message: str) -> ServiceError:
    return ServiceError("LimitExceededFault", message)


def resource_not_found(message: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", message)
