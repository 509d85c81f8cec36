"""A small asyncio HTTP/1.1 server for the Docker Engine API on a unix socket.

Why not the ASGI server: Docker's attach and exec take over the connection after the response
header (``Upgrade: tcp`` -> ``101 UPGRADED``) and then carry raw, bidirectional streams, with a
half-close from the client meaning "end of stdin". Here a handler can return

- ``Response``: a complete body (with Content-Length);
- ``StreamResponse``: an async iterator of chunks, sent with chunked transfer encoding;
- ``Hijack``: a coroutine that receives the connection's reader and writer after the header.

Request bodies stream (``Request.chunks()``) so that image loads and imports are never buffered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

log = logging.getLogger("minicloud.engine.dockerapi")

MAX_HEADER = 64 * 1024


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Request:
    def __init__(self, method: str, target: str, version: str, headers: dict[str, str],
                 reader: asyncio.StreamReader) -> None:
        parts = urlsplit(target)
        self.method = method
        self.path = unquote(parts.path)
        self.query = parse_qs(parts.query, keep_blank_values=True)
        self.version = version
        self.headers = headers
        self._reader = reader
        self._consumed = False
        self.params: dict[str, str] = {}

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.arg(name, "")
        if value == "":
            return default
        return value.lower() not in ("0", "false", "no")

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        value = self.arg(name, "")
        if value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise HttpError(400, f"invalid value for {name}: {value!r}") from None

    def json_arg(self, name: str) -> Any:
        value = self.arg(name, "")
        if not value:
            return None
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            raise HttpError(400, f"invalid JSON in {name}") from None

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._consumed:
            return
        self._consumed = True
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                line = await self._reader.readline()
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (await self._reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                yield await self._reader.readexactly(size)
                await self._reader.readexactly(2)
        else:
            remaining = int(self.headers.get("content-length", "0") or 0)
            while remaining > 0:
                data = await self._reader.read(min(remaining, 1 << 20))
                if not data:
                    raise HttpError(400, "request body ended early")
                remaining -= len(data)
                yield data

    async def body(self, limit: int = 16 * 1024 * 1024) -> bytes:
        parts: list[bytes] = []
        total = 0
        async for chunk in self.chunks():
            total += len(chunk)
            if total > limit:
                raise HttpError(413, "request body too large")
            parts.append(chunk)
        return b"".join(parts)

    async def json(self) -> Any:
        data = await self.body()
        if not data.strip():
            return None
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise HttpError(400, f"invalid JSON: {exc}") from None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(doc: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(doc) + b"\n")


@dataclass
class StreamResponse:
    chunks: AsyncIterator[bytes]
    status: int = 200
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Hijack:
    """Take over the connection: ``run(reader, writer)`` after ``101 UPGRADED`` (or 200)."""

    run: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    content_type: str = "application/vnd.docker.raw-stream"


Handler = Callable[[Request], Awaitable[Response | StreamResponse | Hijack]]
ErrorRenderer = Callable[[Exception], Response]


class HttpServer:
    def __init__(self, handler: Handler, render_error: ErrorRenderer) -> None:
        self.handler = handler
        self.render_error = render_error
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start_unix(self, path: str) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=path, limit=MAX_HEADER)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("docker API connection failed")
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return False
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        request = Request(method, target, version, headers, reader)
        try:
            result = await self.handler(request)
        except Exception as exc:  # rendered once, here
            result = self.render_error(exc)
        keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if isinstance(result, Hijack):
            await self._hijack(request, result, reader, writer)
            return False
        async for _ in request.chunks():  # an unread body must not be parsed as the next request
            pass
        if isinstance(result, StreamResponse):
            await self._stream(result, writer, keep_alive)
        else:
            extra = [*result.headers, ("Content-Length", str(len(result.body)))]
            self._head(writer, result.status, result.content_type, extra, keep_alive)
            if method != "HEAD":
                writer.write(result.body)
            await writer.drain()
        return keep_alive

    @staticmethod
    def _head(writer: asyncio.StreamWriter, status: int, content_type: str,
              headers: list[tuple[str, str]], keep_alive: bool) -> None:
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Status"
        lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}",
                 "Api-Version: 1.50", "Docker-Experimental: false", "Ostype: linux",
                 "Server: minicloud", f"Date: {formatdate(usegmt=True)}"]
        lines += [f"{k}: {v}" for k, v in headers]
        if not keep_alive:
            lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    async def _stream(self, result: StreamResponse, writer: asyncio.StreamWriter, keep_alive: bool) -> None:
        self._head(writer, result.status, result.content_type,
                   [*result.headers, ("Transfer-Encoding", "chunked")], keep_alive)
        await writer.drain()
        try:
            async for chunk in result.chunks:
                if chunk:
                    writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                    await writer.drain()
        finally:
            closer = getattr(result.chunks, "aclose", None)
            if closer is not None:
                await closer()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _hijack(self, request: Request, result: Hijack, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        if request.headers.get("upgrade", "").lower() == "tcp":
            head = (f"HTTP/1.1 101 UPGRADED\r\nContent-Type: {result.content_type}\r\n"
                    "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        else:
            head = f"HTTP/1.1 200 OK\r\nContent-Type: {result.content_type}\r\n\r\n"
        writer.write(head.encode())
        await writer.drain()
        await result.run(reader, writer)
