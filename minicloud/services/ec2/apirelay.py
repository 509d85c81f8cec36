"""minicloud's AWS endpoint inside every VPC: a TCP relay listening in the VPC's router namespace
at ``169.254.169.250:<minicloud's port>`` (a link-local service address, like the metadata
service's) to minicloud's own listener on the host. Code in an instance (the AWS CLI with
``--endpoint-url http://169.254.169.250:4566``, an SDK) reaches the APIs with the instance profile
credentials the metadata service hands out. The bytes pass through untouched (SigV4 signs the Host
the client used)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

log = logging.getLogger("minicloud.ec2")

RELAY_ADDRESS = "169.254.169.250"
CHUNK = 64 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()


class ApiRelay:
    def __init__(self, host: str, port: int) -> None:
        self.host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        self.port = port
        self._servers: dict[str, asyncio.Server] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def serve(self, vpc_id: str, sock: socket.socket) -> None:
        await self.stop_serving(vpc_id)
        sock.setblocking(False)
        self._servers[vpc_id] = await asyncio.start_server(self._connection, sock=sock)

    async def _connection(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            log.warning("API relay: cannot reach %s:%d: %s", self.host, self.port, exc)
            client_writer.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))
        finally:
            for writer in (client_writer, upstream_writer):
                writer.close()
            self._tasks.discard(task)

    async def stop_serving(self, vpc_id: str) -> None:
        server = self._servers.pop(vpc_id, None)
        if server is not None:
            server.close()

    async def close(self) -> None:
        for vpc_id in list(self._servers):
            await self.stop_serving(vpc_id)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
