"""S3 workers: processes forked from the API server that answer signed S3 requests.

One Python process answers on one core. An S3 worker is forked from the primary once the code is
imported and before any thread or event loop exists (so it shares the imported code's pages with
the primary, copy-on-write), then opens the metadata store and builds its own S3 provider, with
IAM and STS to authenticate and authorize. It never accepts connections: the primary passes it
the connections whose first request is a signed S3 read (``server.handoff``), round-robin with
itself (a connection that starts with a write stays with the primary: ``PrimarySwitch``), and it
passes back any connection whose next request is not for S3. The first worker also hosts the
small-blob writer every process shares (``storage.blobs.writerproc``). Everything S3
keeps lives in the metadata and blob stores, shared by all processes: what a worker keeps in
memory (buckets, IAM policies, credentials) is checked against the store's change epoch
(``storage.metadata.epoch``), so a change made through any process is seen at once, and a blob's
reference count changes under a lock every process honours (``services.s3.blob_locks``). Workers
run no controllers and no start-up clean-up: those are the primary's.

Life cycle: a worker waits for ``go`` (sent once the primary has migrated the metadata store),
serves until its channel to the primary closes (the primary stopped or died: the kernel closes
it), then finishes the requests in flight and exits. The primary stops its workers by closing the
channels and waiting for them by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from minicloud.server.asgi import ASGIApp
from minicloud.server.handoff import channel_pair, is_signed_s3, receive_connections
from minicloud.server.protocol import HttpProtocol, bounded_protocol

log = logging.getLogger("minicloud.server.workers")

_GO = b"go"
_READS = (b"GET ", b"HEAD ")  # the requests a fresh connection may start with to be handed to a worker
STOP_SECONDS = 10.0  # how long a stopping worker may finish its requests before it is killed


def worker_count(setting: int | None) -> int:
    """How many S3 workers ``s3_workers`` asks for: None (the default) one when the machine has
    another core; -1 one per core beyond the first (at most 7); else that many."""
    spare = max(0, (os.cpu_count() or 1) - 1)
    if setting is None:
        return min(1, spare)
    return min(7, spare) if setting < 0 else setting


class S3Workers:
    """The primary's side of its S3 workers."""

    def __init__(self) -> None:
        self.channels: list[socket.socket] = []
        self.pids: list[int] = []

    @classmethod
    def fork(cls, count: int, serve: Callable[[socket.socket, int], int]) -> S3Workers:
        """Fork ``count`` workers, worker i running ``serve(channel, i)``. Call before any thread starts."""
        workers = cls()
        if count <= 0:
            return workers
        if threading.active_count() > 1:  # a fork would copy locks other threads hold
            log.warning("not starting S3 workers: %d threads are running already", threading.active_count())
            return workers
        # The imported code, out of the collector's sight: a collection in either process would
        # otherwise write to (and so un-share) every page of it.
        gc.collect()
        gc.freeze()
        for index in range(count):
            mine, theirs = channel_pair()
            pid = os.fork()
            if pid == 0:  # the worker
                code = 1
                try:
                    mine.close()
                    for channel in workers.channels:
                        channel.close()
                    code = serve(theirs, index)
                except BaseException:
                    log.exception("the S3 worker failed")
                finally:
                    logging.shutdown()
                    os._exit(code)
            theirs.close()
            workers.channels.append(mine)
            workers.pids.append(pid)
        return workers

    def start(self) -> None:
        """Let the workers open the metadata store (migrated by now)."""
        for channel in self.channels:
            with contextlib.suppress(OSError):
                channel.send(_GO)

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Close the channels (each worker then ends) and wait for the workers, killing late ones."""
        for channel in self.channels:
            with contextlib.suppress(OSError):
                channel.close()
        deadline = time.monotonic() + timeout
        for pid in self.pids:
            while True:
                try:
                    done, _status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    break
                if done:
                    break
                if time.monotonic() > deadline:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, 0)
                    break
                time.sleep(0.02)
        self.channels.clear()
        self.pids.clear()


class PrimarySwitch:
    """The primary's switch: a fresh connection whose first request is a signed S3 read (GET or
    HEAD) goes to the next worker in turn (the primary's own turn included); one that starts with
    a write stays here. Connections come back here.

    Why writes stay: the metadata store has one writer at a time. Processes that both write take
    turns at its lock, and each group-commits half the batch it would alone: 4 KiB PUTs at 16
    connections went from ~2,050 to ~1,700-1,900 a second with one worker taking half the
    connections. Reads spread and writes stay, so a worker adds reads without costing writes."""

    every_request = False

    def __init__(self, workers: S3Workers) -> None:
        self.channels = list(workers.channels)
        self._turn = 0
        self._attached = False

    def divert(self, head: bytes) -> socket.socket | None:
        if not self.channels or not head.startswith(_READS) or not is_signed_s3(head):
            return None
        turn = self._turn
        self._turn = (turn + 1) % (len(self.channels) + 1)
        return self.channels[turn] if turn < len(self.channels) else None

    def attach(self, protocol: HttpProtocol) -> None:
        """On the first connection: listen for connections the workers pass back."""
        if self._attached:
            return
        self._attached = True
        for channel in self.channels:
            _listen(protocol.loop, channel, _factory_like(protocol), on_closed=self._lost(channel))

    def _lost(self, channel: socket.socket) -> Callable[[], None]:
        def lost() -> None:
            log.warning("an S3 worker has gone; its share of S3 requests is served here")
            with contextlib.suppress(ValueError):
                self.channels.remove(channel)
            self._turn = 0
        return lost


class WorkerSwitch:
    """A worker's switch: keeps signed S3 requests, passes anything else back to the primary."""

    every_request = True

    def __init__(self, channel: socket.socket) -> None:
        self.channel = channel

    def divert(self, head: bytes) -> socket.socket | None:
        return None if is_signed_s3(head) else self.channel

    def attach(self, protocol: HttpProtocol) -> None:
        return None


def _factory_like(protocol: HttpProtocol) -> Callable[[], HttpProtocol]:
    kind, config, state, app_state, loop = type(protocol), protocol.config, protocol.server_state, \
        protocol.app_state, protocol.loop
    return lambda: kind(config, state, app_state, loop)


def _listen(loop: asyncio.AbstractEventLoop, channel: socket.socket, factory: Callable[[], HttpProtocol],
            on_closed: Callable[[], None]) -> None:
    """Adopt every connection that arrives on ``channel``; ``on_closed`` when the other end goes."""
    channel.setblocking(False)

    def readable() -> None:
        received = receive_connections(channel)
        if received is None:
            loop.remove_reader(channel.fileno())
            on_closed()
            return
        for sock, carried in received:
            loop.create_task(_adopt(loop, factory, sock, carried))

    loop.add_reader(channel.fileno(), readable)


async def _adopt(loop: asyncio.AbstractEventLoop, factory: Callable[[], HttpProtocol], sock: socket.socket,
                 carried: bytes) -> None:
    protocol = factory()
    protocol.carried = carried
    try:
        await loop.connect_accepted_socket(lambda: protocol, sock)
    except OSError as exc:  # the client went away meanwhile
        log.debug("a handed-over connection could not be adopted: %s", exc)
        sock.close()


# -- the worker's side --------------------------------------------------------------------------
@dataclass
class _ServerState:
    """What minicloud's HttpProtocol uses of uvicorn's server state."""

    connections: set[Any] = field(default_factory=set)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    total_requests: int = 0
    default_headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass
class _ProtocolConfig:
    """What minicloud's HttpProtocol uses of uvicorn's configuration."""

    loaded_app: ASGIApp
    timeout_keep_alive: float
    loaded: bool = True

    def load(self) -> None:
        return None


def serve_s3(channel: socket.socket, build: Callable[[], Awaitable[ASGIApp]], max_head_bytes: int,
                keep_alive_seconds: float) -> int:
    """A worker's life: wait for ``go``, build the application, serve handed-over connections."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the primary decides
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    channel.setblocking(True)
    try:
        if channel.recv(16) != _GO:
            return 0  # the primary stopped before starting us
    except OSError:
        return 0
    try:
        import uvloop

        uvloop.run(_serve(channel, build, max_head_bytes, keep_alive_seconds))
    except ImportError:  # pragma: no cover
        asyncio.run(_serve(channel, build, max_head_bytes, keep_alive_seconds))
    return 0


async def _serve(channel: socket.socket, build: Callable[[], Awaitable[ASGIApp]], max_head_bytes: int,
                 keep_alive_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    app = await build()
    state = _ServerState()
    protocol_class = bounded_protocol(max_head_bytes, WorkerSwitch(channel))
    config = _ProtocolConfig(app, keep_alive_seconds)
    closed: asyncio.Future[None] = loop.create_future()

    def refresh_date() -> None:
        state.default_headers = [(b"date", formatdate(usegmt=True).encode())]
        if not closed.done():
            loop.call_later(1.0, refresh_date)

    def on_closed() -> None:
        if not closed.done():
            closed.set_result(None)

    refresh_date()
    _listen(loop, channel, lambda: protocol_class(config, state, {}, loop), on_closed)
    await closed
    # The primary is gone or stopping: finish what is in flight, then close every connection.
    for connection in list(state.connections):
        connection.shutdown()
    deadline = loop.time() + STOP_SECONDS
    while (state.connections or state.tasks) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    shutdown = getattr(app, "shutdown", None)
    if shutdown is not None:
        await shutdown()
