"""The build network's mirror proxy sends the host it checked as the upstream request's Host, never
the client's own (regression test of the security review: a RUN step could reach another virtual
host on a mirror's address by naming it in Host)."""

from __future__ import annotations

import asyncio

from minicloud.engine.build.network import MirrorProxy


async def _echo_host(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    hosts = b"|".join(line for line in head.split(b"\r\n") if line.lower().startswith(b"host:"))
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(hosts), hosts))
    await writer.drain()
    writer.close()


def test_the_upstream_sees_the_checked_host_only() -> None:
    async def scenario() -> tuple[int, bytes]:
        origin = await asyncio.start_server(_echo_host, "127.0.0.1", 0)
        port = origin.sockets[0].getsockname()[1]
        proxy = await asyncio.start_server(MirrorProxy({"127.0.0.1"}, ports={port}).serve, "127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.sockets[0].getsockname()[1])
            writer.write(f"GET http://127.0.0.1:{port}/x HTTP/1.1\r\nHost: internal.example\r\n"
                         "HOST: other.example\r\nAccept: */*\r\n\r\n".encode())
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return port, data
        finally:
            proxy.close()
            origin.close()

    port, response = asyncio.run(scenario())
    assert response.startswith(b"HTTP/1.1 200 OK")
    assert response.split(b"\r\n\r\n", 1)[1] == f"Host: 127.0.0.1:{port}".encode()
