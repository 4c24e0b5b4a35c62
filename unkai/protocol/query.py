"""The AWS query protocol: form-encoded ``Action=...`` requests, XML responses (SNS, SES,
STS, CloudFormation, and SQS for older SDKs)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from unkai.http import Request, Response
from unkai.protocol import models, values, xmlshape
from unkai.protocol.base import Protocol, ResolvedError
from unkai.protocol.errors import ParamError, SerializationError, ServiceError
from unkai.protocol.xml import escape

if TYPE_CHECKING:  # botocore.model is imported with the first model (it pulls in awscrt and urllib3)
    from botocore.model import OperationModel, ServiceModel, Shape

XML_TYPE = [("content-type", "text/xml")]


def _unquote(text: str) -> str:
    """``unquote_plus(text, errors="strict")``: skipped for the plain text most parts are, and
    otherwise done on the UTF-8 bytes at once (half the cost of ``unquote_plus``'s own way)."""
    if "%" in text:
        return unquote_to_bytes(text.replace("+", " ")).decode("utf-8")
    return text.replace("+", " ") if "+" in text else text


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
    """A key path segment: children by name, plus the value set at this exact key (made
    without an ``__init__`` of its own: a request's form makes a dozen or more)."""

    value: str | None = None


def _tree(pairs: list[tuple[str, str]]) -> _Node:
    root = _Node()
    for key, value in pairs:
        node = root
        for part in key.split("."):
            child = node.get(part)
            if child is None:
                child = node[part] = _Node()
            node = child
        node.value = value
    return root


def _indexed(node: _Node) -> list[_Node]:
    items = []
    for k, v in node.items():
        if k.isdigit():
            items.append((int(k), v))
    return [v for _, v in sorted(items)]


Reader = Callable[[_Node, str], Any]


def _read(shape: Shape, node: _Node, path: str) -> Any:
    """The value of ``shape`` held at ``node`` (``path`` names it in errors)."""
    return _reader(shape)(node, path)


@functools.lru_cache(maxsize=None)
def _reader(shape: Shape) -> Reader:
    """The reading function for values of ``shape``, made once per shape (models are loaded
    once, so every request of an operation walks the same shapes): a structure's table of
    members and a list's member name are worked out here, not at each value."""
    t = shape.type_name
    if t == "structure":
        return _structure_reader(shape)
    if t == "list":
        member_shape = shape.member
        wrapper = None if shape.serialization.get("flattened") else member_shape.serialization.get("name", "member")

        def read_list(node: _Node, path: str) -> Any:
            if wrapper is not None:
                node = node.get(wrapper)
                if node is None:
                    return []
            item = _reader(member_shape)
            return [item(n, path) for n in _indexed(node)]
        return read_list
    if t == "map":
        return functools.partial(_read_map, shape)
    if t in ("string", "character"):
        def read_text(node: _Node, path: str) -> Any:
            value = node.value
            if value is None:
                raise ParamError("invalid", path, f"Value for parameter {path} is invalid.")
            return value
        return read_text

    def read_scalar(node: _Node, path: str) -> Any:
        value = node.value
        if value is None:
            raise ParamError("invalid", path, f"Value for parameter {path} is invalid.")
        return values.from_text(value, shape, path)
    return read_scalar


def _structure_reader(shape: Shape) -> Reader:
    required = [(req, shape.members[req].serialization.get("name", req)) for req in shape.required_members]
    # (member, wire name, its reader): made at the first value, so a recursive model is
    # unfolded only as deep as the requests go
    table: list[tuple[str, str, Reader]] | None = None

    def read_structure(node: _Node, path: str) -> Any:
        nonlocal table
        if table is None:
            table = []
            for key, member in shape.members.items():
                name = member.serialization.get("name", key)
                if member.type_name == "list" and member.serialization.get("flattened"):
                    name = member.member.serialization.get("name", name)
                table.append((key, name, _reader(member)))
        result: dict[str, Any] = {}
        for key, name, read in table:
            child = node.get(name)
            if child is not None:
                result[key] = read(child, f"{path}.{name}" if path else name)
        for req, name in required:
            if req not in result:
                full = f"{path}.{name}" if path else name
                raise ParamError("missing", full, f"The request must contain the parameter {full}.")
        return result
    return read_structure


def _read_map(shape: Shape, node: _Node, path: str) -> Any:
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
        return _reader(shape)(_tree(form_params(request, body)), "")

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
