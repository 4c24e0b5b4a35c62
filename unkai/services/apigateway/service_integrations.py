"""HTTP APIs' first-class AWS service integrations (``AWS_PROXY`` with an ``IntegrationSubtype``:
``SQS-SendMessage``, ``EventBridge-PutEvents``, ``Kinesis-PutRecord``...): the integration's
``RequestParameters`` are evaluated against the request and the service's operation runs
in-process through ``cloud.call``, as API Gateway calls the service with the integration's
role. The answer is the service's response as JSON (SQS's in its ``XResponse``/``XResult``
wrapping, as API Gateway returns it); a refusal is answered with the service's status and
error code. A subtype whose service unkai does not serve answers 500.
"""

from __future__ import annotations

import json
import re
from typing import Any

from unkai.http import Response
from unkai.protocol import ServiceError
from unkai.services.apigateway import vtl

# subtype -> (service, operation, {parameter: target key}); parameters not listed pass as they are
SUBTYPES: dict[str, tuple[str, str]] = {
    "SQS-SendMessage": ("sqs", "SendMessage"), "SQS-ReceiveMessage": ("sqs", "ReceiveMessage"),
    "SQS-DeleteMessage": ("sqs", "DeleteMessage"), "SQS-PurgeQueue": ("sqs", "PurgeQueue"),
    "EventBridge-PutEvents": ("events", "PutEvents"),
    "Kinesis-PutRecord": ("kinesis", "PutRecord"),
    "StepFunctions-StartExecution": ("stepfunctions", "StartExecution"),
    "StepFunctions-StartSyncExecution": ("stepfunctions", "StartSyncExecution"),
    "StepFunctions-StopExecution": ("stepfunctions", "StopExecution"),
    "AppConfig-GetConfiguration": ("appconfig", "GetConfiguration"),
}
_JSON_PARAMS = ("MessageAttributes", "MessageSystemAttributes", "Resources")
_INT_PARAMS = ("DelaySeconds", "MaxNumberOfMessages", "VisibilityTimeout", "WaitTimeSeconds")
_INTERPOLATED = re.compile(r"\$\{([^}]+)\}")


def value_of(expression: Any, call: Any, path_params: dict[str, str], variables: dict[str, str],
             context: dict[str, Any]) -> Any:
    """A parameter mapping value: ``$request.header.X``, ``$request.querystring.X``, ``$request.path.X``,
    ``$request.body`` or ``$request.body.json.path``, ``$context.X``, ``$stageVariables.X``, those inside
    ``${...}`` in a longer string, or the literal text."""
    if not isinstance(expression, str):
        return expression
    text = expression.strip()
    if text.startswith("$") and not text.startswith("${"):
        return _one(text[1:], call, path_params, variables, context)
    if "${" in text:
        def sub(m: re.Match) -> str:
            found = _one(m.group(1), call, path_params, variables, context)
            return "" if found is None else found if isinstance(found, str) else json.dumps(found)
        return _INTERPOLATED.sub(sub, text)
    return expression


def _one(name: str, call: Any, path_params: dict[str, str], variables: dict[str, str],
         context: dict[str, Any]) -> Any:
    if name.startswith("request.header."):
        return call.header(name[len("request.header."):])
    if name.startswith("request.querystring."):
        return dict(call.query).get(name[len("request.querystring."):])
    if name.startswith("request.path."):
        return path_params.get(name[len("request.path."):])
    if name == "request.body":
        return call.body.decode("utf-8", "replace")
    if name.startswith("request.body."):
        try:
            body = json.loads(call.body or b"null")
        except ValueError:
            return None
        found = vtl.json_path(body, "$" + name[len("request.body"):])
        return found
    if name.startswith("stageVariables."):
        return variables.get(name[len("stageVariables."):])
    if name.startswith("context."):
        node: Any = context
        for part in name[len("context."):].split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return None if node is None else str(node)
    return None


def _params(subtype: str, mapped: dict[str, Any]) -> dict[str, Any]:
    params = {k: v for k, v in mapped.items() if v is not None and k != "Region"}
    for key in _JSON_PARAMS:
        if isinstance(params.get(key), str):
            try:
                params[key] = json.loads(params[key])
            except ValueError:
                pass
    for key in _INT_PARAMS:
        if isinstance(params.get(key), str) and params[key].strip().lstrip("-").isdigit():
            params[key] = int(params[key])
    if subtype == "EventBridge-PutEvents":
        entry = {k: params.pop(k) for k in ("Detail", "DetailType", "Source", "Time", "EventBusName", "Resources",
                                            "TraceHeader") if k in params}
        if not isinstance(entry.get("Detail"), str) and "Detail" in entry:
            entry["Detail"] = json.dumps(entry["Detail"])
        params["Entries"] = [entry]
    if subtype == "Kinesis-PutRecord" and isinstance(params.get("Data"), str):
        params["Data"] = params["Data"].encode()
    return params


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def run(cloud: Any, integration: dict[str, Any], region: str, call: Any, path_params: dict[str, str],
        variables: dict[str, str], context: dict[str, Any], request_id: str) -> Response:
    """Call the integration's service operation; the HTTP answer API Gateway gives."""
    subtype = integration.get("IntegrationSubtype") or ""
    service, operation = SUBTYPES[subtype]
    mapped = {k: value_of(v, call, path_params, variables, context)
              for k, v in (integration.get("RequestParameters") or {}).items()}
    region = mapped.get("Region") or region
    headers = [("content-type", "application/json"), ("apigw-requestid", request_id)]
    if service not in cloud.services:
        return Response(500, headers, b'{"message":"Internal Server Error"}')
    try:
        result = cloud.call(service, operation, _params(subtype, mapped), region)
    except ServiceError as exc:
        body = {"__type": exc.code, "message": exc.message}
        return Response(exc.status if 400 <= exc.status < 600 else 400, headers, json.dumps(body).encode())
    except (KeyError, TypeError, ValueError) as exc:  # a required parameter missing or malformed
        body = {"__type": "ValidationException", "message": f"{subtype}: {exc}"}
        return Response(400, headers, json.dumps(body).encode())
    result = _jsonable(result if isinstance(result, dict) else {})
    if service == "sqs":
        result = {f"{operation}Response": {"ResponseMetadata": {"RequestId": request_id},
                                           f"{operation}Result": result or None}}
    return Response(200, headers, json.dumps(result, separators=(",", ":")).encode())
