"""``AWS::CertificateManager::Certificate`` through ACM's own RequestCertificate.

Ref: the certificate's ARN; no GetAtt attributes. Every property change replaces the
certificate, as on AWS (CloudFormation requests a new one). It is issued at once, so a
stack does not wait on DNS validation (``DomainValidationOptions``' hosted zones are not
written to).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from unkai.services import Provisioned, ResourceContext

if TYPE_CHECKING:
    from unkai.services.acm.service import ACM

TYPES = ("AWS::CertificateManager::Certificate",)


def create(acm: "ACM", ctx: ResourceContext, resource_type: str, logical_id: str,
           props: dict[str, Any]) -> Provisioned:
    params: dict[str, Any] = {k: props[k] for k in ("DomainName", "SubjectAlternativeNames", "ValidationMethod",
                                                    "KeyAlgorithm", "CertificateAuthorityArn", "Tags") if props.get(k)}
    if props.get("CertificateTransparencyLoggingPreference"):
        params["Options"] = {"CertificateTransparencyLoggingPreference":
                             props["CertificateTransparencyLoggingPreference"]}
    arn = acm.request_certificate(ctx.request_context("acm"), params)["CertificateArn"]
    return Provisioned(arn, arn)


def delete(acm: "ACM", ctx: ResourceContext, resource_type: str, physical_id: str, props: dict[str, Any]) -> None:
    from unkai.protocol import ServiceError

    try:
        acm.delete_certificate(ctx.request_context("acm"), {"CertificateArn": physical_id})
    except ServiceError as exc:
        if exc.code != "ResourceNotFoundException":
            raise
