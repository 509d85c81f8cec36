"""The blob store: ingest, verify, commit, read, delete, resume, replicas and write policies."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from minicloud.storage.blobs import (
    BlobNotFound,
    Digest,
    DigestMismatch,
    InvalidDigest,
    NoReplicaAvailable,
    Replica,
    ReplicatedBlobStore,
    SizeMismatch,
    WritePolicy,
)

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")


def sha256(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ReplicatedBlobStore]:
    s = ReplicatedBlobStore.for_zones(tmp_path / "blobs", ZONES, flush_bytes=1024)
    yield s
    s.close()


async def ingest(store: ReplicatedBlobStore, ref: str, data: bytes, digest: Digest | None = None,
                 chunk: int = 700) -> object:
    w = await store.ingest(ref)
    for i in range(0, len(data), chunk):
        await w.write(data[i:i + chunk])
    return await w.commit(digest or sha256(data), len(data))


async def read(store: ReplicatedBlobStore, digest: Digest, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join([c async for c in store.read(digest, offset, length, chunk_size=333)])


def test_digest_parsing() -> None:
    d = Digest.parse("sha256:" + "a" * 64)
    assert (d.algorithm, str(d)) == ("sha256", "sha256:" + "a" * 64)
    assert Digest.parse("sha512:" + "0" * 128).algorithm == "sha512"
    for bad in ("sha256:abc", "md5:" + "a" * 32, "sha256:" + "A" * 64, "sha256" + "a" * 64, ""):
        with pytest.raises(InvalidDigest):
            Digest.parse(bad)


def test_ingest_commits_read_only_blob_on_every_replica(store: ReplicatedBlobStore) -> None:
    data = os.urandom(10_000)
    info = run(ingest(store, "r1", data))
    digest = sha256(data)
    assert info.digest == digest and info.size == len(data)  # type: ignore[attr-defined]
    for replica in store.replicas:
        path = replica.path(digest)
        assert path.read_bytes() == data
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
        assert path.parent.name == digest.hex[:2] and path.parent.parent.name == "sha256"
        assert not replica.ingest_dir("r1").exists()
    assert run(read(store, digest)) == data
    assert run(read(store, digest, 100, 50)) == data[100:150]
    assert run(store.stat(digest)).size == len(data)  # type: ignore[attr-defined]


def test_a_large_blob_is_synced_on_every_replica_at_once(tmp_path: Path) -> None:
    from minicloud.storage.blobs.store import PARALLEL_SYNC_BYTES

    store = ReplicatedBlobStore.for_zones(tmp_path / "blobs", ZONES)
    data = os.urandom(PARALLEL_SYNC_BYTES + 1)
    try:
        info = run(ingest(store, "big", data))
        assert info.size == len(data)  # type: ignore[attr-defined]
        for replica in store.replicas:
            assert hashlib.sha256(replica.path(sha256(data)).read_bytes()).digest() == hashlib.sha256(data).digest()
            assert not replica.ingest_dir("big").exists()
    finally:
        store.close()


def test_wrong_digest_or_size_leaves_nothing_visible(store: ReplicatedBlobStore) -> None:
    data = b"hello" * 1000
    with pytest.raises(DigestMismatch):
        run(ingest(store, "bad", data, digest=sha256(b"other")))
    with pytest.raises(BlobNotFound):
        run(store.stat(sha256(b"other")))

    async def wrong_size() -> None:
        w = await store.ingest("short")
        await w.write(data)
        await w.commit(sha256(data), len(data) + 1)
    with pytest.raises(SizeMismatch):
        run(wrong_size())
    with pytest.raises(BlobNotFound):
        run(store.stat(sha256(data)))


def test_already_exists_is_success(store: ReplicatedBlobStore) -> None:
    data = b"same bytes"
    first = run(ingest(store, "a", data))
    second = run(ingest(store, "b", data))
    assert first.digest == second.digest  # type: ignore[attr-defined]
    assert [info.digest for info in run(_walk(store))] == [sha256(data)]  # type: ignore[attr-defined]


async def _walk(store: ReplicatedBlobStore) -> list[object]:
    return [info async for info in store.walk()]


def test_resume_rebuilds_the_hash_from_disk(store: ReplicatedBlobStore) -> None:
    data = os.urandom(5000)

    async def scenario() -> object:
        w = await store.ingest("resumable")
        await w.write(data[:3000])
        await w.close()
        assert (await store.ingest_status("resumable")).offset == 3000
        w = await store.ingest("resumable")  # as after a restart: a new writer on the same ref
        assert w.offset == 3000
        await w.write(data[3000:])
        return await w.commit(sha256(data), len(data))
    info = run(scenario())
    assert info.size == len(data)  # type: ignore[attr-defined]
    assert run(read(store, sha256(data))) == data


def test_sha512_is_verified_at_commit(store: ReplicatedBlobStore) -> None:
    data = os.urandom(4096)
    digest = Digest("sha512", hashlib.sha512(data).hexdigest())
    run(ingest(store, "s512", data, digest))
    assert run(read(store, digest)) == data


def test_delete_and_abort(store: ReplicatedBlobStore) -> None:
    data = b"gone soon"
    run(ingest(store, "d", data))
    run(store.delete(sha256(data)))
    with pytest.raises(BlobNotFound):
        run(store.stat(sha256(data)))
    with pytest.raises(BlobNotFound):
        run(store.delete(sha256(data)))

    async def aborted() -> None:
        w = await store.ingest("abandon")
        await w.write(b"x" * 5000)
        await w.close()
        await store.abort_ingest("abandon")
        with pytest.raises(BlobNotFound):
            await store.ingest_status("abandon")
    run(aborted())


def test_reads_come_from_the_first_replica_that_has_the_blob(store: ReplicatedBlobStore) -> None:
    data = b"replicated"
    run(ingest(store, "x", data))
    digest = sha256(data)
    store.replicas[0].delete(digest)  # a lost copy
    assert run(read(store, digest)) == data
    assert run(store.repair(digest)) == ["us-east-1a"]
    assert store.replicas[0].path(digest).read_bytes() == data


def test_write_policies_with_an_unhealthy_zone(tmp_path: Path) -> None:
    replicas = [Replica(tmp_path / z, z) for z in ZONES]
    quorum = ReplicatedBlobStore(replicas, WritePolicy.QUORUM)
    every = ReplicatedBlobStore(replicas, WritePolicy.ALL)
    replicas[2].healthy = lambda: False  # type: ignore[method-assign]
    data = b"two of three"
    run(ingest(quorum, "q", data))
    assert replicas[0].path(sha256(data)).exists() and replicas[1].path(sha256(data)).exists()
    assert not replicas[2].path(sha256(data)).exists()
    with pytest.raises(NoReplicaAvailable):
        run(ingest(every, "all", b"needs all three"))
    replicas[1].healthy = lambda: False  # type: ignore[method-assign]
    with pytest.raises(NoReplicaAvailable):
        run(ingest(quorum, "q2", b"one of three is not a quorum"))
    quorum.close()
    every.close()


def test_a_replica_that_missed_part_of_an_ingest_gets_a_copy(tmp_path: Path) -> None:
    replicas = [Replica(tmp_path / z, z) for z in ZONES]
    store = ReplicatedBlobStore(replicas, WritePolicy.ALL, flush_bytes=1)
    data = os.urandom(2000)

    async def scenario() -> None:
        w = await store.ingest("partial")
        await w.write(data[:1000])
        await w.close()
        replicas[1].ingest_data("partial").write_bytes(data[:10])  # that zone lost bytes
        w = await store.ingest("partial")
        await w.write(data[1000:])
        await w.commit(sha256(data), len(data))
    run(scenario())
    for replica in replicas:
        assert replica.path(sha256(data)).read_bytes() == data
    store.close()


def test_memory_stays_bounded_while_streaming(store: ReplicatedBlobStore) -> None:
    chunk = b"z" * 65536

    async def scenario() -> int:
        w = await store.ingest("big")
        peak = 0
        for _ in range(64):
            await w.write(chunk)
            peak = max(peak, w._pending_size)
        await w.abort()
        return peak
    assert run(scenario()) < store.flush_bytes + len(chunk)
