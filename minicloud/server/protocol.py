"""minicloud's HTTP/1.1 server protocol: httptools parses, the ASGI application answers.

uvicorn runs the server (sockets, signals, lifespan, graceful shutdown) and creates one of these per
connection; this module replaces its httptools protocol, which spent more time per small request
than minicloud's own handling of a signed API call: a request object, an ``asyncio.Event``, two
regular expressions per response header, a keep-alive timer armed and cancelled per request, and
the response's head and body in two ``send`` calls. Here:

- a request is an :class:`Exchange` (slots; a future only when the application waits for body);
- a response's head waits for the first body message and leaves with it in one write;
- one keep-alive timer per connection and idle period, re-armed only when it fires;
- header names and values are checked with byte scans (no CR, LF or NUL may reach the wire);
- the head of a request is bounded while it arrives (``431``), a request that does not parse
  (a TLS handshake on the plain port, say) gets ``400`` and the connection is closed;
- pipelined requests are answered in order; reading pauses while one is queued or while a
  request body waits unread beyond a high-water mark, and ``send`` waits while the socket's write
  buffer is full, so memory stays bounded whatever the size of bodies;
- large bodies leave from threads (``sendoff``): a piece of 1 MiB or more is written by a sender
  thread while the application makes the next, and a body a thread can read (a sealed S3 object)
  is pumped by two threads with the event loop out of the data path (``respond_pumped``).
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import socket
import urllib.parse
from collections import deque
from typing import Any, Protocol

import httptools

from minicloud.server import sendoff
from minicloud.server.asgi import ASGIApp, Message, Scope
from minicloud.server.handoff import MAX_SNIFFED, head_end, may_be_request, send_connection

log = logging.getLogger("minicloud.server.http")

# Unread request body held before reading from the socket pauses.
_BODY_HIGH_WATER = 1 << 20
# A body chunk up to this size is joined to the response's head (one send); larger ones follow it.
_JOIN_BELOW = 64 * 1024
# One read from the socket may carry the end of a head and the start of its body: count that slack.
_READ_SLACK = 256 * 1024
# How long the rest of a refused request body is read (and dropped) before the connection closes.
_LINGER_SECONDS = 2.0


def _status_line(status: int) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")


STATUS_LINES = {status: _status_line(status) for status in range(100, 600)}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_ASGI_VERSION = {"version": "3.0", "spec_version": "2.3"}  # the same for every scope (read, never changed)


class Exchange:
    """One request and its response on a connection; ``receive`` and ``send`` are its ASGI callables."""

    __slots__ = ("body_done", "buffered", "chunked", "chunks", "complete", "disconnected", "expect_continue", "head",
                 "head_only", "header_bytes", "keep_alive", "last_sending", "more_body", "protocol", "remaining",
                 "resume_after_send", "scope", "sending", "started", "waiter")

    def __init__(self, protocol: HttpProtocol, scope: Scope, expect_continue: bool, keep_alive: bool,
                 header_bytes: int = 0) -> None:
        self.protocol = protocol
        self.scope = scope
        self.header_bytes = header_bytes  # the request's header names and values, in bytes
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.more_body = True  # the request's body has not all arrived
        self.body_done = False  # the application was given the last of the body
        self.waiter: asyncio.Future[None] | None = None
        self.expect_continue = expect_continue
        self.keep_alive = keep_alive
        self.started = False
        self.complete = False
        self.disconnected = False
        self.head = b""  # the response's head, until the first body message takes it along
        self.remaining = 0  # bytes of body still owed to the Content-Length sent
        self.chunked = False
        self.head_only = scope["method"] == "HEAD"
        self.sending: asyncio.Future[list[memoryview]] | None = None  # a piece a sender thread writes
        self.last_sending = False  # that piece ends the response
        self.resume_after_send = False  # reading was paused for a thread's write

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self) -> Message:
        while True:
            if self.disconnected or self.complete:
                return {"type": "http.disconnect"}
            if self.chunks or (not self.more_body and not self.body_done):
                break
            if self.expect_continue and self.more_body and not self.started:
                self.expect_continue = False
                self.protocol.write(_CONTINUE)
            self.protocol.resume_reading()
            self.waiter = self.protocol.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        # One chunk per message, as it arrived: joining them would copy every byte of a large
        # upload once more on the event loop (the consumer batches them as it needs anyway).
        body = self.chunks.popleft() if self.chunks else b""
        self.buffered -= len(body)
        more = self.more_body or bool(self.chunks)
        if not more:
            self.body_done = True
        if self.buffered < _BODY_HIGH_WATER:
            self.protocol.resume_reading()
        return {"type": "http.request", "body": body, "more_body": more}

    def whole_body(self) -> bytes | None:
        """The request's whole body if it has all arrived and none of it was handed out yet (the
        common small request: no ``receive`` round trip needed), else None."""
        if self.more_body or self.body_done or self.disconnected or self.complete:
            return None
        chunks = self.chunks
        body = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        self.body_done = True
        self.protocol.resume_reading()
        return body

    async def respond(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """A whole response in one call: the native form of ``http.response.start`` followed by one
        ``http.response.body`` (headers as text, encoded once; Content-Length added if missing)."""
        if self.started:
            raise RuntimeError("respond() after the response was started")
        if not await self._writable():
            return
        self._start_text(status, headers, len(body))
        self._write_body(body, more=False)  # the head and a small body leave in one write

    async def _writable(self) -> bool:
        """Wait while the socket's write buffer is full; whether the client is still there."""
        if self.protocol.write_paused and not self.disconnected:
            await self.protocol.drain()
        return not self.disconnected

    def _start_text(self, status: int, headers: list[tuple[str, str]], body_length: int | None = None) -> None:
        """``_start_block`` for headers as text, encoded once."""
        block = "".join([f"{name}: {value}\r\n" for name, value in headers]).encode("latin-1")
        self._start_block(status, headers, block, body_length)

    def _sender_socket(self, size: int, threads_free: bool) -> sendoff.SenderSocket | None:
        """A socket a thread may write ``size`` bytes of body to (see ``sendoff``), when that is
        worth it (a large, length-framed body) and a thread is free; else None."""
        if size < sendoff.MIN_BYTES or self.chunked or self.head_only or not threads_free:
            return None
        return self.protocol.sender_socket()

    async def send(self, message: Message) -> None:
        if self.sending is not None:
            await self._settle_sending()
        if not await self._writable():
            return
        kind = message["type"]
        if not self.started:
            if kind != "http.response.start":
                raise RuntimeError(f"expected http.response.start, got {kind!r}")
            self._start(message["status"], message.get("headers", ()))
            return
        if self.complete:
            raise RuntimeError(f"{kind!r} sent after the response was complete")
        if kind != "http.response.body":
            raise RuntimeError(f"expected http.response.body, got {kind!r}")
        body, more = message.get("body", b""), message.get("more_body", False)
        sock = self._sender_socket(len(body), sendoff.piece_thread_free())
        if sock is not None:
            self._start_sending(sock, body, more=more)
            if not more:
                await self._settle_sending()
            return
        self._write_body(body, more=more)

    def _write_body(self, body: bytes, *, more: bool) -> None:
        """Frame ``body`` as the response's head said (chunks, Content-Length, or until close) and
        write it, the head still waiting joined in front of it; the exchange ends with the last."""
        protocol = self.protocol
        head, body = self._framed(body, more=more)
        if head:
            if len(body) < _JOIN_BELOW:
                protocol.write(head + body)
            else:
                protocol.write(head)
                protocol.write(body)
        elif body:
            protocol.write(body)
        if not more:
            self._finish()

    async def respond_pumped(self, status: int, headers: list[tuple[str, str]], body: sendoff.ThreadReadable) -> None:
        """A whole response whose body a thread can read: pumped into the socket by threads (see
        ``sendoff``) when the connection allows, else (and after whatever a slow reader left) sent
        as the event loop iterates the rest of it. An error from the body after the head went out
        cuts the response short, which is all HTTP/1.1 allows then. The body is closed."""
        protocol = self.protocol
        try:
            if not await self._writable():
                return
            self._start_text(status, headers)
            sock = self._sender_socket(self.remaining, sendoff.pump_threads_free())
            if sock is not None:
                head, self.head = self.head, b""
                self._pause_for_thread()
                try:
                    pumped = await sendoff.pump_off_loop(sock, head, body, self.remaining)
                except sendoff.ClientGone:
                    self._client_gone()
                    return
                finally:
                    self._resume_after_thread()
                self.remaining -= pumped.read
                for left in pumped.leftover:
                    protocol.write(left)
            async for piece in body:
                if self.disconnected:
                    return
                await self.send({"type": "http.response.body", "body": piece, "more_body": True})
            await self.send({"type": "http.response.body", "body": b"", "more_body": False})
        except Exception:
            log.warning("a streamed response body failed; the response is cut short", exc_info=True)
        finally:
            await body.aclose()

    def _start_sending(self, sock: sendoff.SenderSocket, body: bytes, *, more: bool) -> None:
        """``_write_body`` for a large piece: a sender thread writes it (see ``sendoff``) while the
        application makes the next one."""
        head, body = self._framed(body, more=more)
        self._pause_for_thread()
        self.sending = asyncio.ensure_future(sendoff.send_off_loop(sock, [memoryview(head), memoryview(body)]))
        self.last_sending = not more

    async def _settle_sending(self) -> None:
        """Wait for the piece a sender thread writes; what a slow reader left of it goes to the
        transport (which sends it as the socket drains)."""
        protocol, sending = self.protocol, self.sending
        assert sending is not None
        try:
            left = await sending
        except sendoff.ClientGone:
            self._client_gone()
            return
        finally:
            self.sending = None
            self._resume_after_thread()
        for piece in left:
            protocol.write(piece)
        if self.last_sending:
            self._finish()

    def _pause_for_thread(self) -> None:
        """Reading pauses while a thread writes, so that nothing else (an error answer to a
        pipelined request) writes to the connection."""
        if not self.protocol.read_paused:
            self.protocol.pause_reading()
            self.resume_after_send = True

    def _resume_after_thread(self) -> None:
        if self.resume_after_send:
            self.resume_after_send = False
            self.protocol.resume_reading()

    def _client_gone(self) -> None:
        """A thread's write found the connection over: it is, for the transport too."""
        self.disconnected = True
        if self.protocol.transport is not None:
            self.protocol.transport.abort()

    async def quiesce(self) -> None:
        """Wait for a piece a sender thread may still be writing (an application that ended
        mid-body), so that the connection closes after it."""
        if self.sending is not None:
            with contextlib.suppress(Exception):
                await self._settle_sending()

    def _framed(self, body: bytes, *, more: bool) -> tuple[bytes, bytes]:
        """The response's head still waiting (or b"") and ``body`` framed as the head said
        (chunks, Content-Length, or until close)."""
        if self.head_only:
            body = b""
        elif self.chunked:
            body = b"%x\r\n%b\r\n" % (len(body), body) if body else b""
            if not more:
                body += b"0\r\n\r\n"
        elif self.remaining >= 0:  # (-1: no length, the body ends when the connection closes)
            self.remaining -= len(body)
            if self.remaining < 0:
                raise RuntimeError("response body longer than its Content-Length")
        if not more and self.remaining > 0 and not self.head_only:
            raise RuntimeError("response body shorter than its Content-Length")
        head, self.head = self.head, b""
        return head, body

    def _finish(self) -> None:
        self.complete = True
        self.wake()
        self.protocol.exchange_done(self)

    def _start(self, status: int, headers: Any) -> None:
        headers = list(headers)
        self._start_block(status, headers, b"".join([b"%b: %b\r\n" % (name, value) for name, value in headers]))

    def _start_block(self, status: int, headers: list[tuple[Any, Any]], block: bytes,
                     body_length: int | None = None) -> None:
        """Start the response: ``block`` is ``headers`` as they go on the wire (``name: value`` lines).
        ``body_length``, when given, is the Content-Length to send if the headers have none."""
        lines = len(headers)
        if block.count(b"\n") != lines or block.count(b"\r") != lines or b"\x00" in block:
            for name, value in headers:  # (rare) name the culprit
                text = f"{name}{value}" if isinstance(name, str) else (name + value).decode("latin-1")
                if "\r" in text or "\n" in text or "\x00" in text:
                    raise RuntimeError(f"invalid response header {name!r}")
            raise RuntimeError("invalid response header")
        length: int | None = None
        said_close = False
        for name, value in headers:
            lower = name.lower()
            if lower in _FRAMING_NAMES:
                if isinstance(lower, str):
                    lower, value = lower.encode("latin-1"), value.encode("latin-1")
                if lower == b"content-length":
                    length = int(value)
                elif lower == b"transfer-encoding":
                    if value.lower() == b"chunked":
                        self.chunked = True
                elif lower == b"connection" and b"close" in value.lower():
                    self.keep_alive = False
                    said_close = True
        parts = [STATUS_LINES.get(status) or _status_line(status), self.protocol.default_head(), block]
        if length is None and body_length is not None and not self.chunked:
            length = body_length
            parts.append(b"content-length: %d\r\n" % length)
        if self.more_body and self.expect_continue:
            # The client still holds the body back, waiting for a 100 that will not come.
            self.keep_alive = False
        if not self.keep_alive and not said_close:
            parts.append(b"connection: close\r\n")
        if length is not None and not self.chunked:
            self.remaining = length
        elif not self.chunked and not self.head_only and status not in (204, 304) and status >= 200:
            if self.scope["http_version"] == "1.0":  # no chunked coding in HTTP/1.0: the close ends it
                self.keep_alive = False
                self.remaining = -1
            else:
                self.chunked = True
                parts.append(b"transfer-encoding: chunked\r\n")
        parts.append(b"\r\n")
        self.head = b"".join(parts)
        self.started = True


# Response headers that change how the response is framed on the wire (either spelling).
_FRAMING_NAMES = frozenset({b"content-length", b"transfer-encoding", b"connection",
                            "content-length", "transfer-encoding", "connection"})


class Switch(Protocol):
    """Where a connection's requests are served (see ``server.handoff``): ``divert`` names the
    channel to pass a connection to, given the head of the request that starts an exchange on it,
    or None to serve it here. ``every_request``: asked at every request that starts on an idle
    connection, else only for a connection's first request."""

    every_request: bool

    def divert(self, head: bytes) -> socket.socket | None: ...

    def attach(self, protocol: HttpProtocol) -> None: ...


class HttpProtocol(asyncio.Protocol):
    """One connection (created by uvicorn's server for every accepted socket)."""

    max_head_bytes = 64 * 1024
    switch: Switch | None = None  # set on the class by ``bounded_protocol``

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app: ASGIApp = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self.app_state = app_state
        self.keep_alive_timeout: float = config.timeout_keep_alive
        self.parser = httptools.HttpRequestParser(self)
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.transport: asyncio.Transport | None = None
        self.server: tuple[str, int] | None = None
        self.client: tuple[str, int] | None = None
        # The request being parsed, the one being answered, and the ones waiting behind it.
        self.parsing: Exchange | None = None
        self.current: Exchange | None = None
        self.queue: deque[Exchange] = deque()
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_bytes = 0
        self.expect_continue = False
        self.in_head = True
        self.head_bytes = 0
        self.read_paused = False
        self.lingering = False
        self.write_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None
        self.idle_since = 0.0
        self.idle_timer: asyncio.TimerHandle | None = None
        self._default_source: object = None
        self._default_head = b""
        # Hand-offs: the head of a request being looked at before it is parsed; whether the parser
        # stands between two messages; bytes read by another process, to parse first.
        self.sniff: bytearray | None = None
        self.at_boundary = True
        self.carried: bytes | None = None
        self._sender_fd: int | None = None  # (-1: none; see ``sender_socket``)

    # -- the connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are Transports
        self.server_state.connections.add(self)
        sockname = transport.get_extra_info("sockname")
        peername = transport.get_extra_info("peername")
        self.server = _address(sockname)
        self.client = _address(peername)
        self.idle_since = self.loop.time()
        self.idle_timer = self.loop.call_later(self.keep_alive_timeout, self._check_idle)
        switch = self.switch
        if switch is not None:
            switch.attach(self)
            carried = self.carried
            if carried is None:
                self.sniff = bytearray()  # a fresh connection: its first request decides
            else:  # handed over by another process, which looked at this request already
                self.carried = None
                self.at_boundary = False
                self.data_received(carried)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        for exchange in (self.current, self.parsing, *self.queue):
            if exchange is not None and not exchange.complete:
                exchange.disconnected = True
                exchange.wake()
        self.write_paused = False
        self._release_drain()

    def eof_received(self) -> None:
        return None  # the transport closes; an exchange in flight learns of it in connection_lost

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._release_drain()

    def _release_drain(self) -> None:
        waiter = self.drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self.drain_waiter = None

    async def drain(self) -> None:
        if self.drain_waiter is None:
            self.drain_waiter = self.loop.create_future()
        await self.drain_waiter

    def write(self, data: bytes | bytearray | memoryview) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def resume_reading(self) -> None:
        if self.read_paused and not self.queue and self.transport is not None:
            self.read_paused = False
            self.transport.resume_reading()

    def sender_socket(self) -> sendoff.SenderSocket | None:
        """The socket a thread may write to now (see ``sendoff``), duplicated for it: the
        transport holds nothing unsent, and the connection is plain TCP; else None."""
        transport = self.transport
        if transport is None or transport.is_closing() or transport.get_write_buffer_size():
            return None
        if self._sender_fd is None:
            fd = sendoff.socket_fd(transport)
            self._sender_fd = -1 if fd is None else fd
        return sendoff.SenderSocket.of(self._sender_fd) if self._sender_fd >= 0 else None

    def pause_reading(self) -> None:
        if not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()

    def shutdown(self) -> None:
        """Called by uvicorn when the server stops: close now if idle, else after the response."""
        if self.current is None and self.transport is not None:
            self.transport.close()
            return
        for exchange in (self.current, *self.queue):
            if exchange is not None:
                exchange.keep_alive = False

    def _check_idle(self) -> None:
        self.idle_timer = None
        if self.transport is None or self.transport.is_closing():
            return
        if self.current is None:
            idle = self.loop.time() - self.idle_since
            if idle >= self.keep_alive_timeout:
                self.transport.close()
                return
            delay = self.keep_alive_timeout - idle
        else:
            delay = self.keep_alive_timeout
        self.idle_timer = self.loop.call_later(delay, self._check_idle)

    def default_head(self) -> bytes:
        """uvicorn's default headers (the Date, refreshed every second), joined once per refresh."""
        source = self.server_state.default_headers
        if source is not self._default_source:
            self._default_source = source
            self._default_head = b"".join(b"%b: %b\r\n" % (name, value) for name, value in source)
        return self._default_head

    # -- parsing (httptools callbacks)

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return
        if self.sniff is not None or (self.at_boundary and self.current is None and self.switch is not None
                                      and self.switch.every_request and self.parsing is None and not self.queue):
            data = self._sniff(data)
            if not data:
                return
        self.idle_since = self.loop.time()
        if self.in_head:
            self.head_bytes += len(data)
            if self.head_bytes > self.max_head_bytes + _READ_SLACK:
                self._refuse(431, b"Request Header Fields Too Large\n")
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # No protocol upgrades here (an h2c offer, say): the request was answered as HTTP/1.1;
            # the parser stops at an upgrade, so the connection ends after the response.
            for exchange in (self.current, *self.queue):
                if exchange is not None:
                    exchange.keep_alive = False
            if self.current is None and self.transport is not None:
                self.transport.close()
        except httptools.HttpParserError:
            self._refuse(400, b"Invalid HTTP request received.\n")

    def _sniff(self, data: bytes) -> bytes:
        """Gather a request's head before parsing it; once whole, hand the connection to the
        process that serves such requests, or return what to parse here (b"": nothing yet)."""
        buffer = self.sniff
        if buffer:
            buffer += data
            data = bytes(buffer)
        end = head_end(data)
        if end < 0:
            if len(data) <= MAX_SNIFFED and may_be_request(data):
                self.sniff = bytearray(data)
                return b""
            self.sniff = None
            return data
        self.sniff = None
        switch = self.switch
        channel = switch.divert(data[:end]) if switch is not None else None
        if channel is not None and self._hand_off(channel, data):
            return b""
        return data

    def _hand_off(self, channel: socket.socket, data: bytes) -> bool:
        """Pass the connection and ``data`` (read from it, not parsed) over ``channel``; this
        process then lets go of its end without closing the connection (the socket lives on in
        the other process)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        sock = transport.get_extra_info("socket")
        if sock is None or not send_connection(channel, sock.fileno(), data):
            return False
        self.lingering = True  # nothing more is read or answered here
        transport.close()
        return True

    def _refuse(self, status: int, message: bytes) -> None:
        if self.current is not None:  # a response is in flight: just end the connection after it
            self.current.keep_alive = False
        else:
            self.write(STATUS_LINES[status] + b"content-type: text/plain; charset=utf-8\r\n" +
                       b"content-length: %d\r\nconnection: close\r\n\r\n" % len(message) + message)
        if self.transport is not None:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.at_boundary = False
        self.url = b""
        self.headers = []
        self.header_bytes = 0
        self.expect_continue = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        self.header_bytes += len(name) + len(value)
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_bytes = 0
        parser = self.parser
        version = parser.get_http_version()
        raw_path: bytes = self.url
        query: bytes = b""
        if raw_path[:1] != b"/" or b"?" in raw_path or b"#" in raw_path:  # (origin-form "/x" needs no parser)
            url = httptools.parse_url(raw_path)
            raw_path, query = url.path, url.query or b""
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        scope: Scope = {
            "type": "http",
            "asgi": _ASGI_VERSION,
            "http_version": version,
            "server": self.server,
            "client": self.client,
            "scheme": "http",
            "root_path": "",
            "method": parser.get_method().decode("ascii"),
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "headers": self.headers,
        }
        if self.app_state:
            scope["state"] = self.app_state.copy()
        keep_alive = version != "1.0" and parser.should_keep_alive()
        exchange = Exchange(self, scope, self.expect_continue, keep_alive, self.header_bytes)
        scope["minicloud.exchange"] = exchange
        self.parsing = exchange
        if self.current is None:
            self._start(exchange)
        else:  # pipelined behind the one being answered
            self.queue.append(exchange)
            self.pause_reading()

    def on_body(self, body: bytes) -> None:
        exchange = self.parsing
        if exchange is None or exchange.complete:
            return  # the response went out already: the rest of the body is dropped
        exchange.chunks.append(body)
        exchange.buffered += len(body)
        if exchange.buffered > _BODY_HIGH_WATER:
            self.pause_reading()
        exchange.wake()

    def on_message_complete(self) -> None:
        self.at_boundary = True
        self.in_head = True
        exchange = self.parsing
        self.parsing = None
        if exchange is not None:
            exchange.more_body = False
            exchange.wake()

    # -- running the application

    def _start(self, exchange: Exchange) -> None:
        self.current = exchange
        task = self.loop.create_task(self._run(exchange))
        tasks = self.server_state.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _run(self, exchange: Exchange) -> None:
        try:
            await self._run_app(exchange)
        finally:
            # The scope names its exchange, which holds the scope: a cycle, which only the cyclic
            # collector would free (with the request's headers) once the application is done with it.
            exchange.scope.pop("minicloud.exchange", None)

    async def _run_app(self, exchange: Exchange) -> None:
        try:
            try:
                await self.app(exchange.scope, exchange.receive, exchange.send)
            finally:
                await exchange.quiesce()
        except BaseException as exc:
            log.error("the application failed on %s %s", exchange.scope["method"], exchange.scope["path"],
                      exc_info=exc)
            if not exchange.started and not exchange.disconnected:
                exchange.keep_alive = False
                message = b"Internal Server Error"
                try:
                    await exchange.send({"type": "http.response.start", "status": 500, "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(message)).encode())]})
                    await exchange.send({"type": "http.response.body", "body": message})
                except Exception:
                    pass
            elif self.transport is not None:
                self.transport.close()
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        else:
            if not exchange.complete and not exchange.disconnected:
                log.error("the application returned without completing its response")
                if self.transport is not None:
                    self.transport.close()

    def exchange_done(self, exchange: Exchange) -> None:
        self.server_state.total_requests += 1
        self.idle_since = self.loop.time()
        if exchange is not self.current:
            return
        self.current = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if not exchange.keep_alive:
            if exchange.more_body:
                self._linger(transport)
            else:
                transport.close()
            return
        if self.queue:
            self._start(self.queue.popleft())
        self.resume_reading()
        if self.idle_timer is None:
            self.idle_timer = self.loop.call_later(self.keep_alive_timeout, self._check_idle)


    def _linger(self, transport: asyncio.Transport) -> None:
        """End a connection whose request body is still arriving (a refused upload, say) so that
        the client reads the answer: send FIN, drop what still comes for a while, then close.
        Closing at once would reset the connection and lose the answer in the client's socket."""
        self.lingering = True
        self.resume_reading()
        if transport.can_write_eof():
            transport.write_eof()
        self.loop.call_later(_LINGER_SECONDS, transport.close)


def _address(value: Any) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return str(value[0]), int(value[1])
    return None


def bounded_protocol(max_head_bytes: int, switch: Switch | None = None) -> type[HttpProtocol]:
    return type("HttpProtocol", (HttpProtocol,), {"max_head_bytes": max_head_bytes, "switch": switch})
