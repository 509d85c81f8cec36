"""One replica's copy of an ingest in progress: a file that bytes are appended to, with positioned
writes (no user-space buffer to flush) and, for a copy that nobody reads soon, direct I/O.

A blob is written to one replica per zone. Reads prefer the first zone that holds it, so that copy
is written through the page cache (it is what a GET right after the PUT reads). The others go
around it with ``O_DIRECT``: the disk reads them straight from an aligned buffer, without the
kernel allocating, copying, dirtying and later writing back a page cache copy of each. On this
project's 2-core VM, three buffered copies of 256 MiB written and fsynced in parallel took 2.9 s
and 1.9 s of system CPU; with direct I/O, 0.67 s and 0.24 s.

Direct writes must start at an aligned file offset and be whole blocks long: bytes that do not
fill a block wait in ``_carry`` for the next append. ``flush`` writes them through the page
cache (turning direct I/O off for the rest of the file), so after ``flush`` the file holds every
byte appended. A file system without direct I/O (tmpfs) gets buffered writes.
"""

from __future__ import annotations

import fcntl
import mmap
import os
from pathlib import Path

from minicloud.storage.blobs.writeback import start_writeback

BLOCK = 4096  # direct I/O alignment of offsets, lengths and buffer addresses (a page: enough everywhere)
IOV_BATCH = 512  # buffers per pwritev (Linux takes at most 1024)


class IngestFile:
    def __init__(self, path: Path, direct: bool = False) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._offset = os.fstat(self._fd).st_size  # where the next write goes (an append)
        self._carry = bytearray()  # direct I/O: the bytes past the last whole block
        self._buffer: mmap.mmap | None = None  # direct I/O: page-aligned staging buffer
        self.direct = False
        if direct and self._offset % BLOCK == 0:
            try:
                fcntl.fcntl(self._fd, fcntl.F_SETFL, fcntl.fcntl(self._fd, fcntl.F_GETFL) | os.O_DIRECT)
                self.direct = True
            except OSError:  # not supported by this file system
                pass

    def fileno(self) -> int:
        return self._fd

    def tell(self) -> int:
        return self._offset + len(self._carry)

    def seek(self, offset: int) -> None:
        if offset != self.tell():
            self.truncate(offset)

    def truncate(self, size: int) -> None:
        self.flush()
        os.ftruncate(self._fd, size)
        self._offset = size

    def append(self, data: bytes | bytearray | memoryview, early_writeback: bool = False) -> None:
        """Append ``data``; ``early_writeback`` asks the kernel to start writing a buffered
        file's new bytes to the device now (see writeback.py)."""
        view = memoryview(data).cast("B")
        if self.direct:
            self._append_direct([view])
            return
        start = self._offset
        self._pwrite(view, start)
        if early_writeback:
            start_writeback(self._fd, start, len(view))

    write = append

    def append_all(self, chunks: list[bytes | bytearray], early_writeback: bool = False) -> None:
        """``append`` of each chunk in turn; a buffered file takes them in vectored writes."""
        if self.direct:
            self._append_direct([memoryview(c).cast("B") for c in chunks])
            return
        if len(chunks) == 1:
            self.append(chunks[0], early_writeback)
            return
        start = self._offset
        for first in range(0, len(chunks), IOV_BATCH):
            self._pwritev([memoryview(c).cast("B") for c in chunks[first:first + IOV_BATCH]])
        if early_writeback:
            start_writeback(self._fd, start, self._offset - start)

    def _pwritev(self, views: list[memoryview]) -> None:
        while views:
            done = os.pwritev(self._fd, views, self._offset)
            self._offset += done
            while views and done >= len(views[0]):
                done -= len(views[0])
                views.pop(0)
            if views and done:
                views[0] = views[0][done:]

    def _append_direct(self, views: list[memoryview]) -> None:
        """Whole blocks in one direct write from the staging buffer (the carry first, then the
        views in order); what is left of the last block is carried to the next append."""
        carried = len(self._carry)
        whole = (carried + sum(len(v) for v in views)) // BLOCK * BLOCK
        if not whole:
            for view in views:
                self._carry += view
            return
        if self._buffer is None or len(self._buffer) < whole:
            if self._buffer is not None:
                self._buffer.close()
            self._buffer = mmap.mmap(-1, whole)
        carry = bytearray()
        with memoryview(self._buffer) as staging:
            staging[:carried] = self._carry
            at = carried
            for view in views:
                take = min(len(view), whole - at)
                staging[at:at + take] = view[:take]
                at += take
                if take < len(view):
                    carry += view[take:]
            self._pwrite(staging[:whole], self._offset)
        self._carry = carry

    def _pwrite(self, view: memoryview, offset: int) -> None:
        done = 0
        while done < len(view):
            done += os.pwrite(self._fd, view[done:], offset + done)
        self._offset = offset + len(view)

    def flush(self) -> None:
        """Every byte appended is in the file (a direct file's partial block written through the
        page cache; the file is buffered from then on)."""
        if not self.direct:
            return
        self.direct = False
        fcntl.fcntl(self._fd, fcntl.F_SETFL, fcntl.fcntl(self._fd, fcntl.F_GETFL) & ~os.O_DIRECT)
        if self._buffer is not None:
            self._buffer.close()
            self._buffer = None
        carry, self._carry = self._carry, bytearray()
        if carry:
            self._pwrite(memoryview(carry), self._offset)

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            self.flush()
        finally:
            os.close(self._fd)
            self._fd = -1
