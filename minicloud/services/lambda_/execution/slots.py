"""Network slots: each execution environment runs in a network namespace of its own that holds
nothing but loopback. minicloud creates two listening sockets *inside* that namespace (from a
thread that has entered it): the Lambda Runtime API on 127.0.0.1:9001 and a relay on
127.0.0.1:<minicloud's port> to minicloud's AWS endpoint. So ``AWS_LAMBDA_RUNTIME_API`` and
``AWS_ENDPOINT_URL`` work unchanged for any runtime client, the function can reach nothing else,
and no interface, address, route or firewall rule is added to the host.

Namespaces are made ahead of need (a few spare ones) and reused once their environment is gone,
so a cold start does not wait for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from pathlib import Path
from typing import Any

from minicloud.engine.network import netns
from minicloud.engine.snapshots.mounts import unmount
from minicloud.services.lambda_.execution.http import Handler, serve_connection
from minicloud.services.lambda_.execution.spec import RUNTIME_API_PORT

log = logging.getLogger("minicloud.lambda")
MAX_RUNTIME_BODY = 7 * 1024 * 1024  # a little over the 6 MB response limit, which is checked by the API


class Slot:
    """One namespace and its two listeners. ``handler`` answers the Runtime API for whichever
    environment currently occupies the slot."""

    def __init__(self, index: int, path: Path) -> None:
        self.index = index
        self.path = path
        self.handler: Handler | None = None
        self._servers: list[asyncio.Server] = []
        self._relays: set[asyncio.Task[None]] = set()

    async def open(self, aws_port: int) -> None:
        await asyncio.to_thread(netns.create, self.path)
        await netns.run_ip(self.path, ["link set lo up"])
        thread = netns.NamespaceThread(self.path)
        try:
            api_sock = await thread.call(lambda: _listen(RUNTIME_API_PORT))
            relay_sock = await thread.call(lambda: _listen(aws_port))
        finally:
            thread.close()
        self._servers.append(await asyncio.start_server(self._serve_api, sock=api_sock))
        self._servers.append(await asyncio.start_server(
            lambda r, w: self._spawn(_relay(r, w, aws_port)), sock=relay_sock))

    async def _serve_api(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def dispatch(request: Any) -> Any:
            from minicloud.services.lambda_.execution.http import Response
            if self.handler is None:
                return Response(403, b'{"errorMessage":"no environment","errorType":"Forbidden"}')
            return await self.handler(request)
        await serve_connection(reader, writer, dispatch, MAX_RUNTIME_BODY)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._relays.add(task)
        task.add_done_callback(self._relays.discard)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._relays):
            task.cancel()
        self._servers.clear()
        await asyncio.to_thread(netns.remove, self.path)


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    sock.setblocking(False)
    return sock


async def _relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int) -> None:
    """Carry one connection from the environment to minicloud's endpoint on the host's loopback."""
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        writer.close()
        return

    async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.close()

    await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


class SlotPool:
    """Namespaces under ``<data-dir>/lambda/netns``; ``spare`` are kept ready."""

    def __init__(self, directory: Path, aws_port: int, spare: int = 2) -> None:
        self.directory = directory
        self.aws_port = aws_port
        self.spare = spare
        self._free: list[Slot] = []
        self._all: dict[int, Slot] = {}
        self._next = 0
        self._filling: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await asyncio.to_thread(netns.private_directory, self.directory)
        for stale in self.directory.iterdir():  # left by a crash: nothing runs in them any more
            with contextlib.suppress(OSError, netns.NetworkSetupFailed):
                await asyncio.to_thread(netns.remove, stale)
        self._refill()

    async def acquire(self) -> Slot:
        if self._free:
            slot = self._free.pop()
        else:
            slot = await self._make()
        self._refill()
        return slot

    def release(self, slot: Slot) -> None:
        slot.handler = None
        self._free.append(slot)

    def discard(self, slot: Slot) -> None:
        """A slot that must not be reused (its environment's container could not be removed): its
        listeners are closed and its namespace removed, in the background; a new one takes its place."""
        slot.handler = None
        self._all.pop(slot.index, None)
        if slot in self._free:
            self._free.remove(slot)
        task = asyncio.get_running_loop().create_task(self._close(slot))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        self._refill()

    @staticmethod
    async def _close(slot: Slot) -> None:
        try:
            await slot.close()
        except Exception:
            log.exception("removing a discarded Lambda network namespace failed")

    async def _make(self) -> Slot:
        async with self._lock:
            index = self._next
            self._next += 1
        slot = Slot(index, self.directory / f"env{index}")
        opening = asyncio.ensure_future(slot.open(self.aws_port))
        try:
            await asyncio.shield(opening)
        except BaseException:
            # Cancelled (e.g. at shutdown) or failed: let the threads finish what they started,
            # then undo it, so that no namespace is left behind.
            with contextlib.suppress(BaseException):
                await opening
            with contextlib.suppress(Exception):
                await slot.close()
            raise
        self._all[index] = slot
        return slot

    def _refill(self) -> None:
        if self._filling is None or self._filling.done():
            self._filling = asyncio.get_running_loop().create_task(self._fill())

    async def _fill(self) -> None:
        while len(self._free) < self.spare:
            try:
                self._free.append(await self._make())
            except Exception:
                log.exception("preparing a Lambda network namespace failed")
                return

    async def close(self) -> None:
        if self._filling is not None:
            self._filling.cancel()
            with contextlib.suppress(BaseException):
                await self._filling
        for slot in list(self._all.values()):
            try:
                await slot.close()
            except Exception:
                log.exception("removing a Lambda network namespace failed")
        self._all.clear()
        self._free.clear()
        await asyncio.gather(*self._closing, return_exceptions=True)  # discarded slots going away
        for stale in list(self.directory.iterdir()) if self.directory.is_dir() else []:  # anything untracked
            with contextlib.suppress(OSError, netns.NetworkSetupFailed):
                await asyncio.to_thread(netns.remove, stale)
        await asyncio.to_thread(unmount, self.directory)  # the private mount ``start`` made
