"""Connections and API destinations: EventBridge's HTTP targets.

A connection holds how to authorize (BASIC, API_KEY, OAUTH_CLIENT_CREDENTIALS) and the
header, query-string and body parameters every call carries; an API destination is an
endpoint (``*`` in its path filled from the target's ``PathParameterValues``), a method
and an invocation rate limit, using one connection.

An event for an API destination target is a durable job (``events.http``) written in the
event's transaction, so an acknowledged PutEvents is never lost; the job makes the call
after commit. The rate limit is counted on unkai's clock: a call over the limit waits
(the job runs again when the second has passed) rather than failing, as AWS queues it.
Retries follow AWS's rule for API destinations (401, 407, 409, 429 and 5xx are retried,
with backoff, up to the target's RetryPolicy; other answers are final) and a failed event
goes to the target's dead-letter queue through the shared ``unkai.targets`` path.

OAuth tokens are fetched from the connection's AuthorizationEndpoint with the client id
and secret (Basic auth, plus the connection's OAuthHttpParameters), cached until
``expires_in`` passes on unkai's clock, and fetched again after a 401."""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from unkai import targets
from unkai.jobs import Retry
from unkai.services import RequestContext
from unkai.services.events import errors
from unkai.services.events.model import page
from unkai.localurls import own_port_hooks

if TYPE_CHECKING:
    from unkai.store import Store

log = logging.getLogger(__name__)

NAME = re.compile(r"^[\.\-_A-Za-z0-9]{1,64}$")
AUTH_TYPES = ("BASIC", "OAUTH_CLIENT_CREDENTIALS", "API_KEY")
METHODS = ("POST", "GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE")
DEFAULT_RATE = 300
RETRIED = {401, 407, 409, 429}
HTTP_TIMEOUT = 5.0  # AWS gives an API destination call 5 seconds
USER_AGENT = "Amazon/EventBridge/ApiDestinations"
MAX_AGE = 86400
BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


class ApiDestinationOps:
    store: "Store"
    clock: Any
    cloud: Any
    _http: Any  # the httpx client, made by _client() at the first call
    _tokens: dict[str, tuple[str, float]]  # connection ARN -> (access token, expiry on unkai's clock)
    _sent: dict[str, list[float]]  # API destination ARN -> call times in the last second (rate limit)

    # -- connections -----------------------------------------------------------------

    def _connection(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        row = self.store.one("SELECT arn, config, state, created, modified, authorized FROM events_connections "
                             "WHERE account=? AND region=? AND name=?", (ctx.account, ctx.region, name))
        if row is None:
            raise errors.not_found(f"Connection '{name}' does not exist.")
        return _connection_row(name, *row)

    def _connection_by_arn(self, arn: str) -> dict[str, Any] | None:
        row = self.store.one("SELECT name, arn, config, state, created, modified, authorized FROM events_connections "
                             "WHERE arn=?", (arn,))
        return _connection_row(*row) if row else None

    def _check_auth(self, kind: str | None, auth: dict[str, Any]) -> None:
        if kind not in AUTH_TYPES:
            raise errors.validation(f"1 validation error detected: Value '{kind}' at 'authorizationType' failed to "
                                    f"satisfy constraint: Member must satisfy enum value set: [{', '.join(AUTH_TYPES)}]")
        need = {"BASIC": "BasicAuthParameters", "API_KEY": "ApiKeyAuthParameters",
                "OAUTH_CLIENT_CREDENTIALS": "OAuthParameters"}[kind]
        if not auth.get(need):
            raise errors.validation(f"{need} must be specified for AuthorizationType {kind}.")

    def create_connection(self, ctx: RequestContext, params: dict) -> dict:
        name = params["Name"]
        if not NAME.match(name):
            raise errors.validation(f"1 validation error detected: Value '{name}' at 'name' failed to satisfy "
                                    "constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+")
        kind, auth = params.get("AuthorizationType"), params.get("AuthParameters") or {}
        self._check_auth(kind, auth)
        if self.store.one("SELECT 1 FROM events_connections WHERE account=? AND region=? AND name=?",
                          (ctx.account, ctx.region, name)):
            raise errors.already_exists(f"Connection {name} already exists.")
        arn = f"arn:aws:events:{ctx.region}:{ctx.account}:connection/{name}/{uuid.uuid4()}"
        config = {"AuthorizationType": kind, "AuthParameters": auth}
        for key in ("Description", "KmsKeyIdentifier"):
            if params.get(key):
                config[key] = params[key]
        state = "AUTHORIZING" if kind == "OAUTH_CLIENT_CREDENTIALS" else "AUTHORIZED"
        now = self.clock.now()
        self.store.execute("INSERT INTO events_connections(account, region, name, arn, config, state, created, "
                           "modified, authorized) VALUES(?,?,?,?,?,?,?,?,?)",
                           (ctx.account, ctx.region, name, arn, json.dumps(config), state, now, now,
                            None if state == "AUTHORIZING" else now))
        if state == "AUTHORIZING":
            self.cloud.jobs.enqueue("events.authorize", {"connection": arn})
        return {"ConnectionArn": arn, "ConnectionState": state, "CreationTime": now, "LastModifiedTime": now}

    def describe_connection(self, ctx: RequestContext, params: dict) -> dict:
        conn = self._connection(ctx, params["Name"])
        config = conn["config"]
        out: dict[str, Any] = {"ConnectionArn": conn["arn"], "Name": conn["name"],
                               "ConnectionState": conn["state"], "AuthorizationType": config["AuthorizationType"],
                               "SecretArn": _secret_arn(conn["arn"]),
                               "AuthParameters": _public_auth(config["AuthParameters"]),
                               "CreationTime": conn["created"], "LastModifiedTime": conn["modified"]}
        for key in ("Description", "KmsKeyIdentifier", "StateReason"):
            if config.get(key):
                out[key] = config[key]
        if conn["authorized"] is not None:
            out["LastAuthorizedTime"] = conn["authorized"]
        return out

    def list_connections(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT name FROM events_connections WHERE account=? AND region=? ORDER BY name",
                              (ctx.account, ctx.region))
        out = []
        for (name,) in rows:
            if not name.startswith(params.get("NamePrefix") or ""):
                continue
            full = self.describe_connection(ctx, {"Name": name})
            if params.get("ConnectionState") not in (None, full["ConnectionState"]):
                continue
            out.append({k: full[k] for k in ("ConnectionArn", "Name", "ConnectionState", "StateReason",
                                             "AuthorizationType", "CreationTime", "LastModifiedTime",
                                             "LastAuthorizedTime") if k in full})
        return page("Connections", out, params)

    def _answer(self, conn: dict[str, Any], state: str | None = None) -> dict[str, Any]:
        out = {"ConnectionArn": conn["arn"], "ConnectionState": state or conn["state"],
               "CreationTime": conn["created"], "LastModifiedTime": conn["modified"]}
        if conn["authorized"] is not None:
            out["LastAuthorizedTime"] = conn["authorized"]
        return out

    def update_connection(self, ctx: RequestContext, params: dict) -> dict:
        conn = self._connection(ctx, params["Name"])
        config = conn["config"]
        if params.get("AuthorizationType"):
            config["AuthorizationType"] = params["AuthorizationType"]
        for key, value in (params.get("AuthParameters") or {}).items():
            if isinstance(value, dict) and isinstance(config["AuthParameters"].get(key), dict):
                config["AuthParameters"][key] = _merge(config["AuthParameters"][key], value)
            else:
                config["AuthParameters"][key] = value
        self._check_auth(config["AuthorizationType"], config["AuthParameters"])
        for key in ("Description", "KmsKeyIdentifier"):
            if key in params:
                config[key] = params[key]
        oauth = config["AuthorizationType"] == "OAUTH_CLIENT_CREDENTIALS"
        state = "AUTHORIZING" if oauth else "AUTHORIZED"
        now = self.clock.now()
        config.pop("StateReason", None)
        self.store.execute("UPDATE events_connections SET config=?, state=?, modified=?, authorized=? WHERE arn=?",
                           (json.dumps(config), state, now, None if oauth else now, conn["arn"]))
        self._tokens.pop(conn["arn"], None)
        if oauth:
            self.cloud.jobs.enqueue("events.authorize", {"connection": conn["arn"]})
        return self._answer(self._connection(ctx, params["Name"]))

    def deauthorize_connection(self, ctx: RequestContext, params: dict) -> dict:
        conn = self._connection(ctx, params["Name"])
        self.store.execute("UPDATE events_connections SET state='DEAUTHORIZED', modified=? WHERE arn=?",
                           (self.clock.now(), conn["arn"]))
        self._tokens.pop(conn["arn"], None)
        return self._answer(self._connection(ctx, params["Name"]), "DEAUTHORIZING")

    def delete_connection(self, ctx: RequestContext, params: dict) -> dict:
        conn = self._connection(ctx, params["Name"])
        self.store.execute("DELETE FROM events_connections WHERE arn=?", (conn["arn"],))
        self.store.execute("DELETE FROM events_tags WHERE arn=?", (conn["arn"],))
        self._tokens.pop(conn["arn"], None)
        return self._answer(conn, "DELETING")

    # -- API destinations ------------------------------------------------------------

    def _destination(self, ctx: RequestContext, name: str) -> tuple[str, dict[str, Any], float, float]:
        row = self.store.one("SELECT arn, config, created, modified FROM events_destinations WHERE account=? AND "
                             "region=? AND name=?", (ctx.account, ctx.region, name))
        if row is None:
            raise errors.not_found(f"An api-destination '{name}' does not exist.")
        return row[0], json.loads(row[1]), row[2], row[3]

    def _check_destination(self, ctx: RequestContext, config: dict[str, Any]) -> None:
        conn_arn = config.get("ConnectionArn") or ""
        if self._connection_by_arn(conn_arn) is None:
            name = conn_arn.split(":connection/", 1)[-1].split("/", 1)[0]
            raise errors.not_found(f"Connection '{name}' does not exist.")
        endpoint = config.get("InvocationEndpoint") or ""
        if not endpoint.startswith(("https://", "http://")):  # AWS takes https only; unkai's receivers are local
            raise errors.validation("Parameter InvocationEndpoint is not valid. Reason: Must be a valid HTTPS URL.")
        if config.get("HttpMethod") not in METHODS:
            raise errors.validation(f"1 validation error detected: Value '{config.get('HttpMethod')}' at "
                                    "'httpMethod' failed to satisfy constraint: Member must satisfy enum value set: "
                                    f"[{', '.join(METHODS)}]")
        rate = config.get("InvocationRateLimitPerSecond", DEFAULT_RATE)
        if not 1 <= int(rate) <= 300:
            raise errors.validation(f"1 validation error detected: Value '{rate}' at 'invocationRateLimitPerSecond' "
                                    "failed to satisfy constraint: Member must have value less than or equal to 300"
                                    if int(rate) > 300 else
                                    f"1 validation error detected: Value '{rate}' at 'invocationRateLimitPerSecond' "
                                    "failed to satisfy constraint: Member must have value greater than or equal to 1")

    def create_api_destination(self, ctx: RequestContext, params: dict) -> dict:
        name = params["Name"]
        if not NAME.match(name):
            raise errors.validation(f"1 validation error detected: Value '{name}' at 'name' failed to satisfy "
                                    "constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+")
        config = {k: params[k] for k in ("Description", "ConnectionArn", "InvocationEndpoint", "HttpMethod",
                                         "InvocationRateLimitPerSecond") if params.get(k) is not None}
        config.setdefault("InvocationRateLimitPerSecond", DEFAULT_RATE)
        self._check_destination(ctx, config)
        if self.store.one("SELECT 1 FROM events_destinations WHERE account=? AND region=? AND name=?",
                          (ctx.account, ctx.region, name)):
            raise errors.already_exists(f"An api-destination '{name}' already exists.")
        arn = f"arn:aws:events:{ctx.region}:{ctx.account}:api-destination/{name}/{uuid.uuid4()}"
        now = self.clock.now()
        self.store.execute("INSERT INTO events_destinations(account, region, name, arn, config, created, modified) "
                           "VALUES(?,?,?,?,?,?,?)", (ctx.account, ctx.region, name, arn, json.dumps(config), now, now))
        return {"ApiDestinationArn": arn, "ApiDestinationState": "ACTIVE", "CreationTime": now,
                "LastModifiedTime": now}

    def describe_api_destination(self, ctx: RequestContext, params: dict) -> dict:
        arn, config, created, modified = self._destination(ctx, params["Name"])
        return {"ApiDestinationArn": arn, "Name": params["Name"], "ApiDestinationState": "ACTIVE", **config,
                "CreationTime": created, "LastModifiedTime": modified}

    def list_api_destinations(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT name FROM events_destinations WHERE account=? AND region=? ORDER BY name",
                              (ctx.account, ctx.region))
        out = []
        for (name,) in rows:
            full = self.describe_api_destination(ctx, {"Name": name})
            if name.startswith(params.get("NamePrefix") or "") and \
                    params.get("ConnectionArn") in (None, full["ConnectionArn"]):
                full.pop("Description", None)
                out.append(full)
        return page("ApiDestinations", out, params)

    def update_api_destination(self, ctx: RequestContext, params: dict) -> dict:
        arn, config, created, _ = self._destination(ctx, params["Name"])
        for key in ("Description", "ConnectionArn", "InvocationEndpoint", "HttpMethod",
                    "InvocationRateLimitPerSecond"):
            if params.get(key) is not None:
                config[key] = params[key]
        self._check_destination(ctx, config)
        now = self.clock.now()
        self.store.execute("UPDATE events_destinations SET config=?, modified=? WHERE arn=?",
                           (json.dumps(config), now, arn))
        return {"ApiDestinationArn": arn, "ApiDestinationState": "ACTIVE", "CreationTime": created,
                "LastModifiedTime": now}

    def delete_api_destination(self, ctx: RequestContext, params: dict) -> dict:
        arn, _, _, _ = self._destination(ctx, params["Name"])
        self.store.execute("DELETE FROM events_destinations WHERE arn=?", (arn,))
        self.store.execute("DELETE FROM events_tags WHERE arn=?", (arn,))
        return {}

    # -- invoking (jobs) -------------------------------------------------------------

    def start_http(self) -> None:
        self.cloud.jobs.register("events.http", self.run_http)
        self.cloud.jobs.register("events.authorize", self.run_authorize)

    def _client(self) -> Any:
        """The httpx client, made at the first call (httpx is slow to import)."""
        if self._http is None:
            import httpx

            config = self.cloud.config
            self._http = httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False, verify=False,
                                           event_hooks=own_port_hooks(lambda: config.endpoint))
        return self._http

    async def stop_http(self) -> None:
        client, self._http = self._http, None
        if client is not None:
            await client.aclose()

    def enqueue_http(self, target: dict[str, Any], payload: str, event_id: str, rule_arn: str) -> None:
        """Queue one call of an API destination target, in the event's transaction."""
        self.cloud.jobs.enqueue("events.http", {"target": target, "body": payload, "event": event_id,
                                                "rule": rule_arn, "t0": self.clock.now()})

    async def run_authorize(self, job: dict[str, Any], attempt: int) -> None:
        conn = self._connection_by_arn(job["connection"])
        if conn is None or conn["state"] != "AUTHORIZING":
            return
        await self._token(conn, refresh=True)

    async def _token(self, conn: dict[str, Any], refresh: bool = False) -> str | None:
        """The connection's OAuth access token, fetched (and the connection's state moved) when
        none is cached or ``refresh``; None when the endpoint would not give one."""
        cached = self._tokens.get(conn["arn"])
        if cached and not refresh and cached[1] > self.clock.now():
            return cached[0]
        oauth = conn["config"]["AuthParameters"].get("OAuthParameters") or {}
        client = oauth.get("ClientParameters") or {}
        extra = oauth.get("OAuthHttpParameters") or {}
        basic = base64.b64encode(f"{client.get('ClientID', '')}:{client.get('ClientSecret', '')}".encode()).decode()
        headers = {"Authorization": f"Basic {basic}", "User-Agent": USER_AGENT}
        headers.update({h["Key"]: h.get("Value", "") for h in extra.get("HeaderParameters") or []})
        query = {q["Key"]: q.get("Value", "") for q in extra.get("QueryStringParameters") or []}
        body = {b["Key"]: b.get("Value", "") for b in extra.get("BodyParameters") or []}
        body.setdefault("grant_type", "client_credentials")
        method = oauth.get("HttpMethod") or "POST"
        url = _with_query(oauth.get("AuthorizationEndpoint") or "", query)
        token, expires, reason = None, 0.0, ""
        try:
            if method == "GET":
                response = await self._client().get(_with_query(url, body), headers=headers)
            else:
                response = await self._client().request(method, url, headers=headers, data=body)
            if 200 <= response.status_code < 300:
                answer = response.json()
                token = answer.get("access_token")
                expires = float(answer.get("expires_in") or 3600)
            if not token:
                reason = f"Authorization endpoint answered {response.status_code} without an access_token."
        except Exception as exc:  # unreachable, or not JSON: the connection is not authorized
            reason = f"Authorization endpoint could not be reached: {exc}"
        now = self.clock.now()
        with self.store.transaction():
            config = dict(conn["config"])
            if token:
                config.pop("StateReason", None)
                self.store.execute("UPDATE events_connections SET state='AUTHORIZED', authorized=?, config=? "
                                   "WHERE arn=?", (now, json.dumps(config), conn["arn"]))
            else:
                config["StateReason"] = reason
                self.store.execute("UPDATE events_connections SET state='DEAUTHORIZED', config=? WHERE arn=?",
                                   (json.dumps(config), conn["arn"]))
        if token:
            self._tokens[conn["arn"]] = (token, now + expires)
        return token

    async def run_http(self, job: dict[str, Any], attempt: int) -> None:
        """The ``events.http`` job: one call of an API destination for one event."""
        target = job["target"]
        fail = self._http_failed(job)
        row = self.store.one("SELECT config FROM events_destinations WHERE arn=?", (target["Arn"],))
        if row is None:
            return fail("NO_RESOURCE", f"API destination {target['Arn']} does not exist.")
        dest = json.loads(row[0])
        conn = self._connection_by_arn(dest["ConnectionArn"])
        if conn is None or conn["state"] == "DEAUTHORIZED":
            return fail("NO_PERMISSIONS", f"Connection {dest['ConnectionArn']} is not authorized.")
        now = self.clock.now()
        window = [t for t in self._sent.get(target["Arn"], []) if t > now - 1.0]
        if len(window) >= int(dest.get("InvocationRateLimitPerSecond") or DEFAULT_RATE):
            self._sent[target["Arn"]] = window
            raise Retry(max(0.01, window[0] + 1.0 - now), "invocation rate limit")
        window.append(now)
        self._sent[target["Arn"]] = window
        status, _ = await self._call(dest, conn, target, job["body"])
        if status == 401 and conn["config"]["AuthorizationType"] == "OAUTH_CLIENT_CREDENTIALS":
            await self._token(conn, refresh=True)
            status, _ = await self._call(dest, conn, target, job["body"])
        if status is not None and 200 <= status < 300:
            return None
        retriable = status is None or status in RETRIED or status >= 500
        policy = target.get("RetryPolicy") or {}
        tries = policy.get("MaximumRetryAttempts", 185)
        age = policy.get("MaximumEventAgeInSeconds", MAX_AGE)
        delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
        if retriable and attempt < tries and self.clock.now() + delay - job["t0"] <= age:
            raise Retry(delay, f"API destination answered {status}")
        if status is None:
            return fail("CONNECTION_FAILURE", f"Unable to reach {dest['InvocationEndpoint']}.")
        return fail("SDK_CLIENT_ERROR", f"Unable to invoke ApiDestination endpoint: The request failed because "
                                        f"the endpoint responded with status code {status}.")

    def _http_failed(self, job: dict[str, Any]) -> Any:
        def fail(code: str, message: str) -> None:
            with self.store.transaction():
                targets.dead_letter(self.cloud, job["target"], job["body"], "events", job["rule"], code, message)
        return fail

    async def invoke_api_destination(self, arn: str, body: str,
                                     http: dict[str, Any] | None = None) -> tuple[int | None, bytes]:
        """Call an API destination now and hand back its answer (status, body): the contract
        EventBridge Pipes' API destination enrichments use. None as status when it could
        not be called (no such destination, a deauthorized connection, unreachable)."""
        row = self.store.one("SELECT config FROM events_destinations WHERE arn=?", (arn,))
        if row is None:
            return None, b""
        dest = json.loads(row[0])
        conn = self._connection_by_arn(dest["ConnectionArn"])
        if conn is None or conn["state"] == "DEAUTHORIZED":
            return None, b""
        target = {"Arn": arn, "HttpParameters": http or {}}
        status, content = await self._call(dest, conn, target, body)
        if status == 401 and conn["config"]["AuthorizationType"] == "OAUTH_CLIENT_CREDENTIALS":
            await self._token(conn, refresh=True)
            status, content = await self._call(dest, conn, target, body)
        return status, content

    async def _call(self, dest: dict[str, Any], conn: dict[str, Any], target: dict[str, Any],
                    body: str) -> tuple[int | None, bytes]:
        auth = conn["config"]["AuthParameters"]
        kind = conn["config"]["AuthorizationType"]
        http = target.get("HttpParameters") or {}
        invocation = auth.get("InvocationHttpParameters") or {}
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT}
        headers.update({h["Key"]: h.get("Value", "") for h in invocation.get("HeaderParameters") or []})
        headers.update(http.get("HeaderParameters") or {})
        if kind == "BASIC":
            basic = auth.get("BasicAuthParameters") or {}
            pair = f"{basic.get('Username', '')}:{basic.get('Password', '')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        elif kind == "API_KEY":
            key = auth.get("ApiKeyAuthParameters") or {}
            headers[key.get("ApiKeyName", "")] = key.get("ApiKeyValue", "")
        else:
            token = await self._token(conn)
            if token is None:
                return 401, b""
            headers["Authorization"] = f"Bearer {token}"
        query = {q["Key"]: q.get("Value", "") for q in invocation.get("QueryStringParameters") or []}
        query.update(http.get("QueryStringParameters") or {})
        url = dest["InvocationEndpoint"]
        for value in http.get("PathParameterValues") or []:
            url = url.replace("*", value, 1)
        extra = {b["Key"]: b.get("Value", "") for b in invocation.get("BodyParameters") or []}
        if extra:
            try:
                document = json.loads(body)
                if isinstance(document, dict):
                    body = json.dumps({**extra, **document})
            except ValueError:
                pass
        method = dest["HttpMethod"]
        started = time.monotonic()
        try:
            response = await self._client().request(
                method, _with_query(url, query), headers=headers,
                content=None if method in ("GET", "HEAD") else body.encode())
        except Exception as exc:
            log.info("events: %s %s failed after %.1fs: %s", method, url, time.monotonic() - started, exc)
            return None, b""
        return response.status_code, response.content


def _connection_row(name: str, arn: str, config: str, state: str, created: float, modified: float,
                    authorized: float | None) -> dict[str, Any]:
    return {"name": name, "arn": arn, "config": json.loads(config), "state": state, "created": created,
            "modified": modified, "authorized": authorized}


def _secret_arn(connection_arn: str) -> str:
    """The Secrets Manager ARN AWS names for a connection's credentials (not created in unkai)."""
    parts = connection_arn.split(":")
    path = parts[5].split("/", 1)[1]
    return f"arn:aws:secretsmanager:{parts[3]}:{parts[4]}:secret:events!connection/{path}/auth"


def _public_auth(auth: dict[str, Any]) -> dict[str, Any]:
    """AuthParameters as DescribeConnection shows them: no passwords, keys or secret values."""
    out: dict[str, Any] = {}
    if auth.get("BasicAuthParameters"):
        out["BasicAuthParameters"] = {"Username": auth["BasicAuthParameters"].get("Username", "")}
    if auth.get("ApiKeyAuthParameters"):
        out["ApiKeyAuthParameters"] = {"ApiKeyName": auth["ApiKeyAuthParameters"].get("ApiKeyName", "")}
    if auth.get("OAuthParameters"):
        oauth = auth["OAuthParameters"]
        out["OAuthParameters"] = {k: v for k, v in oauth.items() if k != "ClientParameters"}
        out["OAuthParameters"]["ClientParameters"] = {"ClientID": (oauth.get("ClientParameters") or {})
                                                      .get("ClientID", "")}
        if oauth.get("OAuthHttpParameters"):
            out["OAuthParameters"]["OAuthHttpParameters"] = _public_http(oauth["OAuthHttpParameters"])
    if auth.get("InvocationHttpParameters"):
        out["InvocationHttpParameters"] = _public_http(auth["InvocationHttpParameters"])
    return out


def _public_http(http: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, items in http.items():
        out[key] = [{k: v for k, v in item.items() if not (k == "Value" and item.get("IsValueSecret"))}
                    for item in items or []]
    return out


def _merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    merged = dict(old)
    for key, value in new.items():
        merged[key] = _merge(old[key], value) if isinstance(value, dict) and isinstance(old.get(key), dict) else value
    return merged


def _with_query(url: str, query: dict[str, str]) -> str:
    if not query:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(query)
