"""The AWS query protocol: form-encoded ``Action=...`` requests, XML responses (SNS, SES,
STS, CloudFormation, and SQS for older SDKs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from unkai.http import Request, Response
from unkai.protocol import models, values, xmlshape
from unkai.protocol.base import Protocol, ResolvedError
from unkai.protocol.errors import ParamError, SerializationError, ServiceError
from unkai.protocol.xml import escape

if TYPE_CHECKING:  # botocore.model is imported with the first model (it pulls in awscrt and urllib3)
    from botocore.model import OperationModel, ServiceModel, Shape

XML_TYPE = [("content-type", "text/xml")]


def _unquote(text: str) -> str:
    """``unquote_plus(text, errors="strict")``, skipped for the plain text most parts are."""
    return unquote_plus(text, errors="strict") if "%" in text or "+" in text else text


def form_body(request: Request, body: bytes) -> list[tuple[str, str]]:
    """The pairs of a form-encoded body, parsed once per request (routing needs its Action too)."""
    pairs = request.state.get("form_body")
    if pairs is None:
        # parse_qsl(text, keep_blank_values=True), without its per-call overhead; bytes that are not
        # UTF-8 (raw or percent-encoded) are refused, not replaced, so two values never collide
        try:
            pairs = request.state["form_body"] = [
                (_unquote(name), _unquote(value))
                for name, _, value in (part.partition("=") for part in body.decode("utf-8").split("&") if part)
            ]
        except UnicodeDecodeError:
            raise SerializationError("The request body is not valid UTF-8.") from None
    return pairs


def form_params(request: Request, body: bytes | None) -> list[tuple[str, str]]:
    pairs = list(request.query)
    ctype = request.headers.get("content-type", "")
    if body and (not ctype or "x-www-form-urlencoded" in ctype):
        pairs += form_body(request, body)
    return pairs


class _Node(dict):
    """A key path segment: children by name, plus the value set at this exact key."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        super().__init__()
        self.value: str | None = None


def _tree(pairs: list[tuple[str, str]]) -> _Node:
    root = _Node()
    for key, value in pairs:
        node = root
        for part in key.split("."):
            node = node.setdefault(part, _Node())
        node.value = value
    return root


def _indexed(node: _Node) -> list[_Node]:
    items = []
    for k, v in node.items():
        if k.isdigit():
            items.append((int(k), v))
    return [v for _, v in sorted(items)]


_LAYOUTS: dict[Shape, tuple[list[tuple[str, str, Shape]], list[tuple[str, str]]]] = {}


def _layout(shape: Shape) -> tuple[list[tuple[str, str, Shape]], list[tuple[str, str]]]:
    """A structure's (member, wire name, shape) and (required member, wire name), worked out
    once per shape: models are loaded once, so every request reuses them."""
    layout = _LAYOUTS.get(shape)
    if layout is None:
        members = []
        for key, member in shape.members.items():
            name = member.serialization.get("name", key)
            if member.type_name == "list" and member.serialization.get("flattened"):
                name = member.member.serialization.get("name", name)
            members.append((key, name, member))
        required = [(req, shape.members[req].serialization.get("name", req)) for req in shape.required_members]
        layout = _LAYOUTS[shape] = (members, required)
    return layout


def _read(shape: Shape, node: _Node, path: str) -> Any:
    t = shape.type_name
    if t == "structure":
        members, required = _layout(shape)
        result: dict[str, Any] = {}
        for key, name, member in members:
            child = node.get(name)
            if child is not None:
                result[key] = _read(member, child, f"{path}.{name}" if path else name)
        for req, name in required:
            if req not in result:
                full = f"{path}.{name}" if path else name
                raise ParamError("missing", full, f"The request must contain the parameter {full}.")
        return result
    if t == "list":
        if not shape.serialization.get("flattened"):
            node = node.get(shape.member.serialization.get("name", "member"), _Node())
        return [_read(shape.member, item, path) for item in _indexed(node)]
    if t == "map":
        if not shape.serialization.get("flattened"):
            node = node.get("entry", _Node())
        kname = shape.key.serialization.get("name", "key")
        vname = shape.value.serialization.get("name", "value")
        result = {}
        for entry in _indexed(node):
            if kname in entry and entry[kname].value is not None:
                k = values.from_text(entry[kname].value, shape.key, path)
                result[k] = _read(shape.value, entry[vname], path) if vname in entry else None
        return result
    if node.value is None:
        raise ParamError("invalid", path, f"Value for parameter {path} is invalid.")
    return values.from_text(node.value, shape, path)


class QueryProtocol(Protocol):
    name = "query"

    def needs_body_to_route(self) -> bool:
        return True

    def find_operation(self, model: ServiceModel, request: Request, body: bytes | None) -> OperationModel | None:
        action = request.state.get("query_action")
        if action is None:
            for k, v in form_params(request, body):
                if k == "Action":
                    action = v
                    break
        if action is None:
            return None
        return models.operations(model).get(action)

    def parse(self, op: OperationModel, request: Request, body: bytes | None) -> dict[str, Any]:
        shape = op.input_shape
        if shape is None:
            return {}
        return _read(shape, _tree(form_params(request, body)), "")

    def serialize(self, op: OperationModel, result: dict[str, Any] | None, request_id: str) -> Response:
        ns = op.metadata.get("xmlNamespace", "")
        out = [f'<?xml version="1.0"?><{op.name}Response xmlns="{ns}">']
        shape = op.output_shape
        if shape is not None:
            wrapper = op.output_shape.serialization.get("resultWrapper") or _wrapper(op)
            xmlshape.to_xml(shape, result or {}, wrapper, out)
        out.append(f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{op.name}Response>")
        return Response(200, XML_TYPE + [("x-amzn-requestid", request_id)], "".join(out).encode())

    def serialize_error(self, model: ServiceModel, error: ServiceError, request_id: str,
                        op: OperationModel | None = None) -> Response:
        resolved = ResolvedError(model, error)
        ns = model.metadata.get("xmlNamespace", "") if model is not None else ""
        fault = "Sender" if resolved.sender_fault else "Receiver"
        extra = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in error.fields.items())
        # SQS's query errors carry an empty <Detail/>; SNS, IAM, STS and CloudWatch send none
        detail = "<Detail/>" if model is not None and model.metadata.get("endpointPrefix") == "sqs" else ""
        body = (
            f'<?xml version="1.0"?><ErrorResponse xmlns="{ns}"><Error><Type>{fault}</Type>'
            f"<Code>{escape(resolved.code)}</Code><Message>{escape(error.message)}</Message>{extra}"
            f"{detail}</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        headers = XML_TYPE + [("x-amzn-requestid", request_id)] + list(error.headers.items())
        return Response(resolved.status, headers, body.encode())


def _wrapper(op: OperationModel) -> str:
    # ServiceModel keeps resultWrapper on the operation's output reference.
    return op._operation_model.get("output", {}).get("resultWrapper", f"{op.name}Result")
