"""Bodies written to a socket by threads (``sendoff``), over real loopback TCP connections: every
byte in order, a slow reader's share left for the transport with the body's cursor right behind
it, a reader that goes away, a body that fails."""

from __future__ import annotations

import os
import random
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from minicloud.server import sendoff

PIECE = 64 * 1024


class Body:
    """A ThreadReadable body of ``size`` pseudo-random bytes, read ``PIECE`` at a time; one thread
    at a time (checked); fails after ``fail_after`` bytes if given."""

    buffer_size = 4 * PIECE

    def __init__(self, size: int, fail_after: int | None = None) -> None:
        self.data = random.Random(size).randbytes(size)
        self.offset = 0
        self.fail_after = fail_after
        self.readers = 0
        self.overlapped = False

    def read_next(self, buffer: memoryview) -> memoryview | None:
        self.readers += 1
        self.overlapped |= self.readers > 1
        try:
            time.sleep(0.0005)
            if self.fail_after is not None and self.offset >= self.fail_after:
                raise OSError(5, "the disk failed")
            piece = self.data[self.offset:self.offset + min(len(buffer), 3 * PIECE)]  # not always full
            if not piece:
                return None
            buffer[:len(piece)] = piece
            self.offset += len(piece)
            return buffer[:len(piece)]
        finally:
            self.readers -= 1

    def __aiter__(self) -> AsyncIterator[bytes | bytearray]:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


@pytest.fixture
def connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(server side, non-blocking like a transport's; client side) of a loopback TCP connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    server.setblocking(False)
    yield server, client
    server.close()
    client.close()


@pytest.fixture
def producers() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as pool:
        yield pool


def _dup(server: socket.socket) -> sendoff.SenderSocket:
    return sendoff.SenderSocket(server.fileno())


def _ring(body: Body) -> list[memoryview]:
    return [memoryview(bytearray(body.buffer_size)) for _ in range(sendoff.RING)]


def _receive(sock: socket.socket, size: int, into: bytearray) -> threading.Thread:
    def read() -> None:
        while len(into) < size:
            chunk = sock.recv(1 << 20)
            if not chunk:
                return
            into.extend(chunk)
    thread = threading.Thread(target=read)
    thread.start()
    return thread


def test_the_head_and_every_byte_of_the_body_arrive_in_order(connection: tuple[socket.socket, socket.socket],
                                                             producers: ThreadPoolExecutor) -> None:
    server, client = connection
    body = Body(5 * 1024 * 1024 + 12345)
    got = bytearray()
    reader = _receive(client, 5 + len(body.data), got)
    result = sendoff.pump(_dup(server), b"HEAD:", body, _ring(body), producers, len(body.data))
    reader.join(10)
    assert bytes(got) == b"HEAD:" + body.data
    assert result.read == len(body.data) and result.leftover == []
    assert not body.overlapped


def test_a_slow_reader_gets_the_rest_through_the_transport(connection: tuple[socket.socket, socket.socket],
                                                           producers: ThreadPoolExecutor) -> None:
    server, client = connection
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    body = Body(32 * 1024 * 1024)
    result = sendoff.pump(_dup(server), b"", body, _ring(body), producers, len(body.data), patience_s=0.05)
    assert result.leftover, "nobody read: the pump must give up"
    assert body.offset == result.read  # the producer stopped right after what it handed over
    got = bytearray()
    reader = _receive(client, len(body.data), got)
    server.setblocking(True)
    for piece in result.leftover:
        server.sendall(piece)
    server.sendall(body.data[body.offset:])  # what the event loop would send next
    reader.join(10)
    assert bytes(got) == body.data
    assert not body.overlapped


def test_a_reader_that_goes_away_ends_the_pump(connection: tuple[socket.socket, socket.socket],
                                               producers: ThreadPoolExecutor) -> None:
    server, client = connection
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # its close resets
    body = Body(32 * 1024 * 1024)
    threading.Timer(0.05, client.close).start()
    with pytest.raises(sendoff.ClientGone):
        sendoff.pump(_dup(server), b"", body, _ring(body), producers, len(body.data), patience_s=5)
    assert body.offset < len(body.data)
    assert not body.overlapped


def test_a_failing_body_raises_after_what_it_gave(connection: tuple[socket.socket, socket.socket],
                                                  producers: ThreadPoolExecutor) -> None:
    server, client = connection
    body = Body(4 * 1024 * 1024, fail_after=1024 * 1024)
    got = bytearray()
    reader = _receive(client, len(body.data), got)
    with pytest.raises(OSError, match="the disk failed"):
        sendoff.pump(_dup(server), b"", body, _ring(body), producers, len(body.data))
    server.close()
    reader.join(10)
    assert bytes(got) == body.data[:body.offset]  # all it read before it failed, and no more
    assert 1024 * 1024 <= body.offset < len(body.data)


def test_send_pieces_returns_what_a_full_socket_did_not_take(connection: tuple[socket.socket, socket.socket]) -> None:
    server, client = connection
    data = random.Random(3).randbytes(16 * 1024 * 1024)
    left = sendoff.send_pieces(_dup(server), [memoryview(data[:10]), memoryview(data[10:])], patience_s=0.05)
    sent = len(data) - sum(len(piece) for piece in left)
    assert 0 < sent < len(data)
    got = bytearray()
    reader = _receive(client, len(data), got)
    server.setblocking(True)
    for piece in left:
        server.sendall(piece)
    reader.join(10)
    assert bytes(got) == data


def test_an_abandoned_pump_stops_its_producer(connection: tuple[socket.socket, socket.socket],
                                              producers: ThreadPoolExecutor) -> None:
    server, client = connection
    body = Body(32 * 1024 * 1024)
    got = bytearray()
    reader = _receive(client, len(body.data), got)
    abandon = threading.Event()
    threading.Timer(0.02, abandon.set).start()
    with pytest.raises(sendoff.Abandoned):
        sendoff.pump(_dup(server), b"", body, _ring(body), producers, len(body.data), abandon=abandon)
    offset = body.offset
    time.sleep(0.05)
    assert body.offset == offset < len(body.data) and body.readers == 0  # nothing reads the body any more
    server.close()
    reader.join(10)
    assert body.data.startswith(bytes(got))


def test_a_body_longer_than_announced_is_cut_short(connection: tuple[socket.socket, socket.socket],
                                                  producers: ThreadPoolExecutor) -> None:
    server, client = connection
    body = Body(3 * 1024 * 1024)
    got = bytearray()
    reader = _receive(client, len(body.data), got)
    with pytest.raises(sendoff.TooLong):
        sendoff.pump(_dup(server), b"", body, _ring(body), producers, 2 * 1024 * 1024)
    server.close()
    reader.join(10)
    assert len(got) <= 2 * 1024 * 1024  # nothing past the announced length went out
    assert not body.overlapped


def test_a_pump_closes_its_descriptor(connection: tuple[socket.socket, socket.socket],
                                      producers: ThreadPoolExecutor) -> None:
    server, client = connection
    before = len(os.listdir("/proc/self/fd"))
    body = Body(2 * 1024 * 1024)
    got = bytearray()
    reader = _receive(client, len(body.data), got)
    sendoff.pump(_dup(server), b"", body, _ring(body), producers, len(body.data))
    reader.join(10)
    assert bytes(got) == body.data
    assert len(os.listdir("/proc/self/fd")) == before
