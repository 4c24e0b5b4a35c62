"""AWS::Lambda::* template resources, created through the service's own operations so a
template's function behaves exactly like one made through the API."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from unkai.protocol import ServiceError
from unkai.services import Provisioned, ResourceContext
from unkai.template.names import physical_name

if TYPE_CHECKING:
    from unkai.services.awslambda.service import Lambda

INTS = ("MemorySize", "Timeout", "BatchSize", "MaximumBatchingWindowInSeconds", "MaximumRetryAttempts",
        "MaximumEventAgeInSeconds", "MaximumRecordAgeInSeconds", "ParallelizationFactor", "ReservedConcurrentExecutions",
        "TumblingWindowInSeconds")
BOOLS = ("Enabled", "BisectBatchOnFunctionError")
FUNCTION_KEYS = ("Runtime", "Role", "Handler", "Description", "Timeout", "MemorySize", "Environment", "Layers",
                 "DeadLetterConfig", "TracingConfig", "VpcConfig", "Architectures", "EphemeralStorage",
                 "LoggingConfig", "KmsKeyArn", "SnapStart", "PackageType", "DurableConfig", "TenancyConfig",
                 "ImageConfig")
MAPPING_KEYS = ("BatchSize", "MaximumBatchingWindowInSeconds", "FilterCriteria", "FunctionResponseTypes",
                "ScalingConfig", "ParallelizationFactor", "MaximumRecordAgeInSeconds", "BisectBatchOnFunctionError",
                "MaximumRetryAttempts", "DestinationConfig", "TumblingWindowInSeconds", "StartingPosition",
                "StartingPositionTimestamp", "Enabled")


def _coerce(props: dict) -> dict:
    out = dict(props)
    for key in INTS:
        if isinstance(out.get(key), str) and out[key].lstrip("-").isdigit():
            out[key] = int(out[key])
    for key in BOOLS:
        if isinstance(out.get(key), str):
            out[key] = out[key].lower() == "true"
    durable = out.get("DurableConfig")
    if isinstance(durable, dict):  # its numbers may come as strings from parameters
        out["DurableConfig"] = {k: int(v) if isinstance(v, str) and v.isdigit() else v for k, v in durable.items()}
    env = out.get("Environment")
    if isinstance(env, dict) and isinstance(env.get("Variables"), dict):  # CloudFormation makes them strings
        out["Environment"] = {**env, "Variables": {k: _text(v) for k, v in env["Variables"].items()}}
    return out


def _text(value: Any) -> str:
    """A scalar as CloudFormation turns it into a string property (``8080``, ``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def _function_params(props: dict) -> dict:
    params = {k: props[k] for k in FUNCTION_KEYS if props.get(k) is not None}
    if "KmsKeyArn" in params:
        params["KMSKeyArn"] = params.pop("KmsKeyArn")
    return params


def create(service: "Lambda", ctx: ResourceContext, resource_type: str, logical_id: str, props: dict) -> Provisioned:
    props = _coerce(props)
    rctx = ctx.request_context("lambda")
    if resource_type == "AWS::Lambda::Function":
        name = props.get("FunctionName") or physical_name(ctx.stack_name, logical_id, 64)
        params = _function_params(props)
        code = dict(props.get("Code") or {})
        if code.get("ImageUri"):  # a container image may be saved beside the template
            code["LocalImageDirs"] = [str(ctx.base_dir)]
        params.update(FunctionName=name, Code=code,
                      Tags={t["Key"]: t["Value"] for t in props.get("Tags") or []})
        params.setdefault("Role", f"arn:aws:iam::{ctx.account}:role/{name}-role")
        config = service.create_function(rctx, params)
        if props.get("ReservedConcurrentExecutions") is not None:
            service.put_function_concurrency(rctx, {"FunctionName": name, "ReservedConcurrentExecutions":
                                                    props["ReservedConcurrentExecutions"]})
        return Provisioned(name, name, {"Arn": config["FunctionArn"],
                                        "SnapStartResponse": {"ApplyOn": "None", "OptimizationStatus": "Off"}})
    if resource_type == "AWS::Lambda::Version":
        config = service.publish_version(rctx, {"FunctionName": props["FunctionName"],
                                                "Description": props.get("Description")})
        return Provisioned(config["FunctionArn"], config["FunctionArn"],
                           {"Version": config["Version"], "FunctionArn": config["FunctionArn"]})
    if resource_type == "AWS::Lambda::Alias":
        config = service.create_alias(rctx, {k: props[k] for k in ("FunctionName", "FunctionVersion", "Name",
                                                                  "Description", "RoutingConfig") if k in props})
        if props.get("ProvisionedConcurrencyConfig"):
            pass  # every environment here is as warm as provisioned concurrency would make it
        return Provisioned(config["AliasArn"], config["AliasArn"], {"AliasArn": config["AliasArn"]})
    if resource_type == "AWS::Lambda::Permission":
        sid = physical_name(ctx.stack_name, logical_id, 100)
        params = {k: props[k] for k in ("FunctionName", "Action", "Principal", "SourceArn", "SourceAccount",
                                        "EventSourceToken", "FunctionUrlAuthType", "PrincipalOrgID") if props.get(k)}
        params["StatementId"] = sid
        service.add_permission(rctx, params)
        return Provisioned(sid)
    if resource_type == "AWS::Lambda::EventSourceMapping":
        params = {k: props[k] for k in MAPPING_KEYS if props.get(k) is not None}
        params.update(FunctionName=props["FunctionName"], EventSourceArn=props.get("EventSourceArn"))
        config = service.create_event_source_mapping(rctx, params)
        return Provisioned(config["UUID"], config["UUID"], {"Id": config["UUID"],
                                                            "EventSourceMappingArn": config["EventSourceMappingArn"]})
    if resource_type == "AWS::Lambda::LayerVersion":
        name = props.get("LayerName") or physical_name(ctx.stack_name, logical_id, 64)
        config = service.publish_layer_version(rctx, {"LayerName": name, "Content": props.get("Content") or {},
                                                      "Description": props.get("Description"),
                                                      "CompatibleRuntimes": props.get("CompatibleRuntimes"),
                                                      "LicenseInfo": props.get("LicenseInfo"),
                                                      "CompatibleArchitectures": props.get("CompatibleArchitectures")})
        arn = config["LayerVersionArn"]
        return Provisioned(arn, arn, {"LayerVersionArn": arn})
    if resource_type == "AWS::Lambda::LayerVersionPermission":
        return Provisioned(f"{props.get('LayerVersionArn')}#{logical_id}")
    if resource_type == "AWS::Lambda::Url":
        params = {"FunctionName": props["TargetFunctionArn"], "AuthType": props.get("AuthType") or "NONE"}
        for key in ("Qualifier", "Cors", "InvokeMode"):
            if props.get(key):
                params[key] = props[key]
        config = service.create_function_url_config(rctx, params)
        return Provisioned(config["FunctionArn"], config["FunctionArn"],
                           {"FunctionUrl": config["FunctionUrl"], "FunctionArn": config["FunctionArn"]})
    if resource_type == "AWS::Lambda::EventInvokeConfig":
        params = {k: props[k] for k in ("FunctionName", "Qualifier", "MaximumRetryAttempts", "MaximumEventAgeInSeconds",
                                        "DestinationConfig") if props.get(k) is not None}
        config = service.put_function_event_invoke_config(rctx, params)
        return Provisioned(f"{config['FunctionArn']}#event-invoke-config")
    raise NotImplementedError(resource_type)


def update(service: "Lambda", ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
           old: dict, new: dict) -> Provisioned | None:
    """Update in place where CloudFormation does; None when the resource must be replaced."""
    old, new = _coerce(old), _coerce(new)
    rctx = ctx.request_context("lambda")
    if resource_type == "AWS::Lambda::Function":
        if any(old.get(k) != new.get(k) for k in ("FunctionName", "TenancyConfig", "PackageType")):
            return None  # TenancyConfig and the package type are set at creation only: a new function
        code = new.get("Code") or {}
        if code != (old.get("Code") or {}):
            if code.get("ImageUri"):
                code = dict(code, LocalImageDirs=[str(ctx.base_dir)])
            service.update_function_code(rctx, dict(FunctionName=physical_id, **code))
        params = _function_params(new)
        for key in ("Environment", "Layers", "DeadLetterConfig"):
            if key in old and key not in new:
                params[key] = {} if key != "Layers" else []
        config = service.update_function_configuration(rctx, dict(params, FunctionName=physical_id))
        if new.get("ReservedConcurrentExecutions") is not None:
            service.put_function_concurrency(rctx, {"FunctionName": physical_id, "ReservedConcurrentExecutions":
                                                    new["ReservedConcurrentExecutions"]})
        elif old.get("ReservedConcurrentExecutions") is not None:
            service.delete_function_concurrency(rctx, {"FunctionName": physical_id})
        return Provisioned(physical_id, physical_id, {"Arn": config["FunctionArn"]})
    if resource_type == "AWS::Lambda::Alias" and old.get("Name") == new.get("Name") and \
            old.get("FunctionName") == new.get("FunctionName"):
        config = service.update_alias(rctx, {k: new[k] for k in ("FunctionName", "FunctionVersion", "Name",
                                                                 "Description", "RoutingConfig") if k in new})
        return Provisioned(physical_id, physical_id, {"AliasArn": config["AliasArn"]})
    if resource_type == "AWS::Lambda::EventSourceMapping" and old.get("EventSourceArn") == new.get("EventSourceArn"):
        params = {k: new[k] for k in MAPPING_KEYS if new.get(k) is not None and k not in
                  ("StartingPosition", "StartingPositionTimestamp")}
        params.update(UUID=physical_id, FunctionName=new["FunctionName"])
        params.setdefault("Enabled", True)
        config = service.update_event_source_mapping(rctx, params)
        return Provisioned(physical_id, physical_id, {"Id": physical_id,
                                                      "EventSourceMappingArn": config["EventSourceMappingArn"]})
    if resource_type == "AWS::Lambda::EventInvokeConfig" and old.get("FunctionName") == new.get("FunctionName") and \
            old.get("Qualifier") == new.get("Qualifier"):
        params = {k: new[k] for k in ("FunctionName", "Qualifier", "MaximumRetryAttempts", "MaximumEventAgeInSeconds",
                                      "DestinationConfig") if new.get(k) is not None}
        service.put_function_event_invoke_config(rctx, params)
        return Provisioned(physical_id)
    return None


def delete(service: "Lambda", ctx: ResourceContext, resource_type: str, physical_id: str, props: dict) -> None:
    rctx = ctx.request_context("lambda")
    calls: dict[str, Any] = {
        "AWS::Lambda::Function": lambda: service.delete_function(rctx, {"FunctionName": physical_id}),
        "AWS::Lambda::Version": lambda: service.delete_function(rctx, {"FunctionName": physical_id}),
        "AWS::Lambda::Alias": lambda: service.delete_alias(rctx, {"FunctionName": props["FunctionName"],
                                                                  "Name": props["Name"]}),
        "AWS::Lambda::Permission": lambda: service.remove_permission(rctx, {"FunctionName": props["FunctionName"],
                                                                            "StatementId": physical_id}),
        "AWS::Lambda::EventSourceMapping": lambda: service.delete_event_source_mapping(rctx, {"UUID": physical_id}),
        "AWS::Lambda::LayerVersion": lambda: service.delete_layer_version(rctx, {
            "LayerName": physical_id.rsplit(":", 1)[0], "VersionNumber": int(physical_id.rsplit(":", 1)[1])}),
        "AWS::Lambda::Url": lambda: service.delete_function_url_config(rctx, {"FunctionName": physical_id,
                                                                              "Qualifier": props.get("Qualifier")}),
        "AWS::Lambda::EventInvokeConfig": lambda: service.delete_function_event_invoke_config(rctx, {
            "FunctionName": props["FunctionName"], "Qualifier": props.get("Qualifier")}),
    }
    call = calls.get(resource_type)
    if call is None:
        return
    try:
        call()
    except ServiceError:
        pass  # already gone


