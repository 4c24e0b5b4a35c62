"""What every event-source poller shares: its mapping, its tasks, stopping."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unkai.pollers import Mappings


class Poller:
    def __init__(self, mappings: "Mappings", uid: str, config: dict) -> None:
        self.mappings = mappings
        self.cloud = mappings.cloud
        self.uid = uid
        self.config = config
        self.arn = config["EventSourceArn"]
        self.region = self.arn.split(":")[3]
        self.account = self.arn.split(":")[4]
        self.filters = mappings.compile_filters(config)
        self.tasks: list[asyncio.Task] = []

    def start(self) -> None:
        raise NotImplementedError

    def pending(self) -> int:
        raise NotImplementedError

    def interrupted(self) -> int:
        """Records a crash left in flight that will be delivered again (0 where a source has none)."""
        return 0

    def cancel(self) -> None:
        for task in self.tasks:
            task.cancel()

    async def stop(self) -> None:
        self.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
