"""Bucket configurations S3 keeps by id and unkai stores without acting on them: inventory,
analytics, metrics and Intelligent-Tiering configurations (Put/Get/Delete/List for each, as the
Terraform provider and the console call them), and RestoreObject as AWS answers it for objects
that are or are not archived."""

from __future__ import annotations

import datetime as dt
from typing import Any

from unkai.services import RequestContext
from unkai.services.s3.state import S3Error

# operation suffix -> (bucket config key, the request/response member, the List answer's member)
KINDS = {
    "InventoryConfiguration": ("Inventory", "InventoryConfiguration", "InventoryConfigurationList"),
    "AnalyticsConfiguration": ("Analytics", "AnalyticsConfiguration", "AnalyticsConfigurationList"),
    "MetricsConfiguration": ("Metrics", "MetricsConfiguration", "MetricsConfigurationList"),
    "IntelligentTieringConfiguration": ("IntelligentTiering", "IntelligentTieringConfiguration",
                                        "IntelligentTieringConfigurationList"),
}
ARCHIVED = ("GLACIER", "DEEP_ARCHIVE")


def no_such_configuration() -> S3Error:
    return S3Error("NoSuchConfiguration", "The specified configuration does not exist.", status=404)


class ConfigOps:
    """Mixed into the S3 service."""

    clock: Any

    def _bucket(self, name: str) -> Any: ...
    def _save_config(self, bucket: Any) -> None: ...
    def _existing(self, bucket: Any, key: str, version_id: str | None, head: bool = False) -> Any: ...
    def _set_meta(self, obj: Any) -> None: ...

    def configuration_handler(self, operation: str) -> Any:
        """The handler of Put/Get/Delete/ListBucket<Kind>Configuration(s), or None."""
        for verb in ("Put", "Get", "Delete", "List"):
            prefix = f"{verb}Bucket"
            if not operation.startswith(prefix):
                continue
            suffix = operation[len(prefix):]
            if verb == "List":
                suffix = suffix.removesuffix("s")
            if suffix in KINDS:
                key, member, listed = KINDS[suffix]
                return lambda ctx, params: self._configuration(verb, key, member, listed, params)
        return None

    def _configuration(self, verb: str, key: str, member: str, listed: str, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])
        stored: dict[str, Any] = dict(bucket.config.get(key) or {})
        if verb == "List":
            return {listed: list(stored.values()) or None, "IsTruncated": False}
        config_id = params["Id"]
        if verb == "Put":
            config = dict(params[member])
            if config.get("Id") != config_id:
                raise S3Error("InvalidArgument", "Configuration ID mismatch", ArgumentName="Id",
                              ArgumentValue=config.get("Id") or "")
            stored[config_id] = config
        elif config_id not in stored:
            raise no_such_configuration()
        elif verb == "Get":
            return {member: stored[config_id]}
        else:
            del stored[config_id]
        bucket.config[key] = stored
        self._save_config(bucket)
        return {}

    def restore_object(self, ctx: RequestContext, params: dict) -> Any:
        bucket = self._bucket(params["Bucket"])
        obj = self._existing(bucket, params["Key"], params.get("VersionId"))
        if obj.meta.get("StorageClass") not in ARCHIVED:
            raise S3Error("InvalidObjectState", "Restore is not allowed for the object's current storage class",
                          status=403, StorageClass=obj.meta.get("StorageClass") or "STANDARD")
        days = (params.get("RestoreRequest") or {}).get("Days") or 1
        again = "Restore" in obj.meta
        expiry = dt.datetime.fromtimestamp(self.clock.now() + days * 86400, dt.timezone.utc)
        # unkai restores at once: the copy is readable when this answers (AWS takes minutes to hours)
        obj.meta["Restore"] = f'ongoing-request="false", expiry-date="{expiry.strftime("%a, %d %b %Y %H:%M:%S GMT")}"'
        self._set_meta(obj)
        return self._serialize(ctx, {}, 200 if again else 202)  # type: ignore[attr-defined]
