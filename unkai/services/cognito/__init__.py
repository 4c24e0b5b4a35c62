"""Amazon Cognito user pools (``cognito-idp``, JSON protocol) with real tokens.

- ``service.py``: the handlers for pools, app clients, groups, domains, resource
  servers, put together with ``admin.py`` (Admin* user operations, ListUsers) and
  ``accounts.py`` (SignUp, confirmations, forgotten passwords, the signed-in user's
  own operations, sign-in entry points).
- ``pools.py``: the model (tables, pools, clients, groups, domains) and AWS's defaults.
- ``users.py``: users, attributes, password hashing and policy, ListUsers filters, codes.
- ``flows.py``: InitiateAuth and its challenges; ``srp.py``: the SRP-6a math.
- ``tokens.py``: signing keys (sealed at rest), token claims, the JWKS mount.
- ``messages.py``: invitations and codes to the local mailbox; ``triggers.py``: Lambda triggers.
- ``resources.py``: ``AWS::Cognito::*`` template resources; ``errors.py``: AWS's errors.

Not served: Cognito identity pools (``cognito-identity``), MFA (settings are stored,
never challenged), devices, WebAuthn, federation with external identity providers,
user import jobs, risk configuration, managed login branding.
"""

from unkai.services.cognito.service import CognitoIdp

SERVICES = [CognitoIdp]
