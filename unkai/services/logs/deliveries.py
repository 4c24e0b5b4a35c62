"""CloudWatch Logs deliveries ("vended logs"): delivery sources, delivery destinations with
their policies, and the deliveries that pair one of each (PutDeliverySource,
PutDeliveryDestination, PutDeliveryDestinationPolicy, CreateDelivery,
UpdateDeliveryConfiguration, and the Get/Describe/Delete of each).

They are stored and answered as AWS answers them, with AWS's integrity rules (a delivery needs
its source and destination; a source or destination still used by a delivery cannot be
deleted; one delivery per source and destination pair). Nothing is delivered: the AWS
services that send vended logs (CloudFront, Bedrock, ...) are not served by unkai. All three
kinds share one table, keyed by kind and name (a delivery's name is its id)."""

from __future__ import annotations

import json
import re
import secrets
import string
from typing import Any

from unkai.paging import paged
from unkai.protocol import ServiceError
from unkai.services import RequestContext

MIGRATION = """
CREATE TABLE logs_delivery_objects (
    account TEXT NOT NULL, region TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    created INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (account, region, kind, name)
);
"""

_NAME = re.compile(r"^[\w-]{1,60}$")
_LOG_TYPE = re.compile(r"^\w{1,255}$")
_ID_CHARS = string.ascii_letters + string.digits
# AWS's destination types, by the service in the destination resource's ARN
_TYPES = {"logs": "CWL", "s3": "S3", "firehose": "FH"}
_FORMATS = ("json", "plain", "w3c", "raw", "parquet")


def _validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def _not_found(message: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", message)


def _conflict(message: str) -> ServiceError:
    return ServiceError("ConflictException", message)


def _check_name(value: Any, member: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        constraint = ("Member must have length less than or equal to 60" if isinstance(value, str) and len(value) > 60
                      else "Member must have length greater than or equal to 1" if not value
                      else "Member must satisfy regular expression pattern: [\\w-]*")
        raise _validation(f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
                          f"constraint: {constraint}")
    return value


def _arn_service(arn: Any, member: str) -> str:
    parts = arn.split(":", 5) if isinstance(arn, str) else []
    if len(parts) < 6 or parts[0] != "arn" or not parts[2]:
        raise _validation(f"Invalid ARN provided for {member}: {arn}")
    return parts[2]


class DeliveryOps:
    """Mixed into the Logs service."""

    store: Any
    clock: Any

    def _object(self, ctx: RequestContext, kind: str, name: str) -> dict | None:
        row = self.store.one("SELECT body FROM logs_delivery_objects WHERE account=? AND region=? AND kind=? AND "
                             "name=?", (ctx.account, ctx.region, kind, name))
        return json.loads(row[0]) if row else None

    def _objects(self, ctx: RequestContext, kind: str) -> list[dict]:
        return [json.loads(body) for (body,) in self.store.all(
            "SELECT body FROM logs_delivery_objects WHERE account=? AND region=? AND kind=? ORDER BY name",
            (ctx.account, ctx.region, kind))]

    def _keep(self, ctx: RequestContext, kind: str, name: str, body: dict) -> None:
        self.store.execute("INSERT INTO logs_delivery_objects(account, region, kind, name, created, body) "
                           "VALUES(?,?,?,?,?,?) ON CONFLICT(account, region, kind, name) DO UPDATE SET "
                           "body=excluded.body", (ctx.account, ctx.region, kind, name, self.clock.now_ms(),
                                                  json.dumps(body)))

    def _drop(self, ctx: RequestContext, kind: str, name: str) -> None:
        self.store.execute("DELETE FROM logs_delivery_objects WHERE account=? AND region=? AND kind=? AND name=?",
                           (ctx.account, ctx.region, kind, name))

    @staticmethod
    def _page(key: str, items: list, params: dict) -> dict:
        limit = params.get("limit")
        if limit is not None and not 1 <= limit <= 50:
            raise _validation(f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: "
                              "Member must have value " + ("less than or equal to 50" if limit > 50 else
                                                           "greater than or equal to 1"))
        return paged(key, items, params.get("nextToken"), limit, default=50)

    # -- delivery sources ------------------------------------------------------------------

    def put_delivery_source(self, ctx: RequestContext, params: dict) -> dict:
        """Creates or, for an existing name, overwrites a source (AWS: every parameter is replaced)."""
        name = _check_name(params.get("name"), "name")
        resource = params.get("resourceArn")
        service = _arn_service(resource, "resourceArn")
        log_type = params.get("logType")
        if not isinstance(log_type, str) or not _LOG_TYPE.match(log_type):
            raise _validation(f"1 validation error detected: Value '{log_type}' at 'logType' failed to satisfy "
                              "constraint: Member must satisfy regular expression pattern: [\\w]*")
        current = self._object(ctx, "source", name)
        if current is not None and (current["resourceArns"] != [resource] or current["logType"] != log_type):
            if self._using(ctx, "deliverySourceName", name):
                raise _conflict(f"Delivery source {name} is in use by a delivery; its resourceArn and logType "
                                "cannot change")
        source = {"name": name, "arn": f"arn:aws:logs:{ctx.region}:{ctx.account}:delivery-source:{name}",
                  "resourceArns": [resource], "service": service, "logType": log_type}
        tags = params.get("tags") if params.get("tags") is not None else (current or {}).get("tags")
        if tags:
            source["tags"] = tags
        if params.get("deliverySourceConfiguration"):
            source["deliverySourceConfiguration"] = params["deliverySourceConfiguration"]
        self._keep(ctx, "source", name, source)
        return {"deliverySource": source}

    def _using(self, ctx: RequestContext, field: str, value: str) -> list[dict]:
        return [d for d in self._objects(ctx, "delivery") if d[field] == value]

    def get_delivery_source(self, ctx: RequestContext, params: dict) -> dict:
        name = _check_name(params.get("name"), "name")
        source = self._object(ctx, "source", name)
        if source is None:
            raise _not_found(f"Delivery source {name} does not exist")
        return {"deliverySource": source}

    def describe_delivery_sources(self, ctx: RequestContext, params: dict) -> dict:
        items = self._objects(ctx, "source")
        if params.get("resourceArns"):
            wanted = set(params["resourceArns"])
            items = [s for s in items if wanted & set(s["resourceArns"])]
        return self._page("deliverySources", items, params)

    def delete_delivery_source(self, ctx: RequestContext, params: dict) -> dict:
        name = _check_name(params.get("name"), "name")
        if self._object(ctx, "source", name) is None:
            raise _not_found(f"Delivery source {name} does not exist")
        if self._using(ctx, "deliverySourceName", name):
            raise _conflict(f"Delivery source {name} is in use by a delivery. Delete the delivery first.")
        self._drop(ctx, "source", name)
        return {}

    # -- delivery destinations ---------------------------------------------------------------

    def put_delivery_destination(self, ctx: RequestContext, params: dict) -> dict:
        name = _check_name(params.get("name"), "name")
        config = params.get("deliveryDestinationConfiguration")
        kind = params.get("deliveryDestinationType")
        if config:
            service = _arn_service(config.get("destinationResourceArn"),
                                   "deliveryDestinationConfiguration.destinationResourceArn")
            derived = _TYPES.get(service)
            if derived is None:
                raise _validation(f"Destination resource type {service} is not supported. Supported types are "
                                  "CloudWatch Logs log groups, S3 buckets and Firehose delivery streams.")
            if kind and kind != derived:
                raise _validation(f"deliveryDestinationType {kind} does not match the destination resource "
                                  f"{config['destinationResourceArn']}")
            kind = derived
        elif kind != "XRAY":
            raise _validation("deliveryDestinationConfiguration is required unless deliveryDestinationType is XRAY")
        fmt = params.get("outputFormat")
        if fmt is not None and fmt not in _FORMATS:
            raise _validation(f"1 validation error detected: Value '{fmt}' at 'outputFormat' failed to satisfy "
                              "constraint: Member must satisfy enum value set: [json, plain, w3c, raw, parquet]")
        current = self._object(ctx, "destination", name)
        if current is not None and current.get("deliveryDestinationType") != kind and \
                self._using(ctx, "deliveryDestinationArn", current["arn"]):
            raise _conflict(f"Delivery destination {name} is in use by a delivery; its type cannot change")
        destination: dict[str, Any] = {
            "name": name, "arn": f"arn:aws:logs:{ctx.region}:{ctx.account}:delivery-destination:{name}",
            "deliveryDestinationType": kind}
        if fmt:
            destination["outputFormat"] = fmt
        if config:
            destination["deliveryDestinationConfiguration"] = {
                "destinationResourceArn": config["destinationResourceArn"]}
        if params.get("roleArn"):
            destination["roleArn"] = params["roleArn"]
        tags = params.get("tags") if params.get("tags") is not None else (current or {}).get("tags")
        if tags:
            destination["tags"] = tags
        if current is not None and "policy" in current:
            destination["policy"] = current["policy"]
        self._keep(ctx, "destination", name, destination)
        return {"deliveryDestination": self._shown(destination)}

    @staticmethod
    def _shown(destination: dict) -> dict:
        return {k: v for k, v in destination.items() if k != "policy"}

    def _destination(self, ctx: RequestContext, name: str) -> dict:
        destination = self._object(ctx, "destination", name)
        if destination is None:
            raise _not_found(f"Delivery destination {name} does not exist")
        return destination

    def get_delivery_destination(self, ctx: RequestContext, params: dict) -> dict:
        return {"deliveryDestination": self._shown(self._destination(ctx, _check_name(params.get("name"), "name")))}

    def describe_delivery_destinations(self, ctx: RequestContext, params: dict) -> dict:
        items = [self._shown(d) for d in self._objects(ctx, "destination")]
        if params.get("names"):
            items = [d for d in items if d["name"] in set(params["names"])]
        return self._page("deliveryDestinations", items, params)

    def delete_delivery_destination(self, ctx: RequestContext, params: dict) -> dict:
        name = _check_name(params.get("name"), "name")
        destination = self._destination(ctx, name)
        if self._using(ctx, "deliveryDestinationArn", destination["arn"]):
            raise _conflict(f"Delivery destination {name} is in use by a delivery. Delete the delivery first.")
        self._drop(ctx, "destination", name)
        return {}

    def put_delivery_destination_policy(self, ctx: RequestContext, params: dict) -> dict:
        name = _check_name(params.get("deliveryDestinationName"), "deliveryDestinationName")
        document = params.get("deliveryDestinationPolicy")
        destination = self._destination(ctx, name)
        try:
            json.loads(document)
        except (TypeError, ValueError):
            raise _validation("deliveryDestinationPolicy is not a valid JSON policy document") from None
        destination["policy"] = document
        self._keep(ctx, "destination", name, destination)
        return {"policy": {"deliveryDestinationPolicy": document}}

    def get_delivery_destination_policy(self, ctx: RequestContext, params: dict) -> dict:
        destination = self._destination(ctx, _check_name(params.get("deliveryDestinationName"),
                                                         "deliveryDestinationName"))
        return {"policy": {"deliveryDestinationPolicy": destination["policy"]} if "policy" in destination else {}}

    def delete_delivery_destination_policy(self, ctx: RequestContext, params: dict) -> dict:
        name = _check_name(params.get("deliveryDestinationName"), "deliveryDestinationName")
        destination = self._destination(ctx, name)
        if "policy" not in destination:
            raise _not_found(f"Delivery destination {name} has no policy")
        del destination["policy"]
        self._keep(ctx, "destination", name, destination)
        return {}

    # -- deliveries --------------------------------------------------------------------------

    def create_delivery(self, ctx: RequestContext, params: dict) -> dict:
        source_name = _check_name(params.get("deliverySourceName"), "deliverySourceName")
        destination_arn = params.get("deliveryDestinationArn")
        _arn_service(destination_arn, "deliveryDestinationArn")
        if self._object(ctx, "source", source_name) is None:
            raise _not_found(f"Delivery source {source_name} does not exist")
        destination = next((d for d in self._objects(ctx, "destination") if d["arn"] == destination_arn), None)
        if destination is None:
            raise _not_found(f"Delivery destination {destination_arn} does not exist")
        for existing in self._using(ctx, "deliverySourceName", source_name):
            if existing["deliveryDestinationArn"] == destination_arn:
                raise _conflict(f"A delivery from {source_name} to {destination_arn} already exists: "
                                f"{existing['id']}")
        delivery_id = "".join(secrets.choice(_ID_CHARS) for _ in range(16))
        delivery: dict[str, Any] = {
            "id": delivery_id, "arn": f"arn:aws:logs:{ctx.region}:{ctx.account}:delivery:{delivery_id}",
            "deliverySourceName": source_name, "deliveryDestinationArn": destination_arn,
            "deliveryDestinationType": destination["deliveryDestinationType"]}
        self._configure(delivery, params)
        if params.get("tags"):
            delivery["tags"] = params["tags"]
        self._keep(ctx, "delivery", delivery_id, delivery)
        return {"delivery": delivery}

    @staticmethod
    def _configure(delivery: dict, params: dict) -> None:
        if params.get("recordFields") is not None:
            delivery["recordFields"] = params["recordFields"]
        if params.get("fieldDelimiter") is not None:
            delivery["fieldDelimiter"] = params["fieldDelimiter"]
        s3 = params.get("s3DeliveryConfiguration")
        if s3 is not None:
            if delivery["deliveryDestinationType"] != "S3":
                raise _validation("s3DeliveryConfiguration can only be set for a delivery to an S3 destination")
            delivery["s3DeliveryConfiguration"] = {**delivery.get("s3DeliveryConfiguration", {}), **s3}

    def _delivery(self, ctx: RequestContext, delivery_id: Any) -> dict:
        if not isinstance(delivery_id, str) or not re.fullmatch(r"[0-9A-Za-z]{1,64}", delivery_id):
            raise _validation(f"1 validation error detected: Value '{delivery_id}' at 'id' failed to satisfy "
                              "constraint: Member must satisfy regular expression pattern: ^[0-9A-Za-z]+$")
        delivery = self._object(ctx, "delivery", delivery_id)
        if delivery is None:
            raise _not_found(f"Delivery {delivery_id} does not exist")
        return delivery

    def get_delivery(self, ctx: RequestContext, params: dict) -> dict:
        return {"delivery": self._delivery(ctx, params.get("id"))}

    def describe_deliveries(self, ctx: RequestContext, params: dict) -> dict:
        items = self._objects(ctx, "delivery")
        if params.get("deliverySourceNames"):
            wanted = set(params["deliverySourceNames"])
            items = [d for d in items if d["deliverySourceName"] in wanted]
        return self._page("deliveries", items, params)

    def update_delivery_configuration(self, ctx: RequestContext, params: dict) -> dict:
        delivery = self._delivery(ctx, params.get("id"))
        self._configure(delivery, params)
        self._keep(ctx, "delivery", delivery["id"], delivery)
        return {}

    def delete_delivery(self, ctx: RequestContext, params: dict) -> dict:
        delivery = self._delivery(ctx, params.get("id"))
        self._drop(ctx, "delivery", delivery["id"])
        return {}
