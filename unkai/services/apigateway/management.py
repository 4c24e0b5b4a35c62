"""The API Gateway Management API (``apigatewaymanagementapi``): @connections, which a
WebSocket API's backend calls at ``https://{domainName}/{stage}`` to push to, inspect or
close a client's connection."""

from __future__ import annotations

import re
from typing import Any

from unkai.http import Request
from unkai.protocol import ServiceError
from unkai.services import RequestContext, Service
from unkai.services.apigateway.websockets import MAX_MESSAGE

_STAGED = re.compile(r"^/[^/@][^/]*(/@connections(?:/.*)?)$")


class ManagementApi(Service):
    name = "apigatewaymanagementapi"

    def rewrite_request(self, request: Request) -> None:
        """Clients address ``/{stage}/@connections/{id}``; the model knows ``/@connections/{id}``."""
        m = _STAGED.match(request.raw_path)
        if m:
            request.state["signed_path"] = request.raw_path  # what the client signed
            request.raw_path = m.group(1)
            request._path = None

    def _sockets(self) -> Any:
        plane = self.cloud.services["apigateway"].dataplane
        return plane.websockets if plane is not None else None

    def open_connections(self, api_id: str) -> list[dict]:
        """The open WebSocket connections of an API, as GetConnection describes each, with
        ``ConnectionId`` and ``Stage`` (the dashboard lists them)."""
        sockets = self._sockets()
        found = []
        for conn in list(sockets.connections.values()) if sockets is not None else []:
            if conn.api_id == api_id and sockets.find(conn.id) is not None:
                found.append({"ConnectionId": conn.id, "Stage": conn.stage_name, "ConnectedAt": conn.connected_at,
                              "LastActiveAt": conn.last_active})
        return found

    def _connection(self, connection_id: str) -> Any:
        sockets = self._sockets()
        conn = sockets.find(connection_id) if sockets is not None else None
        if conn is None:
            raise ServiceError("GoneException", "", status=410)
        return conn

    async def post_to_connection(self, ctx: RequestContext, params: dict) -> dict:
        data = params.get("Data") or b""
        if isinstance(data, str):
            data = data.encode()
        conn = self._connection(params["ConnectionId"])
        if len(data) > MAX_MESSAGE:
            raise ServiceError("PayloadTooLargeException", "Message too long", status=413)
        try:
            await conn.send_text(data)
        except Exception:
            raise ServiceError("GoneException", "", status=410) from None
        return {}

    def get_connection(self, ctx: RequestContext, params: dict) -> dict:
        conn = self._connection(params["ConnectionId"])
        return {"ConnectedAt": conn.connected_at, "LastActiveAt": conn.last_active,
                "Identity": {"SourceIp": conn.source_ip, "UserAgent": conn.header("user-agent") or ""}}

    async def delete_connection(self, ctx: RequestContext, params: dict) -> dict:
        conn = self._connection(params["ConnectionId"])
        await self._sockets().close(conn, 1000, "")
        return {}
