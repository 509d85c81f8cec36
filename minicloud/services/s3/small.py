"""Small objects on the event loop: a 4 KiB PUT or GET without thread hand-offs it does not need.

A body up to ``INLINE_BYTES`` is checksummed, hashed (SHA-256, MD5) and sealed right on the event
loop (tens of microseconds: a hand-off to a thread and back costs more, and under load can wait
a whole GIL switch interval). Its copies are then written one job per replica
(``storage.blobs.small.write_small``). A GET of a whole small sealed object reads the blob from
the page cache without blocking (``read_cached``; from a thread only when it is not cached) and
decrypts it on the loop; anything unusual (a missing, short or altered copy) returns None and
the caller takes the general path, which repairs bad copies.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

from minicloud.services.s3 import crypto
from minicloud.services.s3.checksums import Checksums
from minicloud.services.s3.crypto import Sealer
from minicloud.storage.blobs import Digest, InvalidDigest, ReplicatedBlobStore
from minicloud.storage.blobs.replica import Replica
from minicloud.storage.blobs.small import NotCached, read_cached, read_whole

log = logging.getLogger("minicloud.s3.small")

INLINE_BYTES = 64 * 1024  # bodies hashed and sealed on the event loop (one AES-GCM frame)
INLINE_READ_BYTES = 64 * 1024  # plaintext of whole objects read and decrypted on the loop


class SmallDigests:
    """What staging a small body computes: plaintext SHA-256 and MD5, checksums, the sealed body."""

    __slots__ = ("body", "checksums", "md5", "sealed_sha256", "sealed_size", "sha256")

    def __init__(self, data: bytes, checksums: set[str], sealer: Sealer | None) -> None:
        summer = Checksums(checksums)
        summer.update(data)
        self.checksums = summer.values()
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.md5 = hashlib.md5(data).hexdigest()
        self.body = data
        self.sealed_sha256: str | None = None
        self.sealed_size: int | None = None
        if sealer is not None:
            self.body = bytes(sealer.seal_all(data))
            self.sealed_sha256 = hashlib.sha256(self.body).hexdigest()
            self.sealed_size = len(self.body)


async def read_small_sealed(store: ReplicatedBlobStore, replicas: Sequence[Replica],
                            segments: Sequence[tuple[str, int]], start: int, end: int,
                            kek: bytes) -> bytes | None:
    """Plaintext [start, end) of a one-blob sealed object of at most ``INLINE_READ_BYTES``, or None
    when the general path must serve it."""
    if len(segments) != 1 or segments[0][1] > INLINE_READ_BYTES or segments[0][1] == 0:
        return None
    name, size = segments[0]
    try:
        digest = Digest.parse(name)
    except InvalidDigest:
        return None
    sealed_size = crypto.sealed_size(size)
    for replica in replicas:
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
        return plain[start:end] if (start, end) != (0, size) else plain
    return None
