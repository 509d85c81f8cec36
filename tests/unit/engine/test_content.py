from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from minicloud.engine.content import ContentStore, Digest, DigestMismatch
from minicloud.engine.errors import InvalidArgument, NotFound


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
