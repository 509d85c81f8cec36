"""Short commands the engine runs to completion (``runc delete|pause|resume|update``, ``ip``,
``nft``), off the event loop.

Not asyncio's subprocesses: under uvloop they fork the whole minicloud process, page tables of
hundreds of MiB copied with the GIL held (20-50 ms on a 2-core machine, the event loop stalled
meanwhile); ``subprocess.run`` in a worker thread spawns with ``vfork``, which copies nothing.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Sequence


async def run(args: Sequence[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``args`` (``stdin`` fed to it, else /dev/null) and capture its output."""
    return await asyncio.to_thread(_run, list(args), stdin)


def _run(args: list[str], stdin: bytes | None) -> subprocess.CompletedProcess[bytes]:
    if stdin is None:
        return subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    return subprocess.run(args, input=stdin, capture_output=True, check=False)
