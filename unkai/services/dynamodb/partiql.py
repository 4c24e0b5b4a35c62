"""PartiQL (ExecuteStatement, BatchExecuteStatement, ExecuteTransaction)."""

from __future__ import annotations


class PartiQLOperations:
    """Mixed into the DynamoDB service."""
