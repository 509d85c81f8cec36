"""Small sealed objects read and decrypted on the event loop, and staged without a thread."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from minicloud.services.s3 import crypto
from minicloud.services.s3.small import SmallDigests, commit_small, read_small_sealed
from minicloud.storage.blobs import Digest, NoReplicaAvailable, Replica, ReplicatedBlobStore, WritePolicy
from minicloud.storage.blobs.small import prepare_fanout, write_small
from minicloud.storage.metadata.db import Database

KEK = bytes(range(32))


def _store(tmp_path: Path) -> tuple[ReplicatedBlobStore, list[Replica]]:
    replicas = [Replica(tmp_path / z, z) for z in ("a", "b")]
    store = ReplicatedBlobStore(replicas, WritePolicy.QUORUM, workers=2)
    for replica in replicas:
        prepare_fanout(replica)
    return store, replicas


def test_staged_digests_are_those_of_the_plaintext_and_the_sealed_body() -> None:
    data = os.urandom(5000)
    found = SmallDigests(data, {"CRC32"}, crypto.Sealer(KEK))
    assert found.sha256 == hashlib.sha256(data).hexdigest() and found.md5 == hashlib.md5(data).hexdigest()
    assert set(found.checksums) == {"CRC32"}
    assert found.sealed_size == len(found.body) == crypto.sealed_size(len(data))
    assert found.sealed_sha256 == hashlib.sha256(found.body).hexdigest()
    plain = SmallDigests(data, set(), None)
    assert plain.body == data and plain.sealed_sha256 is None


def test_read_small_sealed_finds_the_copy_decrypts_and_slices(tmp_path: Path) -> None:
    store, replicas = _store(tmp_path)
    data = os.urandom(4096)
    found = SmallDigests(data, set(), crypto.Sealer(KEK))
    assert found.sealed_sha256 is not None
    digest = Digest("sha256", found.sealed_sha256)
    write_small(replicas[1], found.body, digest)  # only the second zone has it (a one-zone object)
    segments = [(str(digest), len(data))]
    try:
        assert asyncio.run(read_small_sealed(store, replicas, segments, 0, len(data), KEK)) == data
        assert asyncio.run(read_small_sealed(store, replicas, segments, 10, 20, KEK)) == data[10:20]
        # a multipart object or a large one is not for this path
        assert asyncio.run(read_small_sealed(store, replicas, segments * 2, 0, 10, KEK)) is None
        # an altered copy is left to the general path (which repairs it from another zone)
        path = replicas[1].path(digest)
        sealed = bytearray(path.read_bytes())
        sealed[-1] ^= 1
        path.chmod(0o644)
        path.write_bytes(bytes(sealed))
        assert asyncio.run(read_small_sealed(store, replicas, segments, 0, len(data), KEK)) is None
        path.unlink()
        assert asyncio.run(read_small_sealed(store, replicas, segments, 0, len(data), KEK)) is None
    finally:
        store.close()


def _three(tmp_path: Path) -> list[Replica]:
    replicas = [Replica(tmp_path / z, z) for z in ("a", "b", "c")]
    for replica in replicas:
        replica.prepare()
        prepare_fanout(replica)
    return replicas


def test_commit_small_commits_metadata_once_a_quorum_of_copies_is_durable(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    replicas = _three(tmp_path)
    shutil.rmtree(replicas[2].ingest_root)  # one zone cannot write: two of three still make a quorum
    body = os.urandom(3000)
    digest = Digest("sha256", hashlib.sha256(body).hexdigest())
    seen: list[list[bool]] = []

    def write(conn: sa.Connection) -> str:
        seen.append([r.path(digest).exists() for r in replicas])
        return "committed"
    try:
        assert asyncio.run(commit_small(db, replicas, body, digest, write)) == "committed"
        assert sum(seen[0]) >= 2  # the metadata write ran only after a quorum had its copy
        shutil.rmtree(replicas[1].ingest_root)  # now two of three fail: no quorum, no metadata
        seen.clear()
        with pytest.raises(NoReplicaAvailable):
            asyncio.run(commit_small(db, replicas, body[:100], Digest("sha256", "0" * 64), write))
        assert seen == []

        def refused(conn: sa.Connection) -> str:
            raise ValueError("refused")
        with pytest.raises(ValueError, match="refused"):
            asyncio.run(commit_small(db, replicas[:1], body, digest, refused))
    finally:
        db.close()


def test_the_replica_hint_never_hides_a_copy_that_moved(tmp_path: Path) -> None:
    store, replicas = _store(tmp_path)
    data = os.urandom(2048)
    found = SmallDigests(data, set(), crypto.Sealer(KEK))
    assert found.sealed_sha256 is not None
    digest = Digest("sha256", found.sealed_sha256)
    segments = [(str(digest), len(data))]
    try:
        write_small(replicas[1], found.body, digest)
        assert asyncio.run(read_small_sealed(store, replicas, segments, 0, len(data), KEK)) == data  # hint: b
        write_small(replicas[0], found.body, digest)
        replicas[1].path(digest).unlink()  # the hinted copy is gone, another zone has one
        assert asyncio.run(read_small_sealed(store, replicas, segments, 0, len(data), KEK)) == data
        assert asyncio.run(read_small_sealed(store, replicas, segments, 0, len(data), KEK)) == data
    finally:
        store.close()


def test_small_one_zone_objects_go_to_one_zone_in_runs_and_to_every_zone_in_equal_shares(tmp_path: Path) -> None:
    """ONEZONE_IA's small copies go ONE_ZONE_RUN in a row to one zone (one pack commit per round
    of the small-blob writer), then to the next; STANDARD's to every zone."""
    import itertools
    from collections import Counter

    from minicloud.services.s3.data import ONE_ZONE_RUN, ObjectData

    data = ObjectData(tmp_path / "s3", ["a", "b", "c"])
    try:
        picks = [data._replicas_for("ONEZONE_IA") for _ in range(3 * ONE_ZONE_RUN * 2)]
        assert all(len(zones) == 1 for zones in picks)
        names = [zones[0].name for zones in picks]
        runs = [(zone, len(list(run))) for zone, run in itertools.groupby(names)]
        assert all(length == ONE_ZONE_RUN for _, length in runs[1:-1]), runs  # whole runs between the ends
        assert len({zone for zone, _ in runs[:3]}) == 3  # each run in the next zone
        assert Counter(names) == {"a": 2 * ONE_ZONE_RUN, "b": 2 * ONE_ZONE_RUN, "c": 2 * ONE_ZONE_RUN}
        assert [r.name for r in data._replicas_for("STANDARD")] == ["a", "b", "c"]
    finally:
        data.close()
