"""Small helpers the DynamoDB tests share."""

from __future__ import annotations

import uuid

import pytest


def table_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_table(ddb, hash_key=("pk", "S"), range_key=None, name=None, **extra) -> str:
    name = name or table_name()
    schema = [{"AttributeName": hash_key[0], "KeyType": "HASH"}]
    defs = {hash_key[0]: hash_key[1]}
    if range_key:
        schema.append({"AttributeName": range_key[0], "KeyType": "RANGE"})
        defs[range_key[0]] = range_key[1]
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        for index in extra.get(key, []):
            for element in index["KeySchema"]:
                defs.setdefault(element["AttributeName"], extra.pop(f"_type_{element['AttributeName']}", "S"))
    defs.update(extra.pop("types", {}))
    ddb.create_table(TableName=name, KeySchema=schema, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": k, "AttributeType": v} for k, v in defs.items()],
                     **extra)
    return name


def error(exc: pytest.ExceptionInfo) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"]
