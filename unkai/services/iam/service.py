"""IAM (query protocol, one global endpoint): users, groups, roles, managed and inline
policies, attachments, instance profiles, access keys, OIDC providers and the policy
simulator. Identities are what STS, the gateway's signature check and the policy
evaluator (``principal_policies``) read."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

from unkai.protocol import ServiceError
from unkai.services import RequestContext, Service
from unkai.services.iam import errors, managed, policies
from unkai.services.iam.model import (MIGRATIONS, Entities, access_key_id, arn, check_name, check_path,
                                      secret_key, unique_id)

log = logging.getLogger(__name__)

MAX_MANAGED = 10  # managed policies per user/group/role (the default quota)
MAX_VERSIONS = 5
_KIND = {"User": "user", "Group": "group", "Role": "role"}
_NAME_KEY = {"user": "UserName", "group": "GroupName", "role": "RoleName"}


def _page(key: str, items: list, params: dict, default: int = 100) -> dict:
    start = int(params["Marker"]) if str(params.get("Marker") or "").isdigit() else 0
    size = int(params.get("MaxItems") or default)
    out: dict[str, Any] = {key: items[start:start + size], "IsTruncated": start + size < len(items)}
    if out["IsTruncated"]:
        out["Marker"] = str(start + size)
    return out


def _tags(tags: Any) -> list[dict]:
    tags = tags or []
    if len(tags) > 50:
        raise errors.limit("The number of tags has reached the maximum limit.")
    return [{"Key": t["Key"], "Value": t.get("Value", "")} for t in tags]


def _merge_tags(old: list[dict], new: list[dict]) -> list[dict]:
    merged = {t["Key"]: t["Value"] for t in old}
    merged.update({t["Key"]: t.get("Value", "") for t in new})
    if len(merged) > 50:
        raise errors.limit("The number of tags has reached the maximum limit.")
    return [{"Key": k, "Value": v} for k, v in merged.items()]


def _document(text: Any, kind: str = "identity", member: str = "policyDocument") -> str:
    if not isinstance(text, str) or not text.strip():
        raise errors.validation(str(text), member, "Member must have length greater than or equal to 1")
    if len(text) > (2048 if kind == "trust" else 6144 if kind == "managed" else 10240):
        raise errors.limit(f"Cannot exceed quota for {'ACLSizePerRole' if kind == 'trust' else 'PolicySize'}: "
                           f"{2048 if kind == 'trust' else 6144 if kind == 'managed' else 10240}")
    try:
        policies.parse(text, "trust" if kind == "trust" else "identity")
    except policies.PolicyError as exc:
        raise errors.malformed(str(exc)) from None
    return text


class IAM(Service):
    name = "iam"
    migrations = MIGRATIONS
    resource_types = ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::RolePolicy", "AWS::IAM::UserPolicy",
                      "AWS::IAM::GroupPolicy", "AWS::IAM::ManagedPolicy", "AWS::IAM::User", "AWS::IAM::Group",
                      "AWS::IAM::AccessKey", "AWS::IAM::InstanceProfile", "AWS::IAM::UserToGroupAddition",
                      "AWS::IAM::ServiceLinkedRole", "AWS::IAM::OIDCProvider")

    def check_unimplemented(self, ctx: RequestContext, operation: str, params: dict) -> None:
        """An operation unkai does not serve still answers NoSuchEntity for a missing user, group or role first, as AWS does."""
        for kind, key in _NAME_KEY.items():
            if isinstance(params.get(key), str):
                self.entities.need(ctx.account, kind, params[key])

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.entities = Entities(self.store)
        self._principals: dict[tuple[str, str], tuple[int, Any]] = {}
        self._keys: dict[str, tuple[str, str, str, str] | None] = {}

    async def resetting(self) -> None:
        self._principals.clear()
        self._keys.clear()
        self.entities.generation += 1

    # -- shaping ----------------------------------------------------------------------------

    def _role_out(self, role: dict, full: bool = True) -> dict:
        out = {k: role[k] for k in ("Path", "RoleName", "RoleId", "Arn", "CreateDate") if k in role}
        out["AssumeRolePolicyDocument"] = quote(role["AssumeRolePolicyDocument"])
        out["MaxSessionDuration"] = role.get("MaxSessionDuration", 3600)
        if role.get("Description") is not None:
            out["Description"] = role["Description"]
        if full:
            if role.get("Boundary"):
                out["PermissionsBoundary"] = {"PermissionsBoundaryType": "Policy",
                                              "PermissionsBoundaryArn": role["Boundary"]}
            if role.get("Tags"):
                out["Tags"] = role["Tags"]
            out["RoleLastUsed"] = role.get("RoleLastUsed") or {}
        return out

    def _user_out(self, user: dict, full: bool = True) -> dict:
        out = {k: user[k] for k in ("Path", "UserName", "UserId", "Arn", "CreateDate")}
        if full:
            if user.get("Boundary"):
                out["PermissionsBoundary"] = {"PermissionsBoundaryType": "Policy",
                                              "PermissionsBoundaryArn": user["Boundary"]}
            if user.get("Tags"):
                out["Tags"] = user["Tags"]
        return out

    def _group_out(self, group: dict) -> dict:
        return {k: group[k] for k in ("Path", "GroupName", "GroupId", "Arn", "CreateDate")}

    def _policy_out(self, account: str, policy: dict) -> dict:
        out = {k: policy[k] for k in ("PolicyName", "PolicyId", "Arn", "Path", "DefaultVersionId", "CreateDate",
                                      "UpdateDate")}
        out["AttachmentCount"] = len(self.entities.attachments(account, policy["Arn"]))
        out["PermissionsBoundaryUsageCount"] = self.entities.boundary_uses(account, policy["Arn"])
        out["IsAttachable"] = True
        if policy.get("Description"):
            out["Description"] = policy["Description"]
        if policy.get("Tags"):
            out["Tags"] = policy["Tags"]
        return out

    def _profile_out(self, account: str, profile: dict) -> dict:
        out = {k: profile[k] for k in ("Path", "InstanceProfileName", "InstanceProfileId", "Arn", "CreateDate")}
        roles = [self.entities.get(account, "role", name) for name in profile.get("Roles", [])]
        out["Roles"] = [self._role_out(r, False) for r in roles if r]
        if profile.get("Tags"):
            out["Tags"] = profile["Tags"]
        return out

    def _boundary(self, account: str, policy_arn: Any) -> str | None:
        if policy_arn is None:
            return None
        if self.entities.policy(account, policy_arn) is None:
            raise errors.invalid(f"ARN {policy_arn} is not valid.") if not str(policy_arn).startswith("arn:") \
                else errors.no_such("policy", policy_arn)
        return policy_arn

    # -- roles ------------------------------------------------------------------------------

    def create_role(self, ctx: RequestContext, params: dict) -> dict:
        name = check_name(params["RoleName"], "roleName")
        path = check_path(params.get("Path"))
        doc = _document(params["AssumeRolePolicyDocument"], "trust", "assumeRolePolicyDocument")
        if self.entities.get(ctx.account, "role", name) is not None or \
                self._by_name_ci(ctx.account, "role", name):
            raise errors.exists("role", name)
        duration = params.get("MaxSessionDuration", 3600)
        if not 3600 <= duration <= 43200:
            raise errors.validation(str(duration), "maxSessionDuration",
                                    "Member must have value less than or equal to 43200")
        role = {"Path": path, "RoleName": name, "RoleId": unique_id("role"), "Arn": arn(ctx.account, "role", path, name),
                "CreateDate": self.clock.now(), "AssumeRolePolicyDocument": doc, "MaxSessionDuration": duration,
                "Description": params.get("Description"), "Tags": _tags(params.get("Tags")),
                "Boundary": self._boundary(ctx.account, params.get("PermissionsBoundary")),
                "Inline": {}, "Attached": []}
        self.entities.put(ctx.account, "role", name, role)
        return {"Role": self._role_out(role)}

    def _by_name_ci(self, account: str, kind: str, name: str) -> bool:
        """IAM names are unique case-insensitively."""
        row = self.store.one("SELECT 1 FROM iam_entities WHERE account=? AND kind=? AND name=? COLLATE NOCASE",
                             (account, kind, name))
        return row is not None

    def get_role(self, ctx: RequestContext, params: dict) -> dict:
        return {"Role": self._role_out(self.entities.need(ctx.account, "role", params["RoleName"]))}

    def list_roles(self, ctx: RequestContext, params: dict) -> dict:
        prefix = params.get("PathPrefix") or "/"
        roles = [self._role_out(r, False) for r in self.entities.all(ctx.account, "role")
                 if r["Path"].startswith(prefix)]
        return _page("Roles", roles, params)

    def delete_role(self, ctx: RequestContext, params: dict) -> dict:
        role = self.entities.need(ctx.account, "role", params["RoleName"])
        if role["Path"].startswith("/aws-service-role/"):
            raise errors.unmodifiable(f"Cannot perform the operation on the protected role '{role['RoleName']}' - "
                                      "this role is only modifiable by AWS")
        if role["Attached"]:
            raise errors.conflict("Cannot delete entity, must detach all policies first.")
        if role["Inline"]:
            raise errors.conflict("Cannot delete entity, must delete policies first.")
        if any(role["RoleName"] in p.get("Roles", []) for p in self.entities.all(ctx.account, "profile")):
            raise errors.conflict("Cannot delete entity, must remove roles from instance profile first.")
        self.entities.delete(ctx.account, "role", role["RoleName"])
        return {}

    def update_role(self, ctx: RequestContext, params: dict) -> dict:
        role = self.entities.need(ctx.account, "role", params["RoleName"])
        if "Description" in params:
            role["Description"] = params["Description"]
        if "MaxSessionDuration" in params:
            role["MaxSessionDuration"] = params["MaxSessionDuration"]
        self.entities.put(ctx.account, "role", role["RoleName"], role)
        return {}

    def update_role_description(self, ctx: RequestContext, params: dict) -> dict:
        role = self.entities.need(ctx.account, "role", params["RoleName"])
        role["Description"] = params["Description"]
        self.entities.put(ctx.account, "role", role["RoleName"], role)
        return {"Role": self._role_out(role)}

    def update_assume_role_policy(self, ctx: RequestContext, params: dict) -> dict:
        role = self.entities.need(ctx.account, "role", params["RoleName"])
        role["AssumeRolePolicyDocument"] = _document(params["PolicyDocument"], "trust")
        self.entities.put(ctx.account, "role", role["RoleName"], role)
        return {}

    def create_service_linked_role(self, ctx: RequestContext, params: dict) -> dict:
        service = params["AWSServiceName"]
        if not service.endswith(".amazonaws.com"):
            raise errors.invalid(f"Invalid service name: {service}")
        prefix = service.split(".", 1)[0]
        base = "AWSServiceRoleFor" + "".join(p.capitalize() for p in prefix.replace("-", " ").split())
        name = base + (f"_{params['CustomSuffix']}" if params.get("CustomSuffix") else "")
        if self.entities.get(ctx.account, "role", name) is not None:
            raise ServiceError("InvalidInput", f"Service role name {name} has been taken in this account, please "
                               "try a different suffix.")
        path = f"/aws-service-role/{service}/"
        trust = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})
        role = {"Path": path, "RoleName": name, "RoleId": unique_id("role"), "Arn": arn(ctx.account, "role", path, name),
                "CreateDate": self.clock.now(), "AssumeRolePolicyDocument": trust, "MaxSessionDuration": 3600,
                "Description": params.get("Description"), "Tags": [], "Boundary": None, "Inline": {}, "Attached": []}
        self.entities.put(ctx.account, "role", name, role)
        return {"Role": self._role_out(role)}

    def delete_service_linked_role(self, ctx: RequestContext, params: dict) -> dict:
        role = self.entities.need(ctx.account, "role", params["RoleName"])
        self.entities.delete(ctx.account, "role", role["RoleName"])
        return {"DeletionTaskId": f"task/aws-service-role/{role['Path'].split('/')[2]}/{role['RoleName']}/"
                                  f"{unique_id('role')[4:]}"}

    def get_service_linked_role_deletion_status(self, ctx: RequestContext, params: dict) -> dict:
        return {"Status": "SUCCEEDED"}

    # -- users --------------------------------------------------------------------------------

    def create_user(self, ctx: RequestContext, params: dict) -> dict:
        name = check_name(params["UserName"], "userName")
        path = check_path(params.get("Path"))
        if self.entities.get(ctx.account, "user", name) is not None or self._by_name_ci(ctx.account, "user", name):
            raise errors.exists("user", name)
        user = {"Path": path, "UserName": name, "UserId": unique_id("user"), "Arn": arn(ctx.account, "user", path, name),
                "CreateDate": self.clock.now(), "Tags": _tags(params.get("Tags")),
                "Boundary": self._boundary(ctx.account, params.get("PermissionsBoundary")),
                "Inline": {}, "Attached": [], "Groups": []}
        self.entities.put(ctx.account, "user", name, user)
        return {"User": self._user_out(user)}

    def get_user(self, ctx: RequestContext, params: dict) -> dict:
        name = params.get("UserName")
        if not name:
            caller = self.cloud.service("sts").identity_of(ctx)
            if caller.kind == "root":
                return {"User": {"UserId": ctx.account, "Arn": f"arn:aws:iam::{ctx.account}:root",
                                 "CreateDate": 0, "Path": "/", "UserName": ""}}
            name = caller.arn.rsplit("/", 1)[-1]
        return {"User": self._user_out(self.entities.need(ctx.account, "user", name))}

    def list_users(self, ctx: RequestContext, params: dict) -> dict:
        prefix = params.get("PathPrefix") or "/"
        users = [self._user_out(u, False) for u in self.entities.all(ctx.account, "user")
                 if u["Path"].startswith(prefix)]
        return _page("Users", users, params)

    def update_user(self, ctx: RequestContext, params: dict) -> dict:
        user = self.entities.need(ctx.account, "user", params["UserName"])
        new_name = params.get("NewUserName")
        if "NewPath" in params:
            user["Path"] = check_path(params["NewPath"], "newPath")
        if new_name and new_name != user["UserName"]:
            check_name(new_name, "newUserName")
            if self.entities.get(ctx.account, "user", new_name) is not None:
                raise errors.exists("user", new_name)
            self.entities.delete(ctx.account, "user", user["UserName"])
            self.store.execute("UPDATE iam_access_keys SET user=? WHERE account=? AND user=?",
                               (new_name, ctx.account, user["UserName"]))
            user["UserName"] = new_name
            self._keys.clear()
            self.cloud.service("sts").forget()
        user["Arn"] = arn(ctx.account, "user", user["Path"], user["UserName"])
        self.entities.put(ctx.account, "user", user["UserName"], user)
        return {}

    def delete_user(self, ctx: RequestContext, params: dict) -> dict:
        user = self.entities.need(ctx.account, "user", params["UserName"])
        if self.store.one("SELECT 1 FROM iam_access_keys WHERE account=? AND user=?", (ctx.account, user["UserName"])):
            raise errors.conflict("Cannot delete entity, must delete access keys first.")
        if user["Attached"]:
            raise errors.conflict("Cannot delete entity, must detach all policies first.")
        if user["Inline"]:
            raise errors.conflict("Cannot delete entity, must delete policies first.")
        if user["Groups"]:
            raise errors.conflict("Cannot delete entity, must remove users from group first.")
        self.entities.delete(ctx.account, "user", user["UserName"])
        return {}

    # -- groups -------------------------------------------------------------------------------

    def create_group(self, ctx: RequestContext, params: dict) -> dict:
        name = check_name(params["GroupName"], "groupName", 128)
        path = check_path(params.get("Path"))
        if self.entities.get(ctx.account, "group", name) is not None or self._by_name_ci(ctx.account, "group", name):
            raise errors.exists("group", name)
        group = {"Path": path, "GroupName": name, "GroupId": unique_id("group"),
                 "Arn": arn(ctx.account, "group", path, name), "CreateDate": self.clock.now(), "Inline": {},
                 "Attached": []}
        self.entities.put(ctx.account, "group", name, group)
        return {"Group": self._group_out(group)}

    def get_group(self, ctx: RequestContext, params: dict) -> dict:
        group = self.entities.need(ctx.account, "group", params["GroupName"])
        users = [self._user_out(u, False) for u in self.entities.all(ctx.account, "user")
                 if group["GroupName"] in u["Groups"]]
        return {"Group": self._group_out(group), **_page("Users", users, params)}

    def list_groups(self, ctx: RequestContext, params: dict) -> dict:
        prefix = params.get("PathPrefix") or "/"
        groups = [self._group_out(g) for g in self.entities.all(ctx.account, "group") if g["Path"].startswith(prefix)]
        return _page("Groups", groups, params)

    def delete_group(self, ctx: RequestContext, params: dict) -> dict:
        group = self.entities.need(ctx.account, "group", params["GroupName"])
        if any(group["GroupName"] in u["Groups"] for u in self.entities.all(ctx.account, "user")):
            raise errors.conflict("Cannot delete entity, must remove users from group first.")
        if group["Attached"]:
            raise errors.conflict("Cannot delete entity, must detach all policies first.")
        if group["Inline"]:
            raise errors.conflict("Cannot delete entity, must delete policies first.")
        self.entities.delete(ctx.account, "group", group["GroupName"])
        return {}

    def add_user_to_group(self, ctx: RequestContext, params: dict) -> dict:
        group = self.entities.need(ctx.account, "group", params["GroupName"])
        user = self.entities.need(ctx.account, "user", params["UserName"])
        if group["GroupName"] not in user["Groups"]:
            user["Groups"].append(group["GroupName"])
            self.entities.put(ctx.account, "user", user["UserName"], user)
        return {}

    def remove_user_from_group(self, ctx: RequestContext, params: dict) -> dict:
        group = self.entities.need(ctx.account, "group", params["GroupName"])
        user = self.entities.need(ctx.account, "user", params["UserName"])
        if group["GroupName"] in user["Groups"]:
            user["Groups"].remove(group["GroupName"])
            self.entities.put(ctx.account, "user", user["UserName"], user)
        return {}

    def list_groups_for_user(self, ctx: RequestContext, params: dict) -> dict:
        user = self.entities.need(ctx.account, "user", params["UserName"])
        groups = [self._group_out(g) for g in (self.entities.get(ctx.account, "group", n) for n in user["Groups"]) if g]
        return _page("Groups", groups, params)

    # -- inline and attached policies (users, groups, roles alike) -------------------------------

    def _put_inline(self, ctx: RequestContext, kind: str, params: dict) -> dict:
        entity = self.entities.need(ctx.account, kind, params[_NAME_KEY[kind]])
        name = check_name(params["PolicyName"], "policyName", 128)
        entity["Inline"][name] = _document(params["PolicyDocument"])
        self.entities.put(ctx.account, kind, entity[_NAME_KEY[kind]], entity)
        return {}

    def _get_inline(self, ctx: RequestContext, kind: str, params: dict) -> dict:
        entity = self.entities.need(ctx.account, kind, params[_NAME_KEY[kind]])
        doc = entity["Inline"].get(params["PolicyName"])
        if doc is None:
            raise errors.no_such_inline(kind, entity[_NAME_KEY[kind]], params["PolicyName"])
        return {_NAME_KEY[kind]: entity[_NAME_KEY[kind]], "PolicyName": params["PolicyName"],
                "PolicyDocument": quote(doc)}

    def _delete_inline(self, ctx: RequestContext, kind: str, params: dict) -> dict:
        entity = self.entities.need(ctx.account, kind, params[_NAME_KEY[kind]])
        if entity["Inline"].pop(params["PolicyName"], None) is None:
            raise errors.no_such_inline(kind, entity[_NAME_KEY[kind]], params["PolicyName"])
        self.entities.put(ctx.account, kind, entity[_NAME_KEY[kind]], entity)
        return {}

    def _list_inline(self, ctx: RequestContext, kind: str, params: dict) -> dict:
        entity = self.entities.need(ctx.account, kind, params[_NAME_KEY[kind]])
        return _page("PolicyNames", sorted(entity["Inline"]), params)

    def _attach(self, ctx: RequestContext, kind: str, params: dict) -> dict:
        entity = self.entities.need(ctx.account, kind, params[_NAME_KEY[kind]])
        policy_arn = params["PolicyArn"]
        if not str(policy_arn).startswith("arn:"):
            raise errors.invalid(f"ARN {policy_arn} is not valid.")
        if self.entities.policy(ctx.account, policy_arn) is None:
            raise errors.no_such("policy", policy_arn)
        if policy_arn not in entity["Attached"]:
            if len(entity["Attached"]) >= MAX_MANAGED:
                raise errors.limit(f"Cannot exceed quota for PoliciesPer{kind.capitalize()}: {MAX_MANAGED}")
            entity["Attached"].append(policy_arn)
            self.entities.put(ctx.account, kind, entity[_NAME_KEY[kind]], entity)
        return {}

    def _detach(self, ctx: RequestContext, kind: str, params: dict) -> dict:
        entity = self.entities.need(ctx.account, kind, params[_NAME_KEY[kind]])
        if params["PolicyArn"] not in entity["Attached"]:
            raise ServiceError("NoSuchEntity", f"Policy {params['PolicyArn']} was not found.")
        entity["Attached"].remove(params["PolicyArn"])
        self.entities.put(ctx.account, kind, entity[_NAME_KEY[kind]], entity)
        return {}

    def _list_attached(self, ctx: RequestContext, kind: str, params: dict) -> dict:
        entity = self.entities.need(ctx.account, kind, params[_NAME_KEY[kind]])
        out = []
        for policy_arn in entity["Attached"]:
            policy = self.entities.policy(ctx.account, policy_arn)
            if policy and policy["Path"].startswith(params.get("PathPrefix") or "/"):
                out.append({"PolicyName": policy["PolicyName"], "PolicyArn": policy_arn})
        return _page("AttachedPolicies", out, params)

    def _put_boundary(self, ctx: RequestContext, kind: str, params: dict) -> dict:
        entity = self.entities.need(ctx.account, kind, params[_NAME_KEY[kind]])
        entity["Boundary"] = self._boundary(ctx.account, params["PermissionsBoundary"])
        self.entities.put(ctx.account, kind, entity[_NAME_KEY[kind]], entity)
        return {}

    def _delete_boundary(self, ctx: RequestContext, kind: str, params: dict) -> dict:
        entity = self.entities.need(ctx.account, kind, params[_NAME_KEY[kind]])
        entity["Boundary"] = None
        self.entities.put(ctx.account, kind, entity[_NAME_KEY[kind]], entity)
        return {}

    def _tag(self, ctx: RequestContext, kind: str, params: dict) -> dict:
        entity = self._tagged(ctx, kind, params)
        entity["Tags"] = _merge_tags(entity.get("Tags") or [], params["Tags"])
        self._save_tagged(ctx, kind, entity)
        return {}

    def _untag(self, ctx: RequestContext, kind: str, params: dict) -> dict:
        entity = self._tagged(ctx, kind, params)
        entity["Tags"] = [t for t in entity.get("Tags") or [] if t["Key"] not in params["TagKeys"]]
        self._save_tagged(ctx, kind, entity)
        return {}

    def _list_tags(self, ctx: RequestContext, kind: str, params: dict) -> dict:
        return _page("Tags", self._tagged(ctx, kind, params).get("Tags") or [], params)

    def _tagged(self, ctx: RequestContext, kind: str, params: dict) -> dict:
        if kind == "policy":
            policy = self.entities.get(ctx.account, "policy", params["PolicyArn"])
            if policy is None:
                raise errors.no_such("policy", params["PolicyArn"])
            return policy
        if kind == "profile":
            return self.entities.need(ctx.account, "profile", params["InstanceProfileName"])
        if kind == "oidc":
            return self._oidc(ctx, params["OpenIDConnectProviderArn"])
        return self.entities.need(ctx.account, kind, params[_NAME_KEY[kind]])

    def _save_tagged(self, ctx: RequestContext, kind: str, entity: dict) -> None:
        key = {"policy": "Arn", "profile": "InstanceProfileName", "oidc": "Arn"}.get(kind) or _NAME_KEY[kind]
        self.entities.put(ctx.account, kind, entity[key], entity)

    # -- managed policies -----------------------------------------------------------------------

    def create_policy(self, ctx: RequestContext, params: dict) -> dict:
        name = check_name(params["PolicyName"], "policyName", 128)
        path = check_path(params.get("Path"))
        policy_arn = arn(ctx.account, "policy", path, name)
        doc = _document(params["PolicyDocument"], "managed")
        if self.entities.get(ctx.account, "policy", policy_arn) is not None:
            raise errors.exists("policy", name)
        now = self.clock.now()
        policy = {"PolicyName": name, "PolicyId": unique_id("policy"), "Arn": policy_arn, "Path": path,
                  "DefaultVersionId": "v1", "CreateDate": now, "UpdateDate": now,
                  "Description": params.get("Description"), "Tags": _tags(params.get("Tags")),
                  "Versions": [{"VersionId": "v1", "Document": doc, "CreateDate": now}], "NextVersion": 2}
        self.entities.put(ctx.account, "policy", policy_arn, policy)
        out = self._policy_out(ctx.account, policy)
        out.pop("Description", None)
        return {"Policy": out}

    def _need_policy(self, ctx: RequestContext, policy_arn: str) -> dict:
        policy = self.entities.policy(ctx.account, policy_arn)
        if policy is None:
            raise ServiceError("NoSuchEntity", f"Policy {policy_arn} was not found.")
        return policy

    def get_policy(self, ctx: RequestContext, params: dict) -> dict:
        return {"Policy": self._policy_out(ctx.account, self._need_policy(ctx, params["PolicyArn"]))}

    def list_policies(self, ctx: RequestContext, params: dict) -> dict:
        scope = params.get("Scope") or "All"
        found = []
        if scope in ("All", "AWS"):
            found += [self.entities.policy(ctx.account, managed.arn(n)) for n in sorted(managed.POLICIES)]
        if scope in ("All", "Local"):
            found += self.entities.all(ctx.account, "policy")
        prefix = params.get("PathPrefix") or "/"
        out = []
        for p in found:
            if not p["Path"].startswith(prefix):
                continue
            shaped = self._policy_out(ctx.account, p)
            if params.get("OnlyAttached") and not shaped["AttachmentCount"]:
                continue
            shaped.pop("Description", None)
            out.append(shaped)
        return _page("Policies", out, params)

    def delete_policy(self, ctx: RequestContext, params: dict) -> dict:
        policy = self._need_policy(ctx, params["PolicyArn"])
        if policy.get("aws"):
            raise errors.unmodifiable("Cannot delete an AWS managed policy.")
        if self.entities.attachments(ctx.account, policy["Arn"]):
            raise errors.conflict("Cannot delete a policy attached to entities.")
        if len(policy["Versions"]) > 1:
            raise errors.conflict("This policy has more than one version. Before you delete a policy, you must "
                                  "delete the policy's versions. The default version is deleted with the policy.")
        self.entities.delete(ctx.account, "policy", policy["Arn"])
        return {}

    def create_policy_version(self, ctx: RequestContext, params: dict) -> dict:
        policy = self._need_policy(ctx, params["PolicyArn"])
        if policy.get("aws"):
            raise errors.unmodifiable("Cannot modify an AWS managed policy.")
        doc = _document(params["PolicyDocument"], "managed")
        if len(policy["Versions"]) >= MAX_VERSIONS:
            raise errors.limit("A managed policy can have up to 5 versions. Before you create a new version, you "
                               "must delete an existing version.")
        version = {"VersionId": f"v{policy['NextVersion']}", "Document": doc, "CreateDate": self.clock.now()}
        policy["NextVersion"] += 1
        policy["Versions"].append(version)
        if params.get("SetAsDefault"):
            policy["DefaultVersionId"] = version["VersionId"]
        policy["UpdateDate"] = version["CreateDate"]
        self.entities.put(ctx.account, "policy", policy["Arn"], policy)
        return {"PolicyVersion": self._version_out(policy, version, with_doc=False)}

    @staticmethod
    def _version_out(policy: dict, version: dict, with_doc: bool = True) -> dict:
        out = {"VersionId": version["VersionId"], "IsDefaultVersion": version["VersionId"] == policy["DefaultVersionId"],
               "CreateDate": version["CreateDate"]}
        if with_doc:
            out["Document"] = quote(version["Document"])
        return out

    def get_policy_version(self, ctx: RequestContext, params: dict) -> dict:
        policy = self._need_policy(ctx, params["PolicyArn"])
        for v in policy["Versions"]:
            if v["VersionId"] == params["VersionId"]:
                return {"PolicyVersion": self._version_out(policy, v)}
        raise errors.no_such_version(policy["Arn"], params["VersionId"])

    def list_policy_versions(self, ctx: RequestContext, params: dict) -> dict:
        policy = self._need_policy(ctx, params["PolicyArn"])
        versions = [self._version_out(policy, v, False) for v in reversed(policy["Versions"])]
        return _page("Versions", versions, params)

    def delete_policy_version(self, ctx: RequestContext, params: dict) -> dict:
        policy = self._need_policy(ctx, params["PolicyArn"])
        if params["VersionId"] == policy["DefaultVersionId"]:
            raise errors.conflict("Cannot delete the default version of a policy.")
        kept = [v for v in policy["Versions"] if v["VersionId"] != params["VersionId"]]
        if len(kept) == len(policy["Versions"]):
            raise errors.no_such_version(policy["Arn"], params["VersionId"])
        policy["Versions"] = kept
        self.entities.put(ctx.account, "policy", policy["Arn"], policy)
        return {}

    def set_default_policy_version(self, ctx: RequestContext, params: dict) -> dict:
        policy = self._need_policy(ctx, params["PolicyArn"])
        if not any(v["VersionId"] == params["VersionId"] for v in policy["Versions"]):
            raise errors.no_such_version(policy["Arn"], params["VersionId"])
        policy["DefaultVersionId"] = params["VersionId"]
        self.entities.put(ctx.account, "policy", policy["Arn"], policy)
        return {}

    def list_entities_for_policy(self, ctx: RequestContext, params: dict) -> dict:
        policy = self._need_policy(ctx, params["PolicyArn"])
        wanted = params.get("EntityFilter")
        groups, users, roles = [], [], []
        for kind, entity in self.entities.attachments(ctx.account, policy["Arn"]):
            if wanted and wanted.lower() != kind:
                continue
            if kind == "group":
                groups.append({"GroupName": entity["GroupName"], "GroupId": entity["GroupId"]})
            elif kind == "user":
                users.append({"UserName": entity["UserName"], "UserId": entity["UserId"]})
            else:
                roles.append({"RoleName": entity["RoleName"], "RoleId": entity["RoleId"]})
        return {"PolicyGroups": groups, "PolicyUsers": users, "PolicyRoles": roles, "IsTruncated": False}

    # -- instance profiles -------------------------------------------------------------------

    def create_instance_profile(self, ctx: RequestContext, params: dict) -> dict:
        name = check_name(params["InstanceProfileName"], "instanceProfileName", 128)
        path = check_path(params.get("Path"))
        if self.entities.get(ctx.account, "profile", name) is not None:
            raise errors.exists("profile", name)
        profile = {"Path": path, "InstanceProfileName": name, "InstanceProfileId": unique_id("profile"),
                   "Arn": arn(ctx.account, "profile", path, name), "CreateDate": self.clock.now(), "Roles": [],
                   "Tags": _tags(params.get("Tags"))}
        self.entities.put(ctx.account, "profile", name, profile)
        return {"InstanceProfile": self._profile_out(ctx.account, profile)}

    def get_instance_profile(self, ctx: RequestContext, params: dict) -> dict:
        profile = self.entities.need(ctx.account, "profile", params["InstanceProfileName"])
        return {"InstanceProfile": self._profile_out(ctx.account, profile)}

    def list_instance_profiles(self, ctx: RequestContext, params: dict) -> dict:
        prefix = params.get("PathPrefix") or "/"
        found = [self._profile_out(ctx.account, p) for p in self.entities.all(ctx.account, "profile")
                 if p["Path"].startswith(prefix)]
        return _page("InstanceProfiles", found, params)

    def list_instance_profiles_for_role(self, ctx: RequestContext, params: dict) -> dict:
        role = self.entities.need(ctx.account, "role", params["RoleName"])
        found = [self._profile_out(ctx.account, p) for p in self.entities.all(ctx.account, "profile")
                 if role["RoleName"] in p["Roles"]]
        return _page("InstanceProfiles", found, params)

    def delete_instance_profile(self, ctx: RequestContext, params: dict) -> dict:
        profile = self.entities.need(ctx.account, "profile", params["InstanceProfileName"])
        if profile["Roles"]:
            raise errors.conflict("Cannot delete entity, must remove roles from instance profile first.")
        self.entities.delete(ctx.account, "profile", profile["InstanceProfileName"])
        return {}

    def add_role_to_instance_profile(self, ctx: RequestContext, params: dict) -> dict:
        profile = self.entities.need(ctx.account, "profile", params["InstanceProfileName"])
        role = self.entities.need(ctx.account, "role", params["RoleName"])
        if profile["Roles"]:
            raise errors.limit("Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1")
        profile["Roles"].append(role["RoleName"])
        self.entities.put(ctx.account, "profile", profile["InstanceProfileName"], profile)
        return {}

    def remove_role_from_instance_profile(self, ctx: RequestContext, params: dict) -> dict:
        profile = self.entities.need(ctx.account, "profile", params["InstanceProfileName"])
        if params["RoleName"] not in profile["Roles"]:
            raise errors.no_such("role", params["RoleName"])
        profile["Roles"].remove(params["RoleName"])
        self.entities.put(ctx.account, "profile", profile["InstanceProfileName"], profile)
        return {}

    # -- access keys ----------------------------------------------------------------------------

    def create_access_key(self, ctx: RequestContext, params: dict) -> dict:
        name = params.get("UserName")
        if not name:
            raise errors.invalid("Must specify userName when calling with non-User credentials")
        user = self.entities.need(ctx.account, "user", name)
        count = self.store.one("SELECT COUNT(*) FROM iam_access_keys WHERE account=? AND user=?",
                               (ctx.account, user["UserName"]))[0]
        if count >= 2:
            raise errors.limit("Cannot exceed quota for AccessKeysPerUser: 2")
        key_id, secret = access_key_id(), secret_key()
        now = self.clock.now()
        self.store.execute("INSERT INTO iam_access_keys (key_id, account, user, secret, status, created) "
                           "VALUES (?, ?, ?, ?, 'Active', ?)",
                           (key_id, ctx.account, user["UserName"],
                            self.cloud.sealer.seal(secret.encode(), key_id.encode()), now))
        self._keys.pop(key_id, None)
        return {"AccessKey": {"UserName": user["UserName"], "AccessKeyId": key_id, "Status": "Active",
                              "SecretAccessKey": secret, "CreateDate": now}}

    def list_access_keys(self, ctx: RequestContext, params: dict) -> dict:
        user = self.entities.need(ctx.account, "user", params["UserName"]) if params.get("UserName") else None
        rows = self.store.all("SELECT key_id, user, status, created FROM iam_access_keys WHERE account=? AND user=? "
                              "ORDER BY created", (ctx.account, user["UserName"] if user else ""))
        keys = [{"UserName": r[1], "AccessKeyId": r[0], "Status": r[2], "CreateDate": r[3]} for r in rows]
        return _page("AccessKeyMetadata", keys, params)

    def _key_row(self, ctx: RequestContext, params: dict) -> tuple:
        row = self.store.one("SELECT key_id, user FROM iam_access_keys WHERE key_id=? AND account=?",
                             (params["AccessKeyId"], ctx.account))
        if row is None or (params.get("UserName") and row[1] != params["UserName"]):
            raise errors.no_such_key(params["AccessKeyId"])
        return row

    def update_access_key(self, ctx: RequestContext, params: dict) -> dict:
        self._key_row(ctx, params)
        if params["Status"] not in ("Active", "Inactive"):
            raise errors.validation(params["Status"], "status", "Member must satisfy enum value set: "
                                    "[Active, Inactive]")
        self.store.execute("UPDATE iam_access_keys SET status=? WHERE key_id=?", (params["Status"], params["AccessKeyId"]))
        self._keys.pop(params["AccessKeyId"], None)
        self.cloud.service("sts").forget()
        return {}

    def delete_access_key(self, ctx: RequestContext, params: dict) -> dict:
        self._key_row(ctx, params)
        self.store.execute("DELETE FROM iam_access_keys WHERE key_id=?", (params["AccessKeyId"],))
        self._keys.pop(params["AccessKeyId"], None)
        self.cloud.service("sts").forget()
        return {}

    def get_access_key_last_used(self, ctx: RequestContext, params: dict) -> dict:
        row = self.store.one("SELECT user, last_used, last_service, last_region FROM iam_access_keys "
                             "WHERE key_id=? AND account=?", (params["AccessKeyId"], ctx.account))
        if row is None:
            raise errors.no_such_key(params["AccessKeyId"])
        used = {"ServiceName": row[2] or "N/A", "Region": row[3] or "N/A"}
        if row[1]:
            used["LastUsedDate"] = row[1]
        return {"UserName": row[0], "AccessKeyLastUsed": used}

    def access_key(self, key_id: str) -> tuple[str, str, str, str, str] | None:
        """(account, user ARN, user id, secret, status) of an IAM user's access key, for signature checks."""
        if key_id in self._keys:
            return self._keys[key_id]
        row = self.store.one("SELECT account, user, secret, status FROM iam_access_keys WHERE key_id=?", (key_id,))
        found = None
        if row is not None:
            user = self.entities.get(row[0], "user", row[1])
            if user is not None:
                secret = self.cloud.sealer.unseal(row[2], key_id.encode()).decode()
                found = (row[0], user["Arn"], user["UserId"], secret, row[3])
        self._keys[key_id] = found
        return found

    # -- OIDC providers -------------------------------------------------------------------------

    def _oidc(self, ctx: RequestContext, provider_arn: str) -> dict:
        found = self.entities.get(ctx.account, "oidc", provider_arn)
        if found is None:
            raise errors.no_such("oidc", provider_arn)
        return found

    def create_open_id_connect_provider(self, ctx: RequestContext, params: dict) -> dict:
        url = params["Url"]
        if not url.startswith("https://"):
            raise errors.validation(url, "url", "Member must satisfy constraint: the URL must begin with https://")
        host = url[len("https://"):].rstrip("/")
        provider_arn = f"arn:aws:iam::{ctx.account}:oidc-provider/{host}"
        if self.entities.get(ctx.account, "oidc", provider_arn) is not None:
            raise errors.exists("oidc", url)
        provider = {"Arn": provider_arn, "Url": host, "ClientIDList": params.get("ClientIDList") or [],
                    "ThumbprintList": params.get("ThumbprintList") or [], "CreateDate": self.clock.now(),
                    "Tags": _tags(params.get("Tags"))}
        self.entities.put(ctx.account, "oidc", provider_arn, provider)
        return {"OpenIDConnectProviderArn": provider_arn, "Tags": provider["Tags"]}

    def get_open_id_connect_provider(self, ctx: RequestContext, params: dict) -> dict:
        p = self._oidc(ctx, params["OpenIDConnectProviderArn"])
        return {k: p[k] for k in ("Url", "ClientIDList", "ThumbprintList", "CreateDate", "Tags")}

    def list_open_id_connect_providers(self, ctx: RequestContext, params: dict) -> dict:
        return {"OpenIDConnectProviderList": [{"Arn": p["Arn"]} for p in self.entities.all(ctx.account, "oidc")]}

    def delete_open_id_connect_provider(self, ctx: RequestContext, params: dict) -> dict:
        self._oidc(ctx, params["OpenIDConnectProviderArn"])
        self.entities.delete(ctx.account, "oidc", params["OpenIDConnectProviderArn"])
        return {}

    def add_client_id_to_open_id_connect_provider(self, ctx: RequestContext, params: dict) -> dict:
        p = self._oidc(ctx, params["OpenIDConnectProviderArn"])
        if params["ClientID"] not in p["ClientIDList"]:
            p["ClientIDList"].append(params["ClientID"])
        self.entities.put(ctx.account, "oidc", p["Arn"], p)
        return {}

    def update_open_id_connect_provider_thumbprint(self, ctx: RequestContext, params: dict) -> dict:
        p = self._oidc(ctx, params["OpenIDConnectProviderArn"])
        p["ThumbprintList"] = params["ThumbprintList"]
        self.entities.put(ctx.account, "oidc", p["Arn"], p)
        return {}

    # -- account-wide views -------------------------------------------------------------------

    def get_account_authorization_details(self, ctx: RequestContext, params: dict) -> dict:
        wanted = set(params.get("Filter") or ["User", "Role", "Group", "LocalManagedPolicy", "AWSManagedPolicy"])
        inline = lambda e: [{"PolicyName": k, "PolicyDocument": quote(v)} for k, v in e["Inline"].items()]  # noqa: E731
        attached = lambda e: [{"PolicyName": a.rsplit("/", 1)[-1], "PolicyArn": a} for a in e["Attached"]]  # noqa: E731
        out: dict[str, Any] = {"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": [], "Policies": [],
                               "IsTruncated": False}
        if "User" in wanted:
            for u in self.entities.all(ctx.account, "user"):
                out["UserDetailList"].append({**self._user_out(u), "UserPolicyList": inline(u),
                                              "GroupList": u["Groups"], "AttachedManagedPolicies": attached(u)})
        if "Group" in wanted:
            for g in self.entities.all(ctx.account, "group"):
                out["GroupDetailList"].append({**self._group_out(g), "GroupPolicyList": inline(g),
                                               "AttachedManagedPolicies": attached(g)})
        if "Role" in wanted:
            profiles = self.entities.all(ctx.account, "profile")
            for r in self.entities.all(ctx.account, "role"):
                out["RoleDetailList"].append({
                    **self._role_out(r), "RolePolicyList": inline(r), "AttachedManagedPolicies": attached(r),
                    "InstanceProfileList": [self._profile_out(ctx.account, p) for p in profiles
                                            if r["RoleName"] in p["Roles"]]})
        found = []
        if "LocalManagedPolicy" in wanted:
            found += self.entities.all(ctx.account, "policy")
        if "AWSManagedPolicy" in wanted:
            found += [p for p in (self.entities.policy(ctx.account, managed.arn(n)) for n in sorted(managed.POLICIES))
                      if self.entities.attachments(ctx.account, p["Arn"])]
        for p in found:
            out["Policies"].append({**self._policy_out(ctx.account, p), "PolicyVersionList": [
                self._version_out(p, v) for v in p["Versions"]]})
        return out

    def get_account_summary(self, ctx: RequestContext, params: dict) -> dict:
        count = lambda kind: len(self.entities.all(ctx.account, kind))  # noqa: E731
        return {"SummaryMap": {"Users": count("user"), "Groups": count("group"), "Roles": count("role"),
                               "Policies": count("policy"), "InstanceProfiles": count("profile"),
                               "UsersQuota": 5000, "GroupsQuota": 300, "RolesQuota": 1000, "PoliciesQuota": 1500,
                               "AttachedPoliciesPerRoleQuota": MAX_MANAGED, "PolicyVersionsInUseQuota": 10000,
                               "AccessKeysPerUserQuota": 2}}

    def list_account_aliases(self, ctx: RequestContext, params: dict) -> dict:
        return {"AccountAliases": [], "IsTruncated": False}

    # -- enforcement ----------------------------------------------------------------------------

    @property
    def enforcing(self) -> str:
        """``on`` (deny as AWS would), ``log`` (only report) or empty (off)."""
        return getattr(self.config, "enforce_iam", "") or ""

    def denied(self, caller: Any, action: str, resource: str, reason: str) -> None:
        """The one readable line a denial (or, in log mode, a would-be denial) writes."""
        mode = "denied" if self.enforcing == "on" else "would deny"
        log.warning("IAM %s: %s -> %s on %s %s", mode, caller.arn, action, resource, reason)
        self.cloud.feed.publish("iam.denied", principal=caller.arn, action=action, resource=resource,
                                reason=reason, enforced=self.enforcing == "on")

    # -- what a principal may do (the evaluator's input) ----------------------------------------

    def principal_policies(self, account: str, principal_arn: str) -> tuple[list, list | None] | None:
        """The compiled identity-based policies and permissions boundary of a user or role
        ARN, or None when no such principal exists. Cached until IAM changes."""
        key = (account, principal_arn)
        cached = self._principals.get(key)
        if cached is not None and cached[0] == self.entities.generation:
            return cached[1]
        kind_path = principal_arn.split(":", 5)[-1]
        kind, _, rest = kind_path.partition("/")
        name = rest.rsplit("/", 1)[-1]
        if kind not in ("user", "role"):
            return None
        entity = self.entities.get(account, kind, name)
        if entity is None:
            return None
        found = self._compiled(account, entity, f"{kind}")
        if kind == "user":
            for group_name in entity["Groups"]:
                group = self.entities.get(account, "group", group_name)
                if group:
                    found += self._compiled(account, group, "group")
        boundary = None
        if entity.get("Boundary"):
            policy = self.entities.policy(account, entity["Boundary"])
            boundary = [self._named(policy["PolicyName"], self.entities.default_document(policy))] if policy else []
        result = (found, boundary)
        self._principals[key] = (self.entities.generation, result)
        return result

    def _compiled(self, account: str, entity: dict, kind: str) -> list:
        out = [self._named(name, doc) for name, doc in entity["Inline"].items()]
        for policy_arn in entity["Attached"]:
            policy = self.entities.policy(account, policy_arn)
            if policy is not None:
                out.append(self._named(policy_arn, self.entities.default_document(policy)))
        return out

    @staticmethod
    def _named(name: str, text: str) -> policies.Compiled:
        compiled = policies.compile_text(text)
        return policies.Compiled(compiled.statements, name)

    def role(self, account: str, name: str) -> dict | None:
        """A role's record (trust policy, max session duration) for STS."""
        return self.entities.get(account, "role", name)

    # -- the simulator ---------------------------------------------------------------------

    def simulate_principal_policy(self, ctx: RequestContext, params: dict) -> dict:
        found = self.principal_policies(ctx.account, params["PolicySourceArn"])
        if found is None:
            raise errors.invalid(f"Invalid Entity Arn: {params['PolicySourceArn']} does not clearly define entity "
                                 "type and name.") if ":" not in params["PolicySourceArn"] else \
                errors.no_such("role" if ":role/" in params["PolicySourceArn"] else "user",
                               params["PolicySourceArn"].rsplit("/", 1)[-1])
        identity, boundary = found
        extra = [self._named(f"PolicyInputList.{i + 1}", _document(d)) for i, d in
                 enumerate(params.get("PolicyInputList") or [])]
        return self._simulate(ctx, params, identity + extra, boundary, params["PolicySourceArn"])

    def simulate_custom_policy(self, ctx: RequestContext, params: dict) -> dict:
        identity = [self._named(f"PolicyInputList.{i + 1}", _document(d)) for i, d in
                    enumerate(params["PolicyInputList"])]
        boundary = [self._named(f"PermissionsBoundaryPolicyInputList.{i + 1}", _document(d)) for i, d in
                    enumerate(params.get("PermissionsBoundaryPolicyInputList") or [])] or None
        return self._simulate(ctx, params, identity, boundary, params.get("CallerArn") or "")

    def _simulate(self, ctx: RequestContext, params: dict, identity: list, boundary: list | None,
                  caller: str) -> dict:
        context: dict[str, Any] = {"aws:PrincipalArn": caller, "aws:PrincipalAccount": ctx.account}
        for entry in params.get("ContextEntries") or []:
            values = entry.get("ContextKeyValues") or []
            context[entry["ContextKeyName"]] = values if entry.get("ContextKeyType", "").endswith("List") \
                else (values[0] if values else None)
        resource_policy = None
        if params.get("ResourcePolicy"):
            try:
                policies.parse(params["ResourcePolicy"], "resource")
            except policies.PolicyError as exc:
                raise errors.malformed(str(exc)) from None
            resource_policy = [self._named("ResourcePolicy", params["ResourcePolicy"])]
        results = []
        for action in params["ActionNames"]:
            for resource in params.get("ResourceArns") or ["*"]:
                decision = policies.evaluate(action, resource, context, identity, resource_policy, boundary)
                result: dict[str, Any] = {"EvalActionName": action, "EvalResourceName": resource,
                                          "EvalDecision": decision.decision, "MatchedStatements": [],
                                          "MissingContextValues": []}
                if decision.statement is not None:
                    result["MatchedStatements"].append({"SourcePolicyId": decision.policy,
                                                        "SourcePolicyType": "IAM Policy"})
                if boundary is not None:
                    result["PermissionsBoundaryDecisionDetail"] = {
                        "AllowedByPermissionsBoundary": "permissions boundary" not in decision.reason}
                results.append(result)
        return _page("EvaluationResults", results, params)


def _bind(kind: str, method: str) -> Any:
    def handler(self: IAM, ctx: RequestContext, params: dict) -> dict:
        return getattr(self, method)(ctx, kind, params)
    handler.__name__ = method
    return handler


for _noun, _kind in _KIND.items():
    _low = _noun.lower()
    setattr(IAM, f"put_{_low}_policy", _bind(_kind, "_put_inline"))
    setattr(IAM, f"get_{_low}_policy", _bind(_kind, "_get_inline"))
    setattr(IAM, f"delete_{_low}_policy", _bind(_kind, "_delete_inline"))
    setattr(IAM, f"list_{_low}_policies", _bind(_kind, "_list_inline"))
    setattr(IAM, f"attach_{_low}_policy", _bind(_kind, "_attach"))
    setattr(IAM, f"detach_{_low}_policy", _bind(_kind, "_detach"))
    setattr(IAM, f"list_attached_{_low}_policies", _bind(_kind, "_list_attached"))
    if _kind != "group":
        setattr(IAM, f"put_{_low}_permissions_boundary", _bind(_kind, "_put_boundary"))
        setattr(IAM, f"delete_{_low}_permissions_boundary", _bind(_kind, "_delete_boundary"))
        setattr(IAM, f"tag_{_low}", _bind(_kind, "_tag"))
        setattr(IAM, f"untag_{_low}", _bind(_kind, "_untag"))
        setattr(IAM, f"list_{_low}_tags", _bind(_kind, "_list_tags"))
for _noun, _kind in (("policy", "policy"), ("instance_profile", "profile"), ("open_id_connect_provider", "oidc")):
    setattr(IAM, f"tag_{_noun}", _bind(_kind, "_tag"))
    setattr(IAM, f"untag_{_noun}", _bind(_kind, "_untag"))
    setattr(IAM, f"list_{_noun}_tags", _bind(_kind, "_list_tags"))
