"""Small objects on the event loop: a 4 KiB PUT or GET without thread hand-offs it does not need.

A body up to ``INLINE_BYTES`` is checksummed, hashed (SHA-256, MD5) and sealed right on the event
loop (tens of microseconds: a hand-off to a thread and back costs more, and under load can wait
a whole GIL switch interval). Its copies are then written by the small-blob writer
(``storage.blobs.writerproc``: off this process's GIL) into each zone's small-blob pack,
group-committed (``storage.blobs.pack``), and the object's row is committed by that writer in the
same round (``storage.blobs.storejobs``) when it can, else by this process's group commit. A GET
of a small sealed object reads the blob on the loop without a thread hand-off: a packed row from
SQLite (its pages cached by the OS), an older file copy from the page cache (``read_cached``; from
a thread only when it is not cached), and decrypts it there; anything unusual (a missing, short
or altered copy) returns None and the caller takes the general path, which repairs bad copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import pickle
from collections.abc import Callable, Sequence
from typing import TypeVar

import sqlalchemy as sa

from minicloud.services.s3 import crypto
from minicloud.services.s3.checksums import Checksums
from minicloud.services.s3.crypto import Sealer
from minicloud.storage.blobs import Digest, InvalidDigest, NoReplicaAvailable, ReplicatedBlobStore
from minicloud.storage.blobs.pack import packable
from minicloud.storage.blobs.replica import Replica
from minicloud.storage.blobs.small import NotCached, read_cached, read_whole
from minicloud.storage.blobs.storejobs import Quorum
from minicloud.storage.blobs.writerproc import shared_writer
from minicloud.storage.metadata.db import Database
from minicloud.storage.metadata.portable import PortableWrite

T = TypeVar("T")

log = logging.getLogger("minicloud.s3.small")

INLINE_BYTES = 64 * 1024  # bodies hashed and sealed on the event loop (one AES-GCM frame)
INLINE_READ_BYTES = 64 * 1024  # plaintext of whole objects read and decrypted on the loop
WHERE_ENTRIES = 100_000  # blobs whose replica is remembered for the next read (a hint: checked by the open)

_where: dict[str, int] = {}


class SmallDigests:
    """What staging a small body computes: plaintext SHA-256 and MD5, checksums, the sealed body."""

    __slots__ = ("body", "checksums", "md5", "sealed_sha256", "sealed_size", "sha256")

    def __init__(self, data: bytes, checksums: set[str], sealer: Sealer | None, plain_sha256: bool = True) -> None:
        summer = Checksums(checksums)
        summer.update(data)
        self.checksums = summer.values()
        # (a sealed body's plaintext SHA-256 only when asked for: its blob is named by the sealed bytes')
        self.sha256 = hashlib.sha256(data).hexdigest() if sealer is None or plain_sha256 else ""
        self.md5 = hashlib.md5(data).hexdigest()
        self.body = data
        self.sealed_sha256: str | None = None
        self.sealed_size: int | None = None
        if sealer is not None:
            self.body = bytes(sealer.seal_all(data))
            self.sealed_sha256 = hashlib.sha256(self.body).hexdigest()
            self.sealed_size = len(self.body)


@functools.lru_cache(maxsize=4096)
def _digest(name: str) -> Digest:
    """A blob's digest from its name (parsed once for the objects read again and again)."""
    return Digest.parse(name)


async def read_small_sealed(store: ReplicatedBlobStore, replicas: Sequence[Replica],
                            segments: Sequence[tuple[str, int]], start: int, end: int,
                            kek: bytes) -> bytes | None:
    """Plaintext [start, end) of a one-blob sealed object of at most ``INLINE_READ_BYTES``, or None
    when the general path must serve it."""
    if len(segments) != 1 or segments[0][1] > INLINE_READ_BYTES or segments[0][1] == 0:
        return None
    name, size = segments[0]
    try:
        digest = _digest(name)
    except InvalidDigest:
        return None
    sealed_size = crypto.sealed_size(size)
    hint = _where.get(name)
    order = _hinted_first(replicas, hint)
    for replica in order:
        try:
            try:
                blob = read_cached(replica, digest, sealed_size)
            except NotCached:
                blob = await store.run(read_whole, replica, digest, sealed_size)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("replica %s cannot read %s: %s", replica.name, digest, exc)
            return None
        if len(blob) != sealed_size:
            return None  # short: the general path reports and repairs it
        try:
            data_key = crypto.unwrap(kek, blob[:crypto.HEADER])
            plain = crypto.open_frames(data_key, blob[crypto.HEADER:], 0, size)
        except crypto.InvalidTag:
            return None
        if replica is not order[0] or hint is None:  # next time straight to the zone that has it
            if len(_where) >= WHERE_ENTRIES:
                _where.clear()
            _where[name] = list(replicas).index(replica)
        return plain[start:end] if (start, end) != (0, size) else plain
    return None


def _hinted_first(replicas: Sequence[Replica], hint: int | None) -> Sequence[Replica]:
    """``replicas`` with the one at ``hint`` (the zone a blob was last read from) moved first."""
    if not hint or hint >= len(replicas):  # (None, or the first already)
        return replicas
    return [replicas[hint], *replicas[:hint], *replicas[hint + 1:]]


async def commit_small(db: Database, replicas: Sequence[Replica], body: bytes, digest: Digest,
                       write: Callable[[sa.Connection], T]) -> T:
    """Write a small blob's copies in parallel (the writer process takes each into its zone's next
    batch), then commit the metadata ``write``: the data is durable on a quorum before its
    metadata commits. A ``PortableWrite`` into packed replicas goes to the writer with the copies,
    and the writer commits it in the same round (``storage.blobs.storejobs``); otherwise it is
    queued, from the thread that learns a copy completed the quorum, straight to the database's
    group commit. ``NoReplicaAvailable`` when no quorum could be written (the write may have
    committed only if the writer died meanwhile); any error of ``write`` as raised by it (the
    copies are then the caller's to release)."""
    need = len(replicas) // 2 + 1 if len(replicas) > 1 else 1
    if not replicas:
        raise NoReplicaAvailable("0 healthy replicas")
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    writer = shared_writer()
    if isinstance(write, PortableWrite) and packable(digest, len(body)) and all(r.pack for r in replicas):
        payload = write.dumps()
        stored = functools.partial(_stored, db, write, digest, loop, future)
        if payload is not None and writer.submit_store(replicas, body, digest, need, payload, stored):
            return await future
    quorum = Quorum(need, len(replicas))

    def copied(replica: Replica, error: OSError | None) -> None:
        if error is not None:
            log.warning("replica %s failed writing %s: %s", replica.name, digest, error)
        outcome = quorum.add(error is None)
        if outcome == "commit":
            db.enqueue_write(write, loop, future)
        elif outcome == "fail":
            failure = NoReplicaAvailable(f"{digest} written to fewer than {need} replicas")
            _settle_on(loop, future, error=failure)

    for replica in replicas:  # the copies beyond the quorum finish on their own
        writer.submit(replica, body, digest, functools.partial(copied, replica))
    return await future


def _stored(db: Database, write: Callable[[sa.Connection], T], digest: Digest, loop: asyncio.AbstractEventLoop,
            future: asyncio.Future[T], error: OSError | None, ran: bool, result: bytes | None) -> None:
    """A store request's answer (on the loop reading the writer's answers, or a thread of it)."""
    if error is not None:
        log.warning("writing %s failed: %s", digest, error)
        _settle_on(loop, future, error=NoReplicaAvailable(f"{digest} was not written to a quorum: {error}"))
    elif not ran:  # the data is durable; the write is ours to run (it raised there, or cannot run there)
        db.enqueue_write(write, loop, future)
    else:
        try:
            value = pickle.loads(result or b"")
        except Exception as exc:  # (the row stands; what it released is left to the orphan sweep)
            log.error("the row of %s committed, but its result could not be read: %s", digest, exc)
            _settle_on(loop, future, error=exc)
            return
        _settle_on(loop, future, value)


def _settle_on(loop: asyncio.AbstractEventLoop, future: asyncio.Future[T], value: T | None = None,
               error: BaseException | None = None) -> None:
    """``future``'s outcome, set on ``loop``'s thread."""
    def settle() -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)  # type: ignore[arg-type]
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        settle()
    else:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(settle)
