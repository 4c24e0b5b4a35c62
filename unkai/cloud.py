"""The running cloud: the store, the clock, background work and the services, wired
together once and handed to everything that needs them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unkai.clock import Clock
from unkai.config import Config
from unkai.jobs import Jobs
from unkai.signals import Signals
from unkai.store import Store

log = logging.getLogger("unkai")


class Cloud:
    def __init__(self, config: Config, store: Store) -> None:
        from unkai.feed import Feed
        from unkai.inbox import Inbox
        from unkai.mail import Mailbox
        from unkai.sealing import Sealer
        from unkai.services import discover

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
        self.services: dict[str, Any] = {}
        for name, cls in sorted(discover().items()):
            self.services[name] = cls(self)
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
        for name, service in self.services.items():
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
        for service in self.services.values():
            await service.start()

    async def open(self) -> None:
        """Once the server listens (its URL is known): deploy the template, then report ready.
        A template error is raised (TemplateError) and ``unkai up`` stops."""
        if self.config.template is not None:
            from unkai.template.runner import StackRunner
            from unkai.terraform.config import is_root_module

            if is_root_module(Path(self.config.template)):  # a directory of .tf files: unkai/terraform/
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
        for service in self.services.values():
            lines.extend(service.banner())
        return lines

    async def stop(self) -> None:
        if self.stack is not None:
            await self.stack.stop()
        for service in reversed(list(self.services.values())):
            try:
                await service.stop()
            except Exception:  # keep stopping the rest
                log.exception("error stopping %s", service.name)
        await self.jobs.stop()
        self.mailbox.flush_files()  # the .eml copies still waiting to be written


def _offset(saved: str | None) -> float:
    """The saved clock offset; a value an older unkai let through (inf, nan) reads as 0."""
    try:
        return float(saved or 0)
    except ValueError:
        return 0.0
