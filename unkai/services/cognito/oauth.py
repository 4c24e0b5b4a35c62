"""A pool domain's OAuth 2.0 endpoints, with a minimal local sign-in page in place of
the hosted UI: ``/oauth2/authorize`` (code with PKCE, implicit), ``/login``,
``/oauth2/token`` (authorization_code, refresh_token, client_credentials with resource
server scopes), ``/oauth2/userInfo`` and ``/logout``.

They answer on the domain's AWS host name (``{domain}.auth.{region}.amazoncognito.com``
in ``Host``) and, for browsers, under ``/_unkai/cognito/{domain}/...``. Authorization
codes are single-use rows (their SHA-256 only), valid five minutes on unkai's clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from unkai.http import Request, Response
from unkai.protocol import ServiceError
from unkai.services.cognito import tokens
from unkai.services.cognito.pools import Client, Pool
from unkai.services.cognito.users import User, check_password

if TYPE_CHECKING:
    from unkai.services.cognito.service import CognitoIdp

HOST = re.compile(r"^(?P<domain>[a-z0-9-]+)\.auth\.(?P<region>[a-z0-9-]+)\.amazoncognito\.com(?::\d+)?$")
PATHS = ("/oauth2/authorize", "/oauth2/token", "/oauth2/userInfo", "/login", "/logout")
CODE_TTL = 300.0


class OAuthError(Exception):
    def __init__(self, error: str, status: int = 400) -> None:
        super().__init__(error)
        self.error, self.status = error, status


def _json(data: dict, status: int = 200, headers: list | None = None) -> Response:
    return Response.json(data, status, [("cache-control", "no-store"), ("pragma", "no-cache")] + (headers or []))


def _redirect(url: str) -> Response:
    return Response(302, [("location", url)])


class OAuth:
    def __init__(self, service: "CognitoIdp") -> None:
        self.service = service
        self.store = service.store
        self.clock = service.clock

    def mount(self) -> None:
        gateway = getattr(self.service.cloud, "gateway", None)
        if gateway is None:
            return

        def by_host(request: Request) -> bool:
            return HOST.match((request.host or "").lower()) is not None and request.path in PATHS

        async def serve_host(request: Request) -> Response:
            domain = HOST.match(request.host.lower())["domain"]
            return await self.handle(request, domain, request.path, f"{request.scheme}://{request.host}")

        async def serve_path(request: Request, m: re.Match) -> Response:
            prefix = f"{request.scheme}://{request.host}/_unkai/cognito/{m['domain']}"
            return await self.handle(request, m["domain"], m["rest"], prefix)

        gateway.mount(by_host, serve_host)
        # the hosted UI and OAuth endpoints are public on AWS: any page may send the browser there
        gateway.internal.route("*", r"/_unkai/cognito/(?P<domain>[a-z0-9-]+)(?P<rest>/.*)", serve_path, access="public")

    async def handle(self, request: Request, domain: str, path: str, prefix: str) -> Response:
        found = self.service.pools.domain(domain)
        if found is None:
            return Response.text("No such domain", 404)
        try:
            pool = self.service.pools.get(found[0])
        except ServiceError:
            return Response.text("No such domain", 404)
        body = await request.body() if request.method == "POST" else b""
        form = dict(parse_qsl(body.decode("utf-8", "replace"))) if body else {}
        query = request.query_dict()
        try:
            if path == "/oauth2/authorize" and request.method == "GET":
                return self.authorize(pool, query, prefix)
            if path == "/login" and request.method == "POST":
                return await self.login(pool, query, form, prefix)
            if path == "/login" and request.method == "GET":
                return self.authorize(pool, query, prefix)
            if path == "/oauth2/token" and request.method == "POST":
                return await self.token(pool, request, form)
            if path == "/oauth2/userInfo" and request.method in ("GET", "POST"):
                return self.user_info(pool, request)
            if path == "/logout" and request.method == "GET":
                return self.logout(pool, query, prefix)
        except OAuthError as exc:
            return _json({"error": exc.error}, exc.status)
        return Response.text("Not found", 404)

    # -- the sign-in page -----------------------------------------------------------------

    def _client(self, pool: Pool, client_id: str | None) -> Client:
        try:
            client = self.service.pools.client(client_id or "", pool.id)
        except ServiceError:
            raise OAuthError("invalid_client", 400) from None
        if not client.config.get("AllowedOAuthFlowsUserPoolClient"):
            raise OAuthError("unauthorized_client", 400)
        return client

    def _checked(self, pool: Pool, query: dict) -> tuple[Client, str]:
        client = self._client(pool, query.get("client_id"))
        redirect = query.get("redirect_uri") or ""
        if redirect not in (client.config.get("CallbackURLs") or []):
            raise OAuthError("redirect_mismatch")
        flow = {"code": "code", "token": "implicit"}.get(query.get("response_type") or "")
        if flow is None or flow not in (client.config.get("AllowedOAuthFlows") or []):
            raise OAuthError("unsupported_response_type")
        if query.get("code_challenge_method") not in (None, "S256", "plain"):
            raise OAuthError("invalid_request")
        scopes = (query.get("scope") or " ".join(client.config.get("AllowedOAuthScopes") or [])).split()
        if any(s not in (client.config.get("AllowedOAuthScopes") or []) for s in scopes):
            raise OAuthError("invalid_scope")
        return client, " ".join(scopes)

    def authorize(self, pool: Pool, query: dict, prefix: str, message: str = "") -> Response:
        self._checked(pool, query)
        action = escape(f"{prefix}/login?{urlencode(query)}")
        note = f"<p class='error'>{escape(message)}</p>" if message else ""
        page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Sign in</title></head><body>"
                f"<h1>Sign in</h1>{note}<form method='post' action='{action}'>"
                "<label>Username <input name='username' autocomplete='username' autofocus></label><br>"
                "<label>Password <input name='password' type='password' autocomplete='current-password'></label>"
                "<br><button type='submit'>Sign in</button></form></body></html>")
        return Response.text(page, 200 if not message else 400, "text/html; charset=utf-8")

    async def login(self, pool: Pool, query: dict, form: dict, prefix: str) -> Response:
        client, scope = self._checked(pool, query)
        user = self.service.users.find(pool, form.get("username") or "")
        if user is None or not user.enabled or not check_password(user.password, form.get("password") or ""):
            return self.authorize(pool, query, prefix, "Incorrect username or password.")
        if user.status != "CONFIRMED":
            return self.authorize(pool, query, prefix, "User is not confirmed." if user.status == "UNCONFIRMED"
                                  else "A new password is required: change it with the API first.")
        redirect, state = query["redirect_uri"], query.get("state")
        if query.get("response_type") == "token":
            result = await self.service.flows.issue(pool, client, user, {}, "HostedAuth", int(self.clock.now()),
                                                    str(uuid.uuid4()), scope, query.get("nonce"))
            fragment = {"access_token": result["AccessToken"], "id_token": result["IdToken"],
                        "token_type": "Bearer", "expires_in": result["ExpiresIn"]}
            if state:
                fragment["state"] = state
            return _redirect(f"{redirect}#{urlencode(fragment)}")
        code = str(uuid.uuid4())
        with self.store.transaction():
            self.store.execute(
                "INSERT INTO cognito_auth_codes(digest, client_id, user_id, redirect_uri, scope, challenge, method, "
                "nonce, expires) VALUES(?,?,?,?,?,?,?,?,?)",
                (hashlib.sha256(code.encode()).hexdigest(), client.id, user.id, redirect, scope,
                 query.get("code_challenge"), query.get("code_challenge_method") or
                 ("plain" if query.get("code_challenge") else None), query.get("nonce"),
                 self.clock.now() + CODE_TTL))
        params = {"code": code, **({"state": state} if state else {})}
        return _redirect(f"{redirect}{'&' if '?' in redirect else '?'}{urlencode(params)}")

    # -- /oauth2/token --------------------------------------------------------------------

    def _authenticated(self, pool: Pool, request: Request, form: dict) -> Client:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("authorization") or ""
        if auth.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                raise OAuthError("invalid_client", 401) from None
        try:
            client = self.service.pools.client(client_id or "", pool.id)
        except ServiceError:
            raise OAuthError("invalid_client", 401) from None
        if client.secret and not hmac.compare_digest(client.secret, secret or ""):
            raise OAuthError("invalid_client", 401)
        return client

    async def token(self, pool: Pool, request: Request, form: dict) -> Response:
        client = self._authenticated(pool, request, form)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return await self._code_grant(pool, client, form)
        if grant == "refresh_token":
            try:
                user, row = self.service.flows.refresh_session(client, form.get("refresh_token") or "")
            except ServiceError:
                raise OAuthError("invalid_grant") from None
            scope = " ".join(client.config.get("AllowedOAuthScopes") or []) or None
            result = await self.service.flows.issue(pool, client, user, {}, "RefreshTokens", row[3], row[2], scope)
            return _json({"id_token": result["IdToken"], "access_token": result["AccessToken"],
                          "expires_in": result["ExpiresIn"], "token_type": "Bearer"})
        if grant == "client_credentials":
            return self._client_credentials(pool, client, form)
        raise OAuthError("unsupported_grant_type")

    async def _code_grant(self, pool: Pool, client: Client, form: dict) -> Response:
        digest = hashlib.sha256((form.get("code") or "").encode()).hexdigest()
        with self.store.transaction():
            row = self.store.one("SELECT client_id, user_id, redirect_uri, scope, challenge, method, nonce, expires "
                                 "FROM cognito_auth_codes WHERE digest=?", (digest,))
            self.store.execute("DELETE FROM cognito_auth_codes WHERE digest=?", (digest,))  # single use
        if row is None or row[0] != client.id or row[7] <= self.clock.now():
            raise OAuthError("invalid_grant")
        if form.get("redirect_uri") != row[2]:
            raise OAuthError("invalid_grant")
        if row[4]:
            verifier = form.get("code_verifier") or ""
            expected = row[4]
            actual = (base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                      if row[5] == "S256" else verifier)
            if not verifier or not hmac.compare_digest(actual, expected):
                raise OAuthError("invalid_grant")
        user = self.service.users.by_id(row[1])
        if user is None or not user.enabled:
            raise OAuthError("invalid_grant")
        result = await self.service.flows.issue(pool, client, user, {}, "HostedAuth", int(self.clock.now()), None,
                                                row[3], row[6])
        return _json({"id_token": result["IdToken"], "access_token": result["AccessToken"],
                      "refresh_token": result["RefreshToken"], "expires_in": result["ExpiresIn"],
                      "token_type": "Bearer"})

    def _client_credentials(self, pool: Pool, client: Client, form: dict) -> Response:
        if not client.secret or "client_credentials" not in (client.config.get("AllowedOAuthFlows") or []):
            raise OAuthError("unauthorized_client")
        allowed = client.config.get("AllowedOAuthScopes") or []
        scopes = (form.get("scope") or "").split() or [s for s in allowed if "/" in s]
        if not scopes or any(s not in allowed or "/" not in s for s in scopes):
            raise OAuthError("invalid_scope")
        now = int(self.clock.now())
        claims = {"sub": client.id, "token_use": "access", "scope": " ".join(scopes), "auth_time": now,
                  "iss": pool.issuer, "exp": now + client.validity("access"), "iat": now, "version": 2,
                  "jti": str(uuid.uuid4()), "client_id": client.id}
        return _json({"access_token": self.service.keys.sign(pool.id, claims), "expires_in":
                      client.validity("access"), "token_type": "Bearer"})

    # -- /oauth2/userInfo and /logout -------------------------------------------------------

    def user_info(self, pool: Pool, request: Request) -> Response:
        auth = request.headers.get("authorization") or ""
        unauthorized = [("www-authenticate", 'Bearer error="invalid_token"')]
        if not auth.lower().startswith("bearer "):
            return _json({"error": "invalid_token"}, 401, unauthorized)
        try:
            claims = tokens.verify(self.service.keys, pool, auth[7:].strip(), self.clock.now())
        except ServiceError:
            return _json({"error": "invalid_token"}, 401, unauthorized)
        if "openid" not in str(claims.get("scope", "")).split() and \
                "aws.cognito.signin.user.admin" not in str(claims.get("scope", "")).split():
            return _json({"error": "insufficient_scope"}, 403)
        user: User | None = self.service.users.find(pool, claims.get("username") or "")
        if user is None or user.sub != claims.get("sub"):
            return _json({"error": "invalid_token"}, 401, unauthorized)
        return _json({"sub": user.sub, **user.attributes, "username": user.username})

    def logout(self, pool: Pool, query: dict, prefix: str) -> Response:
        client = self._client(pool, query.get("client_id"))
        target = query.get("logout_uri")
        if target:
            if target not in (client.config.get("LogoutURLs") or []):
                raise OAuthError("invalid_request")
            return _redirect(target)
        return _redirect(f"{prefix}/oauth2/authorize?{urlencode(query)}")

