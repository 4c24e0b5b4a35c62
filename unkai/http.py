"""The small HTTP vocabulary shared by the gateway, the protocol layer and services.

We speak raw ASGI underneath for speed; these classes only give the bytes a shape.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote

Receive = Callable[[], Any]
Send = Callable[[dict], Any]


class Headers(dict):
    """Case-insensitive, multi-valued request headers: a dict of lower-case name to value
    (repeated headers joined with commas, as HTTP allows), so the many look-ups of every
    request are plain dict look-ups."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Sequence[tuple[bytes, bytes]] = ()) -> None:
        # ASGI servers give lower-case names; repeated headers are joined as HTTP allows.
        super().__init__([(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw])
        self._raw = raw
        if len(self) != len(raw):  # a repeated name: join its values
            self.clear()
            for k, v in raw:
                key = k.decode("latin-1").lower()
                value = v.decode("latin-1")
                self[key] = f"{self[key]},{value}" if key in self else value

    @classmethod
    def from_dict(cls, d: dict[str, str]) -> "Headers":
        h = cls()
        h._raw = [(k.lower(), v) for k, v in d.items()]
        h.update({k.lower(): v for k, v in d.items()})
        return h

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        return list(super().items())

    def raw(self) -> list[tuple[str, str]]:
        """Every header line in order, repeated names kept apart."""
        return [(k.decode("latin-1").lower(), v.decode("latin-1")) if isinstance(k, bytes) else (k, v)
                for k, v in self._raw]

    def __eq__(self, other: object) -> bool:  # one request's headers, not a value to compare
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    __hash__ = object.__hash__

    def __bool__(self) -> bool:  # headers exist even when there are none
        return True


class Request:
    """One HTTP request as AWS clients send it; the body is read on demand."""

    __slots__ = (
        "method", "raw_path", "query_string", "headers", "client", "scheme",
        "_receive", "_body", "_consumed", "_query", "_path", "state", "_whole",
    )

    def __init__(
        self,
        method: str,
        raw_path: str,
        query_string: str = "",
        headers: Headers | None = None,
        body: bytes | None = None,
        receive: Receive | None = None,
        client: str = "127.0.0.1",
        scheme: str = "http",
    ) -> None:
        self.method = method
        self.raw_path = raw_path
        self.query_string = query_string
        self.headers = headers or Headers()
        self.client = client
        self.scheme = scheme
        self._receive = receive
        self._body = body
        self._consumed = body is not None
        self._query: list[tuple[str, str]] | None = None
        self._path: str | None = None
        self.state: dict[str, Any] = {}
        # the server's ``unkai.body`` extension: the whole body at once when it has all arrived
        self._whole: Callable[[], bytes | None] | None = None

    @classmethod
    def from_scope(cls, scope: dict, receive: Receive) -> "Request":
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        if "?" in path:  # some servers leave the query on raw_path
            path = path.split("?", 1)[0]
        client = scope.get("client")
        request = cls(
            scope["method"],
            path,
            scope.get("query_string", b"").decode("latin-1"),
            Headers(scope.get("headers", ())),
            receive=receive,
            client=client[0] if client else "127.0.0.1",
            scheme=scope.get("scheme", "http"),
        )
        extensions = scope.get("extensions")
        if extensions:
            request._whole = extensions.get("unkai.body")
        return request

    @property
    def path(self) -> str:
        """The percent-decoded path."""
        if self._path is None:
            self._path = unquote(self.raw_path)
        return self._path

    @property
    def query(self) -> list[tuple[str, str]]:
        if self._query is None:
            self._query = parse_qsl(self.query_string, keep_blank_values=True) if self.query_string else []
        return self._query

    def query_dict(self) -> dict[str, str]:
        return dict(self.query)

    @property
    def host(self) -> str:
        return self.headers.get("host", "") or ""

    @property
    def body_unread(self) -> bool:
        """Whether the body was never read (so it may still be on its way)."""
        return self._body is None and not self._consumed and self._receive is not None

    async def body(self, limit: int | None = None) -> bytes:
        """The whole body; past ``limit`` bytes (counted as they arrive, chunked bodies too)
        ``BodyTooLarge`` is raised and the rest is never held."""
        if self._body is None:
            chunks = []
            if not self._consumed and self._whole is not None:
                whole = self._whole()
                if whole is not None:
                    self._consumed = True
                    if limit is not None and len(whole) > limit:
                        raise BodyTooLarge(limit)
                    self._body = whole
                    return whole
            if not self._consumed and self._receive is not None:
                self._consumed = True
                more = True
                size = 0
                while more:  # no async generator: it costs more than a small body's whole read
                    chunk, more = await self._chunk()
                    if chunk:
                        size += len(chunk)
                        if limit is not None and size > limit:
                            raise BodyTooLarge(limit)
                        chunks.append(chunk)
            self._body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif limit is not None and len(self._body) > limit:
            raise BodyTooLarge(limit)
        return self._body

    async def stream(self) -> AsyncIterator[bytes]:
        """Yield the body in chunks without holding it whole."""
        if self._body is not None:
            if self._body:
                yield self._body
            return
        if self._consumed or self._receive is None:
            return
        whole = self._whole() if self._whole is not None else None
        if whole is not None:
            self._consumed = True
            if whole:
                yield whole
            return
        self._consumed = True
        more = True
        while more:
            chunk, more = await self._chunk()
            if chunk:
                yield chunk

    async def disconnected(self) -> None:
        """Return once the client has gone (for long-lived streamed answers; call it only
        after the body has been read)."""
        if self._receive is None:
            await asyncio.Event().wait()
        while (await self._receive())["type"] != "http.disconnect":
            pass

    async def _chunk(self) -> tuple[bytes, bool]:
        """The next piece of the body, and whether more follows."""
        message = await self._receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        return message.get("body", b""), message.get("more_body", False)


class ClientDisconnected(Exception):
    """The client went away before the request body was complete."""


class BodyTooLarge(Exception):
    """A request body passed the reader's limit (``limit`` bytes)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")
        self.limit = limit


class Response:
    """Status, headers and a body that is bytes or an async stream of bytes."""

    __slots__ = ("status", "headers", "body")

    def __init__(
        self,
        status: int = 200,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | AsyncIterable[bytes] = b"",
    ) -> None:
        self.status = status
        self.headers = headers if headers is not None else []
        self.body = body

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> "Response":
        body = json.dumps(data, ensure_ascii=False, default=str).encode()
        return cls(status, [("content-type", "application/json")] + (headers or []), body)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> "Response":
        return cls(status, [("content-type", content_type)], text.encode())

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    async def send(self, send: Send, head_only: bool = False) -> None:
        raw = [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in self.headers]
        if isinstance(self.body, (bytes, bytearray)):
            if not any(k == b"content-length" for k, _ in raw):
                raw.append((b"content-length", str(len(self.body)).encode()))
            await send({"type": "http.response.start", "status": self.status, "headers": raw})
            await send({"type": "http.response.body", "body": b"" if head_only else bytes(self.body)})
            return
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        if not head_only:
            async for chunk in self.body:
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
