"""S3's object rows are remembered only while nothing was committed to the metadata store since they were
read: every commit (the group-committing writer, ``write_sync``, another process) makes the next read go to
the store."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from minicloud.services.s3 import store
from minicloud.services.s3.base import S3Base
from minicloud.services.s3.tables import s3_objects
from minicloud.storage.metadata.db import Database

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _values(key: str, digest: str, **extra: Any) -> dict[str, Any]:
    return {"bucket": "b", "key": key, "version_id": store.NULL_VERSION, "delete_marker": False, "size": 4,
            "etag": '"e"', "last_modified": NOW, "storage_class": "STANDARD", "owner": "123456789012",
            "digest": digest, "parts": None, "meta": "{}", "checksums": None, "tags": None,
            "encryption": None, "lock": None, "acl": None, **extra}


def _reader(db: Database) -> S3Base:
    provider = S3Base.__new__(S3Base)  # only what object_row uses: the store
    provider.db = db
    return provider


def test_a_row_is_read_again_after_any_write(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'metadata.sqlite3'}")
    db.migrate()
    s3 = _reader(db)
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64

    async def scenario() -> None:
        assert await s3.object_row("b", "k") is None  # absence is remembered too...
        await db.write(lambda c: store.put_version(c, _values("k", a), None))
        first = await s3.object_row("b", "k")  # ...until a write ends
        assert first is not None and first.digest == a
        assert await s3.object_row("b", "k") is first  # nothing written since: the same row
        await db.write(lambda c: store.put_version(c, _values("k", b), None))  # the group-commit writer
        second = await s3.object_row("b", "k")
        assert second is not None and second.digest == b
        db.write_sync(lambda c: c.execute(sa.delete(s3_objects)))  # a synchronous write as well
        assert await s3.object_row("b", "k") is None
        with contextlib.suppress(ZeroDivisionError):
            await db.write(lambda c: 1 // 0)  # a write that failed commits nothing: the row stays current
        assert await s3.object_row("b", "k") is None
        other = sqlite3.connect(tmp_path / "metadata.sqlite3")  # another process's commit, as the CLI's
        with other:
            other.execute("DELETE FROM s3_objects")
        other.close()
        await db.write(lambda c: store.put_version(c, _values("k", a), None))
        third = await s3.object_row("b", "k")
        assert third is not None and third.digest == a
    try:
        asyncio.run(scenario())
    finally:
        db.close()


def test_the_cache_is_bounded(tmp_path: Path, monkeypatch: Any) -> None:
    from minicloud.storage.metadata import db as db_module

    monkeypatch.setattr(db_module, "MAX_CACHED_READS", 3)
    db = Database(f"sqlite:///{tmp_path / 'metadata.sqlite3'}")
    db.migrate()
    s3 = _reader(db)

    async def scenario() -> None:
        for i in range(10):
            await s3.object_row("b", f"k{i}")
            assert len(db._cached) <= 3
    try:
        asyncio.run(scenario())
    finally:
        db.close()
