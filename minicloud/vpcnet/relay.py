"""TCP relays from a router's service address to an endpoint of the host: what an instance needs
to reach a service of minicloud itself (its API, as an AWS interface VPC endpoint would) although
nothing routes from a VPC to the host. The listening socket lives in the router's namespace; each
connection is carried to the target by a socket of the host's namespace (the event loop's)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

log = logging.getLogger("minicloud.vpcnet")
CONNECT_TIMEOUT = 10.0
CHUNK = 65536


class Relay:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_server(self._accepted, sock=sock)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            try:
                up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*self.target), CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                log.info("relay to %s:%d: %s", *self.target, exc)
                return
            try:
                await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))
            finally:
                up_writer.close()
        finally:
            writer.close()
            self._connections.discard(task)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Bytes one way until end of file, which is passed on (a half close)."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()
