"""API Gateway tests move unkai's clock (throttling, token expiry, idle WebSockets),
which would upset other tests' timestamps: each module gets an unkai of its own."""

from __future__ import annotations

import pytest

from unkai.testing import UnkaiServer


@pytest.fixture(scope="module")
def unkai(tmp_path_factory):
    server = UnkaiServer(tmp_path_factory.mktemp("apigateway") / "state").start()
    try:
        yield server
    finally:
        server.stop()
