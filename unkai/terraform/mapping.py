"""THE table from Terraform resource type to the CloudFormation resource type whose
provider (``unkai/services/<svc>/resources.py``) creates it.

A Terraform resource is never provisioned by code of its own: its arguments, spelled
the AWS provider's way (``function_name``, ``access_log_settings { ... }``), are turned
into that CloudFormation resource's properties and handed to the same
``create_resource`` / ``update_resource`` / ``delete_resource`` that templates use, so a
function made from a ``.tf`` file is the same row as one made by a template or the API.
What comes back (physical id, ``Ref``, ``GetAtt``) is turned into the provider's
attribute names (``id``, ``arn``, ``invoke_arn``, ``execution_arn``...).

Each entry also lists the arguments and nested blocks the provider's schema has, so an
argument it does not know is Terraform's "Unsupported argument", and the arguments
whose change replaces the resource (the provider's ``ForceNew``) for the plan.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from unkai.services import Provisioned, ResourceContext

Props = Callable[[dict, ResourceContext], dict]
Attrs = Callable[[dict, Provisioned, ResourceContext], dict]


@dataclass(frozen=True)
class TfType:
    cfn: str  # the CloudFormation type whose provider does the work
    args: frozenset[str]
    blocks: dict[str, frozenset[str] | None]  # nested block -> its arguments (None: not checked)
    props: Props
    attrs: Attrs
    force_new: frozenset[str] = frozenset()
    computed: tuple[str, ...] = ()  # attributes only known after apply (shown in the plan)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _first(cfg: dict, block: str) -> dict | None:
    items = cfg.get(block)
    return items[0] if isinstance(items, list) and items else None


def _copy(cfg: dict, names: str, rename: dict[str, str] | None = None) -> dict:
    """The named arguments that are set, under their CloudFormation names."""
    out = {}
    for name in names.split():
        value = cfg.get(name)
        if value is not None:
            out[(rename or {}).get(name) or pascal(name)] = value
    return out


def _tags(cfg: dict) -> list[dict[str, str]] | None:
    tags = cfg.get("tags")
    return [{"Key": k, "Value": str(v)} for k, v in tags.items()] if isinstance(tags, dict) and tags else None


def _json(value: Any) -> Any:
    if isinstance(value, str) and value.strip().startswith(("{", "[")):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _region_arn(ctx: ResourceContext, service: str, rest: str) -> str:
    return f"arn:aws:{service}:{ctx.region}:{ctx.account}:{rest}"


# -- API Gateway v2 ---------------------------------------------------------------------------------

_ROUTE_SETTINGS = _words("data_trace_enabled detailed_metrics_enabled logging_level throttling_burst_limit "
                         "throttling_rate_limit")


def _route_settings(block: dict) -> dict:
    return _copy(block, "data_trace_enabled detailed_metrics_enabled logging_level throttling_burst_limit "
                        "throttling_rate_limit")


def _api_props(cfg: dict, ctx: ResourceContext) -> dict:
    props = _copy(cfg, "name protocol_type route_selection_expression description api_key_selection_expression "
                       "disable_execute_api_endpoint version route_key target credentials_arn")
    if cfg.get("body"):
        props["Body"] = _json(cfg["body"])
    cors = _first(cfg, "cors_configuration")
    if cors:
        props["CorsConfiguration"] = _copy(cors, "allow_credentials allow_headers allow_methods allow_origins "
                                                 "expose_headers max_age")
    if cfg.get("tags"):
        props["Tags"] = dict(cfg["tags"])
    return props


def _api_attrs(cfg: dict, got: Provisioned, ctx: ResourceContext) -> dict:
    api_id = got.physical_id
    scheme = "wss" if cfg.get("protocol_type") == "WEBSOCKET" else "https"
    return {"id": api_id, "api_endpoint": f"{scheme}://{api_id}.execute-api.{ctx.region}.amazonaws.com",
            "arn": f"arn:aws:apigateway:{ctx.region}::/apis/{api_id}",
            "execution_arn": _region_arn(ctx, "execute-api", api_id)}


def _stage_props(cfg: dict, ctx: ResourceContext) -> dict:
    props = _copy(cfg, "api_id deployment_id auto_deploy description stage_variables client_certificate_id",
                  {"stage_variables": "StageVariables"})
    props["StageName"] = cfg.get("name")
    log = _first(cfg, "access_log_settings")
    if log:
        props["AccessLogSettings"] = _copy(log, "destination_arn format")
    default = _first(cfg, "default_route_settings")
    if default:
        props["DefaultRouteSettings"] = _route_settings(default)
    routes = cfg.get("route_settings") or []
    if routes:
        props["RouteSettings"] = {r["route_key"]: _route_settings(r) for r in routes if r.get("route_key")}
    if cfg.get("tags"):
        props["Tags"] = dict(cfg["tags"])
    return props


def _stage_attrs(cfg: dict, got: Provisioned, ctx: ResourceContext) -> dict:
    api, name = cfg.get("api_id"), got.physical_id
    return {"id": name, "arn": f"arn:aws:apigateway:{ctx.region}::/apis/{api}/stages/{name}",
            "execution_arn": _region_arn(ctx, "execute-api", f"{api}/{name}"),
            "invoke_url": f"wss://{api}.execute-api.{ctx.region}.amazonaws.com/{name}"}


def _id_attrs(cfg: dict, got: Provisioned, ctx: ResourceContext) -> dict:
    return {"id": got.physical_id}


def _domain_props(cfg: dict, ctx: ResourceContext) -> dict:
    props: dict[str, Any] = {"DomainName": cfg.get("domain_name")}
    conf = _first(cfg, "domain_name_configuration")
    if conf:
        props["DomainNameConfigurations"] = [_copy(conf, "certificate_arn endpoint_type security_policy "
                                                         "ownership_verification_certificate_arn ip_address_type")]
    mtls = _first(cfg, "mutual_tls_authentication")
    if mtls:
        props["MutualTlsAuthentication"] = _copy(mtls, "truststore_uri truststore_version")
    if cfg.get("tags"):
        props["Tags"] = dict(cfg["tags"])
    return props


def _domain_attrs(cfg: dict, got: Provisioned, ctx: ResourceContext) -> dict:
    name = got.physical_id
    return {"id": name, "arn": f"arn:aws:apigateway:{ctx.region}::/domainnames/{name}",
            "api_mapping_selection_expression": "$request.basepath",
            "domain_name_configuration": [{**(_first(cfg, "domain_name_configuration") or {}),
                                           "target_domain_name": got.attributes.get("RegionalDomainName"),
                                           "hosted_zone_id": got.attributes.get("RegionalHostedZoneId")}]}


# -- Lambda -------------------------------------------------------------------------------------------


def _function_props(cfg: dict, ctx: ResourceContext) -> dict:
    props = _copy(cfg, "function_name role handler runtime description timeout memory_size layers architectures "
                       "reserved_concurrent_executions kms_key_arn package_type")
    if cfg.get("filename"):
        path = Path(cfg["filename"])
        path = path if path.is_absolute() else ctx.base_dir / path
        # the hash makes a new package an update (CloudFormation compares Code); Lambda reads only LocalPath
        props["Code"] = {"LocalPath": str(path), "SourceCodeHash": cfg.get("source_code_hash") or ""}
    elif cfg.get("s3_bucket"):
        props["Code"] = _copy(cfg, "s3_bucket s3_key s3_object_version", {"s3_bucket": "S3Bucket", "s3_key": "S3Key",
                                                                          "s3_object_version": "S3ObjectVersion"})
    elif cfg.get("image_uri"):
        props["Code"] = {"ImageUri": cfg["image_uri"]}
    env = _first(cfg, "environment")
    if env and env.get("variables"):
        props["Environment"] = {"Variables": dict(env["variables"])}
    tracing = _first(cfg, "tracing_config")
    if tracing:
        props["TracingConfig"] = {"Mode": tracing.get("mode")}
    dlq = _first(cfg, "dead_letter_config")
    if dlq:
        props["DeadLetterConfig"] = {"TargetArn": dlq.get("target_arn")}
    storage = _first(cfg, "ephemeral_storage")
    if storage:
        props["EphemeralStorage"] = {"Size": storage.get("size")}
    logging_config = _first(cfg, "logging_config")
    if logging_config:
        props["LoggingConfig"] = _copy(logging_config, "log_format log_group application_log_level system_log_level")
    vpc = _first(cfg, "vpc_config")
    if vpc:
        props["VpcConfig"] = _copy(vpc, "subnet_ids security_group_ids", {"subnet_ids": "SubnetIds",
                                                                          "security_group_ids": "SecurityGroupIds"})
    durable = _first(cfg, "durable_config")
    if durable:  # Lambda durable functions
        props["DurableConfig"] = _copy(durable, "execution_timeout retention_period",
                                       {"retention_period": "RetentionPeriodInDays"})
    tags = _tags(cfg)
    if tags:
        props["Tags"] = tags
    return props


def _function_attrs(cfg: dict, got: Provisioned, ctx: ResourceContext) -> dict:
    arn = got.attributes.get("Arn") or _region_arn(ctx, "lambda", f"function:{got.physical_id}")
    invoke = f"arn:aws:apigateway:{ctx.region}:lambda:path/2015-03-31/functions/{arn}/invocations"
    return {"id": got.physical_id, "function_name": got.physical_id, "arn": arn, "invoke_arn": invoke,
            "qualified_arn": f"{arn}:$LATEST", "qualified_invoke_arn": invoke.replace(arn, f"{arn}:$LATEST"),
            "version": "$LATEST", "timeout": cfg.get("timeout") if cfg.get("timeout") is not None else 3,
            "memory_size": cfg.get("memory_size") if cfg.get("memory_size") is not None else 128}


def _permission_props(cfg: dict, ctx: ResourceContext) -> dict:
    return _copy(cfg, "function_name action principal source_arn source_account event_source_token "
                      "function_url_auth_type principal_org_id",
                 {"principal_org_id": "PrincipalOrgID"})


def _mapping_props(cfg: dict, ctx: ResourceContext) -> dict:
    props = _copy(cfg, "event_source_arn function_name batch_size starting_position enabled "
                       "maximum_batching_window_in_seconds maximum_retry_attempts maximum_record_age_in_seconds "
                       "bisect_batch_on_function_error parallelization_factor function_response_types "
                       "tumbling_window_in_seconds starting_position_timestamp")
    criteria = _first(cfg, "filter_criteria")
    if criteria:
        props["FilterCriteria"] = {"Filters": [{"Pattern": f.get("pattern")} for f in criteria.get("filter") or []]}
    scaling = _first(cfg, "scaling_config")
    if scaling:
        props["ScalingConfig"] = {"MaximumConcurrency": scaling.get("maximum_concurrency")}
    return props


def _mapping_attrs(cfg: dict, got: Provisioned, ctx: ResourceContext) -> dict:
    return {"id": got.physical_id, "uuid": got.physical_id, "arn": got.attributes.get("EventSourceMappingArn"),
            "function_arn": _region_arn(ctx, "lambda", f"function:{str(cfg.get('function_name')).split(':')[-1]}")}


# -- DynamoDB, logs, IAM, queues, topics, buckets, parameters ----------------------------------------


def _table_props(cfg: dict, ctx: ResourceContext) -> dict:
    props: dict[str, Any] = {"TableName": cfg.get("name"), "BillingMode": cfg.get("billing_mode") or "PROVISIONED"}
    props["AttributeDefinitions"] = [{"AttributeName": a.get("name"), "AttributeType": a.get("type")}
                                     for a in cfg.get("attribute") or []]
    keys = [{"AttributeName": cfg["hash_key"], "KeyType": "HASH"}] if cfg.get("hash_key") else []
    if cfg.get("range_key"):
        keys.append({"AttributeName": cfg["range_key"], "KeyType": "RANGE"})
    props["KeySchema"] = keys
    if props["BillingMode"] == "PROVISIONED":
        props["ProvisionedThroughput"] = {"ReadCapacityUnits": cfg.get("read_capacity") or 1,
                                          "WriteCapacityUnits": cfg.get("write_capacity") or 1}

    def index(spec: dict, local: bool) -> dict:
        schema = [{"AttributeName": spec.get("hash_key") or cfg.get("hash_key"), "KeyType": "HASH"}]
        if spec.get("range_key"):
            schema.append({"AttributeName": spec["range_key"], "KeyType": "RANGE"})
        projection: dict[str, Any] = {"ProjectionType": spec.get("projection_type") or "ALL"}
        if spec.get("non_key_attributes"):
            projection["NonKeyAttributes"] = list(spec["non_key_attributes"])
        out = {"IndexName": spec.get("name"), "KeySchema": schema, "Projection": projection}
        if not local and props["BillingMode"] == "PROVISIONED":
            out["ProvisionedThroughput"] = {"ReadCapacityUnits": spec.get("read_capacity") or 1,
                                            "WriteCapacityUnits": spec.get("write_capacity") or 1}
        return out

    if cfg.get("global_secondary_index"):
        props["GlobalSecondaryIndexes"] = [index(i, False) for i in cfg["global_secondary_index"]]
    if cfg.get("local_secondary_index"):
        props["LocalSecondaryIndexes"] = [index(i, True) for i in cfg["local_secondary_index"]]
    if cfg.get("stream_enabled"):
        props["StreamSpecification"] = {"StreamViewType": cfg.get("stream_view_type")}
    ttl = _first(cfg, "ttl")
    if ttl and ttl.get("enabled"):
        props["TimeToLiveSpecification"] = {"AttributeName": ttl.get("attribute_name"), "Enabled": True}
    pitr = _first(cfg, "point_in_time_recovery")
    if pitr:
        props["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": bool(pitr.get("enabled"))}
    if cfg.get("deletion_protection_enabled") is not None:
        props["DeletionProtectionEnabled"] = cfg["deletion_protection_enabled"]
    tags = _tags(cfg)
    if tags:
        props["Tags"] = tags
    return props


def _table_attrs(cfg: dict, got: Provisioned, ctx: ResourceContext) -> dict:
    return {"id": got.physical_id, "name": got.physical_id,
            "arn": got.attributes.get("Arn") or _region_arn(ctx, "dynamodb", f"table/{got.physical_id}"),
            "stream_arn": got.attributes.get("StreamArn") or "",
            "stream_label": (got.attributes.get("StreamArn") or "").rsplit("/", 1)[-1] or ""}


def _log_group_props(cfg: dict, ctx: ResourceContext) -> dict:
    props = _copy(cfg, "name retention_in_days kms_key_id log_group_class", {"name": "LogGroupName"})
    tags = _tags(cfg)
    if tags:
        props["Tags"] = tags
    return props


def _log_group_attrs(cfg: dict, got: Provisioned, ctx: ResourceContext) -> dict:
    arn = got.attributes.get("Arn") or _region_arn(ctx, "logs", f"log-group:{got.physical_id}")
    return {"id": got.physical_id, "name": got.physical_id, "arn": arn[:-2] if arn.endswith(":*") else arn}


def _role_props(cfg: dict, ctx: ResourceContext) -> dict:
    props = _copy(cfg, "name description path max_session_duration permissions_boundary managed_policy_arns",
                  {"name": "RoleName"})
    props["AssumeRolePolicyDocument"] = _json(cfg.get("assume_role_policy"))
    inline = [{"PolicyName": p.get("name"), "PolicyDocument": _json(p.get("policy"))}
              for p in cfg.get("inline_policy") or [] if p.get("name")]
    if inline:
        props["Policies"] = inline
    tags = _tags(cfg)
    if tags:
        props["Tags"] = tags
    return props


def _role_attrs(cfg: dict, got: Provisioned, ctx: ResourceContext) -> dict:
    return {"id": got.physical_id, "name": got.physical_id, "arn": got.attributes.get("Arn"),
            "unique_id": got.attributes.get("RoleId")}


def _role_policy_props(cfg: dict, ctx: ResourceContext) -> dict:
    return {"PolicyName": cfg.get("name"), "RoleName": cfg.get("role"), "PolicyDocument": _json(cfg.get("policy"))}


def _role_policy_attrs(cfg: dict, got: Provisioned, ctx: ResourceContext) -> dict:
    return {"id": f"{cfg.get('role')}:{cfg.get('name')}"}


def _queue_props(cfg: dict, ctx: ResourceContext) -> dict:
    props = _copy(cfg, "name fifo_queue visibility_timeout_seconds message_retention_seconds delay_seconds "
                       "max_message_size receive_wait_time_seconds content_based_deduplication kms_master_key_id "
                       "sqs_managed_sse_enabled deduplication_scope fifo_throughput_limit",
                  {"name": "QueueName", "visibility_timeout_seconds": "VisibilityTimeout",
                   "message_retention_seconds": "MessageRetentionPeriod", "max_message_size": "MaximumMessageSize",
                   "receive_wait_time_seconds": "ReceiveMessageWaitTimeSeconds"})
    for key, prop in (("redrive_policy", "RedrivePolicy"), ("redrive_allow_policy", "RedriveAllowPolicy")):
        if cfg.get(key):
            props[prop] = _json(cfg[key])
    tags = _tags(cfg)
    if tags:
        props["Tags"] = tags
    return props


def _queue_attrs(cfg: dict, got: Provisioned, ctx: ResourceContext) -> dict:
    return {"id": got.physical_id, "url": got.physical_id, "arn": got.attributes.get("Arn"),
            "name": got.attributes.get("QueueName")}


def _topic_props(cfg: dict, ctx: ResourceContext) -> dict:
    props = _copy(cfg, "name fifo_topic display_name content_based_deduplication kms_master_key_id",
                  {"name": "TopicName"})
    tags = _tags(cfg)
    if tags:
        props["Tags"] = tags
    return props


def _arn_attrs(cfg: dict, got: Provisioned, ctx: ResourceContext) -> dict:
    arn = got.attributes.get("TopicArn") or got.ref or got.physical_id
    return {"id": arn, "arn": arn, "name": arn.rsplit(":", 1)[-1]}


def _subscription_props(cfg: dict, ctx: ResourceContext) -> dict:
    props = _copy(cfg, "topic_arn protocol endpoint raw_message_delivery filter_policy_scope")
    for key, prop in (("filter_policy", "FilterPolicy"), ("redrive_policy", "RedrivePolicy")):
        if cfg.get(key):
            props[prop] = _json(cfg[key])
    return props


def _bucket_props(cfg: dict, ctx: ResourceContext) -> dict:
    props = {"BucketName": cfg.get("bucket")} if cfg.get("bucket") else {}
    tags = _tags(cfg)
    if tags:
        props["Tags"] = tags
    return props


def _bucket_attrs(cfg: dict, got: Provisioned, ctx: ResourceContext) -> dict:
    name = got.physical_id
    return {"id": name, "bucket": name, "arn": f"arn:aws:s3:::{name}", "bucket_domain_name": f"{name}.s3.amazonaws.com",
            "bucket_regional_domain_name": f"{name}.s3.{ctx.region}.amazonaws.com"}


def _parameter_props(cfg: dict, ctx: ResourceContext) -> dict:
    props = _copy(cfg, "name type value description tier allowed_pattern data_type")
    if cfg.get("tags"):
        props["Tags"] = dict(cfg["tags"])
    return props


def _parameter_attrs(cfg: dict, got: Provisioned, ctx: ResourceContext) -> dict:
    return {"id": got.physical_id, "name": got.physical_id,
            "arn": _region_arn(ctx, "ssm", f"parameter/{got.physical_id.lstrip('/')}")}


def _rule_props(cfg: dict, ctx: ResourceContext) -> dict:
    props = _copy(cfg, "name schedule_expression description event_bus_name role_arn state")
    if cfg.get("event_pattern"):
        props["EventPattern"] = _json(cfg["event_pattern"])
    if cfg.get("is_enabled") is not None and "State" not in props:
        props["State"] = "ENABLED" if cfg["is_enabled"] else "DISABLED"
    tags = _tags(cfg)
    if tags:
        props["Tags"] = tags
    return props


def _rule_attrs(cfg: dict, got: Provisioned, ctx: ResourceContext) -> dict:
    name = got.physical_id.rsplit("|", 1)[-1]
    return {"id": got.physical_id.replace("|", "/"), "name": name, "arn": got.attributes.get("Arn")}


def _url_props(cfg: dict, ctx: ResourceContext) -> dict:
    props = {"TargetFunctionArn": cfg.get("function_name"), "AuthType": cfg.get("authorization_type") or "NONE"}
    props.update(_copy(cfg, "qualifier invoke_mode"))
    cors = _first(cfg, "cors")
    if cors:
        props["Cors"] = _copy(cors, "allow_credentials allow_headers allow_methods allow_origins expose_headers "
                                    "max_age")
    return props


def _url_attrs(cfg: dict, got: Provisioned, ctx: ResourceContext) -> dict:
    url = got.attributes.get("FunctionUrl") or ""
    return {"id": cfg.get("function_name"), "function_url": url, "function_arn": got.attributes.get("FunctionArn"),
            "url_id": url.split("//", 1)[-1].split(".", 1)[0]}


# -- types with no CloudFormation counterpart: one service operation creates, one deletes -----------


class Direct:
    """The provider of a Terraform-only type (an attachment, a rule's target): it calls the
    owning service's own operations, as a resources.py does, and nothing else."""

    def __init__(self, cloud: Any, create: Callable[[Any, ResourceContext, dict], Provisioned],
                 delete: Callable[[Any, ResourceContext, str, dict], None]) -> None:
        self.cloud, self._create, self._delete = cloud, create, delete

    def create_resource(self, ctx: ResourceContext, kind: str, logical_id: str, props: dict) -> Provisioned:
        return self._create(self.cloud, ctx, props)

    def update_resource(self, ctx: ResourceContext, kind: str, logical_id: str, physical_id: str, old: dict,
                        props: dict) -> Provisioned:
        self._delete(self.cloud, ctx, physical_id, old)
        return self._create(self.cloud, ctx, props)

    def delete_resource(self, ctx: ResourceContext, kind: str, physical_id: str, props: dict) -> None:
        self._delete(self.cloud, ctx, physical_id, props)


def _attach(cloud: Any, ctx: ResourceContext, props: dict) -> Provisioned:
    cloud.service("iam").attach_role_policy(ctx.request_context("iam", "AttachRolePolicy"), props)
    return Provisioned(f"{props['RoleName']}/{props['PolicyArn']}")


def _detach(cloud: Any, ctx: ResourceContext, physical_id: str, props: dict) -> None:
    from unkai.protocol import ServiceError

    try:
        cloud.service("iam").detach_role_policy(ctx.request_context("iam", "DetachRolePolicy"), props)
    except ServiceError as exc:
        if exc.code != "NoSuchEntity":
            raise


def _target_props(cfg: dict, ctx: ResourceContext) -> dict:
    target = _copy(cfg, "arn input input_path role_arn", {"target_id": "Id"})
    generated = hashlib.sha1(f"{cfg.get('rule')}|{cfg.get('arn')}".encode()).hexdigest()[:20]
    target["Id"] = cfg.get("target_id") or f"terraform-{generated}"
    transformer = _first(cfg, "input_transformer")
    if transformer:
        target["InputTransformer"] = {"InputPathsMap": transformer.get("input_paths") or {},
                                      "InputTemplate": transformer.get("input_template")}
    dlq = _first(cfg, "dead_letter_config")
    if dlq:
        target["DeadLetterConfig"] = {"Arn": dlq.get("arn")}
    retry = _first(cfg, "retry_policy")
    if retry:
        target["RetryPolicy"] = _copy(retry, "maximum_event_age_in_seconds maximum_retry_attempts")
    sqs = _first(cfg, "sqs_target")
    if sqs:
        target["SqsParameters"] = {"MessageGroupId": sqs.get("message_group_id")}
    return {"Rule": cfg.get("rule"), "EventBusName": cfg.get("event_bus_name"), "Targets": [target]}


def _put_target(cloud: Any, ctx: ResourceContext, props: dict) -> Provisioned:
    result = cloud.service("events").put_targets(ctx.request_context("events", "PutTargets"), props)
    if result.get("FailedEntryCount"):
        from unkai.protocol import ServiceError

        raise ServiceError("ValidationException", result["FailedEntries"][0].get("ErrorMessage") or "PutTargets "
                           "failed")
    return Provisioned(f"{props['Rule']}-{props['Targets'][0]['Id']}")


def _remove_target(cloud: Any, ctx: ResourceContext, physical_id: str, props: dict) -> None:
    from unkai.protocol import ServiceError

    try:
        cloud.service("events").remove_targets(ctx.request_context("events", "RemoveTargets"), {
            "Rule": props["Rule"], "EventBusName": props.get("EventBusName"),
            "Ids": [props["Targets"][0]["Id"]]})
    except ServiceError as exc:
        if exc.code != "ResourceNotFoundException":
            raise


DIRECT: dict[str, tuple[Callable, Callable]] = {
    "terraform::aws_iam_role_policy_attachment": (_attach, _detach),
    "terraform::aws_cloudwatch_event_target": (_put_target, _remove_target),
}


def direct_providers(cloud: Any) -> dict[str, Direct]:
    return {kind: Direct(cloud, create, delete) for kind, (create, delete) in DIRECT.items()}


_TAGS = "tags tags_all"

TYPES: dict[str, TfType] = {
    "aws_apigatewayv2_api": TfType(
        "AWS::ApiGatewayV2::Api",
        _words(f"name protocol_type route_selection_expression description api_key_selection_expression "
               f"disable_execute_api_endpoint version route_key target credentials_arn body fail_on_warnings "
               f"ip_address_type {_TAGS}"),
        {"cors_configuration": _words("allow_credentials allow_headers allow_methods allow_origins expose_headers "
                                      "max_age")},
        _api_props, _api_attrs, _words("protocol_type"), ("id", "api_endpoint", "arn", "execution_arn")),
    "aws_apigatewayv2_route": TfType(
        "AWS::ApiGatewayV2::Route",
        _words("api_id route_key target authorization_type authorizer_id api_key_required authorization_scopes "
               "model_selection_expression operation_name request_models route_response_selection_expression"),
        {"request_parameter": _words("request_parameter_key required")},
        lambda cfg, ctx: _copy(cfg, "api_id route_key target authorization_type authorizer_id api_key_required "
                                    "authorization_scopes model_selection_expression operation_name request_models "
                                    "route_response_selection_expression"),
        _id_attrs, _words("api_id"), ("id",)),
    "aws_apigatewayv2_integration": TfType(
        "AWS::ApiGatewayV2::Integration",
        _words("api_id integration_type integration_method integration_uri connection_type connection_id "
               "content_handling_strategy credentials_arn description passthrough_behavior payload_format_version "
               "request_parameters request_templates template_selection_expression timeout_milliseconds "
               "integration_subtype"),
        {"response_parameters": None, "tls_config": None},
        lambda cfg, ctx: _copy(cfg, "api_id integration_type integration_method integration_uri connection_type "
                                    "connection_id content_handling_strategy credentials_arn description "
                                    "passthrough_behavior payload_format_version request_parameters request_templates "
                                    "template_selection_expression timeout_milliseconds integration_subtype",
                               {"timeout_milliseconds": "TimeoutInMillis"}),
        lambda cfg, got, ctx: {"id": got.physical_id,
                               "integration_response_selection_expression": ""},
        _words("api_id integration_type"), ("id",)),
    "aws_apigatewayv2_stage": TfType(
        "AWS::ApiGatewayV2::Stage",
        _words(f"api_id name deployment_id auto_deploy description stage_variables client_certificate_id {_TAGS}"),
        {"access_log_settings": _words("destination_arn format"),
         "default_route_settings": _ROUTE_SETTINGS, "route_settings": _ROUTE_SETTINGS | {"route_key"}},
        _stage_props, _stage_attrs, _words("api_id name"), ("id", "arn", "execution_arn", "invoke_url")),
    "aws_apigatewayv2_deployment": TfType(
        "AWS::ApiGatewayV2::Deployment", _words("api_id description triggers"), {},
        lambda cfg, ctx: _copy(cfg, "api_id description"),
        lambda cfg, got, ctx: {"id": got.physical_id, "auto_deployed": False},
        _words("api_id triggers"), ("id",)),
    "aws_apigatewayv2_domain_name": TfType(
        "AWS::ApiGatewayV2::DomainName", _words(f"domain_name {_TAGS}"),
        {"domain_name_configuration": _words("certificate_arn endpoint_type security_policy "
                                             "ownership_verification_certificate_arn ip_address_type"),
         "mutual_tls_authentication": _words("truststore_uri truststore_version")},
        _domain_props, _domain_attrs, _words("domain_name"), ("id", "arn")),
    "aws_apigatewayv2_api_mapping": TfType(
        "AWS::ApiGatewayV2::ApiMapping", _words("api_id domain_name stage api_mapping_key"), {},
        lambda cfg, ctx: {"ApiId": cfg.get("api_id"), "DomainName": cfg.get("domain_name"),
                          "Stage": cfg.get("stage"), **({"ApiMappingKey": cfg["api_mapping_key"]}
                                                       if cfg.get("api_mapping_key") else {})},
        _id_attrs, _words("domain_name"), ("id",)),
    "aws_lambda_function": TfType(
        "AWS::Lambda::Function",
        _words(f"function_name filename s3_bucket s3_key s3_object_version image_uri package_type role handler "
               f"runtime description timeout memory_size publish layers architectures source_code_hash "
               f"reserved_concurrent_executions kms_key_arn code_signing_config_arn skip_destroy "
               f"replace_security_groups_on_destroy replacement_security_group_ids {_TAGS}"),
        {"environment": _words("variables"), "tracing_config": _words("mode"),
         "dead_letter_config": _words("target_arn"), "vpc_config": None, "ephemeral_storage": _words("size"),
         "logging_config": _words("log_format log_group application_log_level system_log_level"),
         "snap_start": None, "image_config": None, "file_system_config": None, "timeouts": None,
         "durable_config": _words("execution_timeout retention_period")},
        _function_props, _function_attrs, _words("function_name"),
        ("id", "arn", "invoke_arn", "qualified_arn", "version")),
    "aws_lambda_permission": TfType(
        "AWS::Lambda::Permission",
        _words("statement_id statement_id_prefix action function_name principal source_arn source_account "
               "qualifier event_source_token function_url_auth_type principal_org_id"), {},
        _permission_props, lambda cfg, got, ctx: {"id": cfg.get("statement_id") or got.physical_id},
        _words("statement_id statement_id_prefix action function_name principal source_arn source_account "
               "qualifier event_source_token function_url_auth_type principal_org_id"), ("id",)),
    "aws_lambda_event_source_mapping": TfType(
        "AWS::Lambda::EventSourceMapping",
        _words("event_source_arn function_name batch_size starting_position enabled "
               "maximum_batching_window_in_seconds maximum_retry_attempts maximum_record_age_in_seconds "
               "bisect_batch_on_function_error parallelization_factor function_response_types "
               "tumbling_window_in_seconds starting_position_timestamp queues topics"),
        {"filter_criteria": None, "scaling_config": None, "destination_config": None},
        _mapping_props, _mapping_attrs, _words("event_source_arn starting_position"), ("id", "uuid")),
    "aws_dynamodb_table": TfType(
        "AWS::DynamoDB::Table",
        _words(f"name billing_mode hash_key range_key read_capacity write_capacity stream_enabled stream_view_type "
               f"table_class deletion_protection_enabled {_TAGS}"),
        {"attribute": _words("name type"),
         "global_secondary_index": _words("name hash_key range_key projection_type non_key_attributes "
                                          "read_capacity write_capacity"),
         "local_secondary_index": _words("name range_key projection_type non_key_attributes"),
         "ttl": _words("attribute_name enabled"), "point_in_time_recovery": _words("enabled"),
         "server_side_encryption": _words("enabled kms_key_arn"), "replica": None, "timeouts": None,
         "on_demand_throughput": None, "import_table": None},
        _table_props, _table_attrs, _words("name hash_key range_key"), ("id", "arn", "stream_arn")),
    "aws_cloudwatch_log_group": TfType(
        "AWS::Logs::LogGroup",
        _words(f"name name_prefix retention_in_days kms_key_id skip_destroy log_group_class {_TAGS}"), {},
        _log_group_props, _log_group_attrs, _words("name name_prefix"), ("id", "arn")),
    "aws_iam_role": TfType(
        "AWS::IAM::Role",
        _words(f"name name_prefix assume_role_policy description path max_session_duration permissions_boundary "
               f"managed_policy_arns force_detach_policies {_TAGS}"),
        {"inline_policy": _words("name policy")},
        _role_props, _role_attrs, _words("name name_prefix path"), ("id", "arn", "unique_id")),
    "aws_iam_role_policy": TfType(
        "AWS::IAM::RolePolicy", _words("name name_prefix role policy"), {},
        _role_policy_props, _role_policy_attrs, _words("name name_prefix role"), ("id",)),
    "aws_sqs_queue": TfType(
        "AWS::SQS::Queue",
        _words(f"name name_prefix fifo_queue visibility_timeout_seconds message_retention_seconds delay_seconds "
               f"max_message_size receive_wait_time_seconds content_based_deduplication kms_master_key_id "
               f"kms_data_key_reuse_period_seconds sqs_managed_sse_enabled deduplication_scope "
               f"fifo_throughput_limit redrive_policy redrive_allow_policy policy {_TAGS}"), {},
        _queue_props, _queue_attrs, _words("name name_prefix fifo_queue"), ("id", "url", "arn")),
    "aws_sns_topic": TfType(
        "AWS::SNS::Topic",
        _words(f"name name_prefix fifo_topic display_name content_based_deduplication kms_master_key_id policy "
               f"delivery_policy {_TAGS}"), {},
        _topic_props, _arn_attrs, _words("name name_prefix fifo_topic"), ("id", "arn")),
    "aws_sns_topic_subscription": TfType(
        "AWS::SNS::Subscription",
        _words("topic_arn protocol endpoint raw_message_delivery filter_policy filter_policy_scope redrive_policy "
               "endpoint_auto_confirms confirmation_timeout_in_minutes subscription_role_arn"), {},
        _subscription_props, lambda cfg, got, ctx: {"id": got.physical_id, "arn": got.physical_id},
        _words("topic_arn protocol endpoint"), ("id", "arn")),
    "aws_s3_bucket": TfType(
        "AWS::S3::Bucket", _words(f"bucket bucket_prefix force_destroy object_lock_enabled {_TAGS}"), {},
        _bucket_props, _bucket_attrs, _words("bucket bucket_prefix"), ("id", "arn")),
    "aws_iam_role_policy_attachment": TfType(
        "terraform::aws_iam_role_policy_attachment", _words("role policy_arn"), {},
        lambda cfg, ctx: {"RoleName": cfg.get("role"), "PolicyArn": cfg.get("policy_arn")},
        _id_attrs, _words("role policy_arn"), ("id",)),
    "aws_cloudwatch_event_rule": TfType(
        "AWS::Events::Rule",
        _words(f"name name_prefix schedule_expression event_pattern description event_bus_name role_arn state "
               f"is_enabled force_destroy {_TAGS}"), {},
        _rule_props, _rule_attrs, _words("name name_prefix event_bus_name"), ("id", "arn")),
    "aws_cloudwatch_event_target": TfType(
        "terraform::aws_cloudwatch_event_target",
        _words("rule event_bus_name target_id arn input input_path role_arn force_destroy"),
        {"input_transformer": _words("input_paths input_template"), "dead_letter_config": _words("arn"),
         "retry_policy": _words("maximum_event_age_in_seconds maximum_retry_attempts"),
         "sqs_target": _words("message_group_id"), "ecs_target": None, "batch_target": None,
         "kinesis_target": None, "http_target": None, "run_command_targets": None},
        _target_props, _id_attrs, _words("rule event_bus_name target_id"), ("id",)),
    "aws_lambda_function_url": TfType(
        "AWS::Lambda::Url", _words("function_name qualifier authorization_type invoke_mode"), {"cors": None},
        _url_props, _url_attrs, _words("function_name qualifier"), ("id", "function_url", "url_id")),
    "aws_sqs_queue_policy": TfType(
        "AWS::SQS::QueuePolicy", _words("queue_url policy"), {},
        lambda cfg, ctx: {"Queues": [cfg.get("queue_url")], "PolicyDocument": _json(cfg.get("policy"))},
        lambda cfg, got, ctx: {"id": cfg.get("queue_url")}, _words("queue_url"), ("id",)),
    "aws_ssm_parameter": TfType(
        "AWS::SSM::Parameter",
        _words(f"name type value insecure_value description tier allowed_pattern data_type key_id overwrite {_TAGS}"),
        {}, _parameter_props, _parameter_attrs, _words("name"), ("id", "arn")),
}


def logical_id(address: str) -> str:
    """A CloudFormation-style logical id for generated names (``aws_sqs_queue.jobs[0]`` -> ``Jobs0``)."""
    name = address.rsplit(".", 1)[-1]
    return "".join(p[:1].upper() + p[1:] for p in "".join(c if c.isalnum() else "_" for c in name).split("_")) \
        or "Resource"


__all__ = ["TYPES", "TfType", "logical_id", "pascal"]
