"""The AWS JSON protocols (1.0 and 1.1): ``X-Amz-Target`` routing, JSON bodies
(DynamoDB, SQS, SSM, CloudWatch Logs, EventBridge...), plus the JSON shape codec the
rest-json protocol reuses."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from unkai.http import Request, Response
from unkai.protocol import models, values
from unkai.protocol.base import Protocol, ResolvedError
from unkai.protocol.errors import ParamError, SerializationError, ServiceError

if TYPE_CHECKING:  # botocore.model is imported with the first model (it pulls in awscrt and urllib3)
    from botocore.model import OperationModel, ServiceModel, Shape

_SCALAR_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "character": (str,),
    "integer": (int,),
    "long": (int,),
    "short": (int,),
    "byte": (int,),
    "float": (int, float),
    "double": (int, float),
    "boolean": (bool,),
}


@functools.lru_cache(maxsize=None)
def _needs_walk(shape: Shape) -> bool:
    """Whether values of this shape hold blobs or timestamps that need converting, or
    structures whose wire names differ from their member names (rest-json's camelCase)."""
    return _walk_types(shape, set())


def _walk_types(shape: Shape, seen: set) -> bool:
    t = shape.type_name
    if t in ("blob", "timestamp"):
        return True
    if shape.name in seen:
        return False
    seen.add(shape.name)
    if t == "structure":
        if any(m.serialization.get("name", n) != n for n, m in shape.members.items()):
            return True
        return any(_walk_types(m, seen) for m in shape.members.values())
    if t == "list":
        return _walk_types(shape.member, seen)
    if t == "map":
        return _walk_types(shape.key, seen) or _walk_types(shape.value, seen)
    return False


@functools.lru_cache(maxsize=None)
def _wire_names(shape: Shape) -> dict[str, str]:
    """Wire name -> member name for a structure's members that are renamed on the wire."""
    return {m.serialization["name"]: n for n, m in shape.members.items()
            if m.serialization.get("name", n) != n and "location" not in m.serialization}


def _type_error(path: str, shape: Shape, value: Any) -> SerializationError:
    return SerializationError(
        f"Unexpected value type for '{path or 'body'}': expected {shape.type_name}, got {type(value).__name__}"
    )


def decode(shape: Shape, value: Any, path: str = "") -> Any:
    """Check and convert a decoded JSON value against its shape."""
    if value is None:
        return None
    return _decoder(shape)(value, path)


Decoder = Callable[[Any, str], Any]
@functools.lru_cache(maxsize=None)
def _decoder(shape: Shape) -> Decoder:
    """The checking and converting function for values of ``shape`` (never None), made once
    per shape: every request of an operation walks the same shapes, and a function made for
    the shape's type does it without asking the shape again at each value. A structure's
    members get theirs on first use, so a recursive model is unfolded only as deep as its
    values go."""
    t = shape.type_name
    if t == "structure":
        return _structure_decoder(shape)
    if t == "list":
        member_shape = shape.member

        def decode_list(value: Any, path: str) -> Any:
            if not isinstance(value, list):
                raise _type_error(path, shape, value)
            item = _decoder(member_shape)
            return [None if v is None else item(v, path) for v in value]
        return decode_list
    if t == "map":
        value_shape = shape.value

        def decode_map(value: Any, path: str) -> Any:
            if not isinstance(value, dict):
                raise _type_error(path, shape, value)
            item = _decoder(value_shape)
            return {k: None if v is None else item(v, f"{path}.{k}") for k, v in value.items()}
        return decode_map
    if t == "blob":
        return values.b64decode
    if t == "timestamp":
        return values.parse_timestamp
    expected = _SCALAR_TYPES.get(t)
    if not expected:
        return lambda value, path: value
    if t == "boolean":
        def decode_boolean(value: Any, path: str) -> Any:
            if value is True or value is False:
                return value
            raise _type_error(path, shape, value)
        return decode_boolean

    def decode_scalar(value: Any, path: str) -> Any:
        if isinstance(value, expected) and value is not True and value is not False:
            return value
        raise _type_error(path, shape, value)
    return decode_scalar


def _structure_decoder(shape: Shape) -> Decoder:
    required = tuple(shape.required_members)
    # accepted key -> [member name, member shape, its decoder (made on first use), whether a str
    # value is taken as it is (a string member: most members of most requests)]
    table: dict[str, list[Any]] | None = None

    def decode_structure(value: Any, path: str) -> Any:
        nonlocal table
        if not isinstance(value, dict):
            raise _type_error(path, shape, value)
        if table is None:  # a key is a member's name, or its wire name (which wins), as decode always read it
            members = shape.members
            table = {name: [name, member, None, member.type_name in ("string", "character")]
                     for name, member in members.items()}
            table.update((key, [name, members[name], None, members[name].type_name in ("string", "character")])
                         for key, name in _wire_names(shape).items())
        result = {}
        for key, v in value.items():
            found = table.get(key)
            if found is None or v is None:
                continue
            name, member, decoder, text = found
            if text and type(v) is str:  # JSON text decodes to str itself, never a subclass
                result[name] = v
                continue
            if decoder is None:
                decoder = found[2] = _decoder(member)
            result[name] = decoder(v, f"{path}.{name}" if path else name)
        for req in required:
            if req not in result:
                full = f"{path}.{req}" if path else req
                raise ParamError("missing", full, f"The request must contain the parameter {full}.")
        return result
    return decode_structure


@functools.lru_cache(maxsize=None)
def _out_members(shape: Shape) -> dict[str, tuple[str, Shape, bool]]:
    """Member name -> (wire name, shape, whether its values need walking), per structure."""
    return {key: (m.serialization.get("name", key), m, _needs_walk(m)) for key, m in shape.members.items()}


def encode(shape: Shape, value: Any, ts_format: str = "unixTimestamp") -> Any:
    """A JSON-ready version of a service's result value (parts that need no change are
    shared with it, not copied)."""
    if value is None:
        return None
    t = shape.type_name
    if t == "structure":
        members = _out_members(shape)
        if len(value) == 1:  # a union's one member (DynamoDB's AttributeValue), or a one-field result
            (key, v), = value.items()
            found = members.get(key)
            if found is None or v is None:
                return {}
            wire, member, walk = found
            if walk:
                return {wire: encode(member, v, ts_format)}
            return value if wire == key else {wire: v}
        out = {}
        for key, (wire, member, walk) in members.items():
            v = value.get(key)
            if v is not None:
                out[wire] = encode(member, v, ts_format) if walk else v
        return out
    if t == "list":
        member = shape.member
        if not _needs_walk(member):
            return value
        return [encode(member, v, ts_format) for v in value]
    if t == "map":
        member = shape.value
        if not _needs_walk(member):
            return value
        return {k: encode(member, v, ts_format) for k, v in value.items()}
    if t == "blob":
        return values.b64encode(value)
    if t == "timestamp":
        return values.format_timestamp(value, shape.serialization.get("timestampFormat", ts_format))
    return value


def loads(body: bytes) -> Any:
    if not body or not body.strip():
        return {}
    data = fast_loads(body)
    if data is not NOT_READ:
        return data
    try:
        # an object's text as every SDK sends it (UTF-8, no BOM) decoded here, as json.loads
        # would after looking for another encoding
        data = json.loads(body.decode("utf-8", "surrogatepass") if body[:1] == b"{" and body[1:2] != b"\x00"
                          else body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SerializationError(f"Could not parse request body into json: {exc}") from None
    except RecursionError:  # nested deeper than Python's parser goes: no service takes that
        raise SerializationError("Could not parse request body into json: nested too deeply") from None
    if _SURROGATE.search(body):  # a \ud800 escape: fine in a pair, not alone (it is no character)
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise SerializationError("Could not parse request body into json: a string holds an unpaired "
                                     "UTF-16 surrogate") from None
    return data


NOT_READ = object()  # what fast_loads answers for a text it leaves to the json module

# a run of 19 digits, found by mapping every digit to "0" and all else to " " (a regex takes
# ten times longer to scan a text for it)
_DIGITS = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
_LONG_RUN = b"0" * 19


def fast_loads(text: bytes | str) -> Any:
    """``json.loads(text)`` by orjson, several times faster, where it gives the same value;
    ``NOT_READ`` where it would not, for the caller's json module to read (and refuse).
    orjson makes a float of an integer past 64 bits (so a text with a run of 19 digits is
    left alone) and refuses more than json does: NaN, Infinity, a number past a double, a
    lone surrogate, a BOM, bytes that are not UTF-8, deep nesting."""
    if len(text) >= 19:
        raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
        if _LONG_RUN in raw.translate(_DIGITS):
            return NOT_READ
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return NOT_READ
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode  # built once, not per call


def dumps(data: Any) -> bytes:
    """JSON text as UTF-8 bytes, written by orjson (several times faster than the json
    module); what orjson does not write (an integer past 64 bits, a key that is not text, a
    lone surrogate) is written, or refused, by the json module as before. A float NaN or
    infinity, which JSON has no literal for, is written as null."""
    try:
        return orjson.dumps(data)
    except TypeError:
        return _ENCODE(data).encode()


_PLANS: dict[Any, tuple[Any, str]] = {}  # operation -> (output shape, content type)


class JsonProtocol(Protocol):
    name = "json"

    def find_operation(self, model: ServiceModel, request: Request, body: bytes | None) -> OperationModel | None:
        target = request.headers.get("x-amz-target", "")
        prefix, _, action = target.rpartition(".")
        if prefix != model.metadata.get("targetPrefix"):
            return None
        return models.operations(model).get(action)

    def parse(self, op: OperationModel, request: Request, body: bytes | None) -> dict[str, Any]:
        data = loads(body or b"")
        shape = op.input_shape
        if shape is None:
            return {}
        if not isinstance(data, dict):
            raise SerializationError("Request body must be a JSON object.")
        return decode(shape, data)

    def content_type(self, model: ServiceModel) -> str:
        return f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.0')}"

    def serialize(self, op: OperationModel, result: dict[str, Any] | None, request_id: str) -> Response:
        plan = _PLANS.get(op)
        if plan is None:  # what every response of this operation shares, worked out once
            plan = _PLANS[op] = (op.output_shape, self.content_type(op.service_model))
        shape, ctype = plan
        data = encode(shape, result or {}) if shape is not None else {}
        return Response(200, [("content-type", ctype), ("x-amzn-requestid", request_id)], dumps(data))

    def serialize_error(self, model: ServiceModel, error: ServiceError, request_id: str,
                        op: OperationModel | None = None) -> Response:
        resolved = ResolvedError(model, error)
        prefix = _error_prefix(model)
        body: dict[str, Any] = {"__type": f"{prefix}#{resolved.name}", "message": error.message}
        body.update(error.fields)
        headers = [("content-type", self.content_type(model) if model else "application/x-amz-json-1.0"),
                   ("x-amzn-requestid", request_id)]
        if model is not None and "awsQueryCompatible" in model.metadata:
            query = ResolvedError(models.load_model(model.service_name, "query"), error)
            fault = "Sender" if query.sender_fault else "Receiver"
            headers.append(("x-amzn-query-error", f"{query.code};{fault}"))
        headers += list(error.headers.items())
        return Response(resolved.status, headers, dumps(body))


def _error_prefix(model: ServiceModel | None) -> str:
    if model is None:
        return "com.amazon.coral.service"
    if model.service_name == "dynamodb" or model.service_name == "dynamodbstreams":
        return "com.amazonaws.dynamodb.v20120810"
    return f"com.amazonaws.{model.metadata.get('endpointPrefix', model.service_name)}"
