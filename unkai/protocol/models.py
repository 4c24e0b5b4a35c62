"""botocore's service models, the single source of truth for every wire format.

Some models lost traits when AWS moved a service to a newer protocol (SQS's query
names), or never carried what a server needs (S3's XML root names). Small JSON
overlays in ``overlays/`` put those back; an overlay named ``<service>.<protocol>.json``
applies only when serving that protocol.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import botocore

if TYPE_CHECKING:  # botocore.loaders and .model are imported with the first model: they pull in awscrt and urllib3
    import botocore.loaders
    from botocore.model import OperationModel, ServiceModel

OVERLAYS = Path(__file__).with_name("overlays")


@functools.lru_cache(maxsize=None)
def _loader() -> botocore.loaders.Loader:
    import botocore.loaders

    return botocore.loaders.create_loader()


@functools.lru_cache(maxsize=None)
def _raw_model(service: str) -> dict:
    return _loader().load_service_model(service, "service-2")


def _patched(base: dict, patch: dict) -> dict:
    """``base`` with ``patch`` merged in, as a new dict sharing every part the patch leaves
    alone: the cached raw model stays as loaded, without a deep copy of it (~0.1-0.2 s of CPU
    for a large model, at a service's first request)."""
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = _patched(base[key], value)
        else:
            out[key] = value
    return out


@functools.lru_cache(maxsize=None)
def load_model(service: str, protocol: str | None = None) -> ServiceModel:
    """The service model, with overlays for ``protocol`` (default: the model's own)."""
    raw = _raw_model(service)
    native = raw["metadata"]["protocol"]
    protocol = protocol or native
    patches = [OVERLAYS / f"{service}.json"]
    if protocol != native:
        patches.append(OVERLAYS / f"{service}.{protocol}.json")
    patches = [p for p in patches if p.exists()]
    if patches:
        for p in patches:
            raw = _patched(raw, json.loads(p.read_text()))
        raw["metadata"] = {**raw["metadata"], "protocol": protocol}
    from botocore.model import ServiceModel

    return ServiceModel(raw, service_name=service)


def service_index(services: list[str]) -> dict[str, dict[str, Any]]:
    """What routing needs of each service's model (target prefix, signing name, endpoint
    prefix, the protocols served, its own first), without holding the models: kept in a
    small cache file per botocore version and overlay set, so that a start loads no model
    (31 models take about 40 MB and a third of a second to load). A missing or stale
    cache is rebuilt from the models and rewritten; an unwritable one is only slower."""
    key = _index_key()
    path = _cache_dir() / f"service-index-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    cached: dict[str, Any] = {}
    try:
        data = json.loads(path.read_text())
        if data.get("key") == key:
            cached = data["services"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    missing = [s for s in services if s not in cached]
    for service in missing:
        model = load_model(service)
        meta = model.metadata
        cached[service] = {"target_prefix": meta.get("targetPrefix") or "",
                           "signing_name": model.signing_name or "",
                           "endpoint_prefix": meta.get("endpointPrefix") or "",
                           "protocols": protocols(service)}
    if missing:
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"key": key, "services": cached}))
            tmp.replace(path)
    return {s: cached[s] for s in services}


def _index_key() -> str:
    """What the index depends on: botocore's version and data path, and every overlay file."""
    overlays = sorted(f"{p.name}:{p.stat().st_mtime_ns}:{p.stat().st_size}" for p in OVERLAYS.glob("*.json"))
    return json.dumps([botocore.__version__, os.path.dirname(botocore.__file__), overlays])


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "unkai"


def protocols(service: str) -> list[str]:
    """Every protocol we serve the service in: its own, plus any with an overlay."""
    raw = _raw_model(service)
    found = [raw["metadata"]["protocol"]]
    for p in OVERLAYS.glob(f"{service}.*.json"):
        proto = p.name.split(".")[1]
        if proto not in found:
            found.append(proto)
    return found


def operations(model: ServiceModel) -> dict[str, OperationModel]:
    return _operations(model)


@functools.lru_cache(maxsize=None)
def _operations(model: ServiceModel) -> dict[str, OperationModel]:
    return {name: model.operation_model(name) for name in model.operation_names}


def error_shape(model: ServiceModel, code: str) -> Any:
    """The modeled error shape for a shape name or wire code, or None."""
    return _errors(model).get(code)


@functools.lru_cache(maxsize=None)
def _errors(model: ServiceModel) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for shape in model.error_shapes:
        found.setdefault(shape.name, shape)
        found.setdefault(shape.error_code, shape)
    return found
