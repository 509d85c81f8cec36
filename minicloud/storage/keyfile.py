"""A secret key kept in a file of the data directory: created once (random, mode 0600, fsynced with
its directory entry, so that a crash never leaves data sealed under a key that is then lost), then
read at every start. S3's and KMS's master keys are such files."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from minicloud.storage.durable import fsync_dir


def load_or_create_key(path: Path, size: int = 32) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(size))
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(path.parent)
    os.chmod(path, 0o600)
    return path.read_bytes()
