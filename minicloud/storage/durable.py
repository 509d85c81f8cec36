"""fsync of a file or a directory by path: what makes a written file's bytes, or a created or renamed
entry of a directory, survive a crash of the machine."""

from __future__ import annotations

import os
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


def sync_wal(wal: Path) -> None:
    """Make a SQLite database's committed transactions durable after commits made with
    ``synchronous=NORMAL`` (which write the WAL without syncing it): fdatasync of the WAL file (of
    any descriptor: the page cache is the inode's). A WAL that is gone was checkpointed into the
    database and removed (SQLite syncs both before it removes one): then the database itself."""
    try:
        fd = os.open(wal, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        name = wal.name
        if not name.endswith("-wal"):
            raise
        fd = os.open(wal.with_name(name[:-len("-wal")]), os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)
