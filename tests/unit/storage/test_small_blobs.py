"""Small blobs: one-job durable writes, and page-cache reads that never wait for the disk."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

import pytest

from minicloud.storage.blobs import Digest, Replica, small
from minicloud.storage.blobs.small import (
    NotCached,
    healthy_replicas,
    prepare_fanout,
    read_cached,
    read_whole,
    write_small,
)


def _replica(tmp_path: Path) -> Replica:
    replica = Replica(tmp_path / "zone-a", "zone-a")
    replica.prepare()
    prepare_fanout(replica)
    return replica


def _digest(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


def test_write_small_installs_a_read_only_blob_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    replica = _replica(tmp_path)
    assert len(list((replica.root / "sha256").iterdir())) == 256
    data = os.urandom(4096)
    digest = _digest(data)
    write_small(replica, data, digest)
    path = replica.path(digest)
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert list(replica.ingest_root.iterdir()) == []
    write_small(replica, data, digest)  # the same content again: the blob stands
    assert path.read_bytes() == data and list(replica.ingest_root.iterdir()) == []


def test_write_small_recreates_a_missing_fanout_directory(tmp_path: Path) -> None:
    replica = _replica(tmp_path)
    data = b"x" * 100
    digest = _digest(data)
    replica.path(digest).parent.rmdir()
    write_small(replica, data, digest)
    assert replica.path(digest).read_bytes() == data


def test_read_cached_reads_from_the_page_cache_or_says_it_cannot(tmp_path: Path) -> None:
    replica = _replica(tmp_path)
    data = os.urandom(8192)
    digest = _digest(data)
    write_small(replica, data, digest)
    assert read_cached(replica, digest, len(data)) == data
    assert read_cached(replica, digest, len(data) + 10) == data  # the file is shorter: what it has
    fd = os.open(replica.path(digest), os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # clean pages after the fsync: dropped
    finally:
        os.close(fd)
    try:
        got = read_cached(replica, digest, len(data))
    except NotCached:
        got = read_whole(replica, digest, len(data))
    assert got == data
    with pytest.raises(FileNotFoundError):
        read_cached(replica, _digest(b"absent"), 10)


def test_replica_health_is_rechecked_once_its_time_is_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]

    class Clock:
        @staticmethod
        def monotonic() -> float:
            return clock[0]
    monkeypatch.setattr(small, "time", Clock)  # this module's clock only
    replicas = [_replica(tmp_path / "one"), _replica(tmp_path / "two")]
    assert healthy_replicas(replicas) == replicas
    shutil.rmtree(replicas[1].ingest_root)  # no longer writable
    clock[0] += small.HEALTH_SECONDS / 2
    assert healthy_replicas(replicas) == replicas  # still within its time
    clock[0] += small.HEALTH_SECONDS
    assert healthy_replicas(replicas) == replicas[:1]
