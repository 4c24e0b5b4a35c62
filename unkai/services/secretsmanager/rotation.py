"""Rotation with a Lambda function, as Secrets Manager runs it: RotateSecret records the
function and the schedule and enqueues a durable job; the job invokes the function four
times (createSecret, setSecret, testSecret, finishSecret) with the new version's token,
outside any transaction (the function calls back into Secrets Manager). Rotation
succeeded when AWSCURRENT ended on the new version; the next scheduled rotation is a job
due ``AutomaticallyAfterDays`` later on unkai's clock. A job whose generation is stale
(rotation was cancelled or reconfigured since) does nothing."""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

from unkai.protocol import ServiceError
from unkai.services.secretsmanager import errors

log = logging.getLogger(__name__)

JOB = "secretsmanager.rotate"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


def _interval(rules: dict) -> float:
    """Seconds between rotations, from AutomaticallyAfterDays or a rate()/cron() expression."""
    if rules.get("AutomaticallyAfterDays"):
        days = rules["AutomaticallyAfterDays"]
        if not 1 <= days <= 1000:
            raise errors.invalid_parameter("The rotation interval must be between 1 and 1000 days.")
        return days * 86400.0
    expression = rules.get("ScheduleExpression") or ""
    m = re.match(r"^rate\((\d+) (hours?|days?)\)$", expression)
    if m:
        n = int(m.group(1))
        return n * (3600.0 if m.group(2).startswith("hour") else 86400.0)
    if expression.startswith("cron("):
        from unkai.schedules import InvalidSchedule, parse

        try:
            parse(expression)
        except InvalidSchedule:
            raise errors.invalid_parameter("Invalid cron expression.") from None
        return 86400.0  # a cron schedule: the next occurrence is computed when scheduling
    if expression:
        raise errors.invalid_parameter("Invalid ScheduleExpression.")
    return 30 * 86400.0


def _next(svc: Any, rules: dict, after: float) -> float:
    expression = rules.get("ScheduleExpression") or ""
    if expression.startswith("cron(") and not rules.get("AutomaticallyAfterDays"):
        from unkai.schedules import parse

        return parse(expression).next_after(after) or after + 86400
    return after + _interval(rules)


def start(svc: Any, ctx: Any, secret: Any, params: dict) -> dict:
    function = params.get("RotationLambdaARN") or secret.data.get("RotationLambdaARN")
    if not function:
        raise errors.invalid_request("No Lambda rotation function ARN is associated with this secret.")
    rules = params.get("RotationRules") or secret.data.get("RotationRules") or {"AutomaticallyAfterDays": 30}
    _interval(rules)
    pending = [v for v in svc.secrets.versions(secret) if "AWSPENDING" in v.stages and "AWSCURRENT" not in v.stages]
    if pending and params.get("RotateImmediately", True):
        raise errors.invalid_request("A previous rotation isn't complete. That rotation will be reattempted.")
    token = params.get("ClientRequestToken") or str(uuid.uuid4())
    generation = secret.data.get("RotationGeneration", 0) + 1
    now = svc.clock.now()
    secret.data.update({"RotationEnabled": True, "RotationLambdaARN": function, "RotationRules": rules,
                        "RotationGeneration": generation, "NextRotationDate": _next(svc, rules, now)})
    svc.secrets.save(secret)
    job = {"arn": secret.arn, "account": secret.account, "region": secret.region, "generation": generation}
    if params.get("RotateImmediately", True):
        svc.cloud.jobs.enqueue(JOB, {**job, "token": token})
    else:
        svc.cloud.jobs.enqueue(JOB, job, delay=secret.data["NextRotationDate"] - now)
    out = {"ARN": secret.arn, "Name": secret.name}
    if params.get("RotateImmediately", True):
        out["VersionId"] = token
    return out


async def run(svc: Any, payload: dict) -> None:
    with svc.store.transaction():
        secret = svc.secrets.find(payload["account"], payload["region"], payload["arn"])
        if secret is None or secret.deleted is not None or not secret.data.get("RotationEnabled") or \
                secret.data.get("RotationGeneration") != payload["generation"]:
            return
        function, region = secret.data["RotationLambdaARN"], secret.region
    token = payload.get("token") or str(uuid.uuid4())
    lam = svc.cloud.service("lambda")
    failed = None
    for step in STEPS:
        event = json.dumps({"Step": step, "SecretId": secret.arn, "ClientRequestToken": token}).encode()
        try:
            result = await lam.invoke(function, event, region=region, account=secret.account, wait_for_slot=True)
        except ServiceError as exc:
            failed = f"{step}: {exc.code}: {exc.message}"
            break
        if result.function_error:
            failed = f"{step}: {result.payload.decode(errors='replace')[:300]}"
            break
    with svc.store.transaction():
        secret = svc.secrets.find(payload["account"], payload["region"], payload["arn"])
        if secret is None:
            return
        current = next((v for v in svc.secrets.versions(secret) if "AWSCURRENT" in v.stages), None)
        now = svc.clock.now()
        if failed is None and current is not None and current.version_id == token:
            secret.data["LastRotatedDate"] = now
            svc.cloud.feed.publish("secretsmanager.rotation", secret=secret.arn, version=token, status="succeeded")
        else:
            failed = failed or "finishSecret did not move AWSCURRENT to the new version"
            log.warning("rotation of %s failed at %s", secret.arn, failed)
            svc.cloud.feed.publish("secretsmanager.rotation", secret=secret.arn, version=token, status="failed",
                                   error=failed)
        if secret.data.get("RotationGeneration") == payload["generation"] and secret.data.get("RotationEnabled"):
            secret.data["NextRotationDate"] = _next(svc, secret.data["RotationRules"], now)
            svc.cloud.jobs.enqueue(JOB, {k: payload[k] for k in ("arn", "account", "region", "generation")},
                                   delay=secret.data["NextRotationDate"] - now)
        svc.secrets.save(secret)
