"""ACM: certificates requested, imported, found by domain, read and deleted through boto3, in the
order the Terraform provider calls them for ``aws_acm_certificate``, ``aws_acm_certificate_validation``
and ``data "aws_acm_certificate"`` (the seed's custom domain finds its certificate that way)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def code_of(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def domain() -> str:
    return f"ws-{uuid.uuid4().hex[:8]}.example.com"


def test_a_dns_validated_certificate_is_issued_with_awss_validation_records(unkai):
    acm = unkai.client("acm")
    name = domain()
    # resourceCertificateCreate: RequestCertificate, then DescribeCertificate until the DNS records are there
    arn = acm.request_certificate(DomainName=name, ValidationMethod="DNS", SubjectAlternativeNames=[f"*.{name}"],
                                  KeyAlgorithm="EC_prime256v1", Tags=[{"Key": "env", "Value": "dev"}],
                                  Options={"CertificateTransparencyLoggingPreference": "DISABLED"})["CertificateArn"]
    assert arn.startswith("arn:aws:acm:us-east-1:000000000000:certificate/")
    cert = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert (cert["DomainName"], cert["SubjectAlternativeNames"]) == (name, [name, f"*.{name}"])
    assert (cert["Status"], cert["Type"], cert["KeyAlgorithm"]) == ("ISSUED", "AMAZON_ISSUED", "EC_prime256v1")
    assert cert["Options"]["CertificateTransparencyLoggingPreference"] == "DISABLED"
    records = [o["ResourceRecord"] for o in cert["DomainValidationOptions"]]
    assert [o["ValidationMethod"] for o in cert["DomainValidationOptions"]] == ["DNS", "DNS"]
    assert records[0]["Type"] == "CNAME" and records[0]["Name"].endswith(f".{name}.")
    assert records[0]["Value"].endswith(".acm-validations.aws.")
    assert records[0] == records[1]  # the apex and its wildcard share one record, as on AWS
    assert cert["NotBefore"] < cert["NotAfter"] and cert["RenewalEligibility"] == "INELIGIBLE"
    assert acm.list_tags_for_certificate(CertificateArn=arn)["Tags"] == [{"Key": "env", "Value": "dev"}]
    # the certificate is real X.509 for the names, signed by its chain
    got = acm.get_certificate(CertificateArn=arn)
    leaf = x509.load_pem_x509_certificate(got["Certificate"].encode())
    root = x509.load_pem_x509_certificate(got["CertificateChain"].encode())
    leaf.verify_directly_issued_by(root)
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == [name, f"*.{name}"]
    # update: options and tags; delete; the next read answers ResourceNotFoundException
    acm.update_certificate_options(CertificateArn=arn, Options={"CertificateTransparencyLoggingPreference": "ENABLED"})
    acm.add_tags_to_certificate(CertificateArn=arn, Tags=[{"Key": "team", "Value": "a"}])
    acm.remove_tags_from_certificate(CertificateArn=arn, Tags=[{"Key": "env"}])
    assert acm.list_tags_for_certificate(CertificateArn=arn)["Tags"] == [{"Key": "team", "Value": "a"}]
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["Options"][
        "CertificateTransparencyLoggingPreference"] == "ENABLED"
    acm.delete_certificate(CertificateArn=arn)
    with pytest.raises(ClientError) as exc:
        acm.describe_certificate(CertificateArn=arn)
    assert code_of(exc) == "ResourceNotFoundException"


def test_the_data_source_finds_an_issued_certificate_by_domain_among_the_default_key_types(unkai):
    acm = unkai.client("acm")
    name = domain()
    rsa = acm.request_certificate(DomainName=name, ValidationMethod="DNS")["CertificateArn"]
    ec_arn = acm.request_certificate(DomainName=name, ValidationMethod="DNS",
                                     KeyAlgorithm="EC_prime256v1")["CertificateArn"]
    # data "aws_acm_certificate" { domain = ..., statuses = ["ISSUED"] }: ListCertificates, then Describe
    listed = acm.list_certificates(CertificateStatuses=["ISSUED"])["CertificateSummaryList"]
    assert [c["CertificateArn"] for c in listed if c["DomainName"] == name] == [rsa]  # RSA only by default
    listed = acm.list_certificates(CertificateStatuses=["ISSUED"],
                                   Includes={"keyTypes": ["EC_prime256v1"]})["CertificateSummaryList"]
    assert [c["CertificateArn"] for c in listed if c["DomainName"] == name] == [ec_arn]
    assert acm.list_certificates(CertificateStatuses=["PENDING_VALIDATION"])["CertificateSummaryList"] == []
    # the same idempotency token within the hour gives the same certificate
    token = uuid.uuid4().hex[:16]
    first = acm.request_certificate(DomainName=name, IdempotencyToken=token)["CertificateArn"]
    assert acm.request_certificate(DomainName=name, IdempotencyToken=token)["CertificateArn"] == first
    page = acm.list_certificates(MaxItems=1)
    assert len(page["CertificateSummaryList"]) == 1 and page["NextToken"]
    rest = acm.list_certificates(NextToken=page["NextToken"])["CertificateSummaryList"]
    assert page["CertificateSummaryList"][0] not in rest and rest


def test_an_imported_certificate_reads_back_what_it_holds(unkai):
    acm = unkai.client("acm")
    name = domain()
    key = ec.generate_private_key(ec.SECP384R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "my ca")])).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=36500))  # other tests move the shared clock months ahead
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    arn = acm.import_certificate(Certificate=pem, PrivateKey=private)["CertificateArn"]
    got = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert (got["DomainName"], got["Type"], got["Status"], got["KeyAlgorithm"]) == (
        name, "IMPORTED", "ISSUED", "EC_secp384r1")
    assert got["Issuer"] == "CN=my ca" and abs(got["NotAfter"].timestamp() - cert.not_valid_after_utc.timestamp()) < 1
    assert acm.get_certificate(CertificateArn=arn)["Certificate"] == pem.decode()
    # re-import into the same ARN keeps it
    assert acm.import_certificate(CertificateArn=arn, Certificate=pem, PrivateKey=private)["CertificateArn"] == arn
    with pytest.raises(ClientError) as exc:
        acm.import_certificate(Certificate=b"not a certificate", PrivateKey=private)
    assert code_of(exc) == "ValidationException"


def test_bad_requests_get_acms_errors(unkai):
    acm = unkai.client("acm")
    with pytest.raises(ClientError) as exc:
        acm.request_certificate(DomainName="not a domain")
    assert code_of(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        acm.describe_certificate(CertificateArn="arn:aws:acm:us-east-1:000000000000:nope")
    assert code_of(exc) == "InvalidArnException"
    missing = f"arn:aws:acm:us-east-1:000000000000:certificate/{uuid.uuid4()}"
    for call in (acm.describe_certificate, acm.get_certificate, acm.delete_certificate,
                 acm.list_tags_for_certificate):
        with pytest.raises(ClientError) as exc:
            call(CertificateArn=missing)
        assert code_of(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        acm.request_certificate(DomainName=domain(), Tags=[{"Key": "aws:reserved", "Value": "x"}])
    assert code_of(exc) == "InvalidParameterException"
