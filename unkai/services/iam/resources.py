"""IAM's CloudFormation resource types, created through IAM's own operations so a
template's role is the same record as one made with ``aws iam create-role``.

Ref / GetAtt, as CloudFormation documents them:

- ``AWS::IAM::Role``: Ref the role name; Arn, RoleId. Updated in place (name and ARN kept).
- ``AWS::IAM::Policy``, ``RolePolicy``, ``UserPolicy``, ``GroupPolicy``: Ref a generated id; inline
  policies on each named role, user and group.
- ``AWS::IAM::ManagedPolicy``: Ref the policy ARN; PolicyArn, PolicyId, DefaultVersionId,
  AttachmentCount, IsAttachable. A changed document is a new default version.
- ``AWS::IAM::User`` / ``Group``: Ref the name; Arn.
- ``AWS::IAM::AccessKey``: Ref the access key id; SecretAccessKey.
- ``AWS::IAM::InstanceProfile``: Ref the name; Arn.
- ``AWS::IAM::UserToGroupAddition``: Ref a generated id.
- ``AWS::IAM::ServiceLinkedRole``: Ref the role name.
- ``AWS::IAM::OIDCProvider``: Ref the provider ARN; Arn.
"""

from __future__ import annotations

import json
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import Provisioned, ResourceContext
from unkai.template.names import physical_name


def _doc(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _name(ctx: ResourceContext, logical_id: str, props: dict, prop: str, kept: str | None, max_len: int = 64) -> str:
    return props.get(prop) or kept or physical_name(ctx.stack_name, logical_id, max_len)


def create(iam: Any, ctx: ResourceContext, resource_type: str, logical_id: str, props: dict[str, Any],
           kept: str | None = None) -> Provisioned:
    rc = ctx.request_context("iam")
    kind = resource_type.rsplit("::", 1)[-1]
    if kind == "Role":
        name = _name(ctx, logical_id, props, "RoleName", kept)
        params: dict[str, Any] = {"RoleName": name, "AssumeRolePolicyDocument": _doc(props["AssumeRolePolicyDocument"])}
        for key in ("Path", "Description", "MaxSessionDuration", "PermissionsBoundary", "Tags"):
            if props.get(key) is not None:
                params[key] = props[key]
        role = iam.create_role(rc, params)["Role"]
        _fill(iam, rc, "Role", "RoleName", name, props)
        return Provisioned(name, name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})
    if kind in ("Policy", "RolePolicy", "UserPolicy", "GroupPolicy"):
        name = props["PolicyName"]
        doc = _doc(props["PolicyDocument"])
        targets = {"Role": list(props.get("Roles") or []), "User": list(props.get("Users") or []),
                   "Group": list(props.get("Groups") or [])}
        for noun in ("Role", "User", "Group"):
            if props.get(f"{noun}Name"):
                targets[noun].append(props[f"{noun}Name"])
        for noun, names in targets.items():
            for owner in names:
                getattr(iam, f"put_{noun.lower()}_policy")(rc, {f"{noun}Name": owner, "PolicyName": name,
                                                               "PolicyDocument": doc})
        physical = kept or physical_name(ctx.stack_name, logical_id, 64)
        return Provisioned(physical, physical, {"Id": physical})
    if kind == "ManagedPolicy":
        name = props.get("ManagedPolicyName") or (kept.rsplit("/", 1)[-1] if kept else None) or \
            physical_name(ctx.stack_name, logical_id, 128)
        params = {"PolicyName": name, "PolicyDocument": _doc(props["PolicyDocument"])}
        for key in ("Path", "Description"):
            if props.get(key):
                params[key] = props[key]
        policy = iam.create_policy(rc, params)["Policy"]
        for noun in ("Role", "User", "Group"):
            for owner in props.get(f"{noun}s") or []:
                getattr(iam, f"attach_{noun.lower()}_policy")(rc, {f"{noun}Name": owner, "PolicyArn": policy["Arn"]})
        return Provisioned(policy["Arn"], policy["Arn"], _managed_attributes(iam, rc, policy["Arn"]))
    if kind == "User":
        name = _name(ctx, logical_id, props, "UserName", kept)
        params = {"UserName": name}
        for key in ("Path", "PermissionsBoundary", "Tags"):
            if props.get(key) is not None:
                params[key] = props[key]
        user = iam.create_user(rc, params)["User"]
        _fill(iam, rc, "User", "UserName", name, props)
        for group in props.get("Groups") or []:
            iam.add_user_to_group(rc, {"GroupName": group, "UserName": name})
        return Provisioned(name, name, {"Arn": user["Arn"]})
    if kind == "Group":
        name = _name(ctx, logical_id, props, "GroupName", kept, 128)
        params = {"GroupName": name}
        if props.get("Path"):
            params["Path"] = props["Path"]
        group = iam.create_group(rc, params)["Group"]
        _fill(iam, rc, "Group", "GroupName", name, props)
        return Provisioned(name, name, {"Arn": group["Arn"]})
    if kind == "AccessKey":
        key = iam.create_access_key(rc, {"UserName": props["UserName"]})["AccessKey"]
        if props.get("Status") == "Inactive":
            iam.update_access_key(rc, {"UserName": props["UserName"], "AccessKeyId": key["AccessKeyId"],
                                       "Status": "Inactive"})
        return Provisioned(key["AccessKeyId"], key["AccessKeyId"], {"SecretAccessKey": key["SecretAccessKey"]})
    if kind == "InstanceProfile":
        name = _name(ctx, logical_id, props, "InstanceProfileName", kept, 128)
        params = {"InstanceProfileName": name}
        if props.get("Path"):
            params["Path"] = props["Path"]
        profile = iam.create_instance_profile(rc, params)["InstanceProfile"]
        for role in props.get("Roles") or []:
            iam.add_role_to_instance_profile(rc, {"InstanceProfileName": name, "RoleName": role})
        return Provisioned(name, name, {"Arn": profile["Arn"]})
    if kind == "UserToGroupAddition":
        for user in props.get("Users") or []:
            iam.add_user_to_group(rc, {"GroupName": props["GroupName"], "UserName": user})
        physical = kept or physical_name(ctx.stack_name, logical_id, 64)
        return Provisioned(physical, physical)
    if kind == "ServiceLinkedRole":
        params = {"AWSServiceName": props["AWSServiceName"]}
        for key in ("CustomSuffix", "Description"):
            if props.get(key):
                params[key] = props[key]
        role = iam.create_service_linked_role(rc, params)["Role"]
        return Provisioned(role["RoleName"], role["RoleName"], {"Arn": role["Arn"]})
    if kind == "OIDCProvider":
        params = {"Url": props["Url"], "ClientIDList": props.get("ClientIdList") or [],
                  "ThumbprintList": props.get("ThumbprintList") or []}
        if props.get("Tags"):
            params["Tags"] = props["Tags"]
        provider_arn = iam.create_open_id_connect_provider(rc, params)["OpenIDConnectProviderArn"]
        return Provisioned(provider_arn, provider_arn, {"Arn": provider_arn})
    raise ServiceError("InvalidInput", f"unkai cannot create {resource_type}")


def _managed_attributes(iam: Any, rc: Any, policy_arn: str) -> dict:
    policy = iam.get_policy(rc, {"PolicyArn": policy_arn})["Policy"]
    return {"PolicyArn": policy_arn, "PolicyId": policy["PolicyId"], "DefaultVersionId": policy["DefaultVersionId"],
            "AttachmentCount": policy["AttachmentCount"], "IsAttachable": True,
            "CreateDate": str(policy["CreateDate"]), "UpdateDate": str(policy["UpdateDate"])}


def _fill(iam: Any, rc: Any, noun: str, key: str, name: str, props: dict) -> None:
    """A role's, user's or group's inline ``Policies`` and ``ManagedPolicyArns``."""
    low = noun.lower()
    for policy in props.get("Policies") or []:
        getattr(iam, f"put_{low}_policy")(rc, {key: name, "PolicyName": policy["PolicyName"],
                                              "PolicyDocument": _doc(policy["PolicyDocument"])})
    for policy_arn in props.get("ManagedPolicyArns") or []:
        getattr(iam, f"attach_{low}_policy")(rc, {key: name, "PolicyArn": policy_arn})


def _strip(iam: Any, rc: Any, noun: str, key: str, name: str) -> None:
    """Remove what ``_fill`` added (and anything else attached), so the entity can go."""
    low = noun.lower()
    for policy_name in getattr(iam, f"list_{low}_policies")(rc, {key: name, "MaxItems": 1000})["PolicyNames"]:
        getattr(iam, f"delete_{low}_policy")(rc, {key: name, "PolicyName": policy_name})
    for attached in getattr(iam, f"list_attached_{low}_policies")(rc, {key: name, "MaxItems": 1000})["AttachedPolicies"]:
        getattr(iam, f"detach_{low}_policy")(rc, {key: name, "PolicyArn": attached["PolicyArn"]})


def update(iam: Any, ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
           old_props: dict[str, Any], props: dict[str, Any]) -> Provisioned:
    kind = resource_type.rsplit("::", 1)[-1]
    rc = ctx.request_context("iam")
    if kind == "Role" and (props.get("RoleName") or physical_id) == physical_id and \
            props.get("Path") == old_props.get("Path"):
        iam.update_assume_role_policy(rc, {"RoleName": physical_id,
                                           "PolicyDocument": _doc(props["AssumeRolePolicyDocument"])})
        iam.update_role(rc, {"RoleName": physical_id, "Description": props.get("Description"),
                             "MaxSessionDuration": props.get("MaxSessionDuration") or 3600})
        if props.get("PermissionsBoundary"):
            iam.put_role_permissions_boundary(rc, {"RoleName": physical_id,
                                                   "PermissionsBoundary": props["PermissionsBoundary"]})
        else:
            iam.delete_role_permissions_boundary(rc, {"RoleName": physical_id})
        _strip(iam, rc, "Role", "RoleName", physical_id)
        _fill(iam, rc, "Role", "RoleName", physical_id, props)
        role = iam.get_role(rc, {"RoleName": physical_id})["Role"]
        return Provisioned(physical_id, physical_id, {"Arn": role["Arn"], "RoleId": role["RoleId"]})
    if kind == "ManagedPolicy" and (props.get("ManagedPolicyName") or physical_id.rsplit("/", 1)[-1]) == \
            physical_id.rsplit("/", 1)[-1] and props.get("Path") == old_props.get("Path"):
        versions = iam.list_policy_versions(rc, {"PolicyArn": physical_id})["Versions"]
        if len(versions) >= 5:
            oldest = [v for v in versions if not v["IsDefaultVersion"]][-1]
            iam.delete_policy_version(rc, {"PolicyArn": physical_id, "VersionId": oldest["VersionId"]})
        iam.create_policy_version(rc, {"PolicyArn": physical_id, "PolicyDocument": _doc(props["PolicyDocument"]),
                                       "SetAsDefault": True})
        for noun in ("Role", "User", "Group"):
            old, new = set(old_props.get(f"{noun}s") or []), set(props.get(f"{noun}s") or [])
            for owner in old - new:
                _quiet(getattr(iam, f"detach_{noun.lower()}_policy"), rc, {f"{noun}Name": owner,
                                                                          "PolicyArn": physical_id})
            for owner in new - old:
                getattr(iam, f"attach_{noun.lower()}_policy")(rc, {f"{noun}Name": owner, "PolicyArn": physical_id})
        return Provisioned(physical_id, physical_id, _managed_attributes(iam, rc, physical_id))
    delete(iam, ctx, resource_type, physical_id, old_props)
    kept = physical_id if kind in ("User", "Group", "InstanceProfile", "Policy", "RolePolicy", "UserPolicy",
                                   "GroupPolicy", "UserToGroupAddition", "Role") else None
    return create(iam, ctx, resource_type, logical_id, props, kept)


def _quiet(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except ServiceError as exc:
        if exc.code != "NoSuchEntity":
            raise


def delete(iam: Any, ctx: ResourceContext, resource_type: str, physical_id: str, props: dict[str, Any]) -> None:
    rc = ctx.request_context("iam")
    kind = resource_type.rsplit("::", 1)[-1]
    if kind == "Role":
        if iam.role(ctx.account, physical_id) is None:
            return
        _strip(iam, rc, "Role", "RoleName", physical_id)
        for profile in iam.list_instance_profiles_for_role(rc, {"RoleName": physical_id})["InstanceProfiles"]:
            iam.remove_role_from_instance_profile(rc, {"InstanceProfileName": profile["InstanceProfileName"],
                                                       "RoleName": physical_id})
        iam.delete_role(rc, {"RoleName": physical_id})
    elif kind in ("Policy", "RolePolicy", "UserPolicy", "GroupPolicy"):
        for noun in ("Role", "User", "Group"):
            owners = list(props.get(f"{noun}s") or []) + ([props[f"{noun}Name"]] if props.get(f"{noun}Name") else [])
            for owner in owners:
                _quiet(getattr(iam, f"delete_{noun.lower()}_policy"), rc, {f"{noun}Name": owner,
                                                                          "PolicyName": props["PolicyName"]})
    elif kind == "ManagedPolicy":
        if iam.entities.get(ctx.account, "policy", physical_id) is None:
            return
        for kind_name, entity in iam.entities.attachments(ctx.account, physical_id):
            noun = kind_name.capitalize()
            getattr(iam, f"detach_{kind_name}_policy")(rc, {f"{noun}Name": entity[f"{noun}Name"],
                                                            "PolicyArn": physical_id})
        for version in iam.list_policy_versions(rc, {"PolicyArn": physical_id})["Versions"]:
            if not version["IsDefaultVersion"]:
                iam.delete_policy_version(rc, {"PolicyArn": physical_id, "VersionId": version["VersionId"]})
        iam.delete_policy(rc, {"PolicyArn": physical_id})
    elif kind == "User":
        if iam.entities.get(ctx.account, "user", physical_id) is None:
            return
        _strip(iam, rc, "User", "UserName", physical_id)
        for group in iam.list_groups_for_user(rc, {"UserName": physical_id})["Groups"]:
            iam.remove_user_from_group(rc, {"GroupName": group["GroupName"], "UserName": physical_id})
        for key in iam.list_access_keys(rc, {"UserName": physical_id})["AccessKeyMetadata"]:
            iam.delete_access_key(rc, {"UserName": physical_id, "AccessKeyId": key["AccessKeyId"]})
        iam.delete_user(rc, {"UserName": physical_id})
    elif kind == "Group":
        if iam.entities.get(ctx.account, "group", physical_id) is None:
            return
        _strip(iam, rc, "Group", "GroupName", physical_id)
        for user in iam.get_group(rc, {"GroupName": physical_id, "MaxItems": 1000})["Users"]:
            iam.remove_user_from_group(rc, {"GroupName": physical_id, "UserName": user["UserName"]})
        iam.delete_group(rc, {"GroupName": physical_id})
    elif kind == "AccessKey":
        _quiet(iam.delete_access_key, rc, {"AccessKeyId": physical_id})
    elif kind == "InstanceProfile":
        if iam.entities.get(ctx.account, "profile", physical_id) is None:
            return
        for role in iam.get_instance_profile(rc, {"InstanceProfileName": physical_id})["InstanceProfile"]["Roles"]:
            iam.remove_role_from_instance_profile(rc, {"InstanceProfileName": physical_id, "RoleName": role["RoleName"]})
        iam.delete_instance_profile(rc, {"InstanceProfileName": physical_id})
    elif kind == "UserToGroupAddition":
        for user in props.get("Users") or []:
            _quiet(iam.remove_user_from_group, rc, {"GroupName": props["GroupName"], "UserName": user})
    elif kind == "ServiceLinkedRole":
        _quiet(iam.delete_service_linked_role, rc, {"RoleName": physical_id})
    elif kind == "OIDCProvider":
        _quiet(iam.delete_open_id_connect_provider, rc, {"OpenIDConnectProviderArn": physical_id})
