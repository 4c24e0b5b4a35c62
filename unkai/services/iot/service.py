"""AWS IoT Core's control plane (botocore's ``iot``, rest-json): the registry,
certificates from a local CA, policies with versions and attachments, topic rules.

The class is put together from one mixin per concern (``registry.py``, ``security.py``,
``rules.py``, ``indexing.py``, ``jobs.py``, ``authorizers.py``); the data plane (``iot-data``: publish, retained messages, shadows) is the
``IoTData`` service in ``data.py``, and the MQTT broker (``broker.py``) is started by it.
"""

from __future__ import annotations

from typing import Any

from unkai.services import RequestContext, Service
from unkai.services.iot import errors, resources
from unkai.services.iot.authorizers import AuthorizerOps
from unkai.services.iot.certificates import Authority
from unkai.services.iot.indexing import IndexingOps
from unkai.services.iot.jobs import JobOps
from unkai.services.iot.model import MIGRATIONS
from unkai.services.iot.registry import RegistryOps
from unkai.services.iot.rules import Engine, RuleOps
from unkai.services.iot.security import SecurityOps

ENDPOINT_TYPES = ("iot:Data", "iot:Data-ATS", "iot:CredentialProvider", "iot:Jobs")


class IoT(RegistryOps, IndexingOps, SecurityOps, RuleOps, JobOps, AuthorizerOps, Service):
    name = "iot"
    migrations = MIGRATIONS
    resource_types = resources.TYPES

    def check_unimplemented(self, ctx: RequestContext, operation: str, params: dict) -> None:
        """An operation unkai does not serve still answers ResourceNotFoundException for a missing thing first, as AWS does."""
        if isinstance(params.get("thingName"), str):
            self._thing(ctx, params["thingName"])

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.authority = Authority(self.config.state_dir / "iot")
        self.engine = Engine(cloud)
        self.listeners: list[Any] = []  # called when attachments change (the broker re-reads policies)

    async def resetting(self) -> None:
        self.engine.forget()
        self._policies_changed()

    def _policies_changed(self) -> None:
        for listener in self.listeners:
            self.store.after_commit(listener)

    def describe_endpoint(self, ctx: RequestContext, params: dict) -> dict:
        kind = params.get("endpointType") or "iot:Data"
        if kind not in ENDPOINT_TYPES:
            raise errors.invalid(f"Endpoint type {kind} is not valid.")
        # unkai serves the data plane on its own address; the MQTT broker's port is in
        # GET /_unkai/iot (docs/iot.md)
        return {"endpointAddress": ctx.request.host or f"127.0.0.1:{self.config.port}"}
