"""The content store: every blob (layer, config, manifest) kept once, under its digest.

Writing follows the crash-safe recipe: bytes go to ``ingest/<ref>/data`` while being hashed;
``commit`` checks the size and digest, fsyncs, renames into ``blobs/sha256/<hex>`` and makes the
blob read-only. A blob that already exists makes a commit succeed without writing. An ingest that
was interrupted keeps its partial data, so a later writer for the same ref resumes at its offset.

All methods are blocking (file I/O, hashing): the async layers call them through
``asyncio.to_thread``.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from minicloud.engine.errors import InvalidArgument, NotFound
from minicloud.storage.durable import fsync_dir

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_CHUNK = 1 << 20


class Digest(str):
    """``sha256:<64 hex>``, checked when made."""

    __slots__ = ()

    def __new__(cls, value: str) -> Digest:
        if not _DIGEST.match(value):
            raise InvalidArgument(f"invalid digest: {value!r}")
        return super().__new__(cls, value)

    @property
    def hex(self) -> str:
        return self[7:]

    @classmethod
    def of(cls, data: bytes) -> Digest:
        return cls("sha256:" + hashlib.sha256(data).hexdigest())


class DigestMismatch(InvalidArgument):
    pass


@dataclass(frozen=True, slots=True)
class BlobInfo:
    digest: Digest
    size: int


class Writer:
    """An open ingest: ``write`` appends and hashes; ``commit`` verifies and publishes."""

    def __init__(self, store: ContentStore, ref: str, directory: Path) -> None:
        self._store = store
        self.ref = ref
        self._dir = directory
        self._lock_fd = _lock_directory(directory)  # one writer per ref, across threads and processes
        try:
            self._file: BinaryIO = open(directory / "data", "a+b")  # noqa: SIM115 - closed by commit/close
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._hash = hashlib.sha256()
        self._file.seek(0)
        while chunk := self._file.read(_CHUNK):  # resume: re-hash what an earlier attempt wrote
            self._hash.update(chunk)
        self.offset = self._file.tell()

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._hash.update(data)
        self.offset += len(data)

    def truncate(self) -> None:
        """Start over (the server did not honour a range request)."""
        self._file.seek(0)
        self._file.truncate()
        self._hash = hashlib.sha256()
        self.offset = 0

    def commit(self, expected: Digest | None = None, size: int | None = None) -> BlobInfo:
        digest = Digest("sha256:" + self._hash.hexdigest())
        try:
            if size is not None and self.offset != size:
                raise DigestMismatch(f"size mismatch for {expected or digest}: expected {size}, got {self.offset}")
            if expected is not None and digest != expected:
                raise DigestMismatch(f"digest mismatch: expected {expected}, got {digest}")
            target = self._store.blob_path(digest)
            if target.exists():  # already there: success, and this copy is not needed
                (self._dir / "data").unlink(missing_ok=True)
            else:
                self._file.flush()
                os.fsync(self._file.fileno())
                os.chmod(self._dir / "data", 0o444)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self._dir / "data", target)
                fsync_dir(target.parent)
            return BlobInfo(digest, self.offset)
        except DigestMismatch:
            self.abort()
            raise
        finally:
            self.close()

    def abort(self) -> None:
        """Throw the partial data away (a mismatch must not be resumed)."""
        if self._lock_fd >= 0:  # under the lock: a next writer of the ref may be waiting for it
            (self._dir / "data").unlink(missing_ok=True)
        self.close()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        if self._lock_fd < 0:
            return
        try:
            if not (self._dir / "data").exists():  # removed under the lock: no writer is in it
                shutil.rmtree(self._dir, ignore_errors=True)
        finally:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = -1


_LOCK_ATTEMPTS = 1000  # a directory removed under a waiter this many times in a row is a fault


def _lock_directory(directory: Path) -> int:
    """A descriptor of ``directory`` (made if missing) holding its exclusive lock. The lock is the
    directory's, not its data file's: a writer that waited for the file's lock got it on the file
    the previous writer had meanwhile published (renamed into ``blobs/``), and rewrote the blob.
    A directory the previous holder removed (its ingest done) is made again."""
    for attempt in range(_LOCK_ATTEMPTS):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, FileExistsError):  # removed by the holder meanwhile (mkdir's
            # "exists" is checked again after it, and can find it gone); not a directory at all
            # (a damaged store) fails the same way every time, and is reported
            if attempt == _LOCK_ATTEMPTS - 1:
                raise
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            try:
                current = os.stat(directory)
            except FileNotFoundError:
                current = None
        except BaseException:
            os.close(fd)
            raise
        if current is not None and (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
            return fd
        os.close(fd)  # the holder removed it while we waited: start over
    raise OSError(errno.EAGAIN, f"{directory} kept being removed while waiting for its lock")


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "ingest").mkdir(parents=True, exist_ok=True)

    def blob_path(self, digest: Digest) -> Path:
        return self.root / "blobs" / "sha256" / digest.hex

    def info(self, digest: Digest) -> BlobInfo:
        try:
            return BlobInfo(digest, self.blob_path(digest).stat().st_size)
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def exists(self, digest: Digest) -> bool:
        return self.blob_path(digest).exists()

    def open(self, digest: Digest) -> BinaryIO:
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def read(self, digest: Digest) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def writer(self, ref: str) -> Writer:
        """A writer for ``ref`` (any stable name, e.g. the expected digest); resumes partial data."""
        key = hashlib.sha256(ref.encode()).hexdigest()[:32]
        return Writer(self, ref, self.root / "ingest" / key)

    def put(self, data: bytes, expected: Digest | None = None) -> BlobInfo:
        digest = Digest.of(data)
        if expected is not None and digest != expected:
            raise DigestMismatch(f"digest mismatch: expected {expected}, got {digest}")
        if self.exists(digest):
            return BlobInfo(digest, len(data))
        writer = self.writer(digest)
        writer.truncate()
        writer.write(data)
        return writer.commit(digest, len(data))

    def ingest_file(self, source: IO[bytes], expected: Digest | None = None) -> BlobInfo:
        writer = self.writer(f"file:{id(source)}:{os.getpid()}:{os.urandom(8).hex()}")
        try:
            while chunk := source.read(_CHUNK):
                writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        return writer.commit(expected)

    def delete(self, digest: Digest) -> None:
        try:
            self.blob_path(digest).unlink()
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def walk(self) -> Iterator[BlobInfo]:
        for path in (self.root / "blobs" / "sha256").iterdir():
            yield BlobInfo(Digest("sha256:" + path.name), path.stat().st_size)


