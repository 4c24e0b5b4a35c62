"""POST /users: the handler layer. It knows what has to happen and in which order,
parses and validates the request and shapes the answer (201, 400, 409, 500); the work
itself is the domain's (domains.user.user.CreateUser)."""

import json

from domains.user.exceptions import UserAlreadyExistsException
from domains.user.user import CreateUser
from handlers.loggers import ErrorLogger, InfoLogger
from handlers.responses import conflict_response, created_response, invalid_request_response, server_error

USER_LEVELS = ("admin", "operator", "viewer")


class InvalidRequest(ValueError):
    pass


def parse(event):
    """The request's fields, or InvalidRequest naming what is wrong."""
    try:
        body = json.loads(event.get("body") or "")
    except ValueError:
        raise InvalidRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    fields = {}
    for name in ("email", "company", "display_user_name", "user_level"):
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            raise InvalidRequest(f"{name} is required")
        fields[name] = value.strip()
    if "@" not in fields["email"] or len(fields["email"]) > 254:
        raise InvalidRequest("email is not an email address")
    if fields["user_level"] not in USER_LEVELS:
        raise InvalidRequest(f"user_level must be one of {', '.join(USER_LEVELS)}")
    return fields


def lambda_handler(event, context):
    try:
        fields = parse(event)
    except InvalidRequest as e:
        ErrorLogger(event, context, "InvalidRequest", e).log()
        return invalid_request_response(e)
    try:
        user = CreateUser(**fields)
        user.insert()
    except UserAlreadyExistsException as e:
        ErrorLogger(event, context, "UserAlreadyExists", e).log()
        return conflict_response(e)
    except Exception as e:  # anything else is ours to fix: logged with its traceback
        ErrorLogger(event, context, "UserCreateFailed", e).log()
        return server_error(e)
    InfoLogger(event, context, "UserCreated", user_uuid=user.user_uuid).log()
    return created_response(user.as_dict())
