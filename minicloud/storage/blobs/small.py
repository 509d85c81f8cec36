"""Small blobs (a few KiB up to a frame or so) on one replica, with as few system calls as possible.

A replica with a pack (``Replica.enable_pack``: S3's) keeps blobs up to ``pack.PACK_LIMIT`` in
it, written with group commit by a ``pack.PackWriter``; ``make_writer`` gives that writer for
such a replica (larger blobs still go to files through it), a ``SmallBlobWriter`` for the
others. Reads (``read_cached``, ``read_whole``) look in the pack first, then for the file.

The file tier: each copy's temporary file is created read-only (``O_EXCL``, mode 0444, so no
``chmod``), written, fsynced, renamed over the blob's path (the fan-out directories exist from
``prepare_fanout``; the rename of identical content over an existing copy is harmless) and the
directory fsynced: the copy is durable when the call returns. No ``exists``/``stat`` calls.
``write_small`` does that for one blob; ``write_batch`` for several, each step for all of them in
turn; ``SmallBlobWriter`` is a few threads per replica taking the copies queued for it, a
batch at a time. S3 runs the writers in a helper process (``writerproc``), so that these
system calls, and the GIL hand-offs around each of them, are not the server's.

Reading tries the page cache first (``preadv`` with ``RWF_NOWAIT``: it fails instead of waiting
for the disk), so a hot small blob is read on the event loop without a thread hand-off;
``NotCached`` tells the caller to read it on a thread instead.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from minicloud.storage.blobs.core import ALGORITHMS, Digest
from minicloud.storage.blobs.replica import Replica
from minicloud.storage.durable import fsync_dir

_TEMP_PREFIX = f".s3-{os.urandom(6).hex()}-{os.getpid()}-"  # cleanup_ingests sweeps ".s3-*" at start-up
_counter = itertools.count()
_HAS_NOWAIT = hasattr(os, "RWF_NOWAIT") and hasattr(os, "preadv")
log = logging.getLogger("minicloud.blobs.small")

# A batch syncs its copies one after the other, so its latency grows with its size; batches in
# flight at once overlap their fsyncs on the device. More threads: lower latency on a slow or busy
# disk, but more context switches (CPU) per copy. Measured on the 2-core VM (noisy, shared):
# 4 x 64 and 16 x 4 were within the noise of each other; 8 x 8 sits between them.
MAX_BATCH = 8  # copies one writer thread takes from its queue at a time
THREADS = 8  # batches a replica's writer has in flight at once
IDLE_SECONDS = 5.0  # a writer thread with nothing to do for this long ends (the next submit starts one)


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


def _target(replica: Replica, digest: Digest) -> str:
    return os.path.join(replica.root, digest.algorithm, digest.hex[:2], digest.hex)


def _temporary(replica: Replica, data: bytes) -> tuple[int, str]:
    """A new read-only temporary file in the replica's ingest directory holding ``data`` (not synced)."""
    tmp = os.path.join(replica.ingest_root, f"{_TEMP_PREFIX}{next(_counter)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return fd, tmp


def _rename_into_place(tmp: str, target: str) -> None:
    try:
        os.rename(tmp, target)
    except FileNotFoundError:  # a fan-out directory removed behind our back
        directory = os.path.dirname(target)
        os.makedirs(directory, exist_ok=True)
        fsync_dir(Path(directory).parent)  # the new fan-out directory's own entry
        os.rename(tmp, target)


def write_batch(replica: Replica, items: Sequence[tuple[bytes, Digest]]) -> list[OSError | None]:
    """``write_small`` for several blobs on one replica, step by step for all of them (every
    temporary file written, then each fsynced, then each renamed, then each fan-out directory
    fsynced once): the outcome of each, None when that copy is durable (blocking)."""
    errors: list[OSError | None] = [None] * len(items)
    written: list[tuple[int, int, str]] = []
    for i, (data, _) in enumerate(items):
        try:
            fd, tmp = _temporary(replica, data)
        except OSError as exc:
            errors[i] = exc
            continue
        written.append((i, fd, tmp))
    synced: list[tuple[int, str]] = []
    for i, fd, tmp in written:
        try:
            os.fsync(fd)
            synced.append((i, tmp))
        except OSError as exc:
            errors[i] = exc
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        finally:
            os.close(fd)
    directories: dict[str, list[int]] = {}
    for i, tmp in synced:
        target = _target(replica, items[i][1])
        try:
            _rename_into_place(tmp, target)
        except OSError as exc:
            errors[i] = exc
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            continue
        directories.setdefault(os.path.dirname(target), []).append(i)
    for directory, members in directories.items():
        try:
            fsync_dir(Path(directory))
        except OSError as exc:
            for i in members:
                errors[i] = exc
    return errors


Done = Callable[[OSError | None], None]


class SmallBlobWriter:
    """Up to ``threads`` threads writing the small copies submitted for one replica, each taking
    every copy waiting when it is free as one batch (``write_batch``); each copy's ``done`` is
    called on that thread with its outcome (None: durable), then ``after_batch`` once."""

    def __init__(self, replica: Replica, max_batch: int = MAX_BATCH, threads: int = THREADS,
                 after_batch: Callable[[], None] | None = None) -> None:
        self.replica = replica
        self.max_batch = max_batch
        self.threads = threads
        self.after_batch = after_batch
        self._queue: queue.SimpleQueue[tuple[bytes | None, Digest, Done]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = 0
        self._idle = 0

    def submit(self, data: bytes, digest: Digest, done: Done) -> None:
        self._put((data, digest, done))

    def submit_delete(self, digest: Digest, done: Done) -> None:
        """Remove the replica's copy of ``digest``; ``done`` gets None, or FileNotFoundError when
        there was none (a removal is not synced: a copy that comes back after a crash is only an
        unreferenced file)."""
        self._put((None, digest, done))

    def _put(self, item: tuple[bytes | None, Digest, Done]) -> None:
        self._queue.put(item)
        with self._lock:
            if self._idle == 0 and self._running < self.threads:
                self._running += 1
                self._idle += 1
                threading.Thread(target=self._run, name=f"small-writer-{self.replica.name}", daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():  # a submit after this sees one thread fewer and may start one
                        self._running -= 1
                        self._idle -= 1
                        return
                continue
            with self._lock:
                self._idle -= 1
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)
            with self._lock:
                self._idle += 1

    def _write(self, batch: list[tuple[bytes | None, Digest, Done]]) -> None:
        writes = [(data, digest) for data, digest, _ in batch if data is not None]
        try:
            written = iter(write_batch(self.replica, writes))
        except Exception as exc:  # not an OSError of one copy: every copy of the batch failed
            log.exception("replica %s failed writing a batch of %d blobs", self.replica.name, len(writes))
            written = iter([OSError(str(exc))] * len(writes))
        for data, digest, done in batch:
            error = next(written) if data is not None else self._delete(digest)
            try:
                done(error)
            except Exception:
                log.exception("a small write's completion failed")
        if self.after_batch is not None:
            try:
                self.after_batch()
            except Exception:
                log.exception("a small write batch's completion failed")

    def _delete(self, digest: Digest) -> OSError | None:
        try:
            os.unlink(_target(self.replica, digest))
        except OSError as exc:
            return exc
        return None


class BlobWriter(Protocol):
    def submit(self, data: bytes, digest: Digest, done: Done) -> None: ...

    def submit_delete(self, digest: Digest, done: Done) -> None: ...


_Removed = TypeVar("_Removed")


class _Gathered:
    """The outcomes of several removals, reported once (``delete_all``)."""

    def __init__(self, count: int, done: Done) -> None:
        self.left = count
        self.done = done
        self.error: OSError | None = None
        self.lock = threading.Lock()

    def add(self, error: OSError | None) -> None:
        with self.lock:
            if error is not None and (self.error is None or isinstance(self.error, FileNotFoundError)):
                self.error = error
            self.left -= 1
            if self.left:
                return
        self.done(self.error)


def delete_all(submit_delete: Callable[[_Removed, Done], None], removed: Sequence[_Removed], done: Done) -> None:
    """Remove the copies of ``removed`` (digests, or lists of them), each through ``submit_delete``
    (a writer's); ``done`` once, after the last: None when each had a copy, FileNotFoundError when
    some had none, or the first other error."""
    if not removed:
        done(None)
        return
    gathered = _Gathered(len(removed), done)
    for item in removed:
        submit_delete(item, gathered.add)


def _remove_file(replica: Replica, digest: Digest) -> bool:
    try:
        os.unlink(_target(replica, digest))
    except FileNotFoundError:
        return False
    return True


def make_writer(replica: Replica, after_batch: Callable[[], None] | None = None) -> BlobWriter:
    """A new writer for the replica: its pack's group-commit writer (files for what the pack does
    not take) when it has a pack, else a ``SmallBlobWriter``."""
    files = SmallBlobWriter(replica, after_batch=after_batch)
    if replica.pack is None:
        return files
    from minicloud.storage.blobs.pack import PackWriter

    return PackWriter(replica.pack, files.submit, healthy=replica.healthy,
                      remove_file=lambda digest: _remove_file(replica, digest), after_batch=after_batch)


_blob_writers: weakref.WeakKeyDictionary[Replica, BlobWriter] = weakref.WeakKeyDictionary()
_blob_writers_lock = threading.Lock()


def writer_for(replica: Replica) -> BlobWriter:
    """The replica's writer (one per replica object: ``make_writer``)."""
    found = _blob_writers.get(replica)
    if found is None:
        with _blob_writers_lock:
            found = _blob_writers.get(replica)
            if found is None:
                found = _blob_writers[replica] = make_writer(replica)
    return found


def write_small(replica: Replica, data: bytes, digest: Digest) -> None:
    """Make ``data`` the blob ``digest`` on ``replica``, durably (blocking: run on a thread)."""
    error = write_batch(replica, [(data, digest)])[0]
    if error is not None:
        raise error


def read_cached(replica: Replica, digest: Digest, size: int) -> bytes:
    """The first ``size`` bytes of a blob if the page cache holds them (never waits for the disk:
    ``NotCached`` then); ``FileNotFoundError`` when the replica has no copy. The result is shorter
    than ``size`` when the file is. A packed copy is read from the pack (its pages cached by the OS:
    microseconds)."""
    if replica.pack is not None:
        packed = replica.pack.get(digest)
        if packed is not None:
            return packed[:size] if len(packed) > size else packed
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
    if replica.pack is not None:
        packed = replica.pack.get(digest)
        if packed is not None:
            return packed[:size] if len(packed) > size else packed
    with open(os.path.join(replica.root, digest.algorithm, digest.hex[:2], digest.hex), "rb") as f:
        return f.read(size)
