"""Secrets Manager's CloudFormation resource types, made through its own operations.

- ``AWS::SecretsManager::Secret``: Ref and GetAtt Id are the secret's ARN. ``GenerateSecretString``
  makes a random password (into ``SecretStringTemplate`` under ``GenerateStringKey`` when both
  are given). Name changes replace; other changes update in place (a new value only when
  ``SecretString`` changed; a generated one is kept). Deleting the resource deletes the
  secret without a recovery window, as CloudFormation does.
- ``SecretTargetAttachment``, ``RotationSchedule``, ``ResourcePolicy``: Ref the secret's ARN.
  A rotation schedule starts rotating at once, as on AWS.
"""

from __future__ import annotations

import json
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import Provisioned, ResourceContext
from unkai.services.secretsmanager.passwords import random_password
from unkai.template.names import physical_name

_PASSWORD_KEYS = ("ExcludeCharacters", "ExcludeLowercase", "ExcludeNumbers", "ExcludePunctuation",
                  "ExcludeUppercase", "IncludeSpace", "PasswordLength", "RequireEachIncludedType")


def _bools(spec: dict) -> dict:
    out = {}
    for key in _PASSWORD_KEYS:
        if key in spec:
            value = spec[key]
            if isinstance(value, str) and value.lower() in ("true", "false"):
                value = value.lower() == "true"
            out[key] = int(value) if key == "PasswordLength" else value
    return out


def generated(spec: dict) -> str:
    password = random_password(_bools(spec))
    template, key = spec.get("SecretStringTemplate"), spec.get("GenerateStringKey")
    if template and key:
        doc = json.loads(template)
        doc[key] = password
        return json.dumps(doc)
    if template or key:
        raise ServiceError("InvalidParameterException", "SecretStringTemplate and GenerateStringKey must be "
                           "specified together.")
    return password


def create(svc: Any, ctx: ResourceContext, resource_type: str, logical_id: str, props: dict[str, Any]) -> Provisioned:
    rc = ctx.request_context("secretsmanager")
    kind = resource_type.rsplit("::", 1)[-1]
    if kind == "Secret":
        if props.get("SecretString") is not None and props.get("GenerateSecretString") is not None:
            raise ServiceError("InvalidParameterException", "You can't specify both SecretString and "
                               "GenerateSecretString.")
        params: dict[str, Any] = {"Name": props.get("Name") or physical_name(ctx.stack_name, logical_id, 256)}
        for key in ("Description", "KmsKeyId", "Tags"):
            if props.get(key):
                params[key] = props[key]
        if props.get("SecretString") is not None:
            params["SecretString"] = props["SecretString"]
        else:
            params["SecretString"] = generated(props.get("GenerateSecretString") or {})
        arn = svc.create_secret(rc, params)["ARN"]
        return Provisioned(arn, arn, {"Id": arn})
    secret_id = props["SecretId"]
    arn = svc.describe_secret(rc, {"SecretId": secret_id})["ARN"]
    if kind == "RotationSchedule":
        if props.get("HostedRotationLambda"):
            raise ServiceError("InvalidRequestException", "unkai does not create hosted rotation functions; give "
                               "RotationLambdaARN.")
        params = {"SecretId": arn, "RotationLambdaARN": props.get("RotationLambdaARN")}
        if props.get("RotationRules"):
            rules = dict(props["RotationRules"])
            if "AutomaticallyAfterDays" in rules:
                rules["AutomaticallyAfterDays"] = int(rules["AutomaticallyAfterDays"])
            params["RotationRules"] = rules
        svc.rotate_secret(rc, params)
    elif kind == "ResourcePolicy":
        policy = props["ResourcePolicy"]
        svc.put_resource_policy(rc, {"SecretId": arn, "ResourcePolicy": policy if isinstance(policy, str)
                                     else json.dumps(policy)})
    return Provisioned(arn, arn)


def update(svc: Any, ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
           old_props: dict[str, Any], props: dict[str, Any]) -> Provisioned:
    kind = resource_type.rsplit("::", 1)[-1]
    if kind == "Secret" and props.get("Name") == old_props.get("Name"):
        rc = ctx.request_context("secretsmanager")
        params: dict[str, Any] = {"SecretId": physical_id, "Description": props.get("Description") or ""}
        if props.get("KmsKeyId"):
            params["KmsKeyId"] = props["KmsKeyId"]
        if props.get("SecretString") is not None and props.get("SecretString") != old_props.get("SecretString"):
            params["SecretString"] = props["SecretString"]
        elif props.get("GenerateSecretString") != old_props.get("GenerateSecretString") and \
                props.get("GenerateSecretString") is not None:
            params["SecretString"] = generated(props["GenerateSecretString"])
        svc.update_secret(rc, params)
        return Provisioned(physical_id, physical_id, {"Id": physical_id})
    delete(svc, ctx, resource_type, physical_id, old_props)
    return create(svc, ctx, resource_type, logical_id, props)


def delete(svc: Any, ctx: ResourceContext, resource_type: str, physical_id: str, props: dict[str, Any]) -> None:
    rc = ctx.request_context("secretsmanager")
    kind = resource_type.rsplit("::", 1)[-1]
    try:
        if kind == "Secret":
            svc.delete_secret(rc, {"SecretId": physical_id, "ForceDeleteWithoutRecovery": True})
        elif kind == "RotationSchedule":
            svc.cancel_rotate_secret(rc, {"SecretId": physical_id})
        elif kind == "ResourcePolicy":
            svc.delete_resource_policy(rc, {"SecretId": physical_id})
    except ServiceError as exc:
        if exc.code not in ("ResourceNotFoundException", "InvalidRequestException"):
            raise
