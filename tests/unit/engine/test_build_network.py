"""The build network's mirror proxy: absolute-form HTTP requests and CONNECT tunnels to the
allowed hosts only; the mirror hosts read from apt's sources."""

from __future__ import annotations

import asyncio
from pathlib import Path

from minicloud.engine.build.network import DEFAULT_MIRRORS, MirrorProxy, mirror_hosts


async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    first = head.split(b"\r\n")[0].decode()
    body = f"seen: {first} close={b'Connection: close' in head}".encode()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))
    await writer.drain()
    writer.close()


async def through_proxy(proxy_port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


def test_proxy_forwards_allowed_hosts_and_refuses_others() -> None:
    async def scenario() -> None:
        origin = await asyncio.start_server(upstream, "127.0.0.1", 0)
        port = origin.sockets[0].getsockname()[1]
        proxy = MirrorProxy({"127.0.0.1"}, ports={port})
        server = await asyncio.start_server(proxy.serve, "127.0.0.1", 0)
        proxy_port = server.sockets[0].getsockname()[1]
        try:
            ok = await through_proxy(proxy_port, f"GET http://127.0.0.1:{port}/debian/Release?x=1 HTTP/1.1\r\n"
                                                 f"Host: 127.0.0.1:{port}\r\nProxy-Connection: keep-alive\r\n\r\n"
                                                 .encode())
            assert ok.startswith(b"HTTP/1.1 200 OK") and b"seen: GET /debian/Release?x=1 HTTP/1.1 close=True" in ok
            refused = await through_proxy(proxy_port, b"GET http://192.0.2.1/ HTTP/1.1\r\nHost: 192.0.2.1\r\n\r\n")
            assert refused.startswith(b"HTTP/1.1 403 Forbidden") and b"reaches only the package mirror" in refused
            wrong_port = await through_proxy(proxy_port, b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n")
            assert wrong_port.startswith(b"HTTP/1.1 403")
            tunnel = await through_proxy(proxy_port, f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\nGET /in HTTP/1.1\r\n"
                                                     "\r\n".encode())
            assert tunnel.startswith(b"HTTP/1.1 200 Connection established") and b"seen: GET /in" in tunnel
        finally:
            server.close()
            origin.close()

    asyncio.run(scenario())


def test_mirror_hosts_from_apt_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb http://mirror.example.org/debian bookworm main\n"
                                           "# deb http://commented.example.org/debian bookworm main\n")
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb822.example.net/debian\nSuites: bookworm\n")
    (tmp_path / "sources.list.d" / "extra.list").write_text("deb [arch=amd64] https://extra.example.com/apt x y\n")
    hosts = mirror_hosts(tmp_path)
    assert hosts == DEFAULT_MIRRORS | {"mirror.example.org", "deb822.example.net", "extra.example.com"}
