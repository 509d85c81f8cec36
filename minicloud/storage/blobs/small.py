"""Small blobs (a few KiB up to a frame or so) on one replica, with as few system calls as possible.

Writing is one job per replica: the temporary file is created read-only (``O_EXCL``, mode 0444,
so no ``chmod``), written, fsynced, renamed over the blob's path (the fan-out directories exist
from ``prepare_fanout``; the rename of identical content over an existing copy is harmless) and
the directory fsynced: the copy is durable when the call returns. No ``exists``/``stat`` calls.

Reading tries the page cache first (``preadv`` with ``RWF_NOWAIT``: it fails instead of waiting
for the disk), so a hot small blob is read on the event loop without a thread hand-off;
``NotCached`` tells the caller to read it on a thread instead.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import secrets
import time
import weakref

from minicloud.storage.blobs.core import ALGORITHMS, Digest
from minicloud.storage.blobs.replica import Replica
from minicloud.storage.durable import fsync_dir

_TEMP_PREFIX = f".s3-{secrets.token_hex(6)}-{os.getpid()}-"  # cleanup_ingests sweeps ".s3-*" at start-up
_counter = itertools.count()
_HAS_NOWAIT = hasattr(os, "RWF_NOWAIT") and hasattr(os, "preadv")


HEALTH_SECONDS = 1.0  # how long a replica's health check stands (two access() calls each)
_health: weakref.WeakKeyDictionary[Replica, tuple[float, bool]] = weakref.WeakKeyDictionary()


def healthy_replicas(replicas: list[Replica]) -> list[Replica]:
    """``[r for r in replicas if r.healthy()]`` with each replica checked at most once a second: on
    the event loop, every system call is a chance to lose the GIL to one of the busy threads."""
    now = time.monotonic()
    out = []
    for replica in replicas:
        known = _health.get(replica)
        if known is None or known[0] < now:
            known = _health[replica] = (now + HEALTH_SECONDS, replica.healthy())
        if known[1]:
            out.append(replica)
    return out


class NotCached(Exception):
    """The blob's bytes are not all in the page cache: read it where blocking is allowed."""


def prepare_fanout(replica: Replica) -> None:
    """Create every ``<root>/<algorithm>/<xx>`` directory once, durably, so writes never mkdir."""
    for algorithm in ALGORITHMS:
        base = replica.root / algorithm
        base.mkdir(parents=True, exist_ok=True)
        created = False
        for i in range(256):
            sub = base / f"{i:02x}"
            if not sub.is_dir():
                sub.mkdir(exist_ok=True)
                created = True
        if created:
            fsync_dir(base)


def write_small(replica: Replica, data: bytes, digest: Digest) -> None:
    """Make ``data`` the blob ``digest`` on ``replica``, durably (blocking: run on a thread)."""
    target = os.path.join(replica.root, digest.algorithm, digest.hex[:2], digest.hex)
    tmp = os.path.join(replica.ingest_root, f"{_TEMP_PREFIX}{next(_counter)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.rename(tmp, target)
        except FileNotFoundError:  # a fan-out directory removed behind our back
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.rename(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(replica.root / digest.algorithm / digest.hex[:2])


def read_cached(replica: Replica, digest: Digest, size: int) -> bytes:
    """The first ``size`` bytes of a blob if the page cache holds them (never waits for the disk:
    ``NotCached`` then); ``FileNotFoundError`` when the replica has no copy. The result is shorter
    than ``size`` when the file is."""
    if not _HAS_NOWAIT:
        raise NotCached(str(digest))
    fd = os.open(os.path.join(replica.root, digest.algorithm, digest.hex[:2], digest.hex),
                 os.O_RDONLY | os.O_CLOEXEC)
    try:
        buf = bytearray(size)
        try:
            got = os.preadv(fd, [buf], 0, os.RWF_NOWAIT)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EOPNOTSUPP):  # not cached; no RWF_NOWAIT here
                raise NotCached(str(digest)) from None
            raise
        if got < size:
            # a short read is either the end of the file or a partly cached one: ask again
            # from where it stopped (a second short read means the file ends there)
            try:
                more = os.preadv(fd, [memoryview(buf)[got:]], got, os.RWF_NOWAIT)
            except BlockingIOError:
                raise NotCached(str(digest)) from None
            got += more
            del buf[got:]
        return bytes(buf)
    finally:
        os.close(fd)


def read_whole(replica: Replica, digest: Digest, size: int) -> bytes:
    """The first ``size`` bytes of a blob (blocking: run on a thread)."""
    with open(os.path.join(replica.root, digest.algorithm, digest.hex[:2], digest.hex), "rb") as f:
        return f.read(size)
