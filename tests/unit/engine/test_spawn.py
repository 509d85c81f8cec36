"""Processes spawned for streaming (``docker exec``, healthchecks): pipes as asyncio streams, the
exit seen through a pidfd and reaped whether or not anyone waits. Under both event loops the
engine may run on (the server's is uvloop's)."""

from __future__ import annotations

import asyncio
import gc
import io
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
import uvloop

from minicloud.engine.containers.spawn import DEVNULL, PIPE, spawn

T = TypeVar("T")
LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, T]], T]:
    def runner(coro: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=LOOPS[request.param]) as r:
            return r.run(coro)

    return runner


def test_streams_and_exit_code(run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    async def scenario() -> tuple[bytes, bytes, int]:
        proc = await spawn(["/bin/sh", "-c", "read x; echo out:$x; echo err >&2; exit 3"],
                           stdin=PIPE, stdout=PIPE, stderr=PIPE)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.write(b"hello\n")
        await proc.stdin.drain()
        proc.stdin.close()
        out, err = await asyncio.gather(proc.stdout.read(), proc.stderr.read())
        return out, err, await proc.wait()

    assert run(scenario()) == (b"out:hello\n", b"err\n", 3)


def test_large_streams_both_ways_with_a_slow_reader(run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    """More than a pipe holds in, and out to a reader that falls behind (flow control)."""
    payload = os.urandom(1 << 20)

    async def scenario() -> tuple[bytes, bytes, int]:
        proc = await spawn(["/bin/cat"], stdin=PIPE, stdout=PIPE, stderr=PIPE)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None

        async def feed() -> None:
            assert proc.stdin is not None
            for start in range(0, len(payload), 100_000):
                proc.stdin.write(payload[start:start + 100_000])
                await proc.stdin.drain()
            proc.stdin.close()

        async def slowly() -> bytes:
            assert proc.stdout is not None
            chunks = []
            while chunk := await proc.stdout.read(300_000):
                chunks.append(chunk)
                await asyncio.sleep(0.01)
            return b"".join(chunks)

        _, out, err = await asyncio.gather(feed(), slowly(), proc.stderr.read())
        return out, err, await proc.wait()

    assert run(scenario()) == (payload, b"", 0)


def test_writing_to_a_child_that_has_gone(run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    async def scenario() -> int:
        proc = await spawn(["/bin/true"], stdin=PIPE, stdout=DEVNULL, stderr=DEVNULL)
        assert proc.stdin is not None
        code = await proc.wait()
        with pytest.raises(ConnectionError):
            for _ in range(100):
                proc.stdin.write(b"x" * 65536)
                await proc.stdin.drain()
        proc.stdin.write(b"dropped")  # as a closed transport does
        proc.stdin.close()
        return code

    assert run(scenario()) == 0


class _WatchedPipe(io.FileIO):
    """A pipe's file object that notes, when closed, whether its descriptor was still open: one
    already closed was closed by number by someone else, and that number is free for any thread
    to reuse. Then a socket (the rtnetlink socket of another thread, say) takes the number as
    such a thread would, and the owner's close is seen closing it."""

    closes: list[tuple[int, bool, bool]] = []  # descriptor, still open, a reuser's socket survived

    def close(self) -> None:
        if self.closed:
            return
        fd = self.fileno()
        still_open = _is_open(fd)
        if not still_open:  # the reuser's socket, held at ``fd`` by number
            reuser = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            if reuser.fileno() == fd:
                reuser.detach()
            else:
                os.dup2(reuser.fileno(), fd, inheritable=False)
                reuser.close()
        try:
            super().close()
        finally:
            survived = True
            if not still_open:
                survived = _is_open(fd)
                if survived:
                    os.close(fd)
            _WatchedPipe.closes.append((fd, still_open, survived))


class _WatchedPopen(subprocess.Popen):  # type: ignore[type-arg]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, mode in (("stdin", "wb"), ("stdout", "rb"), ("stderr", "rb")):
            pipe = getattr(self, name)
            if pipe is not None:
                setattr(self, name, _WatchedPipe(os.dup(pipe.fileno()), mode))
                pipe.close()


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_each_pipe_is_closed_once_by_its_owner(run: Callable[[Coroutine[Any, Any, Any]], Any],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: uvloop's pipe transports close the descriptor themselves, then close the file
    object they were given, which closes the same number again (when the transport is closed,
    and when it is collected: by whichever thread the garbage collector runs in). Meanwhile
    another thread may have been given that number: the engine's rtnetlink socket was, and
    ``docker run`` failed with ENOTSOCK once a file had taken the number in turn."""
    monkeypatch.setattr(subprocess, "Popen", _WatchedPopen)
    _WatchedPipe.closes.clear()

    async def scenario() -> tuple[bytes, bytes]:
        proc = await spawn(["/bin/sh", "-c", "read x; echo out:$x; echo err >&2"],
                           stdin=PIPE, stdout=PIPE, stderr=PIPE)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.write(b"hello\n")
        await proc.stdin.drain()
        proc.stdin.close()
        out, err = await asyncio.gather(proc.stdout.read(), proc.stderr.read())
        await proc.wait()
        return out, err

    assert run(scenario()) == (b"out:hello\n", b"err\n")
    gc.collect()  # file objects and transports left to the collector are finalized now
    assert len(_WatchedPipe.closes) == 3
    assert [(fd, True, True) for fd, _, _ in _WatchedPipe.closes] == _WatchedPipe.closes


def test_killed_and_reaped_without_a_waiter(run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    async def scenario() -> tuple[int, int | None]:
        proc = await spawn(["/bin/sleep", "30"], stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL)
        proc.kill()
        code = await proc.wait()
        quiet = await spawn(["/bin/true"])
        for _ in range(200):  # nobody waits: the pidfd's reader reaps it
            if quiet.returncode is not None:
                break
            await asyncio.sleep(0.01)
        return code, quiet.returncode

    assert run(scenario()) == (-signal.SIGKILL, 0)
    assert not _zombies()


def _zombies() -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == os.getpid():
            found.append(entry)
    return found
