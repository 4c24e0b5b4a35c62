"""What the MQTT broker tests share: a server of the module's own with the broker on a free
port, and where to reach it (its MQTT, WebSocket and device HTTPS ports and the CA to trust)."""

from __future__ import annotations

from typing import Any

import pytest


def mqtt_server(label: str) -> Any:
    """A module-scoped ``unkai`` fixture with the MQTT broker listening (``--mqtt-port 0``)."""

    @pytest.fixture(scope="module")
    def unkai(tmp_path_factory: pytest.TempPathFactory) -> Any:
        from unkai.testing import UnkaiServer

        with UnkaiServer(tmp_path_factory.mktemp(label) / "state", "--mqtt-port", "0").start() as server:
            yield server

    return unkai


@pytest.fixture(scope="module")
def iot(unkai: Any) -> Any:
    return unkai.client("iot")


@pytest.fixture(scope="module")
def broker(unkai: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    info = unkai.get("/_unkai/iot")
    ca = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.write_text(info["caPem"])
    return {"port": info["mqtt"]["port"], "wsPort": info["mqtt"]["wsPort"], "httpsPort": info["mqtt"]["httpsPort"],
            "ca": ca}
