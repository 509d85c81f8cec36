"""fsync of a file or a directory by path: what makes a written file's bytes, or a created or renamed
entry of a directory, survive a crash of the machine; and a file replaced whole."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: Path, data: bytes, *, durable: bool = True, mode: int = 0o666) -> None:
    """Make ``path`` hold ``data``, whole: a reader finds the previous file or the new one, never a
    part. The bytes go to a temporary file of their own (``staged_file``), then renamed over
    ``path`` (and, when ``durable``, the directory fsynced: the rename itself survives a crash).
    Writers that overlap each replace the file whole; the last rename stays."""
    with staged_file(path, data, durable=durable, mode=mode) as staged:
        os.replace(staged, path)
    if durable:
        fsync_dir(path.parent)


@contextlib.contextmanager
def staged_file(path: Path, data: bytes, *, durable: bool = True, mode: int = 0o666) -> Iterator[Path]:
    """A temporary file beside ``path`` holding ``data`` (fsynced when ``durable``), for the caller
    to rename over ``path``; removed at the end if it was not. Each has a name of its own: a fixed
    temporary name is shared by writers that overlap, which then write into one file and rename it
    from under each other."""
    staged = path.with_name(f".{path.name}.{os.urandom(8).hex()}.tmp")  # (not secrets: it loads hashlib)
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        yield staged
    finally:
        staged.unlink(missing_ok=True)
