"""The running cloud: the store, the clock, background work and the services, wired
together once and handed to everything that needs them.

Services are loaded on first use (``Services``): importing and setting up all 40 of them
cost most of a bare start's CPU and memory, and a stack uses a few. Every table is created
at start (from the catalog's schema, so loading never changes the schema inside a request's
transaction); a package is imported, set up and its background work started at its first
request, template resource or cross-service call, and at start when its tables hold rows
or jobs wait for it (a queue with pending work, schedules, pollers resume without a
request). Since a package that was never loaded holds no state, what it would answer
before loading is what it answers after; ``Services`` loads a package before the requests
its own routes (mounts, ``/_unkai/`` pages, websockets) might serve, and with the services
it listens to.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from unkai.clock import Clock
from unkai.config import Config
from unkai.jobs import Jobs
from unkai.signals import Signals
from unkai.store import Store

log = logging.getLogger("unkai")


class Cloud:
    def __init__(self, config: Config, store: Store, catalog: dict[str, Any] | None = None) -> None:
        from unkai.feed import Feed
        from unkai.inbox import Inbox
        from unkai.mail import Mailbox
        from unkai.sealing import Sealer
        from unkai.services import catalog as read_catalog

        self.config = config
        self.store = store
        self.clock = Clock(_offset(store.get_meta("clock_offset", "0")))
        self.clock.on_advance(self._save_offset)
        self.signals = Signals(self.clock)
        self.jobs = Jobs(store, self.clock, self.signals)
        self.feed = Feed(self.clock, self.signals)  # what happens, for the terminal, dashboard and tests
        self.sealer = Sealer(config.state_dir)  # secrets at rest (SecureStrings, secrets, key material)
        self.mailbox = Mailbox(self)
        self.inbox = Inbox(self)
        self._probes: list[Callable[[], dict[str, int]]] = [self.jobs.due_pending]
        catalog = catalog or read_catalog()
        _from_schema_file(store, catalog)  # a new state directory: every table at once
        for component, steps in catalog["migrations"]:  # every table, so no load inside a transaction makes one
            store.migrate(component, steps)
        self.services = Services(self, catalog["services"], catalog.get("seeded", {}))
        self.jobs.missing = self.services.load_for_job  # a job whose service is not loaded yet
        self.started = False
        self.stack = None  # the StackRunner of `unkai up TEMPLATE`
        from unkai.reset import Resetter

        self.resetter = Resetter(self)  # POST /_unkai/reset: back to the state once ready

    def service(self, name: str) -> Any:
        return self.services[name]

    def call(self, service: str, operation: str, params: dict[str, Any], region: str | None = None) -> Any:
        """Run an API operation in-process, as a client request would (used to create a
        template's resources and by services that act on others). Raises ServiceError."""
        import inspect
        import uuid

        from unkai.http import Headers, Request
        from unkai.services import RequestContext

        host = self.config.endpoint.split("://", 1)[1]
        request = Request("POST", "/", headers=Headers.from_dict({"host": host}))
        ctx = RequestContext(service=service, operation=operation, region=region or self.config.region,
                             account=self.config.account_id, request_id=str(uuid.uuid4()), request=request,
                             protocol="internal")
        handler = self.services[service].handler(operation)
        if handler is None or inspect.iscoroutinefunction(handler):
            raise ValueError(f"{service}:{operation} cannot be called in-process")
        with self.store.transaction():
            return handler(ctx, params)

    def _save_offset(self, offset: float) -> None:
        with self.store.transaction():
            self.store.set_meta("clock_offset", repr(offset))

    def add_pending_probe(self, probe: Callable[[], dict[str, int]]) -> None:
        """Register a source of unfinished work for ``drain``."""
        self._probes.append(probe)

    def pending(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for probe in self._probes:
            for k, v in probe().items():
                if v:
                    found[k] = found.get(k, 0) + v
        for name, service in list(self.services.loaded().items()):
            for k, v in service.pending().items():
                if v:
                    found[f"{name}.{k}"] = v
        return found

    async def drain(self, timeout: float, ignore: tuple[str, ...] = ()) -> dict[str, int]:
        """Wait until no work is pending (or the timeout passes); what is left. Kinds of work
        whose name ends with one of ``ignore`` are not waited for."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet = 0
        while True:
            left = {k: v for k, v in self.pending().items() if not k.endswith(ignore)} if ignore else self.pending()
            quiet = quiet + 1 if not left else 0
            if quiet >= 2:  # twice in a row: nothing was mid-handoff between two parts
                return {}
            if loop.time() >= deadline:
                return left
            await asyncio.sleep(0.005 if quiet else 0.01)

    async def start(self) -> None:
        self.jobs.start()
        self.services.load_at_start()
        await self.services.start()

    async def open(self) -> None:
        """Once the server listens (its URL is known): deploy the template, then report ready.
        A template error is raised (TemplateError) and ``unkai up`` stops."""
        if self.config.template is not None:
            from unkai.template.runner import StackRunner

            where = Path(self.config.template)
            if where.is_dir() and any(where.glob("*.tf")) and _is_root_module(where):  # .tf files: unkai/terraform/
                from unkai.terraform.runner import TerraformRunner

                self.stack = TerraformRunner(self, Path(self.config.template), self.config.region,
                                             self.config.tf_var_files, self.config.tf_vars)
            else:
                self.stack = StackRunner(self, self.config.template, self.config.stack_name, self.config.region,
                                         self.config.parameter_overrides)
            await self.stack.start()
        await self.resetter.settle_and_take()
        self.started = True

    @property
    def banner(self) -> list[str]:
        """Lines for the startup banner: the stack and what services offer (API URLs...)."""
        lines = list(self.stack.banner()) if self.stack is not None else []
        for service in list(self.services.loaded().values()):
            lines.extend(service.banner())
        return lines

    async def stop(self) -> None:
        if self.stack is not None:
            await self.stack.stop()
        self.services.running = False
        for service in reversed(list(self.services.loaded().values())):
            try:
                await service.stop()
            except Exception:  # keep stopping the rest
                log.exception("error stopping %s", service.name)
        await self.jobs.stop()


def _is_root_module(path: Path) -> bool:
    from unkai.terraform.config import is_root_module  # the HCL reader: only for a directory of .tf files

    return is_root_module(path)


def _offset(saved: str | None) -> float:
    """The saved clock offset; a value an older unkai let through (inf, nan) reads as 0."""
    try:
        return float(saved or 0)
    except ValueError:
        return 0.0


def _from_schema_file(store: Store, catalog: dict[str, Any]) -> None:
    """Copy the catalog's empty database (every service's tables) over a store that holds
    nothing yet: a page copy instead of running ~300 schema statements (~25 ms of a ~250 ms
    start). Any doubt (a row anywhere, a schema version the file does not have, no file)
    leaves the store to the migrations."""
    import sqlite3

    path = catalog.get("schema_file")
    if not path or store.in_transaction:
        return
    try:
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return
    try:
        theirs = dict(source.execute("SELECT component, version FROM unkai_schema").fetchall())
        ours = dict(store.db.execute("SELECT component, version FROM unkai_schema").fetchall())
        if any(theirs.get(c) != v for c, v in ours.items()):
            return
        tables = [n for (n,) in store.db.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                                 "AND name NOT LIKE 'sqlite_%' AND name != 'unkai_schema'")]
        if any(store.db.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchone() for t in tables):
            return
        source.backup(store.db)
    except sqlite3.Error:
        log.debug("the catalog's schema file was not used", exc_info=True)
    finally:
        source.close()


class Services(Mapping[str, Any]):
    """The services by name, each package loaded at first use. ``in``, ``len`` and iteration
    cover every service unkai serves without loading one; ``services[name]`` (and ``get``)
    loads the service's package: imports it, creates each of its services (their tables exist
    from start), starts them when the cloud is running, and loads the services that listen to them.
    ``loaded()`` is what is loaded, for the work that concerns only services holding state
    (pending work, banners, stopping, resetting, minute samples)."""

    def __init__(self, cloud: Cloud, entries: dict[str, dict[str, Any]], seeded: dict[str, int] | None = None) -> None:
        self._cloud = cloud
        self._seeded = seeded or {}  # tables a service's set-up fills (the default event bus): rows that are no state
        self._entries = entries
        self._loaded: dict[str, Any] = {}
        self._packages: set[str] = set()
        self._started: set[str] = set()
        self._finishing: set[asyncio.Task] = set()  # starts still running: held, as asyncio holds tasks weakly
        self.running = False  # start() ran: a package loaded from now on starts at once
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._listeners: dict[str, set[str]] = {}  # service -> packages listening to it
        for entry in entries.values():
            for name in entry.get("listens_to", ()):
                if name in entries:
                    self._listeners.setdefault(name, set()).add(entry["package"])
        self._routes_asleep = {e["package"] for e in entries.values() if e.get("serves_routes")}

    # -- the mapping ----------------------------------------------------------------------

    def __getitem__(self, name: str) -> Any:
        service = self._loaded.get(name)
        if service is None:
            entry = self._entries.get(name)
            if entry is None:
                raise KeyError(name)
            self.load(entry["package"])
            service = self._loaded.get(name)
            if service is None:  # asked for by a sibling while its package is being set up
                raise KeyError(name)
        return service

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def loaded(self) -> dict[str, Any]:
        """The services loaded so far, in the order they were."""
        return self._loaded

    def url_rewriters(self) -> list[Any]:
        """The services that know local URLs for AWS URLs (``Service.local_url``: API Gateway's
        execute-api, S3 websites), loaded: the rewrite is the URL's, not the state's."""
        return [self[name] for name, entry in self._entries.items() if entry.get("local_urls")]

    def resource_types(self) -> dict[str, str]:
        """Every resource type a service provisions -> that service's name."""
        return {t: name for name, entry in self._entries.items() for t in entry.get("resource_types", ())}

    # -- loading --------------------------------------------------------------------------

    def load(self, package: str) -> None:
        """Import ``package`` and set up its services (once); from another thread than the
        cloud's loop, the loop does it (a service's start belongs to the loop)."""
        if package in self._packages:
            return
        if self._loop is not None and threading.get_ident() != self._loop_thread and self._loop.is_running():
            done: concurrent.futures.Future[None] = concurrent.futures.Future()

            def there() -> None:
                try:
                    self.load(package)
                    done.set_result(None)
                except BaseException as exc:  # handed to the waiting thread
                    done.set_exception(exc)

            self._loop.call_soon_threadsafe(there)
            done.result()
            return
        from unkai.services import package_services

        self._packages.add(package)  # first: a service's set-up may ask for a sibling or another service
        self._routes_asleep.discard(package)
        resetter = getattr(self._cloud, "resetter", None)
        before = resetter.schema_now() if resetter is not None else None
        made = []
        try:
            for cls in sorted(package_services(package), key=lambda c: c.name):
                self._loaded[cls.name] = cls(self._cloud)
                made.append(cls.name)
        except BaseException:
            for name in made:
                self._loaded.pop(name, None)
            self._packages.discard(package)
            raise
        log.debug("loaded %s (%s)", package, ", ".join(made))
        if self.running:
            try:
                for name in made:
                    self._start_now(name)
            except BaseException:  # not left half started: the next use loads it again
                for name in made:
                    self._loaded.pop(name, None)
                    self._started.discard(name)
                self._packages.discard(package)
                raise
        if resetter is not None and before is not None:
            resetter.adopt(before)  # the snapshots get the new tables, as if it had been loaded then
        for name in made:
            for listener in sorted(self._listeners.get(name, ())):
                self.load(listener)

    def load_at_start(self) -> None:
        """The packages that must run from the start: those whose tables hold rows (queues,
        schedules, pollers, mappings resume without a request), those jobs wait for, and
        those configured to listen on a port of their own."""
        import os

        store = self._cloud.store
        by_prefix: dict[str, str] = {}
        for name, entry in self._entries.items():
            by_prefix[entry["package"]] = entry["package"]
            by_prefix[name.replace("-", "_")] = entry["package"]
        wanted: set[str] = set()
        tables = [n for (n,) in store.db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            package = by_prefix.get(table.split("_", 1)[0])
            if package is None or package in wanted:
                continue
            seeded = self._seeded.get(table)
            if seeded is None:
                held = store.db.execute(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone() is not None
            else:
                held = store.db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] != seeded
            if held:
                wanted.add(package)
        if "unkai_jobs" in tables:
            for (kind,) in store.db.execute("SELECT DISTINCT kind FROM unkai_jobs"):
                wanted.update(self._job_packages(kind))
        for entry in self._entries.values():
            if any(os.environ.get(var) for var in entry.get("start_env", ())):
                wanted.add(entry["package"])
        for package in sorted(wanted):
            self.load(package)

    async def start(self) -> None:
        """Start what is loaded (``Cloud.start``); whatever loads later starts as it loads."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self.running = True
        while True:
            todo = [name for name in self._loaded if name not in self._started]
            if not todo:
                return
            for name in todo:
                self._started.add(name)
                await self._loaded[name].start()

    def _start_now(self, name: str) -> None:
        """Run a service's ``start()`` to its end now when it never waits (all do unless they
        open a port, and those load at start); else its rest runs in a task."""
        self._started.add(name)
        coro = self._loaded[name].start()
        # in a context of its own: what it starts (dispatchers, pollers, timers) must not keep the
        # context of the request or poller that happened to load it (its trace, its trigger)
        context = contextvars.Context()
        try:
            waiting = context.run(coro.send, None)
        except StopIteration:
            return
        task = asyncio.get_running_loop().create_task(_finish(coro, waiting), context=context)
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    def _job_packages(self, kind: str) -> list[str]:
        entry = self._entries.get(kind.split(".", 1)[0])
        return [entry["package"]] if entry is not None else sorted({e["package"] for e in self._entries.values()})

    async def load_for_job(self, kind: str) -> None:
        """A due job of ``kind`` has no handler: load the service it belongs to."""
        for package in self._job_packages(kind):
            self.load(package)

    def wake_routes(self) -> bool:
        """Load the packages that serve routes of their own and are not loaded yet (before a
        request one of them might answer); whether any was."""
        asleep = sorted(self._routes_asleep)
        for package in asleep:
            self.load(package)
        return bool(asleep)

    @property
    def routes_asleep(self) -> bool:
        return bool(self._routes_asleep)


async def _finish(coro: Any, waiting: Any) -> None:
    """Drive the rest of a coroutine already run up to its first wait on ``waiting``."""
    while True:
        try:
            if waiting is None:  # a bare yield (asyncio.sleep(0))
                await asyncio.sleep(0)
            else:
                await waiting
        except BaseException as exc:  # hand the failure to the coroutine, as a task would
            try:
                waiting = coro.throw(exc)
            except StopIteration:
                return
            continue
        try:
            waiting = coro.send(None)
        except StopIteration:
            return
