"""KMS's operations (JSON protocol): keys (symmetric, RSA, ECC, HMAC), aliases, key
policies, grants, rotation, deletion on unkai's clock, and the cryptographic operations
over ``crypto.py``."""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import Provisioned, RequestContext, ResourceContext, Service
from unkai.services.kms import crypto
from unkai.services.kms.keys import MIGRATIONS, Key, Keys, default_policy, managed_policy, new_key_data, not_found

_ALIAS = re.compile(r"^alias/[a-zA-Z0-9/_-]+$")
_USAGES = ("ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC")


def _validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def _page(key: str, items: list, params: dict, default: int = 100) -> dict:
    start = int(params["Marker"]) if str(params.get("Marker") or "").isdigit() else 0
    size = int(params.get("Limit") or default)
    out: dict[str, Any] = {key: items[start:start + size], "Truncated": start + size < len(items)}
    if out["Truncated"]:
        out["NextMarker"] = str(start + size)
    return out


class KMS(Service):
    name = "kms"
    migrations = MIGRATIONS
    resource_types = ("AWS::KMS::Key", "AWS::KMS::Alias")

    def check_unimplemented(self, ctx: RequestContext, operation: str, params: dict) -> None:
        """An operation unkai does not serve still answers NotFoundException for a missing key first, as AWS does."""
        if isinstance(params.get("KeyId"), str):
            self._key(ctx, params["KeyId"], usable=False)

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.keys = Keys(self.store, cloud.sealer, self.clock)

    # -- finding keys ----------------------------------------------------------------------

    def find_key(self, account: str, region: str, key_ref: str) -> Key | None:
        """A key by id, key ARN, alias name or alias ARN (the contract other services use)."""
        ref = key_ref or ""
        if ref.startswith("arn:"):
            parts = ref.split(":", 5)
            if len(parts) < 6:
                return None
            region, account, ref = parts[3], parts[4], parts[5]
            if ref.startswith("key/"):
                ref = ref[4:]
        if ref.startswith("alias/"):
            target = self.keys.alias_target(account, region, ref)
            if target is None and ref.startswith("alias/aws/"):
                return self._managed_key(account, region, ref)
            return self.keys.by_id(account, region, target) if target else None
        return self.keys.by_id(account, region, ref)

    def _managed_key(self, account: str, region: str, alias: str) -> Key:
        """AWS managed keys (alias/aws/s3, alias/aws/secretsmanager...) exist once used."""
        service = alias.split("/", 2)[2]
        data = new_key_data("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", self.clock.now(), KeyManager="AWS",
                            Description=f"Default key that protects my {service} data when no other key is "
                                        f"defined", Policy=managed_policy(account, region, service))
        key = self.keys.create(account, region, data, [crypto.new_material("SYMMETRIC_DEFAULT")])
        self.keys.set_alias(account, region, alias, key.key_id)
        return key

    def _key(self, ctx: RequestContext, key_ref: Any, usable: bool = True) -> Key:
        if not isinstance(key_ref, str) or not key_ref:
            raise _validation("1 validation error detected: Value null at 'keyId' failed to satisfy constraint: "
                              "Member must not be null")
        key = self.find_key(ctx.account, ctx.region, key_ref)
        if key is None:
            if "alias/" in key_ref:
                alias = key_ref if key_ref.startswith("arn:") else \
                    f"arn:aws:kms:{ctx.region}:{ctx.account}:{key_ref}"
                raise not_found(f"Alias {alias} is not found.")
            arn = key_ref if key_ref.startswith("arn:") else f"arn:aws:kms:{ctx.region}:{ctx.account}:key/{key_ref}"
            raise not_found(f"Key '{arn}' does not exist")
        if usable:
            self._usable(key)
        return key

    @staticmethod
    def _usable(key: Key) -> None:
        if key.state == "Disabled":
            raise ServiceError("DisabledException", f"{key.arn} is disabled.")
        if key.state == "PendingDeletion":
            raise ServiceError("KMSInvalidStateException", f"{key.arn} is pending deletion.")

    def _metadata(self, key: Key) -> dict:
        """KeyMetadata as DescribeKey answers it (made once per stored metadata; never changed by callers)."""
        derived = key.derived
        if derived is None:
            return self._make_metadata(key.view)
        found = derived.get("metadata")
        if found is None:
            found = derived["metadata"] = self._make_metadata(key.view)
        return found

    @staticmethod
    def _make_metadata(d: Any) -> dict:
        out = {k: d[k] for k in ("AWSAccountId", "KeyId", "Arn", "CreationDate", "Enabled", "Description",
                                 "KeyUsage", "KeyState", "Origin", "KeyManager", "CustomerMasterKeySpec",
                                 "KeySpec", "MultiRegion") if k in d}
        for k in ("EncryptionAlgorithms", "SigningAlgorithms", "MacAlgorithms", "DeletionDate",
                  "PendingDeletionWindowInDays"):
            if d.get(k) is not None:
                out[k] = d[k]
        return out

    @staticmethod
    def _need_usage(key: Key, usage: str) -> None:
        if key.view["KeyUsage"] != usage:
            raise ServiceError("InvalidKeyUsageException", f"{key.arn} key usage is {key.view['KeyUsage']} which is "
                               f"not valid for this operation.")

    # -- keys ----------------------------------------------------------------------------------

    def create_key(self, ctx: RequestContext, params: dict) -> dict:
        spec = params.get("KeySpec") or params.get("CustomerMasterKeySpec") or "SYMMETRIC_DEFAULT"
        if spec not in crypto.SPECS:
            raise _validation(f"1 validation error detected: Value '{spec}' at 'keySpec' failed to satisfy "
                              f"constraint: Member must satisfy enum value set: {list(crypto.SPECS)}")
        usage = params.get("KeyUsage") or ("GENERATE_VERIFY_MAC" if spec.startswith("HMAC") else "ENCRYPT_DECRYPT")
        allowed = {"SYMMETRIC_DEFAULT": ("ENCRYPT_DECRYPT",), "HMAC": ("GENERATE_VERIFY_MAC",),
                   "RSA": ("ENCRYPT_DECRYPT", "SIGN_VERIFY"), "ECC": ("SIGN_VERIFY",)}
        family = spec if spec == "SYMMETRIC_DEFAULT" else spec.split("_")[0]
        if usage not in allowed[family]:
            raise _validation(f"KeyUsage {usage} is not compatible with KeySpec {spec}")
        policy = params.get("Policy") or default_policy(ctx.account)
        self._check_policy(policy)
        origin = params.get("Origin") or "AWS_KMS"
        if origin not in ("AWS_KMS", "EXTERNAL"):
            raise ServiceError("UnsupportedOperationException", f"Origin {origin} is not supported by unkai.")
        data = new_key_data(spec, usage, self.clock.now(), Description=params.get("Description") or "",
                            Policy=policy, Tags=params.get("Tags") or [], MultiRegion=bool(params.get("MultiRegion")),
                            Origin=origin)
        if origin == "EXTERNAL":
            data.update({"KeyState": "PendingImport", "Enabled": False})
        key = self.keys.create(ctx.account, ctx.region, data, [] if origin == "EXTERNAL" else
                               [crypto.new_material(spec)])
        return {"KeyMetadata": self._metadata(key)}

    def _check_policy(self, policy: str) -> None:
        from unkai.services.iam import policies

        if len(policy) > 32768:
            raise ServiceError("LimitExceededException", "Key policy is too large.")
        try:
            policies.parse(policy, "resource")
        except policies.PolicyError as exc:
            raise ServiceError("MalformedPolicyDocumentException", str(exc)) from None

    def describe_key(self, ctx: RequestContext, params: dict) -> dict:
        return {"KeyMetadata": self._metadata(self._key(ctx, params.get("KeyId"), usable=False))}

    def list_keys(self, ctx: RequestContext, params: dict) -> dict:
        keys = [{"KeyId": k.key_id, "KeyArn": k.arn} for k in self.keys.all(ctx.account, ctx.region)]
        return _page("Keys", keys, params, 1000)

    def update_key_description(self, ctx: RequestContext, params: dict) -> dict:
        key = self._key(ctx, params.get("KeyId"), usable=False)
        key.data["Description"] = params["Description"]
        self.keys.save(key)
        return {}

    def enable_key(self, ctx: RequestContext, params: dict) -> dict:
        key = self._key(ctx, params.get("KeyId"), usable=False)
        if key.state == "PendingDeletion":
            self._usable(key)
        key.data.update({"KeyState": "Enabled", "Enabled": True})
        self.keys.save(key)
        return {}

    def disable_key(self, ctx: RequestContext, params: dict) -> dict:
        key = self._key(ctx, params.get("KeyId"), usable=False)
        if key.state == "PendingDeletion":
            self._usable(key)
        key.data.update({"KeyState": "Disabled", "Enabled": False})
        self.keys.save(key)
        return {}

    def schedule_key_deletion(self, ctx: RequestContext, params: dict) -> dict:
        key = self._key(ctx, params.get("KeyId"), usable=False)
        days = params.get("PendingWindowInDays") or 30
        if not 7 <= days <= 30:
            raise _validation(f"1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to "
                              "satisfy constraint: Member must have value less than or equal to 30")
        if key.state == "PendingDeletion":
            self._usable(key)
        key.data.update({"KeyState": "PendingDeletion", "Enabled": False, "PendingDeletionWindowInDays": days,
                         "DeletionDate": self.clock.now() + days * 86400})
        self.keys.save(key)
        return {"KeyId": key.arn, "DeletionDate": key.data["DeletionDate"], "KeyState": "PendingDeletion",
                "PendingWindowInDays": days}

    def cancel_key_deletion(self, ctx: RequestContext, params: dict) -> dict:
        key = self._key(ctx, params.get("KeyId"), usable=False)
        if key.state != "PendingDeletion":
            raise ServiceError("KMSInvalidStateException", f"{key.arn} is not pending deletion.")
        key.data.update({"KeyState": "Disabled", "Enabled": False})
        key.data.pop("DeletionDate", None)
        key.data.pop("PendingDeletionWindowInDays", None)
        self.keys.save(key)
        return {"KeyId": key.arn}

    # -- rotation -----------------------------------------------------------------------------

    def _symmetric(self, ctx: RequestContext, params: dict) -> Key:
        key = self._key(ctx, params.get("KeyId"), usable=False)
        if key.spec != "SYMMETRIC_DEFAULT":
            raise ServiceError("UnsupportedOperationException", f"{key.arn} key usage or key spec is not valid for "
                               "rotation.")
        return key

    def enable_key_rotation(self, ctx: RequestContext, params: dict) -> dict:
        key = self._symmetric(ctx, params)
        self._usable(key)
        period = params.get("RotationPeriodInDays") or 365
        if not 90 <= period <= 2560:
            raise _validation("RotationPeriodInDays must be between 90 and 2560.")
        key.data.update({"RotationEnabled": True, "RotationPeriodInDays": period,
                         "NextRotationDate": self.clock.now() + period * 86400})
        self.keys.save(key)
        return {}

    def disable_key_rotation(self, ctx: RequestContext, params: dict) -> dict:
        key = self._symmetric(ctx, params)
        self._usable(key)
        key.data["RotationEnabled"] = False
        key.data.pop("NextRotationDate", None)
        self.keys.save(key)
        return {}

    def get_key_rotation_status(self, ctx: RequestContext, params: dict) -> dict:
        key = self._key(ctx, params.get("KeyId"), usable=False)
        self._rotate_due(key)
        out = {"KeyRotationEnabled": bool(key.data.get("RotationEnabled")), "KeyId": key.arn}
        if key.data.get("RotationEnabled"):
            out["RotationPeriodInDays"] = key.data["RotationPeriodInDays"]
            out["NextRotationDate"] = key.data["NextRotationDate"]
        return out

    def rotate_key_on_demand(self, ctx: RequestContext, params: dict) -> dict:
        key = self._symmetric(ctx, params)
        self._usable(key)
        self._rotate(key, "ON_DEMAND")
        return {"KeyId": key.key_id}

    def list_key_rotations(self, ctx: RequestContext, params: dict) -> dict:
        key = self._symmetric(ctx, params)
        self._rotate_due(key)
        return _page("Rotations", [{"KeyId": key.key_id, **r} for r in key.data.get("Rotations", [])], params)

    def _rotate(self, key: Key, kind: str) -> None:
        self.keys.add_material(key, crypto.new_material(key.spec))
        key.data.setdefault("Rotations", []).append({"RotationDate": self.clock.now(), "RotationType": kind})
        self.keys.save(key)

    def _rotate_due(self, key: Key) -> None:
        """Automatic rotation on unkai's clock: new material once the period has passed
        (older material keeps decrypting what it encrypted)."""
        due = key.view.get("NextRotationDate")
        if due and key.view.get("RotationEnabled") and due <= self.clock.now():
            self._rotate(key, "AUTOMATIC")
            key.data["NextRotationDate"] = due + key.data["RotationPeriodInDays"] * 86400
            self.keys.save(key)

    # -- aliases ------------------------------------------------------------------------------

    def _alias_name(self, name: Any) -> str:
        if not isinstance(name, str) or not _ALIAS.match(name) or len(name) > 256:
            raise _validation(f"1 validation error detected: Value '{name}' at 'aliasName' failed to satisfy "
                              "constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$")
        if name.startswith("alias/aws/"):
            raise ServiceError("NotAuthorizedException", "")
        return name

    def create_alias(self, ctx: RequestContext, params: dict) -> dict:
        name = self._alias_name(params.get("AliasName"))
        key = self._key(ctx, params.get("TargetKeyId"), usable=False)
        if key.state == "PendingDeletion":
            self._usable(key)
        if self.keys.alias_target(ctx.account, ctx.region, name) is not None:
            raise ServiceError("AlreadyExistsException", f"An alias with the name arn:aws:kms:{ctx.region}:"
                               f"{ctx.account}:{name} already exists")
        self.keys.set_alias(ctx.account, ctx.region, name, key.key_id)
        return {}

    def update_alias(self, ctx: RequestContext, params: dict) -> dict:
        name = self._alias_name(params.get("AliasName"))
        row = next((a for a in self.keys.aliases(ctx.account, ctx.region) if a[0] == name), None)
        if row is None:
            raise not_found(f"Alias arn:aws:kms:{ctx.region}:{ctx.account}:{name} is not found.")
        key = self._key(ctx, params.get("TargetKeyId"), usable=False)
        self.keys.set_alias(ctx.account, ctx.region, name, key.key_id, created=row[2])
        return {}

    def delete_alias(self, ctx: RequestContext, params: dict) -> dict:
        name = self._alias_name(params.get("AliasName"))
        if self.keys.alias_target(ctx.account, ctx.region, name) is None:
            raise not_found(f"Alias arn:aws:kms:{ctx.region}:{ctx.account}:{name} is not found.")
        self.keys.delete_alias(ctx.account, ctx.region, name)
        return {}

    def list_aliases(self, ctx: RequestContext, params: dict) -> dict:
        only = None
        if params.get("KeyId"):
            only = self._key(ctx, params["KeyId"], usable=False).key_id
        aliases = [{"AliasName": name, "AliasArn": f"arn:aws:kms:{ctx.region}:{ctx.account}:{name}",
                    "TargetKeyId": key_id, "CreationDate": created, "LastUpdatedDate": updated}
                   for name, key_id, created, updated in self.keys.aliases(ctx.account, ctx.region)
                   if only is None or key_id == only]
        return _page("Aliases", aliases, params)

    # -- policies, grants, tags ---------------------------------------------------------------

    def get_key_policy(self, ctx: RequestContext, params: dict) -> dict:
        key = self._key(ctx, params.get("KeyId"), usable=False)
        return {"Policy": key.data.get("Policy") or default_policy(ctx.account), "PolicyName": "default"}

    def put_key_policy(self, ctx: RequestContext, params: dict) -> dict:
        key = self._key(ctx, params.get("KeyId"), usable=False)
        if (params.get("PolicyName") or "default") != "default":
            raise not_found("No such policy exists")
        self._check_policy(params["Policy"])
        key.data["Policy"] = params["Policy"]
        self.keys.save(key)
        return {}

    def list_key_policies(self, ctx: RequestContext, params: dict) -> dict:
        self._key(ctx, params.get("KeyId"), usable=False)
        return {"PolicyNames": ["default"], "Truncated": False}

    def key_policy(self, key_arn: str) -> str | None:
        """A key's policy, for the policy evaluator."""
        row = self.store.one("SELECT data FROM kms_keys WHERE arn=?", (key_arn,))
        return self.keys.parsed(row[0]).doc.get("Policy") if row else None

    def grant_allows(self, key_arn: str, principals: tuple[str, ...], operation: str, params: dict) -> bool:
        """Whether a grant on the key lets one of ``principals`` perform ``operation`` with the
        request's encryption context (the grant's constraints), for the policy evaluator."""
        row = self.store.one("SELECT data FROM kms_keys WHERE arn=?", (key_arn,))
        context = params.get("EncryptionContext") or {}
        for grant in (self.keys.parsed(row[0]).doc.get("Grants") or []) if row else []:
            if grant["GranteePrincipal"] not in principals or operation not in grant["Operations"]:
                continue
            constraints = grant.get("Constraints") or {}
            equals, subset = constraints.get("EncryptionContextEquals"), constraints.get("EncryptionContextSubset")
            if equals is not None and context != equals:
                continue
            if subset is not None and any(context.get(k) != v for k, v in subset.items()):
                continue
            return True
        return False

    def create_grant(self, ctx: RequestContext, params: dict) -> dict:
        key = self._key(ctx, params.get("KeyId"))
        grant_id = os.urandom(32).hex()
        token = base64.b64encode(os.urandom(48)).decode()
        grant = {"KeyId": key.arn, "GrantId": grant_id, "Name": params.get("Name") or "",
                 "CreationDate": self.clock.now(), "GranteePrincipal": params["GranteePrincipal"],
                 "IssuingAccount": f"arn:aws:iam::{ctx.account}:root", "Operations": params["Operations"],
                 "Token": token}
        for k in ("RetiringPrincipal", "Constraints"):
            if params.get(k):
                grant[k] = params[k]
        key.data.setdefault("Grants", []).append(grant)
        self.keys.save(key)
        return {"GrantToken": token, "GrantId": grant_id}

    def list_grants(self, ctx: RequestContext, params: dict) -> dict:
        key = self._key(ctx, params.get("KeyId"), usable=False)
        grants = [{k: v for k, v in g.items() if k != "Token"} for g in key.data.get("Grants", [])
                  if (not params.get("GrantId") or g["GrantId"] == params["GrantId"]) and
                  (not params.get("GranteePrincipal") or g["GranteePrincipal"] == params["GranteePrincipal"])]
        return _page("Grants", grants, params)

    def list_retirable_grants(self, ctx: RequestContext, params: dict) -> dict:
        grants = [{k: v for k, v in g.items() if k != "Token"} for key in self.keys.all(ctx.account, ctx.region)
                  for g in key.data.get("Grants", []) if g.get("RetiringPrincipal") == params["RetiringPrincipal"]]
        return _page("Grants", grants, params)

    def _drop_grant(self, key: Key, match: Any) -> None:
        before = len(key.data.get("Grants", []))
        key.data["Grants"] = [g for g in key.data.get("Grants", []) if not match(g)]
        if len(key.data["Grants"]) == before:
            raise not_found("Grant not found")
        self.keys.save(key)

    def revoke_grant(self, ctx: RequestContext, params: dict) -> dict:
        key = self._key(ctx, params.get("KeyId"), usable=False)
        self._drop_grant(key, lambda g: g["GrantId"] == params["GrantId"])
        return {}

    def retire_grant(self, ctx: RequestContext, params: dict) -> dict:
        for key in self.keys.all(ctx.account, ctx.region):
            if params.get("KeyId") and key.key_id != self._key(ctx, params["KeyId"], usable=False).key_id:
                continue
            for g in key.data.get("Grants", []):
                if g["GrantId"] == params.get("GrantId") or g["Token"] == params.get("GrantToken"):
                    self._drop_grant(key, lambda x, g=g: x["GrantId"] == g["GrantId"])
                    return {}
        raise not_found("Grant not found")

    def tag_resource(self, ctx: RequestContext, params: dict) -> dict:
        key = self._key(ctx, params.get("KeyId"), usable=False)
        tags = {t["TagKey"]: t["TagValue"] for t in key.data.get("Tags", [])}
        tags.update({t["TagKey"]: t["TagValue"] for t in params["Tags"]})
        if len(tags) > 50:
            raise ServiceError("TagException", "Too many tags")
        key.data["Tags"] = [{"TagKey": k, "TagValue": v} for k, v in tags.items()]
        self.keys.save(key)
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict) -> dict:
        key = self._key(ctx, params.get("KeyId"), usable=False)
        key.data["Tags"] = [t for t in key.data.get("Tags", []) if t["TagKey"] not in params["TagKeys"]]
        self.keys.save(key)
        return {}

    def list_resource_tags(self, ctx: RequestContext, params: dict) -> dict:
        key = self._key(ctx, params.get("KeyId"), usable=False)
        return _page("Tags", key.data.get("Tags", []), params, 50)

    # -- cryptography ------------------------------------------------------------------------

    def _encrypt(self, ctx: RequestContext, key: Key, plaintext: bytes, context: dict | None,
                 algorithm: str | None) -> tuple[bytes, str]:
        self._need_usage(key, "ENCRYPT_DECRYPT")
        self._rotate_due(key)
        materials = self.keys.materials(key)
        if key.spec == "SYMMETRIC_DEFAULT":
            if algorithm not in (None, "SYMMETRIC_DEFAULT"):
                raise ServiceError("InvalidKeyUsageException", f"Algorithm {algorithm} is incompatible with key spec "
                                   f"{key.spec}.")
            return crypto.encrypt(key.key_id, len(materials) - 1, materials[-1], plaintext, context), \
                "SYMMETRIC_DEFAULT"
        if algorithm not in crypto.RSA_ENCRYPTION:
            raise _validation("EncryptionAlgorithm is required for asymmetric keys.") if algorithm is None else \
                ServiceError("InvalidKeyUsageException", f"Algorithm {algorithm} is incompatible with key spec "
                             f"{key.spec}.")
        limits = {"RSA_2048": {"RSAES_OAEP_SHA_1": 214, "RSAES_OAEP_SHA_256": 190},
                  "RSA_3072": {"RSAES_OAEP_SHA_1": 342, "RSAES_OAEP_SHA_256": 318},
                  "RSA_4096": {"RSAES_OAEP_SHA_1": 470, "RSAES_OAEP_SHA_256": 446}}
        if len(plaintext) > limits[key.spec][algorithm]:
            raise _validation(f"Plaintext is too long for {key.spec} with {algorithm}.")
        return crypto.rsa_encrypt(materials[-1], plaintext, algorithm), algorithm

    def _decrypt(self, ctx: RequestContext, blob: bytes, context: dict | None, key_ref: str | None,
                 algorithm: str | None) -> tuple[Key, bytes, str]:
        named = crypto.blob_key(blob)
        if key_ref:
            key = self._key(ctx, key_ref, usable=False)
        elif named is not None:
            key = self.keys.by_id(ctx.account, ctx.region, named[0])
            if key is None:
                raise ServiceError("InvalidCiphertextException", "")
        else:
            raise ServiceError("InvalidCiphertextException", "")
        self._usable(key)
        self._need_usage(key, "ENCRYPT_DECRYPT")
        materials = self.keys.materials(key)
        if key.spec == "SYMMETRIC_DEFAULT":
            if named is None:
                raise ServiceError("InvalidCiphertextException", "")
            if named[0] != key.key_id:
                raise ServiceError("IncorrectKeyException", "The key ID in the request does not identify a CMK that "
                                   "can perform this operation.")
            plaintext = crypto.decrypt(materials[named[1]], blob, context) if named[1] < len(materials) else None
            algorithm = "SYMMETRIC_DEFAULT"
        else:
            if algorithm not in crypto.RSA_ENCRYPTION:
                raise ServiceError("InvalidCiphertextException", "")
            plaintext = crypto.rsa_decrypt(materials[-1], blob, algorithm)
        if plaintext is None:
            raise ServiceError("InvalidCiphertextException", "")
        return key, plaintext, algorithm

    @staticmethod
    def _blob(params: dict) -> bytes:
        blob = params.get("CiphertextBlob")
        if not isinstance(blob, bytes) or not blob:
            raise _validation("1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy "
                              "constraint: Member must not be null")
        return blob

    @staticmethod
    def _plaintext(value: Any, member: str = "plaintext") -> bytes:
        if not isinstance(value, bytes) or not 1 <= len(value) <= 4096:
            raise _validation(f"1 validation error detected: Value at '{member}' failed to satisfy constraint: "
                              "Member must have length less than or equal to 4096")
        return value

    def encrypt(self, ctx: RequestContext, params: dict) -> dict:
        key = self._key(ctx, params.get("KeyId"))
        blob, algorithm = self._encrypt(ctx, key, self._plaintext(params.get("Plaintext")),
                                        params.get("EncryptionContext"), params.get("EncryptionAlgorithm"))
        return {"CiphertextBlob": blob, "KeyId": key.arn, "EncryptionAlgorithm": algorithm}

    def decrypt(self, ctx: RequestContext, params: dict) -> dict:
        key, plaintext, algorithm = self._decrypt(ctx, self._blob(params), params.get("EncryptionContext"),
                                                  params.get("KeyId"), params.get("EncryptionAlgorithm"))
        return {"KeyId": key.arn, "Plaintext": plaintext, "EncryptionAlgorithm": algorithm}

    def re_encrypt(self, ctx: RequestContext, params: dict) -> dict:
        source, plaintext, source_algorithm = self._decrypt(
            ctx, self._blob(params), params.get("SourceEncryptionContext"), params.get("SourceKeyId"),
            params.get("SourceEncryptionAlgorithm"))
        target = self._key(ctx, params.get("DestinationKeyId"))
        blob, algorithm = self._encrypt(ctx, target, plaintext, params.get("DestinationEncryptionContext"),
                                        params.get("DestinationEncryptionAlgorithm"))
        return {"CiphertextBlob": blob, "SourceKeyId": source.arn, "KeyId": target.arn,
                "SourceEncryptionAlgorithm": source_algorithm, "DestinationEncryptionAlgorithm": algorithm}

    def _data_key_bytes(self, params: dict) -> int:
        spec, count = params.get("KeySpec"), params.get("NumberOfBytes")
        if spec and count:
            raise _validation("Please specify either number of bytes or key spec.")
        if spec:
            if spec not in ("AES_256", "AES_128"):
                raise _validation(f"1 validation error detected: Value '{spec}' at 'keySpec' failed to satisfy "
                                  "constraint: Member must satisfy enum value set: [AES_256, AES_128]")
            return 32 if spec == "AES_256" else 16
        if count is None:
            raise _validation("Please specify either number of bytes or key spec.")
        if not 1 <= count <= 1024:
            raise _validation(f"1 validation error detected: Value '{count}' at 'numberOfBytes' failed to satisfy "
                              "constraint: Member must have value less than or equal to 1024")
        return count

    def generate_data_key(self, ctx: RequestContext, params: dict) -> dict:
        key = self._key(ctx, params.get("KeyId"))
        if key.spec != "SYMMETRIC_DEFAULT":
            raise ServiceError("InvalidKeyUsageException", f"{key.arn} key usage is not valid for this operation.")
        plaintext = os.urandom(self._data_key_bytes(params))
        blob, _ = self._encrypt(ctx, key, plaintext, params.get("EncryptionContext"), None)
        return {"CiphertextBlob": blob, "Plaintext": plaintext, "KeyId": key.arn}

    def generate_data_key_without_plaintext(self, ctx: RequestContext, params: dict) -> dict:
        out = self.generate_data_key(ctx, params)
        out.pop("Plaintext")
        return out

    # -- for services that encrypt with a customer's key (S3 SSE-KMS) ---------------------------
    # The contract: a service keeps an object's data key only as the ciphertext blob KMS made
    # under the customer's key (envelope encryption), and asks KMS for the plaintext each time it
    # needs it, so disabling or deleting the key makes the data unreadable as on AWS.

    def _usable_symmetric(self, key_arn: str) -> Key:
        key = self.find_key("", "", key_arn)
        if key is None:
            raise not_found(f"Key '{key_arn}' does not exist")
        self._usable(key)
        self._need_usage(key, "ENCRYPT_DECRYPT")
        if key.spec != "SYMMETRIC_DEFAULT":
            raise ServiceError("InvalidKeyUsageException", f"{key.arn} key usage is not valid for this operation.")
        return key

    def new_data_key(self, key_arn: str, context: dict) -> tuple[bytes, bytes]:
        """A fresh 256-bit data key and its ciphertext blob under the key ``key_arn``.
        Raises KMS's ServiceError (NotFoundException, DisabledException, KMSInvalidStateException)."""
        key = self._usable_symmetric(key_arn)
        self._rotate_due(key)
        materials = self.keys.materials(key)
        plaintext = os.urandom(32)
        return plaintext, crypto.encrypt(key.key_id, len(materials) - 1, materials[-1], plaintext, context)

    def open_data_key(self, key_arn: str, blob: bytes, context: dict) -> bytes:
        """The plaintext of a data key ``new_data_key`` made, while its key is usable.
        Raises KMS's ServiceError (as above, and InvalidCiphertextException)."""
        key = self._usable_symmetric(key_arn)
        named = crypto.blob_key(blob)
        materials = self.keys.materials(key)
        plaintext = None
        if named is not None and named[0] == key.key_id and named[1] < len(materials):
            plaintext = crypto.decrypt(materials[named[1]], blob, context)
        if plaintext is None:
            raise ServiceError("InvalidCiphertextException", "")
        return plaintext

    def generate_random(self, ctx: RequestContext, params: dict) -> dict:
        count = params.get("NumberOfBytes")
        if count is None or not 1 <= count <= 1024:
            raise _validation(f"1 validation error detected: Value '{count}' at 'numberOfBytes' failed to satisfy "
                              "constraint: Member must have value less than or equal to 1024")
        return {"Plaintext": os.urandom(count)}

    def _signing(self, ctx: RequestContext, params: dict) -> tuple[Key, bytes, str, bool]:
        key = self._key(ctx, params.get("KeyId"))
        self._need_usage(key, "SIGN_VERIFY")
        algorithm = params.get("SigningAlgorithm")
        if algorithm not in key.view.get("SigningAlgorithms", []):
            raise ServiceError("InvalidKeyUsageException", f"Algorithm {algorithm} is incompatible with key spec "
                               f"{key.spec}.")
        digest = params.get("MessageType") == "DIGEST"
        message = params["Message"]
        if not digest and len(message) > 4096:
            raise _validation("Message must be at most 4096 bytes; use MessageType DIGEST for larger messages.")
        return key, message, algorithm, digest

    def sign(self, ctx: RequestContext, params: dict) -> dict:
        key, message, algorithm, digest = self._signing(ctx, params)
        try:
            signature = crypto.sign(self.keys.materials(key)[-1], message, algorithm, digest)
        except ValueError:
            raise _validation("Digest is invalid length for algorithm.") from None
        return {"KeyId": key.arn, "Signature": signature, "SigningAlgorithm": algorithm}

    def verify(self, ctx: RequestContext, params: dict) -> dict:
        key, message, algorithm, digest = self._signing(ctx, params)
        if not crypto.verify(self.keys.materials(key)[-1], message, params["Signature"], algorithm, digest):
            raise ServiceError("KMSInvalidSignatureException", "")
        return {"KeyId": key.arn, "SignatureValid": True, "SigningAlgorithm": algorithm}

    def get_public_key(self, ctx: RequestContext, params: dict) -> dict:
        key = self._key(ctx, params.get("KeyId"))
        if key.spec == "SYMMETRIC_DEFAULT" or key.spec.startswith("HMAC"):
            raise ServiceError("UnsupportedOperationException", f"{key.arn} key usage or key spec is not valid for "
                               "this operation.")
        out = {"KeyId": key.arn, "PublicKey": crypto.public_key(self.keys.materials(key)[-1]),
               "CustomerMasterKeySpec": key.spec, "KeySpec": key.spec, "KeyUsage": key.data["KeyUsage"]}
        for k in ("EncryptionAlgorithms", "SigningAlgorithms"):
            if key.data.get(k):
                out[k] = key.data[k]
        return out

    def _mac(self, ctx: RequestContext, params: dict) -> tuple[Key, bytes]:
        key = self._key(ctx, params.get("KeyId"))
        self._need_usage(key, "GENERATE_VERIFY_MAC")
        algorithm = params.get("MacAlgorithm")
        if algorithm not in key.view.get("MacAlgorithms", []):
            raise ServiceError("InvalidKeyUsageException", f"Algorithm {algorithm} is incompatible with key spec "
                               f"{key.spec}.")
        return key, crypto.mac(self.keys.materials(key)[-1], params["Message"], algorithm)

    def generate_mac(self, ctx: RequestContext, params: dict) -> dict:
        key, mac = self._mac(ctx, params)
        return {"Mac": mac, "MacAlgorithm": params["MacAlgorithm"], "KeyId": key.arn}

    def verify_mac(self, ctx: RequestContext, params: dict) -> dict:
        import hmac as _hmac

        key, mac = self._mac(ctx, params)
        if not _hmac.compare_digest(mac, params["Mac"]):
            raise ServiceError("KMSInvalidMacException", "")
        return {"KeyId": key.arn, "MacValid": True, "MacAlgorithm": params["MacAlgorithm"]}

    # -- template resources -------------------------------------------------------------------

    def create_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str,
                        props: dict[str, Any]) -> Provisioned:
        rc = ctx.request_context("kms")
        if resource_type == "AWS::KMS::Alias":
            self.create_alias(rc, {"AliasName": props["AliasName"], "TargetKeyId": props["TargetKeyId"]})
            return Provisioned(props["AliasName"], props["AliasName"])
        params: dict[str, Any] = {"Description": props.get("Description") or "",
                                  "KeySpec": props.get("KeySpec") or "SYMMETRIC_DEFAULT"}
        if props.get("KeyUsage"):
            params["KeyUsage"] = props["KeyUsage"]
        if props.get("KeyPolicy"):
            policy = props["KeyPolicy"]
            params["Policy"] = policy if isinstance(policy, str) else json.dumps(policy)
        if props.get("Tags"):
            params["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in props["Tags"]]
        key = self.create_key(rc, params)["KeyMetadata"]
        if str(props.get("EnableKeyRotation")).lower() == "true":
            self.enable_key_rotation(rc, {"KeyId": key["KeyId"]})
        if str(props.get("Enabled", True)).lower() == "false":
            self.disable_key(rc, {"KeyId": key["KeyId"]})
        return Provisioned(key["KeyId"], key["KeyId"], {"Arn": key["Arn"], "KeyId": key["KeyId"]})

    def update_resource(self, ctx: ResourceContext, resource_type: str, logical_id: str, physical_id: str,
                        old_props: dict[str, Any], props: dict[str, Any]) -> Provisioned:
        rc = ctx.request_context("kms")
        if resource_type == "AWS::KMS::Key" and props.get("KeySpec") == old_props.get("KeySpec") and \
                props.get("KeyUsage") == old_props.get("KeyUsage"):
            self.update_key_description(rc, {"KeyId": physical_id, "Description": props.get("Description") or ""})
            if props.get("KeyPolicy"):
                policy = props["KeyPolicy"]
                self.put_key_policy(rc, {"KeyId": physical_id, "PolicyName": "default",
                                         "Policy": policy if isinstance(policy, str) else json.dumps(policy)})
            enabled = str(props.get("Enabled", True)).lower() != "false"
            (self.enable_key if enabled else self.disable_key)(rc, {"KeyId": physical_id})
            rotation = str(props.get("EnableKeyRotation")).lower() == "true"
            if enabled:
                (self.enable_key_rotation if rotation else self.disable_key_rotation)(rc, {"KeyId": physical_id})
            arn = self._key(rc, physical_id, usable=False).arn
            return Provisioned(physical_id, physical_id, {"Arn": arn, "KeyId": physical_id})
        if resource_type == "AWS::KMS::Alias" and props.get("AliasName") == old_props.get("AliasName"):
            self.update_alias(rc, {"AliasName": props["AliasName"], "TargetKeyId": props["TargetKeyId"]})
            return Provisioned(physical_id, physical_id)
        self.delete_resource(ctx, resource_type, physical_id, old_props)
        return self.create_resource(ctx, resource_type, logical_id, props)

    def delete_resource(self, ctx: ResourceContext, resource_type: str, physical_id: str,
                        props: dict[str, Any]) -> None:
        rc = ctx.request_context("kms")
        try:
            if resource_type == "AWS::KMS::Alias":
                self.delete_alias(rc, {"AliasName": physical_id})
            else:
                days = int(props.get("PendingWindowInDays") or 30)
                self.schedule_key_deletion(rc, {"KeyId": physical_id, "PendingWindowInDays": days})
        except ServiceError as exc:
            if exc.code not in ("NotFoundException", "KMSInvalidStateException"):
                raise
