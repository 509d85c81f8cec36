"""A change counter shared by every process that opens the same data directory.

Processes keep some metadata in memory (a bucket's configuration, a principal's compiled
policies, an access key's secret): reading them from the store on every request would cost more
than the request itself. Whoever changes such metadata bumps the epoch after committing; a cache
remembers the epoch its entries were read under and drops them when it differs. The counter is an
8-byte file mapped into memory by every process: reading it costs a fraction of a microsecond;
bumps (rare: configuration changes) take an exclusive ``flock`` so that none is lost.

Correctness of a cache entry: read the epoch *before* loading from the store and keep the result
only if the epoch is still the same afterwards; a writer bumps only *after* its commit. Then an
entry is never newer than its epoch says, and any commit followed by a bump invalidates it.
"""

from __future__ import annotations

import fcntl
import mmap
import os
from pathlib import Path

_SIZE = 8


class SharedEpoch:
    def __init__(self, path: Path | None) -> None:
        """``path``: the counter's file (created if missing); None: a counter for this process only."""
        self._fd = -1
        self._map: mmap.mmap | None = None
        self._local = 0
        if path is not None:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                if os.fstat(fd).st_size < _SIZE:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    try:
                        if os.fstat(fd).st_size < _SIZE:
                            os.ftruncate(fd, _SIZE)
                    finally:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                self._map = mmap.mmap(fd, _SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            except OSError:
                os.close(fd)
                raise
            self._fd = fd

    def value(self) -> int:
        mapped = self._map
        if mapped is None:
            return self._local
        return int.from_bytes(mapped[:_SIZE], "little")

    def bump(self) -> None:
        mapped = self._map
        if mapped is None:
            self._local += 1
            return
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            mapped[:_SIZE] = ((int.from_bytes(mapped[:_SIZE], "little") + 1) % (1 << 63)).to_bytes(_SIZE, "little")
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
