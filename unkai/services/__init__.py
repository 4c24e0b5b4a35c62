"""One package per AWS service, each holding only that service's logic over the store.

A service is a class with one method per operation, named as botocore names them
(``CreateQueue`` -> ``create_queue``), taking ``(ctx, params)`` and returning the
output as a plain dict. It never builds XML or JSON: the protocol layer does. It
raises ``ServiceError`` for AWS errors. A method may be ``async`` when it must
wait (long polling, invoking a function); otherwise the gateway runs it inside a
store transaction, so a sync operation is atomic and durable when answered.

Each service package exposes ``SERVICES``, a list of its Service classes; they are
found by ``discover()``, so adding a service touches no shared file.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from botocore import xform_name

from unkai.protocol import ParamError, SerializationError, ServiceError

if TYPE_CHECKING:
    from pathlib import Path

    from unkai.cloud import Cloud
    from unkai.http import Request


@dataclass
class RequestContext:
    """Who is asking, where, and through which request."""

    service: str
    operation: str
    region: str
    account: str
    request_id: str
    request: "Request"
    protocol: str
    access_key: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """The scheme and host the client used to reach us (for URLs we hand back)."""
        host = self.request.host or "127.0.0.1"
        return f"{self.request.scheme}://{host}"

    @property
    def source_ip(self) -> str:
        return self.request.client


@dataclass
class ResourceContext:
    """Where a template's resource is being created: the stack and its surroundings."""

    region: str
    account: str
    stack_name: str
    stack_id: str
    base_dir: "Path"  # the template's directory: local paths (CodeUri...) are relative to it
    base_url: str  # http://127.0.0.1:4566, for URLs handed back (queue URLs...)

    def request_context(self, service: str, operation: str = "") -> RequestContext:
        """A RequestContext for calling this service's own operations from a provider."""
        from unkai.http import Headers, Request

        host = self.base_url.split("://", 1)[-1]
        request = Request("POST", "/", headers=Headers.from_dict({"host": host}))
        return RequestContext(service=service, operation=operation, region=self.region, account=self.account,
                              request_id="", request=request, protocol="internal")


@dataclass
class Provisioned:
    """A created resource: its physical id, what ``Ref`` gives, and its ``GetAtt`` values."""

    physical_id: str
    ref: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


class Service:
    """Base class: the plumbing every service shares."""

    name: ClassVar[str] = ""
    # SQL steps for this service's tables; the store runs each step once, ever.
    migrations: ClassVar[list[str]] = []
    # CloudFormation resource types this service creates for templates. For each, the
    # service implements create_resource / update_resource / delete_resource.
    resource_types: ClassVar[tuple[str, ...]] = ()
    # Operations AWS serves to unsigned requests even when signatures are verified
    # (SNS's SubscribeURL and UnsubscribeURL links).
    anonymous_operations: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, cloud: "Cloud") -> None:
        self.cloud = cloud
        self.store = cloud.store
        self.clock = cloud.clock
        self.config = cloud.config
        if self.migrations:
            self.store.migrate(self.name, self.migrations)

    async def start(self) -> None:
        """Begin background work (pollers, timers); called once the store is ready."""

    async def stop(self) -> None:
        """Stop background work."""

    async def pausing(self) -> None:
        """A reset is about to replace the store: stop background work that writes to it
        (pollers, timers, tasks); ``resetting`` restarts it."""

    async def resetting(self) -> None:
        """The store was just put back to a snapshot (``POST /_unkai/reset``): forget every
        in-memory cache derived from it and restart what ``pausing`` stopped. A service
        that caches rows must implement this, or it serves state from before the reset."""

    def handler(self, operation: str) -> Any:
        return getattr(self, _snake(operation), None)

    def check_unimplemented(self, ctx: RequestContext, operation: str, params: dict) -> None:
        """Before answering 501 for an operation unkai does not serve: raise the error AWS would
        answer first for this input (the named resource does not exist). Default: nothing."""

    def serialization_error(self, error: SerializationError, protocol: str) -> ServiceError:
        """The wire error for a body that cannot be decoded (S3 says MalformedXML)."""
        return error

    def param_error(self, error: ParamError, protocol: str) -> ServiceError:
        """The wire error for a missing or malformed parameter, per protocol family."""
        if protocol == "query":
            code = "MissingParameter" if error.kind == "missing" else "InvalidParameterValue"
            return ServiceError(code, error.message)
        if error.kind == "missing":
            return ServiceError(
                "ValidationException",
                f"1 validation error detected: Value null at '{_camel(error.name)}' failed to satisfy "
                "constraint: Member must not be null",
            )
        return ServiceError("ValidationException", error.message)

    # The largest request body an operation that is not streamed may send (None: the gateway's
    # 64 MB); larger ones are refused with 413 while they are read.
    max_body: ClassVar[int | None] = None

    def allows_origin(self, request: Any, origin: str) -> bool:
        """Whether a browser page on a foreign ``origin`` (or ``"cross-site"`` when the browser
        named none) may make this request: only where the resource's own CORS rules say so,
        as S3's bucket CORS does (docs/security.md)."""
        return False

    def pending(self) -> dict[str, int]:
        """Work this service still has in flight, for ``/_unkai/drain``."""
        return {}

    def metric_samples(self, when: float) -> list[tuple[str, str, str, str, list[dict], float, str]]:
        """The gauges AWS publishes once a minute for this service (SQS queue depths, SES
        reputation), as ``(account, region, namespace, name, dimensions, value, unit)``:
        CloudWatch asks at each minute boundary of unkai's clock ``when`` (docs/cloudwatch.md)."""
        return []

    def banner(self) -> list[str]:
        """Lines for the ``unkai up`` banner, e.g. an API's or a website's local URL."""
        return []

    def local_url(self, url: str) -> str | None:
        """The local URL serving an AWS URL this service owns (an execute-api or S3 website
        URL in a stack's Outputs), or None when the URL is not this service's."""
        return None

    # -- template resources (called inside a store transaction) ---------------------

    # By default these hand the work to the package's ``resources`` module, whose
    # ``create(service, ctx, type, logical_id, props)``, optional ``update(service, ctx, type,
    # logical_id, physical_id, old_props, props)`` and ``delete(service, ctx, type,
    # physical_id, props)`` hold the service's provisioning; imported on first use, so a
    # service's template code costs nothing until a template names one of its types.

    def _resources(self) -> Any:
        return importlib.import_module(type(self).__module__.rsplit(".", 1)[0] + ".resources")

    def create_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str,
                        props: dict[str, Any]) -> Provisioned:
        return self._resources().create(self, ctx, resource_type, logical_id, props)

    def update_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
                        old_props: dict[str, Any], props: dict[str, Any]) -> Provisioned:
        """The module's ``update``; when it has none or answers None (CloudFormation replaces the resource
        for that change), replace it: delete, then create."""
        update = getattr(self._resources(), "update", None)
        if update is not None:
            got = update(self, ctx, resource_type, logical_id, physical_id, old_props, props)
            if got is not None:
                return got
        self.delete_resource(ctx, resource_type, physical_id, old_props)
        return self.create_resource(ctx, resource_type, logical_id, props)

    def delete_resource(self, ctx: ResourceContext, resource_type: str, physical_id: str,
                        props: dict[str, Any]) -> None:
        self._resources().delete(self, ctx, resource_type, physical_id, props)


_SNAKE: dict[str, str] = {}


def _snake(operation: str) -> str:
    name = _SNAKE.get(operation)
    if name is None:
        name = _SNAKE[operation] = xform_name(operation)
    return name


def _camel(path: str) -> str:
    return ".".join(p[:1].lower() + p[1:] for p in path.split("."))


def discover() -> dict[str, type[Service]]:
    """Every Service class in the packages under ``unkai.services``, by service name."""
    found: dict[str, type[Service]] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for cls in getattr(module, "SERVICES", []):
            found[cls.name] = cls
    return found
