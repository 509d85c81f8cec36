"""The registry's small HTTP vocabulary over ASGI: a request, a response (bytes or a stream)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import orjson

from minicloud.aws.request import Headers
from minicloud.server.asgi import Receive, Scope, Send


class ClientGone(Exception):
    """The client disconnected before its request body was read."""


@dataclass(slots=True)
class Request:
    scope: Scope
    receive: Receive
    method: str
    path: str
    headers: Headers
    query: dict[str, list[str]]
    client_ip: str
    _consumed: bool = False

    @classmethod
    def from_scope(cls, scope: Scope, receive: Receive) -> Request:
        query: dict[str, list[str]] = {}
        for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
            query.setdefault(key, []).append(value)
        client = scope.get("client")
        headers = Headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"])
        return cls(scope, receive, scope["method"], scope["path"], headers, query,
                   client[0] if client else "127.0.0.1")

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def host(self) -> str:
        return self.headers.get("host") or "127.0.0.1"

    def url(self, path: str) -> str:
        """An absolute URL on this registry, as clients reached it (some clients need Location absolute)."""
        scheme = self.headers.get("x-forwarded-proto") or self.scope.get("scheme") or "http"
        return f"{scheme}://{self.host}{path}"

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        if value is None or not value.strip().isdigit():
            return None
        return int(value)

    async def stream(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk as it arrives (chunked transfer encoding included)."""
        if self._consumed:
            return
        self._consumed = True
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    async def body(self, limit: int) -> bytes | None:
        """The whole body, or None when it is longer than ``limit``."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in self.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: AsyncIterator[bytes | bytearray] | None = None
    length: int | None = None  # Content-Length of a stream, or of a HEAD response's entity

    @classmethod
    def json(cls, status: int, document: object, headers: list[tuple[str, str]] | None = None,
             content_type: str = "application/json") -> Response:
        return cls(status, [("content-type", content_type), *(headers or [])], orjson.dumps(document))

    async def send(self, send: Send, head: bool = False) -> None:
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]
        length = self.length if (self.stream is not None or head) and self.length is not None else len(self.body)
        if self.status not in (204, 304) and not (100 <= self.status < 200):
            raw.append((b"content-length", str(length).encode()))
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        if head or self.status in (204, 304):
            if self.stream is not None:
                await self.stream.aclose()  # type: ignore[attr-defined]
            await send({"type": "http.response.body", "body": b""})
            return
        if self.stream is None:
            await send({"type": "http.response.body", "body": self.body})
            return
        try:
            async for chunk in self.stream:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            await self.stream.aclose()  # type: ignore[attr-defined]
        await send({"type": "http.response.body", "body": b""})
