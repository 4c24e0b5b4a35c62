"""The generic wire-protocol layer: requests become dicts, dicts become responses,
for every protocol botocore models describe (query, json, rest-json, rest-xml)."""

from unkai.protocol.awsjson import JsonProtocol
from unkai.protocol.base import Protocol, streaming_input
from unkai.protocol.cbor import CborProtocol
from unkai.protocol.errors import ParamError, SerializationError, ServiceError
from unkai.protocol.query import QueryProtocol
from unkai.protocol.rest import RestJsonProtocol, RestXmlProtocol

PROTOCOLS: dict[str, Protocol] = {
    p.name: p for p in (QueryProtocol(), JsonProtocol(), RestJsonProtocol(), RestXmlProtocol(), CborProtocol())
}

__all__ = ["PROTOCOLS", "ParamError", "Protocol", "SerializationError", "ServiceError", "streaming_input"]
