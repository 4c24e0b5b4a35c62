"""IAM's errors, worded as IAM words them (the ``Error`` shapes of botocore's iam model)."""

from __future__ import annotations

from unkai.protocol import ServiceError

_NOUNS = {"user": "user", "group": "group", "role": "role", "profile": "Instance Profile",
          "oidc": "OpenIDConnect Provider"}


def no_such(kind: str, name: str) -> ServiceError:
    if kind == "profile":
        return ServiceError("NoSuchEntity", f"Instance Profile {name} cannot be found.")
    if kind == "policy":
        return ServiceError("NoSuchEntity", f"Policy {name} does not exist or is not attachable.")
    if kind == "oidc":
        return ServiceError("NoSuchEntity", f"OpenIDConnect Provider not found for arn {name}")
    return ServiceError("NoSuchEntity", f"The {_NOUNS[kind]} with name {name} cannot be found.")


def no_such_inline(kind: str, owner: str, name: str) -> ServiceError:
    return ServiceError("NoSuchEntity", f"The {kind} policy with name {name} cannot be found.")


def no_such_version(arn: str, version: str) -> ServiceError:
    return ServiceError("NoSuchEntity", f"Policy {arn} version {version} does not exist or is not attachable.")


def no_such_key(key_id: str) -> ServiceError:
    return ServiceError("NoSuchEntity", f"The Access Key with id {key_id} cannot be found.")


def exists(kind: str, name: str) -> ServiceError:
    if kind == "policy":
        return ServiceError("EntityAlreadyExists", f"A policy called {name} already exists. Duplicate names are not "
                            "allowed.")
    if kind == "profile":
        return ServiceError("EntityAlreadyExists", f"Instance Profile {name} already exists.")
    if kind == "oidc":
        return ServiceError("EntityAlreadyExists", f"Provider with url {name} already exists.")
    return ServiceError("EntityAlreadyExists", f"{kind.capitalize()} with name {name} already exists.")


def malformed(message: str) -> ServiceError:
    return ServiceError("MalformedPolicyDocument", message)


def conflict(message: str) -> ServiceError:
    return ServiceError("DeleteConflict", message)


def limit(message: str) -> ServiceError:
    return ServiceError("LimitExceeded", message)


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidInput", message)


def validation(value: str, member: str, constraint: str) -> ServiceError:
    return ServiceError("ValidationError", f"1 validation error detected: Value '{value}' at '{member}' failed to "
                        f"satisfy constraint: {constraint}")


def unmodifiable(message: str) -> ServiceError:
    return ServiceError("UnmodifiableEntity", message)
