"""The ASGI vocabulary minicloud uses (after starlette/types.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from minicloud.aws.request import ClientDisconnected, Headers

log = logging.getLogger("minicloud.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    pass


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge()
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def send_response(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    if not any(k.lower() == b"content-length" for k, _ in raw):
        raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


# A request body larger than this, chunked, or aws-chunked is left unread for the dispatcher.
STREAM_THRESHOLD = 1 << 20


def streams_body(headers: Headers) -> bool:
    """Whether a request's body is handed over as a stream rather than read up front. A client that
    waits for ``100 Continue`` is answered before its body is asked for: a refusal (no permission,
    no such bucket) comes without the 100, as S3 answers, and the body is never sent."""
    if (headers.get("expect") or "").lower() == "100-continue":
        return True
    if "chunked" in (headers.get("transfer-encoding") or "").lower():
        return True
    if (headers.get("x-amz-content-sha256") or "").startswith("STREAMING-"):
        return True
    if "aws-chunked" in (headers.get("content-encoding") or ""):
        return True
    length = headers.get("content-length")
    return length is not None and length.isdigit() and int(length) > STREAM_THRESHOLD


class ReceiveStream:
    """The request body as an async iterator of chunks, read from ``receive`` as they arrive.
    ``done`` tells whether the whole body was read."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.done = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while not self.done:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            if not message.get("more_body", False):
                self.done = True
            chunk = message.get("body", b"")
            if chunk:
                yield chunk


async def _watch_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def send_stream(send: Send, receive: Receive | None, status: int, headers: list[tuple[str, str]],
                      stream: AsyncIterable[bytes]) -> None:
    """Send a response whose body comes from ``stream``; stop early if the client goes away.
    An error from the stream after the headers went out cuts the response short (the client sees
    fewer bytes than Content-Length), which is all HTTP/1.1 allows then."""
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    watcher = asyncio.ensure_future(_watch_disconnect(receive)) if receive is not None else None
    try:
        await send({"type": "http.response.start", "status": status, "headers": raw})
        async for chunk in stream:
            if watcher is not None and watcher.done():
                return
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except Exception:
        log.warning("a streamed response body failed; the response is cut short", exc_info=True)
    finally:
        if watcher is not None:
            watcher.cancel()
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
