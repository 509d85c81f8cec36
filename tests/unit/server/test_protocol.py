"""minicloud's HTTP/1.1 protocol under uvicorn's server, spoken to over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import uvicorn

from minicloud.server.protocol import bounded_protocol
from tests.support.server import free_port

Scope = dict[str, Any]


async def _app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/boom":
        raise RuntimeError("boom")
    if path == "/refuse":  # answers without reading the body
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-length", b"2"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": b"no"})
        return
    if path == "/stream":  # a chunked response (no Content-Length)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one", b"two"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path in ("/pieces", "/pumped"):  # a large body: in pieces a thread sends, or one a thread reads
        data = _large_body()
        if path == "/pumped":
            await scope["minicloud.exchange"].respond_pumped(200, [("content-length", str(len(data)))], _Body(data))
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(data)).encode())]})
        for start in range(0, len(data), 3 * 1024 * 1024):
            await send({"type": "http.response.body", "body": data[start:start + 3 * 1024 * 1024], "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/scope":  # kept, to see what the server leaves in it (below: a normal answer)
        _SCOPES.append(scope)
    if path == "/bad-header":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-evil", b"a\r\nset-cookie: x")]})
        return
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = f"{scope['method']} {path} {scope['query_string'].decode()} {size}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


_SCOPES: list[Scope] = []


def _large_body() -> bytes:
    return bytes(range(256)) * (40 * 1024 * 4 + 3)  # ~40 MiB


class _Body:
    """A body a thread reads (``sendoff.ThreadReadable``) in pieces of up to 1 MiB; the event loop
    iterates the rest of it."""

    buffer_size = 1024 * 1024

    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def read_next(self, buffer: memoryview) -> memoryview | None:
        piece = self.data[self.offset:self.offset + len(buffer)]
        if not piece:
            return None
        buffer[:len(piece)] = piece
        self.offset += len(piece)
        return buffer[:len(piece)]

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._rest()

    async def _rest(self) -> AsyncIterator[bytes]:
        while self.offset < len(self.data):
            piece = self.data[self.offset:self.offset + 512 * 1024]
            self.offset += len(piece)
            yield piece

    async def aclose(self) -> None:
        return None


def _server(loop: str, keep_alive: float) -> tuple[uvicorn.Server, int]:
    """uvicorn's server with minicloud's protocol on a free loopback port (not started)."""
    free = free_port()
    config = uvicorn.Config(_app, host="127.0.0.1", port=free, loop=loop, lifespan="on" if loop == "uvloop" else "off",
                            http=bounded_protocol(8 * 1024), log_level="critical",
                            timeout_keep_alive=keep_alive)  # type: ignore[arg-type]  # (annotated int; seconds)
    return uvicorn.Server(config), free


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server, free = _server("uvloop", 5)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield free
    server.should_exit = True
    thread.join(10)


def _exchange(port: int, data: bytes, until: int = 1, timeout: float = 30) -> bytes:
    """Send ``data``, read until ``until`` complete responses (or the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return _read_responses(sock, until)


def _read_responses(sock: socket.socket, until: int) -> bytes:
    received = b""
    while _count_complete(received) < until:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        received += chunk
    return received


def _count_complete(data: bytes) -> int:
    count = 0
    while b"\r\n\r\n" in data:
        head, _, rest = data.partition(b"\r\n\r\n")
        headers = {line.split(b":", 1)[0].lower(): line.split(b":", 1)[1].strip()
                   for line in head.split(b"\r\n")[1:] if b":" in line}
        if b"content-length" in headers:
            length = int(headers[b"content-length"])
            if len(rest) < length:
                return count
            data = rest[length:]
        elif headers.get(b"transfer-encoding") == b"chunked":
            if b"0\r\n\r\n" not in rest:
                return count
            data = rest.split(b"0\r\n\r\n", 1)[1]
        else:
            data = rest
        count += 1
    return count


def test_keep_alive_and_pipelining_answer_in_order(port: int) -> None:
    requests = b"".join(f"GET /r{i}?q={i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(3))
    answer = _exchange(port, requests, until=3)
    assert answer.count(b"HTTP/1.1 200 OK") == 3
    assert answer.index(b"GET /r0 q=0 0") < answer.index(b"GET /r1 q=1 0") < answer.index(b"GET /r2 q=2 0")
    assert b"date: " in answer
    assert b"connection: close" not in answer


def test_head_and_body_leave_in_one_segment_with_a_date(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert first.endswith(b"POST /x  5")


def test_chunked_request_body_and_percent_decoded_path(port: int) -> None:
    answer = _exchange(port, b"PUT /a%20b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
    assert answer.endswith(b"PUT /a b  7")


def test_expect_100_continue_is_answered_when_the_body_is_read(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"data")
        assert _read_responses(sock, 1).endswith(b"PUT /up  4")


def test_an_early_refusal_is_read_by_the_client_while_it_still_sends(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"PUT /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 8388608\r\n\r\n")
        with contextlib.suppress(OSError):
            for _ in range(8):
                sock.sendall(b"x" * (1024 * 1024))
        answer = _read_responses(sock, 1)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in answer


def test_a_large_body_streams_through(port: int) -> None:
    size = 32 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
        block = b"y" * (1024 * 1024)
        for _ in range(32):
            sock.sendall(block)
        assert _read_responses(sock, 1).endswith(b"PUT /big  %d" % size)


@pytest.mark.parametrize("path", ["/pieces", "/pumped"])
@pytest.mark.parametrize("slow", [False, True], ids=["fast-reader", "slow-reader"])
def test_large_bodies_sent_by_threads_arrive_whole_and_in_order(port: int, path: str, slow: bool) -> None:
    """Large pieces go to the socket from a sender thread, a ThreadReadable body from a pump; a
    reader too slow for them gets the rest through the transport. Requests pipelined behind are
    answered after, in order, on the same connection."""
    requests = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        if slow:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        sock.sendall(requests)
        if slow:
            time.sleep(1.5)  # the socket fills: the server's threads give up on it
        answer = bytearray()
        while not answer.endswith(b"GET /after  0"):
            chunk = sock.recv(1 << 20)
            assert chunk, "the connection closed early"
            answer += chunk
    head, _, rest = bytes(answer).partition(b"\r\n\r\n")
    body = _large_body()
    assert head.startswith(b"HTTP/1.1 200 OK") and b"content-length: %d" % len(body) in head
    assert rest[:len(body)] == body
    assert rest[len(body):].startswith(b"HTTP/1.1 200 OK") and rest.endswith(b"GET /after  0")


def test_a_finished_exchange_is_no_longer_named_by_its_scope(port: int) -> None:
    # (a scope naming its exchange, which holds the scope, would wait for the cyclic collector)
    assert _exchange(port, b"GET /scope HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200 ")
    deadline = time.monotonic() + 30
    while "minicloud.exchange" in _SCOPES[-1] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "minicloud.exchange" not in _SCOPES[-1]


def test_chunked_response_without_content_length(port: int) -> None:
    answer = _exchange(port, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"transfer-encoding: chunked" in answer
    assert answer.endswith(b"3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n")


def test_http_1_0_gets_a_streamed_body_without_chunked_coding(port: int) -> None:
    answer = _exchange(port, b"GET /stream HTTP/1.0\r\n\r\n", until=2)
    assert b"transfer-encoding" not in answer
    assert answer.endswith(b"\r\n\r\nonetwo")


def test_head_request_gets_no_body(port: int) -> None:
    answer = _exchange(port, b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n", until=2)
    head_answer, _, rest = answer.partition(b"\r\n\r\n")
    assert b"content-length: 10" in head_answer  # "HEAD /h  0", not sent
    assert rest.startswith(b"HTTP/1.1 200 OK")  # no body bytes between the two answers
    assert rest.endswith(b"GET /after  0")


def test_http_1_0_closes_after_the_answer(port: int) -> None:
    answer = _exchange(port, b"GET /old HTTP/1.0\r\n\r\n", until=2)
    assert b"connection: close" in answer
    assert answer.endswith(b"GET /old  0")


def test_application_failure_is_a_500_and_the_server_lives_on(port: int) -> None:
    answer = _exchange(port, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 500 Internal Server Error")
    assert _exchange(port, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n").endswith(b"GET /ok  0")


def test_header_injection_never_reaches_the_wire(port: int) -> None:
    answer = _exchange(port, b"GET /bad-header HTTP/1.1\r\nHost: x\r\n\r\n", until=2)
    assert b"set-cookie" not in answer
    assert answer.startswith(b"HTTP/1.1 500 ")


def test_garbage_and_tls_handshakes_get_400(port: int) -> None:
    hello = bytes.fromhex("16030100a5010000a10303") + b"\x00" * 64
    for data in (hello, b"NOT HTTP AT ALL\r\n\r\n"):
        answer = _exchange(port, data)
        assert answer.startswith(b"HTTP/1.1 400 Bad Request"), answer


def test_an_endless_head_is_cut_off_with_431(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
        with contextlib.suppress(OSError):
            for _ in range(64):
                sock.sendall(b"a" * 65536)
        answer = _read_responses(sock, 1)
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_an_idle_connection_closes_after_the_keep_alive_timeout() -> None:
    async def main() -> float:
        server, free = _server("asyncio", 0.3)
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", free)
        writer.write(b"GET /k HTTP/1.1\r\nHost: x\r\n\r\n")
        await reader.readuntil(b"GET /k  0")
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # the server hung up
        elapsed = time.monotonic() - started
        writer.close()
        server.should_exit = True
        await task
        return elapsed

    assert 0.2 <= asyncio.run(main()) < 4  # its own 0.3 s, not uvicorn's default 5 s
