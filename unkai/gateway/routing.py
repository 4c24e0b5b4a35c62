"""Which service a request is for, the way AWS clients address it: the
``X-Amz-Target`` header, the SigV4 credential scope, the Host name, the query
``Action``, and S3 as the fallback for everything unsigned (browsers, curl)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from unkai.gateway.auth import Signature, read_signature
from unkai.http import Request
from unkai.protocol import models
from unkai.protocol.query import form_body

if TYPE_CHECKING:  # botocore.model is imported with the first model (it pulls in awscrt and urllib3)
    from botocore.model import ServiceModel

_SERVED = ("query", "json", "rest-json", "rest-xml")
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d$")


@dataclass
class Route:
    service: str
    protocol: str
    model: ServiceModel
    region: str
    signature: Signature | None


class _Models(Mapping):
    """Each served service's model, loaded on first use: routing needs only the few
    metadata fields in ``models.service_index``, and a model costs megabytes."""

    def __init__(self, names: list[str]) -> None:
        self._names = names

    def __getitem__(self, name: str) -> "ServiceModel":
        if name not in self._names:
            raise KeyError(name)
        return models.load_model(name)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class Router:
    def __init__(self, service_names: list[str], default_region: str) -> None:
        self.default_region = default_region
        self.models: Mapping[str, ServiceModel] = _Models(list(service_names))
        self.by_target: dict[str, str] = {}
        self.by_signing: dict[str, list[str]] = {}
        self.by_endpoint: dict[str, str] = {}
        self.query_services: list[str] = []
        self.protocols: dict[str, list[str]] = {}
        self.native: dict[str, str] = {}
        self._hosts: dict[str, tuple[str | None, str | None]] = {}
        index = models.service_index(service_names)
        for name in service_names:
            meta = index[name]
            if meta["target_prefix"]:
                self.by_target[meta["target_prefix"]] = name
            self.by_signing.setdefault(meta["signing_name"] or name, []).append(name)
            self.by_endpoint.setdefault(meta["endpoint_prefix"] or name, name)
            self.protocols[name] = meta["protocols"]
            self.native[name] = meta["protocols"][0]
            if "query" in self.protocols[name]:
                self.query_services.append(name)
        if "sqs" in self.models:
            self.by_endpoint["queue"] = "sqs"

    def resolve(self, request: Request, body: bytes | None) -> Route | None:
        sig = read_signature(request)
        region = sig.region if sig and sig.region else None
        host_service, host_region = self._from_host(request.host)
        region = region or host_region or self.default_region
        name = None
        target = request.headers.get("x-amz-target")
        if target:
            name = self.by_target.get(target.rpartition(".")[0])
            if name:
                # Kinesis also speaks JSON's CBOR twin (the Java SDK and the KCL use it)
                cbor = request.headers.get("content-type", "").startswith("application/x-amz-cbor")
                return Route(name, "cbor" if cbor else "json", self.models[name], region, sig)
        action = self._action(request, body)
        candidates: list[str] = []
        if sig and sig.service:
            candidates = self.by_signing.get(sig.service, [])
        elif host_service:
            candidates = [host_service]
        if action is not None:
            pool = [c for c in candidates if c in self.query_services] or (
                [] if candidates else self._query_owners(action, request)
            )
            for cand in pool:
                if action in models.operations(models.load_model(cand, "query")):
                    return Route(cand, "query", models.load_model(cand, "query"), region, sig)
            if pool:
                return Route(pool[0], "query", models.load_model(pool[0], "query"), region, sig)
        if len(candidates) > 1 and action is None:  # SES v1 (query) and v2 (rest-json) share "ses"
            candidates = [c for c in candidates if c not in self.query_services or "query" not in
                          self.protocols[c][:1]] or candidates
        if len(candidates) == 1:
            name = candidates[0]
        elif candidates:
            name = self._by_rest_match(candidates, request)
        if name is None and not sig and "s3" in self.models:
            name = "s3"
        if name is None:
            return None
        protocol = self.native[name]
        if protocol not in _SERVED:  # a protocol we do not speak (CloudWatch's CBOR): answer in one we do
            protocol = next((p for p in self.protocols[name] if p in _SERVED), "json")
        return Route(name, protocol, self.models[name], region, sig)

    def _from_host(self, host: str) -> tuple[str | None, str | None]:
        """Service and region from AWS host names: sqs.us-east-1.amazonaws.com,
        us-east-1.queue.amazonaws.com, streams.dynamodb.eu-west-1.amazonaws.com
        (worked out once per Host value: clients send the same few)."""
        found = self._hosts.get(host)
        if found is None:
            found = self._parse_host(host)
            if len(self._hosts) >= 1024:
                self._hosts.clear()
            self._hosts[host] = found
        return found

    def _parse_host(self, host: str) -> tuple[str | None, str | None]:
        host = host.lower().rsplit(":", 1)[0] if ":" in host and not host.endswith("]") else host.lower()
        for suffix in (".amazonaws.com", ".amazonaws.com.cn"):
            if host.endswith(suffix):
                labels = host[: -len(suffix)].split(".")
                break
        else:
            return None, None
        region = next((p for p in labels if _REGION.match(p)), None)
        rest = ".".join(p for p in labels if p != region)
        service = None
        for i in range(len(labels)):
            prefix = ".".join(p for p in labels[i:] if p != region)
            if prefix in self.by_endpoint:
                service = self.by_endpoint[prefix]
                break
        if service is None and any(p == "s3" or p.startswith("s3-") for p in rest.split(".")):
            service = "s3"
        return service, region

    @staticmethod
    def _action(request: Request, body: bytes | None) -> str | None:
        for k, v in request.query:
            if k == "Action":
                return v
        if body and "x-www-form-urlencoded" in request.headers.get("content-type", ""):
            for k, v in form_body(request, body):
                if k == "Action":
                    request.state["query_action"] = v
                    return v
        return None

    def _query_owners(self, action: str, request: Request) -> list[str]:
        owners = [s for s in self.query_services if action in models.operations(models.load_model(s, "query"))]
        if len(owners) > 1 and "sqs" in owners and not re.match(r"^/\d{12}/", request.raw_path):
            owners.remove("sqs")
        return owners

    def _by_rest_match(self, candidates: list[str], request: Request) -> str | None:
        from unkai.protocol.rest import match_operation

        for name in candidates:
            if match_operation(self.models[name], request) is not None:
                return name
        return candidates[0]
