"""Published ports: ``-p [ip:][hostPort:]containerPort[/udp]`` as a userspace relay in the engine
(TCP here, UDP in ``udp_relay.py``).
A listener on a loopback address of the host accepts, and each connection is carried to the
container's address by a socket created inside the engine's namespace. Nothing is added to the
host's network configuration or firewall, and a port is reachable on loopback only: an address
outside 127.0.0.0/8 is refused, and ``0.0.0.0`` (Docker's "all addresses") means 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from minicloud.engine.errors import Conflict, InvalidArgument
from minicloud.engine.network.udp_relay import UdpPort, open_udp

log = logging.getLogger("minicloud.engine.network")
LOOPBACK = "127.0.0.1"
CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class PortBinding:
    container_port: int
    proto: str
    host_ip: str
    host_port: int  # 0: any free port
    host_port_end: int = 0  # a range "8000-8010": the first free one

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"


def _host_ip(value: str) -> str:
    if value in ("", "0.0.0.0", "::"):
        return LOOPBACK
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise InvalidArgument(f"invalid host IP {value!r} in a port binding") from None
    if address.version == 6 and address.is_loopback:
        raise InvalidArgument("publishing on ::1 is not available yet in minicloud's engine: use 127.0.0.1")
    if not (address.version == 4 and address.is_loopback):
        raise InvalidArgument(f"minicloud publishes ports on loopback addresses (127.0.0.0/8) only, not on "
                              f"{value}: nothing is reachable from outside the machine")
    return value


def _port(value: str, what: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise InvalidArgument(f"invalid {what} {value!r}")
    return int(value)


def parse_bindings(port_bindings: dict[str, Any] | None) -> list[PortBinding]:
    """Docker's ``HostConfig.PortBindings`` as bindings, checked."""
    result: list[PortBinding] = []
    for key, entries in (port_bindings or {}).items():
        port_text, _, proto = key.partition("/")
        proto = proto or "tcp"
        if proto not in ("tcp", "udp"):
            raise InvalidArgument(f"published {proto} ports are not available yet in minicloud's engine "
                                  "(TCP and UDP only)")
        container_port = _port(port_text, "container port")
        for entry in entries or [{}]:
            host_ip = _host_ip(str((entry or {}).get("HostIp") or ""))
            text = str((entry or {}).get("HostPort") or "")
            first, _, last = text.partition("-")
            start = _port(first, "host port") if first else 0
            end = _port(last, "host port") if last else 0
            result.append(PortBinding(container_port, proto, host_ip, start, end))
    return result


Target = Callable[[], "tuple[str, int] | None"]  # where a connection goes now (None: nowhere)
SocketMaker = Callable[[], Awaitable[socket.socket]]


class Relay:
    """The listeners of one container's published ports."""

    def __init__(self, make_socket: SocketMaker, make_udp_socket: SocketMaker | None = None) -> None:
        self._make_socket = make_socket
        self._make_udp_socket = make_udp_socket
        self._udp: list[UdpPort] = []
        self._servers: list[asyncio.AbstractServer] = []
        self._connections: set[asyncio.Task[None]] = set()
        self.bound: list[tuple[PortBinding, int]] = []  # with the port actually bound

    async def open(self, binding: PortBinding, target: Target, preferred: int = 0) -> int:
        candidates = [binding.host_port] if not binding.host_port_end else \
            list(range(binding.host_port, binding.host_port_end + 1))
        if preferred and binding.host_port == 0:
            candidates = [preferred, 0]
        last: OSError | None = None
        for port in candidates:
            if binding.proto == "udp":
                if self._make_udp_socket is None:
                    raise InvalidArgument("published udp ports are not available here")
                try:
                    udp, bound = await open_udp(binding.host_ip, port, target, self._make_udp_socket)
                except OSError as exc:
                    last = exc
                    continue
                self._udp.append(udp)
                self.bound.append((binding, bound))
                return bound
            try:
                server = await asyncio.start_server(
                    lambda r, w: self._accept(r, w, target), binding.host_ip, port, reuse_address=True)
            except OSError as exc:
                last = exc
                continue
            bound = int(server.sockets[0].getsockname()[1])
            self._servers.append(server)
            self.bound.append((binding, bound))
            return bound
        if last is not None and last.errno == errno.EADDRINUSE:
            raise Conflict(f"driver failed programming external connectivity: Bind for "
                           f"{binding.host_ip}:{binding.host_port} failed: port is already allocated")
        raise Conflict(f"cannot publish {binding.host_ip}:{binding.host_port}: {last}")

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: Target) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._carry(reader, writer, target)
        finally:
            self._connections.discard(task)

    async def _carry(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: Target) -> None:
        where = target()
        inner_writer: asyncio.StreamWriter | None = None
        try:
            if where is None:
                return
            sock = await self._make_socket()
            try:
                await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, where), CONNECT_TIMEOUT)
            except (OSError, TimeoutError):
                sock.close()
                return
            inner_reader, inner_writer = await asyncio.open_connection(sock=sock)
            await asyncio.gather(_pipe(reader, inner_writer), _pipe(inner_reader, writer))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for w in (writer, inner_writer):
                if w is not None:
                    w.close()
                    with contextlib.suppress(Exception):
                        await w.wait_closed()

    async def close(self) -> None:
        for udp in self._udp:
            await udp.close()
        self._udp.clear()
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)
        self._servers.clear()
        self.bound.clear()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()
    except OSError:
        sink.close()


def tcp_socket() -> socket.socket:
    """Blocking; call it in the namespace's thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    return sock
