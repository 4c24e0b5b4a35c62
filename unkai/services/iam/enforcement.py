"""``unkai up --enforce-iam``: every request made with credentials of an IAM user, an assumed
role (a function's execution role included) or a federated user is evaluated as AWS's
policy evaluation logic does before its operation runs; ``--enforce-iam=log`` only reports.

The request becomes an IAM action (``sqs:SendMessage``; S3's and Lambda's operations map to
their IAM action names) and the ARN(s) of the resource(s) it names, with the common
condition keys. The caller's identity policies and permissions boundary come compiled
and cached from IAM; the session policy from its STS session; the resource's policy
(S3 bucket, SQS queue, SNS topic, Lambda function, secret, KMS key) is read through the
owning service's own API. A denial answers the service's AccessDenied error in its
protocol with AWS's message and writes one log line naming the principal, the action,
the resource and why.

Requests signed with the account's root credentials (or any credentials unkai did not
issue) are allowed, as the root user is on AWS.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from unkai.protocol import ServiceError
from unkai.services.iam import policies

log = logging.getLogger(__name__)

PREFIX = {"dynamodbstreams": "dynamodb", "apigatewayv2": "apigateway", "apigatewaymanagementapi": "execute-api",
          "sesv2": "ses", "cognito-idp": "cognito-idp"}
ACTIONS = {
    "lambda": {"Invoke": "InvokeFunction", "InvokeAsync": "InvokeFunction", "CreateFunctionUrlConfig":
               "CreateFunctionUrlConfig", "ListVersionsByFunction": "ListVersionsByFunction",
               "PublishVersion": "PublishVersion", "GetPolicy": "GetPolicy"},
    "s3": {"ListObjectsV2": "ListBucket", "ListObjects": "ListBucket", "HeadBucket": "ListBucket",
           "ListObjectVersions": "ListBucketVersions", "HeadObject": "GetObject", "ListBuckets": "ListAllMyBuckets",
           "CopyObject": "PutObject", "DeleteObjects": "DeleteObject", "CreateMultipartUpload": "PutObject",
           "UploadPart": "PutObject", "UploadPartCopy": "PutObject", "CompleteMultipartUpload": "PutObject",
           "AbortMultipartUpload": "AbortMultipartUpload", "ListMultipartUploads": "ListBucketMultipartUploads",
           "ListParts": "ListMultipartUploadParts", "GetObjectAttributes": "GetObject",
           "GetBucketLocation": "GetBucketLocation", "DeleteBucketPolicy": "DeleteBucketPolicy"},
    "sqs": {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
            "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"},
    "sns": {"PublishBatch": "Publish"},
}
FREE = {("sts", "GetCallerIdentity"), ("sts", "GetSessionToken"), ("sts", "GetAccessKeyInfo"),
        ("sts", "AssumeRole"), ("sts", "AssumeRoleWithWebIdentity"), ("sts", "DecodeAuthorizationMessage"),
        ("sts", "GetFederationToken")}
_DECISIONS: dict[tuple, policies.Decision] = {}
_DENIED = {"query": ("AccessDenied", 403), "rest-xml": ("AccessDenied", 403), "json": ("AccessDeniedException", 400),
           "rest-json": ("AccessDeniedException", 403)}


def action_of(service: str, operation: str) -> str:
    prefix = PREFIX.get(service, service)
    return f"{prefix}:{ACTIONS.get(service, {}).get(operation, operation)}"


def _queue_arn(ctx: Any, url: str) -> str:
    parts = url.rstrip("/").split("/")
    account = parts[-2] if len(parts) >= 2 and parts[-2].isdigit() else ctx.account
    return f"arn:aws:sqs:{ctx.region}:{account}:{parts[-1]}"


def resources_of(cloud: Any, ctx: Any, params: dict) -> list[str]:
    """The ARN(s) a request acts on, as IAM sees them ("*" when the action has none)."""
    svc, region, account = ctx.service, ctx.region, ctx.account
    if svc == "sqs":
        if params.get("QueueUrl"):
            return [_queue_arn(ctx, params["QueueUrl"])]
        if params.get("QueueName"):
            return [f"arn:aws:sqs:{region}:{account}:{params['QueueName']}"]
    elif svc == "sns":
        for key in ("TopicArn", "TargetArn", "ResourceArn", "SubscriptionArn"):
            if params.get(key):
                return [params[key]]
        if params.get("Name") and ctx.operation == "CreateTopic":
            return [f"arn:aws:sns:{region}:{account}:{params['Name']}"]
    elif svc in ("dynamodb", "dynamodbstreams"):
        tables = []
        if params.get("TableName"):
            index = f"/index/{params['IndexName']}" if params.get("IndexName") else ""
            tables.append(f"{params['TableName']}{index}")
        tables += list((params.get("RequestItems") or {}).keys())
        for item in params.get("TransactItems") or []:
            for op in item.values():
                if isinstance(op, dict) and op.get("TableName"):
                    tables.append(op["TableName"])
        if params.get("StreamArn"):
            return [params["StreamArn"]]
        return [t if t.startswith("arn:") else f"arn:aws:dynamodb:{region}:{account}:table/{t}" for t in tables] or ["*"]
    elif svc == "lambda":
        name = params.get("FunctionName")
        if name:
            if name.startswith("arn:"):
                return [name]
            base = f"arn:aws:lambda:{region}:{account}:function:{name}"
            return [base + (f":{params['Qualifier']}" if params.get("Qualifier") else "")]
    elif svc == "s3":
        bucket, key = params.get("Bucket"), params.get("Key")
        if bucket and key is not None and ctx.operation not in ("ListObjects", "ListObjectsV2"):
            return [f"arn:aws:s3:::{bucket}/{key}"]
        if bucket:
            return [f"arn:aws:s3:::{bucket}"]
    elif svc == "secretsmanager":
        secret_id = params.get("SecretId")
        if secret_id:
            found = cloud.service("secretsmanager").secrets.find(account, region, secret_id, purge=False)
            if found is not None:
                return [found.arn]
            return [secret_id if secret_id.startswith("arn:") else
                    f"arn:aws:secretsmanager:{region}:{account}:secret:{secret_id}"]
        if params.get("SecretIdList"):
            return [resources_of(cloud, _with(ctx, "GetSecretValue"), {"SecretId": s})[0]
                    for s in params["SecretIdList"]]
    elif svc == "kms":
        key_ref = params.get("KeyId") or params.get("TargetKeyId") or params.get("DestinationKeyId")
        if key_ref:
            key = cloud.service("kms").find_key(account, region, key_ref) if not str(key_ref).startswith(
                "alias/aws/") else None
            if key is not None:
                return [key.arn]
        if ctx.operation == "Decrypt" and params.get("CiphertextBlob"):
            from unkai.services.kms import crypto

            named = crypto.blob_key(params["CiphertextBlob"])
            if named is not None:
                return [f"arn:aws:kms:{region}:{account}:key/{named[0]}"]
    elif svc == "ssm":
        name = params.get("Name")
        if isinstance(name, str):
            return [f"arn:aws:ssm:{region}:{account}:parameter/{name.split(':')[0].lstrip('/')}"]
        if params.get("Names"):
            return [f"arn:aws:ssm:{region}:{account}:parameter/{n.split(':')[0].lstrip('/')}" for n in params["Names"]]
        if params.get("Path"):
            return [f"arn:aws:ssm:{region}:{account}:parameter/{params['Path'].strip('/')}"]
    elif svc == "logs":
        group = params.get("logGroupName")
        if group:
            stream = params.get("logStreamName")
            return [f"arn:aws:logs:{region}:{account}:log-group:{group}" +
                    (f":log-stream:{stream}" if stream else "")]
    elif svc == "events":
        if params.get("Name") and "Rule" in ctx.operation:
            return [f"arn:aws:events:{region}:{account}:rule/{params['Name']}"]
        if ctx.operation == "PutEvents":
            buses = {e.get("EventBusName") or "default" for e in params.get("Entries") or []}
            return [b if b.startswith("arn:") else f"arn:aws:events:{region}:{account}:event-bus/{b}" for b in buses]
    elif svc == "iam":
        for key, kind in (("RoleName", "role"), ("UserName", "user"), ("GroupName", "group")):
            if params.get(key):
                return [f"arn:aws:iam::{account}:{kind}/{params[key]}"]
        if params.get("PolicyArn"):
            return [params["PolicyArn"]]
    return ["*"]


def _with(ctx: Any, operation: str) -> Any:
    import copy

    other = copy.copy(ctx)
    other.operation = operation
    return other


def _resource_policy(cloud: Any, ctx: Any, resource: str) -> str | None:
    """The resource-based policy of ``resource``, read through its service's own API."""
    try:
        if ctx.service == "secretsmanager":
            return cloud.service("secretsmanager").resource_policy(resource)
        if ctx.service == "kms":
            return cloud.service("kms").key_policy(resource)
        if ctx.service == "sqs" and ctx.operation != "CreateQueue" and resource != "*":
            account, name = resource.split(":")[4], resource.split(":")[5]
            url = f"{ctx.base_url}/{account}/{name}"
            return (cloud.call("sqs", "GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["Policy"]},
                               ctx.region).get("Attributes") or {}).get("Policy")
        if ctx.service == "sns" and resource.startswith("arn:aws:sns:") and resource.count(":") == 5:
            return (cloud.call("sns", "GetTopicAttributes", {"TopicArn": resource}, ctx.region)
                    .get("Attributes") or {}).get("Policy")
        if ctx.service == "lambda" and resource != "*":
            return cloud.call("lambda", "GetPolicy", {"FunctionName": resource}, ctx.region).get("Policy")
        if ctx.service == "s3" and resource.startswith("arn:aws:s3:::"):
            bucket = resource[len("arn:aws:s3:::"):].split("/", 1)[0]
            return cloud.call("s3", "GetBucketPolicy", {"Bucket": bucket}, ctx.region).get("Policy")
    except (ServiceError, ValueError, KeyError, IndexError):
        return None
    return None


def context_of(ctx: Any, caller: Any, params: dict) -> dict[str, Any]:
    clock_now = None
    out: dict[str, Any] = {
        "aws:PrincipalArn": caller.principal_arn, "unkai:SessionArn": caller.arn,
        "aws:PrincipalAccount": caller.account, "aws:userid": caller.user_id,
        "aws:SecureTransport": "true" if ctx.request.scheme == "https" else "false",
        "aws:SourceIp": ctx.source_ip or "127.0.0.1", "aws:RequestedRegion": ctx.region,
        "aws:PrincipalType": {"user": "User", "assumed-role": "AssumedRole",
                              "federated-user": "FederatedUser"}.get(caller.kind, "Account"),
    }
    if caller.kind == "user":
        out["aws:username"] = caller.arn.rsplit("/", 1)[-1]
    if ctx.service == "s3" and params.get("Prefix") is not None:
        out["s3:prefix"] = params["Prefix"]
    if ctx.service == "dynamodb":
        keys = []
        for source in (params.get("Key"), params.get("Item")):
            if isinstance(source, dict):
                keys += [str(next(iter(v.values()))) for v in source.values() if isinstance(v, dict) and v][:1]
        if keys:
            out["dynamodb:LeadingKeys"] = keys
    for key in ("aws:SourceArn", "aws:SourceAccount", "kms:ViaService"):
        if key in ctx.extra:
            out[key] = ctx.extra[key]
    if ctx.service == "kms":
        out["kms:CallerAccount"] = caller.account
    del clock_now
    return out


def check(cloud: Any, ctx: Any, params: dict) -> None:
    """Evaluate one request; raise the service's AccessDenied when IAM would deny it."""
    iam = cloud.service("iam")
    mode = iam.enforcing
    if not mode or (ctx.service, ctx.operation) in FREE:
        return
    caller = cloud.service("sts").identity_of(ctx)
    if caller.kind == "root":
        return
    found = iam.principal_policies(caller.account, caller.principal_arn)
    identity, boundary = found if found is not None else ([], None)
    session = [policies.compile_text(caller.policy)] if caller.policy else None
    action = action_of(ctx.service, ctx.operation)
    context = context_of(ctx, caller, params)
    for resource in resources_of(cloud, ctx, params):
        text = _resource_policy(cloud, ctx, resource)
        # The same caller doing the same thing to the same resource gets the same answer until
        # IAM (or that resource's policy) changes: decisions are cached on all of their inputs.
        key = (iam.entities.generation, caller.principal_arn, caller.arn, caller.policy, action, resource, text,
               json.dumps(context, sort_keys=True, default=str))
        decision = _DECISIONS.get(key)
        if decision is None:
            resource_policy = [policies.Compiled(policies.compile_text(text).statements, "resource:policy")] \
                if text else None
            decision = policies.evaluate(action, resource, context, identity, resource_policy, boundary, session)
            if len(_DECISIONS) > 4096:
                _DECISIONS.clear()
            _DECISIONS[key] = decision
        if decision.allowed:
            continue
        if ctx.service == "kms" and decision.decision == "implicitDeny" and cloud.service("kms").grant_allows(
                resource, (caller.principal_arn, caller.arn), ctx.operation, params):
            continue  # a grant allows what no policy does (an explicit deny still wins)
        where = ""
        if decision.statement is not None:
            sid = decision.statement.sid
            where = f" (statement {sid!r} of {decision.policy})" if sid else f" (in {decision.policy})"
        reason = decision.reason + where
        iam.denied(caller, action, resource, reason)
        if mode == "on":
            code, status = _DENIED.get(ctx.protocol, ("AccessDenied", 403))
            raise ServiceError(code, f"User: {caller.arn} is not authorized to perform: {action} on resource: "
                               f"{resource} {decision.reason}", status=status)


# -- what unkai does on a user's behalf --------------------------------------------------------
# On AWS a service that hands a payload to a user's resource (SNS delivering to a queue, S3 or
# EventBridge invoking a function) must be let in by that resource's own policy, which names
# the service principal and usually the source's ARN; an event source mapping reads its source
# with the function's execution role. With ``--enforce-iam`` unkai checks both the same way.

ON_BEHALF = {"lambda": "lambda:InvokeFunction", "sqs": "sqs:SendMessage", "sns": "sns:Publish"}


def _policy_by_arn(cloud: Any, arn: str) -> str | None:
    parts = arn.split(":")
    service, region = parts[2], parts[3]
    try:
        if service == "sqs":
            queue = cloud.service("sqs").queue_by_arn(arn)
            return queue.attributes.get("Policy") if queue is not None else None
        if service == "sns":
            return (cloud.call("sns", "GetTopicAttributes", {"TopicArn": arn}, region).get("Attributes")
                    or {}).get("Policy")
        if service == "lambda":
            return cloud.call("lambda", "GetPolicy", {"FunctionName": arn}, region).get("Policy")
    except (ServiceError, KeyError):
        return None
    return None


def service_denied(cloud: Any, principal: str, target_arn: str, source_arn: str) -> str | None:
    """Why AWS would refuse ``principal`` (``sns.amazonaws.com``...) handing a payload to
    ``target_arn`` for ``source_arn``, or None when it may (always, without enforcement,
    and in log mode, where the would-be denial is only reported)."""
    iam = cloud.services.get("iam")
    parts = target_arn.split(":")
    if iam is None or not iam.enforcing or len(parts) < 6 or parts[2] not in ON_BEHALF:
        return None
    action = ON_BEHALF[parts[2]]
    resource = ":".join(parts[:7]) if parts[2] == "lambda" else target_arn  # a function's policy covers its aliases
    text = _policy_by_arn(cloud, target_arn)
    source_parts = source_arn.split(":")
    context = {"aws:PrincipalServiceName": principal, "aws:SourceArn": source_arn,
               "aws:SourceAccount": source_parts[4] if len(source_parts) > 4 and source_parts[4] else
               cloud.config.account_id}
    resource_policy = [policies.Compiled(policies.compile_text(text).statements, "resource:policy")] if text else []
    decision = policies.evaluate(action, resource, context, [], resource_policy)
    if decision.allowed:
        return None
    reason = ("with an explicit deny in the resource-based policy" if decision.decision == "explicitDeny" else
              f"because no resource-based policy allows {principal} to perform {action}")
    iam.denied(_Service(principal), action, target_arn, reason)
    return None if iam.enforcing != "on" else f"{principal} is not authorized to perform: {action} on resource: " \
                                              f"{target_arn} {reason}"


class _Service:
    """A service principal where the denial log expects a caller."""

    def __init__(self, name: str) -> None:
        self.arn = name


READS = {"sqs": ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"),
         "dynamodb": ("dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:DescribeStream",
                      "dynamodb:ListStreams"),
         "kinesis": ("kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:DescribeStream",
                     "kinesis:ListShards")}


def role_cannot_read(cloud: Any, role_arn: str, kind: str, source_arn: str) -> str | None:
    """The first action an event source mapping needs on ``source_arn`` that the function's
    execution role may not perform (AWS checks this when the mapping is created), or None."""
    iam = cloud.services.get("iam")
    if iam is None or not iam.enforcing or kind not in READS or not role_arn:
        return None
    parts = role_arn.split(":")
    found = iam.principal_policies(parts[4] if len(parts) > 4 else cloud.config.account_id, role_arn)
    identity, boundary = found if found is not None else ([], None)
    context = {"aws:PrincipalArn": role_arn, "aws:PrincipalType": "AssumedRole"}
    for action in READS[kind]:
        decision = policies.evaluate(action, source_arn, context, identity, None, boundary)
        if not decision.allowed:
            iam.denied(_Service(role_arn), action, source_arn, decision.reason)
            return action if iam.enforcing == "on" else None
    return None


# A service that acts with a role the user hands it (a Scheduler target's RoleArn, a Firehose
# stream's RoleARN, an IoT rule action's roleArn, a pipe's RoleArn, an API Gateway integration's
# credentials) first assumes the role, which its trust policy must allow for the service
# principal, then acts with the role's own permissions.

TARGET_ACTIONS = {"lambda": "lambda:InvokeFunction", "sqs": "sqs:SendMessage", "sns": "sns:Publish",
                  "kinesis": "kinesis:PutRecord", "firehose": "firehose:PutRecord", "events": "events:PutEvents",
                  "logs": "logs:PutLogEvents", "states": "states:StartExecution", "s3": "s3:PutObject",
                  "dynamodb": "dynamodb:PutItem"}


def target_action(target_arn: str) -> str | None:
    """The IAM action a role needs to hand a payload to ``target_arn``."""
    parts = target_arn.split(":")
    return TARGET_ACTIONS.get(parts[2]) if len(parts) > 5 else None


def role_denied(cloud: Any, principal: str, role_arn: str, action: str, resource: str,
                source_arn: str = "") -> str | None:
    """Why ``principal`` (``scheduler.amazonaws.com``...) acting with ``role_arn`` may not perform
    ``action`` on ``resource`` (the role is missing, does not trust the service, or its policies
    do not allow it), or None when it may: always without enforcement, and in log mode, where
    the would-be denial is only reported."""
    iam = cloud.services.get("iam")
    if iam is None or not iam.enforcing:
        return None
    parts = role_arn.split(":") if role_arn else []
    account = parts[4] if len(parts) > 5 and parts[4] else cloud.config.account_id
    role = iam.role(account, role_arn.rsplit("/", 1)[-1]) if len(parts) > 5 and ":role/" in role_arn else None
    if role is None:
        reason = f"because the role {role_arn or '(none)'} does not exist"
        iam.denied(_Service(principal), "sts:AssumeRole", role_arn or "*", reason)
        return None if iam.enforcing != "on" else \
            f"{principal} is not authorized to perform: sts:AssumeRole on resource: {role_arn} {reason}"
    source_parts = source_arn.split(":")
    trust_context = {"aws:PrincipalServiceName": principal, "aws:SourceArn": source_arn,
                     "aws:SourceAccount": source_parts[4] if len(source_parts) > 4 and source_parts[4] else account}
    if not source_arn:
        trust_context = {"aws:PrincipalServiceName": principal}
    if principal == "firehose.amazonaws.com":  # Firehose passes the account as the external id
        trust_context["sts:ExternalId"] = account
    trust = policies.compile_text(role["AssumeRolePolicyDocument"])
    if not policies.evaluate("sts:AssumeRole", role_arn, trust_context, [],
                             [policies.Compiled(trust.statements, "resource:trust")]).allowed:
        reason = "because the role's trust policy does not allow it"
        iam.denied(_Service(principal), "sts:AssumeRole", role_arn, reason)
        return None if iam.enforcing != "on" else \
            f"{principal} is not authorized to perform: sts:AssumeRole on resource: {role_arn} {reason}"
    found = iam.principal_policies(account, role_arn)
    identity, boundary = found if found is not None else ([], None)
    session_arn = f"arn:aws:sts::{account}:assumed-role/{role_arn.rsplit('/', 1)[-1]}/{principal.split('.')[0]}"
    context = {"aws:PrincipalArn": role_arn, "unkai:SessionArn": session_arn, "aws:PrincipalAccount": account,
               "aws:PrincipalType": "AssumedRole"}
    text = _policy_by_arn(cloud, resource) if resource.count(":") >= 5 else None
    resource_policy = [policies.Compiled(policies.compile_text(text).statements, "resource:policy")] if text else None
    decision = policies.evaluate(action, resource, context, identity, resource_policy, boundary)
    if decision.allowed:
        return None
    iam.denied(_Service(session_arn), action, resource, decision.reason)
    return None if iam.enforcing != "on" else \
        f"User: {session_arn} is not authorized to perform: {action} on resource: {resource} {decision.reason}"
