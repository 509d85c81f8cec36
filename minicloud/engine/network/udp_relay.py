"""Published UDP ports (``-p 127.0.0.1:5353:53/udp``): a datagram relay in the engine. A socket on
the host's loopback address receives; each client (address and port) gets its own socket, made
inside the engine's namespace and connected to the container, so that replies find their way back
to the client who asked. A client's socket is closed after ``IDLE`` seconds without traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import cast

log = logging.getLogger("minicloud.engine.network")
IDLE = 120.0
MAX_WAITING = 64  # datagrams held for a client while its socket is being made

Address = tuple[str, int]
Target = Callable[[], "Address | None"]
SocketMaker = Callable[[], Awaitable[socket.socket]]


class _Upstream(asyncio.DatagramProtocol):
    """One client's socket towards the container: what comes back goes to that client."""

    def __init__(self, front: asyncio.DatagramTransport, client: Address) -> None:
        self.front = front
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None
        self.last = asyncio.get_running_loop().time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        self.last = asyncio.get_running_loop().time()
        if not self.front.is_closing():
            self.front.sendto(data, self.client)

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable: the datagram is lost
        pass

    def send(self, data: bytes) -> None:
        self.last = asyncio.get_running_loop().time()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data)


class UdpPort(asyncio.DatagramProtocol):
    """The host side of one published UDP port."""

    def __init__(self, target: Target, make_socket: SocketMaker) -> None:
        self.target = target
        self.make_socket = make_socket
        self.transport: asyncio.DatagramTransport | None = None
        self.clients: dict[Address, _Upstream] = {}
        self.waiting: dict[Address, list[bytes]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is not a subclass
        self._spawn(self._sweep())

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        client = (str(addr[0]), int(addr[1]))
        upstream = self.clients.get(client)
        if upstream is not None:
            upstream.send(data)
        elif client in self.waiting:
            if len(self.waiting[client]) < MAX_WAITING:
                self.waiting[client].append(data)
        else:
            self.waiting[client] = [data]
            self._spawn(self._connect(client))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _connect(self, client: Address) -> None:
        where = self.target()
        try:
            if where is None or self.transport is None:
                return
            sock = await self.make_socket()
            try:
                sock.connect(where)  # UDP: sets the peer, sends nothing
                _, upstream = await asyncio.get_running_loop().create_datagram_endpoint(
                    lambda: _Upstream(self.transport, client), sock=sock)  # type: ignore[arg-type]
            except OSError as exc:
                sock.close()
                log.debug("UDP relay to %s failed: %s", where, exc)
                return
            self.clients[client] = upstream
            for data in self.waiting.get(client, []):
                upstream.send(data)
        finally:
            self.waiting.pop(client, None)

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(IDLE / 4)
            for client, upstream in list(self.clients.items()):
                if loop.time() - upstream.last > IDLE and upstream.transport is not None:
                    upstream.transport.close()
                    del self.clients[client]

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        for upstream in self.clients.values():
            if upstream.transport is not None:
                upstream.transport.close()
        self.clients.clear()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def open_udp(host_ip: str, port: int, target: Target, make_socket: SocketMaker) -> tuple[UdpPort, int]:
    """Listen on ``host_ip:port`` (0: any free port); the relay and the port bound."""
    loop = asyncio.get_running_loop()
    transport, relay = await loop.create_datagram_endpoint(lambda: UdpPort(target, make_socket),
                                                           local_addr=(host_ip, port))
    bound = int(transport.get_extra_info("sockname")[1])
    return relay, bound


def udp_socket() -> socket.socket:
    """Blocking; call it in the namespace's thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    return sock
