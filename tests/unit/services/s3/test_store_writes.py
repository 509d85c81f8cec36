"""S3's metadata writes with prepared statements, on every metadata backend: the null version
replaced in place, blob reference counts by upsert, shared blobs kept, versioned keys untouched."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from minicloud.services.s3 import store
from minicloud.services.s3.tables import s3_blobs, s3_objects
from minicloud.storage.metadata.db import Database

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _values(key: str, digest: str, version_id: str = store.NULL_VERSION, **extra: Any) -> dict[str, Any]:
    return {"bucket": "b", "key": key, "version_id": version_id, "delete_marker": False, "size": 4,
            "etag": '"e"', "last_modified": NOW, "storage_class": "STANDARD", "owner": "123456789012",
            "digest": digest, "parts": None, "meta": "{}", "checksums": None, "tags": None,
            "encryption": None, "lock": None, "acl": None, **extra}


def _refs(db: Database) -> dict[str, int]:
    return dict(db.read_sync(lambda c: c.execute(sa.select(s3_blobs.c.digest, s3_blobs.c.refs)).all()))


def _rows(db: Database, key: str) -> list[Any]:
    return db.read_sync(lambda c: list(c.execute(sa.select(s3_objects).where(s3_objects.c.key == key))))


def test_unversioned_put_replaces_the_null_version_in_place(metadata_db: Database) -> None:
    db = metadata_db
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    assert db.write_sync(lambda c: store.put_version(c, _values("k", a, tags="[]"), None)) == []
    assert _refs(db) == {a: 1}
    released = db.write_sync(lambda c: store.put_version(c, _values("k", b), None))
    assert released == [a] and _refs(db) == {b: 1}
    (row,) = _rows(db, "k")
    assert row.digest == b and row.latest and row.tags is None  # nothing of the old version is left
    found = db.read_sync(lambda c: store.get_object(c, "b", "k"))
    assert found is not None and found.digest == b and found.last_modified == NOW
    assert db.read_sync(lambda c: store.get_object(c, "b", "k", store.NULL_VERSION)) == found
    assert db.read_sync(lambda c: store.get_object(c, "b", "other")) is None


def test_a_blob_shared_by_two_keys_is_released_only_by_the_last(metadata_db: Database) -> None:
    db = metadata_db
    shared, other = "sha256:" + "c" * 64, "sha256:" + "d" * 64
    db.write_sync(lambda c: store.put_version(c, _values("one", shared), None))
    db.write_sync(lambda c: store.put_version(c, _values("two", shared), None))
    assert _refs(db) == {shared: 2}
    assert db.write_sync(lambda c: store.put_version(c, _values("one", shared), None)) == []  # same content again
    assert _refs(db) == {shared: 2}
    assert db.write_sync(lambda c: store.put_version(c, _values("one", other), None)) == []
    assert db.write_sync(lambda c: store.put_version(c, _values("two", other), None)) == [shared]
    assert _refs(db) == {other: 2}

    assert db.read_sync(lambda c: store.referenced(c, [shared, other, "sha256:" + "e" * 64])) == {other}


def test_referenced_answers_for_a_batch_of_released_blobs(metadata_db: Database) -> None:
    db = metadata_db
    kept = ["sha256:" + f"{i:064x}" for i in range(3)]
    for i, digest in enumerate(kept):
        db.write_sync(lambda c, d=digest, k=f"k{i}": store.put_version(c, _values(k, d), None))  # type: ignore[misc]
    gone = ["sha256:" + f"{i:064x}" for i in range(100, 400)]
    assert db.read_sync(lambda c: store.referenced(c, gone + kept)) == set(kept)
    assert db.read_sync(lambda c: store.referenced(c, [])) == set()

def test_versioned_puts_keep_every_version(metadata_db: Database) -> None:
    db = metadata_db
    first, second = "sha256:" + "e" * 64, "sha256:" + "f" * 64
    db.write_sync(lambda c: store.put_version(c, _values("v", first, version_id="v1"), "Enabled"))
    assert db.write_sync(lambda c: store.put_version(c, _values("v", second, version_id="v2"), "Enabled")) == []
    rows = _rows(db, "v")
    assert sorted((r.version_id, r.latest) for r in rows) == [("v1", False), ("v2", True)]
    old = db.read_sync(lambda c: store.get_object(c, "b", "v", "v1"))
    assert old is not None and old.digest == first and not old.latest
    assert _refs(db) == {first: 1, second: 1}
