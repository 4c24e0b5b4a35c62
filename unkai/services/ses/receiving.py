"""Receiving mail (SES v1 receipt rule sets and rules). Not served yet: the rule-set
operations answer the gateway's 501 until they are."""

from __future__ import annotations


class ReceivingOps:
    async def start_receiving(self) -> None:
        """Start the SMTP listener when one is configured."""

    async def stop_receiving(self) -> None:
        """Stop it."""
