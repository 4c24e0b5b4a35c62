"""A pool domain's OAuth 2.0 endpoints: the authorization code flow with PKCE through
the local sign-in page, the token endpoint (codes work once), userInfo, client
credentials with a resource server's scopes, and logout; reached both under
/_unkai/cognito/{domain}/ and with the domain's AWS host name."""

from __future__ import annotations

import base64
import hashlib
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

PASSWORD = "Passw0rd!"
CALLBACK = "http://localhost:3000/callback"


@pytest.fixture(scope="module")
def hosted(unkai):
    idp = unkai.client("cognito-idp")
    pool = idp.create_user_pool(PoolName="hosted")["UserPool"]["Id"]
    domain = f"unkai-{uuid.uuid4().hex[:8]}"
    idp.create_user_pool_domain(UserPoolId=pool, Domain=domain)
    idp.create_resource_server(UserPoolId=pool, Identifier="https://api.example.com", Name="api",
                               Scopes=[{"ScopeName": "read", "ScopeDescription": "read"}])
    web = idp.create_user_pool_client(
        UserPoolId=pool, ClientName="web", AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email"], CallbackURLs=[CALLBACK], LogoutURLs=["http://localhost:3000/"],
        SupportedIdentityProviders=["COGNITO"])["UserPoolClient"]
    machine = idp.create_user_pool_client(
        UserPoolId=pool, ClientName="machine", GenerateSecret=True, AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["client_credentials"], AllowedOAuthScopes=["https://api.example.com/read"])["UserPoolClient"]
    idp.admin_create_user(UserPoolId=pool, Username="hana", MessageAction="SUPPRESS",
                          UserAttributes=[{"Name": "email", "Value": "hana@example.com"}])
    idp.admin_set_user_password(UserPoolId=pool, Username="hana", Password=PASSWORD, Permanent=True)
    return pool, domain, web, machine


def keys(unkai, pool):
    return httpx.get(f"{unkai.endpoint}/{pool}/.well-known/jwks.json").json()


def check(unkai, pool, token, **kw):
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in keys(unkai, pool)["keys"] if k["kid"] == kid)).key
    return jwt.decode(token, key, algorithms=["RS256"], options={"verify_iat": False, "verify_exp": False,
                                                                  "verify_aud": "audience" in kw}, **kw)


def test_the_code_flow_with_pkce_signs_in_through_the_local_page(unkai, hosted):
    pool, domain, web, _ = hosted
    base = f"{unkai.endpoint}/_unkai/cognito/{domain}"
    verifier = base64.urlsafe_b64encode(uuid.uuid4().bytes * 2).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {"response_type": "code", "client_id": web["ClientId"], "redirect_uri": CALLBACK, "state": "s1",
             "scope": "openid email", "code_challenge": challenge, "code_challenge_method": "S256", "nonce": "n1"}
    http = httpx.Client(follow_redirects=False)
    page = http.get(f"{base}/oauth2/authorize", params=query)
    assert page.status_code == 200 and "<form" in page.text
    bad = http.post(f"{base}/login", params=query, data={"username": "hana", "password": "Wr0ng-password"})
    assert "Incorrect username or password." in bad.text
    assert http.get(f"{base}/oauth2/authorize", params={**query, "redirect_uri": "https://evil.example"}) \
        .json() == {"error": "redirect_mismatch"}
    signed = http.post(f"{base}/login", params=query, data={"username": "hana", "password": PASSWORD})
    assert signed.status_code == 302
    location = urlsplit(signed.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    got = parse_qs(location.query)
    assert got["state"] == ["s1"]
    # the token endpoint on the domain's own host name, as an SPA's library calls it
    token_url = f"{unkai.endpoint}/oauth2/token"
    host = {"Host": f"{domain}.auth.us-east-1.amazoncognito.com"}
    form = {"grant_type": "authorization_code", "client_id": web["ClientId"], "code": got["code"][0],
            "redirect_uri": CALLBACK, "code_verifier": verifier}
    answer = http.post(token_url, data=form, headers=host)
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"]
    claims = check(unkai, pool, tokens["id_token"], audience=web["ClientId"])
    assert claims["nonce"] == "n1" and claims["at_hash"] and claims["cognito:username"] == "hana"
    assert check(unkai, pool, tokens["access_token"])["scope"] == "openid email"
    assert http.post(token_url, data=form, headers=host).json() == {"error": "invalid_grant"}  # codes work once
    info = http.get(f"{base}/oauth2/userInfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.json()["email"] == "hana@example.com" and info.json()["username"] == "hana"
    refreshed = http.post(token_url, headers=host, data={"grant_type": "refresh_token", "client_id": web["ClientId"],
                                                         "refresh_token": tokens["refresh_token"]}).json()
    assert "refresh_token" not in refreshed and refreshed["access_token"]
    out = http.get(f"{base}/logout", params={"client_id": web["ClientId"], "logout_uri": "http://localhost:3000/"})
    assert (out.status_code, out.headers["location"]) == (302, "http://localhost:3000/")


def test_client_credentials_get_the_resource_servers_scopes(unkai, hosted):
    pool, domain, _, machine = hosted
    url = f"{unkai.endpoint}/_unkai/cognito/{domain}/oauth2/token"
    auth = (machine["ClientId"], machine["ClientSecret"])
    answer = httpx.post(url, auth=auth, data={"grant_type": "client_credentials"}).json()
    claims = check(unkai, pool, answer["access_token"])
    assert claims["scope"] == "https://api.example.com/read" and claims["client_id"] == machine["ClientId"]
    assert httpx.post(url, auth=(machine["ClientId"], "wrong"), data={"grant_type": "client_credentials"}) \
        .status_code == 401
    assert httpx.post(url, auth=auth, data={"grant_type": "client_credentials", "scope": "https://api.example.com/x"}
                      ).json() == {"error": "invalid_scope"}
