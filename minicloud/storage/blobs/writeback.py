"""Starting a file's writeback early: ``sync_file_range(SYNC_FILE_RANGE_WRITE)`` on the bytes just
written asks the kernel to begin writing them to the device now, without waiting, so the fsync
at commit finds most of a large blob already on disk (and the disk works while the body is still
arriving, instead of all at once at the end). Where the call is not available it does nothing:
the fsync at commit is what makes a blob durable either way."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

SYNC_FILE_RANGE_WRITE = 2


def _load() -> Callable[[int, int, int, int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)  # releases the GIL
        fn = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_sync_file_range = _load()


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing ``[offset, offset+length)`` of ``fd`` out (best effort)."""
    if _sync_file_range is not None and length > 0:
        _sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE)
