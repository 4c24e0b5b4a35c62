"""The REST protocols: operations found by method and URI template, members bound to
the path, query string, headers and body (rest-json: Lambda, API Gateway, SES v2,
Scheduler; rest-xml: S3)."""

from __future__ import annotations

import base64
import functools
import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from unkai.http import Request, Response
from unkai.protocol import awsjson, models, values, xml, xmlshape
from unkai.protocol.base import Protocol, ResolvedError
from unkai.protocol.errors import ParamError, SerializationError, ServiceError
from unkai.protocol.xml import escape

if TYPE_CHECKING:  # botocore.model is imported with the first model (it pulls in awscrt and urllib3)
    from botocore.model import OperationModel, ServiceModel, Shape

_LABEL = re.compile(r"\{([^}]+)\}")


class _Route:
    """One operation's URI template, compiled for matching."""

    __slots__ = ("op", "method", "regex", "literal_query", "required", "specificity", "labels")

    def __init__(self, op: OperationModel) -> None:
        self.op = op
        self.method = op.http.get("method", "POST")
        uri = op.http.get("requestUri", "/")
        path, _, query = uri.partition("?")
        pattern, pos, labels = [], 0, []
        for m in _LABEL.finditer(path):
            pattern.append(re.escape(path[pos:m.start()]))
            name = m.group(1)
            if name.endswith("+"):
                labels.append(name[:-1])
                pattern.append("(.+)")
            else:
                labels.append(name)
                pattern.append("([^/]+)")
            pos = m.end()
        pattern.append(re.escape(path[pos:]))
        body = "".join(pattern)
        if not body.endswith("/") and not path.endswith("+}"):
            body += "/?"
        self.regex = re.compile(f"^{body}$")
        self.labels = labels
        self.literal_query: dict[str, str | None] = {}
        for part in query.split("&") if query else []:
            k, eq, v = part.partition("=")
            if k != "x-id":  # botocore's hint; other clients leave it out
                self.literal_query[k] = v if eq else None
        shape = op.input_shape
        self.required: list[tuple[str, str]] = []
        if shape is not None:
            for name in shape.required_members:
                ser = shape.members[name].serialization
                if ser.get("location") in ("querystring", "header"):
                    self.required.append((ser["location"], ser.get("name", name).lower()
                                          if ser.get("location") == "header" else ser.get("name", name)))
        self.specificity = len(_LABEL.sub("", path))

    def match(self, request: Request, query: dict[str, str]) -> tuple | None:
        """How well this route fits ``request`` (its method already does), or None."""
        for k, v in self.literal_query.items():  # dict look-ups first: they rule out most routes
            if k not in query or (v is not None and query[k] != v):
                return None
        m = self.regex.match(request.raw_path)
        if m is None:
            return None
        present = 0
        for location, name in self.required:
            if (name in query) if location == "querystring" else (name in request.headers):
                present += 1
            else:
                return None
        return (len(self.literal_query), present, self.specificity, -len(self.labels)), m


@functools.lru_cache(maxsize=None)
def _routes(model: ServiceModel) -> dict[str, list[_Route]]:
    """The model's routes by HTTP method, in the model's order (which breaks ties)."""
    by_method: dict[str, list[_Route]] = {}
    for op in models.operations(model).values():
        route = _Route(op)
        by_method.setdefault(route.method, []).append(route)
    return by_method


def match_operation(model: ServiceModel, request: Request) -> tuple[OperationModel, dict[str, str]] | None:
    """The best-matching operation and its URI labels (percent-decoded)."""
    query = request.query_dict()
    best = None
    for route in _routes(model).get(request.method, ()):
        found = route.match(request, query)
        if found is not None and (best is None or found[0] > best[0]):
            best = (found[0], found[1], route)
    if best is None:
        return None
    try:  # not replaced: two keys whose bytes differ must not become one
        labels = {k: unquote(v, errors="strict") for k, v in zip(best[2].labels, best[1].groups())}
    except UnicodeDecodeError:
        raise ServiceError("InvalidURI", "Couldn't parse the specified URI.", status=400) from None
    return best[2].op, labels


class _InPlan:
    """How a REST operation's input shape is bound to a request, worked out once per shape
    (models are loaded once): each member's location, wire name and type, in model order."""

    __slots__ = ("members", "query_maps", "payload", "payload_member", "payload_kind", "body_members", "required")

    def __init__(self, shape: Shape) -> None:
        self.members: list[tuple[str, str, Shape, str, str, str]] = []
        self.query_maps: list[str] = []
        self.body_members = False
        for name, member in shape.members.items():
            ser = member.serialization
            location = ser.get("location")
            wire = ser.get("name", name)
            if location in ("uri", "querystring", "header", "headers"):
                self.members.append((location, name, member, wire, wire.lower(), member.type_name))
                if location == "querystring" and member.type_name == "map":
                    self.query_maps.append(name)
            elif location is None:
                self.body_members = True
        self.payload = shape.serialization.get("payload")
        self.payload_member = shape.members[self.payload] if self.payload else None
        self.payload_kind = ""
        if self.payload_member is not None:
            kind = self.payload_member.type_name
            streaming = self.payload_member.serialization.get("streaming")
            self.payload_kind = "stream" if kind == "blob" and streaming else kind
        self.required = list(shape.required_members)


_in_plan = functools.lru_cache(maxsize=None)(_InPlan)  # one plan per shape: models are loaded once


class _OutPlan:
    """Where a REST operation's output members go (headers, status code, body), per shape, once."""

    __slots__ = ("located", "body_names", "payload")

    def __init__(self, shape: Shape) -> None:
        self.located: list[tuple[str, str, Shape, str]] = []
        self.body_names: list[str] = []
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            if location is None:
                self.body_names.append(name)
            else:
                self.located.append((location, name, member, member.serialization.get("name", name)))
        self.payload = shape.serialization.get("payload")


_out_plan = functools.lru_cache(maxsize=None)(_OutPlan)


def _header_value(shape: Shape, text: str, name: str) -> Any:
    t = shape.type_name
    if t == "list":
        return [values.from_text(p.strip(), shape.member, name) for p in text.split(",") if p.strip()]
    if t == "timestamp":
        return values.parse_timestamp(text, name)
    if t == "string" and shape.serialization.get("jsonvalue"):
        try:
            return json.loads(base64.b64decode(text))
        except ValueError:
            raise ParamError("invalid", name, f"Invalid value for header {name}.") from None
    return values.from_text(text, shape, name)


def _header_text(shape: Shape, value: Any) -> str:
    if shape.type_name == "list":
        return ",".join(_header_text(shape.member, v) for v in value)
    if shape.type_name == "timestamp":
        return str(values.format_timestamp(value, shape.serialization.get("timestampFormat", "rfc822")))
    if shape.type_name == "string" and shape.serialization.get("jsonvalue"):
        return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()
    return values.to_text(value, shape)


class RestProtocol(Protocol):
    """What rest-json and rest-xml share: everything but the body's format."""

    content_type = ""

    def find_operation(self, model: ServiceModel, request: Request, body: bytes | None) -> OperationModel | None:
        found = match_operation(model, request)
        if found is None:
            return None
        request.state["uri_labels"] = found[1]
        return found[0]

    def parse(self, op: OperationModel, request: Request, body: bytes | None) -> dict[str, Any]:
        shape = op.input_shape
        if shape is None:
            return {}
        labels = request.state.get("uri_labels")
        if labels is None:
            labels = match_operation(op.service_model, request)[1]
        plan = _in_plan(shape)
        params: dict[str, Any] = {}
        query = request.query
        bound: set[str] = set()
        headers = request.headers
        for location, name, member, wire, low, kind in plan.members:
            if location == "uri":
                if wire in labels:
                    params[name] = values.from_text(labels[wire], member, name)
            elif location == "querystring":
                if kind == "map":
                    continue
                found = [v for k, v in query if k == wire] if query else []
                bound.add(wire)
                if not found:
                    continue
                if kind == "list":
                    params[name] = [values.from_text(v, member.member, name) for v in found]
                else:
                    params[name] = values.from_text(found[0], member, name)
            elif location == "header":
                if low in headers:
                    params[name] = _header_value(member, headers[low], wire)
            else:  # "headers": every header with the prefix
                found = {k[len(low):]: v for k, v in headers.items() if k.startswith(low)}
                if found:
                    params[name] = found
        for name in plan.query_maps:
            rest = {k: v for k, v in query if k not in bound}
            if rest:
                params[name] = rest
        payload = plan.payload
        if payload:
            member = plan.payload_member
            if plan.payload_kind == "stream":
                params[payload] = request
            elif plan.payload_kind in ("blob", "string"):
                if body:
                    params[payload] = body if plan.payload_kind == "blob" else body.decode("utf-8", "replace")
            elif body and body.strip():
                params[payload] = self.decode_body(member, body, payload=True)
        elif plan.body_members and body and body.strip():
            params.update(self.decode_body(shape, body, payload=False))
        for req in plan.required:
            if req not in params:
                raise ParamError("missing", req, f"The request must contain the parameter {req}.")
        return params

    def decode_body(self, shape: Shape, body: bytes, payload: bool) -> Any:
        raise NotImplementedError

    def encode_text_payload(self, member: Shape, value: Any) -> Any:
        """A blob or string payload goes out as it is (bytes, or an async stream of bytes)."""
        return value.encode() if isinstance(value, str) else value

    def encode_body(self, shape: Shape, value: Any, name: str) -> bytes:
        raise NotImplementedError

    def serialize(self, op: OperationModel, result: dict[str, Any] | None, request_id: str) -> Response:
        result = result or {}
        status = op.http.get("responseCode", 200)
        headers: list[tuple[str, str]] = self.request_id_headers(request_id)
        shape = op.output_shape
        body: Any = b""
        if shape is not None:
            plan = _out_plan(shape)
            has_body_members = False
            for name in plan.body_names:
                if result.get(name) is not None:
                    has_body_members = True
                    break
            for location, name, member, wire in plan.located:
                value = result.get(name)
                if value is None:
                    continue
                if location == "header":
                    headers.append((wire, _header_text(member, value)))
                elif location == "headers":
                    headers.extend((wire + k, str(v)) for k, v in value.items())
                elif location == "statusCode":
                    status = int(value)
            payload = plan.payload
            if payload:
                member = shape.members[payload]
                value = result.get(payload)
                if member.type_name in ("blob", "string"):
                    if value is not None:
                        body = self.encode_text_payload(member, value)
                elif value is not None:
                    body = self.encode_body(member, value, member.serialization.get("name", member.name))
                    headers.append(("content-type", self.content_type))
            elif has_body_members or self.always_body:
                body = self.encode_body(shape, result, shape.serialization.get("name") or op.name + "Result")
                headers.append(("content-type", self.content_type))
        if not any(k.lower() == "content-type" for k, _ in headers) and self.always_body:
            headers.append(("content-type", self.content_type))
        return Response(status, headers, body)

    always_body = False

    def request_id_headers(self, request_id: str) -> list[tuple[str, str]]:
        return [("x-amzn-requestid", request_id)]


class RestJsonProtocol(RestProtocol):
    name = "rest-json"
    content_type = "application/json"
    always_body = True

    def decode_body(self, shape: Shape, body: bytes, payload: bool) -> Any:
        data = awsjson.loads(body)
        if shape.type_name == "structure" and not isinstance(data, dict):
            raise SerializationError("Request body must be a JSON object.")
        if payload:
            return awsjson.decode(shape, data)
        by_wire = {m.serialization.get("name", n): n for n, m in shape.members.items()
                   if "location" not in m.serialization}
        result = {}
        for k, v in data.items():
            name = by_wire.get(k)
            if name is not None and v is not None:
                result[name] = awsjson.decode(shape.members[name], v, name)
        return result

    def encode_body(self, shape: Shape, value: Any, name: str) -> bytes:
        if shape.type_name == "structure":
            body = {}
            for key, member in shape.members.items():
                v = value.get(key)
                if v is None or "location" in member.serialization:
                    continue
                body[member.serialization.get("name", key)] = awsjson.encode(member, v)
            return awsjson.dumps(body)
        return awsjson.dumps(awsjson.encode(shape, value))

    def serialize_error(self, model: ServiceModel, error: ServiceError, request_id: str,
                        op: OperationModel | None = None) -> Response:
        resolved = ResolvedError(model, error)
        # the message goes under the key the error shape names (Lambda's and Scheduler's
        # ResourceNotFoundException say ``Message``), so the modeled member reaches clients
        key = next((m for m in (resolved.shape.members if resolved.shape is not None else ())
                    if m.lower() == "message"), "message")
        body: dict[str, Any] = {key: error.message}
        if model is not None and model.service_name == "lambda":
            body = {"Type": "User" if resolved.sender_fault else "Service", key: error.message}
        body.update(error.fields)
        headers = [("content-type", "application/json"), ("x-amzn-requestid", request_id),
                   ("x-amzn-errortype", resolved.code)] + list(error.headers.items())
        return Response(resolved.status, headers, awsjson.dumps(body))


class RestXmlProtocol(RestProtocol):
    name = "rest-xml"
    content_type = "application/xml"

    def request_id_headers(self, request_id: str) -> list[tuple[str, str]]:
        return [("x-amz-request-id", request_id), ("x-amz-id-2", request_id)]

    def decode_body(self, shape: Shape, body: bytes, payload: bool) -> Any:
        root = xml.parse(body)
        return xmlshape.from_xml(shape, root)

    def encode_body(self, shape: Shape, value: Any, name: str) -> bytes:
        ns = shape.serialization.get("xmlNamespace", {}).get("uri") or \
            shape.serialization.get("xmlNamespace") or self.namespace(shape)
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n']
        xmlshape.to_xml(shape, value, shape.serialization.get("name", name), out,
                        namespace=ns if isinstance(ns, str) else None)
        return "".join(out).encode()

    def encode_text_payload(self, member: Shape, value: Any) -> Any:
        if member.type_name == "string" and "name" in member.serialization:  # S3 GetBucketLocation
            return self.encode_body(member, value, member.serialization["name"])
        return super().encode_text_payload(member, value)

    def namespace(self, shape: Shape) -> str | None:
        return "http://s3.amazonaws.com/doc/2006-03-01/"

    def serialize_error(self, model: ServiceModel, error: ServiceError, request_id: str,
                        op: OperationModel | None = None) -> Response:
        resolved = ResolvedError(model, error)
        extra = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in error.fields.items())
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(resolved.code)}</Code><Message>{escape(error.message)}</Message>"
            f"{extra}<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
        )
        headers = [("content-type", "application/xml")] + self.request_id_headers(request_id) + \
            list(error.headers.items())
        return Response(resolved.status, headers, body.encode())
