"""AWS Certificate Manager (JSON protocol), enough for what serverless systems ask of it:
the certificates a custom API domain names, found by domain (Terraform's
``data "aws_acm_certificate"``) or requested and validated (``aws_acm_certificate``,
``aws_acm_certificate_validation``).

- ``service.py``: the operations: RequestCertificate, ImportCertificate, DescribeCertificate,
  ListCertificates, GetCertificate, DeleteCertificate, the tag operations, UpdateCertificateOptions.
- ``certificates.py``: the records (``acm_certificates``) and the X.509 they hold: a requested
  certificate is issued at once by its own local root (no DNS or mail validation happens here).
- ``resources.py``: ``AWS::CertificateManager::Certificate`` (Ref: the ARN).
- ``errors.py``: AWS's errors.

Not served: private CAs, renewal, export, revocation, the ACME operations.
"""

from unkai.services.acm.service import ACM

SERVICES = [ACM]
