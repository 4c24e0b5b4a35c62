"""Certificates, CA certificates, IoT policies with versions, and what is attached to what.

IoT policies are IAM-shaped documents, so they are checked and evaluated by IAM's own
policy engine (``unkai.services.iam.policies``). IoT's policy variables
(``${iot:Connection.Thing.ThingName}``, ``${iot:ClientId}``) are substituted into the
document's text before it is compiled, as AWS resolves them per connection. A
certificate's effective policies are those attached to it plus those attached to the
thing groups (and their ancestors) of the things it is attached to.
"""

from __future__ import annotations

import json
import re
from typing import Any

from unkai.services import RequestContext
from unkai.services.iot import errors
from unkai.services.iot.certificates import parse
from unkai.services.iot.model import arn, page

_POLICY_NAME = re.compile(r"^[\w+=,.@-]{1,128}$")
_STATUSES = ("ACTIVE", "INACTIVE", "REVOKED", "PENDING_TRANSFER", "REGISTER_INACTIVE", "PENDING_ACTIVATION")
_CERT_ID = re.compile(r"^(0x)?[a-fA-F0-9]{64}$")


def check_document(text: str) -> None:
    from unkai.services.iam.policies import PolicyError, parse as parse_policy

    try:
        parse_policy(text, "identity")
    except PolicyError as exc:
        raise errors.malformed_policy(str(exc)) from None


class SecurityOps:
    store: Any
    clock: Any
    authority: Any
    cloud: Any

    # -- certificates ------------------------------------------------------------------------

    def _insert_certificate(self, ctx: RequestContext, pem: str, status: str, ca_id: str | None = None,
                            mode: str = "DEFAULT") -> tuple[str, str]:
        cert = parse(pem)
        cert_arn = arn(ctx.region, ctx.account, "cert", cert.id)
        if self.store.one("SELECT 1 FROM iot_certificates WHERE account=? AND region=? AND id=?",
                          (ctx.account, ctx.region, cert.id)):
            raise errors.exists("The certificate is already provisioned or registered", cert.id, cert_arn)
        now = self.clock.now()
        self.store.execute("INSERT INTO iot_certificates (account, region, id, arn, pem, status, ca_id, mode, "
                           "created, updated, not_before, not_after) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                           (ctx.account, ctx.region, cert.id, cert_arn, cert.pem, status, ca_id, mode, now, now,
                            cert.not_before, cert.not_after))
        return cert.id, cert_arn

    def create_keys_and_certificate(self, ctx: RequestContext, params: dict) -> dict:
        pem, public, private = self.authority.create_keys_and_certificate()
        cert_id, cert_arn = self._insert_certificate(ctx, pem, "ACTIVE" if params.get("setAsActive") else "INACTIVE")
        return {"certificateArn": cert_arn, "certificateId": cert_id, "certificatePem": pem,
                "keyPair": {"PublicKey": public, "PrivateKey": private}}

    def create_certificate_from_csr(self, ctx: RequestContext, params: dict) -> dict:
        pem = self.authority.from_csr(params["certificateSigningRequest"])
        cert_id, cert_arn = self._insert_certificate(ctx, pem, "ACTIVE" if params.get("setAsActive") else "INACTIVE")
        return {"certificateArn": cert_arn, "certificateId": cert_id, "certificatePem": pem}

    def register_certificate(self, ctx: RequestContext, params: dict) -> dict:
        cert = parse(params["certificatePem"])
        ca_id = None
        ca_pem = params.get("caCertificatePem")
        candidates = ([parse(ca_pem)] if ca_pem else
                      [parse(r[0]) for r in self.store.all("SELECT pem FROM iot_ca_certificates WHERE account=? "
                                                           "AND region=?", (ctx.account, ctx.region))])
        for ca in candidates:
            if cert.signed_by(ca):
                ca_id = ca.id
                break
        if ca_pem and ca_id is None:
            raise errors.certificate_validation("The certificate is not signed by the given CA certificate.")
        if ca_id and not self.store.one("SELECT 1 FROM iot_ca_certificates WHERE account=? AND region=? AND id=?",
                                        (ctx.account, ctx.region, ca_id)):
            raise errors.certificate_validation("The CA certificate is not registered.")
        if ca_id is None:
            raise errors.certificate_validation("The certificate's CA is not registered; use "
                                                "RegisterCertificateWithoutCA.")
        status = params.get("status") or ("ACTIVE" if params.get("setAsActive") else "INACTIVE")
        cert_id, cert_arn = self._insert_certificate(ctx, cert.pem, status, ca_id)
        return {"certificateArn": cert_arn, "certificateId": cert_id}

    def register_certificate_without_ca(self, ctx: RequestContext, params: dict) -> dict:
        cert_id, cert_arn = self._insert_certificate(ctx, params["certificatePem"], params.get("status") or "INACTIVE",
                                                     mode="SNI_ONLY")
        self._policies_changed()
        return {"certificateArn": cert_arn, "certificateId": cert_id}

    def _certificate(self, ctx: RequestContext, cert_id: str) -> tuple:
        if not isinstance(cert_id, str) or not _CERT_ID.match(cert_id):
            raise errors.invalid(f"1 validation error detected: Value '{cert_id}' at 'certificateId' failed to "
                                 "satisfy constraint: Member must satisfy regular expression pattern: "
                                 "(0x)?[a-fA-F0-9]+")
        row = self.store.one("SELECT id, arn, pem, status, ca_id, mode, created, updated, not_before, not_after "
                             "FROM iot_certificates WHERE account=? AND region=? AND id=?",
                             (ctx.account, ctx.region, cert_id.lower().removeprefix("0x")))
        if row is None:
            raise errors.not_found(f"The certificate given in the principal does not exist.")
        return row

    def describe_certificate(self, ctx: RequestContext, params: dict) -> dict:
        cert_id, cert_arn, pem, status, ca_id, mode, created, updated, nb, na = self._certificate(
            ctx, params["certificateId"])
        out = {"certificateArn": cert_arn, "certificateId": cert_id, "status": status, "certificatePem": pem,
               "ownedBy": ctx.account, "creationDate": created, "lastModifiedDate": updated, "customerVersion": 1,
               "generationId": f"{int(updated * 1000)}", "validity": {"notBefore": nb, "notAfter": na},
               "certificateMode": mode, "transferData": {}}
        if ca_id:
            out["caCertificateId"] = ca_id
        return {"certificateDescription": out}

    def list_certificates(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT id, arn, status, mode, created FROM iot_certificates WHERE account=? AND "
                              "region=? ORDER BY created DESC" if not params.get("ascendingOrder") else
                              "SELECT id, arn, status, mode, created FROM iot_certificates WHERE account=? AND "
                              "region=? ORDER BY created", (ctx.account, ctx.region))
        return page("certificates", [{"certificateId": i, "certificateArn": a, "status": s, "certificateMode": m,
                                      "creationDate": c} for i, a, s, m, c in rows], params)

    def list_certificates_by_ca(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT id, arn, status, mode, created FROM iot_certificates WHERE account=? AND "
                              "region=? AND ca_id=? ORDER BY created", (ctx.account, ctx.region,
                                                                       params["caCertificateId"]))
        return page("certificates", [{"certificateId": i, "certificateArn": a, "status": s, "certificateMode": m,
                                      "creationDate": c} for i, a, s, m, c in rows], params)

    def update_certificate(self, ctx: RequestContext, params: dict) -> dict:
        cert_id, _, _, status, *_ = self._certificate(ctx, params["certificateId"])
        new = params["newStatus"]
        if new not in _STATUSES:
            raise errors.invalid(f"Invalid certificate status: {new}")
        if status == "REVOKED" and new != "REVOKED":
            raise errors.certificate_state("Certificate is revoked and cannot be changed to another status.")
        self.store.execute("UPDATE iot_certificates SET status=?, updated=? WHERE account=? AND region=? AND id=?",
                           (new, self.clock.now(), ctx.account, ctx.region, cert_id))
        return {}

    def delete_certificate(self, ctx: RequestContext, params: dict) -> dict:
        cert_id, cert_arn, _, status, *_ = self._certificate(ctx, params["certificateId"])
        if status == "ACTIVE":
            raise errors.certificate_state("Certificate must be deactivated (not ACTIVE) before deletion.")
        if self.store.one("SELECT 1 FROM iot_thing_principals WHERE account=? AND region=? AND principal=?",
                          (ctx.account, ctx.region, cert_arn)):
            raise errors.delete_conflict("Things must be detached before deletion (arn: " + cert_arn + ")")
        if not params.get("forceDelete") and self.store.one(
                "SELECT 1 FROM iot_policy_targets WHERE account=? AND region=? AND target=?",
                (ctx.account, ctx.region, cert_arn)):
            raise errors.delete_conflict("Certificate policies must be detached before deletion (arn: "
                                         + cert_arn + ")")
        self.store.execute("DELETE FROM iot_policy_targets WHERE account=? AND region=? AND target=?",
                           (ctx.account, ctx.region, cert_arn))
        self.store.execute("DELETE FROM iot_certificates WHERE account=? AND region=? AND id=?",
                           (ctx.account, ctx.region, cert_id))
        return {}

    def get_registration_code(self, ctx: RequestContext, params: dict) -> dict:
        import hashlib

        return {"registrationCode": hashlib.sha256(f"{ctx.account}:{ctx.region}".encode()).hexdigest()}

    # -- CA certificates ---------------------------------------------------------------------

    def register_ca_certificate(self, ctx: RequestContext, params: dict) -> dict:
        ca = parse(params["caCertificate"])
        mode = params.get("certificateMode") or "DEFAULT"
        verification = params.get("verificationCertificate")
        if mode == "DEFAULT" and verification:
            proof = parse(verification)
            if not proof.signed_by(ca):
                raise errors.certificate_validation("The verification certificate is not signed by the CA.")
        ca_arn = arn(ctx.region, ctx.account, "cacert", ca.id)
        if self.store.one("SELECT 1 FROM iot_ca_certificates WHERE account=? AND region=? AND id=?",
                          (ctx.account, ctx.region, ca.id)):
            raise errors.exists("The CA certificate is already registered", ca.id, ca_arn)
        import json

        now = self.clock.now()
        self.store.execute("INSERT INTO iot_ca_certificates (account, region, id, arn, pem, status, "
                           "auto_registration, config, mode, created, updated, not_before, not_after) "
                           "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           (ctx.account, ctx.region, ca.id, ca_arn, ca.pem,
                            "ACTIVE" if params.get("setAsActive") else "INACTIVE",
                            "ENABLE" if params.get("allowAutoRegistration") else "DISABLE",
                            json.dumps(params.get("registrationConfig") or {}), mode, now, now, ca.not_before,
                            ca.not_after))
        self._tag(ca_arn, params.get("tags"))
        self._policies_changed()  # the broker trusts the new CA
        return {"certificateArn": ca_arn, "certificateId": ca.id}

    def _ca(self, ctx: RequestContext, ca_id: str) -> tuple:
        row = self.store.one("SELECT id, arn, pem, status, auto_registration, config, mode, created, updated, "
                             "not_before, not_after FROM iot_ca_certificates WHERE account=? AND region=? AND id=?",
                             (ctx.account, ctx.region, ca_id))
        if row is None:
            raise errors.not_found("The CA certificate does not exist.")
        return row

    def describe_ca_certificate(self, ctx: RequestContext, params: dict) -> dict:
        import json

        ca_id, ca_arn, pem, status, auto, config, mode, created, updated, nb, na = self._ca(
            ctx, params["certificateId"])
        return {"certificateDescription": {
            "certificateArn": ca_arn, "certificateId": ca_id, "status": status, "certificatePem": pem,
            "ownedBy": ctx.account, "creationDate": created, "lastModifiedDate": updated, "customerVersion": 1,
            "autoRegistrationStatus": auto, "generationId": f"{int(updated * 1000)}",
            "validity": {"notBefore": nb, "notAfter": na}, "certificateMode": mode},
            "registrationConfig": json.loads(config)}

    def list_ca_certificates(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT id, arn, status, created FROM iot_ca_certificates WHERE account=? AND "
                              "region=? ORDER BY created", (ctx.account, ctx.region))
        return page("certificates", [{"certificateId": i, "certificateArn": a, "status": s, "creationDate": c}
                                     for i, a, s, c in rows], params)

    def update_ca_certificate(self, ctx: RequestContext, params: dict) -> dict:
        import json

        ca_id = self._ca(ctx, params["certificateId"])[0]
        sets, values = ["updated=?"], [self.clock.now()]
        if params.get("newStatus"):
            sets.append("status=?")
            values.append(params["newStatus"])
        if params.get("newAutoRegistrationStatus"):
            sets.append("auto_registration=?")
            values.append(params["newAutoRegistrationStatus"])
        if params.get("registrationConfig") is not None:
            sets.append("config=?")
            values.append(json.dumps(params["registrationConfig"]))
        self.store.execute(f"UPDATE iot_ca_certificates SET {', '.join(sets)} WHERE account=? AND region=? AND id=?",
                           (*values, ctx.account, ctx.region, ca_id))
        self._policies_changed()
        return {}

    def delete_ca_certificate(self, ctx: RequestContext, params: dict) -> dict:
        ca_id, _, _, status, *_ = self._ca(ctx, params["certificateId"])
        if status == "ACTIVE":
            raise errors.certificate_state("The CA certificate must be deactivated before deletion.")
        if self.store.one("SELECT 1 FROM iot_certificates WHERE account=? AND region=? AND ca_id=?",
                          (ctx.account, ctx.region, ca_id)):
            raise errors.certificate_state("Certificates signed by this CA are still registered.")
        self.store.execute("DELETE FROM iot_ca_certificates WHERE account=? AND region=? AND id=?",
                           (ctx.account, ctx.region, ca_id))
        return {}

    # -- policies ----------------------------------------------------------------------------

    def _policy(self, ctx: RequestContext, name: str) -> tuple:
        row = self.store.one("SELECT name, arn, default_version, next_version, created, updated FROM iot_policies "
                             "WHERE account=? AND region=? AND name=?", (ctx.account, ctx.region, name))
        if row is None:
            raise errors.not_found("Policy not found")
        return row

    def _document(self, ctx: RequestContext, name: str, version: str) -> tuple | None:
        return self.store.one("SELECT document, created FROM iot_policy_versions WHERE account=? AND region=? AND "
                              "policy=? AND version=?", (ctx.account, ctx.region, name, version))

    def create_policy(self, ctx: RequestContext, params: dict) -> dict:
        name, document = params["policyName"], params["policyDocument"]
        if not _POLICY_NAME.match(name):
            raise errors.invalid(f"1 validation error detected: Value '{name}' at 'policyName' failed to satisfy "
                                 "constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+")
        policy_arn = arn(ctx.region, ctx.account, "policy", name)
        if self.store.one("SELECT 1 FROM iot_policies WHERE account=? AND region=? AND name=?",
                          (ctx.account, ctx.region, name)):
            raise errors.exists(f"Policy cannot be created - name already exists (name={name})", name, policy_arn)
        check_document(document)
        now = self.clock.now()
        self.store.execute("INSERT INTO iot_policies (account, region, name, arn, default_version, created, updated) "
                           "VALUES (?,?,?,?,?,?,?)", (ctx.account, ctx.region, name, policy_arn, "1", now, now))
        self.store.execute("INSERT INTO iot_policy_versions VALUES (?,?,?,?,?,?)",
                           (ctx.account, ctx.region, name, "1", document, now))
        self._tag(policy_arn, params.get("tags"))
        return {"policyName": name, "policyArn": policy_arn, "policyDocument": document, "policyVersionId": "1"}

    def get_policy(self, ctx: RequestContext, params: dict) -> dict:
        name, policy_arn, default, _, created, updated = self._policy(ctx, params["policyName"])
        document = self._document(ctx, name, default)[0]
        return {"policyName": name, "policyArn": policy_arn, "policyDocument": document, "defaultVersionId": default,
                "creationDate": created, "lastModifiedDate": updated, "generationId": f"{int(updated * 1000)}"}

    def list_policies(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT name, arn FROM iot_policies WHERE account=? AND region=? ORDER BY name",
                              (ctx.account, ctx.region))
        out = page("policies", [{"policyName": n, "policyArn": a} for n, a in rows], params)
        if "nextToken" in out:
            out["nextMarker"] = out.pop("nextToken")
        return out

    def delete_policy(self, ctx: RequestContext, params: dict) -> dict:
        name, policy_arn, default, *_ = self._policy(ctx, params["policyName"])
        if self.store.one("SELECT 1 FROM iot_policy_targets WHERE account=? AND region=? AND policy=?",
                          (ctx.account, ctx.region, name)):
            raise errors.delete_conflict(f"The policy cannot be deleted as the policy is attached to one or more "
                                         f"principals (name={name})")
        if self.store.one("SELECT 1 FROM iot_policy_versions WHERE account=? AND region=? AND policy=? AND "
                          "version<>?", (ctx.account, ctx.region, name, default)):
            raise errors.delete_conflict(f"Cannot delete the policy because it has one or more policy versions "
                                         f"attached to it (name={name})")
        for table, column in (("iot_policies", "name"), ("iot_policy_versions", "policy")):
            self.store.execute(f"DELETE FROM {table} WHERE account=? AND region=? AND {column}=?",
                               (ctx.account, ctx.region, name))
        return {}

    def create_policy_version(self, ctx: RequestContext, params: dict) -> dict:
        name, policy_arn, default, next_version, *_ = self._policy(ctx, params["policyName"])
        document = params["policyDocument"]
        check_document(document)
        count = self.store.one("SELECT COUNT(*) FROM iot_policy_versions WHERE account=? AND region=? AND policy=?",
                               (ctx.account, ctx.region, name))[0]
        if count >= 5:
            raise errors.versions_limit(name)
        version, now = str(next_version), self.clock.now()
        self.store.execute("INSERT INTO iot_policy_versions VALUES (?,?,?,?,?,?)",
                           (ctx.account, ctx.region, name, version, document, now))
        default = version if params.get("setAsDefault") else default
        self.store.execute("UPDATE iot_policies SET next_version=next_version+1, default_version=?, updated=? "
                           "WHERE account=? AND region=? AND name=?", (default, now, ctx.account, ctx.region, name))
        self._policies_changed()
        return {"policyArn": policy_arn, "policyDocument": document, "policyVersionId": version,
                "isDefaultVersion": default == version}

    def get_policy_version(self, ctx: RequestContext, params: dict) -> dict:
        name, policy_arn, default, _, _, updated = self._policy(ctx, params["policyName"])
        row = self._document(ctx, name, params["policyVersionId"])
        if row is None:
            raise errors.not_found("Policy version not found")
        return {"policyArn": policy_arn, "policyName": name, "policyDocument": row[0],
                "policyVersionId": params["policyVersionId"], "isDefaultVersion": params["policyVersionId"] == default,
                "creationDate": row[1], "lastModifiedDate": row[1], "generationId": f"{int(updated * 1000)}"}

    def list_policy_versions(self, ctx: RequestContext, params: dict) -> dict:
        name, _, default, *_ = self._policy(ctx, params["policyName"])
        rows = self.store.all("SELECT version, created FROM iot_policy_versions WHERE account=? AND region=? AND "
                              "policy=? ORDER BY CAST(version AS INTEGER) DESC", (ctx.account, ctx.region, name))
        return {"policyVersions": [{"versionId": v, "isDefaultVersion": v == default, "createDate": c}
                                   for v, c in rows]}

    def set_default_policy_version(self, ctx: RequestContext, params: dict) -> dict:
        name = self._policy(ctx, params["policyName"])[0]
        if self._document(ctx, name, params["policyVersionId"]) is None:
            raise errors.not_found("Policy version not found")
        self.store.execute("UPDATE iot_policies SET default_version=?, updated=? WHERE account=? AND region=? AND "
                           "name=?", (params["policyVersionId"], self.clock.now(), ctx.account, ctx.region, name))
        self._policies_changed()
        return {}

    def delete_policy_version(self, ctx: RequestContext, params: dict) -> dict:
        name, _, default, *_ = self._policy(ctx, params["policyName"])
        version = params["policyVersionId"]
        if version == default:
            raise errors.delete_conflict("Cannot delete the default version of a policy")
        if self._document(ctx, name, version) is None:
            raise errors.not_found("Policy version not found")
        self.store.execute("DELETE FROM iot_policy_versions WHERE account=? AND region=? AND policy=? AND version=?",
                           (ctx.account, ctx.region, name, version))
        return {}

    # -- attachments -------------------------------------------------------------------------

    def _check_target(self, ctx: RequestContext, target: str) -> None:
        if ":cert/" in target:
            self._certificate(ctx, target.rpartition("/")[2])
        elif ":thinggroup/" in target:
            self._group(ctx, target.rpartition("/")[2])
        elif not re.match(r"^[a-z]{2}(-[a-z]+)+-\d:[0-9a-f-]+$", target):  # a Cognito identity id
            raise errors.invalid(f"Invalid target: {target}")

    def attach_policy(self, ctx: RequestContext, params: dict) -> dict:
        name, target = self._policy(ctx, params["policyName"])[0], params["target"]
        self._check_target(ctx, target)
        self.store.execute("INSERT OR IGNORE INTO iot_policy_targets VALUES (?,?,?,?)",
                           (ctx.account, ctx.region, name, target))
        self._policies_changed()
        return {}

    def detach_policy(self, ctx: RequestContext, params: dict) -> dict:
        name = self._policy(ctx, params["policyName"])[0]
        self.store.execute("DELETE FROM iot_policy_targets WHERE account=? AND region=? AND policy=? AND target=?",
                           (ctx.account, ctx.region, name, params["target"]))
        self._policies_changed()
        return {}

    def attach_principal_policy(self, ctx: RequestContext, params: dict) -> dict:
        return self.attach_policy(ctx, {"policyName": params["policyName"], "target": params["principal"]})

    def detach_principal_policy(self, ctx: RequestContext, params: dict) -> dict:
        return self.detach_policy(ctx, {"policyName": params["policyName"], "target": params["principal"]})

    def list_attached_policies(self, ctx: RequestContext, params: dict) -> dict:
        targets = [params["target"]]
        if params.get("recursive") and ":thinggroup/" in params["target"]:
            group = self._group(ctx, params["target"].rpartition("/")[2])
            targets += [a for _, a, _ in self._ancestors(ctx, group[3])]
        marks = ",".join("?" * len(targets))
        rows = self.store.all(f"SELECT DISTINCT p.name, p.arn FROM iot_policy_targets t JOIN iot_policies p ON "
                              f"p.account=t.account AND p.region=t.region AND p.name=t.policy WHERE t.account=? AND "
                              f"t.region=? AND t.target IN ({marks}) ORDER BY p.name",
                              (ctx.account, ctx.region, *targets))
        out = page("policies", [{"policyName": n, "policyArn": a} for n, a in rows], params)
        if "nextToken" in out:
            out["nextMarker"] = out.pop("nextToken")
        return out

    def list_principal_policies(self, ctx: RequestContext, params: dict) -> dict:
        return self.list_attached_policies(ctx, {"target": params["principal"]})

    def list_targets_for_policy(self, ctx: RequestContext, params: dict) -> dict:
        name = self._policy(ctx, params["policyName"])[0]
        rows = self.store.all("SELECT target FROM iot_policy_targets WHERE account=? AND region=? AND policy=? "
                              "ORDER BY target", (ctx.account, ctx.region, name))
        out = page("targets", [r[0] for r in rows], params)
        if "nextToken" in out:
            out["nextMarker"] = out.pop("nextToken")
        return out

    def list_policy_principals(self, ctx: RequestContext, params: dict) -> dict:
        return {"principals": self.list_targets_for_policy(ctx, {"policyName": params["policyName"]})["targets"]}

    def attach_thing_principal(self, ctx: RequestContext, params: dict) -> dict:
        thing, principal = self._thing(ctx, params["thingName"])[0], params["principal"]
        if ":cert/" in principal:
            self._certificate(ctx, principal.rpartition("/")[2])
        self.store.execute("INSERT OR IGNORE INTO iot_thing_principals VALUES (?,?,?,?)",
                           (ctx.account, ctx.region, thing, principal))
        self._policies_changed()
        return {}

    def detach_thing_principal(self, ctx: RequestContext, params: dict) -> dict:
        thing = self._thing(ctx, params["thingName"])[0]
        self.store.execute("DELETE FROM iot_thing_principals WHERE account=? AND region=? AND thing=? AND "
                           "principal=?", (ctx.account, ctx.region, thing, params["principal"]))
        self._policies_changed()
        return {}

    def list_thing_principals(self, ctx: RequestContext, params: dict) -> dict:
        thing = self._thing(ctx, params["thingName"])[0]
        rows = self.store.all("SELECT principal FROM iot_thing_principals WHERE account=? AND region=? AND thing=? "
                              "ORDER BY principal", (ctx.account, ctx.region, thing))
        return page("principals", [r[0] for r in rows], params)

    def list_principal_things(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT thing FROM iot_thing_principals WHERE account=? AND region=? AND principal=? "
                              "ORDER BY thing", (ctx.account, ctx.region, params["principal"]))
        return page("things", [r[0] for r in rows], params)

    # -- evaluation (the broker and the HTTP protocol ask here) ------------------------------

    def _policies_changed(self) -> None:
        """Attachments or default versions changed: the broker re-reads a connection's policies."""

    def certificate_status(self, account: str, region: str, cert_id: str) -> str | None:
        row = self.store.one("SELECT status FROM iot_certificates WHERE account=? AND region=? AND id=?",
                             (account, region, cert_id))
        return row[0] if row else None

    def certificate_things(self, account: str, region: str, cert_arn: str) -> list[str]:
        return [r[0] for r in self.store.all("SELECT thing FROM iot_thing_principals WHERE account=? AND region=? "
                                             "AND principal=? ORDER BY thing", (account, region, cert_arn))]

    def principal_documents(self, account: str, region: str, principal: str) -> list[str]:
        """The default-version documents of every policy that applies to ``principal``."""
        targets = [principal]
        for thing in self.certificate_things(account, region, principal):
            for _, group_arn in self.groups_of(account, region, thing):
                targets.append(group_arn)
                row = self.store.one("SELECT parent FROM iot_thing_groups WHERE arn=?", (group_arn,))
                parent = row[0] if row else None
                while parent:
                    row = self.store.one("SELECT arn, parent FROM iot_thing_groups WHERE account=? AND region=? "
                                         "AND name=?", (account, region, parent))
                    if row is None:
                        break
                    targets.append(row[0])
                    parent = row[1]
        marks = ",".join("?" * len(targets))
        rows = self.store.all(f"SELECT DISTINCT v.document FROM iot_policy_targets t JOIN iot_policies p ON "
                              f"p.account=t.account AND p.region=t.region AND p.name=t.policy JOIN "
                              f"iot_policy_versions v ON v.account=p.account AND v.region=p.region AND "
                              f"v.policy=p.name AND v.version=p.default_version WHERE t.account=? AND t.region=? "
                              f"AND t.target IN ({marks})", (account, region, *targets))
        return [r[0] for r in rows]


_VARIABLE = re.compile(r"\$\{(iot:[^}]+)\}")


def compile_documents(documents: list[str], variables: dict[str, str]) -> list:
    """IoT policy documents with one connection's policy variables resolved, compiled once.
    Unresolvable policy variables make the statement match nothing, as AWS's do."""
    from unkai.services.iam.policies import compile_text

    compiled = []
    for text in documents:
        # substituted inside the document's JSON strings, so values are JSON-escaped; an
        # unresolvable variable becomes a NUL no topic or client id can contain
        resolved = _VARIABLE.sub(lambda m: json.dumps(variables.get(m.group(1), "\x00"))[1:-1], text)
        compiled.append(compile_text(resolved))
    return compiled


def allowed_compiled(compiled: list, action: str, resource: str) -> bool:
    """Whether compiled IoT policies allow ``action`` on ``resource``: an explicit deny wins,
    else any allow."""
    from unkai.services.iam.policies import evaluate

    return evaluate(action, resource, {}, compiled).allowed


def allowed(documents: list[str], action: str, resource: str, variables: dict[str, str]) -> bool:
    """``allowed_compiled`` for documents not compiled yet (the device HTTPS endpoint)."""
    return allowed_compiled(compile_documents(documents, variables), action, resource)
