"""IAM: identities and what they may do.

- ``service.py``: the operations (query protocol, one global endpoint): users, groups, roles,
  managed and inline policies, attachments, boundaries, instance profiles, access keys,
  OIDC providers, GetAccountAuthorizationDetails, the policy simulator.
- ``model.py``: the records (one JSON document per entity, access keys with sealed secrets).
- ``policies.py``: AWS's policy grammar (MalformedPolicyDocument) and evaluation logic, from a
  compiled, cached form.
- ``managed.py``: the AWS managed policies every account has, with their documents.
- ``enforcement.py``: ``unkai up --enforce-iam``: every request checked against its caller's policies.
- ``errors.py``, ``resources.py``: IAM's errors; the ``AWS::IAM::*`` template resources.

Not served: login profiles and passwords, MFA devices, SAML providers, server and signing
certificates, SSH keys, credential reports, organizations' SCPs.
"""

from unkai.services.iam.service import IAM

SERVICES = [IAM]
