"""Every error AWS IoT Core answers with, worded as AWS words them (botocore's ``iot`` and
``iot-data`` models name the codes; the messages are AWS's own)."""

from __future__ import annotations

from unkai.protocol import ServiceError


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidRequestException", message)


def not_found(message: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", message)


def exists(message: str, resource_id: str = "", resource_arn: str = "") -> ServiceError:
    fields = {k: v for k, v in (("resourceId", resource_id), ("resourceArn", resource_arn)) if v}
    return ServiceError("ResourceAlreadyExistsException", message, **fields)


def version_conflict(message: str) -> ServiceError:
    return ServiceError("VersionConflictException", message)


def delete_conflict(message: str) -> ServiceError:
    return ServiceError("DeleteConflictException", message)


def certificate_state(message: str) -> ServiceError:
    return ServiceError("CertificateStateException", message)


def certificate_validation(message: str) -> ServiceError:
    return ServiceError("CertificateValidationException", message)


def malformed_policy(message: str) -> ServiceError:
    return ServiceError("MalformedPolicyException", message)


def versions_limit(name: str) -> ServiceError:
    return ServiceError("VersionsLimitExceededException",
                        f"The policy {name} already has the maximum number of versions (5)")


def sql_parse(message: str) -> ServiceError:
    return ServiceError("SqlParseException", message)


def unauthorized(message: str = "Access Denied") -> ServiceError:
    return ServiceError("UnauthorizedException", message, status=401)


def thing_not_found(name: str) -> ServiceError:
    return not_found(f"Thing {name} cannot be found.")


def group_not_found(name: str) -> ServiceError:
    return not_found(f"ThingGroup {name} does not exist")


def type_not_found(name: str) -> ServiceError:
    return not_found(f"Thing Type {name} does not exist")


def rule_not_found(name: str) -> ServiceError:
    return ServiceError("UnauthorizedException", f"Rule {name} does not exist", status=401)


def shadow_not_found(thing: str, shadow: str | None) -> ServiceError:
    return not_found(f"No shadow exists with name: '{shadow or thing}'")


def shadow_conflict() -> ServiceError:
    return ServiceError("ConflictException", "Version conflict", status=409)


def too_large() -> ServiceError:
    return ServiceError("RequestEntityTooLargeException", "The payload exceeds the maximum size allowed", status=413)


def method_not_allowed(message: str) -> ServiceError:
    return ServiceError("MethodNotAllowedException", message, status=405)
