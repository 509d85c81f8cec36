"""One replica root on a local file system: the blocking file operations, nothing asynchronous.

    <root>/sha256/<xx>/<hex>          committed blobs, read-only (xx: the first two hex digits)
    <root>/ingest/<ref>/data          bytes of an ingest in progress
    <root>/ingest/<ref>/started       when the ingest began (its mtime)

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

_COPY_CHUNK = 1 << 20


def _mtime(stat: os.stat_result) -> datetime:
    return datetime.fromtimestamp(stat.st_mtime, UTC)


class Replica:
    """A root directory holding one copy of every blob written to it."""

    def __init__(self, root: Path, name: str = "") -> None:
        self.root = root
        self.name = name or root.name
        self.ingest_root = root / "ingest"

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
        try:
            st = self.path(digest).stat()
        except FileNotFoundError:
            raise BlobNotFound(str(digest)) from None
        return BlobInfo(digest, st.st_size, _mtime(st))

    def open(self, digest: Digest) -> BinaryIO:
        try:
            return self.path(digest).open("rb")
        except FileNotFoundError:
            raise BlobNotFound(str(digest)) from None

    def delete(self, digest: Digest) -> bool:
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    def walk(self) -> Iterator[BlobInfo]:
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
        """Copy a blob from another replica (repair, or a replica that missed an ingest)."""
        if self.path(digest).exists():
            return self.stat(digest)
        tmp_dir = self.ingest_root / f".copy-{digest.hex[:32]}-{os.getpid()}"
        tmp_dir.mkdir(parents=True, exist_ok=True)
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
