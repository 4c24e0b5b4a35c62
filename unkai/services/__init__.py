"""One package per AWS service, each holding only that service's logic over the store.

A service is a class with one method per operation, named as botocore names them
(``CreateQueue`` -> ``create_queue``), taking ``(ctx, params)`` and returning the
output as a plain dict. It never builds XML or JSON: the protocol layer does. It
raises ``ServiceError`` for AWS errors. A method may be ``async`` when it must
wait (long polling, invoking a function); otherwise the gateway runs it inside a
store transaction, so a sync operation is atomic and durable when answered.

Each service package exposes ``SERVICES``, a list of its Service classes; they are
found by ``discover()``, so adding a service touches no shared file.

A running cloud loads a package only when it is first needed (``unkai.cloud.Services``):
``catalog()`` says, without importing them, which services each package holds and what
they declare (resource types, routes outside the AWS APIs, whom they listen to), from a
small cache file rebuilt whenever a file under this folder changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import json
import os
import pkgutil
import sqlite3
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
    # Serves requests outside the AWS API routing (a gateway mount, an ``/_unkai/`` route,
    # websockets), set up in ``start()``: the package is loaded before such a request is
    # matched (a lazily loaded cloud), so the first one is answered as any later one.
    serves_routes: ClassVar[bool] = False
    # Environment variables that make ``start()`` listen on a port of its own (SMTP, MQTT):
    # when one is set the package is loaded as unkai starts, not at its first use.
    start_env: ClassVar[tuple[str, ...]] = ()
    # Services whose events this one listens to from ``start()`` (CloudWatch: Lambda's and
    # API Gateway's feed events, log lines): it is loaded together with any of them.
    listens_to: ClassVar[tuple[str, ...]] = ()

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


# -- the catalog: what each package holds, known without importing it ------------------------

CatalogEntry = dict[str, Any]  # package, resource_types, serves_routes, start_env, listens_to


def catalog() -> dict[str, Any]:
    """``{"services": {name: entry}, "migrations": [[component, steps], ...], "seeded": {table:
    rows}}``: every service by name with its package and what its class declares, every schema
    step their set-up runs, in order (so a cloud creates every table at start and a service
    loaded inside a transaction has none to create), and the tables that set-up fills (the
    default event bus), with how many rows; ``schema_file`` is a database holding all those
    tables, empty, which a new state directory is copied from. Read from a cache file keyed by every file under
    ``unkai/services`` (name, size, mtime), so a start imports none of the 40 packages; a
    missing, stale or corrupt cache is rebuilt by setting all of them up once in a scratch
    cloud, an unwritable one only costs that time at every start."""
    key = _catalog_key()
    path = cache_dir() / f"services-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    try:
        data = json.loads(path.read_text())
        if data.get("key") == key and isinstance(data.get("services"), dict) and \
                isinstance(data.get("migrations"), list) and isinstance(data.get("seeded"), dict):
            return data
    except (OSError, ValueError, AttributeError):
        pass
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        surveyed = _survey()
    else:  # a cloud made inside a running loop: the survey runs its own, in a thread
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1) as pool:
            surveyed = pool.submit(_survey).result()
    schema = surveyed.pop("schema")
    data = {"key": key, **surveyed}
    with contextlib.suppress(OSError, sqlite3.Error):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp_db = path.with_name(f"{path.stem}.{os.getpid()}.db.tmp")
        tmp_db.unlink(missing_ok=True)
        copy = sqlite3.connect(str(tmp_db))
        try:
            schema.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one plain file, opened read-only
        finally:
            copy.close()
        tmp_db.replace(path.with_suffix(".db"))
        data["schema_file"] = str(path.with_suffix(".db"))
    schema.close()
    with contextlib.suppress(OSError):
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)
        prune(path.parent, "services-*.json", ".db")
    return data


def prune(directory: "Path", pattern: str, *siblings: str, keep: int = 256, days: float = 7.0) -> None:
    """Drop cache files matching ``pattern`` (and their ``siblings`` suffixes) written more than
    ``days`` ago, and all but the newest ``keep``: one per source tree and edit (several
    checkouts share the cache), so an age, not a small count, decides (a count evicted other
    trees' files, which were then rebuilt)."""
    import time

    with contextlib.suppress(OSError):
        found = sorted(((p.stat().st_mtime, p) for p in directory.glob(pattern)), reverse=True)
        cutoff = time.time() - days * 86400
        for i, (mtime, old) in enumerate(found):
            if i >= keep or mtime < cutoff:
                old.unlink(missing_ok=True)
                for suffix in siblings:
                    old.with_suffix(suffix).unlink(missing_ok=True)


def _survey() -> dict[str, Any]:
    """Import every package and set up every service in a scratch cloud, noting the schema
    steps they run."""
    services = {name: describe(cls) for name, cls in sorted(discover().items())}
    # the scratch services must not open the ports their variables name (SMTP, MQTT)
    ports = {var: os.environ.pop(var) for e in services.values() for var in e["start_env"] if var in os.environ}
    try:
        return _survey_in(services)
    finally:
        os.environ.update(ports)


def _survey_in(services: dict[str, CatalogEntry]) -> dict[str, Any]:
    import tempfile
    from pathlib import Path

    from unkai.cloud import Cloud
    from unkai.config import Config
    from unkai.store import Store

    with tempfile.TemporaryDirectory(prefix="unkai-survey-") as tmp:
        store = Store(Path(tmp) / "unkai.db")
        try:
            cloud = Cloud(Config(state_dir=Path(tmp)), store, catalog={"services": services, "migrations": []})
            migrations: list[list[Any]] = []
            real = store.migrate

            def noted(component: str, steps: list[str]) -> None:
                migrations.append([component, list(steps)])
                real(component, steps)

            store.migrate = noted  # type: ignore[method-assign]
            for name in services:
                cloud.services[name]
            # every table, empty: what a new state directory starts from (``Cloud`` copies it in)
            schema = sqlite3.connect(":memory:", check_same_thread=False)
            store.db.backup(schema)
            schema.execute("DELETE FROM unkai_meta")
            schema.commit()
            asyncio.run(_start_and_stop(cloud))  # what start() sets up (API Gateway's usage plans' tables)
            seeded = {table: n for table, n in _row_counts(store).items() if n}
        finally:
            store.close()
    return {"services": services, "migrations": migrations, "seeded": seeded, "schema": schema}


def _row_counts(store: Any) -> dict[str, int]:
    tables = [n for (n,) in store.db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    return {t: store.db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


async def _start_and_stop(cloud: Any) -> None:
    from unkai.gateway import Gateway

    cloud.gateway = Gateway(cloud)
    try:
        await cloud.services.start()
    finally:
        await cloud.stop()


def describe(cls: type[Service]) -> CatalogEntry:
    """What the catalog keeps of a Service class."""
    return {"package": cls.__module__.split(".")[2], "resource_types": list(cls.resource_types),
            "serves_routes": cls.serves_routes, "start_env": list(cls.start_env),
            "listens_to": list(cls.listens_to), "local_urls": cls.local_url is not Service.local_url}


def package_services(package: str) -> list[type[Service]]:
    """The Service classes of one package (importing it)."""
    return list(getattr(importlib.import_module(f"{__name__}.{package}"), "SERVICES", []))


def _catalog_key() -> str:
    from unkai import __version__

    files = []
    for base, dirs, names in os.walk(__path__[0]):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            if name.endswith(".py"):
                st = os.stat(os.path.join(base, name))
                files.append(f"{os.path.relpath(os.path.join(base, name), __path__[0])}:{st.st_mtime_ns}:{st.st_size}")
    return json.dumps([__version__, __path__[0], sorted(files)])


def cache_dir() -> "Path":
    from pathlib import Path

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "unkai"
