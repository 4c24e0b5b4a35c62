"""Helpers for tests that deploy Python functions to unkai."""

from __future__ import annotations

import io
import json
import textwrap
import uuid
import zipfile
from typing import Any

ROLE = "arn:aws:iam::000000000000:role/lambda-role"


def zip_of(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, textwrap.dedent(text))
    return buf.getvalue()


def deploy(lam: Any, code: str, handler: str = "app.handler", name: str | None = None, files: dict | None = None,
           **config: Any) -> str:
    """Create a function from the source of ``app.py``; its name."""
    name = name or f"fn-{uuid.uuid4().hex[:10]}"
    lam.create_function(FunctionName=name, Runtime=config.pop("Runtime", "python3.11"), Role=ROLE, Handler=handler,
                        Code={"ZipFile": zip_of({"app.py": code, **(files or {})})}, **config)
    return name


def call(lam: Any, name: str, event: Any = None, **kwargs: Any) -> tuple[dict, Any]:
    """Invoke synchronously: (response, decoded payload)."""
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(event if event is not None else {}), **kwargs)
    raw = resp["Payload"].read()
    return resp, json.loads(raw) if raw else None


def private_server(label: str) -> Any:
    """A module-scoped ``unkai`` fixture of the module's own, for tests that move the clock
    (the session-wide server's clock must keep following wall time for everyone else)."""
    import pytest

    from unkai.testing import UnkaiServer

    @pytest.fixture(scope="module")
    def unkai(tmp_path_factory: Any) -> Any:
        server = UnkaiServer(tmp_path_factory.mktemp(label) / "state").start()
        try:
            yield server
        finally:
            server.stop()

    return unkai
