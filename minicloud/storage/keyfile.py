"""A secret key kept in a file of the data directory: created once (random, mode 0600, fsynced with
its directory entry, so that a crash never leaves data sealed under a key that is then lost), then
read at every start. S3's and KMS's master keys are such files.

The key is written whole to a private temporary file and then hard-linked to its name, so the name
never points at a partly written key: a reader racing the first start (another thread or process)
either finds no key and makes its own attempt, or reads the complete key that won. Every racer
fsyncs the directory before it uses the key, the winner's link being durable then whoever won."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from minicloud.storage.durable import fsync_dir, staged_file


def load_or_create_key(path: Path, size: int = 32) -> bytes:
    if not path.exists():
        _create(path, size)
    os.chmod(path, 0o600)
    key = path.read_bytes()
    if len(key) != size:  # (a crash of a version that wrote the key in place could leave one short)
        raise ValueError(f"{path} holds {len(key)} bytes, not a {size}-byte key: restore it from a backup")
    return key


def _create(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with staged_file(path, secrets.token_bytes(size), mode=0o600) as staged, \
            contextlib.suppress(FileExistsError):  # another racer's key won
        os.link(staged, path)
    fsync_dir(path.parent)
