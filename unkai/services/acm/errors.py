"""ACM's errors with AWS's codes (botocore's acm model)."""

from __future__ import annotations

from unkai.protocol import ServiceError


def not_found(arn: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"Could not find certificate {arn}.")


def invalid_arn(arn: str) -> ServiceError:
    return ServiceError("InvalidArnException", f"{arn} is not a valid ARN.")


def invalid_domain(domain: str) -> ServiceError:
    return ServiceError("InvalidDomainValidationOptionsException", f"{domain} is not a valid domain name.")


def invalid_parameter(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


def validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def not_issued(arn: str) -> ServiceError:
    return ServiceError("RequestInProgressException", f"Certificate {arn} is not yet issued.")


def too_many_tags() -> ServiceError:
    return ServiceError("TooManyTagsException", "A certificate can have at most 50 tags.")
