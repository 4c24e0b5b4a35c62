"""ACM's operations: read params, call the records (``certificates.py``), shape the reply."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any

from unkai.paging import paged
from unkai.services import RequestContext, Service
from unkai.services.acm import certificates as certs
from unkai.services.acm import errors
from unkai.services.acm.certificates import MIGRATIONS, Certificate

# botocore's DomainNameString pattern
DOMAIN = re.compile(r"^(\*\.)?(((?!-)[A-Za-z0-9-]{0,62}[A-Za-z0-9])\.)+((?!-)[A-Za-z0-9-]{1,62}[A-Za-z0-9])$")
ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$")
# ListCertificates without Includes.keyTypes returns only these (AWS's default filter)
DEFAULT_KEY_TYPES = ("RSA_1024", "RSA_2048")
KEY_USAGES = [{"Name": "DIGITAL_SIGNATURE"}, {"Name": "KEY_ENCIPHERMENT"}]
EXTENDED_KEY_USAGES = [{"Name": "TLS_WEB_SERVER_AUTHENTICATION", "OID": "1.3.6.1.5.5.7.3.1"},
                       {"Name": "TLS_WEB_CLIENT_AUTHENTICATION", "OID": "1.3.6.1.5.5.7.3.2"}]
SUMMARY = ("CertificateArn", "DomainName", "Status", "Type", "KeyAlgorithm", "KeyUsages", "ExtendedKeyUsages",
           "InUse", "RenewalEligibility", "NotBefore", "NotAfter", "CreatedAt", "IssuedAt", "ImportedAt")


class ACM(Service):
    name = "acm"
    migrations = MIGRATIONS
    resource_types = ("AWS::CertificateManager::Certificate",)

    # -- helpers ------------------------------------------------------------------------------

    def check_unimplemented(self, ctx: RequestContext, operation: str, params: dict) -> None:
        """An operation unkai does not serve still answers ResourceNotFoundException for a missing certificate first, as AWS does."""
        if isinstance(params.get("CertificateArn"), str):
            self._certificate(ctx, params["CertificateArn"])

    def _certificate(self, ctx: RequestContext, arn: str) -> Certificate:
        if not ARN.match(arn or ""):
            raise errors.invalid_arn(arn)
        row = self.store.one("SELECT arn, detail, tags, certificate, chain FROM acm_certificates "
                             "WHERE arn=? AND account=? AND region=?", (arn, ctx.account, ctx.region))
        if row is None:
            raise errors.not_found(arn)
        return certs.load(row)

    def _insert(self, ctx: RequestContext, arn: str, detail: dict, tags: dict, pem: str, chain: str,
                token: str | None = None) -> None:
        self.store.execute("INSERT INTO acm_certificates(arn, account, region, detail, tags, certificate, chain, token) "
                           "VALUES(?,?,?,?,?,?,?,?)", (arn, ctx.account, ctx.region, json.dumps(detail),
                                                      json.dumps(tags), pem, chain, token))

    @staticmethod
    def _tags(given: list[dict] | None) -> dict[str, str]:
        tags = {}
        for tag in given or []:
            if tag["Key"].startswith("aws:"):
                raise errors.invalid_parameter("Tag keys starting with 'aws:' are reserved for AWS use")
            tags[tag["Key"]] = tag.get("Value", "")
        if len(tags) > 50:
            raise errors.too_many_tags()
        return tags

    # -- requesting and importing -----------------------------------------------------------------

    def request_certificate(self, ctx: RequestContext, params: dict) -> dict:
        """Issued at once (see certificates.py), with AWS's validation records for each name."""
        domain = params["DomainName"]
        names = [domain] + [n for n in params.get("SubjectAlternativeNames") or [] if n != domain]
        for name in names:
            if len(name) > 253 or not DOMAIN.match(name):
                raise errors.validation(f"1 validation error detected: Value '{name}' at 'domainName' failed to "
                                        "satisfy constraint: Member must satisfy regular expression pattern: "
                                        f"{DOMAIN.pattern[1:-1]}")
        if len(names) > 100:
            raise errors.invalid_parameter("A certificate can have at most 100 domain names")
        method = params.get("ValidationMethod") or "EMAIL"
        if method not in ("DNS", "EMAIL", "HTTP"):
            raise errors.validation(f"1 validation error detected: Value '{method}' at 'validationMethod' failed "
                                    "to satisfy constraint: Member must satisfy enum value set: [EMAIL, DNS, HTTP]")
        algorithm = params.get("KeyAlgorithm") or "RSA_2048"
        token = params.get("IdempotencyToken")
        if token:  # the same token within an hour gives back the same certificate
            row = self.store.one("SELECT arn, detail FROM acm_certificates WHERE account=? AND region=? AND token=?",
                                 (ctx.account, ctx.region, token))
            if row and json.loads(row[1])["CreatedAt"] > self.clock.now() - 3600:
                return {"CertificateArn": row[0]}
        tags = self._tags(params.get("Tags"))
        arn = f"arn:aws:acm:{ctx.region}:{ctx.account}:certificate/{uuid.uuid4()}"
        now = self.clock.now()
        pem, chain, facts = certs.issue(domain, names, algorithm, dt.datetime.fromtimestamp(now, dt.timezone.utc))
        validations = []
        for name in names:
            option: dict[str, Any] = {"DomainName": name, "ValidationDomain": name, "ValidationStatus": "SUCCESS",
                                      "ValidationMethod": method}
            if method == "DNS":
                option["ResourceRecord"] = certs.validation_record(name, arn)
            elif method == "EMAIL":
                bare = name.removeprefix("*.")
                option["ValidationEmails"] = [f"{box}@{bare}" for box in
                                              ("admin", "administrator", "hostmaster", "postmaster", "webmaster")]
            validations.append(option)
        detail = {
            "CertificateArn": arn, "DomainName": domain, "SubjectAlternativeNames": names,
            "DomainValidationOptions": validations, "Serial": facts["Serial"], "Subject": f"CN={domain}",
            "Issuer": "unkai", "CreatedAt": now, "IssuedAt": now, "Status": "ISSUED",
            "NotBefore": facts["NotBefore"], "NotAfter": facts["NotAfter"], "KeyAlgorithm": algorithm,
            "SignatureAlgorithm": facts["SignatureAlgorithm"], "InUseBy": [], "Type": "AMAZON_ISSUED",
            "KeyUsages": KEY_USAGES, "ExtendedKeyUsages": EXTENDED_KEY_USAGES, "RenewalEligibility": "INELIGIBLE",
            "Options": {"CertificateTransparencyLoggingPreference": "ENABLED", "Export": "DISABLED",
                        **(params.get("Options") or {})},
        }
        if params.get("CertificateAuthorityArn"):
            detail["CertificateAuthorityArn"] = params["CertificateAuthorityArn"]
            detail["Type"] = "PRIVATE"
        self._insert(ctx, arn, detail, tags, pem, chain, token)
        return {"CertificateArn": arn}

    def import_certificate(self, ctx: RequestContext, params: dict) -> dict:
        try:
            cert = certs.read_pem(bytes(params["Certificate"]))
            facts = certs.facts(cert)
        except (ValueError, TypeError):
            raise errors.validation("The certificate field contains more than one certificate or is not a valid "
                                    "PEM-encoded certificate.") from None
        if not params.get("PrivateKey"):
            raise errors.validation("The private key is missing.")
        now = self.clock.now()
        arn = params.get("CertificateArn")
        tags = self._tags(params.get("Tags"))
        if arn:  # re-import over an existing imported certificate
            old = self._certificate(ctx, arn)
            if params.get("Tags"):
                raise errors.invalid_parameter("Tags cannot be specified when reimporting a certificate")
            tags = old.tags
            self.store.execute("DELETE FROM acm_certificates WHERE arn=?", (arn,))
        else:
            arn = f"arn:aws:acm:{ctx.region}:{ctx.account}:certificate/{uuid.uuid4()}"
        names = facts["Names"] or [facts["DomainName"]]
        detail = {
            "CertificateArn": arn, "DomainName": facts["DomainName"], "SubjectAlternativeNames": names,
            "DomainValidationOptions": [{"DomainName": n} for n in names], "Serial": facts["Serial"],
            "Subject": facts["Subject"], "Issuer": facts["Issuer"], "CreatedAt": now, "ImportedAt": now,
            "Status": "ISSUED" if facts["NotAfter"] > now else "EXPIRED", "NotBefore": facts["NotBefore"],
            "NotAfter": facts["NotAfter"], "KeyAlgorithm": facts["KeyAlgorithm"],
            "SignatureAlgorithm": facts["SignatureAlgorithm"], "InUseBy": [], "Type": "IMPORTED",
            "KeyUsages": KEY_USAGES, "ExtendedKeyUsages": EXTENDED_KEY_USAGES, "RenewalEligibility": "INELIGIBLE",
            "Options": {"CertificateTransparencyLoggingPreference": "DISABLED", "Export": "DISABLED"},
        }
        chain = bytes(params.get("CertificateChain") or b"").decode()
        self._insert(ctx, arn, detail, tags, bytes(params["Certificate"]).decode(), chain)
        return {"CertificateArn": arn}

    # -- reading ------------------------------------------------------------------------------------

    def describe_certificate(self, ctx: RequestContext, params: dict) -> dict:
        return {"Certificate": self._certificate(ctx, params["CertificateArn"]).detail}

    def get_certificate(self, ctx: RequestContext, params: dict) -> dict:
        cert = self._certificate(ctx, params["CertificateArn"])
        if cert.detail["Status"] not in ("ISSUED", "EXPIRED"):
            raise errors.not_issued(cert.arn)
        out = {"Certificate": cert.certificate}
        if cert.chain:
            out["CertificateChain"] = cert.chain
        return out

    def list_certificates(self, ctx: RequestContext, params: dict) -> dict:
        statuses = params.get("CertificateStatuses") or []
        key_types = (params.get("Includes") or {}).get("keyTypes") or DEFAULT_KEY_TYPES
        rows = self.store.all("SELECT arn, detail, tags, certificate, chain FROM acm_certificates "
                              "WHERE account=? AND region=? ORDER BY rowid", (ctx.account, ctx.region))
        summaries = []
        for cert in map(certs.load, rows):
            d = cert.detail
            if (statuses and d["Status"] not in statuses) or d["KeyAlgorithm"] not in key_types:
                continue
            summary = {k: d[k] for k in SUMMARY if k in d}
            summary["InUse"] = bool(d.get("InUseBy"))
            summary["SubjectAlternativeNameSummaries"] = d["SubjectAlternativeNames"]
            summary["HasAdditionalSubjectAlternativeNames"] = False
            summaries.append(summary)
        return paged("CertificateSummaryList", summaries, params.get("NextToken"), params.get("MaxItems"), 1000)

    # -- changing -----------------------------------------------------------------------------------

    def delete_certificate(self, ctx: RequestContext, params: dict) -> dict:
        cert = self._certificate(ctx, params["CertificateArn"])
        self.store.execute("DELETE FROM acm_certificates WHERE arn=?", (cert.arn,))
        return {}

    def update_certificate_options(self, ctx: RequestContext, params: dict) -> dict:
        cert = self._certificate(ctx, params["CertificateArn"])
        cert.detail["Options"] = {**cert.detail.get("Options", {}), **(params.get("Options") or {})}
        self.store.execute("UPDATE acm_certificates SET detail=? WHERE arn=?", (json.dumps(cert.detail), cert.arn))
        return {}

    def add_tags_to_certificate(self, ctx: RequestContext, params: dict) -> dict:
        cert = self._certificate(ctx, params["CertificateArn"])
        tags = {**cert.tags, **self._tags(params.get("Tags"))}
        self.store.execute("UPDATE acm_certificates SET tags=? WHERE arn=?", (json.dumps(tags), cert.arn))
        return {}

    def remove_tags_from_certificate(self, ctx: RequestContext, params: dict) -> dict:
        cert = self._certificate(ctx, params["CertificateArn"])
        drop = {t["Key"]: t.get("Value") for t in params.get("Tags") or []}
        tags = {k: v for k, v in cert.tags.items() if not (k in drop and drop[k] in (None, v))}
        self.store.execute("UPDATE acm_certificates SET tags=? WHERE arn=?", (json.dumps(tags), cert.arn))
        return {}

    def list_tags_for_certificate(self, ctx: RequestContext, params: dict) -> dict:
        cert = self._certificate(ctx, params["CertificateArn"])
        return {"Tags": [{"Key": k, "Value": v} for k, v in cert.tags.items()]}
