"""Bucket operations: create, list, head, delete, location, and the per-bucket
configurations S3 stores (tagging, policy, lifecycle, encryption, ownership,
public access block, ACL). Versioning, CORS, website and notification
configurations live with the behaviour they drive."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from unkai.http import Response
from unkai.protocol import ServiceError
from unkai.services import RequestContext
from unkai.services.s3.state import Bucket, S3Error, invalid_argument, malformed_xml, no_such_bucket, valid_bucket_name

DEFAULT_ENCRYPTION = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                                 "BucketKeyEnabled": False}]}
DEFAULT_PUBLIC_ACCESS_BLOCK = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                               "RestrictPublicBuckets": True}
CANNED_ACLS = ("private", "public-read", "public-read-write", "authenticated-read", "aws-exec-read",
               "bucket-owner-read", "bucket-owner-full-control", "log-delivery-write")


def owner(account: str) -> dict[str, str]:
    """The canonical user S3 reports as every resource's owner."""
    return {"ID": hashlib.sha256(account.encode()).hexdigest()}


def check_tags(tag_set: list[dict], limit: int) -> dict[str, str]:
    tags: dict[str, str] = {}
    for tag in tag_set:
        key, value = tag.get("Key", ""), tag.get("Value", "")
        if key in tags:
            raise S3Error("InvalidTag", "Cannot provide multiple Tags with the same key", TagKey=key)
        if not key or len(key) > 128 or key.lower().startswith("aws:"):
            raise S3Error("InvalidTag", "The TagKey you have provided is invalid", TagKey=key)
        if len(value) > 256:
            raise S3Error("InvalidTag", "The TagValue you have provided is too long", TagKey=key)
        tags[key] = value
    if len(tags) > limit:
        raise S3Error("BadRequest", f"Object tags cannot be greater than {limit}") if limit == 10 else \
            S3Error("InvalidTag", f"Bucket tag count cannot be greater than {limit}")
    return tags


class BucketOps:
    """Mixed into the S3 service."""

    store: Any
    clock: Any
    blobs: Any

    # -- lookups --------------------------------------------------------------------

    def _bucket(self, name: str) -> Bucket:
        row = self.store.one("SELECT id, name, account, region, created, versioning, config FROM s3_buckets "
                             "WHERE name=?", (name,))
        if row is None:
            raise no_such_bucket(name)
        return Bucket(*row[:6], json.loads(row[6]))

    def bucket_named(self, name: str) -> Bucket | None:
        """A bucket by name, or None (used by the website and template code)."""
        try:
            return self._bucket(name)
        except ServiceError:
            return None

    def _save_config(self, bucket: Bucket) -> None:
        self.store.execute("UPDATE s3_buckets SET config=? WHERE id=?", (json.dumps(bucket.config), bucket.id))

    def _get_config(self, bucket_name: str, key: str, code: str, message: str) -> Any:
        bucket = self._bucket(bucket_name)
        value = bucket.config.get(key)
        if value is None:
            raise S3Error(code, message, BucketName=bucket_name)
        return value

    def _set_config(self, bucket_name: str, key: str, value: Any) -> Bucket:
        bucket = self._bucket(bucket_name)
        if value is None:
            bucket.config.pop(key, None)
        else:
            bucket.config[key] = value
        self._save_config(bucket)
        return bucket

    # -- buckets ----------------------------------------------------------------------

    def create_bucket(self, ctx: RequestContext, params: dict) -> dict:
        name = params["Bucket"]
        if not valid_bucket_name(name):
            raise S3Error("InvalidBucketName", "The specified bucket is not valid.", BucketName=name)
        constraint = (params.get("CreateBucketConfiguration") or {}).get("LocationConstraint")
        if constraint == "us-east-1" or (constraint == "" and ctx.region != "us-east-1"):
            raise S3Error("InvalidLocationConstraint", "The specified location-constraint is not valid",
                               LocationConstraint=constraint)
        # the us-east-1 (global) endpoint creates a bucket in any region; a regional one only in its own
        if constraint and constraint != ctx.region and ctx.region != "us-east-1":
            raise S3Error("IllegalLocationConstraintException", f"The {constraint} location constraint is "
                               "incompatible for the region specific endpoint this request was sent to.")
        if not constraint and ctx.region != "us-east-1":
            raise S3Error("IllegalLocationConstraintException", "The unspecified location constraint is "
                               "incompatible for the region specific endpoint this request was sent to.")
        region = constraint or "us-east-1"
        existing = self.store.one("SELECT account, region FROM s3_buckets WHERE name=?", (name,))
        if existing:
            if existing[0] != ctx.account:
                raise S3Error("BucketAlreadyExists", "The requested bucket name is not available. The bucket "
                                   "namespace is shared by all users of the system. Please select a different name "
                                   "and try again.", BucketName=name)
            if existing[1] == "us-east-1" and region == "us-east-1":
                return {"Location": f"/{name}"}  # us-east-1 answers a re-create by the owner with 200
            raise S3Error("BucketAlreadyOwnedByYou", "Your previous request to create the named bucket "
                               "succeeded and you already own it.", BucketName=name)
        ownership = params.get("ObjectOwnership") or "BucketOwnerEnforced"
        acl = params.get("ACL")
        if acl and acl not in ("private", "bucket-owner-full-control") and ownership == "BucketOwnerEnforced":
            raise S3Error("InvalidBucketAclWithObjectOwnership", "Bucket cannot have ACLs set with "
                               "ObjectOwnership's BucketOwnerEnforced setting")
        config: dict[str, Any] = {"OwnershipControls": {"Rules": [{"ObjectOwnership": ownership}]},
                                  "PublicAccessBlock": dict(DEFAULT_PUBLIC_ACCESS_BLOCK)}
        if acl:
            config["ACL"] = acl
        if params.get("ObjectLockEnabledForBucket"):
            config["ObjectLock"] = {"ObjectLockEnabled": "Enabled"}
        self.store.execute("INSERT INTO s3_buckets(name, account, region, created, config) VALUES(?,?,?,?,?)",
                           (name, ctx.account, region, self.clock.now(), json.dumps(config)))
        if params.get("ObjectLockEnabledForBucket"):
            self.store.execute("UPDATE s3_buckets SET versioning='Enabled' WHERE name=?", (name,))
        return {"Location": f"/{name}"}

    def head_bucket(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])
        return {"BucketRegion": bucket.region, "AccessPointAlias": False}

    def get_bucket_location(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])
        return {"LocationConstraint": "" if bucket.region == "us-east-1" else bucket.region}

    def list_buckets(self, ctx: RequestContext, params: dict) -> dict:
        limit = params.get("MaxBuckets") or 10000
        if not 1 <= limit <= 10000:
            raise invalid_argument("Argument max-buckets must be an integer between 1 and 10000", "max-buckets",
                                   str(limit))
        after = ""
        if params.get("ContinuationToken"):
            try:
                after = base64.urlsafe_b64decode(params["ContinuationToken"].encode()).decode()
            except ValueError:
                raise invalid_argument("The continuation token provided is incorrect", "continuation-token",
                                       params["ContinuationToken"]) from None
        sql = "SELECT name, created, region FROM s3_buckets WHERE account=? AND name > ? AND name >= ?"
        args: list[Any] = [ctx.account, after, params.get("Prefix") or ""]
        if params.get("BucketRegion"):
            sql += " AND region=?"
            args.append(params["BucketRegion"])
        rows = self.store.all(sql + " ORDER BY name LIMIT ?", (*args, limit + 1))
        rows = [r for r in rows if r[0].startswith(params.get("Prefix") or "")]
        result: dict[str, Any] = {
            "Buckets": [{"Name": n, "CreationDate": c, "BucketRegion": r} for n, c, r in rows[:limit]],
            "Owner": owner(ctx.account),
        }
        if params.get("Prefix"):
            result["Prefix"] = params["Prefix"]
        if len(rows) > limit:
            result["ContinuationToken"] = base64.urlsafe_b64encode(rows[limit - 1][0].encode()).decode()
        return result

    def delete_bucket(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])
        if self.store.one("SELECT 1 FROM s3_objects WHERE bucket_id=? LIMIT 1", (bucket.id,)):
            message = "The bucket you tried to delete is not empty"
            if bucket.versioned:
                message += ". You must delete all versions in the bucket."
            raise S3Error("BucketNotEmpty", message, BucketName=bucket.name)
        blobs = [b for (b,) in self.store.all(
            "SELECT blob FROM s3_parts JOIN s3_uploads USING(upload_id) WHERE bucket_id=?", (bucket.id,))]
        self.store.execute("DELETE FROM s3_buckets WHERE id=?", (bucket.id,))
        self.store.after_commit(lambda: [self.blobs.discard(b) for b in blobs])
        return {}

    # -- stored configurations --------------------------------------------------------

    def put_bucket_tagging(self, ctx: RequestContext, params: dict) -> Response:
        tags = check_tags(params["Tagging"].get("TagSet") or [], 50)
        self._set_config(params["Bucket"], "Tags", tags)
        # AWS answers 204 No Content (botocore's model leaves the code unset, so say it here)
        return Response(204, [("x-amz-request-id", str(ctx.request_id)), ("x-amz-id-2", str(ctx.request_id))], b"")

    def get_bucket_tagging(self, ctx: RequestContext, params: dict) -> dict:
        tags = self._get_config(params["Bucket"], "Tags", "NoSuchTagSet", "The TagSet does not exist")
        return {"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}

    def delete_bucket_tagging(self, ctx: RequestContext, params: dict) -> dict:
        self._set_config(params["Bucket"], "Tags", None)
        return {}

    def put_bucket_policy(self, ctx: RequestContext, params: dict) -> dict:
        text = params.get("Policy") or ""
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if not isinstance(document, dict) or not text.lstrip().startswith("{"):
            raise S3Error("MalformedPolicy", "Policies must be valid JSON and the first byte must be '{'")
        if "Statement" not in document:
            raise S3Error("MalformedPolicy", "Missing required field Statement")
        self._set_config(params["Bucket"], "Policy", text)
        return {}

    def get_bucket_policy(self, ctx: RequestContext, params: dict) -> dict:
        return {"Policy": self._get_config(params["Bucket"], "Policy", "NoSuchBucketPolicy",
                                           "The bucket policy does not exist")}

    def delete_bucket_policy(self, ctx: RequestContext, params: dict) -> dict:
        self._set_config(params["Bucket"], "Policy", None)
        return {}

    def get_bucket_policy_status(self, ctx: RequestContext, params: dict) -> dict:
        policy = self._get_config(params["Bucket"], "Policy", "NoSuchBucketPolicy",
                                  "The bucket policy does not exist")
        return {"PolicyStatus": {"IsPublic": public_policy(policy)}}

    def put_bucket_lifecycle_configuration(self, ctx: RequestContext, params: dict) -> dict:
        rules = (params.get("LifecycleConfiguration") or {}).get("Rules")
        if not rules:
            raise malformed_xml()
        ids = [r.get("ID") for r in rules if r.get("ID")]
        if len(ids) != len(set(ids)):
            raise invalid_argument("Rule ID must be unique. Found same ID for more than one rule")
        for rule in rules:
            if rule.get("Status") not in ("Enabled", "Disabled"):
                raise malformed_xml()
            if len(rule.get("ID") or "") > 255:
                raise invalid_argument("ID length should not exceed allowed limit of 255")
        self._set_config(params["Bucket"], "Lifecycle", rules)
        size = params.get("TransitionDefaultMinimumObjectSize") or "all_storage_classes_128K"  # AWS's default
        self._set_config(params["Bucket"], "LifecycleMinimumSize", size)
        return {"TransitionDefaultMinimumObjectSize": size}

    def get_bucket_lifecycle_configuration(self, ctx: RequestContext, params: dict) -> dict:
        rules = self._get_config(params["Bucket"], "Lifecycle", "NoSuchLifecycleConfiguration",
                                 "The lifecycle configuration does not exist")
        size = self._bucket(params["Bucket"]).config.get("LifecycleMinimumSize") or "all_storage_classes_128K"
        return {"Rules": rules, "TransitionDefaultMinimumObjectSize": size}

    def delete_bucket_lifecycle(self, ctx: RequestContext, params: dict) -> dict:
        self._set_config(params["Bucket"], "Lifecycle", None)
        return {}

    def put_bucket_encryption(self, ctx: RequestContext, params: dict) -> dict:
        config = params["ServerSideEncryptionConfiguration"]
        for rule in config.get("Rules") or []:
            algorithm = (rule.get("ApplyServerSideEncryptionByDefault") or {}).get("SSEAlgorithm")
            if algorithm not in ("AES256", "aws:kms", "aws:kms:dsse"):
                raise malformed_xml()
        self._set_config(params["Bucket"], "Encryption", config)
        return {}

    def get_bucket_encryption(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])
        return {"ServerSideEncryptionConfiguration": bucket.config.get("Encryption") or DEFAULT_ENCRYPTION}

    def delete_bucket_encryption(self, ctx: RequestContext, params: dict) -> dict:
        self._set_config(params["Bucket"], "Encryption", None)
        return {}

    def put_bucket_ownership_controls(self, ctx: RequestContext, params: dict) -> dict:
        self._set_config(params["Bucket"], "OwnershipControls", params["OwnershipControls"])
        return {}

    def get_bucket_ownership_controls(self, ctx: RequestContext, params: dict) -> dict:
        return {"OwnershipControls": self._get_config(
            params["Bucket"], "OwnershipControls", "OwnershipControlsNotFoundError",
            "The bucket ownership controls were not found")}

    def delete_bucket_ownership_controls(self, ctx: RequestContext, params: dict) -> dict:
        self._set_config(params["Bucket"], "OwnershipControls", None)
        return {}

    def put_public_access_block(self, ctx: RequestContext, params: dict) -> dict:
        self._set_config(params["Bucket"], "PublicAccessBlock", params["PublicAccessBlockConfiguration"])
        return {}

    def get_public_access_block(self, ctx: RequestContext, params: dict) -> dict:
        return {"PublicAccessBlockConfiguration": self._get_config(
            params["Bucket"], "PublicAccessBlock", "NoSuchPublicAccessBlockConfiguration",
            "The public access block configuration was not found")}

    def delete_public_access_block(self, ctx: RequestContext, params: dict) -> dict:
        self._set_config(params["Bucket"], "PublicAccessBlock", None)
        return {}

    def _acl_allowed(self, bucket: Bucket, acl: str | None, grants: bool = False) -> None:
        if acl is not None and acl not in CANNED_ACLS:
            raise invalid_argument("", "x-amz-acl", acl)
        rules = (bucket.config.get("OwnershipControls") or {}).get("Rules") or [{}]
        enforced = rules[0].get("ObjectOwnership") == "BucketOwnerEnforced"
        if enforced and (grants or (acl and acl not in ("private", "bucket-owner-full-control"))):
            raise S3Error("AccessControlListNotSupported", "The bucket does not allow ACLs")

    def _acl(self, account: str, acl: str | None) -> dict:
        me = owner(account)
        grants = [{"Grantee": {"ID": me["ID"], "Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"}]
        if acl in ("public-read", "public-read-write"):
            grants.append({"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
                           "Permission": "READ"})
        if acl == "public-read-write":
            grants.append({"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
                           "Permission": "WRITE"})
        return {"Owner": me, "Grants": grants}

    def get_bucket_acl(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])
        return self._acl(bucket.account, bucket.config.get("ACL"))

    def put_bucket_acl(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])
        self._acl_allowed(bucket, params.get("ACL"), grants="AccessControlPolicy" in params)
        self._set_config(bucket.name, "ACL", params.get("ACL") or "private")
        return {}

    # -- settings kept and read back, not applied (docs/s3.md: accelerate, requester pays, server access
    #    logging, replication, Object Lock retention): the Terraform provider reads each on every refresh

    def put_bucket_accelerate_configuration(self, ctx: RequestContext, params: dict) -> dict:
        status = (params.get("AccelerateConfiguration") or {}).get("Status")
        if status not in ("Enabled", "Suspended"):
            raise malformed_xml()
        if "." in params["Bucket"]:
            raise S3Error("InvalidRequest", "S3 Transfer Acceleration is not supported for buckets with periods "
                                            "(.) in their names")
        self._set_config(params["Bucket"], "Accelerate", status)
        return {}

    def get_bucket_accelerate_configuration(self, ctx: RequestContext, params: dict) -> dict:
        status = self._bucket(params["Bucket"]).config.get("Accelerate")
        return {"Status": status} if status else {}

    def put_bucket_request_payment(self, ctx: RequestContext, params: dict) -> dict:
        payer = (params.get("RequestPaymentConfiguration") or {}).get("Payer")
        if payer not in ("Requester", "BucketOwner"):
            raise malformed_xml()
        self._set_config(params["Bucket"], "Payer", payer)
        return {}

    def get_bucket_request_payment(self, ctx: RequestContext, params: dict) -> dict:
        return {"Payer": self._bucket(params["Bucket"]).config.get("Payer") or "BucketOwner"}

    def put_bucket_logging(self, ctx: RequestContext, params: dict) -> dict:
        enabled = (params.get("BucketLoggingStatus") or {}).get("LoggingEnabled")
        if enabled:
            target = enabled.get("TargetBucket") or ""
            if self.bucket_named(target) is None:
                raise S3Error("InvalidTargetBucketForLogging", "The target bucket for logging does not exist",
                              TargetBucket=target)
        self._set_config(params["Bucket"], "Logging", enabled or None)
        return {}

    def get_bucket_logging(self, ctx: RequestContext, params: dict) -> dict:
        enabled = self._bucket(params["Bucket"]).config.get("Logging")
        return {"LoggingEnabled": enabled} if enabled else {}

    def _require_versioning(self, bucket: Bucket, what: str) -> None:
        if bucket.versioning != "Enabled":
            raise S3Error("InvalidRequest", f"Versioning must be 'Enabled' on the bucket to apply a {what}")

    def put_bucket_replication(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])
        self._require_versioning(bucket, "replication configuration")
        self._set_config(bucket.name, "Replication", params["ReplicationConfiguration"])
        return {}

    def get_bucket_replication(self, ctx: RequestContext, params: dict) -> dict:
        return {"ReplicationConfiguration": self._get_config(
            params["Bucket"], "Replication", "ReplicationConfigurationNotFoundError",
            "The replication configuration was not found")}

    def delete_bucket_replication(self, ctx: RequestContext, params: dict) -> dict:
        self._set_config(params["Bucket"], "Replication", None)
        return {}

    def put_object_lock_configuration(self, ctx: RequestContext, params: dict) -> dict:
        bucket = self._bucket(params["Bucket"])
        self._require_versioning(bucket, "Object Lock configuration")
        config = params.get("ObjectLockConfiguration") or {}
        if config.get("ObjectLockEnabled") != "Enabled":
            raise malformed_xml()
        self._set_config(bucket.name, "ObjectLock", config)
        return {}

    def get_object_lock_configuration(self, ctx: RequestContext, params: dict) -> dict:
        return {"ObjectLockConfiguration": self._get_config(
            params["Bucket"], "ObjectLock", "ObjectLockConfigurationNotFoundError",
            "Object Lock configuration does not exist for this bucket")}

def public_policy(policy: str | None) -> bool:
    """Whether a bucket policy grants anyone (Principal ``*``) something."""
    return any(isinstance(s, dict) and s.get("Effect") == "Allow" and s.get("Principal") in ("*", {"AWS": "*"})
               for s in _statements(policy or ""))


def _statements(policy: str) -> list[dict]:
    try:
        statements = json.loads(policy).get("Statement") or []
    except (ValueError, AttributeError):
        return []
    return statements if isinstance(statements, list) else [statements]
