"""Mobile push: platform applications, their endpoints (one per device token), Publish to an
endpoint ARN and topic subscriptions with the ``application`` protocol.

Nothing is sent to Apple, Google or any other push service: a push is recorded in a local outbox
(table ``sns_push_outbox``, written in the publish's transaction, so an accepted publish is never
lost), read with ``GET /_unkai/sns/push?endpoint=ARN`` (or ``token=``), and announced on the feed as
``sns.push``, as SMS go to the local mailbox (``sms.py``).

Answers follow AWS's as its verified tests record them: CreatePlatformEndpoint is idempotent for
the same token and attributes ("Enabled" defaults to "true") and refuses the same token with other
attributes ("... already exists with the same Token, but different attributes."); a missing
application is NotFound "PlatformApplication does not exist", a missing endpoint NotFound "Endpoint
does not exist"; DeleteEndpoint is idempotent; deleting an application deletes its endpoints; a
publish to a disabled endpoint is EndpointDisabled "Endpoint is disabled", checked before the
message itself. Platform credentials are never stored or answered (AWS does not return them; no
provider is called, so they are not checked either)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from unkai.protocol import ServiceError
from unkai.services import RequestContext

MIGRATION = """
CREATE TABLE sns_platform_apps (arn TEXT PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL,
                                platform TEXT NOT NULL, name TEXT NOT NULL, attributes TEXT NOT NULL);
CREATE TABLE sns_platform_endpoints (arn TEXT PRIMARY KEY, app_arn TEXT NOT NULL, token TEXT NOT NULL,
                                     attributes TEXT NOT NULL, UNIQUE(app_arn, token));
CREATE TABLE sns_push_outbox (id INTEGER PRIMARY KEY, endpoint_arn TEXT NOT NULL, app_arn TEXT NOT NULL,
                              platform TEXT NOT NULL, token TEXT NOT NULL, message_id TEXT NOT NULL,
                              message TEXT NOT NULL, topic_arn TEXT, sent REAL NOT NULL);
CREATE INDEX sns_push_outbox_endpoint ON sns_push_outbox(endpoint_arn);
"""

PLATFORMS = ("ADM", "APNS", "APNS_SANDBOX", "APNS_VOIP", "APNS_VOIP_SANDBOX", "BAIDU", "GCM", "MACOS",
             "MACOS_SANDBOX", "MPNS", "WNS")
SECRET_ATTRIBUTES = ("PlatformCredential", "PlatformPrincipal")  # AWS never answers them
ENDPOINT_ATTRIBUTES = ("CustomUserData", "Enabled", "Token")
APP_ARN = re.compile(r"^arn:aws[a-z-]*:sns:([a-z0-9-]+):(\d{12}):app/([A-Z_]+)/([A-Za-z0-9._-]+)$")
ENDPOINT_ARN = re.compile(r"^arn:aws[a-z-]*:sns:([a-z0-9-]+):(\d{12}):endpoint/([A-Z_]+)/([A-Za-z0-9._-]+)/[0-9a-f-]+$")
PAGE = 100


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameter", f"Invalid parameter: {message}")


def _no_app() -> ServiceError:
    return ServiceError("NotFound", "PlatformApplication does not exist", status=404)


def _no_endpoint() -> ServiceError:
    return ServiceError("NotFound", "Endpoint does not exist", status=404)


def _attributes_required(attributes: Any) -> None:
    if not attributes:
        raise ServiceError("ValidationError", "1 validation error detected: Value null at 'attributes' failed to "
                           "satisfy constraint: Member must not be null")


def _check_endpoint_attributes(attributes: dict[str, str]) -> None:
    for key in attributes:
        if key not in ENDPOINT_ATTRIBUTES:
            raise _invalid(f"Attributes Reason: Invalid attribute name: {key}")
    if len((attributes.get("CustomUserData") or "").encode()) > 2048:
        raise _invalid("Attributes Reason: Invalid value for attribute: CustomUserData: must be at most 2048 bytes "
                       "long in UTF-8 encoding")


def _page(rows: list[tuple], token: str | None) -> tuple[list[tuple], str | None]:
    start = int(token) if token and token.isdigit() else 0
    if token and not token.isdigit():
        raise _invalid("NextToken")
    chunk = rows[start:start + PAGE]
    return chunk, (str(start + PAGE) if start + PAGE < len(rows) else None)


def push_text(message: str, structure: dict[str, str] | None, platform: str) -> str:
    """The text a push to ``platform`` carries: with MessageStructure json, the platform's own key
    (``GCM``, ``APNS``...), else ``default``."""
    if structure is None:
        return message
    return structure.get(platform, structure.get("default", ""))


class PushOps:
    """Mixed into the SNS service."""

    cloud: Any
    store: Any
    clock: Any

    def start_push(self) -> None:
        self.cloud.gateway.internal.route("GET", r"/_unkai/sns/push", self._outbox_route, access="local")

    # -- platform applications -------------------------------------------------------------

    def _app(self, ctx: RequestContext, arn: Any) -> tuple[str, str, str, dict]:
        if not _here(ctx, arn):
            raise _no_app()
        row = self.store.one("SELECT arn, platform, name, attributes FROM sns_platform_apps WHERE arn=?",
                             (arn or "",))
        if row is None:
            raise _no_app()
        return row[0], row[1], row[2], json.loads(row[3])

    @staticmethod
    def _shown(attributes: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in attributes.items() if k not in SECRET_ATTRIBUTES}

    def create_platform_application(self, ctx: RequestContext, params: dict) -> dict:
        name, platform = params.get("Name") or "", params.get("Platform") or ""
        reason = ("cannot be empty" if not name else "must be at most 256 characters long" if len(name) > 256 else
                  "must contain only characters 'a'-'z', 'A'-'Z', '0'-'9', '_', '-', and '.'"
                  if not re.fullmatch(r"[A-Za-z0-9._-]+", name) else "")
        if reason:
            raise _invalid(f"{name} Reason: {reason}")
        if platform not in PLATFORMS:
            raise _invalid(f"Platform Reason: {platform} is not supported")
        given = params.get("Attributes") or {}
        attributes = {"Enabled": "true", **{k: v for k, v in given.items() if k not in SECRET_ATTRIBUTES}}
        arn = f"arn:aws:sns:{ctx.region}:{ctx.account}:app/{platform}/{name}"
        # AWS answers a repeated create with the same ARN; the attributes given last are kept
        self.store.execute(
            "INSERT INTO sns_platform_apps(arn, account, region, platform, name, attributes) VALUES(?,?,?,?,?,?) "
            "ON CONFLICT(arn) DO UPDATE SET attributes=excluded.attributes",
            (arn, ctx.account, ctx.region, platform, name, json.dumps(attributes)))
        return {"PlatformApplicationArn": arn}

    def get_platform_application_attributes(self, ctx: RequestContext, params: dict) -> dict:
        return {"Attributes": self._shown(self._app(ctx, params["PlatformApplicationArn"])[3])}

    def set_platform_application_attributes(self, ctx: RequestContext, params: dict) -> dict:
        given = params.get("Attributes")
        _attributes_required(given)
        arn, _, _, attributes = self._app(ctx, params["PlatformApplicationArn"])
        attributes.update({k: v for k, v in given.items() if k not in SECRET_ATTRIBUTES})
        self.store.execute("UPDATE sns_platform_apps SET attributes=? WHERE arn=?", (json.dumps(attributes), arn))
        return {}

    def list_platform_applications(self, ctx: RequestContext, params: dict) -> dict:
        rows = self.store.all("SELECT arn, attributes FROM sns_platform_apps WHERE account=? AND region=? "
                              "ORDER BY arn", (ctx.account, ctx.region))
        chunk, token = _page(rows, params.get("NextToken"))
        result: dict[str, Any] = {"PlatformApplications": [
            {"PlatformApplicationArn": arn, "Attributes": self._shown(json.loads(attrs))} for arn, attrs in chunk]}
        if token:
            result["NextToken"] = token
        return result

    def delete_platform_application(self, ctx: RequestContext, params: dict) -> dict:
        arn = params["PlatformApplicationArn"]
        if not _here(ctx, arn):
            return {}  # another region's or account's: nothing here to delete (idempotent, as AWS)
        self.store.execute("DELETE FROM sns_platform_endpoints WHERE app_arn=?", (arn,))
        self.store.execute("DELETE FROM sns_platform_apps WHERE arn=?", (arn,))  # idempotent, as AWS
        return {}

    # -- endpoints -------------------------------------------------------------------------

    def _endpoint(self, ctx: RequestContext, arn: Any) -> tuple[str, str, str, dict]:
        if not _here(ctx, arn):
            raise _no_endpoint()
        row = self.store.one("SELECT arn, app_arn, token, attributes FROM sns_platform_endpoints WHERE arn=?",
                             (arn or "",))
        if row is None:
            raise _no_endpoint()
        return row[0], row[1], row[2], json.loads(row[3])

    def endpoint_exists(self, arn: str) -> bool:
        return self.store.one("SELECT 1 FROM sns_platform_endpoints WHERE arn=?", (arn,)) is not None

    def create_platform_endpoint(self, ctx: RequestContext, params: dict) -> dict:
        app_arn, platform, name, _ = self._app(ctx, params["PlatformApplicationArn"])
        token = params.get("Token") or ""
        if not token:
            raise _invalid("Token Reason: cannot be empty")
        given = dict(params.get("Attributes") or {})
        _check_endpoint_attributes(given)
        if params.get("CustomUserData") is not None:
            given.setdefault("CustomUserData", params["CustomUserData"])
        wanted = {"Enabled": "true", **given, "Token": token}
        row = self.store.one("SELECT arn, attributes FROM sns_platform_endpoints WHERE app_arn=? AND token=?",
                             (app_arn, token))
        if row is not None:
            if json.loads(row[1]) != wanted:
                raise _invalid(f"Token Reason: Endpoint {row[0]} already exists with the same Token, but different "
                               f"attributes.")
            return {"EndpointArn": row[0]}
        arn = f"arn:aws:sns:{ctx.region}:{ctx.account}:endpoint/{platform}/{name}/{uuid.uuid4()}"
        self.store.execute("INSERT INTO sns_platform_endpoints(arn, app_arn, token, attributes) VALUES(?,?,?,?)",
                           (arn, app_arn, token, json.dumps(wanted)))
        return {"EndpointArn": arn}

    def get_endpoint_attributes(self, ctx: RequestContext, params: dict) -> dict:
        return {"Attributes": self._endpoint(ctx, params["EndpointArn"])[3]}

    def set_endpoint_attributes(self, ctx: RequestContext, params: dict) -> dict:
        given = params.get("Attributes")
        _attributes_required(given)
        _check_endpoint_attributes(given)
        arn, app_arn, token, attributes = self._endpoint(ctx, params["EndpointArn"])
        attributes.update(given)
        if attributes["Token"] != token and self.store.one(
                "SELECT 1 FROM sns_platform_endpoints WHERE app_arn=? AND token=?", (app_arn, attributes["Token"])):
            raise _invalid(f"Token Reason: an endpoint with the token {attributes['Token']} already exists")
        self.store.execute("UPDATE sns_platform_endpoints SET token=?, attributes=? WHERE arn=?",
                           (attributes["Token"], json.dumps(attributes), arn))
        return {}

    def list_endpoints_by_platform_application(self, ctx: RequestContext, params: dict) -> dict:
        app_arn = self._app(ctx, params["PlatformApplicationArn"])[0]
        rows = self.store.all("SELECT arn, attributes FROM sns_platform_endpoints WHERE app_arn=? ORDER BY rowid",
                              (app_arn,))
        chunk, token = _page(rows, params.get("NextToken"))
        result: dict[str, Any] = {"Endpoints": [{"EndpointArn": arn, "Attributes": json.loads(attrs)}
                                                for arn, attrs in chunk]}
        if token:
            result["NextToken"] = token
        return result

    def delete_endpoint(self, ctx: RequestContext, params: dict) -> dict:
        if not _here(ctx, params["EndpointArn"]):
            return {}
        self.store.execute("DELETE FROM sns_platform_endpoints WHERE arn=?", (params["EndpointArn"],))
        return {}

    # -- pushes ----------------------------------------------------------------------------

    def check_push_target(self, ctx: RequestContext, arn: str) -> None:
        """Publish's TargetArn is an endpoint: it must exist here (the caller's account and region)
        and be enabled (checked before the message)."""
        row = self.store.one("SELECT attributes FROM sns_platform_endpoints WHERE arn=?", (arn,)) \
            if _here(ctx, arn) else None
        if row is None:
            raise _invalid("TargetArn Reason: No endpoint found for the target arn specified")
        if json.loads(row[0]).get("Enabled", "true").lower() != "true":
            raise ServiceError("EndpointDisabled", "Endpoint is disabled")

    def push(self, endpoint_arn: str, message_id: str, message: str, structure: dict[str, str] | None,
             topic_arn: str | None = None) -> bool:
        """Record one push in the outbox (the caller's transaction); False when the endpoint is gone
        or disabled, as AWS delivers nothing then."""
        row = self.store.one("SELECT e.app_arn, e.token, e.attributes, a.platform FROM sns_platform_endpoints e "
                             "JOIN sns_platform_apps a ON a.arn = e.app_arn WHERE e.arn=?", (endpoint_arn,))
        if row is None or json.loads(row[2]).get("Enabled", "true").lower() != "true":
            return False
        app_arn, token, _, platform = row
        text = push_text(message, structure, platform)
        self.store.execute(
            "INSERT INTO sns_push_outbox(endpoint_arn, app_arn, platform, token, message_id, message, topic_arn, sent) "
            "VALUES(?,?,?,?,?,?,?,?)", (endpoint_arn, app_arn, platform, token, message_id, text, topic_arn,
                                        self.clock.now()))
        self.store.after_commit(lambda: self.cloud.feed.publish("sns.push", endpoint=endpoint_arn, platform=platform,
                                                                message_id=message_id))
        return True

    async def _outbox_route(self, request: Any, match: Any) -> Any:
        from unkai.http import Response

        query = request.query_dict()
        where, args = [], []
        for key, column in (("endpoint", "endpoint_arn"), ("token", "token"), ("application", "app_arn")):
            if query.get(key):
                where.append(f"{column}=?")
                args.append(query[key])
        rows = self.store.all(
            "SELECT id, endpoint_arn, app_arn, platform, token, message_id, message, topic_arn, sent "
            f"FROM sns_push_outbox {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY id", tuple(args))
        pushes = [{"id": r[0], "endpoint": r[1], "application": r[2], "platform": r[3], "token": r[4],
                   "messageId": r[5], "message": r[6], "topic": r[7], "sent": r[8]} for r in rows]
        return Response(200, [("content-type", "application/json")], json.dumps({"pushes": pushes}).encode())


def _here(ctx: RequestContext, arn: Any) -> bool:
    """Whether an application or endpoint ARN is in the caller's account and region: ARNs are
    looked up whole, and another region's is not found there, as on AWS."""
    parts = str(arn or "").split(":")
    return len(parts) > 5 and parts[3] == ctx.region and parts[4] == ctx.account
