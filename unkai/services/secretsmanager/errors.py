"""Secrets Manager's errors with AWS's messages (botocore's secretsmanager model)."""

from __future__ import annotations

from unkai.protocol import ServiceError


def not_found() -> ServiceError:
    return ServiceError("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")


def no_value(stage: str | None = None, version: str | None = None) -> ServiceError:
    if version:
        return ServiceError("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for "
                            f"VersionId: {version}")
    return ServiceError("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for "
                        f"staging label: {stage or 'AWSCURRENT'}")


def exists(name: str) -> ServiceError:
    return ServiceError("ResourceExistsException", f"The operation failed because the secret {name} already exists.")


def version_exists() -> ServiceError:
    return ServiceError("ResourceExistsException", "A resource with the ID you requested already exists.")


def marked_for_deletion() -> ServiceError:
    return ServiceError("InvalidRequestException", "You can't perform this operation on the secret because it was "
                        "marked for deletion.")


def invalid_request(message: str) -> ServiceError:
    return ServiceError("InvalidRequestException", message)


def invalid_parameter(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


def malformed_policy(message: str) -> ServiceError:
    return ServiceError("MalformedPolicyDocumentException", message)


def limit(message: str) -> ServiceError:
    return ServiceError("LimitExceededException", message)


def decryption_failure() -> ServiceError:
    """The secret's KMS key is disabled, pending deletion or gone: its value cannot be read."""
    return ServiceError("DecryptionFailure", "Secrets Manager can't decrypt the protected secret text using the "
                        "provided KMS key.")


def encryption_failure() -> ServiceError:
    return ServiceError("EncryptionFailure", "Secrets Manager can't encrypt the protected secret text using the "
                        "provided KMS key. Check that the KMS key is available, enabled, and not in an invalid state.")
