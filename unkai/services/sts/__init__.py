"""STS: GetCallerIdentity, AssumeRole, AssumeRoleWithWebIdentity, GetSessionToken,
GetFederationToken, GetAccessKeyInfo, DecodeAuthorizationMessage; temporary credentials
unkai accepts (``service.py``), and each function's execution-role credentials.

Not served: AssumeRoleWithSAML, AssumeRoot, GetDelegatedAccessToken."""

from unkai.services.sts.service import STS

SERVICES = [STS]
