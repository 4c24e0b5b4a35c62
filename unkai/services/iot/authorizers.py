"""Custom authorizers: a device that has no client certificate connects with a username and
password (or a signed token) that the authorizer's Lambda function judges, as AWS IoT
Core's custom authentication does.

``AuthorizerOps`` serves CreateAuthorizer, DescribeAuthorizer, ListAuthorizers,
UpdateAuthorizer, DeleteAuthorizer (only an INACTIVE one), Set/Describe/ClearDefaultAuthorizer
and TestInvokeAuthorizer. ``authorize`` is the one path the MQTT broker and
TestInvokeAuthorizer share: it checks the token's signature against the authorizer's
``tokenSigningPublicKeys`` (RSA SHA-256, unless ``signingDisabled``), invokes the function
through ``cloud.service("lambda").invoke`` with AWS's event (``token``,
``signatureVerified``, ``protocols``, ``protocolData`` with ``tls``/``mqtt``/``http``,
``connectionMetadata``) and reads AWS's answer (``isAuthenticated``, ``principalId``,
``policyDocuments``, ``disconnectAfterInSeconds``, ``refreshAfterInSeconds``). The policy
documents it returns are the connection's IoT policies.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from unkai.protocol import ServiceError
from unkai.services import RequestContext
from unkai.services.iot import errors
from unkai.services.iot.model import arn, dumps, loads

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[\w=,@-]{1,128}$")
NAME_PARAMETER = "x-amz-customauthorizer-name"
SIGNATURE_PARAMETER = "x-amz-customauthorizer-signature"


def not_found(name: str) -> ServiceError:
    return errors.not_found(f"Authorizer {name} does not exist")


@dataclass
class Verdict:
    """What an authorizer's function answered (``authorize``)."""

    authenticated: bool
    principal_id: str = ""
    documents: list[str] = field(default_factory=list)
    refresh_after: int | None = None
    disconnect_after: int | None = None
    reason: str = ""
    request: Any = None  # (authorizer, token, signature, protocol data): what a refresh asks again


def _describe(row: tuple) -> dict:
    name, authorizer_arn, function_arn, key_name, keys, status, signing_disabled, caching, created, updated = row
    out: dict[str, Any] = {"authorizerName": name, "authorizerArn": authorizer_arn,
                           "authorizerFunctionArn": function_arn, "tokenSigningPublicKeys": loads(keys),
                           "status": status, "creationDate": created, "lastModifiedDate": updated,
                           "signingDisabled": bool(signing_disabled), "enableCachingForHttp": bool(caching)}
    if key_name:
        out["tokenKeyName"] = key_name
    return out


_COLUMNS = ("name, arn, function_arn, token_key_name, public_keys, status, signing_disabled, caching, created, "
            "updated")


def _check_keys(keys: Any) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    for key_name, pem in (keys or {}).items():
        try:
            load_pem_public_key(pem.encode())
        except (ValueError, TypeError):
            raise errors.invalid(f"Public key {key_name} is not a valid PEM-encoded public key") from None


class AuthorizerOps:
    store: Any
    clock: Any
    cloud: Any

    def _authorizer_row(self, account: str, region: str, name: str) -> tuple | None:
        return self.store.one(f"SELECT {_COLUMNS} FROM iot_authorizers WHERE account=? AND region=? AND name=?",
                              (account, region, name))

    def authorizer(self, account: str, region: str, name: str | None) -> dict | None:
        """An authorizer's description, or the default one's when ``name`` is None."""
        if name is None:
            row = self.store.one("SELECT name FROM iot_default_authorizer WHERE account=? AND region=?",
                                 (account, region))
            if row is None:
                return None
            name = row[0]
        row = self._authorizer_row(account, region, name)
        return _describe(row) if row else None

    def create_authorizer(self, ctx: RequestContext, params: dict) -> dict:
        name = params["authorizerName"]
        if not _NAME.match(name):
            raise errors.invalid(f"Invalid authorizer name: {name}")
        signing_disabled = bool(params.get("signingDisabled"))
        keys = params.get("tokenSigningPublicKeys") or {}
        if not signing_disabled and (not params.get("tokenKeyName") or not keys):
            raise errors.invalid("tokenKeyName and tokenSigningPublicKeys are required when signing is enabled")
        _check_keys(keys)
        if self._authorizer_row(ctx.account, ctx.region, name) is not None:
            raise errors.exists(f"Authorizer {name} already exists", name)
        authorizer_arn = arn(ctx.region, ctx.account, "authorizer", name)
        now = self.clock.now()
        self.store.execute(
            "INSERT INTO iot_authorizers (account, region, name, arn, function_arn, token_key_name, public_keys, "
            "status, signing_disabled, caching, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (ctx.account, ctx.region, name, authorizer_arn, params["authorizerFunctionArn"],
             params.get("tokenKeyName"), dumps(keys), params.get("status") or "ACTIVE", int(signing_disabled),
             int(bool(params.get("enableCachingForHttp"))), now, now))
        for tag in params.get("tags") or []:
            self.store.execute("INSERT OR REPLACE INTO iot_tags VALUES (?,?,?)",
                               (authorizer_arn, tag["Key"], tag.get("Value", "")))
        return {"authorizerName": name, "authorizerArn": authorizer_arn}

    def describe_authorizer(self, ctx: RequestContext, params: dict) -> dict:
        found = self.authorizer(ctx.account, ctx.region, params["authorizerName"])
        if found is None:
            raise not_found(params["authorizerName"])
        return {"authorizerDescription": found}

    def list_authorizers(self, ctx: RequestContext, params: dict) -> dict:
        order = "ASC" if params.get("ascendingOrder") in (None, True, "true") else "DESC"
        rows = self.store.all(f"SELECT name, arn, status FROM iot_authorizers WHERE account=? AND region=? "
                              f"ORDER BY name {order}", (ctx.account, ctx.region))
        items = [{"authorizerName": n, "authorizerArn": a} for n, a, s in rows
                 if not params.get("status") or s == params["status"]]
        size = int(params.get("pageSize") or 250)
        start = int(params["marker"]) if str(params.get("marker") or "").isdigit() else 0
        out: dict[str, Any] = {"authorizers": items[start:start + size]}
        if start + size < len(items):
            out["nextMarker"] = str(start + size)
        return out

    def update_authorizer(self, ctx: RequestContext, params: dict) -> dict:
        name = params["authorizerName"]
        row = self._authorizer_row(ctx.account, ctx.region, name)
        if row is None:
            raise not_found(name)
        current = _describe(row)
        keys = params.get("tokenSigningPublicKeys")
        if keys is not None:
            _check_keys(keys)
        if params.get("status") not in (None, "ACTIVE", "INACTIVE"):
            raise errors.invalid(f"Invalid status: {params['status']}")
        self.store.execute(
            "UPDATE iot_authorizers SET function_arn=?, token_key_name=?, public_keys=?, status=?, caching=?, "
            "updated=? WHERE account=? AND region=? AND name=?",
            (params.get("authorizerFunctionArn") or current["authorizerFunctionArn"],
             params.get("tokenKeyName") or current.get("tokenKeyName"),
             dumps(keys if keys is not None else current["tokenSigningPublicKeys"]),
             params.get("status") or current["status"],
             int(bool(params["enableCachingForHttp"] if "enableCachingForHttp" in params
                      else current["enableCachingForHttp"])), self.clock.now(), ctx.account, ctx.region, name))
        return {"authorizerName": name, "authorizerArn": current["authorizerArn"]}

    def delete_authorizer(self, ctx: RequestContext, params: dict) -> dict:
        name = params["authorizerName"]
        found = self.authorizer(ctx.account, ctx.region, name)
        if found is None:
            raise not_found(name)
        if found["status"] == "ACTIVE":
            raise errors.delete_conflict(f"Authorizer {name} is ACTIVE; set its status to INACTIVE before "
                                         "deleting it")
        default = self.authorizer(ctx.account, ctx.region, None)
        if default is not None and default["authorizerName"] == name:
            raise errors.delete_conflict(f"Authorizer {name} is the default authorizer")
        self.store.execute("DELETE FROM iot_authorizers WHERE account=? AND region=? AND name=?",
                           (ctx.account, ctx.region, name))
        self.store.execute("DELETE FROM iot_tags WHERE arn=?", (found["authorizerArn"],))
        return {}

    def set_default_authorizer(self, ctx: RequestContext, params: dict) -> dict:
        name = params["authorizerName"]
        found = self.authorizer(ctx.account, ctx.region, name)
        if found is None:
            raise not_found(name)
        default = self.authorizer(ctx.account, ctx.region, None)
        if default is not None and default["authorizerName"] == name:
            raise errors.exists(f"Authorizer {name} is already the default authorizer", name)
        self.store.execute("INSERT OR REPLACE INTO iot_default_authorizer VALUES (?,?,?)",
                           (ctx.account, ctx.region, name))
        return {"authorizerName": name, "authorizerArn": found["authorizerArn"]}

    def describe_default_authorizer(self, ctx: RequestContext, params: dict) -> dict:
        found = self.authorizer(ctx.account, ctx.region, None)
        if found is None:
            raise errors.not_found("No default authorizer is set")
        return {"authorizerDescription": found}

    def clear_default_authorizer(self, ctx: RequestContext, params: dict) -> dict:
        self.store.execute("DELETE FROM iot_default_authorizer WHERE account=? AND region=?", (ctx.account, ctx.region))
        return {}

    async def test_invoke_authorizer(self, ctx: RequestContext, params: dict) -> dict:
        found = self.authorizer(ctx.account, ctx.region, params["authorizerName"])
        if found is None:
            raise not_found(params["authorizerName"])
        mqtt = params.get("mqttContext") or {}
        password = mqtt.get("password")
        protocol_data: dict[str, Any] = {}
        if params.get("tlsContext"):
            protocol_data["tls"] = {k: v for k, v in params["tlsContext"].items() if v is not None}
        if mqtt:
            protocol_data["mqtt"] = {k: v for k, v in (
                ("username", mqtt.get("username")), ("clientId", mqtt.get("clientId")),
                ("password", base64.b64encode(password).decode() if isinstance(password, bytes) else password))
                if v is not None}
        if params.get("httpContext"):
            http = params["httpContext"]
            protocol_data["http"] = {"headers": http.get("headers") or {}, "queryString": http.get("queryString") or ""}
        verdict = await authorize(self.cloud, ctx.account, ctx.region, found, params.get("token"),
                                  params.get("tokenSignature"), protocol_data, strict=True)
        out: dict[str, Any] = {"isAuthenticated": verdict.authenticated, "principalId": verdict.principal_id,
                               "policyDocuments": verdict.documents}
        if verdict.refresh_after is not None:
            out["refreshAfterInSeconds"] = verdict.refresh_after
        if verdict.disconnect_after is not None:
            out["disconnectAfterInSeconds"] = verdict.disconnect_after
        return out


def _verified(authorizer: dict, token: str | None, signature: str | None) -> bool:
    """Whether ``signature`` (base64) is an RSA SHA-256 signature of ``token`` by one of the
    authorizer's public keys."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    if not token or not signature:
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:
        return False
    for pem in authorizer["tokenSigningPublicKeys"].values():
        try:
            load_pem_public_key(pem.encode()).verify(raw, token.encode(), padding.PKCS1v15(),  # type: ignore[union-attr,call-arg]
                                                     hashes.SHA256())  # type: ignore[call-arg]
            return True
        except (InvalidSignature, ValueError, TypeError, AttributeError):
            continue
    return False


async def authorize(cloud: Any, account: str, region: str, authorizer: dict, token: str | None,
                    signature: str | None, protocol_data: dict, strict: bool = False) -> Verdict:
    """Run ``authorizer`` for one request or connection. ``strict`` (TestInvokeAuthorizer)
    raises AWS's errors where a connection is just refused."""
    name = authorizer["authorizerName"]
    if authorizer["status"] != "ACTIVE":
        if strict:
            raise errors.invalid(f"Authorizer {name} is not ACTIVE")
        return Verdict(False, reason=f"authorizer {name} is INACTIVE")
    verified = False
    if not authorizer["signingDisabled"]:
        verified = _verified(authorizer, token, signature)
        if not verified:
            if strict:
                raise errors.invalid("The token signature is not valid")
            return Verdict(False, reason="token signature not valid")
    event: dict[str, Any] = {"signatureVerified": verified, "protocols": list(protocol_data),
                             "protocolData": protocol_data, "connectionMetadata": {"id": str(uuid.uuid4())}}
    if token is not None:
        event = {"token": token, **event}
    try:
        result = await cloud.service("lambda").invoke(authorizer["authorizerFunctionArn"],
                                                      json.dumps(event).encode(), region=region, account=account)
    except ServiceError as exc:
        log.warning("IoT authorizer %s could not invoke %s: %s", name, authorizer["authorizerFunctionArn"],
                    exc.message)
        if strict:
            raise ServiceError("InvalidResponseException", f"The authorizer function could not be invoked: "
                               f"{exc.code}") from None
        return Verdict(False, reason=f"authorizer function failed: {exc.code}")
    try:
        answer = json.loads(result.payload or b"null")
    except ValueError:
        answer = None
    if result.function_error or not isinstance(answer, dict) or not isinstance(answer.get("isAuthenticated"), bool) \
            or not all(_seconds(answer.get(k)) for k in ("refreshAfterInSeconds", "disconnectAfterInSeconds")):
        if strict:
            raise ServiceError("InvalidResponseException", "The response from the authorizer function is not valid")
        return Verdict(False, reason="authorizer function answer not valid")
    documents = [d if isinstance(d, str) else json.dumps(d) for d in answer.get("policyDocuments") or []]
    return Verdict(answer["isAuthenticated"], str(answer.get("principalId") or ""), documents,
                   answer.get("refreshAfterInSeconds"), answer.get("disconnectAfterInSeconds"),
                   "" if answer["isAuthenticated"] else "not authenticated by the authorizer")


def _seconds(value: Any) -> bool:
    """A TTL the function may answer: absent, or whole seconds from 300 to 86,400 (AWS's bounds for
    refreshAfterInSeconds and disconnectAfterInSeconds); anything else makes the answer invalid."""
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and 300 <= value <= 86400)


def mqtt_request(username: str | None) -> tuple[str | None, dict[str, str]]:
    """The authorizer name and the query parameters a device's MQTT username carries
    (``name?x-amz-customauthorizer-name=...&x-amz-customauthorizer-signature=...&token=...``)."""
    if not username or "?" not in username:
        return None, {}
    query = dict(parse_qsl(username.split("?", 1)[1], keep_blank_values=True))
    return query.get(NAME_PARAMETER), query
