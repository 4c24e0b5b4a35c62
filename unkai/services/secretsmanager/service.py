"""Secrets Manager's operations: read params, call the records (``secrets.py``) or the
rotation (``rotation.py``), shape the reply."""

from __future__ import annotations

import json
import uuid
from typing import Any

from unkai.paging import paged
from unkai.services import RequestContext, Service
from unkai.services.secretsmanager import errors, rotation
from unkai.services.secretsmanager.passwords import random_password
from unkai.services.secretsmanager.secrets import (MIGRATIONS, NAME, Secret, Secrets, stored_value, suffix)

DEFAULT_KEY = "alias/aws/secretsmanager"


class SecretsManager(Service):
    name = "secretsmanager"
    migrations = MIGRATIONS
    resource_types = ("AWS::SecretsManager::Secret", "AWS::SecretsManager::SecretTargetAttachment",
                      "AWS::SecretsManager::RotationSchedule", "AWS::SecretsManager::ResourcePolicy")

    def check_unimplemented(self, ctx: RequestContext, operation: str, params: dict) -> None:
        """An operation unkai does not serve still answers ResourceNotFoundException for a missing secret first, as AWS does."""
        if isinstance(params.get("SecretId"), str):
            self.secrets.need(ctx.account, ctx.region, params["SecretId"])

    async def resetting(self) -> None:
        """The store went back to a snapshot: no value or parse from before it is kept."""
        self.secrets.forget()

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.secrets = Secrets(self.store, cloud.sealer, self.clock)

    async def start(self) -> None:
        self.cloud.jobs.register(rotation.JOB, self._rotate_job)

    async def _rotate_job(self, payload: dict, attempt: int) -> None:
        await rotation.run(self, payload)

    # -- helpers ----------------------------------------------------------------------------

    def _live(self, ctx: RequestContext, secret_id: str, stage: str | None = None) -> Secret:
        secret = self.secrets.need(ctx.account, ctx.region, secret_id, stage)
        if secret.deleted is not None:
            raise errors.marked_for_deletion()
        return secret

    def _token(self, params: dict) -> str:
        token = params.get("ClientRequestToken") or str(uuid.uuid4())
        if not 32 <= len(token) <= 64:
            raise errors.invalid_parameter("ClientRequestToken must be 32-64 characters long.")
        return token

    def _describe(self, secret: Secret) -> dict:
        d = secret.view
        out: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name, "CreatedDate": d["CreatedDate"],
                               "LastChangedDate": d.get("LastChangedDate", d["CreatedDate"]),
                               "VersionIdsToStages": {v.version_id: v.stages for v in self.secrets.versions(secret)
                                                      if v.stages}}
        for key in ("Description", "KmsKeyId", "LastAccessedDate", "DeletedDate", "LastRotatedDate",
                    "NextRotationDate", "RotationLambdaARN", "RotationRules", "OwningService", "Type"):
            if d.get(key) is not None:
                out[key] = d[key]
        if d.get("RotationEnabled") is not None:
            out["RotationEnabled"] = d["RotationEnabled"]
        if d.get("Tags"):
            out["Tags"] = d["Tags"]
        out["PrimaryRegion"] = secret.region
        return out

    def _key_usable(self, account: str, region: str, key_ref: str | None, writing: bool) -> None:
        """A secret under a customer managed KMS key is readable (writable) only while the key is
        enabled, as on AWS: DecryptionFailure (EncryptionFailure) otherwise."""
        if not key_ref or str(key_ref).endswith("alias/aws/secretsmanager"):
            return
        kms = self.cloud.services.get("kms")
        key = kms.find_key(account, region, key_ref) if kms is not None else None
        if key is None or key.state in ("Disabled", "PendingDeletion"):
            raise errors.encryption_failure() if writing else errors.decryption_failure()

    def _value_out(self, secret: Secret, version_id: str | None, stage: str | None) -> dict:
        self._key_usable(secret.account, secret.region, secret.view.get("KmsKeyId"), writing=False)
        version = self.secrets.version(secret, version_id, stage)
        out = {"ARN": secret.arn, "Name": secret.name, "VersionId": version.version_id,
               "VersionStages": version.stages, "CreatedDate": version.created}
        out.update(self.secrets.value(secret, version))
        accessed = float(int(self.clock.now() // 86400) * 86400)  # AWS keeps the day only
        if secret.view.get("LastAccessedDate") != accessed:  # so a read writes once a day, not every time
            secret.data["LastAccessedDate"] = accessed
            self.secrets.save(secret)
        return out

    def _kms_key(self, ctx: RequestContext, key_id: str | None) -> str | None:
        """A KmsKeyId as Secrets Manager reports it: as given (None: the AWS managed key)."""
        return key_id or None

    # -- secrets ----------------------------------------------------------------------------

    def create_secret(self, ctx: RequestContext, params: dict) -> dict:
        name = params["Name"]
        if not NAME.match(name):
            raise errors.invalid_parameter("Invalid name. Must be a valid name containing alphanumeric characters, "
                                           "or any of the following: -/_+=.@!")
        existing = self.secrets.find(ctx.account, ctx.region, name)
        if existing is not None:
            if existing.deleted is not None:
                raise errors.invalid_request(f"You can't create this secret because a secret with this name is "
                                             f"already scheduled for deletion.")
            raise errors.exists(name)
        token = self._token(params)
        value = stored_value(params)
        if value is not None:
            self._key_usable(ctx.account, ctx.region, params.get("KmsKeyId"), writing=True)
        now = self.clock.now()
        arn = f"arn:aws:secretsmanager:{ctx.region}:{ctx.account}:secret:{name}-{suffix()}"
        data: dict[str, Any] = {"CreatedDate": now, "LastChangedDate": now, "Description": params.get("Description"),
                                "KmsKeyId": self._kms_key(ctx, params.get("KmsKeyId")),
                                "Tags": params.get("Tags") or []}
        if params.get("Type"):
            data["Type"] = params["Type"]
        secret = Secret(arn, ctx.account, ctx.region, name, data)
        self.secrets.insert(secret)
        out: dict[str, Any] = {"ARN": arn, "Name": name}
        if value is not None:
            self.secrets.add_version(secret, token, value, ["AWSCURRENT"])
            out["VersionId"] = token
        if params.get("AddReplicaRegions"):
            out["ReplicationStatus"] = [{"Region": r["Region"], "KmsKeyId": r.get("KmsKeyId", DEFAULT_KEY),
                                         "Status": "InSync"} for r in params["AddReplicaRegions"]]
        return out

    def describe_secret(self, ctx: RequestContext, params: dict) -> dict:
        return self._describe(self.secrets.need(ctx.account, ctx.region, params["SecretId"]))

    def get_secret_value(self, ctx: RequestContext, params: dict) -> dict:
        version_id, stage = params.get("VersionId"), params.get("VersionStage")
        # by label (AWSCURRENT by default): the secret and its labelled version in one statement
        secret = self._live(ctx, params["SecretId"], None if version_id is not None else stage or "AWSCURRENT")
        return self._value_out(secret, version_id, stage)

    def batch_get_secret_value(self, ctx: RequestContext, params: dict) -> dict:
        ids, filters = params.get("SecretIdList"), params.get("Filters")
        if ids and filters:
            raise errors.invalid_parameter("Either 'SecretIdList' or 'Filters' must be provided, but not both.")
        values, failures = [], []
        if ids:
            for secret_id in ids:
                try:
                    values.append(self._value_out(self._live(ctx, secret_id, "AWSCURRENT"), None, None))
                except Exception as exc:  # a ServiceError per entry, as AWS lists them
                    failures.append({"SecretId": secret_id, "ErrorCode": getattr(exc, "code", "InternalFailure"),
                                     "Message": getattr(exc, "message", str(exc))})
            return {"SecretValues": values, "Errors": failures}
        matching = [s for s in self.secrets.all(ctx.account, ctx.region)
                    if s.deleted is None and self._matches(s, filters or [])]
        page = paged("SecretValues", matching, params.get("NextToken"), params.get("MaxResults"), 20)
        out_values = []
        for s in page["SecretValues"]:
            try:
                out_values.append(self._value_out(s, None, None))
            except Exception as exc:
                failures.append({"SecretId": s.arn, "ErrorCode": getattr(exc, "code", "InternalFailure"),
                                 "Message": getattr(exc, "message", str(exc))})
        page["SecretValues"] = out_values
        page["Errors"] = failures
        return page

    def put_secret_value(self, ctx: RequestContext, params: dict) -> dict:
        secret = self._live(ctx, params["SecretId"])
        value = stored_value(params)
        if value is None:
            raise errors.invalid_parameter("You must provide either SecretString or SecretBinary.")
        self._key_usable(secret.account, secret.region, secret.data.get("KmsKeyId"), writing=True)
        token = self._token(params)
        stages = params.get("VersionStages") or ["AWSCURRENT"]
        if any(v.version_id == token for v in self.secrets.versions(secret)):
            current = self.secrets.version(secret, token, None)
            raw = json.loads(self.cloud.sealer.unseal(current.value, f"{secret.arn}/{token}".encode()))
            if raw != value:  # the same token again is only idempotent with the same value
                raise errors.version_exists()
            return {"ARN": secret.arn, "Name": secret.name, "VersionId": token, "VersionStages": current.stages}
        self.secrets.add_version(secret, token, value, stages)
        secret.data["LastChangedDate"] = self.clock.now()
        self.secrets.save(secret)
        return {"ARN": secret.arn, "Name": secret.name, "VersionId": token, "VersionStages": stages}

    def update_secret(self, ctx: RequestContext, params: dict) -> dict:
        secret = self._live(ctx, params["SecretId"])
        if "Description" in params:
            secret.data["Description"] = params["Description"]
        if "KmsKeyId" in params:
            secret.data["KmsKeyId"] = self._kms_key(ctx, params["KmsKeyId"])
        secret.data["LastChangedDate"] = self.clock.now()
        self.secrets.save(secret)
        out: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name}
        value = stored_value(params)
        if value is not None:
            self._key_usable(secret.account, secret.region, secret.data.get("KmsKeyId"), writing=True)
            token = self._token(params)
            self.secrets.add_version(secret, token, value, ["AWSCURRENT"])
            out["VersionId"] = token
        return out

    def list_secrets(self, ctx: RequestContext, params: dict) -> dict:
        include_deleted = params.get("IncludePlannedDeletion")
        found = [s for s in self.secrets.all(ctx.account, ctx.region)
                 if (include_deleted or s.deleted is None) and self._matches(s, params.get("Filters") or [])]
        key = params.get("SortBy") or "created-date"
        field = {"created-date": "CreatedDate", "last-accessed-date": "LastAccessedDate",
                 "last-changed-date": "LastChangedDate"}.get(key)
        found.sort(key=(lambda s: s.name) if key == "name" else (lambda s: s.view.get(field) or 0),
                   reverse=params.get("SortOrder", "desc") == "desc" if key != "name" else
                   params.get("SortOrder") == "desc")
        page = paged("SecretList", found, params.get("NextToken"), params.get("MaxResults"), 100)
        described = []
        for s in page["SecretList"]:
            out = self._describe(s)
            out["SecretVersionsToStages"] = out.pop("VersionIdsToStages")
            described.append(out)
        page["SecretList"] = described
        return page

    @staticmethod
    def _matches(secret: Secret, filters: list[dict]) -> bool:
        """ListSecrets filters: each value a prefix (a leading ``!`` negates), values OR-ed,
        filters AND-ed, names and descriptions compared case-insensitively."""
        for flt in filters:
            key, values = flt.get("Key"), flt.get("Values") or []
            tags = secret.view.get("Tags") or []
            fields = {"name": [secret.name], "description": [secret.view.get("Description") or ""],
                      "tag-key": [t["Key"] for t in tags], "tag-value": [t.get("Value", "") for t in tags],
                      "primary-region": [secret.region], "owning-service": [secret.view.get("OwningService") or ""]}
            candidates = sum(fields.values(), []) if key == "all" else fields.get(key, [])
            ok = False
            for value in values:
                negate = value.startswith("!")
                prefix = value[1:] if negate else value
                hit = any(c.lower().startswith(prefix.lower()) for c in candidates)
                if hit != negate:
                    ok = True
                    break
            if not ok:
                return False
        return True

    def delete_secret(self, ctx: RequestContext, params: dict) -> dict:
        secret = self.secrets.need(ctx.account, ctx.region, params["SecretId"])
        force = params.get("ForceDeleteWithoutRecovery")
        window = params.get("RecoveryWindowInDays")
        if force and window is not None:
            raise errors.invalid_parameter("You can't use ForceDeleteWithoutRecovery in conjunction with "
                                           "RecoveryWindowInDays.")
        if window is not None and not 7 <= window <= 30:
            raise errors.invalid_parameter("The RecoveryWindowInDays value must be between 7 and 30 days "
                                           "(inclusive).")
        if secret.deleted is not None and not force:
            raise errors.marked_for_deletion()
        now = self.clock.now()
        if force:
            self.secrets.delete(secret)
            return {"ARN": secret.arn, "Name": secret.name, "DeletionDate": now}
        secret.data["DeletedDate"] = now + (window or 30) * 86400
        self.secrets.save(secret)
        return {"ARN": secret.arn, "Name": secret.name, "DeletionDate": secret.data["DeletedDate"]}

    def restore_secret(self, ctx: RequestContext, params: dict) -> dict:
        secret = self.secrets.need(ctx.account, ctx.region, params["SecretId"])
        secret.data.pop("DeletedDate", None)
        self.secrets.save(secret)
        return {"ARN": secret.arn, "Name": secret.name}

    def list_secret_version_ids(self, ctx: RequestContext, params: dict) -> dict:
        secret = self.secrets.need(ctx.account, ctx.region, params["SecretId"])
        versions = [{"VersionId": v.version_id, "VersionStages": v.stages, "CreatedDate": v.created}
                    for v in self.secrets.versions(secret) if v.stages or params.get("IncludeDeprecated")]
        page = paged("Versions", versions, params.get("NextToken"), params.get("MaxResults"), 100)
        page.update({"ARN": secret.arn, "Name": secret.name})
        return page

    def update_secret_version_stage(self, ctx: RequestContext, params: dict) -> dict:
        secret = self._live(ctx, params["SecretId"])
        stage = params["VersionStage"]
        versions = {v.version_id: v for v in self.secrets.versions(secret)}
        remove_from, move_to = params.get("RemoveFromVersionId"), params.get("MoveToVersionId")
        holder = next((v.version_id for v in versions.values() if stage in v.stages), None)
        if move_to is not None and move_to not in versions:
            raise errors.invalid_parameter(f"The version {move_to} doesn't exist.")
        if holder is not None and holder != move_to and remove_from != holder:
            raise errors.invalid_parameter(f"The staging label {stage} is currently attached to version {holder}, "
                                           f"so you must explicitly reference that version in RemoveFromVersionId.")
        if remove_from is not None and remove_from in versions and move_to is None:
            self.secrets.remove_stage(secret, stage, remove_from)
        if move_to is not None:
            if stage == "AWSCURRENT" and holder is not None and holder != move_to:
                self.secrets.move_stage(secret, "AWSPREVIOUS", holder)
            self.secrets.move_stage(secret, stage, move_to)
        secret.data["LastChangedDate"] = self.clock.now()
        self.secrets.save(secret)
        return {"ARN": secret.arn, "Name": secret.name}

    def get_random_password(self, ctx: RequestContext, params: dict) -> dict:
        return {"RandomPassword": random_password(params)}

    # -- rotation -----------------------------------------------------------------------------

    def rotate_secret(self, ctx: RequestContext, params: dict) -> dict:
        secret = self._live(ctx, params["SecretId"])
        return rotation.start(self, ctx, secret, params)

    def cancel_rotate_secret(self, ctx: RequestContext, params: dict) -> dict:
        secret = self._live(ctx, params["SecretId"])
        pending = next((v.version_id for v in self.secrets.versions(secret) if "AWSPENDING" in v.stages), None)
        if pending is not None:
            self.secrets.remove_stage(secret, "AWSPENDING", pending)
        secret.data["RotationEnabled"] = False
        secret.data.pop("NextRotationDate", None)
        secret.data["RotationGeneration"] = secret.data.get("RotationGeneration", 0) + 1
        self.secrets.save(secret)
        out = {"ARN": secret.arn, "Name": secret.name}
        if pending:
            out["VersionId"] = pending
        return out

    # -- resource policies and tags ----------------------------------------------------------

    def _policy(self, text: str) -> str:
        from unkai.services.iam import policies

        try:
            policies.parse(text, "resource")
        except policies.PolicyError as exc:
            raise errors.malformed_policy(str(exc)) from None
        if len(text) > 20480:
            raise errors.limit("The resource policy is larger than 20 KB.")
        return text

    def put_resource_policy(self, ctx: RequestContext, params: dict) -> dict:
        secret = self._live(ctx, params["SecretId"])
        secret.data["ResourcePolicy"] = self._policy(params["ResourcePolicy"])
        self.secrets.save(secret)
        return {"ARN": secret.arn, "Name": secret.name}

    def get_resource_policy(self, ctx: RequestContext, params: dict) -> dict:
        secret = self.secrets.need(ctx.account, ctx.region, params["SecretId"])
        out = {"ARN": secret.arn, "Name": secret.name}
        if secret.data.get("ResourcePolicy"):
            out["ResourcePolicy"] = secret.data["ResourcePolicy"]
        return out

    def delete_resource_policy(self, ctx: RequestContext, params: dict) -> dict:
        secret = self.secrets.need(ctx.account, ctx.region, params["SecretId"])
        secret.data.pop("ResourcePolicy", None)
        self.secrets.save(secret)
        return {"ARN": secret.arn, "Name": secret.name}

    def validate_resource_policy(self, ctx: RequestContext, params: dict) -> dict:
        from unkai.services.iam import policies

        try:
            policies.parse(params["ResourcePolicy"], "resource")
        except policies.PolicyError as exc:
            return {"PolicyValidationPassed": False, "ValidationErrors": [
                {"CheckName": "PolicyValidation", "ErrorMessage": str(exc)}]}
        return {"PolicyValidationPassed": True, "ValidationErrors": []}

    def resource_policy(self, secret_arn: str) -> str | None:
        """A secret's resource policy, for the policy evaluator."""
        row = self.store.one("SELECT data FROM secretsmanager_secrets WHERE arn=?", (secret_arn,))
        return self.secrets.parsed(row[0]).doc.get("ResourcePolicy") if row else None

    def tag_resource(self, ctx: RequestContext, params: dict) -> dict:
        secret = self._live(ctx, params["SecretId"])
        tags = {t["Key"]: t.get("Value", "") for t in secret.data.get("Tags") or []}
        tags.update({t["Key"]: t.get("Value", "") for t in params["Tags"]})
        if len(tags) > 50:
            raise errors.invalid_parameter("Number of tags exceeds secret limit.")
        secret.data["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        self.secrets.save(secret)
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict) -> dict:
        secret = self._live(ctx, params["SecretId"])
        secret.data["Tags"] = [t for t in secret.data.get("Tags") or [] if t["Key"] not in params["TagKeys"]]
        self.secrets.save(secret)
        return {}

    def replicate_secret_to_regions(self, ctx: RequestContext, params: dict) -> dict:
        secret = self._live(ctx, params["SecretId"])
        return {"ARN": secret.arn, "ReplicationStatus": [
            {"Region": r["Region"], "KmsKeyId": r.get("KmsKeyId", DEFAULT_KEY), "Status": "InSync"}
            for r in params["AddReplicaRegions"]]}

    # -- the template engine's contract ---------------------------------------------------------

    def secret_value(self, account: str, region: str, secret_id: str, stage: str | None = None,
                     version_id: str | None = None) -> dict | None:
        """A secret's value (``{"SecretString": ...}`` or ``{"SecretBinary": ...}``) or None;
        ``{{resolve:secretsmanager:...}}`` references read it."""
        secret = self.secrets.find(account, region, secret_id)
        if secret is None or secret.deleted is not None:
            return None
        try:
            return self.secrets.value(secret, self.secrets.version(secret, version_id, stage))
        except Exception:
            return None
