"""A small HTTP/1.1 server for the Lambda Runtime API: keep-alive, Content-Length or chunked request
bodies, one request at a time per connection (runtime clients never pipeline).

It is deliberately tiny: the Runtime API is on every invocation's path, and a runtime client speaks
to it over a private loopback inside its own network namespace, so no general-purpose server is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

MAX_HEAD = 64 * 1024
# A body over the handler's limit is read through and dropped (the request is marked ``oversized``, so
# the handler can answer 413 and the client keeps its connection); one over this is not read at all.
MAX_DRAINED = 64 * 1024 * 1024
REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 413: "Payload Too Large", 500: "Internal Server Error"}


@dataclass(slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    oversized: bool = False  # the body was over the limit: read and dropped (``body`` is empty)


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(ValueError):
    pass


async def read_request(reader: asyncio.StreamReader, max_body: int) -> Request | None:
    """The next request on the connection; None when the client closed it between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise BadRequest("truncated request head") from None
    except asyncio.LimitOverrunError:
        raise BadRequest("request head too large") from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise BadRequest(f"bad request line {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest(f"bad header line {line!r}")
        headers[name.strip().lower()] = value.strip()
    body, oversized = await _read_body(reader, headers, max_body)
    return Request(parts[0], parts[1], headers, body, oversized)


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], max_body: int) -> tuple[bytes, bool]:
    """The body, and whether it was over ``max_body`` (then read through, dropped, and empty here)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return (b"", True) if total > max_body else (b"".join(chunks), False)
            total += size
            if total > MAX_DRAINED:
                raise BadRequest("body too large")
            if total > max_body:
                chunks.clear()
                await _drop(reader, size)
            else:
                chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = int(headers.get("content-length") or 0)
    if length > MAX_DRAINED:
        raise BadRequest("body too large")
    if length > max_body:
        await _drop(reader, length)
        return b"", True
    return (await reader.readexactly(length) if length else b""), False


async def _drop(reader: asyncio.StreamReader, size: int) -> None:
    while size > 0:
        size -= len(await reader.readexactly(min(size, 1 << 16)))


def encode_response(response: Response) -> bytes:
    head = [f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Unknown')}"]
    head.extend(f"{k}: {v}" for k, v in response.headers.items())
    head.append(f"Content-Length: {len(response.body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler,
                           max_body: int) -> None:
    try:
        while True:
            try:
                request = await read_request(reader, max_body)
            except (BadRequest, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                writer.write(encode_response(Response(400, b'{"errorMessage":"bad request"}')))
                break
            if request is None:
                break
            response = await handler(request)
            writer.write(encode_response(response))
            await writer.drain()
            if request.headers.get("connection", "").lower() == "close":
                break
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
