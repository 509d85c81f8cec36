"""Request ids without a system call: a random per-process prefix and a counter, shaped as a UUID.

``uuid.uuid4()`` reads 16 bytes from the kernel for every request (a ``getrandom`` call, and a
GIL hand-back after it under load); an id only has to be unique, not unpredictable. The prefix
(60 random bits) is drawn once per process (again in a forked child), the counter makes the rest.
"""

from __future__ import annotations

import itertools
import os
import secrets

_prefix = ""
_counter = itertools.count(1)


def _reseed() -> None:
    global _prefix, _counter
    r = secrets.token_hex(8)
    _prefix = f"{r[0:8]}-{r[8:12]}-4{r[12:15]}-8"
    _counter = itertools.count(1)


_reseed()
os.register_at_fork(after_in_child=_reseed)


def new_request_id() -> str:
    """A fresh id, e.g. ``3f2a9c1e-77b0-4d1e-8000-00000000002a`` (UUID version 4 layout)."""
    n = next(_counter)
    return f"{_prefix}{(n >> 48) & 0xFFF:03x}-{n & 0xFFFFFFFFFFFF:012x}"
