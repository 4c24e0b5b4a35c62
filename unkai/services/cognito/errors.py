"""Every error the Cognito user pools service raises, with the codes of botocore's
``cognito-idp`` model and the messages AWS answers with (as observed on AWS and
documented in the API reference)."""

from __future__ import annotations

from unkai.protocol import ServiceError


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


def not_authorized(message: str = "Incorrect username or password.") -> ServiceError:
    return ServiceError("NotAuthorizedException", message)


def pool_not_found(pool_id: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"User pool {pool_id} does not exist.")


def client_not_found(client_id: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"User pool client {client_id} does not exist.")


def group_not_found() -> ServiceError:
    return ServiceError("ResourceNotFoundException", "Group not found.")


def resource_not_found(message: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", message)


def user_not_found() -> ServiceError:
    return ServiceError("UserNotFoundException", "User does not exist.")


def username_exists(message: str = "User account already exists") -> ServiceError:
    return ServiceError("UsernameExistsException", message)


def alias_exists() -> ServiceError:
    return ServiceError("AliasExistsException", "An account with the given email already exists.")


def group_exists(name: str) -> ServiceError:
    return ServiceError("GroupExistsException", f"A group with the name {name} already exists.")


def invalid_password(reason: str) -> ServiceError:
    return ServiceError("InvalidPasswordException", f"Password did not conform with policy: {reason}")


def code_mismatch() -> ServiceError:
    return ServiceError("CodeMismatchException", "Invalid verification code provided, please try again.")


def expired_code() -> ServiceError:
    return ServiceError("ExpiredCodeException", "Invalid code provided, please request a code again.")


def not_confirmed() -> ServiceError:
    return ServiceError("UserNotConfirmedException", "User is not confirmed.")


def reset_required() -> ServiceError:
    return ServiceError("PasswordResetRequiredException", "Password reset required for the user")


def unsupported_state(message: str) -> ServiceError:
    return ServiceError("UnsupportedUserStateException", message)


def limit_exceeded(message: str) -> ServiceError:
    return ServiceError("LimitExceededException", message)


def invalid_configuration(message: str) -> ServiceError:
    return ServiceError("InvalidUserPoolConfigurationException", message)


def lambda_validation(message: str) -> ServiceError:
    """A trigger raised: AWS answers with the trigger's name and the function's message."""
    return ServiceError("UserLambdaValidationException", message)


def unexpected_lambda(message: str) -> ServiceError:
    return ServiceError("UnexpectedLambdaException", message)


def invalid_lambda_response(message: str) -> ServiceError:
    return ServiceError("InvalidLambdaResponseException", message)


def unsupported_token(message: str) -> ServiceError:
    return ServiceError("UnsupportedTokenTypeException", message)


def scope_does_not_exist(message: str) -> ServiceError:
    return ServiceError("ScopeDoesNotExistException", message)


def validation(member: str, value: object, constraint: str) -> ServiceError:
    """The generic model-constraint error, worded as AWS words it."""
    return ServiceError("InvalidParameterException",
                        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
                        f"{constraint}")


def unsupported_operation(message: str) -> ServiceError:
    return ServiceError("UnsupportedOperationException", message)
