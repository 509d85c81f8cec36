"""Request ids: UUID-shaped, unique, and cheap.

``uuid.uuid4()`` reads the kernel's random source on every call (a system call, a few microseconds:
as much as a fifth of a small API call's own work). A request id needs uniqueness, not secrecy:
here each process draws 74 random bits once and counts from a random start, so ids never repeat
within a process and collide across processes or restarts no more often than random UUIDs would.
"""

from __future__ import annotations

import itertools
import os


def _reseed() -> None:
    global _prefix, _counter
    random = int.from_bytes(os.urandom(10), "big")
    # xxxxxxxx-xxxx-4xxx-yxxx- (the version and variant nibbles of a version 4 UUID), then 48 counted bits.
    high, mid, low, variant = random >> 48, (random >> 32) & 0xFFFF, (random >> 20) & 0xFFF, (random >> 8) & 0xFFF
    _prefix = f"{high & 0xFFFFFFFF:08x}-{mid:04x}-4{low:03x}-{0x8000 | variant:04x}-"
    _counter = itertools.count(int.from_bytes(os.urandom(6), "big"))


_prefix = ""
_counter = itertools.count()
_reseed()
os.register_at_fork(after_in_child=_reseed)


def new_request_id() -> str:
    """``5f0c2a9e-3b1d-4c7a-9e21-00a4c3f1b2d7``: a fresh id for one request."""
    return f"{_prefix}{next(_counter) & 0xFFFFFFFFFFFF:012x}"
