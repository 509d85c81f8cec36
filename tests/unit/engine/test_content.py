from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from minicloud.engine.content import ContentStore, Digest, DigestMismatch
from minicloud.engine.content.store import BlobInfo
from minicloud.engine.errors import InvalidArgument, NotFound
from tests.support.racing import race_with_a_reader


def digest_of(data: bytes) -> Digest:
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


def test_put_read_is_read_only(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    info = store.put(b"hello")
    assert info.digest == digest_of(b"hello") and info.size == 5
    assert store.read(info.digest) == b"hello"
    mode = store.blob_path(info.digest).stat().st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert store.put(b"hello") == info  # already exists is success
    assert not list((tmp_path / "ingest").iterdir())


def test_commit_verifies_digest_and_size(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    writer = store.writer("ref")
    writer.write(b"abc")
    with pytest.raises(DigestMismatch):
        writer.commit(digest_of(b"abd"), 3)
    assert not store.exists(digest_of(b"abc"))
    assert not list((tmp_path / "ingest").iterdir())  # a mismatch is discarded, never resumed
    writer = store.writer("ref")
    writer.write(b"abc")
    with pytest.raises(DigestMismatch, match="size mismatch"):
        writer.commit(digest_of(b"abc"), 4)


def test_interrupted_ingest_resumes(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    data = os.urandom(3000)
    expected = digest_of(data)
    writer = store.writer(expected)
    writer.write(data[:1000])
    writer.close()  # interrupted
    resumed = store.writer(expected)
    assert resumed.offset == 1000
    resumed.write(data[1000:])
    info = resumed.commit(expected, len(data))
    assert store.read(info.digest) == data


def test_truncate_starts_over(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    writer = store.writer("x")
    writer.write(b"garbage")
    writer.truncate()
    writer.write(b"good")
    assert writer.commit(digest_of(b"good")).size == 4


def test_delete_walk_and_errors(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    a = store.put(b"a").digest
    store.put(b"b")
    assert {i.digest for i in store.walk()} == {a, digest_of(b"b")}
    store.delete(a)
    with pytest.raises(NotFound):
        store.read(a)
    with pytest.raises(NotFound):
        store.delete(a)
    with pytest.raises(InvalidArgument):
        Digest("sha256:xyz")


def test_ingest_of_an_existing_blob_leaves_nothing(tmp_path: Path) -> None:
    import io

    store = ContentStore(tmp_path)
    store.put(b"same")
    assert store.ingest_file(io.BytesIO(b"same")).digest == digest_of(b"same")
    assert not list((tmp_path / "ingest").iterdir())



def test_racing_puts_of_one_blob_never_rewrite_the_published_blob(tmp_path: Path) -> None:
    # Two pulls of one image put its config at once. Before, the second writer waited for the
    # first's lock on ingest/<ref>/data, and got it on the file the first had just renamed into
    # blobs/: its put truncated and rewrote the published blob (a reader meanwhile read it empty;
    # a crash then left it so), or its open found the ingest directory the first had removed
    # (FileNotFoundError).
    store = ContentStore(tmp_path)
    for attempt in range(30):
        data = attempt.to_bytes(2, "big") * 50_000
        results, short_reads = _race_puts(store, data, racers=8)
        assert [r for r in results if not (isinstance(r, BlobInfo) and r.digest == Digest.of(data))] == []
        assert not short_reads, short_reads
        assert store.read(Digest.of(data)) == data
    assert list((tmp_path / "ingest").iterdir()) == []


def _race_puts(store: ContentStore, data: bytes, racers: int) -> tuple[list[object], list[int]]:
    """``racers`` threads put ``data`` at once while another reads the blob whenever it exists:
    what each put returned or raised, and the sizes of the reads that found less than the blob."""
    digest = Digest.of(data)

    def size_now() -> int | None:
        try:
            with store.open(digest) as f:
                return len(f.read())
        except NotFound:
            return None

    return race_with_a_reader(lambda: store.put(data), racers, size_now, len(data))
