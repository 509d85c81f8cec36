"""Waiting for what happens soon after its time (later when the machine is busy or the garbage
collector runs) instead of sleeping for a guessed while."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Until ``check()`` holds, or ``timeout`` has passed (the assertion after it then fails)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
