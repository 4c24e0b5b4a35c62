"""ID, access and refresh tokens as Cognito issues them, the pool's signing keys,
and the JWKS and OpenID configuration served at the issuer's path.

Each pool gets its own RSA-2048 key pair when it is created; the private key is
stored only sealed (``cloud.sealer``, bound to the pool id), the public half as the
JWK served at ``/<pool id>/.well-known/jwks.json``. A gateway mount answers that path
on any host, so both ``https://cognito-idp.<region>.amazonaws.com/<pool id>/...``
(sent to unkai with the issuer's Host, as API Gateway's authorizers and Lambda
handlers do) and ``http://127.0.0.1:4566/<pool id>/...`` work. Token claims follow
AWS's (``iss``, ``token_use``, ``cognito:username``, ``cognito:groups``,
``origin_jti``, ``event_id``, ``auth_time``...), times on unkai's clock. Refresh tokens
are opaque (AWS's are encrypted JWTs): only their SHA-256 is stored.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import uuid
from typing import TYPE_CHECKING, Any

from unkai.http import Request, Response
from unkai.services.cognito import errors
from unkai.services.cognito.pools import Client, Pool
from unkai.services.cognito.users import User

if TYPE_CHECKING:
    from unkai.cloud import Cloud

WELL_KNOWN = re.compile(r"^/(?P<pool>[a-z]{2}(?:-[a-z]+)+-\d_[0-9A-Za-z]+)/\.well-known/"
                        r"(?P<doc>jwks\.json|openid-configuration)$")
REFRESH_PREFIX = "eyJjdHkiOiJKV1QiLCJlbmMiOiJBMjU2R0NNIiwiYWxnIjoiUlNBLU9BRVAifQ."


class Keys:
    """Each pool's signing key: made once, kept sealed in the store, cached in memory."""

    def __init__(self, cloud: "Cloud") -> None:
        self.cloud = cloud
        self.store = cloud.store
        self._cache: dict[str, tuple[str, Any]] = {}

    def create(self, pool_id: str) -> None:
        import jwt
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        kid = base64.b64encode(hashlib.sha256(json.dumps(public, sort_keys=True).encode()).digest()).decode()
        jwk = {"alg": "RS256", "e": public["e"], "kid": kid, "kty": "RSA", "n": public["n"], "use": "sig"}
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        sealed = self.cloud.sealer.seal(pem, pool_id.encode())
        self.store.execute("INSERT OR REPLACE INTO cognito_keys(pool_id, kid, public_jwk, private_key) "
                           "VALUES(?,?,?,?)", (pool_id, kid, json.dumps(jwk), sealed))
        self._cache[pool_id] = (kid, key)

    def clear(self) -> None:
        """Forget every cached key (the store was put back to a snapshot)."""
        self._cache.clear()

    def forget(self, pool_id: str) -> None:
        self._cache.pop(pool_id, None)

    def jwks(self, pool_id: str) -> dict | None:
        row = self.store.one("SELECT public_jwk FROM cognito_keys WHERE pool_id=?", (pool_id,))
        return {"keys": [json.loads(row[0])]} if row else None

    def private(self, pool_id: str) -> tuple[str, Any]:
        cached = self._cache.get(pool_id)
        if cached is None:
            from cryptography.hazmat.primitives import serialization

            row = self.store.one("SELECT kid, private_key FROM cognito_keys WHERE pool_id=?", (pool_id,))
            if row is None:
                self.create(pool_id)
                return self._cache[pool_id]
            pem = self.cloud.sealer.unseal(bytes(row[1]), pool_id.encode())
            cached = self._cache[pool_id] = (row[0], serialization.load_pem_private_key(pem, None))
        return cached

    def public(self, pool_id: str, kid: str) -> Any | None:
        import jwt  # PyJWT is imported at first use throughout: it is slow to import

        found = self.jwks(pool_id)
        for jwk in (found or {}).get("keys", []):
            if jwk["kid"] == kid:
                return jwt.PyJWK(jwk).key
        return None

    def sign(self, pool_id: str, claims: dict) -> str:
        import jwt

        kid, key = self.private(pool_id)
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def _bool(value: str) -> bool:
    return value == "true"


def id_claims(pool: Pool, client: Client, user: User, groups: list[dict], auth_time: int, origin_jti: str,
              event_id: str, now: int) -> dict:
    claims: dict[str, Any] = {"sub": user.sub}
    if groups:
        claims["cognito:groups"] = [g["GroupName"] for g in groups]
        roles = [g["RoleArn"] for g in groups if g.get("RoleArn")]
        if roles:
            claims["cognito:roles"] = roles
            claims["cognito:preferred_role"] = roles[0]
    for name, value in user.attributes.items():
        if name in ("email_verified", "phone_number_verified"):
            claims[name] = _bool(value)
        elif name == "updated_at":
            try:
                claims[name] = int(value)
            except ValueError:
                claims[name] = value
        else:
            claims[name] = value
    claims.update({"iss": pool.issuer, "cognito:username": user.username, "origin_jti": origin_jti,
                   "aud": client.id, "event_id": event_id, "token_use": "id", "auth_time": auth_time,
                   "exp": now + client.validity("id"), "iat": now, "jti": str(uuid.uuid4())})
    return claims


def access_claims(pool: Pool, client: Client, user: User, groups: list[dict], auth_time: int, origin_jti: str,
                  event_id: str, now: int, scope: str = "aws.cognito.signin.user.admin") -> dict:
    claims: dict[str, Any] = {"sub": user.sub}
    if groups:
        claims["cognito:groups"] = [g["GroupName"] for g in groups]
    claims.update({"iss": pool.issuer, "client_id": client.id, "origin_jti": origin_jti, "event_id": event_id,
                   "token_use": "access", "scope": scope, "auth_time": auth_time,
                   "exp": now + client.validity("access"), "iat": now, "jti": str(uuid.uuid4()),
                   "username": user.username})
    return claims


def at_hash(access_token: str) -> str:
    """OpenID Connect's at_hash: the left half of the access token's SHA-256, base64url."""
    digest = hashlib.sha256(access_token.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_refresh_token() -> str:
    return REFRESH_PREFIX + secrets.token_urlsafe(48) + "." + secrets.token_urlsafe(16)


def refresh_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def unverified_pool(token: str) -> str | None:
    """The pool id a token claims to be from (its ``iss``), before any check."""
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    iss = claims.get("iss") if isinstance(claims, dict) else None
    if not isinstance(iss, str):
        return None
    return iss.rstrip("/").rsplit("/", 1)[-1]


def verify(keys: Keys, pool: Pool, token: str, now: float, token_use: str = "access") -> dict:
    """The claims of a token this pool signed and that is still valid, else NotAuthorized."""
    import jwt

    invalid = errors.not_authorized("Invalid Access Token" if token_use == "access" else "Invalid ID Token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise invalid from None
    key = keys.public(pool.id, header.get("kid") or "")
    if key is None or header.get("alg") != "RS256":
        raise invalid
    try:
        claims = jwt.decode(token, key, algorithms=["RS256"],
                            options={"verify_exp": False, "verify_aud": False, "verify_iat": False,
                                     "verify_nbf": False})
    except jwt.PyJWTError:
        raise invalid from None
    if claims.get("iss") != pool.issuer or claims.get("token_use") != token_use:
        raise invalid
    if float(claims.get("exp", 0)) <= now:
        raise errors.not_authorized("Access Token has expired")
    return claims


def mount(cloud: "Cloud", keys: Keys) -> None:
    """Serve every pool's JWKS and OpenID configuration at its issuer's path."""
    gateway = getattr(cloud, "gateway", None)
    if gateway is None:
        return

    def accepts(request: Request) -> bool:
        return request.method in ("GET", "HEAD") and WELL_KNOWN.match(request.path) is not None

    async def serve(request: Request) -> Response:
        m = WELL_KNOWN.match(request.path)
        pool_id = m["pool"]
        row = cloud.store.one("SELECT region FROM cognito_pools WHERE id=?", (pool_id,))
        if row is None:
            return Response.json({"message": f"User pool {pool_id} does not exist."}, 404)
        issuer = f"https://cognito-idp.{row[0]}.amazonaws.com/{pool_id}"
        if m["doc"] == "jwks.json":
            found = keys.jwks(pool_id)
            if found is None:
                with cloud.store.transaction():
                    keys.create(pool_id)
                found = keys.jwks(pool_id)
            return Response.json(found)
        domain = cloud.store.one("SELECT domain FROM cognito_domains WHERE pool_id=?", (pool_id,))
        base = f"https://{domain[0]}.auth.{row[0]}.amazoncognito.com" if domain else issuer
        return Response.json({
            "issuer": issuer, "jwks_uri": issuer + "/.well-known/jwks.json",
            "authorization_endpoint": base + "/oauth2/authorize", "token_endpoint": base + "/oauth2/token",
            "userinfo_endpoint": base + "/oauth2/userInfo", "end_session_endpoint": base + "/logout",
            "revocation_endpoint": base + "/oauth2/revoke",
            "response_types_supported": ["code", "token"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "phone", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"]})

    gateway.mount(accepts, serve)
