"""Processes the engine streams to and from while they run (``docker exec``, healthchecks).

Not asyncio's subprocesses: under uvloop they fork the whole minicloud process (page tables of
hundreds of MiB copied with the GIL held, the event loop stalled meanwhile). Here the process is
started by ``subprocess.Popen`` in a worker thread, which uses ``vfork`` (nothing copied), its
pipes are wrapped in asyncio streams, and its exit is seen through a pidfd, reaped at once
whether or not anyone waits for it. ``Spawned`` answers what ``asyncio.subprocess.Process`` does
for the engine's uses (``stdin``, ``stdout``, ``stderr``, ``pid``, ``returncode``, ``wait``, ``kill``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from typing import IO, Any

PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
STREAM_LIMIT = 64 * 1024  # asyncio's default line limit


class Spawned:
    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self.pid = popen.pid
        self.stdin: asyncio.StreamWriter | None = None
        self.stdout: asyncio.StreamReader | None = None
        self.stderr: asyncio.StreamReader | None = None
        self._loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = self._loop.create_future()
        self._pidfd = os.pidfd_open(popen.pid)
        self._loop.add_reader(self._pidfd, self._reap)

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    def _reap(self) -> None:
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        code = self._popen.wait()  # it has exited: no wait
        if not self._exited.done():
            self._exited.set_result(code)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def send_signal(self, sig: int) -> None:
        if self._popen.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._popen.send_signal(sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


async def spawn(argv: Sequence[str], *, stdin: int | None = None, stdout: int | None = None,
                stderr: int | None = None, start_new_session: bool = False) -> Spawned:
    """Start ``argv``; ``PIPE`` gives a stream on that side, ``DEVNULL`` /dev/null, None ours."""
    popen = await asyncio.to_thread(subprocess.Popen, list(argv), stdin=stdin, stdout=stdout, stderr=stderr,
                                    bufsize=0, start_new_session=start_new_session)
    try:
        process = Spawned(popen)
        loop = asyncio.get_running_loop()
        if popen.stdin is not None:
            process.stdin = await _writer(loop, popen.stdin)
        if popen.stdout is not None:
            process.stdout = await _reader(loop, popen.stdout)
        if popen.stderr is not None:
            process.stderr = await _reader(loop, popen.stderr)
    except BaseException:
        popen.kill()
        await asyncio.to_thread(popen.wait)
        raise
    return process


async def _reader(loop: asyncio.AbstractEventLoop, pipe: IO[bytes]) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=STREAM_LIMIT, loop=loop)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), pipe)
    return reader


async def _writer(loop: asyncio.AbstractEventLoop, pipe: IO[bytes]) -> asyncio.StreamWriter:
    transport, protocol = await loop.connect_write_pipe(lambda: _WriteProtocol(loop), pipe)
    return asyncio.StreamWriter(transport, protocol, None, loop)


class _WriteProtocol(asyncio.streams.FlowControlMixin):
    """A write pipe's protocol with ``drain`` (flow control) and ``wait_closed``."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop=loop)
        self._closed: asyncio.Future[None] = loop.create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self._closed.done():
            self._closed.set_result(None)

    def _get_close_waiter(self, stream: Any) -> asyncio.Future[None]:
        return self._closed
