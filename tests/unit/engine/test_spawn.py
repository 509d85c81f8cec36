"""Processes spawned for streaming (``docker exec``, healthchecks): pipes as asyncio streams, the
exit seen through a pidfd and reaped whether or not anyone waits."""

from __future__ import annotations

import asyncio
import os
import signal

from minicloud.engine.containers.spawn import DEVNULL, PIPE, spawn


def test_streams_and_exit_code() -> None:
    async def scenario() -> tuple[bytes, bytes, int]:
        proc = await spawn(["/bin/sh", "-c", "read x; echo out:$x; echo err >&2; exit 3"],
                           stdin=PIPE, stdout=PIPE, stderr=PIPE)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.write(b"hello\n")
        await proc.stdin.drain()
        proc.stdin.close()
        out, err = await asyncio.gather(proc.stdout.read(), proc.stderr.read())
        return out, err, await proc.wait()

    assert asyncio.run(scenario()) == (b"out:hello\n", b"err\n", 3)


def test_killed_and_reaped_without_a_waiter() -> None:
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

    assert asyncio.run(scenario()) == (-signal.SIGKILL, 0)
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
