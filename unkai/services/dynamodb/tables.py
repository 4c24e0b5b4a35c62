"""Tables and their secondary indexes: definitions, validation, descriptions, and
the table operations (Create/Describe/List/Update/Delete, tags, TTL settings).

A table's definition is one JSON document in ``dynamodb_tables``; loaded tables are
cached until any table definition changes (a random generation token, written in
the same transaction as the change, tells every later request to reload).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from unkai.protocol import ServiceError
from unkai.services.dynamodb.attributes import Item
from unkai.services.dynamodb.errors import in_use, invalid, not_found, validation
from unkai.services.dynamodb.keys import KeyAttr, KeySchema

TABLE_NAME = re.compile(r"^[a-zA-Z0-9_.-]+$")
MAX_LSI = 5
MAX_GSI = 20
DEFAULT_LIMITS = {"AccountMaxReadCapacityUnits": 80000, "AccountMaxWriteCapacityUnits": 80000,
                  "TableMaxReadCapacityUnits": 40000, "TableMaxWriteCapacityUnits": 40000}


@dataclass
class Index:
    id: int
    name: str
    kind: str  # GLOBAL or LOCAL
    schema: KeySchema
    projection: str  # ALL, KEYS_ONLY or INCLUDE
    non_key: tuple[str, ...]
    status: str  # ACTIVE, CREATING, DELETING

    def project(self, item: Item, table_schema: KeySchema) -> Item:
        """What of ``item`` the index holds."""
        if self.projection == "ALL":
            return item
        keep = set(table_schema.names) | set(self.schema.names)
        if self.projection == "INCLUDE":
            keep |= set(self.non_key)
        return {k: v for k, v in item.items() if k in keep}


@dataclass
class Stream:
    id: int
    arn: str
    label: str
    view_type: str


@dataclass
class Table:
    id: int
    account: str
    region: str
    name: str
    definition: dict[str, Any]
    status: str
    created: float
    schema: KeySchema
    indexes: dict[str, Index] = field(default_factory=dict)
    stream: Stream | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:dynamodb:{self.region}:{self.account}:table/{self.name}"

    @property
    def ttl_attribute(self) -> str | None:
        ttl = self.definition.get("TTL") or {}
        return ttl.get("AttributeName") if ttl.get("Enabled") else None

    @property
    def attribute_types(self) -> dict[str, str]:
        return {a["AttributeName"]: a["AttributeType"] for a in self.definition["AttributeDefinitions"]}


def _schema(elements: list[dict], types: dict[str, str]) -> KeySchema:
    hash_ = next(e["AttributeName"] for e in elements if e["KeyType"] == "HASH")
    range_ = next((e["AttributeName"] for e in elements if e["KeyType"] == "RANGE"), None)
    return KeySchema(KeyAttr(hash_, types[hash_]), KeyAttr(range_, types[range_]) if range_ else None)


def build_table(row: tuple, stream_row: tuple | None) -> Table:
    table_id, account, region, name, definition, status, created = row
    definition = json.loads(definition)
    types = {a["AttributeName"]: a["AttributeType"] for a in definition["AttributeDefinitions"]}
    table = Table(table_id, account, region, name, definition, status, created,
                  _schema(definition["KeySchema"], types))
    for kind, key in (("LOCAL", "LocalSecondaryIndexes"), ("GLOBAL", "GlobalSecondaryIndexes")):
        for spec in definition.get(key) or []:
            projection = spec.get("Projection") or {}
            table.indexes[spec["IndexName"]] = Index(
                spec["Id"], spec["IndexName"], kind, _schema(spec["KeySchema"], types),
                projection.get("ProjectionType", "ALL"), tuple(projection.get("NonKeyAttributes") or ()),
                spec.get("IndexStatus", "ACTIVE"))
    if stream_row is not None:
        table.stream = Stream(*stream_row)
    return table


# -- validating definitions -----------------------------------------------------------

def check_table_name(name: Any, member: str = "tableName") -> None:
    if not isinstance(name, str):
        return
    problems = []
    if len(name) < 3:
        problems.append(f"Value '{name}' at '{member}' failed to satisfy constraint: "
                        "Member must have length greater than or equal to 3")
    if len(name) > 255:
        problems.append(f"Value '{name}' at '{member}' failed to satisfy constraint: "
                        "Member must have length less than or equal to 255")
    if not TABLE_NAME.match(name):
        problems.append(f"Value '{name}' at '{member}' failed to satisfy constraint: "
                        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
    if problems:
        n = len(problems)
        raise validation(f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(problems))


def _check_key_schema(elements: list[dict], what: str) -> None:
    if not elements or len(elements) > 2:
        raise validation(f"1 validation error detected: Value '{elements}' at '{what}' failed to satisfy "
                         f"constraint: Member must have length {'less than or equal to 2' if elements else 'greater than or equal to 1'}")
    if elements[0].get("KeyType") != "HASH":
        raise validation("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
    if len(elements) == 2:
        if elements[1].get("KeyType") != "RANGE":
            raise validation("Invalid KeySchema: The second KeySchemaElement is not a RANGE key type")
        if elements[0]["AttributeName"] == elements[1]["AttributeName"]:
            raise validation("Both the Hash Key and the Range Key element in the KeySchema have the same name")


def _check_projection(projection: dict | None, index: str) -> dict:
    projection = dict(projection or {})
    kind = projection.get("ProjectionType")
    if kind is None:
        raise validation(f"One or more parameter values were invalid: Unknown ProjectionType: null")
    non_key = projection.get("NonKeyAttributes")
    if kind != "INCLUDE" and non_key:
        raise validation(f"One or more parameter values were invalid: ProjectionType is {kind}, but "
                         f"NonKeyAttributes is specified")
    if kind == "INCLUDE" and not non_key:
        raise validation("One or more parameter values were invalid: ProjectionType is INCLUDE, but "
                         "NonKeyAttributes is not specified")
    return projection


def _check_throughput(billing: str, throughput: dict | None) -> dict | None:
    if billing == "PAY_PER_REQUEST":
        if throughput:
            raise invalid("Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when "
                          "BillingMode is PAY_PER_REQUEST")
        return None
    if not throughput:
        raise validation("No provisioned throughput specified for the table")
    for k in ("ReadCapacityUnits", "WriteCapacityUnits"):
        if throughput.get(k, 0) < 1:
            raise invalid(f"{k} must be greater than 0")
    return {"ReadCapacityUnits": throughput["ReadCapacityUnits"],
            "WriteCapacityUnits": throughput["WriteCapacityUnits"]}


def check_stream_spec(spec: dict | None) -> dict | None:
    if not spec:
        return None
    if spec.get("StreamEnabled"):
        if spec.get("StreamViewType") not in ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
            raise validation("One or more parameter values were invalid: StreamViewType is required when "
                             "StreamEnabled is true" if not spec.get("StreamViewType") else
                             f"1 validation error detected: Value '{spec.get('StreamViewType')}' at "
                             "'streamSpecification.streamViewType' failed to satisfy constraint: Member must "
                             "satisfy enum value set: [NEW_IMAGE, OLD_IMAGE, NEW_AND_OLD_IMAGES, KEYS_ONLY]")
        return {"StreamEnabled": True, "StreamViewType": spec["StreamViewType"]}
    if spec.get("StreamViewType"):
        raise invalid("StreamViewType cannot be specified when StreamEnabled is false")
    return {"StreamEnabled": False}


def check_definition(params: dict) -> dict:
    """A table definition from CreateTable's parameters, validated as AWS validates it."""
    check_table_name(params.get("TableName"))
    key_schema = params["KeySchema"]
    _check_key_schema(key_schema, "keySchema")
    defs = params["AttributeDefinitions"]
    types: dict[str, str] = {}
    for d in defs:
        if d["AttributeType"] not in ("S", "N", "B"):
            raise validation(f"1 validation error detected: Value '{d['AttributeType']}' at "
                             "'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: "
                             "Member must satisfy enum value set: [B, N, S]")
        if d["AttributeName"] in types:
            raise invalid(f"Duplicate AttributeName in AttributeDefinitions: {d['AttributeName']}")
        types[d["AttributeName"]] = d["AttributeType"]
    billing = params.get("BillingMode") or "PROVISIONED"
    throughput = _check_throughput(billing, params.get("ProvisionedThroughput"))
    used = [e["AttributeName"] for e in key_schema]
    names: set[str] = set()
    lsis, gsis = [], []
    table_hash = key_schema[0]["AttributeName"]
    for spec in params.get("LocalSecondaryIndexes") or []:
        name = spec["IndexName"]
        _check_index_name(name, names)
        _check_key_schema(spec["KeySchema"], "localSecondaryIndexes.member.keySchema")
        if len(key_schema) != 2:
            raise invalid("Table KeySchema does not have a range key, which is required when specifying a "
                          "LocalSecondaryIndex")
        if spec["KeySchema"][0]["AttributeName"] != table_hash or len(spec["KeySchema"]) != 2:
            raise invalid(f"Index KeySchema does not have the same leading hash key as table KeySchema for "
                          f"index: {name}. index hash key: {spec['KeySchema'][0]['AttributeName']}, "
                          f"table hash key: {table_hash}")
        used += [e["AttributeName"] for e in spec["KeySchema"]]
        lsis.append({"IndexName": name, "KeySchema": spec["KeySchema"],
                     "Projection": _check_projection(spec.get("Projection"), name)})
    if len(lsis) > MAX_LSI:
        raise validation("One or more parameter values were invalid: Number of LocalSecondaryIndexes exceeds "
                         "per-table limit of 5")
    for spec in params.get("GlobalSecondaryIndexes") or []:
        gsis.append(check_gsi(spec, names, billing))
        used += [e["AttributeName"] for e in spec["KeySchema"]]
    if len(gsis) > MAX_GSI:
        raise validation("One or more parameter values were invalid: GlobalSecondaryIndex count exceeds the "
                         "per-table limit of 20")
    missing = sorted({u for u in used if u not in types})
    if missing:
        raise invalid(f"Some index key attributes are not defined in AttributeDefinitions. Keys: "
                      f"[{', '.join(missing)}], AttributeDefinitions: [{', '.join(types)}]")
    if set(types) - set(used):
        raise invalid("Number of attributes in KeySchema does not exactly match number of attributes defined "
                      "in AttributeDefinitions")
    definition: dict[str, Any] = {
        "AttributeDefinitions": defs,
        "KeySchema": key_schema,
        "BillingMode": billing,
        "ProvisionedThroughput": throughput,
        "LocalSecondaryIndexes": lsis,
        "GlobalSecondaryIndexes": gsis,
        "StreamSpecification": check_stream_spec(params.get("StreamSpecification")),
        "SSESpecification": params.get("SSESpecification"),
        "TableClass": params.get("TableClass") or "STANDARD",
        "DeletionProtectionEnabled": bool(params.get("DeletionProtectionEnabled")),
        "OnDemandThroughput": params.get("OnDemandThroughput"),
        "Tags": {t["Key"]: t["Value"] for t in params.get("Tags") or []},
        "TableId": str(uuid.uuid4()),
    }
    return definition


def _check_index_name(name: str, seen: set[str]) -> None:
    if not re.match(r"^[a-zA-Z0-9_.-]{3,255}$", name or ""):
        raise validation(f"1 validation error detected: Value '{name}' at 'indexName' failed to satisfy "
                         "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
    if name in seen:
        raise invalid(f"Duplicate index name: {name}")
    seen.add(name)


def check_gsi(spec: dict, seen: set[str], billing: str) -> dict:
    name = spec["IndexName"]
    _check_index_name(name, seen)
    _check_key_schema(spec["KeySchema"], "globalSecondaryIndexes.member.keySchema")
    gsi = {"IndexName": name, "KeySchema": spec["KeySchema"],
           "Projection": _check_projection(spec.get("Projection"), name)}
    if billing == "PROVISIONED":
        throughput = spec.get("ProvisionedThroughput")
        if not throughput:
            raise invalid(f"ProvisionedThroughput should not be null for index: {name}")
        gsi["ProvisionedThroughput"] = _check_throughput(billing, throughput)
    elif spec.get("ProvisionedThroughput"):
        raise invalid(f"ProvisionedThroughput should not be specified for index: {name} when BillingMode is "
                      "PAY_PER_REQUEST")
    return gsi


# -- descriptions ---------------------------------------------------------------------

def warm_throughput(billing: str, throughput: dict) -> dict:
    """What AWS reports a table or index can serve at once: 12,000 reads and 4,000 writes a
    second for on-demand (AWS's default for new tables), the provisioned units otherwise."""
    if billing == "PAY_PER_REQUEST":
        return {"ReadUnitsPerSecond": 12000, "WriteUnitsPerSecond": 4000, "Status": "ACTIVE"}
    return {"ReadUnitsPerSecond": throughput.get("ReadCapacityUnits", 0),
            "WriteUnitsPerSecond": throughput.get("WriteCapacityUnits", 0), "Status": "ACTIVE"}


def describe(table: Table, counts: tuple[int, int], index_counts: dict[str, tuple[int, int]],
             status: str | None = None) -> dict[str, Any]:
    d = table.definition
    billing = d.get("BillingMode", "PROVISIONED")
    throughput = {"NumberOfDecreasesToday": 0, "ReadCapacityUnits": 0, "WriteCapacityUnits": 0}
    if d.get("ProvisionedThroughput"):
        throughput.update(d["ProvisionedThroughput"])
    out: dict[str, Any] = {
        "AttributeDefinitions": d["AttributeDefinitions"],
        "TableName": table.name,
        "KeySchema": d["KeySchema"],
        "TableStatus": status or table.status,
        "CreationDateTime": table.created,
        "ProvisionedThroughput": throughput,
        "TableSizeBytes": counts[1],
        "ItemCount": counts[0],
        "TableArn": table.arn,
        "TableId": d["TableId"],
        "DeletionProtectionEnabled": d.get("DeletionProtectionEnabled", False),
    }
    out["WarmThroughput"] = warm_throughput(billing, throughput)
    if billing == "PAY_PER_REQUEST":
        out["BillingModeSummary"] = {"BillingMode": "PAY_PER_REQUEST",
                                     "LastUpdateToPayPerRequestDateTime": d.get("BillingModeUpdated", table.created)}
    for kind, key in (("LOCAL", "LocalSecondaryIndexes"), ("GLOBAL", "GlobalSecondaryIndexes")):
        specs = d.get(key) or []
        if not specs:
            continue
        described = []
        for spec in specs:
            n, size = index_counts.get(spec["IndexName"], (0, 0))
            entry = {"IndexName": spec["IndexName"], "KeySchema": spec["KeySchema"], "Projection": spec["Projection"],
                     "IndexSizeBytes": size, "ItemCount": n,
                     "IndexArn": f"{table.arn}/index/{spec['IndexName']}"}
            if kind == "GLOBAL":
                entry["IndexStatus"] = spec.get("IndexStatus", "ACTIVE")
                if entry["IndexStatus"] == "CREATING":
                    entry["Backfilling"] = True
                gsi_throughput = {"NumberOfDecreasesToday": 0, "ReadCapacityUnits": 0, "WriteCapacityUnits": 0}
                gsi_throughput.update(spec.get("ProvisionedThroughput") or {})
                entry["ProvisionedThroughput"] = gsi_throughput
                entry["WarmThroughput"] = warm_throughput(billing, gsi_throughput)
            described.append(entry)
        out[key] = described
    if table.stream is not None:
        out["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": table.stream.view_type}
        out["LatestStreamLabel"] = table.stream.label
        out["LatestStreamArn"] = table.stream.arn
    elif d.get("LatestStream"):
        out["LatestStreamLabel"] = d["LatestStream"]["Label"]
        out["LatestStreamArn"] = d["LatestStream"]["Arn"]
    sse = d.get("SSESpecification") or {}
    if sse.get("Enabled"):
        out["SSEDescription"] = {"Status": "ENABLED", "SSEType": sse.get("SSEType", "KMS"),
                                 "KMSMasterKeyArn": sse.get("KMSMasterKeyId") or
                                 f"arn:aws:kms:{table.region}:{table.account}:key/{uuid.uuid5(uuid.NAMESPACE_URL, table.arn)}"}
    if d.get("TableClass", "STANDARD") != "STANDARD":
        out["TableClassSummary"] = {"TableClass": d["TableClass"]}
    if d.get("RestoreSummary"):
        out["RestoreSummary"] = d["RestoreSummary"]
    if d.get("OnDemandThroughput"):  # kept and answered; requests are never throttled here
        out["OnDemandThroughput"] = d["OnDemandThroughput"]
    return out


def missing_table(name: str) -> ServiceError:
    return not_found(f"Requested resource not found: Table: {name} not found")


def table_exists(name: str) -> ServiceError:
    return in_use(f"Table already exists: {name}")
