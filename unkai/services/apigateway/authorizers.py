"""Authorizers: Lambda TOKEN and REQUEST authorizers (IAM policy or, for HTTP APIs,
simple responses) with result caching on unkai's clock, and JWT/Cognito authorizers
verified against the issuer's JWKS (fetched through unkai when the issuer is an AWS
or ``*.localhost`` URL)."""

from __future__ import annotations

import json
import re
from typing import Any

from unkai.services.apigateway.integrations import IntegrationTimeout, Outbound, invoke_lambda
from unkai.services.apigateway.responses import GatewayError

JWKS_TTL = 3600.0
VERIFIED_MAX = 4096  # signature-checked tokens remembered per key set


def _glob(pattern: str, text: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text) is not None


def evaluate_policy(policy: Any, arn: str) -> str | None:
    """'Allow', 'Deny' (an explicit deny wins) or None for an IAM policy and a method ARN."""
    if isinstance(policy, str):
        policy = json.loads(policy)
    statements = policy.get("Statement") or policy.get("statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for st in statements:
        effect = (st.get("Effect") or st.get("effect") or "").capitalize()
        actions = st.get("Action") or st.get("action") or []
        actions = [actions] if isinstance(actions, str) else actions
        if not any(_glob(a, "execute-api:Invoke") or a in ("*", "execute-api:*") for a in actions):
            continue
        resources = st.get("Resource") or st.get("resource") or []
        resources = [resources] if isinstance(resources, str) else resources
        if any(_glob(r, arn) for r in resources):
            if effect == "Deny":
                return "Deny"
            if effect == "Allow":
                allowed = True
    return "Allow" if allowed else None


class Authorizers:
    def __init__(self, cloud: Any, outbound: Outbound) -> None:
        self.cloud = cloud
        self.outbound = outbound
        self.cache: dict[tuple, tuple[float, Any]] = {}
        self.jwks: dict[str, tuple[float, dict]] = {}
        # per key set: (the JWKS document, {token: its claims}) for tokens whose header and
        # signature were already checked against that document; forgotten when it is refetched
        self.verified: dict[str, tuple[dict, dict[str, dict]]] = {}

    def flush(self, api_id: str, stage: str | None = None) -> None:
        for key in [k for k in self.cache if k[0] == api_id and (stage is None or k[1] == stage)]:
            del self.cache[key]

    def _cached(self, key: tuple) -> Any:
        hit = self.cache.get(key)
        if hit and hit[0] > self.cloud.clock.now():
            return hit[1]
        return None

    async def _invoke(self, uri: str, event: dict, stage_variables: dict | None) -> Any:
        try:
            result = await invoke_lambda(self.cloud, uri, json.dumps(event).encode(), 29.0, stage_variables)
        except IntegrationTimeout:
            raise GatewayError("AUTHORIZER_FAILURE") from None
        except GatewayError as exc:
            raise GatewayError("AUTHORIZER_CONFIGURATION_ERROR") from exc
        if result.function_error:
            try:
                message = (result.json() or {}).get("errorMessage")
            except (ValueError, AttributeError):
                message = None
            if message == "Unauthorized":
                raise GatewayError("UNAUTHORIZED")
            raise GatewayError("AUTHORIZER_CONFIGURATION_ERROR")
        try:
            return result.json()
        except ValueError:
            raise GatewayError("AUTHORIZER_CONFIGURATION_ERROR") from None

    # -- Lambda authorizers with IAM policies (REST, WebSocket, HTTP payload 1.0) ----------

    async def policy_authorizer(self, *, api_id: str, stage: str, auth: dict, identity: tuple, event: dict,
                                method_arn: str, stage_variables: dict | None, ttl: int) -> dict:
        """Run (or reuse) a Lambda authorizer returning an IAM policy; the context
        the integration sees (principalId + the policy's context)."""
        key = (api_id, stage, auth.get("id") or auth.get("AuthorizerId"), identity)
        output = self._cached(key) if ttl > 0 else None
        if output is None:
            output = await self._invoke(auth.get("authorizerUri") or auth.get("AuthorizerUri"), event,
                                        stage_variables)
            if not isinstance(output, dict) or "policyDocument" not in output:
                raise GatewayError("AUTHORIZER_CONFIGURATION_ERROR")
            if ttl > 0:
                self.cache[key] = (self.cloud.clock.now() + ttl, output)
        try:
            verdict = evaluate_policy(output["policyDocument"], method_arn)
        except (ValueError, AttributeError, TypeError):
            raise GatewayError("AUTHORIZER_CONFIGURATION_ERROR") from None
        if verdict != "Allow":
            raise GatewayError("ACCESS_DENIED", "User is not authorized to access this resource with an explicit "
                               "deny" if verdict == "Deny" else "User is not authorized to access this resource")
        context: dict[str, Any] = {"principalId": output.get("principalId"), "integrationLatency": 0}
        for k, v in (output.get("context") or {}).items():
            if isinstance(v, (dict, list)):
                raise GatewayError("AUTHORIZER_CONFIGURATION_ERROR")
            context[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)  # AWS passes strings
        if output.get("usageIdentifierKey"):
            context["_usageIdentifierKey"] = output["usageIdentifierKey"]
        return context

    # -- HTTP API Lambda authorizers with simple responses -------------------------------

    async def simple_authorizer(self, *, api_id: str, stage: str, auth: dict, identity: tuple, event: dict,
                                stage_variables: dict | None, ttl: int) -> dict:
        key = (api_id, stage, auth["AuthorizerId"], identity)
        output = self._cached(key) if ttl > 0 else None
        if output is None:
            output = await self._invoke(auth["AuthorizerUri"], event, stage_variables)
            if not isinstance(output, dict) or not isinstance(output.get("isAuthorized"), bool):
                raise GatewayError("AUTHORIZER_CONFIGURATION_ERROR")
            if ttl > 0:
                self.cache[key] = (self.cloud.clock.now() + ttl, output)
        if not output["isAuthorized"]:
            raise GatewayError("ACCESS_DENIED", "Forbidden")
        return dict(output.get("context") or {})

    # -- JWT ----------------------------------------------------------------------------

    async def _keys(self, issuer: str, jwks_uri: str | None = None) -> dict:
        cached = self.jwks.get(jwks_uri or issuer)
        if cached and cached[0] > self.cloud.clock.now():
            return cached[1]
        base = issuer.rstrip("/")
        uri = jwks_uri
        if uri is None:
            try:
                found = await self.outbound.request("GET", base + "/.well-known/openid-configuration", [], b"", 10.0)
                if found.status_code == 200:
                    uri = found.json().get("jwks_uri")
            except (GatewayError, IntegrationTimeout, ValueError):
                uri = None
            uri = uri or base + "/.well-known/jwks.json"
        try:
            response = await self.outbound.request("GET", uri, [], b"", 10.0)
            keys = response.json() if response.status_code == 200 else None
        except (GatewayError, IntegrationTimeout, ValueError):
            keys = None
        if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
            raise GatewayError("UNAUTHORIZED")
        self.jwks[jwks_uri or issuer] = (self.cloud.clock.now() + JWKS_TTL, keys)
        return keys

    async def verify_jwt(self, token: str, issuer: str, audiences: list[str] | None,
                         jwks_uri: str | None = None) -> dict:
        """The token's claims when it is signed by the issuer's keys, unexpired, for one
        of ``audiences`` (``aud`` or Cognito's ``client_id``); else 401."""
        def fail(description: str) -> GatewayError:
            return GatewayError("UNAUTHORIZED", "Unauthorized", {
                "www-authenticate": f'Bearer scope="" error="invalid_token" error_description="{description}"'})

        # A signature check costs about a millisecond (RSA, header and JSON decoding); a
        # token already checked against this very key set has the same claims, so only the
        # time-dependent and per-API checks below run again.
        where = jwks_uri or issuer
        cached, known = self.jwks.get(where), self.verified.get(where)
        claims = None
        if cached and cached[0] > self.cloud.clock.now() and known and known[0] is cached[1]:
            claims = known[1].get(token)
        if claims is None:
            import jwt  # here, not at the top: slow to import, and most stacks have no JWT authorizer

            try:
                header = jwt.get_unverified_header(token)
            except jwt.PyJWTError:
                raise fail("the token is malformed") from None
            keys = await self._keys(issuer, jwks_uri)
            claims = self._check_signature(token, header, keys, fail)
            known = self.verified.get(where)
            if known is None or known[0] is not keys:
                known = self.verified[where] = (keys, {})
            if len(known[1]) >= VERIFIED_MAX:
                known[1].pop(next(iter(known[1])))
            known[1][token] = claims
        now = self.cloud.clock.now()
        if claims.get("iss") != issuer:
            raise fail("the token has an invalid issuer")
        if "exp" in claims and float(claims["exp"]) <= now:
            raise fail("the token has expired")
        if "nbf" in claims and float(claims["nbf"]) > now:
            raise fail("the token is not valid yet")
        if audiences:
            aud = claims.get("aud", claims.get("client_id"))
            aud_list = aud if isinstance(aud, list) else [aud]
            if not any(a in audiences for a in aud_list if a):
                raise fail("the token does not have a valid audience")
        return dict(claims)

    @staticmethod
    def _check_signature(token: str, header: dict, keys: dict, fail: Any) -> dict:
        """The claims of a token signed by one of ``keys``; else the 401 ``fail`` makes."""
        candidates = [k for k in keys["keys"] if not header.get("kid") or k.get("kid") == header.get("kid")]
        if not candidates:
            raise fail("the token's key is unknown")
        algorithm = header.get("alg", "RS256")
        if algorithm == "none" or algorithm.startswith("HS"):
            raise fail("the token's algorithm is not supported")
        import jwt

        try:
            key = jwt.PyJWK(candidates[0], algorithm=algorithm).key
            return jwt.decode(token, key, algorithms=[algorithm],
                              options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                                       "verify_aud": False, "verify_iss": False})
        except jwt.PyJWTError:
            raise fail("the token signature is invalid") from None


def scopes_of(claims: dict) -> list[str]:
    raw = claims.get("scope", claims.get("scp", ""))
    return raw.split() if isinstance(raw, str) else list(raw or [])


def string_claims(claims: dict) -> dict[str, str]:
    """HTTP APIs hand claims to the integration as strings; lists as ``[a b]``."""
    out = {}
    for k, v in claims.items():
        if isinstance(v, list):
            out[k] = "[" + " ".join(str(x) for x in v) + "]"
        elif isinstance(v, bool):
            out[k] = "true" if v else "false"
        else:
            out[k] = str(v)
    return out
