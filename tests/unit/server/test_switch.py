"""Hand-offs in minicloud's HTTP protocol: a request head gathered from pieces, looked at, and its
connection passed with its bytes to another process (here: the test, through a real channel)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from minicloud.server.handoff import channel_pair, receive_connections
from minicloud.server.protocol import HttpProtocol, bounded_protocol
from tests.support.server import free_port


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = f"here {scope['path']}".encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Switch:
    """Diverts requests whose path starts with /away; asked at every request on an idle connection."""

    every_request = True

    def __init__(self, channel: socket.socket) -> None:
        self.channel = channel
        self.heads: list[bytes] = []

    def divert(self, head: bytes) -> socket.socket | None:
        self.heads.append(head)
        return self.channel if head.split(b" ")[1].startswith(b"/away") else None

    def attach(self, protocol: HttpProtocol) -> None:
        return None


@pytest.fixture
def served() -> Iterator[tuple[int, _Switch, socket.socket]]:
    mine, theirs = channel_pair()
    switch = _Switch(mine)
    port = free_port()
    config = uvicorn.Config(_app, host="127.0.0.1", port=port, loop="uvloop", lifespan="off", log_level="critical",
                            http=bounded_protocol(8 * 1024, switch))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield port, switch, theirs
    server.should_exit = True
    thread.join(10)
    mine.close()
    theirs.close()


def _response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < int(
            data.split(b"content-length: ")[1].split(b"\r\n")[0]):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _taken(channel: socket.socket) -> tuple[socket.socket, bytes]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = receive_connections(channel)
        if got:
            assert len(got) == 1
            return got[0]
        time.sleep(0.01)
    raise AssertionError("no connection was handed over")


def test_a_head_in_pieces_is_diverted_with_every_byte(served: tuple[int, _Switch, socket.socket]) -> None:
    port, switch, other = served
    with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
        client.sendall(b"GET /away/1 HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.1)  # the head is not whole yet: nothing is decided
        assert receive_connections(other) == []
        client.sendall(b"Content-Length: 4\r\n\r\nbody")
        adopted, carried = _taken(other)
        assert carried.startswith(b"GET /away/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
        assert switch.heads[-1] == b"GET /away/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n"
        adopted.setblocking(True)
        adopted.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nthere")  # the same TCP connection
        assert _response(client).endswith(b"there")
        adopted.close()


def test_requests_not_diverted_are_served_here_then_a_later_one_moves(
        served: tuple[int, _Switch, socket.socket]) -> None:
    port, switch, other = served
    with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
        for i in range(2):
            client.sendall(f"GET /stay/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert _response(client).endswith(f"here /stay/{i}".encode())
        assert receive_connections(other) == []
        client.sendall(b"GET /away/2 HTTP/1.1\r\nHost: x\r\n\r\n")  # idle connection, new request: asked again
        adopted, carried = _taken(other)
        assert carried == b"GET /away/2 HTTP/1.1\r\nHost: x\r\n\r\n"
        adopted.close()
    assert [h.split(b" ")[1] for h in switch.heads] == [b"/stay/0", b"/stay/1", b"/away/2"]


def test_a_tls_hello_is_refused_at_once_not_waited_on(served: tuple[int, _Switch, socket.socket]) -> None:
    """A client trying HTTPS first (skopeo, Go's net/http) must get its answer at once to fall back
    to HTTP: the bytes cannot start a request head, so they go straight to the parser (400)."""
    port, switch, _other = served
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        started = time.monotonic()
        client.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64))
        answer = client.recv(4096)
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert time.monotonic() - started < 3.0  # not after a wait for more bytes (keep-alive: 5 s)
    assert switch.heads == []
