"""The MQTT broker (placeholder until the broker lands)."""

from __future__ import annotations

from typing import Any


class Broker:
    def __init__(self, cloud: Any, data: Any) -> None:
        self.cloud, self.data = cloud, data

    async def start_if_configured(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def address(self) -> dict | None:
        return None
