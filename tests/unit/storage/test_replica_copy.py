"""Copies of one blob into a replica that overlap (a repair pass and a read's repair of a replica
that missed the blob): the blob is published once, whole."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from minicloud.storage.blobs import Digest, Replica
from minicloud.storage.blobs.core import BlobInfo
from tests.support.racing import race_with_a_reader


def _replica(tmp_path: Path, name: str) -> Replica:
    replica = Replica(tmp_path / name, name)
    replica.prepare()
    return replica


def test_overlapping_copies_of_one_blob_publish_it_whole(tmp_path: Path) -> None:
    # Before, every copy of a digest in one process went through the one temporary file
    # ingest/.copy-<digest>-<pid>/data: a copy opening it truncated what another had just copied
    # and was installing (the blob was published empty or short, and stayed so if that copy
    # failed), and a copy's clean-up removed the directory under another (FileNotFoundError).
    source = _replica(tmp_path, "zone-a")
    data = os.urandom(1 << 20)
    digest = Digest("sha256", hashlib.sha256(data).hexdigest())
    staged = tmp_path / "staged"
    staged.write_bytes(data)
    source.install(staged, digest)
    for attempt in range(30):
        target = _replica(tmp_path, f"zone-b{attempt}")
        results, short_reads = _race_copies(source, target, digest, len(data), racers=6)
        assert [r for r in results if not (isinstance(r, BlobInfo) and r.size == len(data))] == []
        assert not short_reads, short_reads
        assert target.path(digest).read_bytes() == data
        assert list(target.ingest_root.iterdir()) == []


def _race_copies(source: Replica, target: Replica, digest: Digest, size: int,
                 racers: int) -> tuple[list[object], list[int]]:
    def size_now() -> int | None:
        try:
            return os.stat(target.path(digest)).st_size
        except FileNotFoundError:
            return None

    return race_with_a_reader(lambda: target.copy_from(source, digest), racers, size_now, size)
