"""One replica root on a local file system: the blocking file operations, nothing asynchronous.

    <root>/sha256/<xx>/<hex>          committed blobs, read-only (xx: the first two hex digits)
    <root>/small-pack.sqlite          small blobs packed in one database (S3's replicas: ``pack.py``)
    <root>/ingest/<ref>/data          bytes of an ingest in progress
    <root>/ingest/<ref>/started       when the ingest began (its mtime)

A replica with a pack (``enable_pack``) holds blobs in two tiers, and every method that reads,
lists, removes or copies blobs sees both: a packed row first, then the file. ``open`` gives a
packed blob as an anonymous in-memory file (``memfd``: a real descriptor, so positional reads
work on it as on a blob file). Without a pack (the registry's replicas) only files exist.

Every method here blocks; ``ReplicatedBlobStore`` calls them on its thread pool.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from minicloud.storage.blobs.core import ALGORITHMS, BlobInfo, BlobNotFound, Digest, IngestStatus, check_ref
from minicloud.storage.durable import fsync_dir

if TYPE_CHECKING:  # (imported where used: the small-blob writer process never opens an ingest)
    from minicloud.storage.blobs.ingestfile import IngestFile
    from minicloud.storage.blobs.pack import Pack

_COPY_CHUNK = 1 << 20


def _mtime(stat: os.stat_result) -> datetime:
    return datetime.fromtimestamp(stat.st_mtime, UTC)


def _memory_file(data: bytes, name: str) -> BinaryIO:
    """``data`` as a read-only file object on an anonymous in-memory file, positioned at 0."""
    fd = os.memfd_create(name[:200], os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.lseek(fd, 0, os.SEEK_SET)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class Replica:
    """A root directory holding one copy of every blob written to it."""

    def __init__(self, root: Path, name: str = "") -> None:
        self.root = root
        self.name = name or root.name
        self.ingest_root = root / "ingest"
        self.pack: Pack | None = None

    def enable_pack(self, create: bool = True) -> Pack:
        """Keep small blobs in this root's pack from now on (``create``: make the pack when it does
        not exist; else it is assumed to: while it is not there, writes to it fail)."""
        from minicloud.storage.blobs.pack import Pack

        self.pack = Pack.create(self.root) if create else Pack(self.root)
        return self.pack

    def __repr__(self) -> str:
        return f"Replica({self.name!r}, {str(self.root)!r})"

    def prepare(self) -> None:
        self.ingest_root.mkdir(parents=True, exist_ok=True)
        for algorithm in ALGORITHMS:
            (self.root / algorithm).mkdir(exist_ok=True)

    def healthy(self) -> bool:
        return os.access(self.root, os.R_OK | os.W_OK | os.X_OK) and os.access(self.ingest_root, os.W_OK)

    # -- blobs ---------------------------------------------------------------------------------------
    def path(self, digest: Digest) -> Path:
        return self.root / digest.algorithm / digest.hex[:2] / digest.hex

    def stat(self, digest: Digest) -> BlobInfo:
        if self.pack is not None:
            found = self.pack.stat(digest)
            if found is not None:
                return BlobInfo(digest, found[0], datetime.fromtimestamp(found[1], UTC))
        try:
            st = self.path(digest).stat()
        except FileNotFoundError:
            raise BlobNotFound(str(digest)) from None
        return BlobInfo(digest, st.st_size, _mtime(st))

    def has(self, digest: Digest) -> bool:
        """Whether this replica holds a copy (packed or a file), good or not."""
        return (self.pack is not None and self.pack.stat(digest) is not None) or self.path(digest).exists()

    def packed(self, digest: Digest) -> bytes | None:
        """The packed copy's bytes, or None when the pack (if any) has no row for the blob."""
        return self.pack.get(digest) if self.pack is not None else None

    def read_bytes(self, digest: Digest) -> bytes:
        """The whole copy, from either tier (BlobNotFound when there is none)."""
        data = self.packed(digest)
        if data is not None:
            return data
        with self.open_file(digest) as f:
            return f.read()

    def open(self, digest: Digest) -> BinaryIO:
        data = self.packed(digest)
        if data is not None:
            return _memory_file(data, digest.hex)
        return self.open_file(digest)

    def open_file(self, digest: Digest) -> BinaryIO:
        try:
            return self.path(digest).open("rb")
        except FileNotFoundError:
            raise BlobNotFound(str(digest)) from None

    def delete(self, digest: Digest) -> bool:
        removed = self.pack is not None and self.pack.delete(digest)
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            return removed
        return True

    def quarantine(self, digest: Digest) -> None:
        """Set a corrupt copy aside: a file is renamed ``<hex>.corrupt`` (kept for a look), a
        packed row removed. Errors are ignored: a copy that could not be moved is found again."""
        with contextlib.suppress(OSError):
            if self.pack is not None:
                self.pack.delete(digest)
        with contextlib.suppress(OSError):
            os.replace(self.path(digest), self.path(digest).with_suffix(".corrupt"))

    def walk(self) -> Iterator[BlobInfo]:
        """Every copy: the files, then the packed rows no file duplicates."""
        files: set[str] = set()
        for info in self._walk_files():
            files.add(info.digest.hex)
            yield info
        if self.pack is not None:
            for hex_digest, size, created in self.pack.walk():
                if hex_digest not in files:
                    yield BlobInfo(Digest("sha256", hex_digest), size, datetime.fromtimestamp(created, UTC))

    def _walk_files(self) -> Iterator[BlobInfo]:
        for algorithm, length in ALGORITHMS.items():
            base = self.root / algorithm
            if not base.is_dir():
                continue
            for prefix in sorted(os.listdir(base)):
                for name in sorted(os.listdir(base / prefix)):
                    if len(name) != length or not name.startswith(prefix):
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        st = (base / prefix / name).stat()
                        yield BlobInfo(Digest(algorithm, name), st.st_size, _mtime(st))

    def install(self, source: Path, digest: Digest) -> BlobInfo:
        """Make ``source`` (already fsynced) the blob ``digest``: read-only, renamed into place.
        When the blob already exists, ``source`` is removed and the existing blob stands."""
        target = self.path(digest)
        if target.exists():
            source.unlink(missing_ok=True)
            os.utime(target)  # fresh again: a collector's grace period protects it from now on
            return self.stat(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(source, 0o444)
        os.replace(source, target)
        fsync_dir(target.parent)
        return self.stat(digest)

    def copy_from(self, other: Replica, digest: Digest) -> BlobInfo:
        """Copy a blob from another replica (repair, or a replica that missed an ingest), from
        either tier into this one's pack when it has one and the blob is small, else as a file."""
        if self.has(digest):
            return self.stat(digest)
        if self.pack is not None:
            from minicloud.storage.blobs.pack import Collision, packable

            if packable(digest, other.stat(digest).size):
                data = other.read_bytes(digest)
                with contextlib.suppress(Collision):  # another digest holds its key: a file instead
                    self.pack.put(data, digest)
                    return self.stat(digest)
        # a directory of this copy's own: copies of one digest overlap (a repair pass, a read's
        # repair), and one sharing another's file truncated what that one was installing
        tmp_dir = self.ingest_root / f".copy-{digest.hex[:32]}-{os.getpid()}-{os.urandom(4).hex()}"
        tmp_dir.mkdir(parents=True)
        tmp = tmp_dir / "data"
        try:
            with other.open(digest) as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst, _COPY_CHUNK)
                dst.flush()
                os.fsync(dst.fileno())
            return self.install(tmp, digest)
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)

    # -- ingests -------------------------------------------------------------------------------------
    def ingest_dir(self, ref: str) -> Path:
        return self.ingest_root / check_ref(ref)

    def ingest_data(self, ref: str) -> Path:
        return self.ingest_dir(ref) / "data"

    def open_ingest(self, ref: str, direct: bool = False) -> IngestFile:
        """Open (creating when new) the ingest's data file for appending (``direct``: around the
        page cache, for a copy that is not the one read first; see ingestfile.py)."""
        directory = self.ingest_dir(ref)
        if not directory.is_dir():
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "started").touch()
        from minicloud.storage.blobs.ingestfile import IngestFile

        return IngestFile(self.ingest_data(ref), direct)

    def ingest_status(self, ref: str) -> IngestStatus:
        directory = self.ingest_dir(ref)
        try:
            started = (directory / "started").stat()
        except FileNotFoundError:
            raise BlobNotFound(f"no ingest {ref}") from None
        try:
            data = (directory / "data").stat()
            return IngestStatus(ref, data.st_size, _mtime(started), _mtime(data))
        except FileNotFoundError:
            return IngestStatus(ref, 0, _mtime(started), _mtime(started))

    def remove_ingest(self, ref: str) -> None:
        shutil.rmtree(self.ingest_dir(ref), ignore_errors=True)

    def ingests(self) -> Iterator[IngestStatus]:
        if not self.ingest_root.is_dir():
            return
        for name in sorted(os.listdir(self.ingest_root)):
            if name.startswith("."):
                continue
            with contextlib.suppress(BlobNotFound, ValueError):
                yield self.ingest_status(name)
