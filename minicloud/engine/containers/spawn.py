"""Processes the engine streams to and from while they run (``docker exec``, healthchecks).

Not asyncio's subprocesses: under uvloop they fork the whole minicloud process (page tables of
hundreds of MiB copied with the GIL held, the event loop stalled meanwhile). Here the process is
started by ``subprocess.Popen`` in a worker thread, which uses ``vfork`` (nothing copied), its
pipes are read and written from the event loop's callbacks (each descriptor owned by its ``Popen``
file object alone, and closed once), and its exit is seen through a pidfd, reaped at once
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
from typing import IO

PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
STREAM_LIMIT = 64 * 1024  # asyncio's default line limit
READ_SIZE = 64 * 1024
WRITE_HIGH_WATER = 64 * 1024  # asyncio's default for a transport: drain waits above it


class Spawned:
    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self.pid = popen.pid
        self.stdin: PipeWriter | None = None
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
    readings: list[_PipeReading] = []
    try:
        process = Spawned(popen)
        loop = asyncio.get_running_loop()
        if popen.stdin is not None:
            process.stdin = PipeWriter(loop, popen.stdin)
        if popen.stdout is not None:
            process.stdout = asyncio.StreamReader(limit=STREAM_LIMIT, loop=loop)
            readings.append(_PipeReading(loop, popen.stdout, process.stdout))
        if popen.stderr is not None:
            process.stderr = asyncio.StreamReader(limit=STREAM_LIMIT, loop=loop)
            readings.append(_PipeReading(loop, popen.stderr, process.stderr))
    except BaseException:
        for reading in readings:
            reading.close()
        for pipe in (popen.stdin, popen.stdout, popen.stderr):
            if pipe is not None:
                pipe.close()
        popen.kill()
        await asyncio.to_thread(popen.wait)
        raise
    return process


class _PipeReading(asyncio.ReadTransport):
    """A child's output pipe fed into a ``StreamReader`` by the event loop's reader callback, paused
    and resumed by the reader's flow control. The pipe's file object (the ``Popen``'s) stays the
    descriptor's only owner: closed once, at the end of the output (or by ``close``).

    Not ``loop.connect_read_pipe``: uvloop's pipe transport closes the descriptor itself and then
    closes the file object it was given, which closes the same number a second time (at the
    transport's close, or when the garbage collector gets to it, in whichever thread it runs).
    Another thread may have been given that number in between: the engine's rtnetlink socket was,
    and a ``docker run`` failed with ENOTSOCK."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pipe: IO[bytes], reader: asyncio.StreamReader) -> None:
        super().__init__()
        self._loop = loop
        self._pipe = pipe
        self._fd = pipe.fileno()
        self._reader = reader
        self._reading = False
        os.set_blocking(self._fd, False)
        reader.set_transport(self)
        self.resume_reading()

    def is_reading(self) -> bool:
        return self._reading

    def pause_reading(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def resume_reading(self) -> None:
        if not self._reading and not self._pipe.closed:
            self._loop.add_reader(self._fd, self._readable)
            self._reading = True

    def is_closing(self) -> bool:
        return self._pipe.closed

    def close(self) -> None:
        self.pause_reading()  # no callback is left on a descriptor once closed
        self._pipe.close()

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.close()
            self._reader.set_exception(exc)
            return
        if data:
            self._reader.feed_data(data)
        else:
            self.close()
            self._reader.feed_eof()


class PipeWriter:
    """A child's input pipe, with what ``asyncio.StreamWriter`` answers for the engine's uses
    (``write``, ``drain``, ``close``, ``is_closing``, ``wait_closed``). Written from the event loop
    with ``os.write``; what a full pipe does not take waits for the loop's writer callback. The
    pipe's file object stays the descriptor's only owner (not ``loop.connect_write_pipe``: see
    ``_PipeReading``), closed once: after ``close`` when what was written has gone, or at once
    when the child has gone (``drain`` raises then; later writes are dropped, as a closed
    transport's are)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pipe: IO[bytes]) -> None:
        self._loop = loop
        self._pipe = pipe
        self._fd = pipe.fileno()
        self._buffer = bytearray()
        self._writing = False
        self._closing = False
        self._error: OSError | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._closed: asyncio.Future[None] = loop.create_future()
        os.set_blocking(self._fd, False)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._error is not None or not data:
            return
        if not self._buffer:
            try:
                written = os.write(self._fd, data)
            except (BlockingIOError, InterruptedError):
                written = 0
            except OSError as exc:
                self._fail(exc)
                return
            data = memoryview(data)[written:]
            if not data:
                return
        self._buffer += data
        if not self._writing:
            self._loop.add_writer(self._fd, self._writable)
            self._writing = True

    async def drain(self) -> None:
        while True:
            if self._error is not None:
                raise ConnectionResetError(self._error.errno, f"the process's input is closed: {self._error}")
            if len(self._buffer) <= WRITE_HIGH_WATER or self._pipe.closed:
                return
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            await waiter

    def is_closing(self) -> bool:
        return self._closing or self._error is not None

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if not self._buffer:
            self._finish()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    def _writable(self) -> None:
        try:
            written = os.write(self._fd, self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(exc)
            return
        del self._buffer[:written]
        if not self._buffer and self._closing:
            self._finish()
        elif not self._buffer:
            self._loop.remove_writer(self._fd)
            self._writing = False
        if len(self._buffer) <= WRITE_HIGH_WATER:
            self._wake()

    def _fail(self, exc: OSError) -> None:
        self._error = exc
        self._buffer.clear()
        self._finish()

    def _finish(self) -> None:
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False
        self._pipe.close()
        if not self._closed.done():
            self._closed.set_result(None)
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
