"""The build network: RUN steps reach the Debian package mirror, and nothing else.

A build's RUN containers join a network namespace of the engine's own (loopback only; nothing
routes out of it). Inside it, on ``127.0.0.1:3142``, listens a forward proxy whose socket was made
in that namespace while its upstream connections leave from minicloud's own: plain HTTP requests
in absolute form and CONNECT tunnels (port 443), only to the package mirror hosts that the host's
apt is configured with (and ``deb.debian.org``, ``security.debian.org``). RUN steps get
``http_proxy``/``https_proxy`` pointing at it, as Docker passes its predefined proxy arguments:
neither kept in the image nor part of a cache key. One request per client connection
(``Connection: close``); apt and pip reconnect as they need.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import uuid
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from minicloud.engine.network import netns

log = logging.getLogger("minicloud.engine.build")

PROXY_PORT = 3142
PROXY_URL = f"http://127.0.0.1:{PROXY_PORT}"
DEFAULT_MIRRORS = frozenset({"deb.debian.org", "security.debian.org"})
_HEAD_LIMIT = 64 * 1024
_HOP_HEADERS = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer",
                          "upgrade"})
_URI = re.compile(r"(?:^|\s)(https?://[^\s\]]+)")


def mirror_hosts(apt_dir: Path = Path("/etc/apt")) -> frozenset[str]:
    """The hosts of the host's apt sources (one-line ``.list`` and deb822 ``.sources`` files)."""
    hosts = set(DEFAULT_MIRRORS)
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list")),
             *sorted((apt_dir / "sources.list.d").glob("*.sources"))]
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            line = line.split("#", 1)[0]
            if not line.strip().startswith(("deb", "URIs:")):
                continue
            for uri in _URI.findall(line):
                host = urlsplit(uri).hostname
                if host:
                    hosts.add(host.lower())
    return frozenset(hosts)


def proxy_environment() -> list[str]:
    return [f"{name}={PROXY_URL}" for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")]


class MirrorProxy:
    """A forward proxy limited to ``hosts`` and ``ports``."""

    def __init__(self, hosts: Iterable[str], ports: Iterable[int] = (80, 443)) -> None:
        self.hosts = frozenset(h.lower() for h in hosts)
        self.ports = frozenset(ports)

    def allowed(self, host: str, port: int) -> bool:
        return host.lower().rstrip(".") in self.hosts and port in self.ports

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            await self._forward(head, reader, writer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _forward(self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        if method == "CONNECT":
            host, _, port_text = target.rpartition(":")
            port = int(port_text) if port_text.isdigit() else 443
            upstream_head = b""
        else:
            parts = urlsplit(target)
            if parts.scheme != "http" or not parts.hostname:
                return await self._refuse(writer, 400, "a proxy request needs an absolute http:// URL")
            host, port = parts.hostname, parts.port or 80
            path = parts.path or "/"
            # The upstream sees the Host that was checked, never one of the client's choosing (a virtual
            # host on the mirror's address that is not the mirror).
            headers = [f"Host: {_host_header(host, port)}"]
            headers += [line for line in lines[1:] if line and line.split(":", 1)[0].strip().lower()
                        not in _HOP_HEADERS | {"host"}]
            request = [f"{method} {path}{'?' + parts.query if parts.query else ''} HTTP/1.1", *headers,
                       "Connection: close"]
            upstream_head = ("\r\n".join(request) + "\r\n\r\n").encode("latin-1")
        host = host.strip("[]")
        if not self.allowed(host, port):
            return await self._refuse(writer, 403, f"minicloud's build network reaches only the package mirror "
                                                   f"({', '.join(sorted(self.hosts))}), not {host}:{port}")
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
        except (OSError, TimeoutError) as exc:
            return await self._refuse(writer, 502, f"cannot reach {host}:{port}: {exc}")
        try:
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
            else:
                up_writer.write(upstream_head)
                await up_writer.drain()
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()

    @staticmethod
    async def _refuse(writer: asyncio.StreamWriter, status: int, message: str) -> None:
        reason = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[status]
        body = (message + "\n").encode()
        writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                     "Connection: close\r\n\r\n".encode() + body)
        await writer.drain()


def _host_header(host: str, port: int) -> str:
    name = f"[{host.strip('[]')}]" if ":" in host else host
    return name if port == 80 else f"{name}:{port}"


async def _pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(1 << 16):
            target.write(data)
            await target.drain()
        if target.can_write_eof():
            target.write_eof()
    except (ConnectionError, OSError):
        pass


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", PROXY_PORT))
    sock.listen(64)
    sock.setblocking(False)
    return sock


class BuildNetwork:
    """One build's namespace (``<netns dir>/build-<id>``) with the mirror proxy inside."""

    def __init__(self, netns_dir: Path) -> None:
        self.path = netns_dir / f"build-{uuid.uuid4().hex[:16]}"
        self._server: asyncio.AbstractServer | None = None

    @property
    def network_mode(self) -> str:
        return f"ns:{self.path}"

    async def start(self) -> None:
        await asyncio.to_thread(netns.create, self.path)
        try:
            await netns.run_ip(self.path, ["link set lo up"])
            thread = netns.NamespaceThread(self.path)
            try:
                sock = await thread.call(_listening_socket)
            finally:
                thread.close()
            proxy = MirrorProxy(await asyncio.to_thread(mirror_hosts))
            self._server = await asyncio.start_server(proxy.serve, sock=sock, limit=_HEAD_LIMIT)
        except BaseException:
            await asyncio.to_thread(netns.remove, self.path)
            raise

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None
        await asyncio.to_thread(netns.remove, self.path)
