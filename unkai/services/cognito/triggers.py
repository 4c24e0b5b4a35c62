"""Lambda triggers: the pool's ``LambdaConfig`` functions, called synchronously
through ``cloud.service("lambda").invoke`` with AWS's event shape, their answers
changing what the operation does as on AWS.

Every event has the common fields (``version``, ``triggerSource``, ``region``,
``userPoolId``, ``userName``, ``callerContext``, ``request``, ``response``); a
function that raises fails the operation with ``UserLambdaValidationException``
"<Trigger> failed with error <message>." Invocations happen outside store
transactions (the handlers that can trigger are async).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from unkai.feed import TRIGGER, triggered_by
from unkai.protocol import ServiceError
from unkai.services.cognito import errors
from unkai.services.cognito.pools import Pool

if TYPE_CHECKING:
    from unkai.cloud import Cloud

log = logging.getLogger(__name__)

# What AWS's error message calls each trigger.
NAMES = {"PreSignUp": "PreSignUp", "PostConfirmation": "PostConfirmation", "PreAuthentication": "PreAuthentication",
         "PostAuthentication": "PostAuthentication", "PreTokenGeneration": "PreTokenGeneration",
         "CustomMessage": "CustomMessage", "DefineAuthChallenge": "DefineAuthChallenge",
         "CreateAuthChallenge": "CreateAuthChallenge", "VerifyAuthChallengeResponse": "VerifyAuthChallengeResponse",
         "UserMigration": "UserMigration"}


def function_of(pool: Pool, trigger: str) -> tuple[str | None, str]:
    """The function ARN configured for a trigger and the event version it gets."""
    config = pool.triggers
    if trigger == "PreTokenGeneration":
        v2 = config.get("PreTokenGenerationConfig") or {}
        if v2.get("LambdaArn"):
            return v2["LambdaArn"], {"V1_0": "1", "V2_0": "2", "V3_0": "3"}.get(v2.get("LambdaVersion"), "1")
    return config.get(trigger), "1"


async def run(cloud: "Cloud", pool: Pool, trigger: str, source: str, username: str | None, request: dict,
              response: dict | None = None, client_id: str | None = None) -> dict | None:
    """The trigger's ``response`` object, or None when the pool has no such trigger."""
    arn, version = function_of(pool, trigger)
    if not arn:
        return None
    event = {"version": version, "triggerSource": source, "region": pool.region, "userPoolId": pool.id,
             "userName": username, "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown",
                                                     "clientId": client_id or "CLIENT_ID_NOT_APPLICABLE"},
             "request": request, "response": response if response is not None else {}}
    mark = triggered_by(f"cognito {source}")
    try:
        result = await cloud.service("lambda").invoke(arn, json.dumps(event).encode(), region=pool.region)
    except ServiceError as exc:
        log.warning("trigger %s of %s could not run %s: %s", trigger, pool.id, arn, exc.message)
        raise errors.unexpected_lambda(f"{NAMES[trigger]} invocation failed due to error {exc.code}.") from None
    finally:
        TRIGGER.reset(mark)
    try:
        answer = json.loads(result.payload or b"null")
    except ValueError:
        answer = None
    if result.function_error:
        message = answer.get("errorMessage") if isinstance(answer, dict) else None
        raise errors.lambda_validation(f"{NAMES[trigger]} failed with error {message}.")
    if not isinstance(answer, dict):
        raise errors.invalid_lambda_response(f"Invalid lambda response: {NAMES[trigger]}")
    out = answer.get("response")
    return out if isinstance(out, dict) else {}
