"""Every error Pipes raises, as its model (botocore's ``pipes``) names them."""

from __future__ import annotations

from unkai.protocol import ServiceError


def not_found(name: str) -> ServiceError:
    return ServiceError("NotFoundException", f"Pipe {name} not found")


def resource_not_found(arn: str) -> ServiceError:
    return ServiceError("NotFoundException", f"Resource {arn} not found")


def conflict(name: str) -> ServiceError:
    return ServiceError("ConflictException", f"Pipe {name} already exists.", resourceId=name, resourceType="pipe")


def validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)
