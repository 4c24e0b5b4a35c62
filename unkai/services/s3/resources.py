"""AWS::S3::Bucket and AWS::S3::BucketPolicy for templates, created through the
service's own operations so a template's bucket behaves like an API-created one.
CloudFormation's property shapes differ from the API's; they are translated here."""

from __future__ import annotations

import json
from typing import Any

from unkai.services import Provisioned, ResourceContext
from unkai.services.s3.website import website_url
from unkai.template.names import physical_name

CANNED = {"Private": "private", "PublicRead": "public-read", "PublicReadWrite": "public-read-write",
          "AuthenticatedRead": "authenticated-read", "LogDeliveryWrite": "log-delivery-write",
          "BucketOwnerRead": "bucket-owner-read", "BucketOwnerFullControl": "bucket-owner-full-control",
          "AwsExecRead": "aws-exec-read"}


def _filter(cfn: dict | None) -> dict | None:
    rules = ((cfn or {}).get("S3Key") or {}).get("Rules")
    return {"Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}} if rules else None


def notification_config(props: dict) -> dict:
    cfn = props.get("NotificationConfiguration") or {}
    out: dict[str, list] = {}
    for section, arn_field, cfn_section, cfn_field in (
            ("QueueConfigurations", "QueueArn", "QueueConfigurations", "Queue"),
            ("TopicConfigurations", "TopicArn", "TopicConfigurations", "Topic"),
            ("LambdaFunctionConfigurations", "LambdaFunctionArn", "LambdaConfigurations", "Function")):
        for item in cfn.get(cfn_section) or []:
            entry: dict[str, Any] = {arn_field: item[cfn_field], "Events": [item["Event"]]}
            if _filter(item.get("Filter")):
                entry["Filter"] = _filter(item.get("Filter"))
            out.setdefault(section, []).append(entry)
    if str((cfn.get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled", "")).lower() == "true":
        out["EventBridgeConfiguration"] = {}  # type: ignore[assignment]
    return out


def website_config(cfn: dict) -> dict:
    out: dict[str, Any] = {}
    if cfn.get("IndexDocument"):
        out["IndexDocument"] = {"Suffix": cfn["IndexDocument"]}
    if cfn.get("ErrorDocument"):
        out["ErrorDocument"] = {"Key": cfn["ErrorDocument"]}
    if cfn.get("RedirectAllRequestsTo"):
        out["RedirectAllRequestsTo"] = cfn["RedirectAllRequestsTo"]
    rules = []
    for rule in cfn.get("RoutingRules") or []:
        entry: dict[str, Any] = {"Redirect": {k: str(v) for k, v in (rule.get("RedirectRule") or {}).items()}}
        if rule.get("RoutingRuleCondition"):
            entry["Condition"] = {k: str(v) for k, v in rule["RoutingRuleCondition"].items()}
        rules.append(entry)
    if rules:
        out["RoutingRules"] = rules
    return out


def cors_rules(cfn: dict) -> list[dict]:
    rules = []
    for rule in cfn.get("CorsRules") or []:
        entry: dict[str, Any] = {"AllowedMethods": rule["AllowedMethods"], "AllowedOrigins": rule["AllowedOrigins"]}
        for src, dst in (("AllowedHeaders", "AllowedHeaders"), ("ExposedHeaders", "ExposeHeaders"), ("Id", "ID"),
                         ("MaxAge", "MaxAgeSeconds")):
            if rule.get(src) is not None:
                entry[dst] = int(rule[src]) if dst == "MaxAgeSeconds" else rule[src]
        rules.append(entry)
    return rules


def lifecycle_rules(cfn: dict) -> list[dict]:
    rules = []
    for rule in cfn.get("Rules") or []:
        entry: dict[str, Any] = {"Status": rule.get("Status", "Enabled")}
        if rule.get("Id"):
            entry["ID"] = rule["Id"]
        entry["Filter"] = {"Prefix": rule.get("Prefix", "")}
        if rule.get("ExpirationInDays") is not None:
            entry["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
        if rule.get("NoncurrentVersionExpirationInDays") is not None:
            entry["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])}
        if rule.get("AbortIncompleteMultipartUpload"):
            entry["AbortIncompleteMultipartUpload"] = {
                "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])}
        rules.append(entry)
    return rules


class ResourceOps:
    """Mixed into the S3 service."""

    config: Any

    def create_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str, props: dict) -> Provisioned:
        if resource_type == "AWS::S3::BucketPolicy":
            self._policy_resource(ctx, props)
            return Provisioned(props["Bucket"])
        name = props.get("BucketName") or physical_name(ctx.stack_name, logical_id, 63).lower()
        rctx = ctx.request_context("s3", "CreateBucket")
        params: dict[str, Any] = {"Bucket": name}
        if ctx.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": ctx.region}
        ownership = ((props.get("OwnershipControls") or {}).get("Rules") or [{}])[0].get("ObjectOwnership")
        if ownership:
            params["ObjectOwnership"] = ownership
        self.create_bucket(rctx, params)  # type: ignore[attr-defined]
        self._apply(ctx, name, {}, props)
        return self._provisioned(ctx, name)

    def update_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
                        old_props: dict, props: dict) -> Provisioned:
        if resource_type == "AWS::S3::BucketPolicy" or old_props.get("BucketName") != props.get("BucketName"):
            return super().update_resource(ctx, resource_type, logical_id, physical_id,  # type: ignore[misc]
                                           old_props, props)
        self._apply(ctx, physical_id, old_props, props)
        return self._provisioned(ctx, physical_id)

    def delete_resource(self, ctx: ResourceContext, resource_type: str, physical_id: str, props: dict) -> None:
        rctx = ctx.request_context("s3")
        if resource_type == "AWS::S3::BucketPolicy":
            self.delete_bucket_policy(rctx, {"Bucket": physical_id})  # type: ignore[attr-defined]
            return
        self.delete_bucket(rctx, {"Bucket": physical_id})  # type: ignore[attr-defined]

    def _policy_resource(self, ctx: ResourceContext, props: dict) -> None:
        document = props.get("PolicyDocument") or {}
        text = document if isinstance(document, str) else json.dumps(document)
        self.put_bucket_policy(ctx.request_context("s3"), {"Bucket": props["Bucket"], "Policy": text})  # type: ignore

    def _provisioned(self, ctx: ResourceContext, name: str) -> Provisioned:
        bucket = self._bucket(name)  # type: ignore[attr-defined]
        return Provisioned(name, name, {
            "Arn": bucket.arn,
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{bucket.region}.amazonaws.com",
            "DualStackDomainName": f"{name}.s3.dualstack.{bucket.region}.amazonaws.com",
            "WebsiteURL": website_url(name, self.config.endpoint),
        })

    def _apply(self, ctx: ResourceContext, name: str, old: dict, props: dict) -> None:
        """Make the bucket's configurations match the template's properties."""
        rctx = ctx.request_context("s3")
        b = {"Bucket": name}
        versioning = (props.get("VersioningConfiguration") or {}).get("Status")
        if versioning:
            self.put_bucket_versioning(rctx, {**b, "VersioningConfiguration": {"Status": versioning}})  # type: ignore
        elif (old.get("VersioningConfiguration") or {}).get("Status"):
            self.put_bucket_versioning(rctx, {**b, "VersioningConfiguration": {"Status": "Suspended"}})  # type: ignore
        tags = props.get("Tags") or []
        if tags:
            self.put_bucket_tagging(rctx, {**b, "Tagging": {"TagSet": [  # type: ignore[attr-defined]
                {"Key": t["Key"], "Value": str(t["Value"])} for t in tags]}})
        else:
            self.delete_bucket_tagging(rctx, b)  # type: ignore[attr-defined]
        if props.get("CorsConfiguration"):
            self.put_bucket_cors(rctx, {**b, "CORSConfiguration": {  # type: ignore[attr-defined]
                "CORSRules": cors_rules(props["CorsConfiguration"])}})
        else:
            self.delete_bucket_cors(rctx, b)  # type: ignore[attr-defined]
        if props.get("WebsiteConfiguration"):
            self.put_bucket_website(rctx, {**b, "WebsiteConfiguration": website_config(  # type: ignore
                props["WebsiteConfiguration"])})
        else:
            self.delete_bucket_website(rctx, b)  # type: ignore[attr-defined]
        if props.get("LifecycleConfiguration"):
            self.put_bucket_lifecycle_configuration(rctx, {**b, "LifecycleConfiguration": {  # type: ignore
                "Rules": lifecycle_rules(props["LifecycleConfiguration"])}})
        else:
            self.delete_bucket_lifecycle(rctx, b)  # type: ignore[attr-defined]
        if props.get("PublicAccessBlockConfiguration"):
            self.put_public_access_block(rctx, {**b, "PublicAccessBlockConfiguration":  # type: ignore
                                                {k: bool(v) for k, v in props["PublicAccessBlockConfiguration"].items()
                                                 }})
        if props.get("BucketEncryption"):
            rules = [{"ApplyServerSideEncryptionByDefault": r.get("ServerSideEncryptionByDefault") or {},
                      "BucketKeyEnabled": bool(r.get("BucketKeyEnabled", False))}
                     for r in props["BucketEncryption"].get("ServerSideEncryptionConfiguration") or []]
            self.put_bucket_encryption(rctx, {**b, "ServerSideEncryptionConfiguration": {"Rules": rules}})  # type: ignore
        if props.get("AccessControl"):
            self.put_bucket_acl(rctx, {**b, "ACL": CANNED.get(props["AccessControl"], props["AccessControl"])})  # type: ignore
        notification = notification_config(props)
        if notification or old.get("NotificationConfiguration"):
            self.put_bucket_notification_configuration(rctx, {  # type: ignore[attr-defined]
                **b, "NotificationConfiguration": notification})
