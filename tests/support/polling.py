"""Waiting for what happens soon after its time (later when the machine is busy or the garbage
collector runs) instead of sleeping for a guessed while."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Until ``check()`` holds, or ``timeout`` has passed (the assertion after it then fails)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)


def eventually(check: Callable[[], T], what: str = "the awaited condition", timeout: float = 45.0,
               interval: float = 0.1) -> T:
    """``check()``'s first true answer, polled every ``interval`` until ``timeout`` (then the test
    fails, naming ``what``): for what a server's controller does a little later."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(interval)
