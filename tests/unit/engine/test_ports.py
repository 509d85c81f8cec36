from __future__ import annotations

import asyncio
import socket

import pytest

from minicloud.engine.errors import Conflict, InvalidArgument
from minicloud.engine.network.ports import PortBinding, Relay, parse_bindings, tcp_socket


def test_bindings_default_to_loopback() -> None:
    bindings = parse_bindings({"80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "0.0.0.0", "HostPort": ""}],
                               "81": [{"HostIp": "127.0.0.5", "HostPort": "9000-9002"}]})
    assert bindings == [PortBinding(80, "tcp", "127.0.0.1", 8080), PortBinding(80, "tcp", "127.0.0.1", 0),
                        PortBinding(81, "tcp", "127.0.0.5", 9000, 9002)]


def test_bindings_outside_loopback_are_refused() -> None:
    for host_ip in ("192.0.2.2", "10.0.0.1", "::"):
        if host_ip == "::":
            assert parse_bindings({"80/tcp": [{"HostIp": host_ip}]})[0].host_ip == "127.0.0.1"
            continue
        with pytest.raises(InvalidArgument, match="loopback"):
            parse_bindings({"80/tcp": [{"HostIp": host_ip, "HostPort": "80"}]})
    assert parse_bindings({"53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}]})[0].proto == "udp"
    with pytest.raises(InvalidArgument, match="sctp"):
        parse_bindings({"53/sctp": [{}]})
    with pytest.raises(InvalidArgument):
        parse_bindings({"80/tcp": [{"HostPort": "99999"}]})


async def _echo_server() -> tuple[asyncio.AbstractServer, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()  # until the relay passes the client's half-close on
        writer.write(data.upper())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


def test_relay_carries_both_ways_with_half_close() -> None:
    async def scenario() -> None:
        server, port = await _echo_server()

        async def make() -> socket.socket:
            return tcp_socket()

        relay = Relay(make)
        bound = await relay.open(PortBinding(port, "tcp", "127.0.0.1", 0), lambda: ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection("127.0.0.1", bound)
        writer.write(b"hello")
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), 5) == b"HELLO"
        writer.close()
        with pytest.raises(Conflict, match="already allocated"):
            await Relay(make).open(PortBinding(port, "tcp", "127.0.0.1", bound), lambda: None)
        await relay.close()
        server.close()
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", bound)  # closed with the container

    asyncio.run(scenario())
